"""tlskit.transport.SocketTransport over real loopback TCP sockets, on asyncio's selector loop.

The protocol here only records what the transport calls; the transport and the sockets are
real. Each behaviour is the one asyncio's own socket transport has, which the server relies on.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from tlskit.transport import SocketTransport


class Recorder(asyncio.BufferedProtocol):
    def __init__(self) -> None:
        self.buf = bytearray(64 * 1024)
        self.view = memoryview(self.buf)
        self.calls: list[str] = []
        self.data = bytearray()
        self.lost = asyncio.get_running_loop().create_future()
        self.lost_exc: BaseException | None = None
        self.in_close = False
        self.on_data = None
        self.keep_open_on_eof = False
        self.transport: SocketTransport | None = None

    def connection_made(self, transport) -> None:
        self.calls.append("made")
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        self.data += self.view[:nbytes]
        if self.on_data is not None:
            self.on_data(self)

    def eof_received(self) -> bool:
        self.calls.append("eof")
        return self.keep_open_on_eof

    def pause_writing(self) -> None:
        self.calls.append("pause")

    def resume_writing(self) -> None:
        self.calls.append("resume")

    def connection_lost(self, exc) -> None:
        assert not self.in_close, "connection_lost called from inside close()/abort()"
        self.calls.append("lost")
        self.lost_exc = exc
        self.lost.set_result(exc)


async def _pair(**kw) -> tuple[SocketTransport, Recorder, socket.socket]:
    """A SocketTransport on the accepted end of a loopback connection, and the client's socket."""
    loop = asyncio.get_running_loop()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=5)
        conn, addr = listener.accept()
    conn.setblocking(False)
    proto = Recorder()
    transport = SocketTransport(loop, conn, proto, addr, **kw)
    return transport, proto, client


async def _recv_all(sock: socket.socket, n: int) -> bytes:
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    out = bytearray()
    while len(out) < n:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), 5)
        if not chunk:
            break
        out += chunk
    return bytes(out)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


async def until(condition, seconds: float = 2.0) -> None:
    """Let the loop run until ``condition()`` holds, for at most ``seconds``."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)


def test_connection_made_at_once_and_reads_reach_the_protocol():
    async def main():
        transport, proto, client = await _pair()
        assert proto.calls == ["made"]  # synchronously, inside the constructor
        assert transport.get_extra_info("peername") == client.getsockname()
        assert transport.get_extra_info("sockname") == client.getpeername()
        assert transport.get_extra_info("nothing", 7) == 7
        client.sendall(b"hello")
        await until(lambda: proto.data)
        assert bytes(proto.data) == b"hello"
        transport.close()
        assert await proto.lost is None
        client.close()

    run(main())


def test_peer_eof_calls_eof_received_then_closes_once():
    async def main():
        transport, proto, client = await _pair()
        client.shutdown(socket.SHUT_WR)
        assert await proto.lost is None
        assert proto.calls == ["made", "eof", "lost"]
        assert transport.is_closing()
        assert transport.get_extra_info("socket") is None  # closed and released
        client.close()

    run(main())


def test_a_protocol_that_keeps_eof_open_can_still_write():
    async def main():
        transport, proto, client = await _pair()
        proto.keep_open_on_eof = True
        client.shutdown(socket.SHUT_WR)
        await until(lambda: "eof" in proto.calls)
        assert proto.calls == ["made", "eof"]
        assert not transport.is_reading()
        transport.write(b"after eof")
        transport.close()
        assert await _recv_all(client, 9) == b"after eof"
        await proto.lost
        client.close()

    run(main())


def test_close_never_calls_connection_lost_from_inside():
    async def main():
        transport, proto, client = await _pair()
        proto.in_close = True
        transport.close()
        transport.close()  # twice is harmless
        proto.in_close = False
        assert "lost" not in proto.calls
        await proto.lost
        assert proto.calls.count("lost") == 1
        client.close()

    run(main())


def test_unsent_data_is_buffered_paused_resumed_and_sent_before_close():
    async def main():
        transport, proto, client = await _pair(high=64 * 1024, low=16 * 1024)
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        payload = bytes(range(256)) * 16 * 1024  # 4 MiB: far more than the socket buffers hold
        transport.write(payload)
        assert transport.get_write_buffer_size() > 0  # the kernel did not take it all
        assert proto.calls == ["made", "pause"]
        transport.close()
        assert "lost" not in proto.calls  # close waits for the buffer
        got = await _recv_all(client, len(payload))
        assert got == payload
        await proto.lost
        assert proto.calls == ["made", "pause", "resume", "lost"]
        assert transport.get_write_buffer_size() == 0
        client.close()

    run(main())


def test_abort_drops_unsent_data_and_closes_at_once():
    async def main():
        transport, proto, client = await _pair()
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        transport.write(b"x" * (4 << 20))
        assert transport.get_write_buffer_size() > 0
        proto.in_close = True
        transport.abort()
        proto.in_close = False
        assert transport.get_write_buffer_size() == 0
        assert await proto.lost is None
        got = await _recv_all(client, 4 << 20)
        assert len(got) < 4 << 20  # the rest was dropped
        client.close()

    run(main())


def test_a_reset_peer_reports_the_error_to_connection_lost():
    async def main():
        transport, proto, client = await _pair()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        client.close()  # linger 0: RST
        exc = await proto.lost
        assert isinstance(exc, ConnectionResetError)
        transport.write(b"ignored after the loss")  # no error, no effect

    run(main())


def test_pause_and_resume_reading():
    async def main():
        transport, proto, client = await _pair()
        transport.pause_reading()
        assert not transport.is_reading()
        client.sendall(b"waiting")
        await asyncio.sleep(0.1)
        assert proto.data == b""
        transport.resume_reading()
        await until(lambda: proto.data)
        assert bytes(proto.data) == b"waiting"
        transport.close()
        await proto.lost
        client.close()

    run(main())


def test_an_exception_in_the_protocol_is_reported_and_closes():
    async def main():
        transport, proto, client = await _pair()
        errors = []
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: errors.append(ctx))

        def boom(p):
            raise RuntimeError("protocol bug")

        proto.on_data = boom
        client.sendall(b"x")
        exc = await proto.lost
        assert isinstance(exc, RuntimeError)
        assert [type(e["exception"]) for e in errors] == [RuntimeError]
        assert "buffer_updated" in errors[0]["message"]
        client.close()

    run(main())


def test_write_buffer_limits_are_checked():
    async def main():
        transport, proto, client = await _pair(high=100, low=10)
        assert transport.get_write_buffer_limits() == (10, 100)
        transport.set_write_buffer_limits(1000)
        assert transport.get_write_buffer_limits() == (250, 1000)
        with pytest.raises(ValueError):
            transport.set_write_buffer_limits(10, 20)
        transport.close()
        await proto.lost
        client.close()

    run(main())
