"""Start-up and one-shot command timings: hyperfine when it is there, else repeated runs of our own."""

from __future__ import annotations

import json
import os
import re
import shlex
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from servers import BENCH, find_or_install

BARE_PKI = BENCH / "peers" / "bare_pki.py"

# The three steps people use today for a CA and a leaf with openssl (RSA-2048).
OPENSSL_THREE_STEPS = (
    "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj /CN=bench-ca 2>/dev/null"
    " && openssl req -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr -subj /CN=localhost 2>/dev/null"
    " && openssl x509 -req -in leaf.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out leaf.crt -days 825"
    " -extfile san.ext 2>/dev/null"
)


def time_commands(commands: dict[str, str], *, runs: int, warmup: int, cwd: Path, env: dict,
                  prepare: dict[str, str] | None = None, log=print) -> dict[str, dict]:
    """Wall time of each shell command: median, min, max, mean in ms over ``runs`` runs.

    The commands run interleaved one after the other (not all runs of one, then the next), so
    that a burst of load from elsewhere on the machine hits every command alike.
    """
    prepare = prepare or {}
    # Each command must work before it is timed: a failing command is fast and proves nothing.
    codes = {}
    for name, command in commands.items():
        if name in prepare:
            subprocess.run(prepare[name], shell=True, cwd=cwd, env=env, check=False)
        codes[name] = subprocess.run(command, shell=True, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
                                     executable="/bin/bash").returncode
    hyperfine, _ = find_or_install("hyperfine", log)
    if hyperfine:
        out = _hyperfine(hyperfine, commands, runs=runs, warmup=warmup, cwd=cwd, env=env, prepare=prepare)
    else:
        out = _own(commands, runs=runs, warmup=warmup, cwd=cwd, env=env, prepare=prepare)
    for name, rc in codes.items():
        out[name]["exit_code"] = rc
        if rc != 0:
            log(f"  {name}: exits {rc}; its time is not a result")
            out[name]["median_ms"] = None
    return out


def _hyperfine(hyperfine, commands, *, runs, warmup, cwd, env, prepare) -> dict[str, dict]:
    out: dict[str, list[float]] = {name: [] for name in commands}
    # hyperfine runs one command's runs back to back; to interleave, ask it for rounds of three runs.
    # Ten rounds of three, not three of ten: this machine's speed drifts over seconds by more than
    # the targets' margins (tlskit --version / import click read 1.04 and 1.30 ten minutes apart
    # with rounds of ten), and a drift then falls on every command alike.
    rounds = max(1, runs // 3)
    per = max(2, runs // rounds)
    tool = "hyperfine"
    for r in range(rounds):
        names = list(commands) if r % 2 == 0 else list(reversed(commands))
        for name in names:
            with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
                export = f.name
            cmd = [hyperfine, "-N" if _simple(commands[name]) else "--shell=bash", "--style", "none",
                   "--warmup", str(warmup if r == 0 else 1), "--runs", str(per), "--export-json", export]
            if name in prepare:
                cmd += ["--prepare", prepare[name]]
            cmd.append(commands[name])
            subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300, check=False)
            try:
                data = json.loads(Path(export).read_text())
                out[name] += [t * 1000 for t in data["results"][0]["times"]]
            except (OSError, ValueError, KeyError, IndexError):
                pass
            finally:
                os.unlink(export)
    return {name: _summary(times, tool) for name, times in out.items()}


def _simple(command: str) -> bool:
    # hyperfine -N (no shell) only for a plain argv without shell syntax.
    return not re.search(r"[|&;<>()$`*]", command)


def _own(commands, *, runs, warmup, cwd, env, prepare) -> dict[str, dict]:
    out: dict[str, list[float]] = {name: [] for name in commands}
    for i in range(warmup + runs):
        for name, command in commands.items():
            if name in prepare:
                subprocess.run(prepare[name], shell=True, cwd=cwd, env=env, check=False)
            t0 = time.perf_counter()
            subprocess.run(command, shell=True, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, timeout=60,
                           executable="/bin/bash")
            if i >= warmup:
                out[name].append((time.perf_counter() - t0) * 1000)
    return {name: _summary(times, "own timing") for name, times in out.items()}


def _summary(times: list[float], tool: str) -> dict:
    if not times:
        return {"median_ms": None, "runs": 0, "tool": tool}
    return {
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "max_ms": max(times),
        "mean_ms": statistics.fmean(times),
        "runs": len(times),
        "tool": tool,
    }


def import_time(python: str, args: list[str], env: dict, top: int = 10) -> list[dict]:
    """The slowest imports of ``python -X importtime ARGS``: cumulative microseconds per module."""
    r = subprocess.run([python, "-X", "importtime", *args], capture_output=True, text=True, env=env, timeout=60,
                       stdin=subprocess.DEVNULL)
    rows = []
    for line in r.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            rows.append({"module": m.group(4), "self_us": int(m.group(1)), "cumulative_us": int(m.group(2)),
                         "depth": len(m.group(3)) // 2})
    # Top-level packages (depth 0) say what a command pays for; the biggest first.
    roots = sorted((r for r in rows if r["depth"] == 0), key=lambda r: -r["cumulative_us"])
    total = sum(r["cumulative_us"] for r in rows if r["depth"] == 0)
    return [{"total_us": total}] + roots[:top]


def startup_commands(tlskit: str, python: str, home: Path, ca_cert: Path, port: int) -> tuple[dict, dict]:
    """(commands, prepare steps) for the start-up table; run in a scratch directory."""
    q = shlex.quote
    env_home = f"TLSKIT_HOME={q(str(home))}"
    fresh = home.parent / "fresh-home"
    commands = {
        "python3 -c pass": f"{python} -c pass",
        "python3 -c 'import click'": f"{python} -c 'import click'",
        # Floors: what any click CLI pays before its first line of work.
        "floor: import click, ssl": f"{python} -c 'import click, ssl'",
        "floor: import click, cryptography.x509": f"{python} -c 'import click, cryptography.x509'",
        "floor: import click, ssl, cryptography.x509": f"{python} -c 'import click, ssl, cryptography.x509'",
        "tlskit --version": f"{tlskit} --version",
        "tlskit --help": f"{tlskit} --help",
        "tlskit cert issue NAME": f"env {env_home} {tlskit} -q cert issue bench.test",
        "bare Python EC CA + leaf": f"{python} {BARE_PKI} .",
        "tlskit ca init && cert issue": f"env TLSKIT_HOME={q(str(fresh))} bash -c "
                                        f"{q(f'{tlskit} -q ca init && {tlskit} -q cert issue localhost')}",
        "openssl 3 steps (RSA-2048)": OPENSSL_THREE_STEPS,
        "tlskit connect": f"env {env_home} {tlskit} connect 127.0.0.1:{port} --ca {q(str(ca_cert))} --servername localhost",
        "openssl s_client": f"openssl s_client -connect 127.0.0.1:{port} -servername localhost -CAfile {q(str(ca_cert))}"
                            " -verify_return_error -verify_hostname localhost -brief",
    }
    prepare = {
        "tlskit cert issue NAME": f"rm -rf {q(str(home / 'certs' / 'bench.test'))}",
        "tlskit ca init && cert issue": f"rm -rf {q(str(fresh))}",
    }
    return commands, prepare


def write_san_ext(cwd: Path) -> None:
    (cwd / "san.ext").write_text("subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n")


__all__ = ["import_time", "startup_commands", "time_commands", "write_san_ext"]
