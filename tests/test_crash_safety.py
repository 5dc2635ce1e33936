"""kill -9 during ``cert issue --force`` and ``ca init --force --yes``: the old files or the new, never a mix.

Each test runs the real CLI (``python -m tlskit``) as a subprocess, measures how
long one run takes, then kills it with SIGKILL at a random moment in that span,
15 times. After every kill each file is absent, the complete old file or a
complete new one; the key matches the certificate (and the chain's first
certificate); keys are 0600; leftover temporaries never carry a visible name,
and the next write removes them.

The last section checks the other half of "nothing lost, nothing leaked": the CA
passphrase never reaches logs, ``--json`` output, tracebacks or the process title.
"""

from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tlskit import pki
from tlskit.errors import PKIError

ITERATIONS = 15

pytestmark = pytest.mark.slow


def cli_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TLSKIT_")}
    env.update(TLSKIT_HOME=str(home), NO_COLOR="1", COLUMNS="80")
    return env


def run_cli(home: Path, *args: str, timeout: float = 60) -> float:
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "tlskit", *args], env=cli_env(home), capture_output=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr.decode()
    return time.monotonic() - t0


def kill_at(home: Path, delay: float, *args: str) -> int | None:
    """Start the CLI, SIGKILL it after ``delay`` s; returns its exit code if it finished first."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tlskit", *args], env=cli_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        proc.wait(delay)
        return proc.returncode
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        return None


def snapshot(folder: Path, names: list[str]) -> dict[str, bytes | None]:
    return {n: (folder / n).read_bytes() if (folder / n).exists() else None for n in names}


def check_pair(folder: Path, before: dict[str, bytes | None], cert_name: str, key_name: str, chain_name: str | None) -> str:
    """Assert the invariants after a kill; returns "old", "new" (what the folder now holds)."""
    after = snapshot(folder, list(before))
    for name, data in after.items():
        assert data is None or len(data) > 0, f"{name} is empty"
    cert_pem, key_pem = after[cert_name], after[key_name]
    assert cert_pem is not None and key_pem is not None, f"a file vanished: {sorted(k for k, v in after.items() if v is None)}"
    cert = pki.load_certs(cert_pem)[0]  # parses the whole PEM: a partial file fails here
    key = pki.load_key(key_pem)
    assert pki.key_matches_cert(key, cert), "the key does not match the certificate"
    if chain_name:
        chain = pki.load_certs(after[chain_name])
        assert chain[0] == cert, "chain.pem does not start with cert.pem"
    assert stat.S_IMODE((folder / key_name).stat().st_mode) == 0o600
    for p in folder.iterdir():
        if p.name.startswith(".") and p.name.endswith(".tmp"):
            assert stat.S_IMODE(p.stat().st_mode) in (0o600, 0o644)
            if key_name in p.name:
                assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
        else:
            assert p.name in before, f"unexpected file {p.name}"
    return "old" if after == before else "new"


def crash_loop(home: Path, folder: Path, names: list[str], cert_name: str, key_name: str, chain_name: str | None, args: list[str]) -> dict[str, int]:
    normal = max(run_cli(home, *args) for _ in range(2))
    rng = random.Random(20261201)
    outcomes = {"old": 0, "new": 0, "finished": 0}
    for _ in range(ITERATIONS):
        before = snapshot(folder, names)
        code = kill_at(home, rng.uniform(0, normal), *args)
        if code is not None:
            assert code == 0
            outcomes["finished"] += 1
        outcomes[check_pair(folder, before, cert_name, key_name, chain_name)] += 1
    return outcomes


def test_kill_9_during_cert_issue_leaves_old_or_new_files(tmp_path):
    home = tmp_path / "home"
    run_cli(home, "ca", "init", "--yes")
    args = ["cert", "issue", "--force", "--key-type", "rsa-4096", "crash.test"]
    run_cli(home, *args)
    folder = home / "certs" / "crash.test"
    outcomes = crash_loop(home, folder, ["cert.pem", "key.pem", "chain.pem"], "cert.pem", "key.pem", "chain.pem", args)
    assert outcomes["old"] > 0, outcomes  # some kills did land before the rename
    # The next completed write leaves no temporary behind (store.remove_stale_temps).
    run_cli(home, *args)
    assert sorted(p.name for p in folder.iterdir()) == ["cert.pem", "chain.pem", "key.pem"]


def test_kill_9_during_ca_init_force_leaves_old_or_new_ca(tmp_path):
    home = tmp_path / "home"
    args = ["ca", "init", "--force", "--yes", "--key-type", "rsa-4096"]
    run_cli(home, *args)
    folder = home / "ca"
    outcomes = crash_loop(home, folder, ["ca.crt", "ca.key"], "ca.crt", "ca.key", None, args)
    assert outcomes["old"] > 0, outcomes
    run_cli(home, *args)
    assert sorted(p.name for p in folder.iterdir()) == ["ca.crt", "ca.key"]
    backups = home / "backups"
    assert stat.S_IMODE(backups.stat().st_mode) == 0o700
    for key in backups.glob("*/ca.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_the_checker_catches_a_mismatched_pair(tmp_path):
    # Negative twin of the invariant: a new key beside the old certificate is reported.
    ca = pki.create_ca("twin CA")
    a, b = pki.issue_cert(ca, ["a.test"]), pki.issue_cert(ca, ["a.test"])
    (tmp_path / "cert.pem").write_bytes(pki.cert_to_pem(a.cert))
    (tmp_path / "key.pem").write_bytes(pki.key_to_pem(b.key))
    (tmp_path / "key.pem").chmod(0o600)
    before = {"cert.pem": None, "key.pem": None}
    with pytest.raises(AssertionError, match="does not match"):
        check_pair(tmp_path, before, "cert.pem", "key.pem", None)
    (tmp_path / "key.pem").write_bytes(pki.key_to_pem(b.key)[:100])  # a partial key
    with pytest.raises(PKIError):
        check_pair(tmp_path, before, "cert.pem", "key.pem", None)


def test_a_failure_while_staging_leaves_every_old_file(tmp_path, monkeypatch):
    # Deterministic twin of the kill loop: die at the third fsync (while the chain is staged, after the
    # key is). Writing file after file, as the store did before, left a new key beside the old certificate.
    from tlskit.store import Store

    ca = pki.create_ca("staging CA")
    store = Store(tmp_path / "home")
    store.save_ca(ca)
    paths, _ = store.save_cert(pki.issue_cert(ca, ["a.test"]))
    folder = paths.dir
    before = snapshot(folder, ["cert.pem", "key.pem", "chain.pem"])
    calls = {"n": 0}
    real_fsync = os.fsync

    def dying_fsync(fd):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated crash")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", dying_fsync)
    with pytest.raises(KeyboardInterrupt):
        store.save_cert(pki.issue_cert(ca, ["a.test"]), force=True)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert check_pair(folder, before, "cert.pem", "key.pem", "chain.pem") == "old"


# --- nothing leaked: the CA passphrase ------------------------------------------------------------------

SECRET = "Tlskit-s3cr3t-7f1c"


def cli(home: Path, *args: str, env_extra: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**cli_env(home), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "tlskit", *args], env=env, capture_output=True, timeout=timeout)


def watch_cmdline(home: Path, args: list[str], env_extra: dict[str, str]) -> tuple[int, list[bytes]]:
    """Run the CLI and read its /proc/PID/cmdline until it exits (bounded): what ``ps`` shows."""
    env = {**cli_env(home), **env_extra}
    proc = subprocess.Popen([sys.executable, "-m", "tlskit", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen: list[bytes] = []
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            seen.append(Path(f"/proc/{proc.pid}/cmdline").read_bytes())
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.02)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    assert SECRET.encode() not in out + err
    return proc.returncode, seen


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
@pytest.mark.parametrize("source", ["env", "file"])
def test_passphrase_is_not_in_the_process_title(tmp_path, source):
    home = tmp_path / "home"
    if source == "env":
        args, extra = ["ca", "init", "--encrypt", "--key-type", "rsa-4096"], {"TLSKIT_CA_PASSPHRASE": SECRET}
    else:
        secret_file = tmp_path / "pass.txt"
        secret_file.write_text(SECRET + "\n")
        args, extra = ["ca", "init", "--passphrase-file", str(secret_file), "--key-type", "rsa-4096"], {}
    _, seen = watch_cmdline(home, args, extra)
    assert len(seen) >= 3, "the process ended before its title could be read"
    assert all(SECRET.encode() not in c for c in seen), seen[:1]
    # Twin: the watcher does see what is on the command line.
    assert any(b"ca\0init" in c for c in seen)


def test_passphrase_never_reaches_logs_json_or_tracebacks(tmp_path):
    home = tmp_path / "home"
    env = {"TLSKIT_CA_PASSPHRASE": SECRET}
    runs = [
        cli(home, "--debug", "-vv", "ca", "init", "--encrypt", "--json", env_extra=env),
        cli(home, "--debug", "-vv", "cert", "issue", "--json", "a.test", env_extra=env),
        cli(home, "--debug", "-vv", "ca", "show", "--json", env_extra=env),
        cli(home, "--debug", "-vv", "config", "show", env_extra=env),
        # A wrong passphrase: the error (and --debug's traceback, locals included) must not echo it.
        cli(home, "--debug", "-vv", "cert", "issue", "--json", "b.test", env_extra={"TLSKIT_CA_PASSPHRASE": SECRET + "x"}),
    ]
    assert [r.returncode for r in runs] == [0, 0, 0, 0, 6], [r.stderr.decode()[-300:] for r in runs]
    assert b"wrong passphrase" in runs[-1].stderr
    for r in runs:
        assert SECRET.encode() not in r.stdout + r.stderr, (r.args, (r.stdout + r.stderr).decode()[-500:])
    # Twin: the key on disk really is encrypted with it (so the secret was used, not dropped).
    key_pem = (home / "ca" / "ca.key").read_bytes()
    assert pki.is_encrypted_pem(key_pem) and SECRET.encode() not in key_pem
    pki.load_key(key_pem, SECRET.encode())
