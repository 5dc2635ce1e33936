"""Keys and certificates with ``cryptography``: the CA, leaf certificates, CSRs, PKCS#12.

Nothing here touches the disk (that is :mod:`tlskit.store`). Every certificate is
built by :func:`_base_builder`, which holds what a CA and a leaf share: a random
positive serial of at most 20 octets, explicit aware validity, and a subject key
identifier.
"""

from __future__ import annotations

import datetime as dt
import enum
import getpass
import ipaddress
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tlskit.errors import InvalidNameError, PassphraseError, PKIError
from tlskit.names import Identity, NameKind, classify_constraint, classify_name

PrivateKey = Union[ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey]

CA_DAYS = 3650
# Apple platforms reject TLS server certificates valid for more than 825 days,
# even under a user-installed root (support.apple.com/HT210176).
LEAF_DAYS = 825
MAX_LEAF_DAYS = 825
# Backdate a little so a peer whose clock lags (a VM, a container) accepts a fresh certificate.
BACKDATE = dt.timedelta(minutes=5)
_CN_MAX = 64  # ub-common-name, RFC 5280 Appendix A


class KeyType(str, enum.Enum):
    ECDSA_P256 = "ecdsa-p256"
    ECDSA_P384 = "ecdsa-p384"
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"
    ED25519 = "ed25519"

    @property
    def is_rsa(self) -> bool:
        return self.value.startswith("rsa")


KEY_TYPES = [k.value for k in KeyType]


def generate_key(key_type: KeyType | str = KeyType.ECDSA_P256) -> PrivateKey:
    """Generate a new private key of ``key_type``."""
    kt = KeyType(key_type)
    if kt is KeyType.ECDSA_P256:
        return ec.generate_private_key(ec.SECP256R1())
    if kt is KeyType.ECDSA_P384:
        return ec.generate_private_key(ec.SECP384R1())
    if kt is KeyType.ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=int(kt.value.split("-")[1]))


def key_type_of(key) -> str:
    """A short description of a public or private key: ``ecdsa-p256``, ``rsa-2048``, ``ed25519``."""
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384", "secp521r1": "ecdsa-p521"}.get(
            key.curve.name, f"ecdsa-{key.curve.name}"
        )
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return f"rsa-{key.key_size}"
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "ed25519"
    return type(key).__name__


def _hash_for(key: PrivateKey) -> hashes.HashAlgorithm | None:
    """The signature hash that matches the signing key's strength (Ed25519 takes none)."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


@dataclass
class CA:
    """A certificate authority: its certificate and private key."""

    cert: x509.Certificate
    key: PrivateKey

    @property
    def permitted(self) -> list[str]:
        """The permitted subtrees of its name constraints, as ``DNS:x`` / ``IP:net`` strings."""
        try:
            nc = self.cert.extensions.get_extension_for_class(x509.NameConstraints).value
        except x509.ExtensionNotFound:
            return []
        return [general_name_str(g) for g in nc.permitted_subtrees or []]


@dataclass
class IssuedCert:
    """A freshly issued leaf: ``key`` is None when it was signed from an external CSR."""

    cert: x509.Certificate
    key: PrivateKey | None
    ca_cert: x509.Certificate
    names: list[Identity] = field(default_factory=list)

    @property
    def chain(self) -> list[x509.Certificate]:
        return [self.cert, self.ca_cert]


def default_ca_name() -> str:
    """Like mkcert: name the user and the host, so a trust-store entry says whose CA it is."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "user"
    try:
        host = os.uname().nodename  # what socket.gethostname() returns, without importing socket
    except AttributeError:  # Windows
        import socket

        host = socket.gethostname()
    name = f"tlskit CA {user}@{host or 'localhost'}"
    return name[:_CN_MAX]


def _now(now: dt.datetime | None) -> dt.datetime:
    now = now or dt.datetime.now(dt.timezone.utc)
    if now.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return now


def _base_builder(
    subject: x509.Name, issuer: x509.Name, public_key, not_before: dt.datetime, days: int
) -> x509.CertificateBuilder:
    if days < 1:
        raise PKIError(f"--days must be at least 1 (got {days})")
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        # 159 random bits: positive and at most 20 octets (RFC 5280 §4.1.2.2, CA/B BR 7.1).
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        # The whole validity period is `days`, backdating included: RFC 5280 §4.1.2.5 counts
        # notBefore through notAfter inclusive, and Apple refuses a leaf whose period exceeds
        # 825 days (testssl rated the old "825 days + 5 min" MEDIUM).
        .not_valid_after(not_before + dt.timedelta(days=days) - dt.timedelta(seconds=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _constraint_subtree(ident: Identity) -> x509.GeneralName:
    if ident.kind is NameKind.NETWORK:
        return x509.IPAddress(ipaddress.ip_network(ident.value))
    if ident.kind is NameKind.DNS:
        return x509.DNSName(ident.value)
    if ident.kind is NameKind.EMAIL:
        return x509.RFC822Name(ident.value)
    raise InvalidNameError(
        f"{ident.given!r} cannot be a name constraint",
        hint="use a DNS suffix (localhost, .test), an IP range (127.0.0.0/8) or an email",
    )


def create_ca(
    name: str | None = None,
    key_type: KeyType | str = KeyType.ECDSA_P256,
    days: int = CA_DAYS,
    permit: Iterable[str] = (),
    now: dt.datetime | None = None,
    key: PrivateKey | None = None,
) -> CA:
    """Create a self-signed root CA (RFC 5280 profile).

    Args:
        name: the CN; defaults to ``tlskit CA user@host``.
        key_type: one of :class:`KeyType`.
        days: validity in days.
        permit: DNS suffixes and IP ranges for X.509 name constraints. When only DNS
            names are permitted, every IP address is excluded (and vice versa), since
            a constraint only binds the name types it mentions.
        now: the issuing time (aware), for tests.
        key: an existing key to certify instead of generating one.

    Returns:
        The new :class:`CA`.

    Raises:
        InvalidNameError: a ``permit`` value is not a valid constraint.
        PKIError: the name or the validity is not acceptable.
    """
    cn = (name or default_ca_name()).strip()
    if not cn:
        raise PKIError("the CA name is empty", hint="pass --name 'My dev CA'")
    if len(cn) > _CN_MAX:
        raise PKIError(f"the CA name is {len(cn)} characters long; X.509 allows 64", hint="pass a shorter --name")
    constraints = [classify_constraint(p) for p in permit]
    key = key or generate_key(key_type)
    not_before = _now(now) - BACKDATE
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tlskit development CA"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )
    builder = (
        _base_builder(subject, subject, key.public_key(), not_before, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
    )
    if constraints:
        permitted = [_constraint_subtree(c) for c in constraints]
        kinds = {c.kind for c in constraints}
        excluded: list[x509.GeneralName] = []
        if NameKind.NETWORK not in kinds:
            # Without this, a CA limited to "localhost" could still sign for any IP address.
            excluded += [
                x509.IPAddress(ipaddress.ip_network("0.0.0.0/0")),
                x509.IPAddress(ipaddress.ip_network("::/0")),
            ]
        if NameKind.DNS not in kinds:
            # An empty DNS constraint matches every DNS name: exclude them all.
            excluded.append(x509.DNSName(""))
        # RFC 5280 §4.2.1.10: conforming CAs MUST mark this extension critical.
        builder = builder.add_extension(
            x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=excluded or None), critical=True
        )
    return CA(builder.sign(key, _hash_for(key)), key)


def _to_general_name(ident: Identity) -> x509.GeneralName:
    if ident.kind in (NameKind.DNS, NameKind.WILDCARD):
        return x509.DNSName(ident.value)
    if ident.kind is NameKind.IP:
        return x509.IPAddress(ipaddress.ip_address(ident.value))
    if ident.kind is NameKind.EMAIL:
        return x509.RFC822Name(ident.value)
    if ident.kind is NameKind.URI:
        return x509.UniformResourceIdentifier(ident.value)
    raise InvalidNameError(f"{ident.given!r} cannot be a certificate name")


def classify_names(names: Sequence[str]) -> list[Identity]:
    """Classify every name, drop exact duplicates, keep the order.

    Raises:
        InvalidNameError: no names, or one is invalid.
    """
    if not names:
        raise InvalidNameError("no names given", hint="example: tlskit cert issue localhost 127.0.0.1 ::1")
    out: list[Identity] = []
    seen: set[tuple[NameKind, str]] = set()
    for n in names:
        ident = classify_name(n)
        if (ident.kind, ident.value) not in seen:
            seen.add((ident.kind, ident.value))
            out.append(ident)
    return out


def _dns_within(name: str, base: str) -> bool:
    name = name[2:] if name.startswith("*.") else name
    return base == "" or name == base or name.endswith("." + base)


def check_constraints(ca_cert: x509.Certificate, idents: Sequence[Identity]) -> None:
    """Refuse, before signing, names that the CA's name constraints exclude.

    The verifiers (OpenSSL, browsers, ``cryptography``) would reject them later
    anyway; we refuse up front with the reason.

    Raises:
        InvalidNameError: a name is outside the constraints.
    """
    try:
        nc = ca_cert.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return
    permitted = list(nc.permitted_subtrees or [])
    excluded = list(nc.excluded_subtrees or [])

    def matches(ident: Identity, sub: x509.GeneralName) -> bool | None:
        """True/False when ``sub`` is of the identity's type, None otherwise."""
        if ident.kind in (NameKind.DNS, NameKind.WILDCARD) and isinstance(sub, x509.DNSName):
            return _dns_within(ident.value, sub.value.lstrip("."))
        if ident.kind is NameKind.IP and isinstance(sub, x509.IPAddress):
            addr = ipaddress.ip_address(ident.value)
            return addr.version == sub.value.version and addr in sub.value
        if ident.kind is NameKind.EMAIL and isinstance(sub, x509.RFC822Name):
            base = sub.value
            if "@" in base:
                return ident.value == base
            return _dns_within(ident.value.rpartition("@")[2], base.lstrip("."))
        if ident.kind is NameKind.URI and isinstance(sub, x509.UniformResourceIdentifier):
            host = x509_uri_host(ident.value)
            return _dns_within(host, sub.value.lstrip("."))
        return None

    allowed = ", ".join(general_name_str(p) for p in permitted) or "none"
    for ident in idents:
        if any(matches(ident, sub) for sub in excluded):
            raise InvalidNameError(
                f"{ident.given!r} is outside this CA's name constraints (permitted: {allowed})",
                hint="issue it from another CA, or create a CA with a wider --permit",
            )
        results = [matches(ident, sub) for sub in permitted]
        typed = [r for r in results if r is not None]
        if typed and not any(typed):
            raise InvalidNameError(
                f"{ident.given!r} is outside this CA's name constraints (permitted: {allowed})",
                hint="issue it from another CA, or create a CA with a wider --permit",
            )


def x509_uri_host(uri: str) -> str:
    from urllib.parse import urlsplit

    return (urlsplit(uri).hostname or "").lower()


def _leaf_subject(ca_cert: x509.Certificate, idents: Sequence[Identity], server: bool) -> x509.Name:
    """The leaf's subject: CN = the first name, or an empty subject where a CN would do harm.

    Verifiers still read the CN as a host name when a certificate has no DNS
    SAN, and hold it to the CA's DNS name constraints: OpenSSL when the CN looks
    like a host name, as "127.0.0.1" does (``NAME_CONSTRAINTS_check_CN``), GnuTLS
    for any CN of a serverAuth certificate. Under a constrained CA such a CN
    ("127.0.0.1", "::1", "spiffe://…") fails a permitted DNS subtree or the
    excluded ``DNS:""``, so it is left out. A name longer than ub-common-name
    (64) is left out too rather than cut into a name the certificate is not for.
    RFC 5280 §4.2.1.6 allows the empty subject when the SAN is critical.
    """
    first = idents[0]
    has_dns = any(i.kind in (NameKind.DNS, NameKind.WILDCARD) for i in idents)
    try:
        ca_cert.extensions.get_extension_for_class(x509.NameConstraints)
        constrained = True
    except x509.ExtensionNotFound:
        constrained = False
    cn_read_as_dns = constrained and not has_dns and (server or first.kind is NameKind.IP)
    if cn_read_as_dns or len(first.value) > _CN_MAX:
        return x509.Name([])
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, first.value)])


def _check_csr_key(public_key) -> None:
    """Refuse CSR keys that verifiers reject or tlskit cannot describe."""
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < 2048:
            raise PKIError(
                f"the CSR's key is RSA-{public_key.key_size}; verifiers refuse RSA keys under 2048 bits",
                hint="generate the CSR with a 2048-bit (or larger) RSA key, or an ECDSA P-256 key",
            )
        return
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in ("secp256r1", "secp384r1", "secp521r1"):
            raise PKIError(
                f"the CSR's key is on the curve {public_key.curve.name}; TLS verifiers accept P-256, P-384 and P-521",
                hint="generate the CSR with an ECDSA P-256 key",
            )
        return
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return
    raise PKIError(
        f"the CSR's key type ({type(public_key).__name__}) cannot be used for TLS certificates",
        hint="generate the CSR with an ECDSA P-256, RSA or Ed25519 key",
    )


def _leaf_key_usage(public_key) -> x509.KeyUsage:
    # keyEncipherment only for RSA (RSA key transport in TLS 1.2); never for EC or Ed25519 keys.
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def issue_cert(
    ca: CA,
    names: Sequence[str],
    *,
    key_type: KeyType | str = KeyType.ECDSA_P256,
    days: int = LEAF_DAYS,
    server: bool = True,
    client: bool = False,
    csr: x509.CertificateSigningRequest | None = None,
    not_before: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> IssuedCert:
    """Issue a leaf certificate for ``names``, signed by ``ca``.

    Args:
        ca: the signing CA.
        names: DNS names, wildcards, IPs, emails and URIs; the first becomes the CN
            (see :func:`_leaf_subject` for when the subject stays empty).
        key_type: the new key's type (ignored with ``csr``).
        days: validity in days.
        server: include EKU serverAuth.
        client: include EKU clientAuth (for mTLS).
        csr: sign this CSR's public key instead of generating a key.
        not_before: the start of validity (aware), for tests of expired certificates.
        now: the issuing time (aware), for tests.

    Returns:
        The :class:`IssuedCert`; its ``key`` is None when ``csr`` was given.

    Raises:
        InvalidNameError: a name is invalid or outside the CA's constraints.
        PKIError: no profile, bad CSR (signature, or a key verifiers refuse), bad validity.
    """
    idents = classify_names(names)
    check_constraints(ca.cert, idents)
    if not (server or client):
        raise PKIError("a certificate needs a purpose", hint="pass --server, --client or both")
    if csr is not None:
        if not csr.is_signature_valid:
            raise PKIError("the CSR's signature is not valid", hint="generate the CSR again")
        public_key = csr.public_key()
        _check_csr_key(public_key)
        key = None
    else:
        key = generate_key(key_type)
        public_key = key.public_key()
    start = not_before or (_now(now) - BACKDATE)
    eku = []
    if server:
        eku.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        eku.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    subject = _leaf_subject(ca.cert, idents, server)
    ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        _base_builder(subject, ca.cert.subject, public_key, start, days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(public_key), critical=True)
        .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        # RFC 5280 §4.2.1.6: the SAN MUST be critical when the subject is empty.
        .add_extension(
            x509.SubjectAlternativeName([_to_general_name(i) for i in idents]), critical=len(subject) == 0
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    )
    cert = builder.sign(ca.key, _hash_for(ca.key))
    return IssuedCert(cert, key, ca.cert, idents)


def load_csr(data: bytes) -> tuple[x509.CertificateSigningRequest, list[str]]:
    """Parse a PEM or DER CSR and return it with the names it asks for (SANs, else the CN).

    Raises:
        PKIError: the data is not a CSR.
        InvalidNameError: the CSR asks for a name of a type tlskit does not certify (a DirectoryName …).
    """
    try:
        csr = x509.load_pem_x509_csr(data) if b"-----BEGIN" in data else x509.load_der_x509_csr(data)
    except ValueError as exc:
        raise PKIError("the file is not a certificate signing request (PEM or DER)") from exc
    names: list[str] = []
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = []
    for g in san:
        if not isinstance(g, (x509.DNSName, x509.IPAddress, x509.RFC822Name, x509.UniformResourceIdentifier)):
            raise InvalidNameError(
                f"the CSR asks for a {type(g).__name__} name, which tlskit does not certify",
                hint="put DNS names, IP addresses, emails or URIs in the CSR's subjectAltName",
            )
        names.append(str(g.value))
    if not names:
        names = [str(a.value) for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return csr, names


# --- serialisation ---------------------------------------------------------


def cert_to_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_to_pem(key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    """PKCS#8 PEM, encrypted with the library's best available scheme when a passphrase is given."""
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def key_matches_cert(key: PrivateKey, cert: x509.Certificate) -> bool:
    """Whether ``key`` is the private half of ``cert``'s public key."""
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki)


def is_encrypted_pem(data: bytes) -> bool:
    return b"ENCRYPTED" in data.split(b"\n", 1)[0] or b"Proc-Type: 4,ENCRYPTED" in data


def load_key(data: bytes, passphrase: bytes | None = None, *, what: str = "the key") -> PrivateKey:
    """Load a PEM private key.

    Raises:
        PassphraseError: encrypted and no passphrase, or the passphrase is wrong.
        PKIError: not a key.
    """
    if is_encrypted_pem(data) and not passphrase:
        raise PassphraseError(
            f"{what} is encrypted",
            hint="set TLSKIT_CA_PASSPHRASE or pass --passphrase-file FILE",
        )
    try:
        key = serialization.load_pem_private_key(data, password=passphrase if is_encrypted_pem(data) else None)
    except ValueError as exc:
        if is_encrypted_pem(data):
            raise PassphraseError(f"wrong passphrase for {what}", hint="check TLSKIT_CA_PASSPHRASE or --passphrase-file") from exc
        raise PKIError(f"{what} is not a PEM private key") from exc
    except TypeError as exc:
        raise PKIError(f"{what} could not be read: {exc}") from exc
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
        raise PKIError(f"{what} has an unsupported type ({type(key).__name__})")
    return key


def load_certs(data: bytes, *, what: str = "the file") -> list[x509.Certificate]:
    """Every certificate in a PEM bundle, a DER certificate, or a PKCS#12 file without password.

    Raises:
        PKIError: no certificate could be read.
    """
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise PKIError(f"{what} does not contain a certificate (PEM or DER)") from exc


def load_pkcs12(data: bytes, password: bytes | None) -> tuple[PrivateKey | None, list[x509.Certificate]]:
    """Key and certificates of a PKCS#12 bundle, leaf first.

    Raises:
        PassphraseError: the password is missing or wrong.
    """
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, password)
    except ValueError as exc:
        raise PassphraseError(
            "cannot open the PKCS#12 file (wrong or missing password?)", hint="pass --p12-password-file FILE"
        ) from exc
    certs = ([cert] if cert else []) + list(extra)
    return key, certs


def to_pkcs12(issued: IssuedCert, password: bytes, friendly_name: str) -> bytes:
    """A PKCS#12 bundle encrypted with PBES2 / AES-256-CBC and an HMAC-SHA256 MAC.

    OpenSSL 3 opens it without ``-legacy`` and Java's keytool reads it; mkcert's
    RC2-40 bundles need the legacy provider.
    """
    if issued.key is None:
        raise PKIError("no private key to put in a PKCS#12 bundle (the certificate was signed from a CSR)")
    if not password:
        raise PKIError("a PKCS#12 bundle needs a password", hint="pass --p12-password-file FILE")
    enc = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(100_000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password)
    )
    return pkcs12.serialize_key_and_certificates(
        friendly_name.encode(), issued.key, issued.cert, [issued.ca_cert], enc
    )


# --- description (shared by cert show, ca show, the handshake report) ---------


def general_name_str(g: x509.GeneralName) -> str:
    if isinstance(g, x509.DNSName):
        return f"DNS:{g.value}"
    if isinstance(g, x509.IPAddress):
        return f"IP:{g.value}"
    if isinstance(g, x509.RFC822Name):
        return f"email:{g.value}"
    if isinstance(g, x509.UniformResourceIdentifier):
        return f"URI:{g.value}"
    return f"{type(g).__name__}:{g.value}"


def san_identities(cert: x509.Certificate) -> list[Identity]:
    """The certificate's DNS, IP, email and URI SANs as :class:`Identity` values (other types are skipped)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    out = []
    for g in san:
        if isinstance(g, x509.DNSName):
            kind = NameKind.WILDCARD if g.value.startswith("*.") else NameKind.DNS
            out.append(Identity(kind, g.value.lower(), g.value))
        elif isinstance(g, x509.IPAddress) and not isinstance(g.value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            out.append(Identity(NameKind.IP, str(g.value), str(g.value)))
        elif isinstance(g, x509.RFC822Name):
            out.append(Identity(NameKind.EMAIL, g.value, g.value))
        elif isinstance(g, x509.UniformResourceIdentifier):
            out.append(Identity(NameKind.URI, g.value, g.value))
    return out


def fingerprint(cert: x509.Certificate, algorithm: hashes.HashAlgorithm | None = None) -> str:
    """Colon-separated upper-case hex, like ``openssl x509 -fingerprint``."""
    return cert.fingerprint(algorithm or hashes.SHA256()).hex(":").upper()


def sans_of(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [general_name_str(g) for g in san]


_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
}


def eku_of(cert: x509.Certificate) -> list[str] | None:
    """Extended key usages by name, or None when the extension is absent (any purpose)."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None
    return [_EKU_NAMES.get(o, o.dotted_string) for o in eku]


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _days_left(not_after: dt.datetime, now: dt.datetime) -> int:
    """Whole days until expiry, rounded (a fresh 825-day certificate shows 825); negative once expired."""
    seconds = (not_after - now).total_seconds()
    return round(seconds / 86400) if seconds >= 0 else -int(-seconds // 86400) - 1


def describe_cert(cert: x509.Certificate, now: dt.datetime | None = None) -> dict:
    """The facts a person or a script wants about a certificate, as JSON-ready values."""
    now = _now(now)
    pub = cert.public_key()
    kt = key_type_of(pub)
    bits = getattr(pub, "key_size", None) or (256 if kt == "ed25519" else None)
    not_after = cert.not_valid_after_utc
    not_before = cert.not_valid_before_utc
    if now < not_before:
        status = "not yet valid"
    elif now > not_after:
        status = "expired"
    else:
        status = "valid"
    info = {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": format(cert.serial_number, "x"),
        "sans": sans_of(cert),
        "not_before": not_before.isoformat(),
        "not_after": not_after.isoformat(),
        "days_left": _days_left(not_after, now),
        "status": status,
        "key_type": kt,
        "key_bits": bits,
        "signature_algorithm": cert.signature_algorithm_oid._name,
        "is_ca": is_ca(cert),
        "eku": eku_of(cert),
        "sha256": fingerprint(cert),
        "sha1": fingerprint(cert, hashes.SHA1()),  # noqa: S303 - shown for Windows' certmgr, not for security
        "self_signed": cert.issuer == cert.subject,
    }
    try:
        nc = cert.extensions.get_extension_for_class(x509.NameConstraints).value
        info["permitted"] = [general_name_str(g) for g in nc.permitted_subtrees or []]
        info["excluded"] = [general_name_str(g) for g in nc.excluded_subtrees or []]
    except x509.ExtensionNotFound:
        pass
    return info
