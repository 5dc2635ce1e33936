"""What pki.py issues, judged by real peers: openssl, GnuTLS certtool, pkilint, keytool, and cryptography.

Every key type gets one CA and one set of leaves per module (RSA-4096 keys take a
second or two each). Every success has a negative twin that shows the peer can say no.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tlskit import pki
from tlskit.errors import InvalidNameError, PKIError
from tlskit.names import NameKind, classify_name
from tlskit.verify import verify_chain

from .conftest import require

NAMES = ["localhost", "127.0.0.1", "::1", "*.dev.test", "user@dev.test"]
# How each peer is asked about each name: openssl flag, the name to ask for.
OPENSSL_CHECKS = [
    ("-verify_hostname", "localhost"),
    ("-verify_ip", "127.0.0.1"),
    ("-verify_ip", "::1"),
    ("-verify_hostname", "api.dev.test"),  # covered by *.dev.test
    ("-verify_email", "user@dev.test"),
]
HOSTS = ["localhost", "127.0.0.1", "::1", "api.dev.test"]
SERVER_AUTH = "1.3.6.1.5.5.7.3.1"
CLIENT_AUTH = "1.3.6.1.5.5.7.3.2"
P12_PASSWORD = "correct horse battery"


def run(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, input=input, capture_output=True, timeout=60, text=input is None, check=False)


def write(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(pki.cert_to_pem(cert))
    return path


@dataclass
class Material:
    """One key type's CA and leaves, on disk for the peers."""

    key_type: str
    ca: pki.CA
    server: pki.IssuedCert
    client: pki.IssuedCert
    both: pki.IssuedCert
    ca_pem: Path
    server_pem: Path
    client_pem: Path
    both_pem: Path


@pytest.fixture(scope="module", params=pki.KEY_TYPES)
def material(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Material:
    kt = request.param
    d = tmp_path_factory.mktemp(kt)
    ca = pki.create_ca(f"tlskit interop CA {kt}", key_type=kt)
    server = pki.issue_cert(ca, NAMES, key_type=kt)
    client = pki.issue_cert(ca, ["alice"], key_type=kt, client=True, server=False)
    both = pki.issue_cert(ca, ["localhost"], key_type=kt, client=True, server=True)
    return Material(
        kt, ca, server, client, both,
        write(d / "ca.crt", ca.cert), write(d / "server.pem", server.cert),
        write(d / "client.pem", client.cert), write(d / "both.pem", both.cert),
    )


def openssl_verify(ca: Path, leaf: Path, *args: str, purpose: str = "sslserver") -> subprocess.CompletedProcess[str]:
    return run(require("openssl"), "verify", "-x509_strict", "-purpose", purpose, *args, "-CAfile", str(ca), str(leaf))


def certtool_verify(ca: Path, leaf: Path, *args: str, purpose: str = SERVER_AUTH) -> subprocess.CompletedProcess[str]:
    return run(
        require("certtool"), "--verify", "--load-ca-certificate", str(ca), "--infile", str(leaf),
        *args, "--verify-purpose", purpose,
    )


def assert_openssl_ok(proc: subprocess.CompletedProcess[str], leaf: Path) -> None:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == f"{leaf}: OK"


def assert_openssl_refuses(proc: subprocess.CompletedProcess[str], why: str) -> None:
    assert proc.returncode != 0, proc.stdout
    assert why in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def assert_certtool_ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Chain verification output: Verified. The certificate is trusted." in proc.stdout


def assert_certtool_refuses(proc: subprocess.CompletedProcess[str], why: str) -> None:
    assert proc.returncode != 0, proc.stdout
    assert "Chain verification output: Not verified." in proc.stdout
    assert why in proc.stdout, proc.stdout


# --- a server certificate for every name and key type ----------------------------------


def test_openssl_verifies_the_server_certificate(material: Material) -> None:
    assert_openssl_ok(openssl_verify(material.ca_pem, material.server_pem), material.server_pem)


@pytest.mark.parametrize(("flag", "name"), OPENSSL_CHECKS)
def test_openssl_verifies_each_name(material: Material, flag: str, name: str) -> None:
    assert_openssl_ok(openssl_verify(material.ca_pem, material.server_pem, flag, name), material.server_pem)


@pytest.mark.parametrize(
    ("flag", "name", "why"),
    [
        ("-verify_hostname", "other.test", "hostname mismatch"),
        ("-verify_hostname", "a.b.dev.test", "hostname mismatch"),
        ("-verify_ip", "10.0.0.1", "IP address mismatch"),
        ("-verify_ip", "::2", "IP address mismatch"),
        ("-verify_email", "bob@dev.test", "email address mismatch"),
    ],
)
def test_openssl_refuses_a_name_not_in_the_certificate(material: Material, flag: str, name: str, why: str) -> None:
    assert_openssl_refuses(openssl_verify(material.ca_pem, material.server_pem, flag, name), why)


def test_openssl_refuses_a_foreign_ca(material: Material, tmp_path: Path) -> None:
    foreign = write(tmp_path / "foreign.crt", pki.create_ca("foreign", key_type="ecdsa-p256").cert)
    assert_openssl_refuses(openssl_verify(foreign, material.server_pem), "unable to get local issuer certificate")


@pytest.mark.parametrize("host", HOSTS)
def test_certtool_verifies_each_host(material: Material, host: str) -> None:
    assert_certtool_ok(certtool_verify(material.ca_pem, material.server_pem, "--verify-hostname", host))


def test_certtool_verifies_the_email(material: Material) -> None:
    assert_certtool_ok(certtool_verify(material.ca_pem, material.server_pem, "--verify-email", "user@dev.test"))


@pytest.mark.parametrize("host", ["other.test", "a.b.dev.test", "10.0.0.1", "::2"])
def test_certtool_refuses_a_host_not_in_the_certificate(material: Material, host: str) -> None:
    proc = certtool_verify(material.ca_pem, material.server_pem, "--verify-hostname", host)
    assert_certtool_refuses(proc, "The name in the certificate does not match the expected.")


@pytest.mark.parametrize("host", HOSTS)
def test_cryptography_verifies_each_host(material: Material, host: str) -> None:
    result = verify_chain(material.server.chain, [material.ca.cert], host=host)
    assert result.ok, result.reasons
    if material.key_type == "ed25519":
        # The Web-PKI policy forbids Ed25519 with no switch (pyca/cryptography#13391): verify.py's fallback judged it.
        assert result.method.startswith("signature, dates, issuer")
    else:
        assert result.method == "cryptography.x509.verification"


@pytest.mark.parametrize("host", ["other.test", "a.b.dev.test", "10.0.0.1", "::2"])
def test_cryptography_refuses_a_host_not_in_the_certificate(material: Material, host: str) -> None:
    result = verify_chain(material.server.chain, [material.ca.cert], host=host)
    assert not result.ok
    assert result.reasons == [f"{host!r} is not among the SANs localhost, 127.0.0.1, ::1, *.dev.test"]


# --- client certificates ------------------------------------------------------------------


def test_client_certificate_verifies_for_client_auth_only(material: Material) -> None:
    ca, leaf = material.ca_pem, material.client_pem
    assert_openssl_ok(openssl_verify(ca, leaf, purpose="sslclient"), leaf)
    assert_openssl_refuses(openssl_verify(ca, leaf, purpose="sslserver"), "unsuitable certificate purpose")
    assert_certtool_ok(certtool_verify(ca, leaf, purpose=CLIENT_AUTH))
    assert_certtool_refuses(certtool_verify(ca, leaf, purpose=SERVER_AUTH), "does not match the intended purpose")
    assert verify_chain(material.client.chain, [material.ca.cert], purpose="client").ok
    assert not verify_chain(material.client.chain, [material.ca.cert], purpose="server", host="alice").ok


def test_server_certificate_is_not_a_client_certificate(material: Material) -> None:
    ca, leaf = material.ca_pem, material.server_pem
    assert_openssl_refuses(openssl_verify(ca, leaf, purpose="sslclient"), "unsuitable certificate purpose")
    assert_certtool_refuses(certtool_verify(ca, leaf, purpose=CLIENT_AUTH), "does not match the intended purpose")
    assert not verify_chain(material.server.chain, [material.ca.cert], purpose="client").ok


def test_client_and_server_certificate_verifies_for_both(material: Material) -> None:
    ca, leaf = material.ca_pem, material.both_pem
    assert_openssl_ok(openssl_verify(ca, leaf, "-verify_hostname", "localhost", purpose="sslclient"), leaf)
    assert_openssl_ok(openssl_verify(ca, leaf, "-verify_hostname", "localhost", purpose="sslserver"), leaf)
    assert_certtool_ok(certtool_verify(ca, leaf, "--verify-hostname", "localhost", purpose=CLIENT_AUTH))
    assert_certtool_ok(certtool_verify(ca, leaf, "--verify-hostname", "localhost", purpose=SERVER_AUTH))
    assert verify_chain(material.both.chain, [material.ca.cert], purpose="client").ok
    assert verify_chain(material.both.chain, [material.ca.cert], purpose="server", host="localhost").ok


# --- what openssl sees in the certificate ---------------------------------------------------


def openssl_text(path: Path) -> str:
    proc = run(require("openssl"), "x509", "-in", str(path), "-text", "-noout")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def san_line(text: str) -> str:
    """The names openssl prints under the SAN extension (one line, comma-separated)."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if "X509v3 Subject Alternative Name" in line)
    return lines[at + 1].strip()


def test_openssl_shows_exactly_the_sans_asked_for(material: Material) -> None:
    text = openssl_text(material.server_pem)
    assert san_line(text) == (
        "DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:*.dev.test, email:user@dev.test"
    )
    assert re.search(r"^\s+Subject: CN ?= ?localhost$", text, re.M)
    assert text.count("X509v3 Subject Alternative Name") == 1


def test_openssl_shows_idn_alabels_and_uris(tmp_path: Path) -> None:
    ca = pki.create_ca("idn CA")
    leaf = pki.issue_cert(ca, ["bücher.test", "faß.de", "spiffe://dev.test/api", "https://app.test/"])
    text = openssl_text(write(tmp_path / "idn.pem", leaf.cert))
    # IDNA 2008: ß stays a letter of its own (xn--fa-hia), where IDNA 2003 would have made it fass.de.
    assert san_line(text) == (
        "DNS:xn--bcher-kva.test, DNS:xn--fa-hia.de, URI:spiffe://dev.test/api, URI:https://app.test/"
    )
    assert "fass.de" not in text
    ca_pem = write(tmp_path / "ca.crt", ca.cert)
    assert_openssl_ok(openssl_verify(ca_pem, tmp_path / "idn.pem", "-verify_hostname", "xn--bcher-kva.test"), tmp_path / "idn.pem")
    assert_openssl_refuses(openssl_verify(ca_pem, tmp_path / "idn.pem", "-verify_hostname", "fass.de"), "hostname mismatch")


# --- pkilint ----------------------------------------------------------------------------------


def pkilint_findings(stdout: str) -> list[tuple[str, str, str]]:
    """(severity, code, message) of every finding in pkilint's JSON (its exit code is their count)."""
    return [
        (f["severity"], f["code"], f.get("message") or "")
        for result in json.loads(stdout)["results"]
        for f in result["finding_descriptions"]
    ]


def is_single_label_finding(finding: tuple[str, str, str]) -> bool:
    """pkilint's finding for a DNS name of one label, such as ``localhost``, and nothing else.

    pkilint checks dNSName syntax with the ``validators`` package's ``domain()``,
    which wants a dot and a TLD. RFC 1034 §3.5 (the preferred name syntax that
    RFC 5280 §4.2.1.6 refers to) allows a single label, ``localhost`` is a
    special-use name (RFC 6761), and a name constraint ``test`` covers the
    ``.test`` TLD (RFC 5280 §4.2.1.10). Any other syntax finding still fails.
    """
    _, code, message = finding
    m = re.fullmatch(r'Invalid domain name syntax: "([^"]*)"', message)
    if code != "pkix.invalid_domain_name_syntax" or m is None or "." in m.group(1):
        return False
    try:
        return classify_name(m.group(1)).kind is NameKind.DNS  # a label we would certify, not any string
    except InvalidNameError:
        return False


def lint_all(jobs: dict[str, list[str]]) -> dict[str, list[tuple[str, str, str]]]:
    """Run pkilint commands side by side (each takes most of a second to start) and read their JSON."""
    procs = {name: subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name, args in jobs.items()}
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        assert stdout.strip(), f"pkilint {name} printed nothing: {stderr}"
        findings = pkilint_findings(stdout)
        assert proc.returncode == len(findings), (proc.returncode, findings)  # we read what it counted
        out[name] = [f for f in findings if not is_single_label_finding(f)]
    return out


def lint_cert(path: Path) -> list[str]:
    return [require("lint_pkix_cert"), "lint", "-s", "WARNING", "-f", "JSON", str(path)]


def lint_chain(ca: Path, leaf: Path) -> list[str]:
    return [require("lint_pkix_signer_signee_cert_chain"), "lint", "-s", "WARNING", "-f", "JSON", str(ca), str(leaf)]


@pytest.fixture(scope="module")
def lints(material: Material) -> dict[str, list[tuple[str, str, str]]]:
    no_wildcard = material.ca_pem.parent / "no-wildcard.pem"
    names = [n for n in NAMES if not n.startswith("*.")]
    write(no_wildcard, pki.issue_cert(material.ca, names, key_type=material.key_type).cert)
    return lint_all(
        {
            "ca": lint_cert(material.ca_pem),
            "server": lint_cert(material.server_pem),
            "server-no-wildcard": lint_cert(no_wildcard),
            "chain": lint_chain(material.ca_pem, material.server_pem),
        }
    )


def test_pkilint_passes_the_ca(lints: dict) -> None:
    assert lints["ca"] == []


def test_pkilint_passes_the_leaf_without_its_wildcard(lints: dict) -> None:
    assert lints["server-no-wildcard"] == []


def test_pkilint_flags_only_the_wildcard_in_the_server_leaf(lints: dict) -> None:
    # Not filtered, pinned: RFC 5280's preferred name syntax has no '*', and pkilint's plain
    # PKIX linter says so; wildcards are defined by RFC 6125 §6.4.3 / RFC 9525, and pkilint's
    # own CA/B Forum linter drops this very finding (DnsNameGeneralNamePreferredNameSyntaxFilter).
    # Any other finding, or a second one, fails here.
    assert lints["server"] == [("ERROR", "pkix.invalid_domain_name_syntax", 'Invalid domain name syntax: "*.dev.test"')]


def test_pkilint_passes_the_chain(lints: dict) -> None:
    assert lints["chain"] == []


def test_pkilint_passes_client_certificates(tmp_path: Path) -> None:
    # The profile is the same code for every key type; RSA and EC differ in keyEncipherment.
    jobs = {}
    for kt in ("ecdsa-p256", "rsa-2048"):
        ca = pki.create_ca("client CA", key_type=kt)
        ca_pem = write(tmp_path / f"ca-{kt}.crt", ca.cert)
        leaf = write(tmp_path / f"alice-{kt}.pem", pki.issue_cert(ca, ["alice", "alice@dev.test"], key_type=kt, client=True, server=False).cert)
        both = write(tmp_path / f"both-{kt}.pem", pki.issue_cert(ca, ["localhost"], key_type=kt, client=True, server=True).cert)
        jobs |= {f"client-{kt}": lint_cert(leaf), f"client-chain-{kt}": lint_chain(ca_pem, leaf), f"both-{kt}": lint_cert(both)}
    found = lint_all(jobs)
    assert found == dict.fromkeys(jobs, [])  # "alice" is a single label: only that finding was dropped


def test_the_single_label_filter_keeps_everything_else() -> None:
    # The negative twin of the filter: it must not hide a real syntax problem.
    keep = [
        ("ERROR", "pkix.invalid_domain_name_syntax", 'Invalid domain name syntax: "*.dev.test"'),
        ("ERROR", "pkix.invalid_domain_name_syntax", 'Invalid domain name syntax: "exa_mple"'),
        ("ERROR", "pkix.invalid_domain_name_syntax", 'Invalid domain name syntax: "a..test"'),
        ("WARNING", "pkix.some_other_finding", 'Invalid domain name syntax: "localhost"'),
    ]
    assert [f for f in keep if is_single_label_finding(f)] == []
    assert is_single_label_finding(("ERROR", "pkix.invalid_domain_name_syntax", 'Invalid domain name syntax: "localhost"'))


# --- name constraints, judged by openssl and certtool -------------------------------------------


PERMIT = ["localhost", ".test", "127.0.0.0/8", "::1"]


@dataclass
class Constrained:
    ca: pki.CA
    pem: Path
    dir: Path

    def write(self, name: str, cert: x509.Certificate) -> Path:
        return write(self.dir / name, cert)


def constrained_ca(tmp_path_factory: pytest.TempPathFactory, name: str, permit: list[str]) -> Constrained:
    d = tmp_path_factory.mktemp(name)
    ca = pki.create_ca(name, permit=permit)
    return Constrained(ca, write(d / "ca.crt", ca.cert), d)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Constrained:
    return constrained_ca(tmp_path_factory, "mixed CA", PERMIT)


@pytest.fixture(scope="module")
def dns_only(tmp_path_factory: pytest.TempPathFactory) -> Constrained:
    return constrained_ca(tmp_path_factory, "dns CA", ["localhost", ".test"])


@pytest.fixture(scope="module")
def ip_only(tmp_path_factory: pytest.TempPathFactory) -> Constrained:
    return constrained_ca(tmp_path_factory, "ip CA", ["127.0.0.0/8", "::1"])


def forge(ca: pki.CA, sans: list[x509.GeneralName], cn: str | None = "forged") -> x509.Certificate:
    """A leaf signed with the CA's key by hand, outside what pki.issue_cert allows."""
    key = pki.generate_key("ecdsa-p256")
    ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    now = dt.datetime.now(dt.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(pki._leaf_key_usage(key.public_key()), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=not cn)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(ca.key, pki._hash_for(ca.key))
    )


def test_constrained_ca_refuses_to_issue_outside(mixed: Constrained) -> None:
    for name in ["example.com", "10.0.0.1", "::2", "*.example.com"]:
        with pytest.raises(InvalidNameError, match=f"{re.escape(repr(name))} is outside this CA's name constraints"):
            pki.issue_cert(mixed.ca, [name])


def test_certificate_inside_the_constraints_verifies(mixed: Constrained) -> None:
    leaf = mixed.write("inside.pem", pki.issue_cert(mixed.ca, ["localhost", "127.0.0.1", "::1", "*.dev.test", "api.test"]).cert)
    assert_openssl_ok(openssl_verify(mixed.pem, leaf), leaf)
    assert_openssl_ok(openssl_verify(mixed.pem, leaf, "-verify_hostname", "api.dev.test"), leaf)
    assert_certtool_ok(certtool_verify(mixed.pem, leaf, "--verify-hostname", "localhost"))


@pytest.mark.parametrize("names", [["127.0.0.1"], ["::1"], ["::1", "127.0.0.1"], ["spiffe://dev.test/api"]])
def test_leaf_without_dns_names_verifies_under_the_constraints(mixed: Constrained, names: list[str]) -> None:
    leaf = mixed.write("no-dns.pem", pki.issue_cert(mixed.ca, names, server=True, client=True).cert)
    assert_openssl_ok(openssl_verify(mixed.pem, leaf), leaf)
    assert_certtool_ok(certtool_verify(mixed.pem, leaf))
    assert verify_chain([x509.load_pem_x509_certificate(leaf.read_bytes())], [mixed.ca.cert], purpose="client").ok


def test_why_such_a_leaf_has_no_cn(mixed: Constrained) -> None:
    # The twin of the test above, as pki.py used to build it: CN=127.0.0.1, no DNS SAN. Both peers
    # check that CN against the DNS constraints (localhost, test) and reject it.
    leaf = mixed.write("cn-ip.pem", forge(mixed.ca, [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))], cn="127.0.0.1"))
    assert_openssl_refuses(openssl_verify(mixed.pem, leaf), "permitted subtree violation")
    assert_certtool_refuses(certtool_verify(mixed.pem, leaf), "violates the signer's constraints")


@pytest.mark.parametrize(
    ("san", "why"),
    [
        (x509.DNSName("example.com"), "permitted subtree violation"),
        (x509.DNSName("evillocalhost"), "permitted subtree violation"),
        (x509.IPAddress(ipaddress.ip_address("10.0.0.1")), "permitted subtree violation"),
        (x509.IPAddress(ipaddress.ip_address("::2")), "permitted subtree violation"),
    ],
)
def test_forged_certificate_outside_the_constraints_is_rejected(mixed: Constrained, san, why: str) -> None:
    leaf = mixed.write("forged.pem", forge(mixed.ca, [x509.DNSName("localhost"), san], cn="localhost"))
    assert_openssl_refuses(openssl_verify(mixed.pem, leaf), why)
    assert_certtool_refuses(certtool_verify(mixed.pem, leaf), "violates the signer's constraints")


@pytest.mark.parametrize("ip", ["127.0.0.1", "10.0.0.1", "::1"])
def test_a_dns_only_ca_cannot_certify_ips(dns_only: Constrained, ip: str) -> None:
    with pytest.raises(InvalidNameError, match="is outside this CA's name constraints"):
        pki.issue_cert(dns_only.ca, ["localhost", ip])
    leaf = dns_only.write("forged-ip.pem", forge(dns_only.ca, [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(ip))], cn="localhost"))
    # Without the excluded 0.0.0.0/0 and ::/0, this certificate would verify: IP names would be unconstrained.
    assert_openssl_refuses(openssl_verify(dns_only.pem, leaf), "excluded subtree violation")
    assert_certtool_refuses(certtool_verify(dns_only.pem, leaf), "violates the signer's constraints")


def test_a_dns_only_ca_still_certifies_its_names(dns_only: Constrained) -> None:
    leaf = dns_only.write("ok.pem", pki.issue_cert(dns_only.ca, ["localhost", "app.test"]).cert)
    assert_openssl_ok(openssl_verify(dns_only.pem, leaf, "-verify_hostname", "app.test"), leaf)
    assert_certtool_ok(certtool_verify(dns_only.pem, leaf, "--verify-hostname", "app.test"))


def test_an_ip_only_ca_with_excluded_empty_dns_name_is_accepted(ip_only: Constrained) -> None:
    text = openssl_text(ip_only.pem)
    assert re.search(r"Excluded:\n\s+DNS:\n", text), text
    leaf = ip_only.write("ips.pem", pki.issue_cert(ip_only.ca, ["127.0.0.1", "::1"]).cert)
    assert_openssl_ok(openssl_verify(ip_only.pem, leaf, "-verify_ip", "::1"), leaf)
    assert_certtool_ok(certtool_verify(ip_only.pem, leaf, "--verify-hostname", "127.0.0.1"))


@pytest.mark.parametrize("dns", ["localhost", "app.test", "example.com"])
def test_an_ip_only_ca_cannot_certify_dns_names(ip_only: Constrained, dns: str) -> None:
    with pytest.raises(InvalidNameError, match="is outside this CA's name constraints"):
        pki.issue_cert(ip_only.ca, ["127.0.0.1", dns])
    leaf = ip_only.write("forged-dns.pem", forge(ip_only.ca, [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName(dns)], cn=None))
    assert_openssl_refuses(openssl_verify(ip_only.pem, leaf), "excluded subtree violation")
    assert_certtool_refuses(certtool_verify(ip_only.pem, leaf), "violates the signer's constraints")


def test_pkilint_passes_the_constrained_cas_and_their_leaves(mixed: Constrained, dns_only: Constrained, ip_only: Constrained) -> None:
    ip_leaf = ip_only.write("lint-ip.pem", pki.issue_cert(ip_only.ca, ["127.0.0.1", "::1"]).cert)
    mixed_leaf = mixed.write("lint-ip.pem", pki.issue_cert(mixed.ca, ["127.0.0.1"]).cert)  # empty subject
    found = lint_all(
        {
            "mixed": lint_cert(mixed.pem),
            "dns": lint_cert(dns_only.pem),
            "ip": lint_cert(ip_only.pem),
            "ip-chain": lint_chain(ip_only.pem, ip_leaf),
            "mixed-leaf": lint_cert(mixed_leaf),
            "mixed-chain": lint_chain(mixed.pem, mixed_leaf),
        }
    )
    assert found == dict.fromkeys(found, [])


# --- CSRs made by openssl --------------------------------------------------------------------


def openssl_csr(tmp_path: Path, *args: str) -> tuple[Path, Path]:
    key, csr = tmp_path / "app.key", tmp_path / "app.csr"
    proc = run(
        require("openssl"), "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(key), "-out", str(csr), *args,
    )
    assert proc.returncode == 0, proc.stderr
    return key, csr


def test_openssl_csr_is_signed_with_its_key_and_san(tmp_path: Path) -> None:
    ca = pki.create_ca("csr CA")
    key_pem, csr_pem = openssl_csr(tmp_path, "-subj", "/CN=ignored.test", "-addext", "subjectAltName=DNS:app.test,IP:127.0.0.1")
    csr, names = pki.load_csr(csr_pem.read_bytes())
    assert names == ["app.test", "127.0.0.1"]  # the SAN wins over the CN
    leaf = pki.issue_cert(ca, names, csr=csr)
    assert leaf.key is None
    assert pki.key_matches_cert(serialization.load_pem_private_key(key_pem.read_bytes(), None), leaf.cert)
    ca_pem, leaf_pem = write(tmp_path / "ca.crt", ca.cert), write(tmp_path / "leaf.pem", leaf.cert)
    assert_openssl_ok(openssl_verify(ca_pem, leaf_pem, "-verify_hostname", "app.test"), leaf_pem)
    assert_openssl_ok(openssl_verify(ca_pem, leaf_pem, "-verify_ip", "127.0.0.1"), leaf_pem)
    # The key openssl made is the one in the certificate: openssl itself says they match.
    mod_cert = run(require("openssl"), "x509", "-in", str(leaf_pem), "-noout", "-pubkey").stdout
    mod_key = run(require("openssl"), "pkey", "-in", str(key_pem), "-pubout").stdout
    assert mod_cert == mod_key


def test_openssl_csr_without_san_is_named_by_its_cn(tmp_path: Path) -> None:
    _, csr_pem = openssl_csr(tmp_path, "-subj", "/CN=db.test")
    csr, names = pki.load_csr(csr_pem.read_bytes())
    assert names == ["db.test"]
    assert pki.sans_of(pki.issue_cert(pki.create_ca("csr CA"), names, csr=csr).cert) == ["DNS:db.test"]


def test_openssl_csr_with_an_invalid_name_is_refused(tmp_path: Path) -> None:
    _, csr_pem = openssl_csr(tmp_path, "-subj", "/CN=x", "-addext", "subjectAltName=DNS:app.test,DNS:exa_mple.test")
    csr, names = pki.load_csr(csr_pem.read_bytes())
    with pytest.raises(InvalidNameError, match="'exa_mple.test' is not a valid DNS name"):
        pki.issue_cert(pki.create_ca("csr CA"), names, csr=csr)


def test_openssl_csr_with_a_bad_signature_is_refused(tmp_path: Path) -> None:
    _, csr_pem = openssl_csr(tmp_path, "-subj", "/CN=app.test")
    der = bytearray(x509.load_pem_x509_csr(csr_pem.read_bytes()).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01
    bad = tmp_path / "bad.der"
    bad.write_bytes(bytes(der))
    # openssl agrees that the signature is bad: the twin that proves the flip broke it.
    check = run(require("openssl"), "req", "-in", str(bad), "-inform", "DER", "-verify", "-noout")
    assert "self-signature verify failure" in check.stderr  # OpenSSL 3.0 still exits 0 here
    csr, names = pki.load_csr(bytes(der))
    with pytest.raises(PKIError, match="the CSR's signature is not valid"):
        pki.issue_cert(pki.create_ca("csr CA"), names, csr=csr)


# --- PKCS#12 -----------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["ecdsa-p256", "rsa-2048", "ed25519"])
def p12(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[pki.IssuedCert, Path]:
    ca = pki.create_ca("p12 CA", key_type=request.param)
    leaf = pki.issue_cert(ca, ["localhost"], key_type=request.param)
    path = tmp_path_factory.mktemp("p12") / "cert.p12"
    path.write_bytes(pki.to_pkcs12(leaf, P12_PASSWORD.encode(), "localhost"))
    return leaf, path


def test_openssl3_reads_the_pkcs12_without_legacy(p12: tuple[pki.IssuedCert, Path]) -> None:
    leaf, path = p12
    proc = run(require("openssl"), "pkcs12", "-in", str(path), "-passin", f"pass:{P12_PASSWORD}", "-nokeys")
    assert proc.returncode == 0, proc.stderr
    assert x509.load_pem_x509_certificates(proc.stdout.encode()) == [leaf.cert, leaf.ca_cert]
    info = run(require("openssl"), "pkcs12", "-in", str(path), "-passin", f"pass:{P12_PASSWORD}", "-info", "-noout")
    assert "PBES2, PBKDF2, AES-256-CBC" in info.stderr  # not RC2-40 / 3DES, which need -legacy
    assert "MAC: sha256" in info.stderr
    keys = run(require("openssl"), "pkcs12", "-in", str(path), "-passin", f"pass:{P12_PASSWORD}", "-nocerts", "-nodes")
    assert keys.returncode == 0, keys.stderr
    key = serialization.load_pem_private_key(keys.stdout.encode()[keys.stdout.encode().index(b"-----BEGIN"):], None)
    assert pki.key_matches_cert(key, leaf.cert)


def test_openssl_refuses_the_pkcs12_with_a_wrong_password(p12: tuple[pki.IssuedCert, Path]) -> None:
    proc = run(require("openssl"), "pkcs12", "-in", str(p12[1]), "-passin", "pass:wrong", "-nokeys")
    assert proc.returncode != 0
    assert "Mac verify error" in proc.stderr


def test_keytool_lists_the_pkcs12(p12: tuple[pki.IssuedCert, Path]) -> None:
    proc = run(require("keytool"), "-list", "-keystore", str(p12[1]), "-storetype", "PKCS12", "-storepass", P12_PASSWORD)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Your keystore contains 1 entry" in proc.stdout
    assert re.search(r"^localhost, .*, PrivateKeyEntry,", proc.stdout, re.M), proc.stdout


def test_keytool_refuses_a_wrong_password(tmp_path: Path) -> None:
    path = tmp_path / "cert.p12"
    path.write_bytes(pki.to_pkcs12(pki.issue_cert(pki.create_ca("p12 CA"), ["localhost"]), P12_PASSWORD.encode(), "localhost"))
    proc = run(require("keytool"), "-list", "-keystore", str(path), "-storetype", "PKCS12", "-storepass", "wrong-password")
    assert proc.returncode != 0
    assert "keystore password was incorrect" in proc.stdout + proc.stderr
