"""``tlskit cert issue/show/verify/list`` through the real CLI."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tlskit import pki


@pytest.fixture
def ca(run):
    result = run("ca", "init")
    assert result.exit_code == 0, result.stderr
    return run


def _leaf(run, name="localhost") -> x509.Certificate:
    return x509.load_pem_x509_certificate((run.home / "certs" / name / "cert.pem").read_bytes())


def test_issue_writes_the_store_layout(ca):
    result = ca("cert", "issue", "localhost", "127.0.0.1", "::1")
    assert result.exit_code == 0, result.stderr
    folder = ca.home / "certs" / "localhost"
    assert sorted(p.name for p in folder.iterdir()) == ["cert.pem", "chain.pem", "key.pem"]
    assert stat.S_IMODE(os.stat(folder / "key.pem").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    chain = x509.load_pem_x509_certificates((folder / "chain.pem").read_bytes())
    ca_cert = x509.load_pem_x509_certificate((ca.home / "ca" / "ca.crt").read_bytes())
    assert chain == [_leaf(ca), ca_cert]
    key = serialization.load_pem_private_key((folder / "key.pem").read_bytes(), None)
    assert pki.key_matches_cert(key, _leaf(ca))
    assert pki.sans_of(_leaf(ca)) == ["DNS:localhost", "IP:127.0.0.1", "IP:::1"]
    for word in ("Issued a certificate", "DNS:localhost", "IP:::1", "(825 days)", str(folder / "key.pem")):
        assert word in result.stdout


def test_issue_json_names_paths_and_expiry(ca):
    result = ca("cert", "issue", "*.dev.test", "dev.test", "--json")
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["name"] == "*.dev.test"
    assert info["paths"]["certificate"].endswith("certs/_wildcard.dev.test/cert.pem")
    assert info["sans"] == ["DNS:*.dev.test", "DNS:dev.test"]
    assert info["days_left"] == 825
    assert info["eku"] == ["serverAuth"]


def test_issue_refuses_to_overwrite_without_force(ca):
    assert ca("cert", "issue", "localhost").exit_code == 0
    folder = ca.home / "certs" / "localhost"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    result = ca("cert", "issue", "localhost", "127.0.0.1")
    assert result.exit_code == 6
    assert result.stderr.count("\n") == 1
    assert "already exists" in result.stderr and "--force" in result.stderr
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_issue_force_replaces_and_keeps_a_backup(ca):
    assert ca("cert", "issue", "localhost").exit_code == 0
    old = (ca.home / "certs" / "localhost" / "key.pem").read_bytes()
    result = ca("cert", "issue", "localhost", "127.0.0.1", "--force", "--json")
    assert result.exit_code == 0, result.stderr
    backup = json.loads(result.stdout)["backup"]
    assert open(os.path.join(backup, "key.pem"), "rb").read() == old
    assert (ca.home / "certs" / "localhost" / "key.pem").read_bytes() != old


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("exa mple.com", "'exa mple.com' is not a valid DNS name: spaces are not allowed"),
        ("a..b.test", "empty label"),
        ("a" * 64 + ".test", "the limit is 63"),
        ("*.*.test", "'*' must be the whole left-most label"),
        ("foo*.test", "'*' must be the whole left-most label"),
        ("*", "a bare '*'"),
        ("*.test", "at least two labels"),
        ("under_score.test", "'_' is not allowed"),
        ("-lead.test", "starts or ends with '-'"),
        ("10.0.0.0/8", "IP ranges belong in 'ca init --permit'"),
        ("@example.test", "the part before '@' is empty"),
        ("https://", "no host"),
    ],
)
def test_issue_explains_each_bad_name_before_writing(ca, name, message):
    result = ca("cert", "issue", "localhost", "--", name)
    assert result.exit_code == 6, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]
    assert not (ca.home / "certs").exists()


def test_issue_without_names_is_an_error(ca):
    result = ca("cert", "issue")
    assert result.exit_code == 6
    assert "no names given" in result.stderr


def test_issue_without_a_ca_says_how_to_make_one(run):
    result = run("cert", "issue", "localhost")
    assert result.exit_code == 6
    assert result.stderr.strip() == f"error: no CA in {run.home}; run: tlskit ca init"


def test_client_profile_and_both(ca):
    assert ca("cert", "issue", "--client", "alice").exit_code == 0
    leaf = _leaf(ca, "alice")
    assert pki.eku_of(leaf) == ["clientAuth"]
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    assert ca("cert", "verify", "alice", "--purpose", "client").exit_code == 0
    as_server = ca("cert", "verify", "alice", "--purpose", "server")
    assert as_server.exit_code == 5
    assert "wrong key usage for a server" in as_server.stdout
    assert ca("cert", "issue", "--client", "--server", "both.test").exit_code == 0
    assert pki.eku_of(_leaf(ca, "both.test")) == ["serverAuth", "clientAuth"]


def test_days_over_825_warns_about_apple(ca):
    result = ca("cert", "issue", "localhost", "--days", "1000")
    assert result.exit_code == 0
    assert "Apple" in result.stderr and "825" in result.stderr


def test_issue_from_a_csr_keeps_its_key(ca, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "api.test")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("api.test"), x509.DNSName("www.api.test")]), False)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "api.csr"
    path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    result = ca("cert", "issue", "--csr", str(path))
    assert result.exit_code == 0, result.stderr
    leaf = _leaf(ca, "api.test")
    assert leaf.public_key().public_numbers() == key.public_key().public_numbers()
    assert pki.sans_of(leaf) == ["DNS:api.test", "DNS:www.api.test"]
    assert not (ca.home / "certs" / "api.test" / "key.pem").exists()


def test_p12_is_written_and_readable(ca, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("p12-secret\n")
    result = ca("cert", "issue", "localhost", "--p12", "--p12-password-file", str(pw))
    assert result.exit_code == 0, result.stderr
    p12 = ca.home / "certs" / "localhost" / "cert.p12"
    assert stat.S_IMODE(os.stat(p12).st_mode) == 0o600
    shown = ca("cert", "show", str(p12), "--p12-password-file", str(pw), "--json")
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout)["chain"][0]["subject"] == "CN=localhost"
    wrong = tmp_path / "wrong"
    wrong.write_text("nope\n")
    refused = ca("cert", "show", str(p12), "--p12-password-file", str(wrong))
    assert refused.exit_code == 6
    assert "PKCS#12" in refused.stderr


def test_p12_without_password_on_a_pipe_is_refused(ca):
    result = ca("cert", "issue", "localhost", "--p12")
    assert result.exit_code == 6
    assert "--p12-password-file" in result.stderr
    assert not (ca.home / "certs" / "localhost").exists()


def test_show_by_name_file_and_chain(ca):
    assert ca("cert", "issue", "localhost", "127.0.0.1").exit_code == 0
    by_name = ca("cert", "show", "localhost")
    assert by_name.exit_code == 0
    for word in ("CN=localhost", "DNS:localhost", "IP:127.0.0.1", "days left", "ecdsa-p256", "serverAuth", "sha256"):
        assert word in by_name.stdout
    leaf = ca("cert", "show", str(ca.home / "certs" / "localhost" / "cert.pem"), "--json")
    assert json.loads(leaf.stdout)["subject"] == "CN=localhost"
    missing = ca("cert", "show", "nothere")
    assert missing.exit_code == 6
    assert "no certificate for 'nothere'; run: tlskit cert issue nothere" in missing.stderr


def test_show_flags_an_expired_certificate(ca, tmp_path):
    import datetime as dt

    store_ca = __import__("tlskit.store", fromlist=["Store"]).Store(ca.home).load_ca()
    old = pki.issue_cert(store_ca, ["old.test"], not_before=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=40), days=10)
    path = tmp_path / "old.pem"
    path.write_bytes(pki.cert_to_pem(old.cert))
    result = ca("cert", "show", str(path))
    assert result.exit_code == 0
    assert "EXPIRED" in result.stdout
    assert "expired on" in result.stderr
    verify = ca("cert", "verify", str(path))
    assert verify.exit_code == 5
    assert "expired on" in verify.stdout


def test_verify_ok_and_its_negative_twins(ca, tmp_path):
    assert ca("cert", "issue", "localhost", "127.0.0.1", "::1").exit_code == 0
    ok = ca("cert", "verify", "localhost", "--host", "::1")
    assert ok.exit_code == 0, ok.stdout
    mismatch = ca("cert", "verify", "localhost", "--host", "api.test", "--json")
    assert mismatch.exit_code == 5
    data = json.loads(mismatch.stdout)
    assert data["ok"] is False
    assert data["reasons"] == ["'api.test' is not among the SANs localhost, 127.0.0.1, ::1"]
    other = pki.create_ca(name="Someone else's CA")
    other_file = tmp_path / "other.crt"
    other_file.write_bytes(pki.cert_to_pem(other.cert))
    foreign = ca("cert", "verify", "localhost", "--ca", str(other_file))
    assert foreign.exit_code == 5
    assert "not signed by this CA" in foreign.stdout
    assert foreign.stderr.startswith("error: CN=localhost does not verify")


def test_list_shows_names_and_days_left(ca):
    assert ca("cert", "list").exit_code == 0
    assert ca("cert", "issue", "localhost", "127.0.0.1").exit_code == 0
    assert ca("cert", "issue", "--client", "alice").exit_code == 0
    text = ca("cert", "list")
    assert "alice" in text.stdout and "localhost" in text.stdout and "825" in text.stdout
    rows = json.loads(ca("cert", "list", "--json").stdout)
    assert [r["name"] for r in rows] == ["alice", "localhost"]
    assert rows[1]["sans"] == ["DNS:localhost", "IP:127.0.0.1"]


def test_python_dash_m_runs_the_cli(tmp_path):
    env = {**os.environ, "TLSKIT_HOME": str(tmp_path / "h"), "NO_COLOR": "1"}
    done = subprocess.run([sys.executable, "-m", "tlskit", "ca", "init", "-q"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "h" / "ca" / "ca.crt").exists()


def test_ed25519_server_certificate_warns_about_browsers(ca):
    result = ca("cert", "issue", "--key-type", "ed25519", "edge.test")
    assert result.exit_code == 0, result.stderr
    assert "do not accept Ed25519 server certificates" in result.stderr
    # Twins: the same key type for a client only, and ECDSA for a server, say nothing about it.
    client = ca("cert", "issue", "--key-type", "ed25519", "--client", "ed-client")
    ecdsa = ca("cert", "issue", "--key-type", "ecdsa-p256", "ec.test")
    assert client.exit_code == ecdsa.exit_code == 0
    assert "Ed25519" not in client.stderr and "Ed25519" not in ecdsa.stderr


def test_rsa_under_2048_bits_is_refused(ca, tmp_path):
    # No key type below rsa-2048 exists: asking for one is a usage error, and nothing is written.
    result = ca("cert", "issue", "--key-type", "rsa-1024", "weak.test")
    assert result.exit_code == 2 and "rsa-1024" in result.stderr
    assert not (ca.home / "certs" / "weak.test").exists()
    # A CSR with a 1024-bit RSA key is refused by the core (pki._check_csr_key), exit 6.
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "weak.test")]))
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "weak.csr"
    path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    refused = ca("cert", "issue", "--csr", str(path))
    assert refused.exit_code == 6 and "RSA-1024" in refused.stderr and "2048" in refused.stderr
    assert "Traceback" not in refused.stderr + refused.stdout
    assert not (ca.home / "certs" / "weak.test").exists()
