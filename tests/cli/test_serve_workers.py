"""``tlskit serve --workers N`` and the open-file limit, over real loopback sockets.

The server runs as a child (``python -m tlskit serve --json-log``); its events are read with a
deadline, every process is stopped by its PID.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tlskit.client import connect


pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or not sys.platform.startswith("linux"),
                                reason="workers need fork and SO_REUSEPORT (Linux)")


def _echo(run, port: int) -> bytes:
    result = connect("127.0.0.1", port, ca=run.home / "ca" / "ca.crt", system_ca=False, servername="localhost",
                     send=b"hi\n", quiet=0.2, timeout=5)
    return result.reply


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


@pytest.mark.slow
def test_workers_share_one_port_and_a_dead_worker_is_replaced(served, run):
    proc = served("--port", "0", "--host", "127.0.0.1", "--workers", "2")
    listening = proc.wait_event("listening")
    assert listening["workers"] == 2 and len(listening["pids"]) == 2
    assert sum(e["event"] == "listening" for e in proc.events) == 1  # said once, not once per worker
    port = listening["port"]
    for _ in range(6):
        assert _echo(run, port) == b"hi\n"
    ok = proc.wait_event("handshake_ok")
    assert ok["worker"] in (1, 2) and ok["message"].startswith("[worker ")
    victim = listening["pids"][0]
    os.kill(victim, signal.SIGKILL)  # a worker of our own child, by its PID
    restarted = proc.wait_event("worker_restarted")
    assert restarted["old_pid"] == victim and restarted["pid"] != victim and "SIGKILL" in restarted["reason"]
    for _ in range(4):
        assert _echo(run, port) == b"hi\n"
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.proc.wait(10) == 0
    stopped = proc.wait_event("stopped")
    assert stopped["workers"] == 2 and stopped["restarts"] == 1
    assert stopped["stats"]["handshakes_ok"] >= 4  # the killed worker's counts die with it
    assert not _alive(restarted["pid"]) and not any(_alive(p) for p in listening["pids"])
    assert b"Traceback" not in proc.proc.stderr.read()


@pytest.mark.slow
def test_workers_stop_when_the_parent_is_killed(served):
    proc = served("--port", "0", "--host", "127.0.0.1", "--workers", "2")
    pids = proc.wait_event("listening")["pids"]
    proc.proc.kill()
    proc.proc.wait(5)
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in pids)


def test_workers_on_a_port_in_use_is_exit_4_naming_the_port(run):
    import socket

    run("ca", "init", "-q")
    run("cert", "issue", "localhost", "127.0.0.1", "-q")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2")
    assert result.exit_code == 4
    assert str(port) in result.stderr and "Traceback" not in result.stderr


def test_one_worker_is_the_plain_server(served):
    # The negative twin: without --workers there is no supervisor and no worker tag.
    proc = served("--port", "0", "--host", "127.0.0.1", "--loop", "asyncio")
    listening = proc.wait_event("listening")
    assert "workers" not in listening and "worker" not in listening
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.proc.wait(10) == 0


_LIMIT_PROBE = """
import asyncio, logging, resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard}))
from tlskit.contexts import create_server_context
from tlskit.server import Server
records = []
class Keep(logging.Handler):
    def emit(self, r): records.append(r)
logging.getLogger("tlskit").addHandler(Keep()); logging.getLogger("tlskit").setLevel(logging.INFO)
async def main():
    async with Server(create_server_context(sys.argv[1], sys.argv[2]), "127.0.0.1", 0, max_connections={maxc}):
        pass
asyncio.run(main())
print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], [r.event for r in records if r.event == "fd_limit"])
"""


def _limit_probe(run, soft: int, hard: int, maxc: int) -> str:
    run("ca", "init", "-q")
    run("cert", "issue", "localhost", "-q")
    d = run.home / "certs" / "localhost"
    code = _LIMIT_PROBE.format(soft=soft, hard=hard, maxc=maxc)
    r = subprocess.run([sys.executable, "-c", code, str(d / "cert.pem"), str(d / "key.pem")], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_start_raises_the_open_file_limit_to_the_hard_limit(run):
    hard = __import__("resource").getrlimit(__import__("resource").RLIMIT_NOFILE)[1]
    if hard < 2048:
        pytest.skip(f"the hard open-file limit is {hard}")
    assert _limit_probe(run, 256, 2048, 1000) == "2048 []"


def test_start_warns_when_the_hard_limit_is_too_low_for_max_connections(run):
    assert _limit_probe(run, 256, 512, 10000) == "512 ['fd_limit']"


def test_loop_uvloop_without_the_package_is_a_config_error(run, monkeypatch):
    run("ca", "init", "-q")
    run("cert", "issue", "localhost", "127.0.0.1", "-q")
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    result = run("serve", "--host", "127.0.0.1", "--port", "0", "--loop", "uvloop")
    assert result.exit_code == 3
    assert "pip install uvloop" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_loop_uvloop_serves_and_stops_cleanly(served, run):
    pytest.importorskip("uvloop")
    proc = served("--port", "0", "--host", "127.0.0.1", "--loop", "uvloop")
    listening = proc.wait_event("listening")
    assert listening["loop"] == "uvloop"
    assert _echo(run, listening["port"]) == b"hi\n"
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.proc.wait(10) == 0
    assert proc.wait_event("stopped")["stats"]["handshakes_ok"] == 1


def test_loop_asyncio_is_asyncio_even_with_uvloop_installed(served):
    # The negative twin of the test above: the listening event names the loop actually used.
    proc = served("--port", "0", "--host", "127.0.0.1", "--loop", "asyncio")
    assert proc.wait_event("listening")["loop"] == "asyncio"
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.proc.wait(10) == 0
