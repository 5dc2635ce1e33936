"""``make bench``: tlskit side by side with openssl, gnutls, nginx and two Python references.

Every server gets the same certificate (ECDSA P-256, issued by tlskit in a temporary home), runs
on 127.0.0.1, is driven by the same load (bench/loadgen.c) and is stopped by its PID. The order
of the servers alternates between rounds; the table shows medians, min-max and ratios, and the
figures go to bench-results/ as JSON and a PNG chart.

usage: python bench/run.py [--quick] [--rounds N] [--only hs,hold,echo,startup] [--out DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen  # noqa: E402
import report  # noqa: E402
import startup  # noqa: E402
from servers import REPO, VENV_BIN, Running, catalogue, find_or_install, free_port, rss_kib  # noqa: E402

SECTIONS = ("hs", "hold", "echo", "startup")


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="one short round of everything (under a minute)")
    p.add_argument("--rounds", type=int, default=None, help="rounds of the handshake and echo runs [5; quick: 1]")
    p.add_argument("--seconds", type=float, default=None, help="seconds per handshake/echo run [3; quick: 0.8]")
    p.add_argument("--sessions", type=int, default=None, help="idle sessions to hold [10000; quick: 300]")
    p.add_argument("--client-threads", type=int, default=2, help="load generator threads [2]")
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {','.join(SECTIONS)}")
    p.add_argument("--servers", default="", help="comma-separated server names to run (default: all)")
    p.add_argument("--out", default=str(REPO / "bench-results"), help="where the JSON and PNG go [bench-results/]")
    a = p.parse_args(argv)
    # Many short rounds rather than a few long ones: the machine is shared, and interleaving
    # spreads a burst of someone else's load over every server alike.
    a.rounds = a.rounds or (1 if a.quick else 5)
    a.seconds = a.seconds or (0.8 if a.quick else 3.0)
    a.sessions = a.sessions or (300 if a.quick else 10000)
    a.only = [s for s in a.only.split(",") if s]
    bad = set(a.only) - set(SECTIONS)
    if bad:
        p.error(f"unknown section(s) {', '.join(sorted(bad))}")
    return a


# --- the machine ------------------------------------------------------------------------------


def _first(cmd: list[str]) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        return (r.stdout or r.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def openssl_speed(quick: bool = False) -> dict:
    """Crypto rates on one core: ECDSA P-256 sign/verify, X25519 (not in quick mode), AES-GCM on 16 KiB blocks."""
    out: dict[str, float] = {}
    if not quick:
        r = subprocess.run(["openssl", "speed", "-seconds", "1", "ecdsap256", "ecdhx25519"], capture_output=True,
                           text=True, timeout=60)
        m = re.search(r"256 bits ecdsa \(nistp256\)\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)", r.stdout)
        if m:
            out["ecdsa_p256_sign_per_s"], out["ecdsa_p256_verify_per_s"] = float(m.group(1)), float(m.group(2))
        m = re.search(r"ecdh \(X25519\)\s+\S+\s+([\d.]+)", r.stdout)
        if m:
            out["x25519_per_s"] = float(m.group(1))
    for alg in ("aes-256-gcm",) if quick else ("aes-128-gcm", "aes-256-gcm"):
        r = subprocess.run(["openssl", "speed", "-seconds", "1", "-bytes", "16384", "-evp", alg], capture_output=True,
                           text=True, timeout=60)
        m = re.search(rf"{alg}\s+([\d.]+)k", r.stdout, re.I)
        if m:
            out[f"{alg}_mb_per_s"] = float(m.group(1)) * 1000 / 1e6  # openssl prints 1000s of bytes/s
    return out


def machine() -> dict:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    import ssl

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": mem,
        "kernel": platform.release(),
        "os": _first(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "python": platform.python_version(),
        "python_ssl": ssl.OPENSSL_VERSION,
        "openssl": _first(["openssl", "version"]),
        "gnutls": _first(["gnutls-serv", "--version"]) if shutil.which("gnutls-serv") else "-",
        "nginx": _first([nginx, "-v"]) if nginx else "-",
        "nofile_hard": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
        "loadavg_start": os.getloadavg(),
        "busy": busy_processes(),
    }


def busy_processes() -> list[str]:
    """Other work on the machine (test runs by colleagues): a benchmark is only as quiet as this."""
    r = subprocess.run(["ps", "-eo", "pcpu,args", "--sort=-pcpu"], capture_output=True, text=True, timeout=10)
    rows = []
    for line in r.stdout.splitlines()[1:8]:
        pcpu, _, args = line.strip().partition(" ")
        if float(pcpu or 0) >= 5 and "ps -eo" not in args:
            rows.append(f"{pcpu}% {args[:80]}")
    return rows


# --- set-up -----------------------------------------------------------------------------------


def make_certificate(work: Path) -> dict:
    """One ECDSA P-256 certificate for every server, issued by tlskit in a temporary home."""
    home = work / "home"
    env = {**os.environ, "TLSKIT_HOME": str(home), "NO_COLOR": "1"}
    tlskit = str(VENV_BIN / "tlskit")
    for cmd in ([tlskit, "-q", "ca", "init"], [tlskit, "-q", "cert", "issue", "localhost", "127.0.0.1", "::1"]):
        subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=60)
    d = home / "certs" / "localhost"
    return {"home": home, "cert": d / "cert.pem", "key": d / "key.pem", "ca": home / "ca" / "ca.crt"}


def _order(servers: list, rnd: int) -> list:
    """Round 0 in table order, round 1 reversed, then rotated: no server always goes first or last."""
    s = list(servers)
    if rnd % 2:
        s.reverse()
    k = (rnd // 2) % max(1, len(s))
    return s[k:] + s[:k]


def _start(server, work: Path, **kw) -> Running | None:
    try:
        return server.start(work, log=say, **kw)
    except RuntimeError as exc:
        say(f"  {server.name}: did not start: {exc}")
        return None


# --- the measurements -------------------------------------------------------------------------


def bench_handshakes(servers, gen: Path, work: Path, args) -> dict:
    say(f"== full TLS 1.3 handshakes/s, 16 concurrent clients, {args.rounds} round(s) of {args.seconds:g} s")
    results: dict[str, list[dict]] = {s.name: [] for s in servers}
    for rnd in range(args.rounds):
        for server in _order(servers, rnd):
            run = _start(server, work)
            if run is None:
                continue
            try:
                loadgen.handshakes(gen, run.port, seconds=0.2 if args.quick else 0.5, threads=args.client_threads)
                cpu0 = run.cpu_seconds()
                r = loadgen.handshakes(gen, run.port, seconds=args.seconds, threads=args.client_threads)
                # Server CPU per handshake: robust to other load on the machine, unlike the rate.
                r["server_cpu_us_per_handshake"] = (run.cpu_seconds() - cpu0) / max(1, r["handshakes"]) * 1e6
                r["round"] = rnd
                results[server.name].append(r)
                say(f"  round {rnd + 1} {server.name:20s} {r['rate']:8.0f}/s  p99 {r['p99_ms']:6.1f} ms  "
                    f"server {r['server_cpu_us_per_handshake']:5.0f} µs CPU/handshake  "
                    f"client CPU {r['client_cpu_per_thread'] * 100:3.0f}%/thread  {r['cipher']} {r['group']}")
            except (RuntimeError, ValueError) as exc:
                say(f"  {server.name}: {exc}")
            finally:
                run.stop()
    return results


def generator_check(servers, gen: Path, work: Path, args) -> dict:
    """Is the load generator the limit? Against the fastest server, more client threads must not help."""
    fastest = next((s for s in servers if s.name == "nginx 2w" and not s.skip), None) or next(
        (s for s in servers if s.name == "tlskit --workers 2"), None)
    if fastest is None:
        return {}
    say(f"== load generator check against {fastest.name}: 1, 2 and 3 client threads")
    run = _start(fastest, work)
    if run is None:
        return {}
    out = {"server": fastest.name, "runs": []}
    try:
        loadgen.handshakes(gen, run.port, seconds=0.5)
        for t in (1, 2, 3):
            r = loadgen.handshakes(gen, run.port, seconds=max(1.0, args.seconds / 2), threads=t)
            out["runs"].append({"threads": t, "rate": r["rate"], "client_cpu_per_thread": r["client_cpu_per_thread"]})
            say(f"  {t} thread(s): {r['rate']:8.0f}/s, client CPU {r['client_cpu_per_thread'] * 100:.0f}%/thread")
    finally:
        run.stop()
    return out


def bench_hold(servers, gen: Path, work: Path, args) -> dict:
    n = args.sessions
    say(f"== {n} idle TLS sessions held, RSS per session, fresh handshakes alongside")
    out = {}
    for server in [s for s in servers if "hold" in s.modes]:
        extra = {}
        if server.kind == "tlskit":
            # Start it with a low soft limit, as a login shell would: tlskit must raise it itself.
            extra = {"nofile_soft": 1024}
            server = _with_args(server, "--max-connections", str(n + 64))
        run = _start(server, work, **extra)
        if run is None:
            continue
        holder = None
        try:
            loadgen.handshakes(gen, run.port, seconds=0.3, concurrency=4, threads=1)  # one-time allocations
            time.sleep(0.3)
            pid = run.server_pids()[0]
            before = run.rss_kib()
            holder = loadgen.Holder(gen, run.port, n, max_seconds=max(120, n / 50))
            held = holder.wait_held(timeout=max(120, n / 50))
            time.sleep(1.0)
            after = run.rss_kib()
            fresh = loadgen.handshakes(gen, run.port, seconds=max(0.8, args.seconds / 2), concurrency=4, threads=1)
            limits = Path(f"/proc/{pid}/limits").read_text()
            m = re.search(r"Max open files\s+(\d+)\s+(\d+)", limits)
            per = (after - before) / held if held else None
            out[server.name] = {
                "held": held,
                "failed": holder.failed,
                "establish_seconds": holder.seconds,
                "rss_before_kib": before,
                "rss_after_kib": after,
                "kib_per_session": per,
                "fresh_rate": fresh["rate"],
                "fresh_p50_ms": fresh["p50_ms"],
                "fresh_p99_ms": fresh["p99_ms"],
                "fresh_failed": fresh["failed"],
                "nofile_soft": int(m.group(1)) if m else None,
                "nofile_hard": int(m.group(2)) if m else None,
            }
            say(f"  {server.name:20s} held {held} (failed {holder.failed}) in {holder.seconds:.1f} s, "
                f"{per or 0:.1f} KiB/session, fresh handshakes p99 {fresh['p99_ms']:.1f} ms, "
                f"ulimit -n {out[server.name]['nofile_soft']}")
        except (RuntimeError, ValueError, OSError) as exc:
            say(f"  {server.name}: {exc}")
        finally:
            if holder is not None:
                holder.release()
            run.stop()
    return out


def _with_args(server, *extra: str):
    import dataclasses

    build = server.build
    return dataclasses.replace(server, build=lambda port, wd: [*build(port, wd), *extra])


def bench_echo(servers, gen: Path, work: Path, args) -> dict:
    say(f"== echo throughput, one stream, 16 KiB writes, {args.rounds} round(s) of {args.seconds:g} s")
    results: dict[str, list[dict]] = {}
    eligible = [s for s in servers if "echo" in s.modes]
    for rnd in range(args.rounds):
        for server in _order(eligible, rnd):
            backend = None
            if server.name == "nginx stream":
                import dataclasses

                from servers import nginx_conf

                bport = free_port()
                backend = subprocess.Popen([str(gen), "backend", "-p", str(bport), "-d", "120"])
                nginx = shutil.which("nginx") or "/usr/sbin/nginx"

                def build(port, wd, b=bport):
                    conf = nginx_conf(wd, port, _PAIR["cert"], _PAIR["key"], 1, stream_backend=b)
                    return [nginx, "-c", str(conf), "-e", "stderr"]

                server = dataclasses.replace(server, build=build)
            run = _start(server, work)
            try:
                if run is None:
                    continue
                cpu0 = run.cpu_seconds()
                r = loadgen.echo(gen, run.port, seconds=args.seconds)
                r["server_cpu_ms_per_mb"] = (run.cpu_seconds() - cpu0) * 1e3 / max(1e-9, r["bytes"] / 1e6)
                r["round"] = rnd
                results.setdefault(server.name, []).append(r)
                say(f"  round {rnd + 1} {server.name:20s} {r['mb_per_s']:8.0f} MB/s  "
                    f"server {r['server_cpu_ms_per_mb']:.2f} ms CPU/MB  {r['cipher']}")
            except (RuntimeError, ValueError) as exc:
                say(f"  {server.name}: {exc}")
            finally:
                if run is not None:
                    run.stop()
                if backend is not None:
                    backend.terminate()
                    backend.wait(timeout=10)
    return results


_PAIR: dict = {}  # the certificate every server uses


def bench_startup(work: Path, pair: dict, args) -> dict:
    say("== start-up and one-shot commands (wall time)")
    scratch = work / "scratch"
    scratch.mkdir(exist_ok=True)
    startup.write_san_ext(scratch)
    # The peer of both one-shot clients: s_server -www answers, never reads stdin.
    s_log = work / "s_server-startup.log"
    with open(s_log, "wb") as out:
        s_server = subprocess.Popen(
            ["openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", str(pair["cert"]), "-key", str(pair["key"]),
             "-www"], stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    py = str(VENV_BIN / "python")
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        port = None
        t_end = time.monotonic() + 10
        while time.monotonic() < t_end and port is None:
            m = re.search(r"ACCEPT 127\.0\.0\.1:(\d+)", s_log.read_text(errors="replace"))
            port = int(m.group(1)) if m else None
            time.sleep(0.05)
        if port is None:
            raise RuntimeError("openssl s_server did not start")
        commands, prepare = startup.startup_commands(str(VENV_BIN / "tlskit"), py, pair["home"], pair["ca"], port)
        runs = 3 if args.quick else 30
        timings = startup.time_commands(commands, runs=runs, warmup=1 if args.quick else 3, cwd=scratch, env=env,
                                        prepare=prepare, log=say)
        imports = {
            "tlskit --help": startup.import_time(py, ["-m", "tlskit", "--help"], env),
            "tlskit --version": startup.import_time(py, ["-m", "tlskit", "--version"], env),
            "tlskit cert issue": startup.import_time(py, ["-m", "tlskit", "-q", "cert", "issue", "importtime.test"],
                                                     {**env, "TLSKIT_HOME": str(pair["home"])}),
            "tlskit connect": startup.import_time(py, ["-m", "tlskit", "connect", f"127.0.0.1:{port}", "--ca",
                                                       str(pair["ca"]), "--servername", "localhost"], env),
        }
    finally:
        s_server.terminate()
        try:
            s_server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            s_server.kill()
    for name, t in timings.items():
        if t.get("median_ms") is not None:
            say(f"  {name:32s} {t['median_ms']:7.1f} ms  ({t['min_ms']:.1f}-{t['max_ms']:.1f}, {t['runs']} runs)")
    return {"timings": timings, "imports": imports}


# --- main -------------------------------------------------------------------------------------


def main(argv=None) -> int:
    args = parse_args(argv)
    t_start = time.monotonic()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    # The harness and its load generator need file descriptors for 10,000 sessions.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    work = Path(tempfile.mkdtemp(prefix="tlskit-bench-"))
    try:
        say(f"tlskit bench in {work} ({'quick' if args.quick else 'full'})")
        find_or_install("openssl", say)
        pair = make_certificate(work)
        _PAIR.update(pair)
        mach = machine()
        mach["crypto"] = openssl_speed(quick=args.quick)
        gen = loadgen.build(work, log=say)
        servers = catalogue(pair["cert"], pair["key"], pair["home"], pair["ca"], log=say)
        wanted = {n.strip() for n in args.servers.split(",") if n.strip()}
        skipped = {s.name: s.skip for s in servers if s.skip}
        for name, why in skipped.items():
            say(f"skipping {name}: {why}")
        servers = [s for s in servers if not s.skip and (not wanted or s.name in wanted)]
        if args.quick:
            import dataclasses

            servers = [dataclasses.replace(s, modes=tuple(m for m in s.modes if s.quick is None or m in s.quick))
                       for s in servers]
        data: dict = {
            "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
            "mode": "quick" if args.quick else "full",
            "rounds": args.rounds,
            "seconds": args.seconds,
            "client_threads": args.client_threads,
            "machine": mach,
            "skipped": skipped,
        }
        if "hs" in args.only:
            data["handshakes"] = bench_handshakes([s for s in servers if "hs" in s.modes], gen, work, args)
            if not args.quick:
                data["generator_check"] = generator_check(servers, gen, work, args)
        if "hold" in args.only:
            data["hold"] = bench_hold(servers, gen, work, args)
        if "echo" in args.only:
            data["echo"] = bench_echo(servers, gen, work, args)
        if "startup" in args.only:
            data["startup"] = bench_startup(work, pair, args)
        data["machine"]["loadavg_end"] = os.getloadavg()
        data["machine"]["busy_end"] = busy_processes()
        data["elapsed_seconds"] = round(time.monotonic() - t_start, 1)
        summary = report.summarise(data)
        data["summary"] = summary
        print(report.render(data, summary))
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        json_path = out_dir / f"bench-{stamp}.json"
        json_path.write_text(json.dumps(data, indent=2, default=str) + "\n")
        (out_dir / "latest.json").write_text(json_path.read_text())
        png = report.chart(data, summary, out_dir / f"bench-{stamp}.png")
        if png:
            shutil.copyfile(png, out_dir / "latest.png")
        say(f"wrote {json_path}" + (f" and {png}" if png else " (no chart: matplotlib missing)"))
        say(f"elapsed {data['elapsed_seconds']} s")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
