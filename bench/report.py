"""Medians, ratios, the targets of issue 5, the text table and the PNG chart."""

from __future__ import annotations

import statistics
from pathlib import Path

TLSKIT = "tlskit"


def _stats(values: list[float]) -> dict | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def aes_gcm_bound(crypto: dict, cipher: str, cores: int) -> float | None:
    """Echo bound in MB/s: each payload byte is sealed and opened twice (client->server->client),
    four AES-GCM passes shared by every core."""
    alg = "aes-128-gcm" if "128" in (cipher or "") else "aes-256-gcm"
    speed = crypto.get(f"{alg}_mb_per_s")
    return speed * cores / 4 if speed else None


def summarise(data: dict) -> dict:
    s: dict = {"handshakes": {}, "hold": data.get("hold", {}), "echo": {}, "startup": {}, "targets": []}
    for name, runs in (data.get("handshakes") or {}).items():
        st = _stats([r["rate"] for r in runs])
        if st:
            st["p99_ms"] = statistics.median(r["p99_ms"] for r in runs)
            st["server_cpu_us"] = statistics.median(r.get("server_cpu_us_per_handshake", 0) for r in runs)
            st["client_cpu_per_thread"] = max(r["client_cpu_per_thread"] for r in runs)
            st["cipher"] = runs[0]["cipher"]
            st["group"] = runs[0]["group"]
            s["handshakes"][name] = st
    for name, runs in (data.get("echo") or {}).items():
        st = _stats([r["mb_per_s"] for r in runs])
        if st:
            st["cipher"] = runs[0]["cipher"]
            st["server_cpu_ms_per_mb"] = statistics.median(r.get("server_cpu_ms_per_mb", 0) for r in runs)
            s["echo"][name] = st
    for name, t in ((data.get("startup") or {}).get("timings") or {}).items():
        if t.get("median_ms") is not None:
            s["startup"][name] = t
    mach = data.get("machine", {})
    cipher = (s["echo"].get(TLSKIT) or {}).get("cipher", "TLS_AES_256_GCM_SHA384")
    s["aes_gcm_bound_mb_per_s"] = aes_gcm_bound(mach.get("crypto", {}), cipher, mach.get("cores") or 1)
    s["targets"] = targets(s)
    s["efficiency"] = efficiency(s)
    return s


def efficiency(s: dict) -> list[dict]:
    """Server CPU per handshake, peer / ours: how much more work the peer does for the same result.

    Unlike the rate, this barely moves when the machine is busy, and it is not squeezed by the
    load generator's own share of the two cores (see docs/performance.md).
    """
    hs, out = s["handshakes"], []
    for ours, peer in (("tlskit", "openssl s_server"), ("tlskit", "naive asyncio"), ("tlskit", "bare MemoryBIO"),
                       ("tlskit", "nginx 1w"), ("tlskit --loop uvloop", "naive asyncio"),
                       ("tlskit --workers 2", "nginx 2w"), ("tlskit -w2 uvloop", "nginx 2w"),
                       ("tlskit --workers 2", "bare MemoryBIO x2"), ("tlskit --workers 2", "lean socket-BIO x2")):
        a, b = hs.get(ours), hs.get(peer)
        if a and b and a.get("server_cpu_us"):
            out.append({"ours": ours, "peer": peer, "ours_us": a["server_cpu_us"], "peer_us": b["server_cpu_us"],
                        "ratio": b["server_cpu_us"] / a["server_cpu_us"]})
    return out


def _ratio(table: dict, a: str, b: str, key: str = "median") -> float | None:
    x, y = table.get(a), table.get(b)
    if not x or not y or not y.get(key):
        return None
    return x[key] / y[key]


def targets(s: dict) -> list[dict]:
    hs, echo, st, hold = s["handshakes"], s["echo"], s["startup"], s["hold"]
    out = []

    def add(what, value, op, goal, detail=""):
        ok = None if value is None else (value >= goal if op == ">=" else value <= goal)
        out.append({"target": what, "value": value, "op": op, "goal": goal, "ok": ok, "detail": detail})

    add("handshakes/s tlskit / openssl s_server", _ratio(hs, TLSKIT, "openssl s_server"), ">=", 1.5)
    add("handshakes/s tlskit / naive asyncio", _ratio(hs, TLSKIT, "naive asyncio"), ">=", 1.1)
    lean, bare2 = _ratio(hs, "lean socket-BIO x2", "nginx 2w"), _ratio(hs, "bare MemoryBIO x2", "nginx 2w")
    add("handshakes/s tlskit --workers 2 / nginx 2w", _ratio(hs, "tlskit --workers 2", "nginx 2w"), ">=", 0.9,
        "; ".join(f"floor: {what} x2 {v:.2f}" for what, v in (("lean socket-BIO", lean), ("bare MemoryBIO", bare2)) if v))
    h = hold.get(TLSKIT) or {}
    add("KiB per idle session (tlskit)", h.get("kib_per_session"), "<=", 24.0,
        f"{h.get('held', 0)} held" if h else "")
    add("fresh handshake p99 ms while held (tlskit)", h.get("fresh_p99_ms"), "<=", 50.0)
    bound = s.get("aes_gcm_bound_mb_per_s")
    e = echo.get(TLSKIT)
    add("echo MB/s tlskit / gnutls-serv", _ratio(echo, TLSKIT, "gnutls-serv"), ">=", 1.0,
        f"{e['median'] / bound:.0%} of the AES-GCM bound ({bound:.0f} MB/s)" if e and bound else "")
    t = {k: {"median": v["median_ms"]} for k, v in st.items()}
    add("tlskit --version / python -c 'import click'", _ratio(t, "tlskit --version", "python3 -c 'import click'"), "<=", 1.3)
    add("tlskit --help / python -c 'import click'", _ratio(t, "tlskit --help", "python3 -c 'import click'"), "<=", 1.3)
    add("tlskit cert issue / bare Python EC CA + leaf", _ratio(t, "tlskit cert issue NAME", "bare Python EC CA + leaf"), "<=", 1.3)
    two_floor = _ratio(t, "floor: import click, cryptography.x509", "openssl 3 steps (RSA-2048)")
    add("tlskit ca init + cert issue / openssl 3 steps RSA", _ratio(t, "tlskit ca init && cert issue", "openssl 3 steps (RSA-2048)"), "<=", 0.5,
        f"two bare start-ups importing click + cryptography.x509 alone: {2 * two_floor:.2f}" if two_floor else "")
    floor = _ratio(t, "floor: import click, ssl", "openssl s_client")
    chain_floor = _ratio(t, "floor: import click, ssl, cryptography.x509", "openssl s_client")
    add("tlskit connect / openssl s_client", _ratio(t, "tlskit connect", "openssl s_client"), "<=", 2.0,
        f"floor: import click, ssl {floor:.1f}; + cryptography.x509 {chain_floor:.1f}" if floor and chain_floor else "")
    return out


def _fmt(v, digits=0) -> str:
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def _table(title: str, rows: dict, unit: str, ours: tuple[str, ...], digits=0, extra=None) -> list[str]:
    if not rows:
        return []
    peers = [n for n in rows if n not in ours]
    head = f"{'server':22s} {'median ' + unit:>16s} {'min-max':>21s} {'n':>3s}"
    for o in ours:
        if o in rows:
            head += f" {o[:14] + ' ×':>16s}"
    if extra:
        head += f"  {extra[0]}"
    lines = [f"\n{title}", head, "-" * len(head)]
    for name, st in rows.items():
        line = (f"{name:22s} {_fmt(st['median'], digits):>16s} "
                f"{_fmt(st['min'], digits) + '–' + _fmt(st['max'], digits):>21s} {st['n']:>3d}")
        for o in ours:
            if o in rows:
                r = rows[o]["median"] / st["median"] if st["median"] else None
                line += f" {('—' if name == o else _fmt(r, 2) + '×'):>16s}"
        if extra:
            line += f"  {extra[1](st)}"
        lines.append(line)
    del peers
    return lines


def render(data: dict, s: dict) -> str:
    m = data.get("machine", {})
    c = m.get("crypto", {})
    lines = [
        "tlskit bench " + data.get("when", ""),
        f"machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('memory')}, {m.get('os')}, kernel {m.get('kernel')}",
        f"         Python {m.get('python')} ({m.get('python_ssl')}), {m.get('openssl')}, {m.get('gnutls')}, {m.get('nginx')}",
        f"crypto/core: ECDSA P-256 sign {_fmt(c.get('ecdsa_p256_sign_per_s'))}/s verify {_fmt(c.get('ecdsa_p256_verify_per_s'))}/s, "
        f"X25519 {_fmt(c.get('x25519_per_s'))}/s, AES-128-GCM {_fmt(c.get('aes-128-gcm_mb_per_s'))} MB/s, "
        f"AES-256-GCM {_fmt(c.get('aes-256-gcm_mb_per_s'))} MB/s",
        f"load average at start {tuple(round(x, 2) for x in m.get('loadavg_start', ()))}, at end "
        f"{tuple(round(x, 2) for x in m.get('loadavg_end', ()))}; mode {data.get('mode')}, {data.get('rounds')} round(s) "
        f"of {data.get('seconds')} s, load generator: bench/loadgen.c, {data.get('client_threads')} threads",
    ]
    for busy in m.get("busy", []):
        lines.append(f"  busy at start: {busy}")
    for name, why in (data.get("skipped") or {}).items():
        lines.append(f"skipped {name}: {why}")
    ours = ("tlskit", "tlskit --workers 2")
    lines += _table("Full TLS 1.3 handshakes/s (16 concurrent clients; higher is better; '×' = ours / this)",
                    s["handshakes"], "/s", ours,
                    extra=("p99 ms, server CPU µs/handshake, client CPU/thread",
                           lambda st: f"{st['p99_ms']:.1f}, {st['server_cpu_us']:.0f}, {st['client_cpu_per_thread']:.0%}"))
    gc = data.get("generator_check") or {}
    if gc.get("runs"):
        lines.append("load generator check vs " + gc["server"] + ": " + ", ".join(
            f"{r['threads']} thread(s) {r['rate']:.0f}/s ({r['client_cpu_per_thread']:.0%} CPU/thread)" for r in gc["runs"]))
    if s["hold"]:
        lines.append(f"\nIdle TLS sessions held by one process (RSS from /proc/PID/status; fresh clients handshake meanwhile)")
        head = f"{'server':22s} {'held':>7s} {'KiB/session':>12s} {'RSS before→after MiB':>22s} {'fresh p99 ms':>13s} {'ulimit -n':>10s}"
        lines += [head, "-" * len(head)]
        for name, h in s["hold"].items():
            lines.append(f"{name:22s} {h['held']:>7d} {_fmt(h['kib_per_session'], 1):>12s} "
                         f"{h['rss_before_kib'] / 1024:>10.1f}→{h['rss_after_kib'] / 1024:<10.1f} "
                         f"{_fmt(h['fresh_p99_ms'], 1):>13s} {h.get('nofile_soft') or '-':>10}")
    bound = s.get("aes_gcm_bound_mb_per_s")
    lines += _table(f"Echo throughput, one stream, 16 KiB writes (MB/s; AES-GCM bound on {m.get('cores')} cores "
                    f"≈ {_fmt(bound)} MB/s)", s["echo"], "MB/s", ("tlskit",),
                    extra=("of bound, server CPU ms/MB, cipher",
                           lambda st: f"{st['median'] / bound:.0%}, {st['server_cpu_ms_per_mb']:.2f}, {st['cipher']}"
                           if bound else st["cipher"]))
    if s["startup"]:
        lines.append("\nStart-up and one-shot commands (wall time, ms; lower is better)")
        head = f"{'command':34s} {'median':>8s} {'min–max':>15s} {'runs':>5s}"
        lines += [head, "-" * len(head)]
        for name, t in s["startup"].items():
            lines.append(f"{name:34s} {t['median_ms']:>8.1f} {t['min_ms']:>7.1f}–{t['max_ms']:<7.1f} {t['runs']:>5d}")
        for cmd, imports in ((data.get("startup") or {}).get("imports") or {}).items():
            if imports:
                total = imports[0]["total_us"] / 1000
                top = ", ".join(f"{r['module']} {r['cumulative_us'] / 1000:.1f}" for r in imports[1:6])
                lines.append(f"python -X importtime, {cmd}: {total:.1f} ms of imports; biggest: {top} (ms)")
    if s.get("efficiency"):
        lines.append("\nServer CPU per handshake, peer ÷ ours (> 1: the peer works harder for each handshake)")
        for e in s["efficiency"]:
            lines.append(f"  {e['ours']:22s} vs {e['peer']:18s} {e['ours_us']:6.0f} vs {e['peer_us']:6.0f} µs  "
                         f"→ {e['ratio']:.2f}")
    lines.append("\nTargets (issue 5), measured in this run")
    for t in s["targets"]:
        mark = {True: "ok  ", False: "MISS", None: "n/a "}[t["ok"]]
        v = "-" if t["value"] is None else f"{t['value']:.2f}"
        lines.append(f"  {mark} {t['target']:50s} {v:>8s} (target {t['op']} {t['goal']:g}) {t['detail']}")
    return "\n".join(lines)


def chart(data: dict, s: dict, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(2, 2, figsize=(14, 9))
    m = data.get("machine", {})
    fig.suptitle(f"tlskit bench {data.get('when', '')} — {m.get('cpu', '?')}, {m.get('cores')} cores "
                 f"({data.get('mode')}, medians, bars span min–max)", fontsize=10)

    def bars(ax, rows, title, unit, ours=("tlskit", "tlskit --workers 2")):
        if not rows:
            ax.set_visible(False)
            return
        names = list(rows)
        med = [rows[n]["median"] for n in names]
        lo = [rows[n]["median"] - rows[n].get("min", rows[n]["median"]) for n in names]
        hi = [rows[n].get("max", rows[n]["median"]) - rows[n]["median"] for n in names]
        colors = ["tab:orange" if n.startswith("tlskit") else "tab:blue" for n in names]
        ax.barh(names, med, xerr=[lo, hi], color=colors, capsize=3)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(unit)
        for i, v in enumerate(med):
            ax.text(v + hi[i], i, f"  {v:,.0f}" if v >= 10 else f"  {v:.1f}", va="center", fontsize=8)

    bars(axes[0][0], s["handshakes"], "Full TLS 1.3 handshakes/s, 16 clients (higher is better)", "handshakes/s")
    hold = {n: {"median": h["kib_per_session"]} for n, h in s["hold"].items() if h.get("kib_per_session") is not None}
    bars(axes[0][1], hold, "KiB RSS per idle TLS session (lower is better)", "KiB/session")
    bars(axes[1][0], s["echo"], "Echo MB/s, one stream, 16 KiB writes (higher is better)", "MB/s")
    st = {n: {"median": t["median_ms"], "min": t["min_ms"], "max": t["max_ms"]} for n, t in s["startup"].items()}
    bars(axes[1][1], st, "Start-up and one-shot commands, ms (lower is better)", "ms")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
