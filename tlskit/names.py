"""Identities: what a name given on the command line is, and its X.509 form.

One function, :func:`classify_name`, decides what a string is, in a fixed order:
URI (it has a scheme), email, IP address, IP network, then DNS name converted to
its A-label with IDNA 2008 / UTS-46. Every rejection carries its reason.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from tlskit.errors import InvalidNameError

# RFC 1035 limits: 63 octets a label, 253 for the whole name in text form.
MAX_LABEL = 63
MAX_NAME = 253
_LDH = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# UTS #46 maps these to "." (they separate labels, RFC 3490 §3.1): split on them too,
# or "bücher。test" would reach IDNA as a single label.
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


class NameKind(str, enum.Enum):
    DNS = "dns"
    WILDCARD = "wildcard"
    IP = "ip"
    NETWORK = "network"
    EMAIL = "email"
    URI = "uri"


@dataclass(frozen=True)
class Identity:
    """A classified name: ``value`` is the normalised form that goes in the certificate."""

    kind: NameKind
    value: str
    given: str

    @property
    def san_prefix(self) -> str:
        return {
            NameKind.DNS: "DNS",
            NameKind.WILDCARD: "DNS",
            NameKind.IP: "IP",
            NameKind.NETWORK: "IP",
            NameKind.EMAIL: "email",
            NameKind.URI: "URI",
        }[self.kind]

    def __str__(self) -> str:
        return f"{self.san_prefix}:{self.value}"


def _bad(given: str, what: str, reason: str) -> InvalidNameError:
    return InvalidNameError(
        f"{given!r} is not a valid {what}: {reason}",
        hint="names are DNS names (localhost, *.dev.test), IP addresses, emails or URIs",
    )


def _to_alabel(label: str, given: str) -> str:
    """One label to its ASCII form, with IDNA 2008 (UTS-46 mapping) for non-ASCII labels."""
    if label.isascii() and not label.lower().startswith("xn--"):
        return label.lower()  # the common case, without importing idna's tables
    import idna  # IDNA 2008; Python's built-in "idna" codec is IDNA 2003

    if label.isascii():
        label = label.lower()
        if label.startswith("xn--"):
            # An A-label must decode to a valid U-label (RFC 5890 §2.3.2.1); "xn--zz" does not.
            try:
                idna.decode(label)
            except (idna.IDNAError, UnicodeError) as exc:
                raise _bad(given, "DNS name", f"{label!r} is not a valid A-label (punycode) ({exc})") from exc
        return label
    try:
        return idna.encode(label, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise _bad(given, "DNS name", f"international label {label!r} is not valid IDNA 2008 ({exc})") from exc


def parse_dns_name(given: str, *, allow_wildcard: bool = True, what: str = "DNS name") -> Identity:
    """Check a DNS name (RFC 1034/5890) and return it as lower-case A-labels.

    Raises:
        InvalidNameError: with the precise reason (spaces, empty label, label too long, bad wildcard …).
    """
    name = given.strip()
    if not name:
        raise _bad(given, what, "it is empty")
    if any(ch.isspace() for ch in name):
        raise _bad(given, what, "spaces are not allowed")
    if not name.isascii():
        name = name.translate(_DOTS)
    if name.endswith(".") and not name.endswith(".."):
        name = name[:-1]  # a fully-qualified "localhost." means the same name
    labels = name.split(".")
    wildcard = False
    if "*" in name:
        if not allow_wildcard:
            raise _bad(given, what, "wildcards are not allowed here")
        if name == "*":
            raise _bad(given, "wildcard name", "a bare '*' would match every name; use '*.example.test'")
        if labels[0] != "*" or "*" in ".".join(labels[1:]):
            raise _bad(
                given,
                "wildcard name",
                "'*' must be the whole left-most label, once (like '*.example.test'); "
                "partial or nested wildcards are refused by browsers",
            )
        if len(labels) < 3:
            # RFC 6125 / CA/B BR: a wildcard needs at least two labels under it; browsers ignore '*.test'.
            raise _bad(given, "wildcard name", "a wildcard needs at least two labels after '*.' (like '*.dev.test')")
        wildcard = True
        labels = labels[1:]
    out = []
    for label in labels:
        if not label:
            raise _bad(given, what, "it has an empty label (two dots in a row, or a leading dot)")
        alabel = _to_alabel(label, given)
        if len(alabel) > MAX_LABEL:
            raise _bad(given, what, f"the label {label[:20]!r}… is {len(alabel)} characters long; the limit is 63")
        if "_" in alabel:
            raise _bad(given, what, "'_' is not allowed in host names (use '-')")
        if not _LDH.match(alabel):
            if alabel.startswith("-") or alabel.endswith("-"):
                raise _bad(given, what, f"the label {label!r} starts or ends with '-'")
            bad = sorted({ch for ch in alabel if not (ch.isalnum() or ch == "-")})
            raise _bad(given, what, f"character(s) {' '.join(repr(c) for c in bad)} are not allowed")
        out.append(alabel)
    value = ".".join(out)
    if wildcard:
        value = "*." + value
    if len(value) > MAX_NAME:
        raise _bad(given, what, f"it is {len(value)} characters long; the limit is 253")
    if not wildcard and all(label.isdigit() for label in out):
        raise _bad(given, what, "it looks like an IP address but is not a valid one")
    return Identity(NameKind.WILDCARD if wildcard else NameKind.DNS, value, given)


def _parse_email(given: str) -> Identity:
    local, _, domain = given.rpartition("@")
    if not local:
        raise _bad(given, "email address", "the part before '@' is empty")
    if any(ch.isspace() for ch in local) or not local.isascii():
        raise _bad(given, "email address", "the part before '@' must be ASCII without spaces")
    dns = parse_dns_name(domain, allow_wildcard=False, what="email domain")
    return Identity(NameKind.EMAIL, f"{local}@{dns.value}", given)


def _parse_uri(given: str) -> Identity:
    if any(ch.isspace() for ch in given):
        raise _bad(given, "URI", "spaces are not allowed")
    parts = urlsplit(given)
    if not parts.netloc and parts.scheme != "urn":
        raise _bad(given, "URI", "it has no host after '://'")
    if parts.hostname:
        try:
            ipaddress.ip_address(parts.hostname)
        except ValueError:
            parse_dns_name(parts.hostname, allow_wildcard=False, what="URI host")
    return Identity(NameKind.URI, given, given)


def classify_name(given: str, *, allow_network: bool = False) -> Identity:
    """Classify one name: URI, email, IP address, IP network, then DNS name.

    Args:
        given: the string as the user typed it.
        allow_network: accept IP networks (``127.0.0.0/8``), used by ``--permit``.

    Returns:
        The normalised :class:`Identity`.

    Raises:
        InvalidNameError: the name is not valid, with the reason.
    """
    name = given.strip()
    if _SCHEME.match(name) or name.startswith("urn:"):
        return _parse_uri(name)
    if "@" in name:
        return _parse_email(name)
    bare = name[1:-1] if name.startswith("[") and name.endswith("]") else name
    # Address before network, or 127.0.0.1 would parse as a /32 network.
    try:
        addr = ipaddress.ip_address(bare)
    except ValueError:
        pass
    else:
        if getattr(addr, "scope_id", None):
            # A zone index ("%eth0") is local to one host; the 16 octets of an X.509 iPAddress cannot hold it.
            raise _bad(given, "IP address", "a zone index ('%…') cannot go in a certificate")
        return Identity(NameKind.IP, str(addr), given)
    if "/" in name:
        try:
            net = ipaddress.ip_network(name, strict=True)
        except ValueError as exc:
            raise _bad(given, "IP network", str(exc)) from exc
        if not allow_network:
            raise _bad(given, "certificate name", "IP ranges belong in 'ca init --permit', not in a certificate")
        return Identity(NameKind.NETWORK, str(net), given)
    return parse_dns_name(name)


def classify_constraint(given: str) -> Identity:
    """Classify a ``--permit`` value: a DNS suffix (``localhost``, ``.test``), an IP or a network.

    A leading dot is accepted and dropped: in X.509 a DNS constraint ``test``
    already covers ``test`` and every name under it (RFC 5280 §4.2.1.10).
    """
    name = given.strip()
    if name.startswith(".") and not name.startswith(".."):
        name = name[1:]
    ident = classify_name(name, allow_network=True)
    if ident.kind is NameKind.WILDCARD:
        raise _bad(given, "name constraint", "write the suffix without '*' ('.dev.test' covers '*.dev.test')")
    if ident.kind is NameKind.IP:
        net = ipaddress.ip_network(ident.value)
        ident = Identity(NameKind.NETWORK, str(net), given)
    return Identity(ident.kind, ident.value, given)


def safe_name(name: str) -> str:
    """The store folder name for a certificate: ``*.example.test`` → ``_wildcard.example.test``."""
    out = name.replace("*", "_wildcard")
    out = re.sub(r"[^A-Za-z0-9._@-]", "_", out)
    return out.lstrip(".") or "_"
