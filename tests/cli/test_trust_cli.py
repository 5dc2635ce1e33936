"""``tlskit ca install`` / ``ca uninstall`` / ``ca status`` through the real CLI.

The NSS and Java targets run against a temporary HOME and JAVA_HOME. The system store of
this machine is only read here (``ca status``), never changed: changing it is
tests/test_trust.py's job, and only with TLSKIT_TEST_SYSTEM_TRUST=1.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from rich.console import Console

from tlskit import trust

CERTUTIL = shutil.which("certutil")
KEYTOOL = shutil.which("keytool")
needs_certutil = pytest.mark.skipif(CERTUTIL is None, reason="certutil not installed (apt-get install libnss3-tools)")
needs_keytool = pytest.mark.skipif(KEYTOOL is None, reason="keytool not installed (a JDK)")


@pytest.fixture
def user_home(run, monkeypatch) -> Path:
    """The HOME of the user whose browsers are changed, next to the tlskit store."""
    home = run.tmp.parent / "user"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    return home


def _ca_name(run) -> str:
    return json.loads(run("ca", "show", "--json").stdout)["sha256"].replace(":", "").lower()[:16]


def _certutil_list(db: Path) -> str:
    return subprocess.run([CERTUTIL, "-L", "-d", f"sql:{db}"], capture_output=True, text=True, timeout=30, check=True).stdout


@needs_certutil
def test_ca_install_nss_then_status_then_uninstall(run, user_home):
    assert run("ca", "init").exit_code == 0
    name = f"tlskit-{_ca_name(run)}"
    db = user_home / ".pki" / "nssdb"

    first = run("ca", "install", "--target", "nss")
    assert first.exit_code == 0, first.stderr
    assert first.stdout.splitlines()[0].split() == ["nss", "installed", str(db), "(Chromium)"]
    assert "created the database" in first.stdout
    assert f"as {name}" in first.stderr
    assert "installed the CA into 1 trust store(s)" in first.stderr
    assert re.search(rf"^{name}\s+C,,\s*$", _certutil_list(db), re.M)

    second = run("ca", "install", "--target", "nss")
    assert second.exit_code == 0
    assert second.stdout.split()[:3] == ["nss", "already", "installed"]
    assert "nothing changed: the CA was already installed" in second.stderr

    status = run("ca", "status", "--target", "nss", "--json")
    assert status.exit_code == 0
    data = json.loads(status.stdout)
    assert data["name"] == name and data["action"] == "status" and data["ok"] is True
    assert [(r["target"], r["store"], r["outcome"]) for r in data["results"]] == [("nss", str(db), "trusted")]

    removed = run("ca", "uninstall", "--target", "nss")
    assert removed.exit_code == 0
    assert removed.stdout.split()[:2] == ["nss", "removed"]
    assert name not in _certutil_list(db)
    assert json.loads(run("ca", "status", "--target", "nss", "--json").stdout)["results"][0]["outcome"] == "not trusted"
    again = run("ca", "uninstall", "--target", "nss")
    assert again.exit_code == 0
    assert "nothing changed: tlskit had not installed this CA anywhere" in again.stderr


@needs_certutil
def test_ca_install_json_lists_every_nss_database(run, user_home):
    assert run("ca", "init").exit_code == 0
    profile = user_home / ".mozilla" / "firefox" / "p1.default"
    profile.mkdir(parents=True)
    subprocess.run([CERTUTIL, "-N", "-d", f"sql:{profile}", "--empty-password"], check=True, timeout=30)
    result = run("ca", "install", "--target", "nss", "--json", "-q")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert [(r["store"], r["label"], r["outcome"]) for r in data["results"]] == [
        (str(user_home / ".pki" / "nssdb"), "Chromium", "installed"),
        (str(profile), "Firefox profile p1.default", "installed"),
    ]
    assert result.stderr == ""  # -q: only results and errors


def test_ca_status_reads_every_target_and_changes_nothing(run, user_home):
    assert run("ca", "init").exit_code == 0
    result = run("ca", "status", "--json")
    assert result.exit_code == 0, result.stderr
    targets = [r["target"] for r in json.loads(result.stdout)["results"]]
    assert targets[0] == "system" and "nss" in targets and targets[-1] == "java"
    assert not (user_home / ".pki").exists()


def test_ca_install_without_a_ca_says_run_ca_init(run, user_home):
    result = run("ca", "install", "--target", "nss")
    assert result.exit_code == 6
    assert result.stderr.strip().splitlines() == [f"error: no CA in {run.home}; run: tlskit ca init"]


def test_ca_install_without_certutil_names_the_package(run, user_home, monkeypatch):
    assert run("ca", "init").exit_code == 0
    empty = run.tmp.parent / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    result = run("ca", "install", "--target", "nss")
    assert result.exit_code == 6
    assert result.stdout.split()[:2] == ["nss", "failed"]
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: could not install the CA into NSS databases: certutil not found")
    assert error.endswith(f"; {trust.CERTUTIL_HINT}")
    assert "apt-get install libnss3-tools" in error


@needs_keytool
def test_ca_install_java_uses_the_cacerts_of_java_home(run, user_home, monkeypatch):
    assert run("ca", "init").exit_code == 0
    name = f"tlskit-{_ca_name(run)}"
    cacerts = run.tmp.parent / "jdk" / "lib" / "security" / "cacerts"
    cacerts.parent.mkdir(parents=True)
    subprocess.run([KEYTOOL, "-genkeypair", "-noprompt", "-keystore", str(cacerts), "-storetype", "PKCS12",
                    "-storepass", "changeit", "-alias", "other", "-keyalg", "EC", "-dname", "CN=other"],
                   check=True, capture_output=True, timeout=60)
    monkeypatch.setenv("JAVA_HOME", str(cacerts.parents[2]))

    result = run("ca", "install", "--target", "java")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split()[:4] == ["java", "installed", str(cacerts), "(JDK"]

    def listed(alias: str) -> int:
        return subprocess.run([KEYTOOL, "-list", "-keystore", str(cacerts), "-storepass", "changeit", "-alias", alias],
                              capture_output=True, timeout=60).returncode

    assert listed(name) == 0
    removed = run("ca", "uninstall", "--target", "java", "--json")
    assert removed.exit_code == 0
    assert json.loads(removed.stdout)["results"][0]["outcome"] == "removed"
    assert listed(name) != 0 and listed("other") == 0


def _unprivileged() -> list[str] | None:
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        return None
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def test_ca_install_system_as_a_user_explains_sudo_without_a_traceback():
    store = trust.detect_system_store()
    if store is None or store.kind == "macos":
        pytest.skip("no Linux system trust store layout on this machine")
    prefix = _unprivileged()
    if prefix is None:
        pytest.skip("running as root without setpriv to drop privileges")
    # Root may write anywhere: the real CLI runs as 'nobody' (or as the unprivileged tester).
    work = Path(tempfile.mkdtemp(prefix="tlskit-trust-cli-"))
    try:
        work.chmod(0o755)
        home = work / "store"
        env = {**os.environ, "HOME": str(work), "NO_COLOR": "1", "TLSKIT_HOME": str(home)}
        tlskit = [sys.executable, "-m", "tlskit"]
        subprocess.run([*tlskit, "ca", "init", "-q"], env=env, check=True, capture_output=True, timeout=60, cwd=work)
        for d in (home, home / "ca"):
            d.chmod(0o755)  # let 'nobody' read ca.crt; ca.key stays 0600
        done = subprocess.run([*prefix, *tlskit, "ca", "install", "--target", "system"], env=env,
                              capture_output=True, text=True, timeout=60, cwd=work)
        assert done.returncode == 6, done.stderr
        assert "Traceback" not in done.stderr + done.stdout
        assert done.stdout.split()[:2] == ["system", "failed"]
        assert done.stderr.strip().splitlines()[-1] == (
            f"error: could not install the CA into the system trust store: cannot write {store.anchors} (needs root); "
            f"run with sudo: sudo tlskit --home {home} ca install --target system"
        )
    finally:
        shutil.rmtree(work)


def test_help_of_the_trust_commands_does_not_import_the_core():
    code = (
        "import sys\n"
        "from tlskit.cli import cli\n"
        "for args in (['ca', '--help'], ['ca', 'install', '--help'], ['ca', 'status', '--help']):\n"
        "    try:\n"
        "        cli(args, prog_name='tlskit')\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'cryptography', 'rich', 'asyncio', 'ssl'})\n"
        "print('HEAVY', heavy, 'trust' in sys.modules or 'tlskit.trust' in sys.modules, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY [] False\n" in done.stderr, done.stderr


def test_report_rendering_shows_outcome_store_reason_and_hint():
    from tlskit.cli.console import UI
    from tlskit.cli.trustconsole import print_trust_report

    ui = UI(no_color=True)
    ui.out = Console(file=io.StringIO(), width=80, color_system=None)
    ui.err = Console(file=io.StringIO(), width=80, color_system=None)
    report = trust.TrustReport("install", "tlskit-0123456789abcdef", "CN=dev", "AB:CD")
    long_path = "/home/someone/.mozilla/firefox/abcdefgh.default-release-with-a-long-name"
    report.results += [
        trust.TrustResult("nss", long_path, trust.INSTALLED, "Firefox profile abcdefgh"),
        trust.TrustResult("java", "", trust.SKIPPED, reason="keytool not found", hint="install a JDK"),
    ]
    print_trust_report(ui, report)
    out = ui.out.file.getvalue().splitlines()
    assert out[0].split() == ["nss", "installed", long_path, "(Firefox", "profile", "abcdefgh)"]  # never wrapped
    assert out[1].split() == ["java", "skipped"]
    assert out[2].strip() == "keytool not found" and out[3].strip() == "hint: install a JDK"
    assert "CA CN=dev as tlskit-0123456789abcdef" in ui.err.file.getvalue()
    assert "installed the CA into 1 trust store(s)" in ui.err.file.getvalue()


@pytest.mark.system_trust
@pytest.mark.skipif(os.environ.get("TLSKIT_TEST_SYSTEM_TRUST") != "1", reason="changes the system trust store: set TLSKIT_TEST_SYSTEM_TRUST=1")
def test_ca_install_system_for_real_then_status_then_uninstall(run, user_home):
    store = trust.detect_system_store()
    if store is None or store.kind == "macos" or os.geteuid() != 0:
        pytest.skip("needs root and a Linux system trust store")
    assert run("ca", "init").exit_code == 0
    name = f"tlskit-{_ca_name(run)}"
    try:
        installed = run("ca", "install", "--target", "system")
        assert installed.exit_code == 0, installed.stderr
        assert installed.stdout.split()[:3] == ["system", "installed", str(store.anchors / f"{name}{store.suffix}")]
        assert run("ca", "install", "--target", "system").stdout.split()[:3] == ["system", "already", "installed"]
        status = json.loads(run("ca", "status", "--target", "system", "--json").stdout)
        assert status["results"][0]["outcome"] == "trusted"
    finally:
        removed = run("ca", "uninstall", "--target", "system")
    assert removed.exit_code == 0, removed.stderr
    assert removed.stdout.split()[:2] == ["system", "removed"]
    assert json.loads(run("ca", "status", "--target", "system", "--json").stdout)["results"][0]["outcome"] == "not trusted"
