"""The asyncio TLS server, over real loopback sockets.

Each success test has a negative twin next to it. Every socket has a timeout.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
import sys
import textwrap
import time

import pytest

from tlskit import client
from tlskit.contexts import create_client_context, create_server_context
from tlskit.errors import NetworkError, TLSError, VerificationError
from tlskit import server as server_module
from tlskit.server import READ_BUFFER, TIMER_TICK, WRITE_HIGH, Server, can_accept_directly


def has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not has_ipv6(), reason="no IPv6 loopback on this machine")


def echo(port, certs, host="127.0.0.1", **kw):
    return client.connect(host, port, ca=certs.ca, system_ca=False, send=b"ping\n", quiet=0.2, timeout=5, **kw)


def raw_exchange(port: int, data: bytes, *, host: str = "127.0.0.1", timeout: float = 3.0) -> bytes:
    """Send raw bytes, read until the server closes (or the timeout)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        return read_until_close(s, timeout)


def read_until_close(s: socket.socket, timeout: float = 3.0) -> bytes:
    """Everything the peer sends until it closes or resets, or ``timeout`` passes."""
    s.settimeout(timeout)
    out, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not chunk:
            break
        out += chunk
    return out


def tls_socket(port: int, certs, *, host: str = "127.0.0.1", timeout: float = 5.0, **kw) -> ssl.SSLSocket:
    ctx = create_client_context(ca=certs.ca, system_ca=False, **kw)
    sock = socket.create_connection((host, port), timeout=timeout)
    return ctx.wrap_socket(sock, server_hostname="localhost")


def client_hello(version: int) -> bytes:
    """A minimal ClientHello offering only ``version`` (0x0301 TLS 1.0, 0x0302 TLS 1.1)."""
    body = version.to_bytes(2, "big") + os.urandom(32) + b"\x00" + b"\x00\x04\x00\x2f\x00\x35" + b"\x01\x00"
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(hs).to_bytes(2, "big") + hs


# --- echo, addresses ----------------------------------------------------------------------------


def test_echo_over_ipv4(serve, certs, events):
    srv = serve()
    result = echo(srv.port, certs)
    assert result.reply == b"ping\n"
    assert result.report.verified is True
    ok = events.wait("handshake_ok")
    assert ok.report.side == "server" and ok.report.tls_version == "TLS 1.3" and ok.report.cipher
    assert ok.report.handshake_ms > 0


def test_echo_fails_for_a_name_the_certificate_does_not_cover(serve, certs, events):
    srv = serve()
    with pytest.raises(VerificationError) as info:
        echo(srv.port, certs, servername="wrong.test")
    assert info.value.code == "hostname_mismatch"
    failed = events.wait("handshake_failed")
    assert failed.code == "client_hostname_mismatch" and "wrong.test" in failed.reason


@needs_ipv6
def test_echo_over_ipv6(serve, certs):
    srv = serve(host="::1")
    assert srv.server.addresses == [("::1", srv.port)]
    assert echo(srv.port, certs, host="::1").reply == b"ping\n"
    # Twin: nothing listens on IPv4 for this server.
    with pytest.raises(NetworkError):
        echo(srv.port, certs, host="127.0.0.1")


@needs_ipv6
def test_localhost_binds_both_loopbacks_on_one_port(serve, certs):
    srv = serve(host="localhost")
    hosts = {a[0] for a in srv.server.addresses}
    assert hosts == {"127.0.0.1", "::1"}
    assert len(srv.server.bound_ports) == 1
    for host in ("127.0.0.1", "::1"):
        assert echo(srv.port, certs, host=host).reply == b"ping\n"


def test_listening_event_describes_the_server(serve, certs, events):
    srv = serve(client_ca=certs.ca, mtls="optional", alpn=["http/1.1"])
    rec = events.wait("listening")
    assert rec.port == srv.port and rec.addresses == [f"127.0.0.1:{srv.port}"]
    assert rec.certificate["subject"] == "CN=localhost" and rec.certificate["not_after"]
    assert rec.mtls == "optional" and rec.alpn == ["http/1.1"] and rec.mode == "echo"


def test_many_concurrent_clients_are_served(serve, certs, accept_path):  # on both accept paths
    srv = serve()
    ctx = create_client_context(ca=certs.ca, system_ca=False)

    async def one(i: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port, ssl=ctx, server_hostname="localhost")
        writer.write(b"client %d\n" % i)
        line = await reader.readline()
        writer.close()
        return line

    async def main():
        return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(50))), 20)

    lines = asyncio.run(main())
    assert lines == [b"client %d\n" % i for i in range(50)]
    assert srv.server.stats.handshakes_ok >= 50


def test_server_runs_as_a_task_in_the_callers_loop(certs, events):
    async def main():
        ctx = create_server_context(certs.cert, certs.key)
        server = Server(ctx, "127.0.0.1", 0)
        task = asyncio.create_task(server.serve())
        await asyncio.wait_for(_until(lambda: server._sockets), 5)
        cctx = create_client_context(ca=certs.ca, system_ca=False)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=cctx, server_hostname="localhost")
        writer.write(b"hello\n")
        line = await asyncio.wait_for(reader.readline(), 5)
        server.close()
        # The server's close_notify ends our stream.
        rest = await asyncio.wait_for(reader.read(), 5)
        stats = await asyncio.wait_for(task, 5)
        writer.close()
        return line, rest, stats

    line, rest, stats = asyncio.run(main())
    assert line == b"hello\n" and rest == b""
    assert stats.connections == 1 and stats.handshakes_ok == 1 and stats.handshakes_failed == 0
    assert events.wait("stopped").stats["handshakes_ok"] == 1


async def _until(predicate, step: float = 0.01):
    while not predicate():
        await asyncio.sleep(step)


# --- what is not a TLS handshake ------------------------------------------------------------------


def test_plain_http_gets_a_400_pointing_to_https(serve, events):
    srv = serve()
    reply = raw_exchange(srv.port, b"GET / HTTP/1.1\r\nHost: localhost:%d\r\n\r\n" % srv.port)
    assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"this port speaks TLS; use https://localhost:%d/" % srv.port in reply
    assert events.wait("handshake_failed").code == "plain_http"


def test_tls_client_gets_no_400(serve, certs):
    # Twin: the HTTP detector leaves real TLS alone.
    srv = serve()
    assert b"400" not in echo(srv.port, certs).reply


def test_tls11_only_hello_gets_a_protocol_version_alert(serve, events):
    srv = serve()
    reply = raw_exchange(srv.port, client_hello(0x0302))
    # A plaintext fatal alert record: type 21, two bytes, level 2, description 70.
    assert reply[:1] == b"\x15" and reply[5:7] == b"\x02\x46", reply.hex()
    failed = events.wait("handshake_failed")
    assert failed.code == "no_shared_version" and "TLS 1.1" in failed.reason and failed.alert_sent == 70


def test_tls12_client_is_accepted(serve, certs):
    # Twin: the oldest version we allow works.
    srv = serve()
    result = echo(srv.port, certs, max_tls="1.2")
    assert result.report.tls_version == "TLS 1.2" and result.report.cipher.startswith("ECDHE-")


def test_garbage_is_logged_as_not_tls(serve, events):
    srv = serve()
    raw_exchange(srv.port, b"SSH-2.0-OpenSSH_9.2\r\n")
    failed = events.wait("handshake_failed")
    assert failed.code == "not_tls" and "SSH" in failed.reason


def test_port_check_without_data_is_a_quiet_failure(serve, events):
    srv = serve()
    socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()
    assert events.wait("handshake_failed").code == "closed_early"


# --- timeouts and limits ----------------------------------------------------------------------------


def test_silent_client_is_closed_after_the_handshake_timeout_and_blocks_nobody(serve, certs, events):
    srv = serve(handshake_timeout=0.5)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=3) as silent:
        t0 = time.monotonic()
        assert echo(srv.port, certs).reply == b"ping\n"  # served while the silent one waits
        assert time.monotonic() - t0 < 1.0
        assert silent.recv(10) == b""
        assert 0.4 < time.monotonic() - t0 < 2.5
    assert events.wait("handshake_failed", where=lambda r: r.code == "handshake_timeout")


def test_handshake_timeout_does_not_touch_established_sessions(serve, certs):
    # Twin: a finished handshake outlives the handshake timeout.
    srv = serve(handshake_timeout=0.3)
    with tls_socket(srv.port, certs) as s:
        time.sleep(0.6)
        s.sendall(b"still here\n")
        assert s.recv(100) == b"still here\n"


def test_idle_session_is_closed_with_close_notify(serve, certs, events):
    srv = serve(idle_timeout=0.4)
    with tls_socket(srv.port, certs) as s:
        t0 = time.monotonic()
        assert s.recv(100) == b""  # close_notify: a clean end, not a reset
        assert 0.3 < time.monotonic() - t0 < 3
    assert events.wait("idle_timeout")


def test_connections_beyond_the_limit_are_refused_and_logged(serve, certs, events):
    srv = serve(max_connections=2)
    first, second = tls_socket(srv.port, certs), tls_socket(srv.port, certs)
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=3) as third:
            t0 = time.monotonic()
            assert third.recv(10) == b""
            assert time.monotonic() - t0 < 1.0
        refused = events.wait("refused")
        assert refused.max_connections == 2
        first.close()
        deadline = time.monotonic() + 3
        while srv.server.active >= 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        # Twin: with a slot free again, a new client is served.
        assert echo(srv.port, certs).reply == b"ping\n"
    finally:
        first.close()
        second.close()


@pytest.mark.slow
def test_echo_back_pressure_keeps_server_memory_bounded(serve, certs):
    srv = serve()
    flood = tls_socket(srv.port, certs, timeout=0.5)
    chunk = b"x" * 16384
    sent, t0 = 0, time.monotonic()
    try:
        # Send without ever reading until the kernel buffers are full (bounded in bytes and time).
        while sent < 64 * 1024 * 1024 and time.monotonic() - t0 < 5:
            try:
                flood.sendall(chunk)
            except TimeoutError:
                break
            sent += len(chunk)
        assert sent > 0
        held = srv.call(srv.server.buffered_bytes)
        assert held <= WRITE_HIGH + 2 * READ_BUFFER + 64 * 1024, held
        # Nobody else is starved by the flooding client.
        assert echo(srv.port, certs).reply == b"ping\n"
    finally:
        flood.close()
    deadline = time.monotonic() + 5
    while srv.server.active and time.monotonic() < deadline:
        time.sleep(0.02)
    assert srv.server.active == 0


# --- mTLS, SNI, ALPN ---------------------------------------------------------------------------------


def test_mtls_required_rejects_a_client_without_certificate(serve, certs, events):
    srv = serve(client_ca=certs.ca, mtls="required")
    with pytest.raises(TLSError) as info:
        client.connect("127.0.0.1", srv.port, ca=certs.ca, system_ca=False, servername="localhost", timeout=5)
    assert info.value.code == "client_cert_required" and info.value.alert == 116
    assert events.wait("handshake_failed").code == "client_sent_no_cert"


def test_mtls_required_accepts_a_client_certificate(serve, certs, events):
    srv = serve(client_ca=certs.ca, mtls="required")
    result = echo(srv.port, certs, servername="localhost", cert=certs.client_cert, key=certs.client_key)
    assert result.reply == b"ping\n"
    ok = events.wait("handshake_ok")
    assert ok.report.peer_subject == "CN=alice" and ok.report.verified is True
    assert ok.report.verify_mode == "mtls-required"


def test_mtls_rejects_a_certificate_from_another_ca(serve, certs, events):
    srv = serve(client_ca=certs.ca, mtls="required")
    with pytest.raises(TLSError) as info:
        echo(srv.port, certs, cert=certs.other_client_cert, key=certs.other_client_key)
    assert info.value.code == "client_cert_rejected"
    failed = events.wait("handshake_failed")
    assert failed.code == "client_cert_rejected" and "mallory" in failed.reason


def test_mtls_optional_serves_clients_without_certificate(serve, certs, events):
    srv = serve(client_ca=certs.ca, mtls="optional")
    assert echo(srv.port, certs).reply == b"ping\n"
    assert events.wait("handshake_ok").report.peer_subject is None


def test_sni_picks_the_certificate_and_is_recorded(serve, certs, events):
    srv = serve(sni={"elsewhere.test": (certs.elsewhere_cert, certs.elsewhere_key)})
    result = echo(srv.port, certs, servername="elsewhere.test")
    assert result.report.peer_chain[0]["subject"] == "CN=elsewhere.test"
    assert events.wait("handshake_ok").report.server_name == "elsewhere.test"
    # Twin: another name gets the default certificate.
    assert echo(srv.port, certs, servername="localhost").report.peer_chain[0]["subject"] == "CN=localhost"


def test_alpn_is_negotiated_and_reported_on_both_sides(serve, certs, events):
    srv = serve(alpn=["h2", "http/1.1"])
    assert echo(srv.port, certs, alpn=["http/1.1"]).report.alpn == "http/1.1"
    assert events.wait("handshake_ok").report.alpn == "http/1.1"
    assert echo(srv.port, certs, alpn=["spdy/1"]).report.alpn is None


# --- start-up and shutdown -----------------------------------------------------------------------------


def test_port_in_use_is_a_network_error_naming_the_port(serve):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(NetworkError) as info:
            serve(port=port)
    assert info.value.exit_code == 4
    assert f"port {port} is already in use" in info.value.message and "--port" in info.value.hint


@pytest.mark.skipif(os.geteuid() == 0, reason="root may bind privileged ports")
def test_privileged_port_is_a_network_error(serve):
    with pytest.raises(NetworkError) as info:
        serve(port=443)
    assert "443" in info.value.message and "privileged" in info.value.message


def test_unresolvable_host_is_a_network_error(serve):
    with pytest.raises(NetworkError):
        serve(host=".".join(["a" * 60] * 5))  # over 255 characters: fails before any DNS query


def test_warns_when_the_certificate_does_not_cover_the_host(serve, certs, events):
    serve(cert=certs.elsewhere_cert, key=certs.elsewhere_key, host="127.0.0.1")
    warning = events.wait("san_mismatch")
    assert warning.host == "127.0.0.1" and "DNS:elsewhere.test" in warning.sans


def test_no_san_warning_when_the_certificate_covers_the_host(serve, events):
    serve(host="127.0.0.1")
    events.wait("listening")
    assert not events.of("san_mismatch")


def test_close_ends_sessions_with_close_notify_and_logs_a_summary(serve, certs, events):
    srv = serve()
    s = tls_socket(srv.port, certs)
    s.sendall(b"x")
    assert s.recv(1) == b"x"
    srv.stop()
    assert s.recv(10) == b""  # close_notify from the server
    s.close()
    stopped = events.wait("stopped")
    assert stopped.stats["connections"] == 1 and stopped.stats["handshakes_ok"] == 1
    assert srv.final_stats.handshakes_failed == 0


def test_closed_event_counts_bytes_and_duration(serve, certs, events):
    srv = serve()
    echo(srv.port, certs)
    closed = events.wait("closed", where=lambda r: r.bytes_in > 0)
    assert closed.bytes_out > 0 and closed.seconds >= 0


def test_http_mode_answers_with_the_handshake(serve, certs):
    srv = serve(http=True)
    result = client.connect(
        "127.0.0.1", srv.port, ca=certs.ca, system_ca=False, servername="localhost",
        send=b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", quiet=1, timeout=5,
    )
    head, _, body = result.reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in head
    assert b"<code>TLSv1.3</code>" in body and b"<dt>Server name (SNI)</dt><dd><code>localhost</code>" in body


def test_client_close_notify_is_answered_at_once(serve, certs, events):
    srv = serve()
    s = tls_socket(srv.port, certs)
    s.sendall(b"bye")
    assert s.recv(3) == b"bye"
    t0 = time.monotonic()
    raw = s.unwrap()  # waits for the server's close_notify
    assert time.monotonic() - t0 < 1.0
    assert raw.recv(10) == b""
    raw.close()
    assert events.wait("closed", where=lambda r: r.bytes_in > 0).seconds < 2


def test_client_vanishing_without_close_notify_is_just_closed(serve, certs, events):
    # Twin: a bare TCP close after the handshake ends the session too, without an error event.
    srv = serve()
    s = tls_socket(srv.port, certs)
    s.sendall(b"x")
    assert s.recv(1) == b"x"
    s.close()
    events.wait("closed", where=lambda r: r.bytes_in > 0)
    assert not events.of("tls_error") and not events.of("handshake_failed")


def test_listen_backlog_is_at_least_512(certs):
    ctx = create_server_context(certs.cert, certs.key)
    assert Server(ctx, "127.0.0.1", 0).backlog >= 512
    assert Server(ctx, "127.0.0.1", 0, backlog=16).backlog == 512


def test_no_shared_cipher_is_logged(serve, certs, events):
    srv = serve()
    with pytest.raises(TLSError) as info:
        echo(srv.port, certs, max_tls="1.2", ciphers="AES128-SHA")
    assert info.value.alert == 40 and "--ciphers" in info.value.hint
    assert events.wait("handshake_failed").code == "no_shared_cipher"


# --- the accept paths and the timer wheel -------------------------------------------------------------
# asyncio's selector loops get the server's own accept path; any other loop (uvloop) gets
# loop.create_server. Both run the same protocol code; these tests run each behaviour on both.


@pytest.fixture(params=["own", "create_server"])
def accept_path(request, monkeypatch) -> str:
    if request.param == "create_server":
        # What a loop without asyncio's private transport factory (uvloop) gets.
        monkeypatch.setattr(server_module, "can_accept_directly", lambda loop: False)
    return request.param


def test_asyncio_selector_loops_can_accept_directly_and_other_loops_cannot():
    loop = asyncio.SelectorEventLoop()  # not new_event_loop(): under a uvloop policy that is uvloop
    try:
        assert can_accept_directly(loop)
    finally:
        loop.close()
    # Twin: a loop that is not asyncio's selector loop takes the public path.
    assert not can_accept_directly(asyncio.AbstractEventLoop())


def test_both_accept_paths_serve_an_echo(serve, certs, events, accept_path):
    srv = serve()
    assert srv.call(lambda: srv.server._own_accept) is (accept_path == "own")
    assert echo(srv.port, certs).reply == b"ping\n"
    ok = events.wait("handshake_ok")
    assert ok.report.tls_version == "TLS 1.3" and ok.report.server_name is None
    assert events.wait("closed", where=lambda r: r.bytes_in > 0).bytes_out > 0


def test_both_accept_paths_send_a_real_alert(serve, events, accept_path):
    srv = serve()
    reply = raw_exchange(srv.port, client_hello(0x0302))
    assert reply[:1] == b"\x15" and reply[5:7] == b"\x02\x46", reply.hex()
    assert events.wait("handshake_failed").alert_sent == 70


def test_both_accept_paths_time_out_a_silent_handshake_never_early(serve, certs, events, accept_path):
    srv = serve(handshake_timeout=0.4)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=3) as silent:
        t0 = time.monotonic()
        assert silent.recv(10) == b""
        took = time.monotonic() - t0
    # The wheel checks deadlines every TIMER_TICK: late by at most about a tick, never early.
    assert 0.4 - 0.05 < took < 0.4 + 3 * TIMER_TICK + 0.5
    assert events.wait("handshake_failed", where=lambda r: r.code == "handshake_timeout")
    # Twin: a session whose handshake finished outlives the handshake timeout.
    with tls_socket(srv.port, certs) as s:
        time.sleep(0.7)
        s.sendall(b"still here")
        assert s.recv(100) == b"still here"


def test_both_accept_paths_close_an_idle_session_before_the_longer_handshake_deadline(serve, certs, events, accept_path):
    # The handshake deadline (5 s) is checked later than the idle one (0.3 s): the earlier one must win.
    srv = serve(handshake_timeout=5, idle_timeout=0.3)
    with tls_socket(srv.port, certs) as s:
        t0 = time.monotonic()
        assert s.recv(100) == b""  # close_notify
        assert 0.25 < time.monotonic() - t0 < 2
    assert events.wait("idle_timeout")


def test_both_accept_paths_keep_an_active_session(serve, certs, events, accept_path):
    # Twin of the idle timeout: traffic moves the deadline; the wheel re-checks instead of closing.
    srv = serve(idle_timeout=0.4)
    with tls_socket(srv.port, certs) as s:
        for i in range(6):
            s.sendall(b"%d" % i)
            assert s.recv(10) == b"%d" % i
            time.sleep(0.15)
    assert not events.of("idle_timeout")


def test_both_accept_paths_refuse_beyond_the_limit(serve, certs, events, accept_path):
    srv = serve(max_connections=1)
    with tls_socket(srv.port, certs) as first:
        first.sendall(b"x")
        assert first.recv(1) == b"x"
        with socket.create_connection(("127.0.0.1", srv.port), timeout=3) as second:
            assert second.recv(10) == b""
        assert events.wait("refused").max_connections == 1


def test_both_accept_paths_stop_listening_on_close(serve, certs, events, accept_path):
    srv = serve()
    port = srv.port
    assert echo(port, certs).reply == b"ping\n"
    srv.stop()
    events.wait("stopped")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_the_timer_wheel_stops_ticking_when_no_connection_waits(serve, certs):
    srv = serve(handshake_timeout=0.2)
    socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()
    assert echo(srv.port, certs).reply == b"ping\n"
    deadline = time.monotonic() + 3
    while srv.call(lambda: srv.server._tick is not None or bool(srv.server._wheel)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.call(lambda: (srv.server._tick, srv.server._wheel)) == (None, {})


_LOW_FD_SERVER = textwrap.dedent(
    """
    import asyncio, logging, resource, sys
    from tlskit.contexts import create_server_context
    from tlskit.server import Server

    class Events(logging.Handler):
        def emit(self, record):
            print("EVENT", getattr(record, "event", "-"), flush=True)

    logging.getLogger("tlskit").addHandler(Events())
    logging.getLogger("tlskit").setLevel(logging.INFO)
    limit = int(sys.argv[3])
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    async def main():
        server = Server(create_server_context(sys.argv[1], sys.argv[2]), "127.0.0.1", 0, handshake_timeout=30)
        await server.start()
        print("PORT", server.port, server._own_accept, flush=True)
        await server.serve()

    asyncio.run(main())
    """
)


@pytest.mark.slow
def test_out_of_descriptors_pauses_accepting_says_so_and_recovers(certs, tmp_path):
    script = tmp_path / "low_fd_server.py"
    script.write_text(_LOW_FD_SERVER)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(certs.cert), str(certs.key), "48"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    held: list[socket.socket] = []
    try:
        line = proc.stdout.readline()
        while line.startswith("EVENT"):  # fd_limit: the server warns that 48 descriptors are few
            line = proc.stdout.readline()
        assert line.startswith("PORT"), line
        _, port, own = line.split()
        assert own == "True"
        for _ in range(60):  # more than the server has descriptors for; the kernel queues the rest
            held.append(socket.create_connection(("127.0.0.1", int(port)), timeout=3))
        seen = set()
        deadline = time.monotonic() + 10
        while "accept_paused" not in seen and time.monotonic() < deadline:
            seen.add(proc.stdout.readline().split()[-1])
        assert "accept_paused" in seen
        for s in held:
            s.close()
        held.clear()
        # Twin: once descriptors are free again, the server accepts and serves (within the retry delay).
        deadline = time.monotonic() + 10
        while True:
            try:
                assert echo(int(port), certs).reply == b"ping\n"
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        for s in held:
            s.close()
        proc.terminate()
        proc.wait(10)


def test_accepted_connections_do_not_wait_for_nagle(serve, certs, accept_path):
    srv = serve()
    with tls_socket(srv.port, certs) as s:
        s.sendall(b"x")
        assert s.recv(10) == b"x"

        def nodelay():
            return [c._transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                    for c in srv.server._conns]

        assert srv.call(nodelay) == [1]
