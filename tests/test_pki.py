"""pki: the CA and leaf profiles extension by extension, name constraints, CSRs, PKCS#12."""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tlskit import pki
from tlskit.errors import InvalidNameError, PassphraseError, PKIError

NAMES = ["localhost", "127.0.0.1", "::1", "*.dev.test", "user@dev.test"]
EXPECTED_SAN = [
    x509.DNSName("localhost"),
    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    x509.IPAddress(ipaddress.ip_address("::1")),
    x509.DNSName("*.dev.test"),
    x509.RFC822Name("user@dev.test"),
]
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module", params=pki.KEY_TYPES)
def issued(request: pytest.FixtureRequest) -> pki.IssuedCert:
    """A fresh CA and a server leaf for NAMES, of one key type, made once per module (RSA-4096 is slow)."""
    ca = pki.create_ca("tlskit test CA", key_type=request.param, now=NOW)
    return pki.issue_cert(ca, NAMES, key_type=request.param, now=NOW)


@pytest.fixture(scope="module")
def ca() -> pki.CA:
    return pki.create_ca("tlskit test CA")


def ext(cert: x509.Certificate, cls: type) -> x509.Extension:
    return cert.extensions.get_extension_for_class(cls)


def key_usage(**on: bool) -> x509.KeyUsage:
    flags = dict.fromkeys(
        ["digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
         "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"],
        False,
    )
    return x509.KeyUsage(**{**flags, **on})


def serial_octets(cert: x509.Certificate) -> int:
    """Length of the DER INTEGER contents: a sign octet is added when the top bit is set."""
    return cert.serial_number.bit_length() // 8 + 1


# --- the CA ------------------------------------------------------------------


def test_ca_basic_constraints_say_ca_and_are_critical(issued: pki.IssuedCert) -> None:
    bc = ext(issued.ca_cert, x509.BasicConstraints)
    assert bc.critical is True
    assert bc.value.ca is True


def test_ca_key_usage_is_cert_and_crl_signing_only_and_critical(issued: pki.IssuedCert) -> None:
    ku = ext(issued.ca_cert, x509.KeyUsage)
    assert ku.critical is True
    assert ku.value == key_usage(key_cert_sign=True, crl_sign=True)


def test_ca_has_key_identifiers_and_no_eku(issued: pki.IssuedCert) -> None:
    ca = issued.ca_cert
    ski = ext(ca, x509.SubjectKeyIdentifier)
    aki = ext(ca, x509.AuthorityKeyIdentifier)
    assert ski.critical is False and aki.critical is False
    assert ski.value == x509.SubjectKeyIdentifier.from_public_key(ca.public_key())
    assert aki.value.key_identifier == ski.value.digest
    with pytest.raises(x509.ExtensionNotFound):
        ext(ca, x509.ExtendedKeyUsage)
    assert {e.oid for e in ca.extensions} == {
        x509.SubjectKeyIdentifier.oid,
        x509.BasicConstraints.oid,
        x509.KeyUsage.oid,
        x509.AuthorityKeyIdentifier.oid,
    }


def test_ca_is_a_self_signed_root_with_a_cn(issued: pki.IssuedCert) -> None:
    ca = issued.ca_cert
    assert ca.subject == ca.issuer
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "tlskit test CA"
    ca.verify_directly_issued_by(ca)
    assert ca.not_valid_before_utc == NOW - pki.BACKDATE
    # The whole period (notBefore through notAfter inclusive, RFC 5280 §4.1.2.5) is CA_DAYS.
    assert ca.not_valid_after_utc - ca.not_valid_before_utc + dt.timedelta(seconds=1) == dt.timedelta(days=pki.CA_DAYS)


def test_serials_are_positive_random_and_at_most_20_octets(issued: pki.IssuedCert) -> None:
    for cert in (issued.ca_cert, issued.cert):
        assert cert.serial_number > 0
        assert serial_octets(cert) <= 20
    assert issued.cert.serial_number != issued.ca_cert.serial_number


def test_ca_name_must_fit_a_cn() -> None:
    with pytest.raises(PKIError, match="the CA name is 65 characters long; X.509 allows 64"):
        pki.create_ca("x" * 65)
    with pytest.raises(PKIError, match="the CA name is empty"):
        pki.create_ca("  ")


def test_default_ca_name_names_user_and_host() -> None:
    name = pki.default_ca_name()
    assert name.startswith("tlskit CA ") and "@" in name and len(name) <= 64


# --- the leaf ----------------------------------------------------------------


def test_leaf_basic_constraints_are_not_ca_and_critical(issued: pki.IssuedCert) -> None:
    bc = ext(issued.cert, x509.BasicConstraints)
    assert bc.critical is True
    assert bc.value == x509.BasicConstraints(ca=False, path_length=None)


def test_leaf_key_usage_is_digital_signature_plus_key_encipherment_only_for_rsa(issued: pki.IssuedCert) -> None:
    ku = ext(issued.cert, x509.KeyUsage)
    assert ku.critical is True
    is_rsa = isinstance(issued.cert.public_key(), rsa.RSAPublicKey)
    assert ku.value == key_usage(digital_signature=True, key_encipherment=is_rsa)
    if not is_rsa:  # an EC or Ed25519 key cannot encipher: keyEncipherment would be a lie
        assert ku.value.key_encipherment is False


def test_leaf_san_holds_exactly_the_names_asked_for(issued: pki.IssuedCert) -> None:
    san = ext(issued.cert, x509.SubjectAlternativeName)
    assert san.critical is False  # the subject has a CN
    assert list(san.value) == EXPECTED_SAN
    assert issued.cert.subject == x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])


def test_leaf_eku_is_server_auth_by_default(issued: pki.IssuedCert) -> None:
    eku = ext(issued.cert, x509.ExtendedKeyUsage)
    assert eku.critical is False
    assert list(eku.value) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_leaf_key_identifiers_chain_to_the_ca(issued: pki.IssuedCert) -> None:
    ski = ext(issued.cert, x509.SubjectKeyIdentifier)
    aki = ext(issued.cert, x509.AuthorityKeyIdentifier)
    assert ski.critical is False and aki.critical is False
    assert ski.value == x509.SubjectKeyIdentifier.from_public_key(issued.cert.public_key())
    ca_ski = ext(issued.ca_cert, x509.SubjectKeyIdentifier).value
    assert aki.value == x509.AuthorityKeyIdentifier(ca_ski.digest, None, None)
    assert {e.oid for e in issued.cert.extensions} == {
        x509.SubjectKeyIdentifier.oid,
        x509.BasicConstraints.oid,
        x509.KeyUsage.oid,
        x509.ExtendedKeyUsage.oid,
        x509.SubjectAlternativeName.oid,
        x509.AuthorityKeyIdentifier.oid,
    }


def test_leaf_is_signed_by_the_ca_with_a_matching_hash(issued: pki.IssuedCert) -> None:
    issued.cert.verify_directly_issued_by(issued.ca_cert)
    ca_key = issued.ca_cert.public_key()
    algorithm = issued.cert.signature_hash_algorithm
    if isinstance(ca_key, ed25519.Ed25519PublicKey):
        assert algorithm is None
    elif isinstance(ca_key, ec.EllipticCurvePublicKey) and ca_key.curve.key_size == 384:
        assert isinstance(algorithm, hashes.SHA384)
    else:
        assert isinstance(algorithm, hashes.SHA256)


def test_leaf_key_is_of_the_type_asked_for_and_matches(issued: pki.IssuedCert) -> None:
    assert pki.key_type_of(issued.cert.public_key()) == pki.key_type_of(issued.ca_cert.public_key())
    assert issued.key is not None and pki.key_matches_cert(issued.key, issued.cert)
    assert not pki.key_matches_cert(issued.key, issued.ca_cert)


def test_leaf_validity_is_explicit_and_825_days_by_default(issued: pki.IssuedCert) -> None:
    cert = issued.cert
    assert cert.not_valid_before_utc == NOW - pki.BACKDATE
    # 825 days in all, backdating included: Apple counts notBefore to notAfter (testssl too).
    assert cert.not_valid_after_utc - cert.not_valid_before_utc + dt.timedelta(seconds=1) == dt.timedelta(days=825)
    assert pki.describe_cert(cert, NOW)["days_left"] == 825


def test_each_leaf_gets_a_new_random_serial(ca: pki.CA) -> None:
    serials = {pki.issue_cert(ca, ["localhost"]).cert.serial_number for _ in range(5)}
    assert len(serials) == 5


@pytest.mark.parametrize(
    ("server", "client", "ekus"),
    [
        (True, False, [ExtendedKeyUsageOID.SERVER_AUTH]),
        (False, True, [ExtendedKeyUsageOID.CLIENT_AUTH]),
        (True, True, [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
    ],
)
def test_profiles_set_the_eku(ca: pki.CA, server: bool, client: bool, ekus: list) -> None:
    leaf = pki.issue_cert(ca, ["alice"], server=server, client=client)
    assert list(ext(leaf.cert, x509.ExtendedKeyUsage).value) == ekus
    # Client certificates keep the name in the CN: PostgreSQL and MQTT brokers map users by CN.
    assert leaf.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"


def test_a_certificate_without_purpose_is_refused(ca: pki.CA) -> None:
    with pytest.raises(PKIError, match="a certificate needs a purpose"):
        pki.issue_cert(ca, ["localhost"], server=False, client=False)


def test_idn_goes_in_the_san_as_its_alabel(ca: pki.CA) -> None:
    leaf = pki.issue_cert(ca, ["bücher.test", "faß.de"])
    assert list(ext(leaf.cert, x509.SubjectAlternativeName).value) == [
        x509.DNSName("xn--bcher-kva.test"),
        x509.DNSName("xn--fa-hia.de"),
    ]


def test_duplicate_names_are_certified_once(ca: pki.CA) -> None:
    leaf = pki.issue_cert(ca, ["localhost", "LOCALHOST", "127.0.0.1", "127.0.0.1"])
    assert pki.sans_of(leaf.cert) == ["DNS:localhost", "IP:127.0.0.1"]


def test_a_bad_name_is_refused_before_any_key_is_made(ca: pki.CA) -> None:
    with pytest.raises(InvalidNameError, match="'exa mple.com' is not a valid DNS name: spaces are not allowed"):
        pki.issue_cert(ca, ["localhost", "exa mple.com"])
    with pytest.raises(InvalidNameError, match="no names given"):
        pki.issue_cert(ca, [])


def test_an_ip_only_leaf_keeps_its_cn_under_an_unconstrained_ca(ca: pki.CA) -> None:
    leaf = pki.issue_cert(ca, ["127.0.0.1"])
    assert leaf.cert.subject.rfc4514_string() == "CN=127.0.0.1"
    assert ext(leaf.cert, x509.SubjectAlternativeName).critical is False


def test_a_name_longer_than_a_cn_leaves_the_subject_empty_not_truncated(ca: pki.CA) -> None:
    long = ("a" * 60 + ".") * 2 + "test"
    leaf = pki.issue_cert(ca, [long])
    assert len(leaf.cert.subject) == 0
    san = ext(leaf.cert, x509.SubjectAlternativeName)
    assert san.critical is True  # RFC 5280 §4.2.1.6: an empty subject needs a critical SAN
    assert list(san.value) == [x509.DNSName(long)]


@pytest.mark.parametrize("days", [0, -1])
def test_validity_must_be_at_least_a_day(ca: pki.CA, days: int) -> None:
    with pytest.raises(PKIError, match=f"--days must be at least 1 \\(got {days}\\)"):
        pki.issue_cert(ca, ["localhost"], days=days)


def test_naive_datetimes_are_refused(ca: pki.CA) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        pki.issue_cert(ca, ["localhost"], now=dt.datetime(2026, 1, 1))


# --- name constraints --------------------------------------------------------


@pytest.fixture(scope="module")
def constrained() -> pki.CA:
    return pki.create_ca("constrained CA", permit=["localhost", ".test", "127.0.0.0/8", "::1"])


def test_constrained_ca_carries_critical_name_constraints(constrained: pki.CA) -> None:
    nc = ext(constrained.cert, x509.NameConstraints)
    assert nc.critical is True  # RFC 5280 §4.2.1.10: MUST be critical
    assert list(nc.value.permitted_subtrees) == [
        x509.DNSName("localhost"),
        x509.DNSName("test"),
        x509.IPAddress(ipaddress.ip_network("127.0.0.0/8")),
        x509.IPAddress(ipaddress.ip_network("::1/128")),
    ]
    assert nc.value.excluded_subtrees is None  # both types are permitted, nothing else to exclude
    assert constrained.permitted == ["DNS:localhost", "DNS:test", "IP:127.0.0.0/8", "IP:::1/128"]


def test_a_dns_only_ca_excludes_every_ip_address() -> None:
    ca = pki.create_ca("dns CA", permit=["localhost", ".test"])
    nc = ext(ca.cert, x509.NameConstraints).value
    assert list(nc.excluded_subtrees) == [
        x509.IPAddress(ipaddress.ip_network("0.0.0.0/0")),
        x509.IPAddress(ipaddress.ip_network("::/0")),
    ]
    with pytest.raises(InvalidNameError, match="'127.0.0.1' is outside this CA's name constraints"):
        pki.issue_cert(ca, ["localhost", "127.0.0.1"])


def test_an_ip_only_ca_excludes_every_dns_name() -> None:
    ca = pki.create_ca("ip CA", permit=["127.0.0.0/8", "::1"])
    nc = ext(ca.cert, x509.NameConstraints).value
    assert list(nc.excluded_subtrees) == [x509.DNSName("")]
    with pytest.raises(InvalidNameError, match="'localhost' is outside this CA's name constraints"):
        pki.issue_cert(ca, ["127.0.0.1", "localhost"])


@pytest.mark.parametrize(
    "name",
    ["example.com", "evillocalhost", "localhost.example.com", "nottest", "*.example.com", "10.0.0.1", "::2", "128.0.0.1"],
)
def test_constrained_ca_refuses_names_outside_with_the_reason(constrained: pki.CA, name: str) -> None:
    with pytest.raises(InvalidNameError) as info:
        pki.issue_cert(constrained, ["localhost", name])
    assert info.value.message == (
        f"{name!r} is outside this CA's name constraints "
        "(permitted: DNS:localhost, DNS:test, IP:127.0.0.0/8, IP:::1/128)"
    )
    assert info.value.hint == "issue it from another CA, or create a CA with a wider --permit"


@pytest.mark.parametrize(
    "names",
    [["localhost"], ["app.localhost"], ["test"], ["a.b.test", "*.dev.test"], ["127.255.0.1", "::1"]],
)
def test_constrained_ca_issues_names_inside(constrained: pki.CA, names: list[str]) -> None:
    leaf = pki.issue_cert(constrained, names)
    assert [n.split(":", 1)[1] for n in pki.sans_of(leaf.cert)] == names


@pytest.mark.parametrize("names", [["127.0.0.1"], ["::1"], ["::1", "127.0.0.1"]])
def test_an_ip_only_leaf_under_a_constrained_ca_has_an_empty_subject(constrained: pki.CA, names: list[str]) -> None:
    # OpenSSL and GnuTLS check a CN against the DNS constraints when there is no DNS SAN;
    # tests/interop/test_pki_peers.py shows they reject CN=127.0.0.1 here.
    leaf = pki.issue_cert(constrained, names)
    assert len(leaf.cert.subject) == 0
    assert ext(leaf.cert, x509.SubjectAlternativeName).critical is True


def test_a_constrained_client_email_leaf_keeps_its_cn(constrained: pki.CA) -> None:
    leaf = pki.issue_cert(constrained, ["user@dev.test"], server=False, client=True)
    assert leaf.cert.subject.rfc4514_string() == "CN=user@dev.test"


@pytest.mark.parametrize(
    ("permit", "message"),
    [
        (["*.dev.test"], "'*.dev.test' is not a valid name constraint"),
        (["spiffe://dev.test"], "'spiffe://dev.test' cannot be a name constraint"),
        (["exa mple.test"], "'exa mple.test' is not a valid DNS name: spaces are not allowed"),
    ],
)
def test_bad_constraints_are_refused(permit: list[str], message: str) -> None:
    with pytest.raises(InvalidNameError, match=message.replace("*", r"\*").replace(".", r"\.")):
        pki.create_ca("x", permit=permit)


# --- CSRs ----------------------------------------------------------------------


def make_csr(key, names: list[x509.GeneralName] | None, cn: str = "app.test", *, extra=()) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    )
    if names is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    for extension, critical in extra:
        builder = builder.add_extension(extension, critical=critical)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def csr_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def test_csr_keeps_its_key_and_its_san_names(ca: pki.CA, csr_key) -> None:
    sans = [x509.DNSName("app.test"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("*.app.test")]
    csr, names = pki.load_csr(make_csr(csr_key, sans))
    assert names == ["app.test", "127.0.0.1", "*.app.test"]
    leaf = pki.issue_cert(ca, names, csr=csr)
    assert leaf.key is None
    assert pki.key_matches_cert(csr_key, leaf.cert)
    assert list(ext(leaf.cert, x509.SubjectAlternativeName).value) == sans
    leaf.cert.verify_directly_issued_by(ca.cert)


def test_csr_without_san_names_its_cn(ca: pki.CA, csr_key) -> None:
    csr, names = pki.load_csr(make_csr(csr_key, None, cn="db.test"))
    assert names == ["db.test"]
    leaf = pki.issue_cert(ca, names, csr=csr)
    assert pki.sans_of(leaf.cert) == ["DNS:db.test"]


def test_csr_der_is_read_too(ca: pki.CA, csr_key) -> None:
    pem = make_csr(csr_key, [x509.DNSName("app.test")])
    der = x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER)
    assert pki.load_csr(der)[1] == ["app.test"]


def test_csr_cannot_make_itself_a_ca(ca: pki.CA, csr_key) -> None:
    wants_ca = [(x509.BasicConstraints(ca=True, path_length=None), True)]
    csr, names = pki.load_csr(make_csr(csr_key, [x509.DNSName("app.test")], extra=wants_ca))
    leaf = pki.issue_cert(ca, names, csr=csr)
    assert ext(leaf.cert, x509.BasicConstraints).value.ca is False


def test_csr_with_an_invalid_name_is_refused(ca: pki.CA, csr_key) -> None:
    csr, names = pki.load_csr(make_csr(csr_key, [x509.DNSName("app.test"), x509.DNSName("exa_mple.test")]))
    with pytest.raises(InvalidNameError, match="'exa_mple.test' is not a valid DNS name: '_' is not allowed"):
        pki.issue_cert(ca, names, csr=csr)


def test_csr_with_a_name_of_another_type_is_refused(csr_key) -> None:
    dirname = x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
    with pytest.raises(InvalidNameError, match="the CSR asks for a DirectoryName name"):
        pki.load_csr(make_csr(csr_key, [x509.DNSName("app.test"), dirname]))


def test_csr_with_a_bad_signature_is_refused(ca: pki.CA, csr_key) -> None:
    der = bytearray(
        x509.load_pem_x509_csr(make_csr(csr_key, [x509.DNSName("app.test")])).public_bytes(serialization.Encoding.DER)
    )
    der[-1] ^= 0x01  # the last octet of the signature's s
    csr, names = pki.load_csr(bytes(der))
    with pytest.raises(PKIError, match="the CSR's signature is not valid"):
        pki.issue_cert(ca, names, csr=csr)


def test_csr_with_a_weak_rsa_key_is_refused(ca: pki.CA) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    csr, names = pki.load_csr(make_csr(weak, [x509.DNSName("app.test")]))
    with pytest.raises(PKIError, match="the CSR's key is RSA-1024; verifiers refuse RSA keys under 2048 bits"):
        pki.issue_cert(ca, names, csr=csr)


def test_csr_with_an_odd_curve_is_refused(ca: pki.CA) -> None:
    key = ec.generate_private_key(ec.SECP256K1())
    csr, names = pki.load_csr(make_csr(key, [x509.DNSName("app.test")]))
    with pytest.raises(PKIError, match="the CSR's key is on the curve secp256k1"):
        pki.issue_cert(ca, names, csr=csr)


def test_csr_with_an_ed25519_key_is_signed(ca: pki.CA) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    csr, names = pki.load_csr(make_csr(key, [x509.DNSName("app.test")]))
    leaf = pki.issue_cert(ca, names, csr=csr)
    assert pki.key_matches_cert(key, leaf.cert)
    assert ext(leaf.cert, x509.KeyUsage).value == key_usage(digital_signature=True)


def test_not_a_csr_is_refused() -> None:
    with pytest.raises(PKIError, match="the file is not a certificate signing request"):
        pki.load_csr(b"-----BEGIN CERTIFICATE REQUEST-----\nnonsense\n-----END CERTIFICATE REQUEST-----\n")


# --- PKCS#12 -------------------------------------------------------------------


def test_pkcs12_round_trips_with_its_password(ca: pki.CA) -> None:
    leaf = pki.issue_cert(ca, ["localhost"])
    data = pki.to_pkcs12(leaf, b"s3cret", "localhost")
    key, certs = pki.load_pkcs12(data, b"s3cret")
    assert key is not None and pki.key_matches_cert(key, leaf.cert)
    assert certs == [leaf.cert, ca.cert]
    bundle = serialization.pkcs12.load_pkcs12(data, b"s3cret")
    assert bundle.cert.friendly_name == b"localhost"


@pytest.mark.parametrize("password", [b"wrong", None])
def test_pkcs12_refuses_a_wrong_or_missing_password(ca: pki.CA, password: bytes | None) -> None:
    data = pki.to_pkcs12(pki.issue_cert(ca, ["localhost"]), b"s3cret", "localhost")
    with pytest.raises(PassphraseError, match="cannot open the PKCS#12 file"):
        pki.load_pkcs12(data, password)


def test_pkcs12_needs_a_key_and_a_password(ca: pki.CA, csr_key) -> None:
    csr, names = pki.load_csr(make_csr(csr_key, [x509.DNSName("app.test")]))
    with pytest.raises(PKIError, match="no private key to put in a PKCS#12 bundle"):
        pki.to_pkcs12(pki.issue_cert(ca, names, csr=csr), b"pw", "app.test")
    with pytest.raises(PKIError, match="a PKCS#12 bundle needs a password"):
        pki.to_pkcs12(pki.issue_cert(ca, ["localhost"]), b"", "localhost")
