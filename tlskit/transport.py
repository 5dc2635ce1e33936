"""A lean asyncio transport for one accepted TCP socket, on ``loop.add_reader``/``add_writer``.

What :class:`tlskit.server.Server` uses on asyncio's own selector loops instead of asyncio's
``_SelectorSocketTransport``: the same contract for a :class:`asyncio.BufferedProtocol`
(``connection_made``, ``get_buffer``/``buffer_updated``, ``eof_received``,
``pause_writing``/``resume_writing``, and ``connection_lost`` called once, soon after
``close``/``abort`` or an error, never from inside them), with the work per connection cut
to what a TLS server needs:

- ``connection_made`` runs at once and the reader is registered at once (asyncio schedules
  both with ``call_soon``: two handles and a loop iteration per connection);
- no ``getsockname``/``getpeername`` system calls and no socket-enum conversions per
  connection (the caller passes the peer address ``accept`` returned);
- ``write`` sends at once and buffers only what the kernel did not take (one ``bytearray``),
  with the write limits given at construction; ``close`` waits for that buffer to drain;
- no extra-info dictionary, no flow-control mixin, no debug-mode paths.

It is written for ``BaseSelectorEventLoop``, whose ``add_reader`` and ``add_writer`` are
Python too; other loops (uvloop's C transports, the Windows proactor) keep their own
transports through ``loop.create_server``.

Anchor: CPython ``Lib/asyncio/selector_events.py`` (``_SelectorSocketTransport``), whose
behaviour on errors, EOF and close this follows.
"""

from __future__ import annotations

import asyncio
import socket

_WOULD_BLOCK = (BlockingIOError, InterruptedError)


class SocketTransport(asyncio.Transport):
    """An accepted, non-blocking TCP socket driving a buffered protocol.

    Example::

        conn, addr = listener.accept()
        conn.setblocking(False)
        SocketTransport(loop, conn, protocol, addr)   # calls protocol.connection_made(self)
    """

    __slots__ = (
        "_loop",
        "_sock",
        "_fd",
        "_protocol",
        "_peer",
        "_buffer",
        "_high",
        "_low",
        "_closing",
        "_conn_lost",
        "_reading",
        "_writing_paused",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol: asyncio.BufferedProtocol,
        peer,
        *,
        high: int = 64 * 1024,
        low: int = 16 * 1024,
    ) -> None:
        """Take ownership of ``sock`` (closed with the transport) and start reading."""
        # No super().__init__(): it would make an extra-info dict per connection (see get_extra_info).
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._protocol = protocol
        self._peer = peer
        self._buffer = bytearray()
        self._high = high
        self._low = low
        self._closing = False
        self._conn_lost = 0
        self._reading = False
        self._writing_paused = False
        protocol.connection_made(self)
        if not self._closing:
            loop.add_reader(self._fd, self._read_ready)
            self._reading = True

    # -- reading ----------------------------------------------------------------------
    def _read_ready(self) -> None:
        if self._conn_lost:
            return
        protocol = self._protocol
        try:
            n = self._sock.recv_into(protocol.get_buffer(-1))
        except _WOULD_BLOCK:
            return
        except OSError as exc:
            self._force_close(exc)
            return
        try:
            if n:
                protocol.buffer_updated(n)
            elif not protocol.eof_received():
                self.close()
            elif self._reading:  # half-closed: the protocol keeps writing
                self._loop.remove_reader(self._fd)
                self._reading = False
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "protocol.buffer_updated() or eof_received() failed")

    def is_reading(self) -> bool:
        return self._reading

    def pause_reading(self) -> None:
        if self._reading and not self._closing:
            self._loop.remove_reader(self._fd)
            self._reading = False

    def resume_reading(self) -> None:
        if not self._reading and not self._closing:
            self._loop.add_reader(self._fd, self._read_ready)
            self._reading = True

    # -- writing ----------------------------------------------------------------------
    def write(self, data) -> None:
        if self._conn_lost or not data:
            return
        buffer = self._buffer
        if not buffer:
            try:
                n = self._sock.send(data)
            except _WOULD_BLOCK:
                n = 0
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "socket.send() failed")
                return
            if n == len(data):
                return
            data = memoryview(data)[n:]
            self._loop.add_writer(self._fd, self._write_ready)
        buffer += data
        if not self._writing_paused and len(buffer) > self._high:
            self._writing_paused = True
            self._call_protocol("pause_writing")

    def _write_ready(self) -> None:
        if self._conn_lost:
            return
        buffer = self._buffer
        try:
            n = self._sock.send(buffer)
        except _WOULD_BLOCK:
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.remove_writer(self._fd)
            buffer.clear()
            self._fatal_error(exc, "socket.send() failed")
            return
        del buffer[:n]
        if self._writing_paused and len(buffer) <= self._low:
            self._writing_paused = False
            self._call_protocol("resume_writing")
        if not buffer:
            self._loop.remove_writer(self._fd)
            if self._closing:
                self._conn_lost += 1
                self._call_connection_lost(None)

    def can_write_eof(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low, self._high)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        high = 64 * 1024 if high is None else high
        low = high // 4 if low is None else low
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high, self._low = high, low

    # -- closing ----------------------------------------------------------------------
    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Stop reading; close once the unsent data is sent, then call ``connection_lost(None)``."""
        if self._closing:
            return
        self._closing = True
        if self._reading:
            self._loop.remove_reader(self._fd)
            self._reading = False
        if not self._buffer:
            self._conn_lost += 1
            self._loop.call_soon(self._call_connection_lost, None)

    def abort(self) -> None:
        """Close at once; unsent data is dropped."""
        self._force_close(None)

    def _fatal_error(self, exc: BaseException, message: str) -> None:
        if not isinstance(exc, OSError):  # a peer that resets or goes away is not a bug
            self._loop.call_exception_handler({"message": message, "exception": exc, "transport": self, "protocol": self._protocol})
        self._force_close(exc)

    def _force_close(self, exc: BaseException | None) -> None:
        if self._conn_lost:
            return
        if self._buffer:
            self._buffer.clear()
            self._loop.remove_writer(self._fd)
        if not self._closing:
            self._closing = True
            if self._reading:
                self._loop.remove_reader(self._fd)
                self._reading = False
        self._conn_lost += 1
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._sock.close()
            self._sock = self._protocol = None

    def _call_protocol(self, name: str) -> None:
        try:
            getattr(self._protocol, name)()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler(
                {"message": f"protocol.{name}() failed", "exception": exc, "transport": self, "protocol": self._protocol}
            )

    # -- the rest of the transport interface -------------------------------------------
    def get_extra_info(self, name: str, default=None):
        if name == "peername":
            return self._peer
        if name == "socket":
            return self._sock
        if name == "sockname" and self._sock is not None:
            try:
                return self._sock.getsockname()
            except OSError:
                return default
        return default

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def __repr__(self) -> str:
        state = "closed" if self._conn_lost else "closing" if self._closing else "open"
        return f"<SocketTransport fd={self._fd} {state} buffered={len(self._buffer)}>"


__all__ = ["SocketTransport"]
