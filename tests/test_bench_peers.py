"""The benchmark's Python reference servers (bench/peers) do what their numbers claim.

``make bench`` compares tlskit with them; the floors in docs/performance.md are only worth
something if each really is a TLS echo, really runs in N processes on one port with
``--processes N`` (one SO_REUSEPORT socket each, like ``tlskit serve --workers N``), and
stops with all its processes on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .interop.peers import free_port, wait_listening

PEERS = Path(__file__).resolve().parent.parent / "bench" / "peers"


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _listening_sockets(port: int) -> int:
    """How many sockets listen on 127.0.0.1:port (from /proc/net/tcp; state 0A is LISTEN)."""
    hexport = f"{port:04X}"
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for r in rows if r.split()[1] == f"0100007F:{hexport}" and r.split()[3] == "0A")


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc to count processes and sockets")
@pytest.mark.parametrize("peer", ["bare_echo.py", "lean_echo.py"])
@pytest.mark.parametrize("processes", [1, 2])
def test_bench_peer_echoes_in_n_processes_and_stops_with_all_of_them(certs, peer, processes):
    port = free_port()
    argv = [sys.executable, str(PEERS / peer), str(certs.cert), str(certs.key), str(port), "--processes", str(processes)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_listening(port, timeout=15)
        deadline = time.monotonic() + 10
        while _listening_sockets(port) < processes and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _listening_sockets(port) == processes
        kids = _children(proc.pid)
        assert len(kids) == processes - 1
        ctx = ssl.create_default_context(cafile=str(certs.ca))
        payload = os.urandom(200_000)  # more than one record, and more than a socket buffer holds at once
        for _ in range(4):  # several connections: with two processes the kernel spreads them
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                    assert tls.version() == "TLSv1.3"
                    tls.sendall(payload)
                    got = bytearray()
                    while len(got) < len(payload):
                        chunk = tls.recv(65536)
                        assert chunk, "the echo stopped early"
                        got += chunk
                    assert bytes(got) == payload
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, proc.stderr.read().decode(errors="replace")
        for kid in kids:  # reaped by the parent before it exited
            assert not Path(f"/proc/{kid}").exists() or "Z" in Path(f"/proc/{kid}/stat").read_text().split()[2]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
