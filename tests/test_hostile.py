"""Hostile clients against a real in-process server: nobody else is hurt, nothing is kept.

Each test runs one kind of hostile peer against a server with short timeouts
(handshake 1 s, idle 1 s). While it runs, a legitimate client must complete a
handshake and an echo within 1 s; afterwards the server must hold no
connection and (almost) no buffered bytes, must not have logged a traceback,
and must have reported the case in one plain line.

Cases already proven in tests/test_server.py are not repeated here: plain HTTP
gets a 400 (``test_plain_http_gets_a_400_pointing_to_https``), a TLS 1.1 hello
gets alert 70, one flooding client is held by back-pressure, the refusal at
``max_connections`` is logged. This file adds the crowds and the malformed
records. Every loop is bounded in count and in time.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

import pytest

from tlskit.contexts import create_client_context
from tlskit.server import READ_BUFFER, WRITE_HIGH, Server

from .test_server import client_hello, echo, read_until_close, tls_socket

TIMEOUTS = {"handshake_timeout": 1, "idle_timeout": 1}
SMALL = 64 * 1024  # what an idle server may still hold in user space, all connections together


# --- helpers ---------------------------------------------------------------------------------------


def legit_echo_within_1s(srv, certs) -> float:
    """:func:`legit_echo`, asserted under 1 s."""
    took = legit_echo(srv, certs)
    assert took < 1.0, f"a legitimate client waited {took:.2f} s"
    return took


def legit_echo(srv, certs) -> float:
    """A legitimate client's handshake and echo; returns the seconds it took.

    Timed from the connect to the echoed line, with no quiet period (``echo()`` in
    test_server.py waits 0.2 s for more reply; that is not the server's time).
    """
    t0 = time.monotonic()
    with tls_socket(srv.port, certs, timeout=5) as s:
        s.sendall(b"ping\n")
        reply = b""
        while not reply.endswith(b"\n") and time.monotonic() - t0 < 5:
            chunk = s.recv(100)
            if not chunk:
                break
            reply += chunk
    took = time.monotonic() - t0
    assert reply == b"ping\n"
    return took


def wait_released(srv, timeout: float = 5.0) -> None:
    """Wait until the server holds no connection, then check its buffers are (almost) empty."""
    deadline = time.monotonic() + timeout
    while srv.server.active and time.monotonic() < deadline:
        time.sleep(0.02)
    assert srv.server.active == 0, f"{srv.server.active} connections still open after {timeout} s"
    held = srv.call(srv.server.buffered_bytes)
    assert held <= SMALL, held


def assert_plain_log(events, *codes: str) -> None:
    """No traceback, no error record, every record one line; each expected code reported."""
    for r in events.records:
        msg = r.getMessage()
        assert r.exc_info is None and "Traceback" not in msg, msg
        assert r.levelno < 40, msg  # no ERROR/CRITICAL: a hostile peer is not a server fault
        assert "\n" not in msg, msg
    seen = {getattr(r, "code", None) for r in events.of("handshake_failed")}
    for code in codes:
        assert code in seen, f"no handshake_failed with code {code!r}; saw {seen}"


def alerts_in(data: bytes) -> list[tuple[int, int]]:
    """(level, description) of every plaintext alert record in ``data``."""
    out, i = [], 0
    while i + 5 <= len(data):
        ctype, length = data[i], struct.unpack("!H", data[i + 3 : i + 5])[0]
        body = data[i + 5 : i + 5 + length]
        if ctype == 21 and len(body) == 2:
            out.append((body[0], body[1]))
        i += 5 + length
    return out


def real_client_hello(certs) -> bytes:
    """The first flight of our own client: one record holding a full ClientHello."""
    ctx = create_client_context(ca=certs.ca, system_ca=False)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def connect_raw(port: int, timeout: float = 3.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def closed_by_peer(s: socket.socket) -> bool:
    """Whether the server has closed ``s`` (EOF or reset), without blocking."""
    s.setblocking(False)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return True
    except BlockingIOError:
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True
    finally:
        s.setblocking(True)


def wait_all_closed(socks: list[socket.socket], timeout: float) -> float:
    t0 = time.monotonic()
    pending = list(socks)
    while pending and time.monotonic() - t0 < timeout:
        pending = [s for s in pending if not closed_by_peer(s)]
        if pending:
            time.sleep(0.05)
    assert not pending, f"{len(pending)} of {len(socks)} connections still open after {timeout} s"
    return time.monotonic() - t0


# --- malformed first flights ----------------------------------------------------------------------------


def test_garbage_instead_of_a_client_hello(serve, certs, events):
    srv = serve(**TIMEOUTS)
    with connect_raw(srv.port) as s:
        s.sendall(b"\x00\xff" + os.urandom(510))
        legit_echo_within_1s(srv, certs)
        read_until_close(s)
    wait_released(srv)
    assert_plain_log(events, "not_tls")


def test_truncated_client_hello_then_fin_gets_decode_error(serve, certs, events):
    srv = serve(**TIMEOUTS)
    hello = real_client_hello(certs)
    body = hello[9:][:60]  # cut inside the session id: the lengths no longer add up
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    record = hello[:3] + len(hs).to_bytes(2, "big") + hs
    with connect_raw(srv.port) as s:
        s.sendall(record)
        s.shutdown(socket.SHUT_WR)  # FIN
        legit_echo_within_1s(srv, certs)
        reply = read_until_close(s)
    assert alerts_in(reply) == [(2, 50)], reply.hex()  # fatal decode_error, RFC 8446 §6.2
    wait_released(srv)
    failed = events.wait("handshake_failed", where=lambda r: r.alert_sent is not None)
    assert failed.alert_sent == 50 and "alert 50 decode_error" in failed.getMessage()
    assert_plain_log(events)


def test_complete_client_hello_is_not_a_decode_error(serve, certs):
    # Negative twin: the same hello, not truncated, gets a ServerHello (handshake record 22), no alert.
    srv = serve(**TIMEOUTS)
    with connect_raw(srv.port) as s:
        s.sendall(real_client_hello(certs))
        s.settimeout(2)
        first = s.recv(5)
    assert first[:1] == b"\x16"


@pytest.mark.parametrize(
    ("version", "label", "alert"),
    # What OpenSSL 3.0 sends, checked on the wire: protocol_version (70) for a TLS 1.0 hello
    # (RFC 8996), handshake_failure (40) for an SSL 3.0 one (RFC 7568; OpenSSL answers in SSL 3.0
    # framing, where protocol_version does not exist).
    [(0x0300, "SSL 3.0", 40), (0x0301, "TLS 1.0", 70)],
)
def test_old_protocol_hello_gets_a_fatal_alert(serve, certs, events, version, label, alert):
    srv = serve(**TIMEOUTS)
    with connect_raw(srv.port) as s:
        s.sendall(client_hello(version))
        legit_echo_within_1s(srv, certs)
        reply = read_until_close(s)
    assert alerts_in(reply) == [(2, alert)], reply.hex()
    wait_released(srv)
    failed = events.wait("handshake_failed", where=lambda r: r.alert_sent is not None)
    assert failed.code == "no_shared_version" and failed.alert_sent == alert, failed.getMessage()
    assert label in failed.reason
    assert_plain_log(events)


@pytest.mark.parametrize(
    ("announced", "sent"),
    [
        # A whole record one byte over the TLSCiphertext limit of RFC 8446 §5.2 (2^14 + 256).
        (2**14 + 256 + 1, 2**14 + 256 + 1),
        # Only a header announcing more than OpenSSL ever reads (2^14 + 2048): refused on the header.
        (2**14 + 2048 + 1, 64),
    ],
    ids=["full-record", "header-only"],
)
def test_oversized_record_gets_record_overflow(serve, certs, events, announced, sent):
    srv = serve(**TIMEOUTS)
    with connect_raw(srv.port) as s:
        s.sendall(b"\x16\x03\x01" + announced.to_bytes(2, "big") + b"\x01" * sent)
        legit_echo_within_1s(srv, certs)
        reply = read_until_close(s)
    assert alerts_in(reply) == [(2, 22)], reply.hex()
    wait_released(srv)
    failed = events.wait("handshake_failed", where=lambda r: r.alert_sent is not None)
    assert failed.code == "record_overflow" and "alert 22 record_overflow" in failed.getMessage()
    assert "oversized TLS record" in failed.reason
    assert_plain_log(events)


def test_record_at_the_size_limit_is_not_an_overflow(serve, certs):
    # Negative twin: a header announcing exactly 2^14 bytes is waited for, not refused at once.
    srv = serve(**TIMEOUTS)
    with connect_raw(srv.port) as s:
        s.sendall(b"\x16\x03\x01" + (2**14).to_bytes(2, "big") + b"\x01" * 64)
        s.settimeout(0.3)
        with pytest.raises(TimeoutError):
            s.recv(10)


def test_non_ascii_sni_is_one_plain_line_not_a_traceback(serve, certs, events, capfd):
    # Found by tests/test_fuzz_serve.py: CPython decodes the SNI as ASCII before any callback and
    # printed a traceback on the server's stderr for each such hello (contexts._install_bad_sni_filter).
    srv = serve(**TIMEOUTS)
    hello = real_client_hello(certs)
    i = hello.index(b"localhost")
    bad = hello[: i + 8] + b"\x89" + hello[i + 9 :]  # "localhos\x89": same lengths, one byte not ASCII
    with connect_raw(srv.port) as s:
        s.sendall(bad)
        legit_echo_within_1s(srv, certs)
        reply = read_until_close(s)
    assert alerts_in(reply) == [(2, 80)], reply.hex()  # CPython's choice: internal_error
    wait_released(srv)
    failed = events.wait("handshake_failed", where=lambda r: r.alert_sent is not None)
    assert failed.code == "bad_sni" and "RFC 6066" in failed.reason
    err = capfd.readouterr().err
    assert "Traceback" not in err and "UnicodeDecodeError" not in err, err
    assert_plain_log(events)


def test_other_unraisable_errors_still_reach_the_previous_hook(serve):
    # Negative twin: the filter swallows only the SNI decode report, nothing else.
    import sys

    serve(**TIMEOUTS)
    seen = []
    assert getattr(sys.unraisablehook, "tlskit_bad_sni_filter", False)  # a server context installed it

    class Report:
        exc_type, exc_value, exc_traceback, err_msg, object = ValueError, ValueError("x"), None, None, b"obj"

    old = sys.unraisablehook
    try:
        import tlskit.contexts as contexts

        sys.unraisablehook = lambda u: seen.append(u)
        contexts._install_bad_sni_filter()
        sys.unraisablehook(Report())
        sys.unraisablehook(type("R", (Report,), {"exc_value": UnicodeDecodeError("ascii", b"\x89", 0, 1, "x")})())
    finally:
        sys.unraisablehook = old
    assert len(seen) == 2  # neither came from ssl's do_handshake, so both passed through


# --- crowds ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_200_silent_connections_are_closed_after_the_handshake_timeout(serve, certs, events):
    srv = serve(**TIMEOUTS)
    socks = [connect_raw(srv.port) for _ in range(200)]
    try:
        t0 = time.monotonic()
        legit_echo_within_1s(srv, certs)
        took = wait_all_closed(socks, timeout=4.0) + (time.monotonic() - t0)
        assert took < 4.0
    finally:
        for s in socks:
            s.close()
    wait_released(srv)
    timeouts = [r for r in events.of("handshake_failed") if r.code == "handshake_timeout"]
    assert len(timeouts) == 200 and "sent nothing for 1 s" in timeouts[0].getMessage()
    assert_plain_log(events)


@pytest.mark.slow
def test_200_connections_trickling_one_byte_a_second_are_cut_at_the_handshake_timeout(serve, certs, events):
    # The handshake timeout counts from the connect, not from the last byte: trickling does not extend it.
    srv = serve(**TIMEOUTS)
    hello = real_client_hello(certs)
    socks = [connect_raw(srv.port) for _ in range(200)]
    stop = threading.Event()

    def trickle() -> None:
        for i in range(4):  # at most 4 bytes each, about 1 s apart
            for s in socks:
                try:
                    s.send(hello[i : i + 1])
                except OSError:
                    pass
            if stop.wait(1.0):
                return

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    try:
        time.sleep(0.2)
        legit_echo_within_1s(srv, certs)
        wait_all_closed(socks, timeout=4.0)
    finally:
        stop.set()
        t.join(5)
        for s in socks:
            s.close()
    wait_released(srv)
    timeouts = [r for r in events.of("handshake_failed") if r.code == "handshake_timeout"]
    assert len(timeouts) == 200 and "stalled after" in timeouts[0].getMessage()
    assert_plain_log(events)


def test_established_but_silent_client_is_closed_after_the_idle_timeout(serve, certs, events):
    srv = serve(**TIMEOUTS)
    with tls_socket(srv.port, certs) as quiet:
        legit_echo_within_1s(srv, certs)
        t0 = time.monotonic()
        assert quiet.recv(10) == b""  # close_notify after the idle timeout
        assert time.monotonic() - t0 < 2.5
    wait_released(srv)
    idle = events.wait("idle_timeout")
    assert "nothing for 1 s" in idle.getMessage()
    assert_plain_log(events)


def test_half_a_handshake_then_rst(serve, certs, events):
    srv = serve(**TIMEOUTS)
    socks = []
    for _ in range(20):
        s = connect_raw(srv.port)
        s.sendall(real_client_hello(certs))
        assert s.recv(5)[:1] == b"\x16"  # the ServerHello came: we are mid-handshake
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        socks.append(s)
    for s in socks:
        s.close()  # SO_LINGER 0: an RST, not a FIN
    legit_echo_within_1s(srv, certs)
    wait_released(srv)
    failed = events.of("handshake_failed")
    assert len(failed) >= 20 and all(r.code != "handshake_timeout" for r in failed[:20])
    assert_plain_log(events)


BURST = """
import socket, sys, time
port, count, done, t0 = int(sys.argv[1]), int(sys.argv[2]), 0, time.monotonic()
while done < count and time.monotonic() - t0 < 20:
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    done += 1
print(done)
"""


def established_to(port: int) -> int | None:
    """Established TCP connections to ``port`` as the kernel counts them (``ss``), or None without ss."""
    try:
        out = subprocess.run(
            ["ss", "-tnH", "state", "established", f"( sport = :{port} )"], capture_output=True, text=True, timeout=5
        ).stdout
    except FileNotFoundError:
        return None
    return len([line for line in out.splitlines() if line.strip()])


@pytest.mark.slow
def test_2000_rapid_connect_close_against_tlskit_serve(certs):
    # The real `tlskit serve` (its console log, its log rate), the burst from another process, as a
    # hostile client would be. Found here: rendering a console line for each of 2,000 failed
    # handshakes kept a legitimate client waiting 1.5-6 s; failures beyond the log rate now go to debug.
    from .interop.peers import free_port, wait_listening

    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TLSKIT_")}, "TLSKIT_HOME": str(certs.home), "NO_COLOR": "1", "COLUMNS": "200"}
    server = subprocess.Popen(
        [sys.executable, "-m", "tlskit", "serve", "--host", "127.0.0.1", "--port", str(port), "--cert", "localhost",
         "--handshake-timeout", "1", "--idle-timeout", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_listening(port, timeout=10)
        srv = type("Srv", (), {"port": port})()
        burst = subprocess.Popen([sys.executable, "-c", BURST, str(port), "2000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # Five legitimate clients, started 0.05 s apart while the burst runs.
        took: list[float] = []
        threads = []
        for _ in range(5):
            threads.append(threading.Thread(target=lambda: took.append(legit_echo(srv, certs)), daemon=True))
            threads[-1].start()
            time.sleep(0.05)
        for t in threads:
            t.join(10)
        assert len(took) == 5, "a legitimate client did not finish"
        out, err = burst.communicate(timeout=30)
        assert burst.returncode == 0 and int(out) == 2000, err
        took.append(legit_echo_within_1s(srv, certs))  # once the burst is over: the 1 s bound, strictly
        assert len(took) >= 2
        # During the burst a legitimate client queues behind it in the kernel's FIFO accept queue, so
        # its wait is (connections ahead of it) / (server's accept rate). On a 2-CPU VM, with this test,
        # the burst and the server sharing the CPUs, clients started 0.05-0.25 s into the burst took
        # 0.01-1.3 s inside pytest and 0.35-0.7 s outside it; before failures were held to the log rate
        # they took 1.5-6 s. The 1 s bound holds strictly once the burst is over; during it, 2 s.
        during = sorted(took[:-1])
        assert during[-1] < 2.0, during
        # Released: the kernel sees no established connection left on the port.
        left = established_to(port)
        t0 = time.monotonic()
        while left and time.monotonic() - t0 < 3:
            time.sleep(0.05)
            left = established_to(port)
        assert not left, f"{left} connections still established"
    finally:
        server.terminate()
        try:
            _, log_text = server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            _, log_text = server.communicate(timeout=5)
    assert server.returncode == 0, log_text[-2000:]
    assert "Traceback" not in log_text
    m = re.search(r"stopped: (\d+) connections, (\d+) handshakes ok, (\d+) failed, (\d+) refused", " ".join(log_text.split()))
    assert m, log_text[-2000:]
    connections, ok, failed, refused = map(int, m.groups())
    assert connections >= 2000 + len(took) and refused == 0 and ok >= len(took)
    assert "failed handshakes a second" in " ".join(log_text.split())  # said once, not 2,000 lines


@pytest.mark.slow
def test_clients_that_send_and_never_read_are_held_by_back_pressure(serve, certs, events):
    # tests/test_server.py proves one flooder; here five at once, with a bound on the total.
    srv = serve(handshake_timeout=1, idle_timeout=30)
    flooders = [tls_socket(srv.port, certs, timeout=0.3) for _ in range(5)]
    chunk = b"x" * 16384
    try:
        t0 = time.monotonic()
        for f in flooders:
            sent = 0
            while sent < 32 * 1024 * 1024 and time.monotonic() - t0 < 8:
                try:
                    f.sendall(chunk)
                except (TimeoutError, ssl.SSLWantWriteError):
                    break
                sent += len(chunk)
        held = srv.call(srv.server.buffered_bytes)
        per_conn = WRITE_HIGH + 2 * READ_BUFFER + 64 * 1024
        assert held <= 5 * per_conn, held
        legit_echo_within_1s(srv, certs)
    finally:
        for f in flooders:
            f.close()
    wait_released(srv)
    assert_plain_log(events)


def test_max_connections_refuses_at_once_logs_once_and_recovers(serve, certs, events):
    srv = serve(max_connections=20, **TIMEOUTS)
    holders = [connect_raw(srv.port) for _ in range(20)]
    deadline = time.monotonic() + 3
    while srv.server.active < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    extra = []
    try:
        t0 = time.monotonic()
        for _ in range(50):
            s = connect_raw(srv.port)
            extra.append(s)
        wait_all_closed(extra, timeout=1.0)  # refused at once, not queued
        assert time.monotonic() - t0 < 1.5
        assert srv.server.stats.refused == 50
        refused = events.of("refused")
        # Rate-limited: a flood of refusals is one or two lines, not fifty.
        assert 1 <= len(refused) <= 2 and "the limit is 20" in refused[0].getMessage()
        # The holders time out after 1 s; then the slots are free again.
        wait_all_closed(holders, timeout=3.0)
        wait_released(srv)
        legit_echo_within_1s(srv, certs)
    finally:
        for s in holders + extra:
            s.close()
    wait_released(srv)
    assert_plain_log(events, "handshake_timeout")


def test_listen_backlog_as_the_kernel_sees_it(serve):
    srv = serve(**TIMEOUTS)
    assert srv.server.backlog >= 512
    try:
        out = subprocess.run(["ss", "-ltnH", f"sport = :{srv.port}"], capture_output=True, text=True, timeout=5).stdout
    except FileNotFoundError:
        pytest.skip("ss (iproute2) is not installed: checked Server.backlog only")
    # ss -l shows the backlog in Send-Q (capped by net.core.somaxconn).
    send_q = int(out.split()[2])
    cap = int(open("/proc/sys/net/core/somaxconn").read())
    assert send_q >= min(512, cap), out


def test_server_survives_the_whole_parade(certs, events):
    # One server, every hostile case above in a row, then a legitimate client: still served.
    import asyncio

    from tlskit.contexts import create_server_context

    async def main():
        server = Server(create_server_context(certs.cert, certs.key), "127.0.0.1", 0, **TIMEOUTS)
        task = asyncio.create_task(server.serve())
        while not server._sockets:
            await asyncio.sleep(0.01)
        port = server.port
        loop = asyncio.get_running_loop()

        def hostile():
            for data in (b"\x00" * 100, client_hello(0x0300), b"\x16\x03\x01\xff\xff" + b"\x00" * 10):
                with connect_raw(port) as s:
                    s.sendall(data)
                    read_until_close(s, 2)

        await asyncio.wait_for(loop.run_in_executor(None, hostile), 15)
        result = await asyncio.wait_for(
            loop.run_in_executor(None, lambda: echo(port, certs)), 5
        )
        await asyncio.wait_for(server.aclose(), 5)
        await asyncio.wait_for(task, 5)
        return result, server

    result, server = asyncio.run(main())
    assert result.reply == b"ping\n" and server.stats.handshakes_failed == 3 and server.active == 0
    assert_plain_log(events)
