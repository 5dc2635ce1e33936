"""Failures in plain words: ssl exceptions, TLS alerts and socket errors, for both sides.

The client turns a failure into a typed error (``NetworkError`` exit 4 for refused,
timed out, DNS; ``TLSError``/``VerificationError`` exit 5 for the handshake) whose
message says what happened and whose hint says what to do. The server turns a
failed handshake into an :class:`Explanation` for its log line.

Every error made here also carries ``code`` (a stable short name such as
``hostname_mismatch``, for scripts and tests) and ``alert`` (the TLS alert number,
or None).
"""

from __future__ import annotations

import datetime as dt
import errno
import functools
import re
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from cryptography import x509

from tlskit import pki
from tlskit.errors import NetworkError, TlskitError, TLSError, VerificationError

# RFC 8446 §6 and the IANA registry: the alerts a peer may send.
ALERTS = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    21: "decryption_failed",
    22: "record_overflow",
    30: "decompression_failure",
    40: "handshake_failure",
    41: "no_certificate",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    49: "access_denied",
    50: "decode_error",
    51: "decrypt_error",
    60: "export_restriction",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    90: "user_canceled",
    100: "no_renegotiation",
    109: "missing_extension",
    110: "unsupported_extension",
    111: "certificate_unobtainable",
    112: "unrecognized_name",
    113: "bad_certificate_status_response",
    114: "bad_certificate_hash_value",
    115: "unknown_psk_identity",
    116: "certificate_required",
    120: "no_application_protocol",
}
_ALERT_NUMBERS = {name: num for num, name in ALERTS.items()}
# OpenSSL spells a few differently from the RFC.
_ALERT_NUMBERS.update({"user_cancelled": 90, "decryption_failed": 21, "no_certificate": 41})
_UNNAMED_ALERT = re.compile(r"\[SSL\] (sslv3|tlsv1|tlsv13) alert ([a-z ]+?) \(")
_ALERT_REASON = re.compile(r"^(?:SSLV3|TLSV1|TLSV13)_(?:ALERT_)?([A-Z_]+)$")

# X509_V_ERR_* codes from OpenSSL's x509_vfy.h that we explain individually.
V_UNABLE_TO_GET_ISSUER_CERT = 2
V_CERT_SIGNATURE_FAILURE = 7
V_CERT_NOT_YET_VALID = 9
V_CERT_HAS_EXPIRED = 10
V_DEPTH_ZERO_SELF_SIGNED_CERT = 18
V_SELF_SIGNED_CERT_IN_CHAIN = 19
V_UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20
V_UNABLE_TO_VERIFY_LEAF_SIGNATURE = 21
V_CERT_REVOKED = 23
V_INVALID_CA = 24
V_INVALID_PURPOSE = 26
V_CERT_UNTRUSTED = 27
V_PERMITTED_VIOLATION = 47
V_EXCLUDED_VIOLATION = 48
V_HOSTNAME_MISMATCH = 62
V_IP_ADDRESS_MISMATCH = 64
_UNTRUSTED = {
    V_UNABLE_TO_GET_ISSUER_CERT,
    V_DEPTH_ZERO_SELF_SIGNED_CERT,
    V_SELF_SIGNED_CERT_IN_CHAIN,
    V_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
    V_UNABLE_TO_VERIFY_LEAF_SIGNATURE,
    V_CERT_UNTRUSTED,
}

_VERSION_REASONS = {"UNSUPPORTED_PROTOCOL", "VERSION_TOO_LOW", "WRONG_SSL_VERSION", "UNSUPPORTED_SSL_VERSION", "VERSION_TOO_HIGH"}
_CIPHER_REASONS = {"NO_SHARED_CIPHER", "NO_CIPHERS_AVAILABLE", "NO_CIPHER_MATCH", "NO_SHARED_SIGNATURE_ALGORITHMS", "NO_SUITABLE_SIGNATURE_ALGORITHM", "NO_SHARED_GROUPS"}
_NOT_TLS_REASONS = {
    "WRONG_VERSION_NUMBER",
    "UNKNOWN_PROTOCOL",
    "RECORD_LAYER_FAILURE",
    "PACKET_LENGTH_TOO_LONG",
    "HTTP_REQUEST",
    "HTTPS_PROXY_REQUEST",
    "UNEXPECTED_RECORD",
    "UNEXPECTED_MESSAGE",
    "BAD_PACKET_LENGTH",
    "RECORD_LENGTH_MISMATCH",
    "UNKNOWN_ALERT_TYPE",
}
_MALFORMED_REASONS = {"LENGTH_MISMATCH", "BAD_EXTENSION", "PARSE_TLSEXT", "BAD_LENGTH", "LENGTH_TOO_SHORT", "DECODE_ERROR", "BAD_PACKET", "EXCESSIVE_MESSAGE_SIZE"}
_OVERSIZE_REASONS = {"DATA_LENGTH_TOO_LONG", "ENCRYPTED_LENGTH_TOO_LONG", "RECORD_TOO_LARGE"}
_HTTP_METHODS = re.compile(rb"^(GET|POST|HEAD|PUT|DELETE|OPTIONS|PATCH|CONNECT|TRACE|PRI) ")


@dataclass(frozen=True)
class Explanation:
    """A failure in plain words: ``code`` for machines, ``message`` and ``hint`` for people."""

    code: str
    message: str
    hint: str | None = None
    alert: int | None = None

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


E = TypeVar("E", bound=TlskitError)


def _error(cls: type[E], expl: Explanation, **kwargs) -> E:
    err = cls(expl.message, expl.hint, **kwargs)
    err.code = expl.code  # type: ignore[attr-defined]
    err.alert = expl.alert  # type: ignore[attr-defined]
    return err


# --- small facts -------------------------------------------------------------------


def reason_of(exc: BaseException) -> str:
    """OpenSSL's reason name (``TLSV1_ALERT_UNKNOWN_CA``), or ``""``."""
    reason = getattr(exc, "reason", None)
    if reason:
        return str(reason)
    # Python 3.11's table of OpenSSL reasons lacks a few (alert 120 arrives as
    # "[SSL] tlsv1 alert no application protocol"): rebuild the name from the text.
    m = _UNNAMED_ALERT.search(str(exc))
    if m:
        return f"{m.group(1).upper()}_ALERT_{m.group(2).upper().replace(' ', '_')}"
    if isinstance(exc, ssl.SSLEOFError):
        return "UNEXPECTED_EOF_WHILE_READING"
    return ""


def alert_of(exc: BaseException) -> tuple[int, str] | None:
    """The TLS alert the *peer* sent, when ``exc`` reports one: ``(48, "unknown_ca")``."""
    m = _ALERT_REASON.match(reason_of(exc))
    if not m:
        return None
    name = m.group(1).lower()
    number = _ALERT_NUMBERS.get(name)
    if number is None:
        return None
    return number, ALERTS[number]


def parse_plain_alert(data: bytes) -> int | None:
    """The description of the last unencrypted alert record in ``data`` (what we sent), or None.

    Alerts before the keys are set are plaintext records ``15 03 0x 00 02 level desc``;
    once encrypted (TLS 1.3 after the ServerHello) they look like application data.
    """
    i, found = 0, None
    while i + 5 <= len(data):
        ctype, length = data[i], int.from_bytes(data[i + 3 : i + 5], "big")
        body = data[i + 5 : i + 5 + length]
        if ctype == 0x15 and length == 2 and len(body) == 2:
            found = body[1]
        i += 5 + length
    return found


def describe_alert(number: int) -> str:
    return f"alert {number} {ALERTS.get(number, 'unknown')}"


def _printable(raw: bytes, limit: int = 60) -> str:
    line = raw.split(b"\n", 1)[0].rstrip(b"\r")[:limit]
    return line.decode("ascii", "replace")


def looks_like_http_request(raw: bytes | memoryview) -> bool:
    """Whether the first bytes of a connection are a plain HTTP request line."""
    return bool(_HTTP_METHODS.match(bytes(raw[:8])))


def describe_non_tls(raw: bytes) -> str | None:
    """What the peer seems to speak instead of TLS, from its first bytes; None if it may be TLS."""
    if not raw or raw[0] in (0x14, 0x15, 0x16, 0x17):
        return None
    if raw.startswith(b"HTTP/"):
        return f"it answered in plain HTTP ({_printable(raw)!r})"
    if looks_like_http_request(raw):
        return f"it sent a plain HTTP request ({_printable(raw)!r})"
    if raw.startswith(b"SSH-"):
        return f"it is an SSH server ({_printable(raw)!r})"
    if re.match(rb"^\d{3}[ -]", raw):
        return f"it greeted in plain text ({_printable(raw)!r}), like SMTP or FTP; use their STARTTLS instead"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in raw[:32]):
        return f"it sent plain text ({_printable(raw)!r})"
    return f"it sent {len(raw)} bytes that are not TLS (starting {raw[:8].hex(' ')})"


def _hello_max_version(raw: bytes) -> str | None:
    """The highest version a ClientHello offers, from its legacy version field (≤ TLS 1.2 only)."""
    # record(5) + handshake header(4) + client_version(2)
    if len(raw) < 11 or raw[0] != 0x16 or raw[5] != 0x01:
        return None
    return {0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1"}.get(int.from_bytes(raw[9:11], "big"))


def _names(cert: x509.Certificate | None) -> str:
    if cert is None:
        return "unknown"
    names = [n.split(":", 1)[1] for n in pki.sans_of(cert) if n.startswith(("DNS:", "IP:"))]
    return ", ".join(names) or "no DNS or IP names at all"


def _date(d: dt.datetime) -> str:
    return f"{d:%Y-%m-%d %H:%M} UTC"


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


@functools.lru_cache(maxsize=1)
def load_system_roots() -> tuple[x509.Certificate, ...]:
    """The system trust store as ``cryptography`` certificates (for after-the-fact checks)."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            try:
                return tuple(x509.load_pem_x509_certificates(Path(candidate).read_bytes()))
            except (OSError, ValueError):
                continue
    certs: list[x509.Certificate] = []
    for folder in (paths.capath, paths.openssl_capath):
        if folder and Path(folder).is_dir():
            for f in sorted(Path(folder).iterdir()):
                try:
                    certs.extend(x509.load_pem_x509_certificates(f.read_bytes()))
                except (OSError, ValueError):
                    continue
            break
    return tuple(certs)


def trust_roots(trust_files: Sequence[Path], system_ca: bool) -> list[x509.Certificate]:
    """Every certificate a client context trusts, as ``cryptography`` objects."""
    roots: list[x509.Certificate] = []
    for f in trust_files:
        try:
            roots.extend(x509.load_pem_x509_certificates(Path(f).read_bytes()))
        except (OSError, ValueError):
            continue
    if system_ca:
        roots.extend(load_system_roots())
    return roots


def describe_trust(trust_files: Sequence[Path], system_ca: bool) -> str:
    parts = [str(f) for f in trust_files]
    if system_ca:
        parts.append("the system trust store")
    return " and ".join(parts) or "nothing"


# --- network errors (exit 4) -------------------------------------------------------------


def explain_connect_error(exc: BaseException, *, host: str, port: int, timeout: float | None = None) -> NetworkError:
    """A failed DNS lookup or TCP connect as a :class:`NetworkError` (exit 4)."""
    target = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    if isinstance(exc, socket.gaierror):
        expl = Explanation(
            "dns",
            f"cannot resolve {host!r}: {exc.strerror or exc}",
            "check the spelling, or connect to an address such as 127.0.0.1",
        )
    elif isinstance(exc, UnicodeError):
        expl = Explanation(
            "dns",
            f"{host!r} is not a valid host name (a label is empty or longer than 63 characters)",
            "check the spelling",
        )
    elif isinstance(exc, ConnectionRefusedError):
        expl = Explanation(
            "refused",
            f"connection refused by {target}: nothing is listening there",
            f"start a server (tlskit serve --port {port}) or check the port",
        )
    elif isinstance(exc, (TimeoutError, socket.timeout)):
        after = f" after {timeout:g} s" if timeout else ""
        expl = Explanation(
            "timeout",
            f"timed out connecting to {target}{after}",
            "check the host, the port and any firewall, or raise --timeout",
        )
    elif isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL):
        expl = Explanation("unreachable", f"cannot reach {target}: {exc.strerror}", "check the address and your network")
    elif isinstance(exc, OSError):
        expl = Explanation("network", f"cannot connect to {target}: {exc.strerror or exc}")
    else:
        expl = Explanation("network", f"cannot connect to {target}: {exc}")
    return _error(NetworkError, expl)


def explain_listen_error(exc: OSError, *, host: str | None, port: int) -> NetworkError:
    """A failed bind or listen as a :class:`NetworkError` naming the port (exit 4)."""
    where = f"{host or '*'}:{port}"
    if exc.errno == errno.EADDRINUSE:
        expl = Explanation(
            "port_in_use",
            f"cannot listen on {where}: port {port} is already in use",
            f"stop the other server on port {port}, or pick another with --port (0 picks a free one)",
        )
    elif exc.errno in (errno.EACCES, errno.EPERM):
        expl = Explanation(
            "port_privileged" if 0 < port < 1024 else "permission",
            f"cannot listen on {where}: permission denied" + (f" (port {port} is privileged)" if 0 < port < 1024 else ""),
            "ports below 1024 need root or CAP_NET_BIND_SERVICE; use --port 8443" if 0 < port < 1024 else None,
        )
    elif exc.errno == errno.EADDRNOTAVAIL:
        expl = Explanation("address", f"cannot listen on {where}: no such address on this machine", "check --host")
    elif isinstance(exc, socket.gaierror):
        expl = Explanation("dns", f"cannot resolve {host!r} to listen on: {exc.strerror or exc}", "check --host")
    else:
        expl = Explanation("listen", f"cannot listen on {where}: {exc.strerror or exc}")
    return _error(NetworkError, expl)


# --- the client side ----------------------------------------------------------------------


def _explain_verification(
    exc: ssl.SSLCertVerificationError,
    *,
    server_name: str | None,
    host: str,
    chain: Sequence[x509.Certificate],
    trust_files: Sequence[Path],
    system_ca: bool,
    now: dt.datetime,
) -> VerificationError:
    code = exc.verify_code
    leaf = chain[0] if chain else None
    checked = server_name or host
    trusted = describe_trust(trust_files, system_ca)
    if code in (V_HOSTNAME_MISMATCH, V_IP_ADDRESS_MISMATCH):
        expl = Explanation(
            "hostname_mismatch",
            f"{checked!r} is not among the names the server's certificate covers: {_names(leaf)}",
            f"issue a certificate that covers it (tlskit cert issue {checked}), "
            "or pass --servername with one of those names",
        )
    elif code in _UNTRUSTED:
        if leaf is not None and leaf.issuer == leaf.subject and len(chain) == 1:
            what = f"the server's certificate is self-signed ({_subject(leaf)}) and is not trusted by {trusted}"
        else:
            issuer = chain[-1].issuer if chain else None
            name = issuer.rfc4514_string() if issuer is not None else "an unknown CA"
            what = f"the server's certificate was issued by {name!r}, which is not trusted by {trusted}"
        expl = Explanation(
            "unknown_ca",
            what,
            "pass --ca FILE with that CA's certificate (a tlskit server's is HOME/ca/ca.crt), "
            "or issue the server's certificate from the store CA: tlskit cert issue HOST",
        )
    elif code == V_CERT_HAS_EXPIRED:
        expired = next((c for c in chain if now > c.not_valid_after_utc), leaf)
        who = "the server's certificate" if expired is leaf else f"the CA {_subject(expired)!r}" if expired else "a certificate"
        when = f" on {_date(expired.not_valid_after_utc)}" if expired is not None else ""
        valid = (
            f" (valid {_date(expired.not_valid_before_utc)} to {_date(expired.not_valid_after_utc)})" if expired is not None else ""
        )
        expl = Explanation(
            "expired",
            f"{who} expired{when}{valid}",
            f"renew it on the server (tlskit cert issue {checked} --force), or check this machine's clock",
        )
    elif code == V_CERT_NOT_YET_VALID:
        early = next((c for c in chain if now < c.not_valid_before_utc), leaf)
        when = f" before {_date(early.not_valid_before_utc)}" if early is not None else " yet"
        expl = Explanation(
            "not_yet_valid",
            f"the server's certificate is not valid{when} (now: {_date(now)})",
            "check the clocks of both machines",
        )
    elif code == V_INVALID_PURPOSE:
        eku = ", ".join(pki.eku_of(leaf) or []) if leaf is not None else "?"
        expl = Explanation(
            "wrong_purpose",
            f"the server's certificate is not for TLS servers (extended key usage: {eku or 'none'})",
            "issue it as a server certificate: tlskit cert issue NAME (without --client)",
        )
    elif code in (V_PERMITTED_VIOLATION, V_EXCLUDED_VIOLATION):
        expl = Explanation(
            "name_constraints",
            f"the server's certificate names ({_names(leaf)}) are outside its CA's name constraints",
            "issue it from a CA whose --permit covers those names",
        )
    elif code == V_CERT_REVOKED:
        expl = Explanation("revoked", "the server's certificate is revoked")
    else:
        expl = Explanation(
            "verify_failed",
            f"the server's certificate did not verify: {exc.verify_message}",
            "see the chain with -v; check it with: tlskit cert verify FILE --host HOST",
        )
    return _error(VerificationError, expl, reasons=[expl.message])


def explain_client_failure(
    exc: BaseException,
    *,
    host: str,
    port: int,
    server_name: str | None = None,
    chain: Sequence[x509.Certificate] = (),
    raw: bytes = b"",
    sent_certificate: bool = False,
    trust_files: Sequence[Path] = (),
    system_ca: bool = False,
    min_tls: str | None = None,
    max_tls: str | None = None,
    alpn: Sequence[str] = (),
    after_handshake: bool = False,
    timeout: float | None = None,
    now: dt.datetime | None = None,
) -> TlskitError:
    """Explain why a client handshake (or the first read after it) failed.

    Args:
        exc: what ``do_handshake()``/``read()``/the socket raised.
        host, port: where we connected.
        server_name: the name sent as SNI and checked (``--servername``), if other than ``host``.
        chain: the peer's chain, from :func:`tlskit.report.peer_chain` (available
            even after a failed verification).
        raw: the first bytes the peer sent, to recognise a peer that does not speak TLS.
        sent_certificate: whether we had a client certificate to send.
        trust_files, system_ca: what we trusted, to name it.
        min_tls, max_tls, alpn: what we offered.
        after_handshake: the failure came after our side finished (TLS 1.3 client
            certificate rejection arrives then).
        timeout: the timeout in force, for timeouts.
        now: for date checks (aware), for tests.

    Returns:
        A :class:`TLSError` / :class:`VerificationError` (exit 5) or a
        :class:`NetworkError` (exit 4), with ``code`` and ``alert`` attributes; raise
        it ``from exc``.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    target = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _explain_verification(
            exc, server_name=server_name, host=host, chain=chain, trust_files=trust_files, system_ca=system_ca, now=now
        )
    if isinstance(exc, (TimeoutError, socket.timeout)):
        after = f" within {timeout:g} s" if timeout else ""
        what = describe_non_tls(raw)
        if what:
            return _error(TLSError, Explanation("not_tls", f"{target} does not speak TLS: {what}", "check the port"))
        return _error(
            NetworkError,
            Explanation(
                "timeout",
                f"no TLS reply from {target}{after}: the handshake timed out",
                "the server may not speak TLS on this port, or is overloaded; raise --timeout",
            ),
        )
    alert = alert_of(exc)
    reason = reason_of(exc)
    offered = _offered(min_tls, max_tls)
    if alert is not None:
        number, name = alert
        tag = f"(TLS alert {number} {name})"
        if number == 116 or (number == 40 and not sent_certificate and after_handshake):
            expl = Explanation(
                "client_cert_required",
                f"the server requires a client certificate and we sent none {tag}",
                "pass --cert NAME with a client certificate from the server's CA (tlskit cert issue --client NAME)",
                number,
            )
        elif number in (42, 43, 44, 45, 46, 48, 49) and sent_certificate:
            why = {
                48: "it does not trust the CA that issued it",
                45: "it says the certificate expired",
                44: "it says the certificate is revoked",
                43: "it does not accept that kind of certificate",
                49: "it denies access to that identity",
            }.get(number, "it did not accept it")
            expl = Explanation(
                "client_cert_rejected",
                f"the server rejected our client certificate: {why} {tag}",
                "use a client certificate issued by the CA the server trusts for clients "
                "(tlskit cert issue --client NAME), or check the server's --client-ca",
                number,
            )
        elif number == 40 and not sent_certificate:
            expl = Explanation(
                "handshake_failure",
                f"the server refused the handshake {tag}: it may require a client certificate, "
                "or share no cipher with us",
                "pass --cert NAME if the server uses mTLS; otherwise compare --ciphers and --max-tls with the server's",
                number,
            )
        elif number == 40:
            expl = Explanation(
                "handshake_failure",
                f"the server refused the handshake {tag}: no cipher or parameters in common",
                "compare --ciphers, --min-tls and --max-tls with the server's",
                number,
            )
        elif number == 70:
            expl = Explanation(
                "no_shared_version",
                f"no TLS version in common: the server refused the versions we offer ({offered}) {tag}",
                "check --min-tls/--max-tls against the server's; tlskit never offers TLS 1.0/1.1",
                number,
            )
        elif number == 71:
            expl = Explanation(
                "insufficient_security",
                f"the server considers what we offer too weak {tag}",
                "drop --ciphers/--max-tls restrictions",
                number,
            )
        elif number == 120:
            expl = Explanation(
                "no_alpn",
                f"no application protocol in common: we offered {', '.join(alpn) or 'none'} {tag}",
                "change --alpn to a protocol the server accepts",
                number,
            )
        elif number == 112:
            expl = Explanation(
                "unrecognized_name",
                f"the server has no certificate for the name {server_name or host!r} {tag}",
                "pass --servername with a name the server serves",
                number,
            )
        elif number == 80:
            expl = Explanation(
                "internal_error",
                f"the server reported an internal error {tag}; OpenSSL servers also send this when no "
                f"protocol version is shared (we offer {offered})",
                "check the server's log, and --min-tls/--max-tls",
                number,
            )
        elif number in (42, 46, 48):
            expl = Explanation(
                "peer_rejected",
                f"the server rejected the handshake {tag}",
                "check the server's log for the reason",
                number,
            )
        else:
            expl = Explanation("alert", f"the server ended the handshake {tag}", "check the server's log", number)
        return _error(TLSError, expl)
    what = describe_non_tls(raw)
    if what is not None:
        hint = f"use http://{target}/ for plain HTTP" if raw.startswith(b"HTTP/") else "check the port"
        return _error(TLSError, Explanation("not_tls", f"{target} does not speak TLS: {what}", hint))
    if reason in _VERSION_REASONS:
        return _error(
            TLSError,
            Explanation(
                "no_shared_version",
                f"no TLS version in common: the server chose a version outside ours ({offered})",
                "the server only speaks old TLS; upgrade it (TLS 1.0/1.1 are deprecated by RFC 8996)",
            ),
        )
    if reason == "NO_PROTOCOLS_AVAILABLE":
        return _error(
            TLSError,
            Explanation("no_protocols", f"our settings allow no TLS version ({offered})", "check --min-tls and --max-tls"),
        )
    if reason in _CIPHER_REASONS:
        return _error(
            TLSError,
            Explanation("no_shared_cipher", "no cipher in common with the server", "drop --ciphers, or pick one the server supports"),
        )
    if reason in _NOT_TLS_REASONS:
        return _error(
            TLSError,
            Explanation("not_tls", f"{target} does not speak TLS (OpenSSL: {reason.lower().replace('_', ' ')})", "check the port"),
        )
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError, BrokenPipeError)) or reason == "UNEXPECTED_EOF_WHILE_READING":
        if after_handshake:
            expl = Explanation(
                "closed_after_handshake",
                f"{target} closed the connection right after the handshake without a TLS alert",
                "it may have rejected our client certificate; check the server's log",
            )
        elif not raw:
            expl = Explanation(
                "closed",
                f"{target} closed the connection without answering our TLS hello",
                "it may not speak TLS on this port, or refused us without an alert; check the server's log",
            )
        else:
            expl = Explanation(
                "closed",
                f"{target} closed the connection during the handshake without a TLS alert",
                "asyncio-based TLS servers do this on any failure (CPython gh-98078); check the server's log",
            )
        return _error(TLSError, expl)
    if isinstance(exc, ssl.SSLError):
        detail = reason.lower().replace("_", " ") if reason else str(exc)
        return _error(TLSError, Explanation("tls", f"the TLS handshake with {target} failed: {detail}"))
    if isinstance(exc, OSError):
        return explain_connect_error(exc, host=host, port=port, timeout=timeout)
    return _error(TLSError, Explanation("tls", f"the TLS handshake with {target} failed: {exc}"))


def _offered(min_tls: str | None, max_tls: str | None) -> str:
    low = min_tls or "1.2"
    high = max_tls or "1.3"
    return f"TLS {low}" if low == high else f"TLS {low}–{high}"


# --- the server side ---------------------------------------------------------------------


def explain_server_failure(
    exc: BaseException | None,
    *,
    raw: bytes = b"",
    bytes_in: int = 0,
    server_name: str | None = None,
    certificate: x509.Certificate | None = None,
    mtls: str = "off",
    chain: Sequence[x509.Certificate] = (),
    min_tls: str = "1.2",
) -> Explanation:
    """Why a client's handshake with our server failed, for the server's log.

    Args:
        exc: what ``do_handshake()`` raised; None when the client just went away.
        raw: the first bytes the client sent.
        bytes_in: how many bytes it sent in all.
        server_name: the SNI name it asked for.
        certificate: the certificate we served for that name.
        mtls: our client-certificate mode.
        chain: the client's chain (what OpenSSL kept of it).
        min_tls: our minimum version.
    """
    if looks_like_http_request(raw) or (exc is not None and reason_of(exc) in ("HTTP_REQUEST", "HTTPS_PROXY_REQUEST")):
        return Explanation("plain_http", "plain HTTP on a TLS port: the client must use https://")
    if exc is None or isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionError)) or reason_of(exc) == "UNEXPECTED_EOF_WHILE_READING":
        what = describe_non_tls(raw)
        if what:
            return Explanation("not_tls", f"not a TLS client: {what}")
        if bytes_in == 0:
            return Explanation("closed_early", "the client closed the connection without sending anything (a port check?)")
        how = "reset" if isinstance(exc, ConnectionResetError) else "closed"
        return Explanation(
            "closed",
            f"the client {how} the connection during the handshake without an alert "
            "(it may not trust our certificate; curl and browsers say why on their side)",
        )
    alert = alert_of(exc)
    reason = reason_of(exc)
    if alert is not None:
        number, name = alert
        tag = f"(TLS alert {number} {name})"
        if number == 48:
            return Explanation(
                "client_untrusted_ca",
                f"the client does not trust our CA {tag}",
                "give the client the CA certificate (HOME/ca/ca.crt), e.g. curl --cacert, openssl -CAfile, tlskit connect --ca",
                number,
            )
        if number in (42, 46):
            covered = True
            if server_name and certificate is not None:
                from tlskit.verify import host_matches

                covered = host_matches(certificate, server_name)
            if not covered:
                return Explanation(
                    "client_hostname_mismatch",
                    f"the client rejected our certificate {tag}: it asked for {server_name!r}, "
                    f"which our certificate does not cover ({_names(certificate)})",
                    f"issue a certificate for it: tlskit cert issue {server_name}",
                    number,
                )
            return Explanation(
                "client_rejected_cert",
                f"the client rejected our certificate {tag}: it does not trust our CA, or checks a name we do not cover",
                "give the client HOME/ca/ca.crt, and check the name it connects to against our SANs",
                number,
            )
        if number == 45:
            return Explanation("client_says_expired", f"the client says our certificate expired {tag}", "check both clocks", number)
        if number == 70:
            return Explanation("no_shared_version", f"no shared protocol version {tag}", None, number)
        if number in (90, 0):
            return Explanation("client_cancelled", f"the client cancelled the handshake {tag}", None, number)
        return Explanation("client_alert", f"the client ended the handshake {tag}", None, number)
    if isinstance(exc, ssl.SSLCertVerificationError):
        who = _subject(chain[0]) if chain else "the client's certificate"
        code = exc.verify_code
        if code in _UNTRUSTED:
            issuer = chain[-1].issuer.rfc4514_string() if chain else "an unknown CA"
            why = f"it was issued by {issuer!r}, which is not our client CA"
        elif code == V_CERT_HAS_EXPIRED:
            why = "it expired" + (f" on {_date(chain[0].not_valid_after_utc)}" if chain else "")
        elif code == V_CERT_NOT_YET_VALID:
            why = "it is not valid yet"
        elif code == V_INVALID_PURPOSE:
            why = "it is not a client certificate (no clientAuth extended key usage)"
        else:
            why = exc.verify_message
        return Explanation(
            "client_cert_rejected",
            f"client certificate rejected ({who}): {why}",
            "issue client certificates from our client CA: tlskit cert issue --client NAME",
        )
    if reason in ("PEER_DID_NOT_RETURN_A_CERTIFICATE", "NO_CERTIFICATE_RETURNED"):
        return Explanation(
            "client_sent_no_cert",
            f"the client sent no certificate (mTLS is {mtls})",
            "the client must present one issued by our client CA, e.g. tlskit connect --cert NAME",
        )
    if reason in _VERSION_REASONS:
        offered = _hello_max_version(raw)
        detail = f": the client offered at most {offered}" if offered else ""
        return Explanation("no_shared_version", f"no shared protocol version{detail} (we need TLS {min_tls} or later)")
    if reason in _CIPHER_REASONS:
        return Explanation("no_shared_cipher", "no cipher in common with the client (we accept only ECDHE with AES-GCM or ChaCha20)")
    if reason == "CALLBACK_FAILED":
        # CPython's SNI hook failed before ours ran: the name is not ASCII (see contexts._install_bad_sni_filter).
        return Explanation("bad_sni", "the client sent a server name (SNI) that is not ASCII, which RFC 6066 §3 forbids")
    # A TLS record header (type 20-23, major version 3) announcing more than OpenSSL accepts
    # is an oversized record, not a foreign protocol, even though OpenSSL calls it "packet length too long".
    tls_header = len(raw) >= 5 and 20 <= raw[0] <= 23 and raw[1] == 3
    if reason in _OVERSIZE_REASONS or reason == "TLSV1_ALERT_RECORD_OVERFLOW" or (reason == "PACKET_LENGTH_TOO_LONG" and tls_header):
        return Explanation("record_overflow", "the client sent an oversized TLS record")
    what = describe_non_tls(raw)
    if what is not None or reason in _NOT_TLS_REASONS:
        return Explanation("not_tls", f"not a TLS client: {what or reason.lower().replace('_', ' ')}")
    if reason in _MALFORMED_REASONS:
        return Explanation("malformed", f"the client sent a malformed handshake ({reason.lower().replace('_', ' ')})")
    detail = reason.lower().replace("_", " ") if reason else str(exc)
    return Explanation("tls", f"handshake failed: {detail}")


__all__ = [
    "ALERTS",
    "Explanation",
    "alert_of",
    "describe_alert",
    "describe_non_tls",
    "describe_trust",
    "explain_client_failure",
    "explain_connect_error",
    "explain_listen_error",
    "explain_server_failure",
    "load_system_roots",
    "looks_like_http_request",
    "parse_plain_alert",
    "reason_of",
    "trust_roots",
]
