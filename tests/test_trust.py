"""tlskit.trust against real trust stores: NSS databases made with certutil, Java keystores made
with keytool, a system-store layout in a temporary directory, and (only with
TLSKIT_TEST_SYSTEM_TRUST=1) this machine's own system store.

Nothing under test is mocked. Each check reads the store back with the tool that owns it
(``certutil -L``, ``keytool -list``, ``openssl verify``), not with tlskit's own parser.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from tlskit import pki, trust
from tlskit.errors import PKIError

CERTUTIL = shutil.which("certutil")
KEYTOOL = shutil.which("keytool")
VFYCHAIN = shutil.which("vfychain")  # NSS's own chain verifier, in libnss3-tools too
needs_certutil = pytest.mark.skipif(CERTUTIL is None, reason="certutil not installed (apt-get install libnss3-tools)")
needs_keytool = pytest.mark.skipif(KEYTOOL is None, reason="keytool not installed (a JDK)")


@pytest.fixture(scope="module")
def ca() -> pki.CA:
    return pki.create_ca("tlskit trust test CA")


@pytest.fixture(scope="module")
def foreign_ca() -> pki.CA:
    return pki.create_ca("someone else's CA")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary user HOME; XDG_CONFIG_HOME follows it so no real Firefox profile is seen."""
    home = tmp_path / "user"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return home


def _pem_file(cert: x509.Certificate, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _tool(*args: str | os.PathLike, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60, check=check,
                          stdin=subprocess.DEVNULL)


def _certutil_list(db: Path) -> str:
    return _tool(CERTUTIL, "-L", "-d", f"sql:{db}").stdout


def _flags(listing: str, nick: str) -> str | None:
    m = re.search(rf"^{re.escape(nick)}\s+(\S*)\s*$", listing, re.M)
    return m.group(1) if m else None


def _new_nssdb(path: Path) -> Path:
    path.mkdir(parents=True)
    _tool(CERTUTIL, "-N", "-d", f"sql:{path}", "--empty-password")
    return path


def _files(db: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(db.iterdir()) if p.is_file()}


def _one(report: trust.TrustReport, **match) -> trust.TrustResult:
    found = [r for r in report.results if all(getattr(r, k) == v for k, v in match.items())]
    assert len(found) == 1, report.results
    return found[0]


# --- names and the report -------------------------------------------------------------------


def test_trust_name_comes_from_the_sha256_fingerprint(ca, foreign_ca):
    name = trust.trust_name(ca.cert)
    assert re.fullmatch(r"tlskit-[0-9a-f]{16}", name)
    assert name[7:] == pki.fingerprint(ca.cert).replace(":", "").lower()[:16]
    assert trust.trust_name(foreign_ca.cert) != name


def test_a_leaf_certificate_is_refused(ca, home):
    leaf = pki.issue_cert(ca, ["localhost"]).cert
    with pytest.raises(PKIError, match="is not a CA certificate"):
        trust.install(leaf, ["nss"], home=home)


def test_an_unknown_target_is_refused(ca, home):
    with pytest.raises(PKIError, match="unknown trust target 'firefox'") as info:
        trust.status(ca.cert, ["firefox"], home=home)
    assert info.value.hint == "use one of: system, nss, java"


def test_report_raises_one_error_naming_every_failure():
    report = trust.TrustReport("install", "tlskit-x", "CN=x", "AA", store_home="/h")
    report.results += [
        trust.TrustResult("nss", "/h/.pki/nssdb", trust.INSTALLED),
        trust.TrustResult("system", "/s/x.crt", trust.FAILED, reason="cannot write /s (needs root)",
                          hint=trust.sudo_hint("install", "system", "/h")),
        trust.TrustResult("java", "/j/cacerts", trust.FAILED, reason="cannot write /j/cacerts (needs root)",
                          hint=trust.sudo_hint("install", "java", "/h")),
    ]
    assert report.to_dict()["ok"] is False
    with pytest.raises(PKIError) as info:
        report.raise_for_failures()
    assert info.value.message == (
        "could not install the CA into 2 trust stores "
        "(system: cannot write /s (needs root), java: cannot write /j/cacerts (needs root))"
    )
    # Both need root: one sudo command for both, with the store named (sudo resets $HOME).
    assert info.value.hint == "run with sudo: sudo tlskit --home /h ca install --target system --target java"
    report.results[1:] = []
    report.raise_for_failures()  # nothing failed: nothing raised


# --- NSS ----------------------------------------------------------------------------------


@needs_certutil
def test_install_creates_the_chromium_nssdb_and_trusts_the_ca_for_tls(ca, home):
    report = trust.install(ca.cert, ["nss"], home=home)
    db = home / ".pki" / "nssdb"
    result = _one(report, target="nss")
    assert (result.store, result.outcome, result.label) == (str(db), trust.INSTALLED, "Chromium")
    assert result.reason == "created the database"
    assert (db / "cert9.db").is_file() and (db / "key4.db").is_file()
    assert stat.S_IMODE(db.stat().st_mode) == 0o700
    name = trust.trust_name(ca.cert)
    assert _flags(_certutil_list(db), name) == "C,,"
    exported = _tool(CERTUTIL, "-L", "-d", f"sql:{db}", "-n", name, "-a").stdout
    assert x509.load_pem_x509_certificate(exported.encode()) == ca.cert
    assert report.ok and report.to_dict()["results"][0]["outcome"] == "installed"


@needs_certutil
def test_second_install_says_already_installed_and_changes_nothing(ca, home):
    trust.install(ca.cert, ["nss"], home=home)
    db = home / ".pki" / "nssdb"
    before = _files(db)
    again = _one(trust.install(ca.cert, ["nss"], home=home), target="nss")
    assert again.outcome == trust.ALREADY_INSTALLED
    assert _files(db) == before


@needs_certutil
def test_uninstall_removes_the_tlskit_entry_and_leaves_a_foreign_one(ca, foreign_ca, home, tmp_path):
    db = _new_nssdb(home / ".pki" / "nssdb")
    _tool(CERTUTIL, "-A", "-d", f"sql:{db}", "-n", "Corp Root", "-t", "C,,", "-i", _pem_file(foreign_ca.cert, tmp_path / "f.pem"))
    assert _one(trust.install(ca.cert, ["nss"], home=home), target="nss").outcome == trust.INSTALLED
    name = trust.trust_name(ca.cert)
    assert _flags(_certutil_list(db), name) == "C,,"

    removed = _one(trust.uninstall(ca.cert, ["nss"], home=home), target="nss")
    assert removed.outcome == trust.REMOVED
    listing = _certutil_list(db)
    assert _flags(listing, name) is None
    assert _flags(listing, "Corp Root") == "C,,"
    assert _one(trust.uninstall(ca.cert, ["nss"], home=home), target="nss").outcome == trust.NOT_INSTALLED


@needs_certutil
def test_status_follows_install_and_uninstall_and_creates_nothing(ca, foreign_ca, home):
    first = _one(trust.status(ca.cert, ["nss"], home=home), target="nss")
    assert first.outcome == trust.NOT_TRUSTED
    assert first.reason == "no database yet (tlskit ca install creates it)"
    assert not (home / ".pki").exists()  # status only looks

    trust.install(ca.cert, ["nss"], home=home)
    assert _one(trust.status(ca.cert, ["nss"], home=home), target="nss").outcome == trust.TRUSTED
    assert _one(trust.status(foreign_ca.cert, ["nss"], home=home), target="nss").outcome == trust.NOT_TRUSTED

    trust.uninstall(ca.cert, ["nss"], home=home)
    assert _one(trust.status(ca.cert, ["nss"], home=home), target="nss").outcome == trust.NOT_TRUSTED


@needs_certutil
def test_firefox_profiles_get_the_ca_too(ca, home):
    profile = _new_nssdb(home / ".mozilla" / "firefox" / "abcd1234.default-release")
    snap = _new_nssdb(home / "snap" / "firefox" / "common" / ".mozilla" / "firefox" / "zz.default")
    (home / ".mozilla" / "firefox" / "Crash Reports").mkdir()  # not a profile: no cert9.db
    dbs = trust.find_nss_databases(home)
    assert [d.path for d in dbs] == [home / ".pki" / "nssdb", profile, snap]

    report = trust.install(ca.cert, ["nss"], home=home)
    assert [(r.store, r.outcome) for r in report.results] == [
        (str(home / ".pki" / "nssdb"), trust.INSTALLED),
        (str(profile), trust.INSTALLED),
        (str(snap), trust.INSTALLED),
    ]
    assert _one(report, store=str(profile)).label == "Firefox profile abcd1234.default-release"
    assert _one(report, store=str(snap)).label == "Firefox (snap) profile zz.default"
    name = trust.trust_name(ca.cert)
    for db in (profile, snap):
        assert _flags(_certutil_list(db), name) == "C,,"

    assert {r.outcome for r in trust.uninstall(ca.cert, ["nss"], home=home).results} == {trust.REMOVED}
    for db in (profile, snap):
        assert _flags(_certutil_list(db), name) is None


@needs_certutil
def test_the_same_ca_under_a_foreign_nickname_is_never_changed(ca, home, tmp_path):
    # NSS keeps one nickname per certificate; `certutil -A -n tlskit-…` would silently
    # re-trust this entry instead of adding ours.
    db = _new_nssdb(home / ".pki" / "nssdb")
    _tool(CERTUTIL, "-A", "-d", f"sql:{db}", "-n", "my own copy", "-t", ",,", "-i", _pem_file(ca.cert, tmp_path / "ca.pem"))
    result = _one(trust.install(ca.cert, ["nss"], home=home), target="nss")
    assert result.outcome == trust.FAILED
    assert "as 'my own copy' with trust ',,'" in result.reason
    assert result.hint == f"trust it yourself: certutil -M -d sql:{db} -n 'my own copy' -t C,,"
    assert _flags(_certutil_list(db), "my own copy") == ",,"

    _tool(CERTUTIL, "-M", "-d", f"sql:{db}", "-n", "my own copy", "-t", "C,,")
    already = _one(trust.install(ca.cert, ["nss"], home=home), target="nss")
    assert (already.outcome, already.reason) == (trust.ALREADY_INSTALLED, "as 'my own copy', an entry tlskit did not create")
    status = _one(trust.status(ca.cert, ["nss"], home=home), target="nss")
    assert status.outcome == trust.TRUSTED
    assert _one(trust.uninstall(ca.cert, ["nss"], home=home), target="nss").outcome == trust.NOT_INSTALLED
    assert _flags(_certutil_list(db), "my own copy") == "C,,"


@needs_certutil
def test_install_restores_trust_flags_someone_removed(ca, home):
    trust.install(ca.cert, ["nss"], home=home)
    db = home / ".pki" / "nssdb"
    name = trust.trust_name(ca.cert)
    _tool(CERTUTIL, "-M", "-d", f"sql:{db}", "-n", name, "-t", ",,")
    status = _one(trust.status(ca.cert, ["nss"], home=home), target="nss")
    assert status.outcome == trust.NOT_TRUSTED and "not trusted for TLS" in status.reason
    fixed = _one(trust.install(ca.cert, ["nss"], home=home), target="nss")
    assert (fixed.outcome, fixed.reason) == (trust.INSTALLED, "restored the trust flags to C,,")
    assert _flags(_certutil_list(db), name) == "C,,"


def _forged_leaf(ca: pki.CA, name: str, path: Path) -> Path:
    """A server certificate for ``name`` signed with the CA key directly, the way a thief of
    ca.key would, bypassing tlskit's own refusal to sign outside the name constraints."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    try:
        san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        san = x509.DNSName(name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([san]), critical=True)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return _pem_file(cert, path)


@needs_certutil
@pytest.mark.skipif(VFYCHAIN is None, reason="vfychain not installed (libnss3-tools)")
def test_nss_verifies_a_leaf_after_install_and_not_after_uninstall_and_enforces_the_constraints(home, tmp_path):
    ca = pki.create_ca("tlskit constrained test CA", permit=["localhost", ".test"])
    leaf = _pem_file(pki.issue_cert(ca, ["app.test"]).cert, tmp_path / "leaf.pem")
    outside = _forged_leaf(ca, "bank.example", tmp_path / "outside.pem")
    db = home / ".pki" / "nssdb"

    def vfychain(cert: Path) -> subprocess.CompletedProcess[str]:
        # -u 1: certUsageSSLServer, the check a browser makes. The classic verifier names the
        # constraint violation; libpkix (-pp) refuses too, but with a vague -8157.
        return _tool(VFYCHAIN, "-d", f"sql:{db}", "-a", "-u", "1", cert, check=False)

    trust.install(ca.cert, ["nss"], home=home)
    assert vfychain(leaf).returncode == 0
    refused = vfychain(outside)
    assert refused.returncode != 0
    assert "-8080" in refused.stdout + refused.stderr  # SEC_ERROR_CERT_NOT_IN_NAME_SPACE
    trust.uninstall(ca.cert, ["nss"], home=home)
    untrusted = vfychain(leaf)
    assert untrusted.returncode != 0
    assert "-8179" in untrusted.stdout + untrusted.stderr  # SEC_ERROR_UNKNOWN_ISSUER


@pytest.mark.parametrize("name", ["bank.example", "192.0.2.1"])
def test_constraints_in_the_root_are_enforced_by_openssl_and_gnutls(name, tmp_path):
    """docs/trust.md#name-constraints says these two enforce a root's constraints: prove it."""
    ca = pki.create_ca("tlskit constrained test CA", permit=["localhost", ".test"])
    ca_file = _pem_file(ca.cert, tmp_path / "ca.pem")
    inside = _forged_leaf(ca, "app.test", tmp_path / "inside.pem")
    outside = _forged_leaf(ca, name, tmp_path / "outside.pem")
    checked = 0
    if shutil.which("openssl"):
        checked += 1
        assert _tool("openssl", "verify", "-CAfile", ca_file, inside, check=False).returncode == 0
        bad = _tool("openssl", "verify", "-CAfile", ca_file, outside, check=False)
        assert bad.returncode != 0
        # An IP is refused by the exclusion tlskit adds, a DNS name by the permitted list.
        assert ("excluded subtree violation" if name[0].isdigit() else "permitted subtree violation") in bad.stdout + bad.stderr
    if shutil.which("certtool"):
        checked += 1
        ok = _tool("certtool", "--verify", "--load-ca-certificate", ca_file, "--infile", inside, check=False)
        assert "The certificate is trusted" in ok.stdout
        bad = _tool("certtool", "--verify", "--load-ca-certificate", ca_file, "--infile", outside, check=False)
        assert "violates the signer's constraints" in bad.stdout
    if not checked:
        pytest.skip("neither openssl nor certtool (gnutls-bin) is installed")


def test_missing_certutil_fails_when_asked_for_and_is_skipped_otherwise(ca, home, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"  # only what the fake system store's rebuild needs: no certutil, no keytool
    bin_dir.mkdir()
    for tool in ("sh", "cat"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    asked = _one(trust.install(ca.cert, ["nss"], home=home), target="nss")
    assert asked.outcome == trust.FAILED
    assert asked.reason.startswith("certutil not found")
    assert asked.hint == trust.CERTUTIL_HINT
    assert "apt-get install libnss3-tools" in asked.hint and "dnf install nss-tools" in asked.hint
    assert "brew install nss" in asked.hint
    implicit = trust.install(ca.cert, home=home, system_store=_fake_system(tmp_path / "sys"))
    assert _one(implicit, target="system").outcome == trust.INSTALLED
    assert _one(implicit, target="nss").outcome == trust.SKIPPED
    assert implicit.ok
    assert _one(implicit, target="java").outcome == trust.SKIPPED  # keytool is not on this PATH either
    assert not (home / ".pki").exists()


# --- Java ---------------------------------------------------------------------------------


@pytest.fixture
def keystore(tmp_path: Path, foreign_ca) -> Path:
    """A PKCS12 keystore with someone else's key pair and trusted CA in it."""
    ks = tmp_path / "store.p12"
    _tool(KEYTOOL, "-genkeypair", "-noprompt", "-keystore", ks, "-storetype", "PKCS12", "-storepass", "changeit",
          "-alias", "app-key", "-keyalg", "EC", "-groupname", "secp256r1", "-dname", "CN=app", "-validity", "2")
    _tool(KEYTOOL, "-importcert", "-noprompt", "-keystore", ks, "-storepass", "changeit", "-alias", "corp-root",
          "-file", _pem_file(foreign_ca.cert, tmp_path / "corp.pem"))
    return ks


def _keytool_list(ks: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _tool(KEYTOOL, "-list", "-keystore", ks, "-storepass", "changeit", *args, check=False)


@needs_keytool
def test_java_install_status_uninstall_on_a_keystore(ca, keystore, home):
    name = trust.trust_name(ca.cert)
    assert _one(trust.status(ca.cert, ["java"], java_keystore=keystore), target="java").outcome == trust.NOT_TRUSTED
    installed = _one(trust.install(ca.cert, ["java"], java_keystore=keystore), target="java")
    assert (installed.store, installed.outcome) == (str(keystore), trust.INSTALLED)
    listed = _keytool_list(keystore, "-alias", name, "-rfc")
    assert listed.returncode == 0 and "Entry type: trustedCertEntry" in listed.stdout
    assert x509.load_pem_x509_certificate(listed.stdout[listed.stdout.index("-----BEGIN"):].encode()) == ca.cert

    before = keystore.read_bytes()
    assert _one(trust.install(ca.cert, ["java"], java_keystore=keystore), target="java").outcome == trust.ALREADY_INSTALLED
    assert keystore.read_bytes() == before
    assert _one(trust.status(ca.cert, ["java"], java_keystore=keystore), target="java").outcome == trust.TRUSTED

    assert _one(trust.uninstall(ca.cert, ["java"], java_keystore=keystore), target="java").outcome == trust.REMOVED
    assert _keytool_list(keystore, "-alias", name).returncode != 0
    for alias in ("app-key", "corp-root"):
        assert _keytool_list(keystore, "-alias", alias).returncode == 0, alias
    assert _one(trust.status(ca.cert, ["java"], java_keystore=keystore), target="java").outcome == trust.NOT_TRUSTED
    assert _one(trust.uninstall(ca.cert, ["java"], java_keystore=keystore), target="java").outcome == trust.NOT_INSTALLED


@needs_keytool
def test_java_status_sees_the_ca_under_another_alias_and_uninstall_leaves_it(foreign_ca, keystore):
    status = _one(trust.status(foreign_ca.cert, ["java"], java_keystore=keystore), target="java")
    assert (status.outcome, status.reason) == (trust.TRUSTED, "as alias 'corp-root', an entry tlskit did not create")
    gone = _one(trust.uninstall(foreign_ca.cert, ["java"], java_keystore=keystore), target="java")
    assert gone.outcome == trust.NOT_INSTALLED
    assert _keytool_list(keystore, "-alias", "corp-root").returncode == 0


@needs_keytool
def test_java_wrong_store_password_fails_with_keytool_words(ca, keystore):
    result = _one(trust.install(ca.cert, ["java"], java_keystore=keystore, java_storepass="n0t-the-Pa55"), target="java")
    assert result.outcome == trust.FAILED
    assert "keytool" in result.reason and "password was incorrect" in result.reason
    assert "n0t-the-Pa55" not in result.reason  # the password went through the environment, not argv


@needs_keytool
def test_java_home_cacerts_is_the_default_keystore(keystore, tmp_path, monkeypatch):
    jdk = tmp_path / "jdk"
    (jdk / "lib" / "security").mkdir(parents=True)
    shutil.copy(keystore, jdk / "lib" / "security" / "cacerts")
    monkeypatch.setenv("JAVA_HOME", str(jdk))
    found = trust.find_java_keystore()
    assert found.path == jdk / "lib" / "security" / "cacerts"
    assert found.keytool == KEYTOOL  # JAVA_HOME has no bin/keytool: the one on PATH
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nojdk"))
    with pytest.raises(PKIError, match=r"no lib/security/cacerts in JAVA_HOME="):
        trust.find_java_keystore()


def test_java_without_keytool_is_skipped_with_a_hint(ca, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    result = _one(trust.status(ca.cert, ["java"]), target="java")
    assert (result.outcome, result.reason) == (trust.SKIPPED, "keytool not found")
    assert "JAVA_HOME" in result.hint


# --- system: a Debian-like layout in a temporary directory -----------------------------------


def _fake_system(root: Path, update: tuple[str, ...] | None = None) -> trust.SystemStore:
    """Anchors and a bundle under ``root``; the rebuild is what update-ca-certificates does, in sh."""
    anchors = root / "anchors"
    anchors.mkdir(parents=True, exist_ok=True)
    bundle = root / "bundle.pem"
    bundle.write_bytes(b"")
    rebuild = ("sh", "-c", f'cat "{anchors}"/*.crt > "{bundle}" 2>/dev/null || : > "{bundle}"')
    return trust.SystemStore("debian", "test system store", anchors, ".crt", update or rebuild, update or rebuild, bundle)


def test_system_install_writes_the_anchor_and_checks_the_bundle(ca, tmp_path):
    store = _fake_system(tmp_path / "sys")
    path = store.anchors / f"{trust.trust_name(ca.cert)}.crt"
    assert _one(trust.status(ca.cert, ["system"], system_store=store), target="system").outcome == trust.NOT_TRUSTED

    result = _one(trust.install(ca.cert, ["system"], system_store=store), target="system")
    assert (result.store, result.outcome) == (str(path), trust.INSTALLED)
    assert x509.load_pem_x509_certificate(path.read_bytes()) == ca.cert
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert ca.cert.public_bytes(serialization.Encoding.PEM) in store.bundle.read_bytes()
    assert _one(trust.status(ca.cert, ["system"], system_store=store), target="system").outcome == trust.TRUSTED

    mtime = path.stat().st_mtime_ns
    again = _one(trust.install(ca.cert, ["system"], system_store=store), target="system")
    assert again.outcome == trust.ALREADY_INSTALLED
    assert path.stat().st_mtime_ns == mtime


def test_system_status_says_when_the_bundle_was_not_rebuilt(ca, tmp_path):
    store = _fake_system(tmp_path / "sys")
    _pem_file(ca.cert, store.anchors / f"{trust.trust_name(ca.cert)}.crt")
    status = _one(trust.status(ca.cert, ["system"], system_store=store), target="system")
    assert status.outcome == trust.NOT_TRUSTED
    assert "does not contain the CA yet" in status.reason and status.hint.startswith("run: sh -c")
    fixed = _one(trust.install(ca.cert, ["system"], system_store=store), target="system")
    assert (fixed.outcome, fixed.reason) == (trust.INSTALLED, "rebuilt the bundle")


def test_system_uninstall_removes_only_its_file(ca, foreign_ca, tmp_path):
    store = _fake_system(tmp_path / "sys")
    other = _pem_file(foreign_ca.cert, store.anchors / "corp-root.crt")
    trust.install(ca.cert, ["system"], system_store=store)
    removed = _one(trust.uninstall(ca.cert, ["system"], system_store=store), target="system")
    assert removed.outcome == trust.REMOVED
    assert sorted(p.name for p in store.anchors.iterdir()) == ["corp-root.crt"]
    assert other.read_bytes() in store.bundle.read_bytes()
    assert ca.cert.public_bytes(serialization.Encoding.PEM) not in store.bundle.read_bytes()
    assert _one(trust.uninstall(ca.cert, ["system"], system_store=store), target="system").outcome == trust.NOT_INSTALLED


def test_system_uninstall_tells_the_update_hooks_what_was_removed(ca, tmp_path):
    # Debian's --fresh rebuild never reports the removal to its hooks; tlskit sends the line
    # itself, or ca-certificates-java would keep the CA in the JDK's cacerts.
    base = _fake_system(tmp_path / "sys")
    hooks = tmp_path / "update.d"
    hooks.mkdir()
    heard = tmp_path / "heard.txt"
    hook = hooks / "record"
    hook.write_text(f'#!/bin/sh\ncat >> "{heard}"\n')
    hook.chmod(0o755)
    (hooks / "record.dpkg-old").write_text("#!/bin/sh\nexit 9\n")  # run-parts skips such names
    (hooks / "record.dpkg-old").chmod(0o755)
    store = trust.SystemStore(base.kind, base.label, base.anchors, base.suffix, base.update, base.update_remove,
                              base.bundle, hooks=hooks, links=tmp_path / "links")
    trust.install(ca.cert, ["system"], system_store=store)
    assert not heard.exists()
    assert _one(trust.uninstall(ca.cert, ["system"], system_store=store), target="system").outcome == trust.REMOVED
    assert heard.read_text() == f"-{tmp_path / 'links' / trust.trust_name(ca.cert)}.pem\n"


def test_system_install_rolls_back_when_the_rebuild_fails(ca, tmp_path):
    store = _fake_system(tmp_path / "sys", update=("sh", "-c", "echo 'rehash: disk full' >&2; exit 3"))
    result = _one(trust.install(ca.cert, ["system"], system_store=store), target="system")
    assert result.outcome == trust.FAILED
    assert result.reason == "`sh -c 'echo '\"'\"'rehash: disk full'\"'\"' >&2; exit 3'` failed (exit 3): rehash: disk full"
    assert list(store.anchors.iterdir()) == []  # not left half-installed


def test_check_writable_passes_for_a_writable_path_that_does_not_exist_yet(tmp_path):
    trust.check_writable(tmp_path / "a" / "b.crt", action="install", target="system")


_NOBODY = """
import sys
from pathlib import Path
from cryptography import x509
from tlskit import trust
cert = x509.load_pem_x509_certificate(Path(sys.argv[1]).read_bytes())
store = trust.SystemStore("debian", "test", Path(sys.argv[2]), ".crt", ("true",), ("true",), None)
r = trust.install(cert, ["system"], system_store=store, store_home="/home/u/tlskit").results[0]
print(r.outcome); print(r.reason); print(r.hint)
"""


def _as_unprivileged() -> list[str] | None:
    """A command prefix that runs as a user without root, or None when there is none here."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        return None
    try:
        import pwd

        pwd.getpwnam("nobody")
    except KeyError:
        return None
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def test_a_store_owned_by_root_is_explained_with_sudo_for_an_ordinary_user(ca):
    prefix = _as_unprivileged()
    if prefix is None:
        pytest.skip("running as root without setpriv or a 'nobody' user to drop privileges")
    # Root may write anywhere, so the unwritable store is checked from an unprivileged process.
    work = Path(tempfile.mkdtemp(prefix="tlskit-trust-"))
    try:
        work.chmod(0o755)
        anchors = work / "anchors"
        anchors.mkdir(mode=0o755)
        if os.geteuid() != 0:
            anchors.chmod(0o555)  # ours, but not writable
        cert = _pem_file(ca.cert, work / "ca.pem")
        cert.chmod(0o644)
        done = subprocess.run([*prefix, sys.executable, "-c", _NOBODY, str(cert), str(anchors)],
                              capture_output=True, text=True, timeout=60, cwd=work)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [
            "failed",
            f"cannot write {anchors} (needs root)",
            "run with sudo: sudo tlskit --home /home/u/tlskit ca install --target system",
        ]
        assert list(anchors.iterdir()) == []
    finally:
        if os.geteuid() != 0:
            (work / "anchors").chmod(0o755)
        shutil.rmtree(work)


# --- system: this machine's store, only when asked (CI) --------------------------------------


@pytest.mark.system_trust
@pytest.mark.skipif(os.environ.get("TLSKIT_TEST_SYSTEM_TRUST") != "1", reason="changes the system trust store: set TLSKIT_TEST_SYSTEM_TRUST=1")
def test_system_store_for_real_openssl_trusts_a_leaf_after_install_and_not_after_uninstall(tmp_path):
    store = trust.detect_system_store()
    if store is None or store.kind != "debian":
        pytest.skip(f"this test knows the Debian layout; found {store.kind if store else 'none'}")
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed")
    ca = pki.create_ca("tlskit system trust test CA")
    leaf = _pem_file(pki.issue_cert(ca, ["localhost"]).cert, tmp_path / "leaf.pem")

    def verify() -> list[subprocess.CompletedProcess[str]]:
        return [
            _tool(openssl, "verify", "-purpose", "sslserver", "-verify_hostname", "localhost", "-CAfile", store.bundle, leaf, check=False),
            _tool(openssl, "verify", "-purpose", "sslserver", "-CApath", "/etc/ssl/certs", leaf, check=False),
        ]

    assert [v.returncode for v in verify()] == [2, 2]  # the negative twin: unknown CA before
    try:
        installed = _one(trust.install(ca.cert, ["system"]), target="system")
        assert installed.outcome == trust.INSTALLED, installed
        assert [v.returncode for v in verify()] == [0, 0], [v.stdout + v.stderr for v in verify()]
        assert _one(trust.status(ca.cert, ["system"]), target="system").outcome == trust.TRUSTED
        assert _one(trust.install(ca.cert, ["system"]), target="system").outcome == trust.ALREADY_INSTALLED
    finally:
        removed = _one(trust.uninstall(ca.cert, ["system"]), target="system")
    assert removed.outcome == trust.REMOVED, removed
    assert [v.returncode for v in verify()] == [2, 2]
    assert _one(trust.status(ca.cert, ["system"]), target="system").outcome == trust.NOT_TRUSTED
    assert not (store.links / f"{trust.trust_name(ca.cert)}.pem").exists()
    java_cacerts = Path("/etc/ssl/certs/java/cacerts")
    if KEYTOOL and java_cacerts.is_file():
        # ca-certificates-java copied the CA in at install; it must be gone too.
        listing = _tool(KEYTOOL, "-list", "-keystore", java_cacerts, "-storepass", "changeit").stdout
        assert trust.trust_name(ca.cert) not in listing
