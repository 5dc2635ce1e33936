"""``tlskit ca init`` / ``ca show`` through the real CLI."""

from __future__ import annotations

import json
import os
import stat

from cryptography import x509

from tlskit import pki


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_ca_init_creates_a_root_with_0600_key_in_a_0700_home(run):
    result = run("ca", "init")
    assert result.exit_code == 0, result.stderr
    assert _mode(run.home) == 0o700
    assert _mode(run.home / "ca") == 0o700
    assert _mode(run.home / "ca" / "ca.key") == 0o600
    cert = x509.load_pem_x509_certificate((run.home / "ca" / "ca.crt").read_bytes())
    assert pki.is_ca(cert)
    assert "tlskit CA" in cert.subject.rfc4514_string()
    assert "next: tlskit cert issue" in result.stderr


def test_ca_init_refuses_to_overwrite_without_force(run):
    assert run("ca", "init").exit_code == 0
    before = {p: p.read_bytes() for p in (run.home / "ca").iterdir()}
    result = run("ca", "init")
    assert result.exit_code == 6
    assert result.stderr.strip().splitlines() == [
        f"error: a CA already exists in {run.home / 'ca'}; pass --force to replace it (the old files are kept as a backup)"
    ]
    assert {p: p.read_bytes() for p in (run.home / "ca").iterdir()} == before


def test_ca_init_force_keeps_a_backup(run):
    assert run("ca", "init").exit_code == 0
    old_key = (run.home / "ca" / "ca.key").read_bytes()
    result = run("ca", "init", "--force", "--json")
    assert result.exit_code == 0, result.stderr
    backup = json.loads(result.stdout)["backup"]
    assert backup and (run.home / "backups") in [p.parent for p in [__import__("pathlib").Path(backup)]]
    assert (__import__("pathlib").Path(backup) / "ca.key").read_bytes() == old_key
    assert _mode(__import__("pathlib").Path(backup) / "ca.key") == 0o600
    assert (run.home / "ca" / "ca.key").read_bytes() != old_key


def test_ca_init_options_and_json(run):
    result = run("ca", "init", "--name", "My Dev CA", "--key-type", "rsa-2048", "--days", "30", "--json")
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["subject"].startswith("CN=My Dev CA")
    assert info["key_type"] == "rsa-2048"
    assert info["days_left"] == 30
    assert info["is_ca"] is True
    assert info["paths"]["key"].endswith("ca/ca.key")


def test_ca_init_with_permit_adds_name_constraints(run):
    result = run("ca", "init", "--permit", "localhost", "--permit", ".test", "--permit", "127.0.0.0/8", "--json")
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["permitted"] == ["DNS:localhost", "DNS:test", "IP:127.0.0.0/8"]
    assert run("cert", "issue", "localhost", "app.test", "127.0.0.1").exit_code == 0
    refused = run("cert", "issue", "example.com")
    assert refused.exit_code == 6
    assert "'example.com' is outside this CA's name constraints" in refused.stderr
    assert not (run.home / "certs" / "example.com").exists()


def test_ca_init_rejects_a_bad_permit_value(run):
    result = run("ca", "init", "--permit", "exa mple")
    assert result.exit_code == 6
    assert "spaces are not allowed" in result.stderr
    assert not (run.home / "ca" / "ca.key").exists()


def test_ca_init_rejects_unknown_key_type_as_usage_error(run):
    result = run("ca", "init", "--key-type", "dsa-1024")
    assert result.exit_code == 2
    assert "dsa-1024" in result.stderr


def test_encrypted_ca_needs_its_passphrase(run, tmp_path):
    secret = tmp_path / "pass.txt"
    secret.write_text("correct horse battery staple\n")
    result = run("ca", "init", "--encrypt", "--passphrase-file", str(secret))
    assert result.exit_code == 0, result.stderr
    assert b"ENCRYPTED" in (run.home / "ca" / "ca.key").read_bytes()

    missing = run("cert", "issue", "localhost")
    assert missing.exit_code == 6
    assert "is encrypted" in missing.stderr and "TLSKIT_CA_PASSPHRASE" in missing.stderr
    assert not (run.home / "certs" / "localhost").exists()

    wrong = run("cert", "issue", "localhost", env={"TLSKIT_CA_PASSPHRASE": "wrong"})
    assert wrong.exit_code == 6
    assert "wrong passphrase" in wrong.stderr

    ok_env = run("cert", "issue", "localhost", env={"TLSKIT_CA_PASSPHRASE": "correct horse battery staple"})
    assert ok_env.exit_code == 0, ok_env.stderr
    ok_file = run("cert", "issue", "app.test", "--passphrase-file", str(secret))
    assert ok_file.exit_code == 0, ok_file.stderr


def test_encrypt_without_a_passphrase_is_refused(run):
    result = run("ca", "init", "--encrypt")
    assert result.exit_code == 6
    assert "--encrypt needs a passphrase" in result.stderr
    assert not (run.home / "ca").exists() or not (run.home / "ca" / "ca.key").exists()


def test_encrypt_with_passphrase_from_a_prompt(run, monkeypatch):
    monkeypatch.setattr("tlskit.cli.ca._stdin_is_tty", lambda: True)
    result = run("ca", "init", "--encrypt", input="s3cret-pass\ns3cret-pass\n")
    assert result.exit_code == 0, result.stderr
    issued = run("cert", "issue", "localhost", input="s3cret-pass\n")
    assert issued.exit_code == 0, issued.stderr


def test_ca_show_text_and_json(run):
    assert run("ca", "init", "--permit", "localhost").exit_code == 0
    text = run("ca", "show")
    assert text.exit_code == 0
    for word in ("subject", "sha256", "permits", "DNS:localhost", "ca.crt", "key encrypted"):
        assert word in text.stdout
    info = json.loads(run("ca", "show", "--json").stdout)
    assert info["encrypted"] is False
    assert len(info["sha256"].split(":")) == 32


def test_ca_show_without_ca_explains(run):
    result = run("ca", "show")
    assert result.exit_code == 6
    assert result.stderr.strip() == f"error: no CA in {run.home}; run: tlskit ca init"


def test_ca_init_force_asks_twice_when_certificates_would_be_orphaned(run):
    assert run("ca", "init").exit_code == 0
    assert run("cert", "issue", "localhost").exit_code == 0
    old = (run.home / "ca" / "ca.crt").read_bytes()
    refused = run("ca", "init", "--force")
    assert refused.exit_code == 6
    assert "would stop 1 certificate(s) it issued from being trusted (localhost)" in refused.stderr
    assert "--force --yes" in refused.stderr
    assert (run.home / "ca" / "ca.crt").read_bytes() == old
    assert run("ca", "init", "--force", "--yes").exit_code == 0
    assert (run.home / "ca" / "ca.crt").read_bytes() != old
