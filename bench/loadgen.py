"""Build and drive the C load generator (bench/loadgen.c)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from servers import BENCH, apt_install, find_or_install


def build(workdir: Path, log=print) -> Path:
    """Compile loadgen.c into ``workdir`` (gcc and libssl-dev, installed when missing and root)."""
    out = workdir / "loadgen"
    gcc, why = find_or_install("gcc", log)
    if not gcc:
        raise RuntimeError(f"cannot build the load generator: {why}")
    if not Path("/usr/include/openssl/ssl.h").exists():
        err = apt_install(["libssl-dev"], log)  # gcc is there, OpenSSL's headers are not
        if err:
            raise RuntimeError(f"cannot build the load generator: {err}")
    cmd = [gcc, "-O2", "-o", str(out), str(BENCH / "loadgen.c"), "-lssl", "-lcrypto", "-lpthread"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"cannot build the load generator: {r.stderr.strip()[-400:]}")
    return out


def handshakes(loadgen: Path, port: int, *, seconds: float, concurrency: int = 16, threads: int = 2,
               count: int = 0) -> dict:
    """Closed-loop full handshakes for ``seconds``; the generator's JSON (rate, latency, client CPU)."""
    cmd = [str(loadgen), "hs", "-p", str(port), "-c", str(concurrency), "-t", str(threads), "-d", f"{seconds:g}"]
    if count:
        cmd += ["-n", str(count)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
    if r.returncode != 0 and not r.stdout.strip():
        raise RuntimeError(f"loadgen hs failed: {r.stderr.strip()[-300:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def echo(loadgen: Path, port: int, *, seconds: float, block: int = 16384) -> dict:
    cmd = [str(loadgen), "echo", "-p", str(port), "-d", f"{seconds:g}", "-b", str(block)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
    if r.returncode != 0:
        raise RuntimeError(f"loadgen echo failed: {r.stderr.strip()[-300:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


class Holder:
    """``loadgen hold``: opens ``count`` idle sessions and keeps them until :meth:`release`."""

    def __init__(self, loadgen: Path, port: int, count: int, *, ramp: int = 64, max_seconds: float = 300) -> None:
        self.proc = subprocess.Popen(
            [str(loadgen), "hold", "-p", str(port), "-n", str(count), "-c", str(ramp), "-d", f"{max_seconds:g}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.held = self.failed = 0
        self.seconds = 0.0

    def wait_held(self, timeout: float) -> int:
        t0 = time.monotonic()
        line = self.proc.stdout.readline()  # "HELD ok failed", bounded by the generator's -d
        self.seconds = time.monotonic() - t0
        if not line.startswith("HELD"):
            self.release()
            raise RuntimeError(f"loadgen hold: {line!r} {self.proc.stderr.read()[-300:]}")
        _, ok, failed = line.split()
        self.held, self.failed = int(ok), int(failed)
        return self.held

    def release(self) -> dict | None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("\n")
                self.proc.stdin.flush()
            except OSError:
                pass
        try:
            out, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate(timeout=10)
        lines = [ln for ln in (out or "").splitlines() if ln.startswith("{")]
        return json.loads(lines[-1]) if lines else None
