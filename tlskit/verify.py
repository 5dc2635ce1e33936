"""Chain verification with ``cryptography.x509.verification``, explained in plain words.

The verifier says *that* a chain fails; :func:`explain_failure` says *why*, by
checking each condition the way a person would: dates, the issuer, the
signature, the key usage for the purpose, the host against the SANs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.verification import DNSName, IPAddress, PolicyBuilder, Store

from tlskit import pki
from tlskit.errors import InvalidNameError, VerificationError


@dataclass
class VerifyResult:
    """What ``cert verify`` found: ``ok``, the checked host and purpose, the chain used."""

    ok: bool
    purpose: str
    host: str | None
    subject: str
    chain: list[dict] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    method: str = "cryptography.x509.verification"

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "purpose": self.purpose,
            "host": self.host,
            "subject": self.subject,
            "method": self.method,
            "reasons": self.reasons,
            "chain": self.chain,
        }


def _normalise_host(host: str) -> str:
    """A DNS host in the form the SANs use (lower-case A-labels), so 'Bücher.test' finds xn--bcher-kva.test."""
    if host.isascii():
        return host.lower().rstrip(".")
    from tlskit.names import NameKind, classify_name

    try:
        ident = classify_name(host)
    except InvalidNameError:
        return host.lower().rstrip(".")
    return ident.value if ident.kind is NameKind.DNS else host


def _subject_for(host: str):
    try:
        return IPAddress(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return DNSName(_normalise_host(host))


def host_matches(cert: x509.Certificate, host: str) -> bool:
    """RFC 6125 matching of ``host`` against the certificate's DNS/IP SANs (never the CN)."""
    try:
        addr = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        addr = None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    if addr is not None:
        return addr in san.get_values_for_type(x509.IPAddress)
    want = _normalise_host(host)
    for name in san.get_values_for_type(x509.DNSName):
        name = name.lower()
        if name == want:
            return True
        if name.startswith("*.") and "." in want:
            first, rest = want.split(".", 1)
            if rest == name[2:] and first:
                return True
    return False


def _eku_name(purpose: str) -> str:
    return "serverAuth" if purpose == "server" else "clientAuth"


def explain_failure(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    *,
    host: str | None,
    purpose: str,
    now: dt.datetime,
) -> list[str]:
    """Every failed check, in plain words, most basic first."""
    reasons: list[str] = []
    chain = [leaf, *intermediates]
    for cert in chain + [r for r in roots if any(c.issuer == r.subject for c in chain)]:
        who = "the certificate" if cert is leaf else f"the CA {cert.subject.rfc4514_string()!r}"
        if now > cert.not_valid_after_utc:
            reasons.append(f"{who} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
        elif now < cert.not_valid_before_utc:
            reasons.append(f"{who} is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    # Walk up from the leaf to a root by name and signature, checking every hop: the
    # Ed25519 path has no other judge, so each issuer must also be a CA whose
    # name constraints cover the leaf's names.
    current = leaf
    path: list[x509.Certificate] = []  # the issuers, nearest first
    while len(path) < 8:
        root = next((r for r in roots if r.subject == current.issuer), None)
        parent = root or next((c for c in intermediates if c.subject == current.issuer and c is not current), None)
        if parent is None:
            ca_names = ", ".join(repr(r.subject.rfc4514_string()) for r in roots) or "none"
            reasons.append(
                f"not signed by this CA: it was issued by {current.issuer.rfc4514_string()!r}, "
                f"and the trusted CA is {ca_names}"
            )
            break
        try:
            current.verify_directly_issued_by(parent)
        except Exception:  # InvalidSignature, or a key of another type
            reasons.append(
                f"not signed by this CA: it names {current.issuer.rfc4514_string()!r} as issuer, "
                "but the signature is from another key (a CA of the same name, re-created?)"
            )
            break
        reasons.extend(_issuer_problems(parent, cas_below=len(path)))
        path.append(parent)
        if root is not None:
            break
        current = parent
    for ca_cert in path:
        try:
            pki.check_constraints(ca_cert, pki.san_identities(leaf))
        except InvalidNameError as exc:
            reasons.append(exc.message)
    reasons.extend(_leaf_key_usage_problems(leaf, purpose))
    eku = pki.eku_of(leaf)
    if eku is not None and _eku_name(purpose) not in eku:
        have = ", ".join(eku) or "none"
        hint = "issue it with --client" if purpose == "client" else "issue it without --client, or with --client --server"
        reasons.append(f"wrong key usage for a {purpose}: its extended key usage is {have} ({hint})")
    if pki.is_ca(leaf):
        reasons.append("it is a CA certificate, not a leaf certificate")
    names = [n.split(":", 1)[1] for n in pki.sans_of(leaf) if n.startswith(("DNS:", "IP:"))]
    if host is not None and purpose == "server" and not host_matches(leaf, host):
        reasons.append(f"{host!r} is not among the SANs {', '.join(names) or 'none'}")
    elif purpose == "server" and not names:
        reasons.append("the certificate has no DNS or IP name to verify a server against")
    return reasons


def _key_usage(cert: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None


def _leaf_key_usage_problems(leaf: x509.Certificate, purpose: str) -> list[str]:
    # RFC 8446 §4.4.2.2: the key must be allowed to sign (digitalSignature) when keyUsage is present.
    # cryptography's verifier and `openssl verify` do not check it; the handshake fails later.
    ku = _key_usage(leaf)
    if ku is not None and not ku.digital_signature:
        return [
            f"wrong key usage for a {purpose}: its key usage lacks digitalSignature, "
            "which TLS needs to sign the handshake"
        ]
    return []


def _issuer_problems(issuer: x509.Certificate, cas_below: int) -> list[str]:
    """Why ``issuer`` may not sign this chain (RFC 5280 §4.2.1.3, §4.2.1.9).

    ``cas_below`` counts the intermediate CAs between it and the leaf.
    """
    who = f"the issuer {issuer.subject.rfc4514_string()!r}"
    try:
        bc = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        bc = None
    if bc is None or not bc.ca:
        return [f"{who} is not a CA (its basicConstraints do not say CA:TRUE)"]
    ku = _key_usage(issuer)
    if ku is not None and not ku.key_cert_sign:
        return [f"{who} may not sign certificates (its key usage lacks keyCertSign)"]
    if bc.path_length is not None and cas_below > bc.path_length:
        return [f"{who} allows {bc.path_length} intermediate CA(s) under it (pathLenConstraint), the chain has {cas_below}"]
    return []




def verify_chain(
    chain: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    *,
    host: str | None = None,
    purpose: str = "server",
    now: dt.datetime | None = None,
) -> VerifyResult:
    """Verify ``chain`` (leaf first) against ``roots`` for ``purpose``, and for ``host`` when given.

    Without ``host`` a server certificate is checked for each of its DNS and IP
    names. Ed25519 chains, which the Web-PKI policy of ``cryptography`` (like
    every browser) refuses, and which it has no switch to allow
    (pyca/cryptography#13391), are checked by :func:`explain_failure`: each
    signature up to the root, dates, that each issuer is a CA allowed to sign,
    its name constraints, key usage, EKU and names.

    Returns:
        A :class:`VerifyResult`; ``reasons`` explain a failure.
    """
    if purpose not in ("server", "client"):
        raise ValueError(f"purpose must be 'server' or 'client', not {purpose!r}")
    now = now or dt.datetime.now(dt.timezone.utc)
    leaf, intermediates = chain[0], [c for c in chain[1:] if c.subject != c.issuer or c not in roots]
    intermediates = [c for c in intermediates if c not in roots]
    result = VerifyResult(
        ok=False,
        purpose=purpose,
        host=host,
        # An empty subject (an IP-only leaf under a constrained CA) is named by its first SAN.
        subject=leaf.subject.rfc4514_string() or next(iter(pki.sans_of(leaf)), "the certificate"),
        chain=[pki.describe_cert(c, now) for c in [leaf, *intermediates]],
    )
    if not roots:
        result.reasons = ["no trusted CA to verify against"]
        return result
    uses_ed25519 = any(isinstance(c.public_key(), ed25519.Ed25519PublicKey) for c in [*chain, *roots])
    if uses_ed25519:
        result.method = "signature, dates, issuer, name constraints, key usage and names (the Web-PKI policy forbids Ed25519)"
        result.reasons = explain_failure(leaf, intermediates, roots, host=host, purpose=purpose, now=now)
        result.ok = not result.reasons
        return result
    builder = PolicyBuilder().store(Store(list(roots))).time(now)
    subjects: list[str | None]
    if purpose == "client":
        subjects = [None]
    elif host is not None:
        subjects = [host]
    else:
        subjects = [n.split(":", 1)[1] for n in pki.sans_of(leaf) if n.startswith(("DNS:", "IP:"))]
        subjects = [s.replace("*", "any-label", 1) if s.startswith("*.") else s for s in subjects] or [None]
    errors: list[str] = []
    for subject in subjects:
        try:
            if purpose == "client":
                builder.build_client_verifier().verify(leaf, intermediates)
            elif subject is None:
                errors.append("the certificate has no DNS or IP name to verify a server against")
            else:
                builder.build_server_verifier(_subject_for(subject)).verify(leaf, intermediates)
        except Exception as exc:  # cryptography's VerificationError, one per failed path
            errors.append(str(exc))
    if not errors:
        result.reasons = _leaf_key_usage_problems(leaf, purpose)
        result.ok = not result.reasons
        return result
    reasons = explain_failure(leaf, intermediates, roots, host=host, purpose=purpose, now=now)
    # The verifier is the judge; when our checks find nothing, show its own words.
    result.reasons = reasons or [f"the verifier refused the chain: {errors[0]}"]
    return result


def raise_for(result: VerifyResult) -> None:
    """Raise :class:`VerificationError` (exit 5) when ``result`` failed."""
    if result.ok:
        return
    what = f"for {result.host!r}" if result.host else f"as a {result.purpose}"
    raise VerificationError(
        f"{result.subject} does not verify {what}: {result.reasons[0]}",
        hint="see the reasons above" if len(result.reasons) > 1 else None,
        reasons=result.reasons,
    )


__all__ = ["VerifyResult", "explain_failure", "host_matches", "raise_for", "verify_chain"]
