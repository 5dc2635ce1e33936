"""verify: chains judged by cryptography's verifier (Ed25519 by our own checks), each failure explained."""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tlskit import pki
from tlskit.errors import VerificationError
from tlskit.verify import host_matches, raise_for, verify_chain

NAMES = ["localhost", "127.0.0.1", "::1", "*.dev.test", "user@dev.test"]
HOSTS = ["localhost", "127.0.0.1", "::1", "api.dev.test"]
SANS = "localhost, 127.0.0.1, ::1, *.dev.test"
FALLBACK = "signature, dates, issuer, name constraints, key usage and names (the Web-PKI policy forbids Ed25519)"
KEY_TYPES = ["ecdsa-p256", "ed25519"]  # the verifier's path, and the fallback path


@pytest.fixture(scope="module", params=KEY_TYPES)
def key_type(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def ca(key_type: str) -> pki.CA:
    return pki.create_ca("tlskit verify CA", key_type=key_type)


@pytest.fixture(scope="module")
def server(ca: pki.CA, key_type: str) -> pki.IssuedCert:
    return pki.issue_cert(ca, NAMES, key_type=key_type)


def expected_method(key_type: str) -> str:
    return FALLBACK if key_type == "ed25519" else "cryptography.x509.verification"


def build_cert(
    issuer: pki.CA | tuple[x509.Certificate, object],
    public_key,
    *,
    cn: str = "forged",
    sans: list[x509.GeneralName] | None = None,
    ca: bool = False,
    key_usage: x509.KeyUsage | None = None,
    eku: list | None = None,
) -> x509.Certificate:
    """A certificate built by hand, for what pki.py refuses to build: each one breaks one rule."""
    issuer_cert, issuer_key = (issuer.cert, issuer.key) if isinstance(issuer, pki.CA) else issuer
    now = dt.datetime.now(dt.timezone.utc)
    if key_usage is None:
        key_usage = x509.KeyUsage(
            digital_signature=not ca, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False,
        )
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(issuer_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(key_usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()), critical=False
        )
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(eku or [ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        ).add_extension(x509.SubjectAlternativeName(sans or [x509.DNSName("localhost")]), critical=False)
    algorithm = None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else pki._hash_for(issuer_key)
    return builder.sign(issuer_key, algorithm)


# --- success, and what it checks --------------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
def test_server_certificate_verifies_for_each_name(ca: pki.CA, server: pki.IssuedCert, key_type: str, host: str) -> None:
    result = verify_chain(server.chain, [ca.cert], host=host)
    assert result.ok, result.reasons
    assert result.reasons == []
    assert result.method == expected_method(key_type)


def test_server_certificate_verifies_for_all_its_names_at_once(ca: pki.CA, server: pki.IssuedCert) -> None:
    assert verify_chain(server.chain, [ca.cert]).ok
    assert verify_chain([server.cert], [ca.cert]).ok  # the CA need not be in the chain file


@pytest.mark.parametrize("host", ["other.test", "dev.test", "a.b.dev.test", "10.0.0.1", "::2", "localhost.example"])
def test_host_not_among_the_sans_is_explained(ca: pki.CA, server: pki.IssuedCert, host: str) -> None:
    result = verify_chain(server.chain, [ca.cert], host=host)
    assert not result.ok
    assert result.reasons == [f"{host!r} is not among the SANs {SANS}"]


def test_international_host_is_matched_as_its_alabel(ca: pki.CA, key_type: str) -> None:
    leaf = pki.issue_cert(ca, ["bücher.test"], key_type=key_type)
    assert verify_chain(leaf.chain, [ca.cert], host="Bücher.test").ok
    assert host_matches(leaf.cert, "bücher.test")
    result = verify_chain(leaf.chain, [ca.cert], host="bucher.test")
    assert result.reasons == ["'bucher.test' is not among the SANs xn--bcher-kva.test"]


def test_host_matches_follows_rfc6125_wildcards(server: pki.IssuedCert) -> None:
    assert host_matches(server.cert, "API.dev.test.")
    assert not host_matches(server.cert, "dev.test")  # '*' covers exactly one label
    assert not host_matches(server.cert, "a.b.dev.test")
    assert not host_matches(server.cert, "user@dev.test")  # an email is not a host


# --- profiles ------------------------------------------------------------------


def test_client_certificate_verifies_as_client_and_not_as_server(ca: pki.CA, key_type: str) -> None:
    leaf = pki.issue_cert(ca, ["alice"], key_type=key_type, client=True, server=False)
    assert verify_chain(leaf.chain, [ca.cert], purpose="client").ok
    result = verify_chain(leaf.chain, [ca.cert], purpose="server", host="alice")
    assert not result.ok
    assert result.reasons == [
        "wrong key usage for a server: its extended key usage is clientAuth "
        "(issue it without --client, or with --client --server)"
    ]


def test_server_certificate_does_not_verify_as_client(ca: pki.CA, server: pki.IssuedCert) -> None:
    result = verify_chain(server.chain, [ca.cert], purpose="client")
    assert result.reasons == ["wrong key usage for a client: its extended key usage is serverAuth (issue it with --client)"]


def test_client_and_server_certificate_verifies_for_both(ca: pki.CA, key_type: str) -> None:
    leaf = pki.issue_cert(ca, ["localhost"], key_type=key_type, client=True, server=True)
    assert verify_chain(leaf.chain, [ca.cert], purpose="client").ok
    assert verify_chain(leaf.chain, [ca.cert], purpose="server", host="localhost").ok


def test_leaf_without_digital_signature_is_explained(ca: pki.CA, key_type: str) -> None:
    key = pki.generate_key(key_type)
    no_sign = x509.KeyUsage(
        digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=True, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
    )
    cert = build_cert(ca, key.public_key(), key_usage=no_sign)
    result = verify_chain([cert], [ca.cert], host="localhost")
    assert not result.ok
    assert result.reasons == [
        "wrong key usage for a server: its key usage lacks digitalSignature, which TLS needs to sign the handshake"
    ]


def test_a_ca_certificate_is_not_a_server_certificate(ca: pki.CA) -> None:
    result = verify_chain([ca.cert], [ca.cert], host="localhost")
    assert not result.ok
    assert "it is a CA certificate, not a leaf certificate" in result.reasons


# --- dates -------------------------------------------------------------------------


def test_expired_certificate_names_the_date(key_type: str) -> None:
    ca = pki.create_ca("tlskit verify CA", key_type=key_type, now=dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc))
    start = dt.datetime(2024, 1, 10, 8, 30, tzinfo=dt.timezone.utc)
    leaf = pki.issue_cert(ca, ["localhost"], key_type=key_type, not_before=start, days=30)
    assert leaf.cert.not_valid_after_utc == dt.datetime(2024, 2, 9, 8, 29, 59, tzinfo=dt.timezone.utc)
    result = verify_chain(leaf.chain, [ca.cert], host="localhost")
    assert not result.ok
    assert result.reasons == ["the certificate expired on 2024-02-09 08:29 UTC"]
    # Its twin: the same certificate, judged on a day it was valid.
    assert verify_chain(leaf.chain, [ca.cert], host="localhost", now=start + dt.timedelta(days=1)).ok


def test_certificate_is_expired_when_judged_after_its_end(ca: pki.CA, server: pki.IssuedCert) -> None:
    later = server.cert.not_valid_after_utc + dt.timedelta(days=1)
    result = verify_chain(server.chain, [ca.cert], host="localhost", now=later)
    assert f"the certificate expired on {server.cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC" in result.reasons
    assert verify_chain(server.chain, [ca.cert], host="localhost", now=later - dt.timedelta(days=2)).ok


def test_not_yet_valid_certificate_names_the_date(ca: pki.CA, key_type: str) -> None:
    start = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0) + dt.timedelta(days=2)
    leaf = pki.issue_cert(ca, ["localhost"], key_type=key_type, not_before=start)
    result = verify_chain(leaf.chain, [ca.cert], host="localhost")
    assert not result.ok
    assert result.reasons == [f"the certificate is not valid before {start:%Y-%m-%d %H:%M} UTC"]


def test_expired_ca_is_named(key_type: str) -> None:
    past = dt.datetime(2020, 3, 1, tzinfo=dt.timezone.utc)
    old = pki.create_ca("old CA", key_type=key_type, days=30, now=past)
    leaf = pki.issue_cert(old, ["localhost"], key_type=key_type, days=10, now=past)
    result = verify_chain(leaf.chain, [old.cert], host="localhost")
    assert not result.ok
    assert f"the CA 'CN=old CA,O=tlskit development CA' expired on {old.cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC" in (
        result.reasons
    )
    assert verify_chain(leaf.chain, [old.cert], host="localhost", now=past + dt.timedelta(days=1)).ok


# --- the issuer ----------------------------------------------------------------------


def test_certificate_from_a_foreign_ca_is_explained(server: pki.IssuedCert, key_type: str) -> None:
    foreign = pki.create_ca("someone else", key_type=key_type)
    result = verify_chain(server.chain, [foreign.cert], host="localhost")
    assert not result.ok
    assert result.reasons == [
        "not signed by this CA: it was issued by 'CN=tlskit verify CA,O=tlskit development CA', "
        "and the trusted CA is 'CN=someone else,O=tlskit development CA'"
    ]


def test_certificate_from_a_recreated_ca_of_the_same_name_is_explained(server: pki.IssuedCert, key_type: str) -> None:
    again = pki.create_ca("tlskit verify CA", key_type=key_type)
    assert again.cert.subject == server.ca_cert.subject
    result = verify_chain([server.cert], [again.cert], host="localhost")
    assert not result.ok
    assert result.reasons == [
        "not signed by this CA: it names 'CN=tlskit verify CA,O=tlskit development CA' as issuer, "
        "but the signature is from another key (a CA of the same name, re-created?)"
    ]


def test_a_leaf_cannot_act_as_a_ca(server: pki.IssuedCert, key_type: str) -> None:
    # The leaf's key signs another "leaf" that names it as issuer: signature and names are right,
    # only basicConstraints CA:FALSE forbids it.
    victim_key = pki.generate_key(key_type)
    forged = build_cert((server.cert, server.key), victim_key.public_key())
    result = verify_chain([forged, server.cert], [server.ca_cert], host="localhost")
    assert not result.ok
    assert "the issuer 'CN=localhost' is not a CA (its basicConstraints do not say CA:TRUE)" in result.reasons


def test_an_issuer_without_key_cert_sign_is_refused(key_type: str) -> None:
    root = pki.create_ca("root", key_type=key_type)
    sub_key = pki.generate_key(key_type)
    crl_only = x509.KeyUsage(
        digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=False, crl_sign=True, encipher_only=False, decipher_only=False,
    )
    sub = build_cert(root, sub_key.public_key(), cn="sub", ca=True, key_usage=crl_only)
    leaf = build_cert((sub, sub_key), pki.generate_key(key_type).public_key())
    result = verify_chain([leaf, sub], [root.cert], host="localhost")
    assert not result.ok
    assert "the issuer 'CN=sub' may not sign certificates (its key usage lacks keyCertSign)" in result.reasons


def hand_root(key_type: str) -> pki.CA:
    """A root without pathLenConstraint (pki.create_ca sets 0: tlskit CAs sign leaves only)."""
    key = pki.generate_key(key_type)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "open root")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, None if key_type == "ed25519" else pki._hash_for(key))
    )
    return pki.CA(cert, key)


def test_intermediate_chain_verifies_and_each_hop_is_checked(key_type: str) -> None:
    root = hand_root(key_type)
    sub_key = pki.generate_key(key_type)
    sub = build_cert(root, sub_key.public_key(), cn="sub", ca=True)
    leaf = build_cert((sub, sub_key), pki.generate_key(key_type).public_key())
    assert verify_chain([leaf, sub], [root.cert], host="localhost").ok
    # Twin: a leaf naming the intermediate as issuer but signed by another key.
    impostor = pki.generate_key(key_type)
    forged = build_cert((sub, impostor), pki.generate_key(key_type).public_key())
    result = verify_chain([forged, sub], [root.cert], host="localhost")
    assert not result.ok
    assert result.reasons == [
        "not signed by this CA: it names 'CN=sub' as issuer, "
        "but the signature is from another key (a CA of the same name, re-created?)"
    ]


def test_a_tlskit_ca_allows_no_intermediate(key_type: str) -> None:
    root = pki.create_ca("root", key_type=key_type)
    assert root.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    sub_key = pki.generate_key(key_type)
    sub = build_cert(root, sub_key.public_key(), cn="sub", ca=True)
    leaf = build_cert((sub, sub_key), pki.generate_key(key_type).public_key())
    result = verify_chain([leaf, sub], [root.cert], host="localhost")
    assert not result.ok
    assert result.reasons == [
        "the issuer 'CN=root,O=tlskit development CA' allows 0 intermediate CA(s) under it (pathLenConstraint), "
        "the chain has 1"
    ]


# --- name constraints -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("permit", "inside", "san", "outside"),
    [
        (["localhost", ".test"], "app.test", x509.DNSName("example.com"), "example.com"),
        (["localhost", ".test"], "localhost", x509.IPAddress(ipaddress.ip_address("10.0.0.1")), "10.0.0.1"),
        (["127.0.0.0/8"], "127.0.0.1", x509.DNSName("localhost"), "localhost"),
        (["127.0.0.0/8", "::1"], "::1", x509.IPAddress(ipaddress.ip_address("::2")), "::2"),
    ],
)
def test_a_certificate_outside_the_name_constraints_is_refused(
    key_type: str, permit: list[str], inside: str, san: x509.GeneralName, outside: str
) -> None:
    nc_ca = pki.create_ca("nc CA", key_type=key_type, permit=permit)
    assert verify_chain(pki.issue_cert(nc_ca, [inside], key_type=key_type).chain, [nc_ca.cert], host=inside).ok
    # pki.issue_cert refuses the outside name, so the CA key signs it by hand.
    forged = build_cert(nc_ca, pki.generate_key(key_type).public_key(), cn="x", sans=[san])
    result = verify_chain([forged], [nc_ca.cert], host=outside)
    assert not result.ok
    allowed = ", ".join(nc_ca.permitted)
    assert f"{outside!r} is outside this CA's name constraints (permitted: {allowed})" in result.reasons


# --- the result ------------------------------------------------------------------------------


def test_raise_for_turns_a_failure_into_a_verification_error(ca: pki.CA, server: pki.IssuedCert) -> None:
    raise_for(verify_chain(server.chain, [ca.cert], host="localhost"))  # ok: no exception
    with pytest.raises(VerificationError) as info:
        raise_for(verify_chain(server.chain, [ca.cert], host="other.test"))
    assert info.value.exit_code == 5
    assert info.value.message == f"CN=localhost does not verify for 'other.test': 'other.test' is not among the SANs {SANS}"
    assert info.value.reasons == [f"'other.test' is not among the SANs {SANS}"]


def test_an_empty_subject_is_named_by_its_first_san() -> None:
    nc_ca = pki.create_ca("nc CA", permit=["127.0.0.0/8"])
    leaf = pki.issue_cert(nc_ca, ["127.0.0.1"])
    result = verify_chain(leaf.chain, [nc_ca.cert], host="127.0.0.2")
    assert result.subject == "IP:127.0.0.1"
    assert result.reasons == ["'127.0.0.2' is not among the SANs 127.0.0.1"]


def test_result_to_dict_carries_the_reasons(ca: pki.CA, server: pki.IssuedCert, key_type: str) -> None:
    data = verify_chain(server.chain, [ca.cert], host="other.test").to_dict()
    assert data["ok"] is False and data["host"] == "other.test" and data["purpose"] == "server"
    assert data["method"] == expected_method(key_type)
    assert data["chain"][0]["sans"] == ["DNS:localhost", "IP:127.0.0.1", "IP:::1", "DNS:*.dev.test", "email:user@dev.test"]


def test_no_trusted_ca_and_a_bad_purpose(server: pki.IssuedCert) -> None:
    assert verify_chain(server.chain, []).reasons == ["no trusted CA to verify against"]
    with pytest.raises(ValueError, match="purpose must be 'server' or 'client'"):
        verify_chain(server.chain, [server.ca_cert], purpose="email")
