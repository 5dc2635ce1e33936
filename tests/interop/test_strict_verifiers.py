"""Every key type × every profile, judged by four strict verifiers, each positive with negative twins.

Verifiers: ``openssl verify -x509_strict -purpose …``, GnuTLS ``certtool --verify``,
pyca/cryptography's ``x509.verification`` (server and client verifiers, used
directly, not through tlskit.verify's fallbacks) and NSS ``certutil -V`` in a
throw-away database. Profiles: the CA itself, server, client, wildcard, IP, and a
leaf under a name-constrained CA. Negative twins: wrong host, wrong IP, a
wildcard asked for two labels, wrong EKU (both ways), expired, another CA, a name
outside the constraints. pkilint is covered in test_pki_peers.py and not repeated.

Where a verifier cannot judge a case, the test skips and says why:
- Ed25519: NSS 3.87 cannot import Ed25519 certificates; cryptography's Web-PKI policy refuses
  Ed25519 with no switch (pyca/cryptography#13391).
- ``certutil -V`` checks no host name, so the host-only twins are not asked of NSS.
- cryptography has no verifier for a bare root (the CA profile).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509 import DNSName, IPAddress
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from tlskit import pki

from .conftest import require
from .test_pki_peers import CLIENT_AUTH, SERVER_AUTH, certtool_verify, forge, openssl_verify, run, write

PERMIT = ["localhost", ".test", "127.0.0.0/8"]


@dataclass(frozen=True)
class Case:
    id: str
    leaf: str  # attribute of Material: which certificate
    purpose: str  # "server", "client" or "ca"
    host: str | None
    ok: bool
    anchor: str = "ca"  # which CA is trusted
    host_only: bool = False  # the failure is only about the name (certutil -V checks none)


CASES = [
    Case("ca", "ca_cert", "ca", None, True),
    Case("server", "server", "server", "localhost", True),
    Case("client", "client", "client", None, True),
    Case("wildcard", "wildcard", "server", "api.dev.test", True),
    Case("ip", "ip", "server", "127.0.0.1", True),
    Case("constrained", "constrained", "server", "localhost", True, anchor="constrained_ca"),
    # negative twins
    Case("wrong-host", "server", "server", "other.test", False, host_only=True),
    Case("wildcard-two-labels", "wildcard", "server", "a.b.dev.test", False, host_only=True),
    Case("wrong-ip", "ip", "server", "10.0.0.1", False, host_only=True),
    Case("client-as-server", "client", "server", "alice", False),
    Case("server-as-client", "server", "client", None, False),
    Case("expired", "expired", "server", "localhost", False),
    Case("another-ca", "foreign", "server", "localhost", False),
    Case("outside-constraints", "outside", "server", "example.com", False, anchor="constrained_ca"),
]


@dataclass
class Material:
    key_type: str
    dir: Path
    certs: dict[str, x509.Certificate] = field(default_factory=dict)
    pems: dict[str, Path] = field(default_factory=dict)

    def add(self, name: str, cert: x509.Certificate) -> None:
        self.certs[name] = cert
        self.pems[name] = write(self.dir / f"{name}.pem", cert)


@pytest.fixture(scope="module", params=pki.KEY_TYPES)
def material(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Material:
    kt = request.param
    m = Material(kt, tmp_path_factory.mktemp(f"strict-{kt}"))
    ca = pki.create_ca(f"strict CA {kt}", key_type=kt)
    other = pki.create_ca(f"other CA {kt}", key_type=kt)
    constrained = pki.create_ca(f"constrained CA {kt}", key_type=kt, permit=PERMIT)
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=30)
    m.add("ca", ca.cert)
    m.add("ca_cert", ca.cert)
    m.add("constrained_ca", constrained.cert)
    m.add("server", pki.issue_cert(ca, ["localhost"], key_type=kt).cert)
    m.add("client", pki.issue_cert(ca, ["alice"], key_type=kt, client=True, server=False).cert)
    m.add("wildcard", pki.issue_cert(ca, ["*.dev.test"], key_type=kt).cert)
    m.add("ip", pki.issue_cert(ca, ["127.0.0.1"], key_type=kt).cert)
    m.add("expired", pki.issue_cert(ca, ["localhost"], key_type=kt, not_before=past, days=2).cert)
    m.add("foreign", pki.issue_cert(other, ["localhost"], key_type=kt).cert)
    m.add("constrained", pki.issue_cert(constrained, ["localhost"], key_type=kt).cert)
    # pki.issue_cert refuses names outside the constraints; sign one by hand to see the verifiers refuse it.
    m.add("outside", forge(constrained, [x509.DNSName("example.com")], cn="example.com"))
    return m


# --- the four verifiers: each returns (accepted, what it said) ----------------------------------------


def _host_args(host: str | None, ip_flag: str, dns_flag: str) -> list[str]:
    if host is None:
        return []
    try:
        ipaddress.ip_address(host)
        return [ip_flag, host]
    except ValueError:
        return [dns_flag, host]


def by_openssl(m: Material, case: Case) -> tuple[bool, str]:
    purpose = {"server": "sslserver", "client": "sslclient", "ca": "any"}[case.purpose]
    args = _host_args(case.host, "-verify_ip", "-verify_hostname")
    proc = openssl_verify(m.pems[case.anchor], m.pems[case.leaf], *args, purpose=purpose)
    return proc.returncode == 0 and proc.stdout.strip().endswith(": OK"), proc.stdout + proc.stderr


def by_certtool(m: Material, case: Case) -> tuple[bool, str]:
    args = ["--verify-hostname", case.host] if case.host else []
    if case.purpose == "ca":
        proc = run(require("certtool"), "--verify", "--load-ca-certificate", str(m.pems[case.anchor]), "--infile", str(m.pems[case.leaf]))
    else:
        proc = certtool_verify(m.pems[case.anchor], m.pems[case.leaf], *args, purpose=SERVER_AUTH if case.purpose == "server" else CLIENT_AUTH)
    ok = proc.returncode == 0 and "Chain verification output: Verified. The certificate is trusted." in proc.stdout
    return ok, proc.stdout + proc.stderr


def by_cryptography(m: Material, case: Case) -> tuple[bool, str]:
    if case.purpose == "ca":
        pytest.skip("cryptography has no verifier for a bare root; the CA is judged as the anchor of every other case")
    if m.key_type == "ed25519":
        pytest.skip("cryptography's Web-PKI policy refuses Ed25519 with no switch (pyca/cryptography#13391)")
    builder = PolicyBuilder().store(Store([m.certs[case.anchor]]))
    leaf = m.certs[case.leaf]
    try:
        if case.purpose == "server":
            try:
                subject = IPAddress(ipaddress.ip_address(case.host))
            except ValueError:
                subject = DNSName(case.host)
            builder.build_server_verifier(subject).verify(leaf, [])
        else:
            builder.build_client_verifier().verify(leaf, [])
    except VerificationError as exc:
        return False, str(exc)
    return True, "verified"


def by_nss(m: Material, case: Case, tmp_path: Path) -> tuple[bool, str]:
    certutil = require("certutil")
    if m.key_type == "ed25519":
        pytest.skip("NSS 3.87 (Debian 12) cannot import Ed25519 certificates (SEC_ERROR_ADDING_CERT)")
    if case.host_only:
        pytest.skip("certutil -V checks no host name; this twin differs from its positive only in the name")
    db = tmp_path / "nssdb"
    db.mkdir()
    d = f"sql:{db}"
    steps = [
        [certutil, "-N", "-d", d, "--empty-password"],
        # NSS trust flags: C = trusted to issue server certificates, T = client certificates.
        [certutil, "-A", "-d", d, "-n", "anchor", "-t", "T,," if case.purpose == "client" else "C,,", "-i", str(m.pems[case.anchor])],
    ]
    if case.purpose != "ca":
        steps.append([certutil, "-A", "-d", d, "-n", "leaf", "-t", ",,", "-i", str(m.pems[case.leaf])])
    for argv in steps:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    usage, nick = {"server": ("V", "leaf"), "client": ("C", "leaf"), "ca": ("L", "anchor")}[case.purpose]
    proc = subprocess.run([certutil, "-V", "-d", d, "-u", usage, "-n", nick], capture_output=True, text=True, timeout=30)
    out = proc.stdout + proc.stderr
    return proc.returncode == 0 and "certificate is valid" in out, out


# --- the matrix ------------------------------------------------------------------------------------------


def check(accepted: bool, said: str, case: Case, verifier: str) -> None:
    if case.ok:
        assert accepted, f"{verifier} rejected the {case.id} case: {said}"
    else:
        assert not accepted, f"{verifier} accepted the negative twin {case.id}: {said}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_openssl_x509_strict(material: Material, case: Case) -> None:
    check(*by_openssl(material, case), case, "openssl verify -x509_strict")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_certtool(material: Material, case: Case) -> None:
    check(*by_certtool(material, case), case, "certtool --verify")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cryptography_verifier(material: Material, case: Case) -> None:
    check(*by_cryptography(material, case), case, "cryptography x509.verification")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_nss_certutil(material: Material, case: Case, tmp_path: Path) -> None:
    check(*by_nss(material, case, tmp_path), case, "certutil -V")


def test_every_positive_has_a_negative_twin() -> None:
    # The matrix itself: every positive leaf (or constrained anchor) has a twin that must be refused.
    def subject(c: Case) -> str:
        return c.leaf if c.anchor == "ca" else c.anchor

    positives = {subject(c) for c in CASES if c.ok and c.purpose != "ca"}
    negatives = {subject(c) for c in CASES if not c.ok}
    assert positives <= negatives, positives - negatives
    assert {"expired", "another-ca", "client-as-server", "wrong-host"} <= {c.id for c in CASES}
