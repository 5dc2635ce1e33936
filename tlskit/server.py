"""An asyncio TLS server on a small protocol layer of our own.

Each connection is an :class:`ssl.SSLObject` over two :class:`ssl.MemoryBIO`
driven by a plain :class:`asyncio.BufferedProtocol`, not ``asyncio.start_server(ssl=...)``:
asyncio's TLS transport closes without sending the alert when a handshake fails
(CPython gh-98078) and keeps 256 KiB of buffers per connection. Here a failed
handshake flushes the outgoing BIO, which holds OpenSSL's alert, before closing.

Per-connection state is a ``__slots__`` object and two memory BIOs: no task, no
timer handle (one coarse timer wheel checks every deadline, see ``Server._schedule``),
no per-connection read buffer (every connection reads into one shared buffer,
consumed before the next read), and a bounded write buffer (``pause_reading`` while
the peer does not read, so an echo never grows without bound). On asyncio's own
selector loops the server accepts on its listening sockets itself, without the task
and future that ``loop.create_server`` spends on each connection, into a lean transport
of its own (:class:`tlskit.transport.SocketTransport`); elsewhere (uvloop) it uses
``create_server`` and the loop's transports (see :func:`can_accept_directly`).

Events go to ``logging.getLogger(__name__)`` with their data in ``extra``: every
record has ``event`` (``listening``, ``accepted``, ``handshake_ok``,
``handshake_failed``, ``closed``, ``idle_timeout``, ``refused``, ``san_mismatch``,
``fd_limit``, ``accept_paused`` (out of descriptors), ``busy`` (with ``log_rate``), ``stopped``) plus the fields for that event;
``handshake_ok`` carries the :class:`~tlskit.report.HandshakeReport` as ``report``.

Anchors: uvicorn ``uvicorn/server.py`` (``Server.startup``), hypercorn
``asyncio/tcp_server.py``.
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import errno
import logging
import re
import socket
import ssl
from dataclasses import asdict, dataclass

from tlskit import diagnose, httpmode
from tlskit.contexts import requested_server_name
from tlskit.report import create_report, format_peer, peer_chain
from tlskit.transport import SocketTransport

log = logging.getLogger(__name__)

# At least 512: a burst of connects must not be dropped by the kernel. 1024 overflowed under a
# 2,000-connect burst (a dropped SYN costs the next client a 1 s retransmit, tests/test_hostile.py);
# the kernel caps it at net.core.somaxconn (4096 since Linux 5.4).
DEFAULT_BACKLOG = 4096
READ_BUFFER = 256 * 1024  # shared by every connection; each read is consumed at once (256 KiB: a third
# less CPU per echoed byte than 64 KiB, fewer trips through the loop; it costs memory once, not per connection)
WRITE_HIGH = 64 * 1024  # stop reading from a peer whose unsent echo exceeds this
WRITE_LOW = 16 * 1024
HTTP_HEAD_LIMIT = 16 * 1024
FD_RESERVE = 64  # descriptors beyond the connections: listening sockets, the log, the key log, stdio
TIMER_TICK = 0.1  # the timer wheel's resolution: timeouts fire up to this much late, never early
ACCEPT_RETRY = 1.0  # out of descriptors: stop accepting this long (asyncio's ACCEPT_RETRY_DELAY)
_HEAD_KEEP = 64  # first bytes kept during the handshake, to recognise non-TLS clients
_WILDCARD_HOSTS = ("", "0.0.0.0", "::", "*")
_HOST_HEADER = re.compile(rb"\r\nhost:[ \t]*([A-Za-z0-9.\-:\[\]]{1,255})[ \t]*\r\n", re.I)

_HANDSHAKE, _OPEN, _CLOSING, _CLOSED = range(4)


@dataclass
class ServerStats:
    """Counters since the server started."""

    connections: int = 0
    active: int = 0
    handshakes_ok: int = 0
    handshakes_failed: int = 0
    refused: int = 0
    bytes_in: int = 0
    bytes_out: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


class _Connection(asyncio.BufferedProtocol):
    __slots__ = (
        "_srv",
        "_transport",
        "_tls",
        "_in",
        "_out",
        "_state",
        "_due",
        "_peer",
        "_t0",
        "_last",
        "_rx",
        "_tx",
        "_head",
        "_http",
    )

    def __init__(self, server: Server) -> None:
        self._srv = server
        self._transport: asyncio.Transport | None = None
        self._tls: ssl.SSLObject | None = None
        self._in = self._out = None
        self._state = _HANDSHAKE
        self._due = 0  # the timer-wheel slot this connection is checked at, 0: none (see Server._schedule)
        self._peer = None
        self._t0 = self._last = 0.0
        self._rx = self._tx = 0
        self._head: bytes | None = None
        self._http: httpmode.HTTPSession | None = None  # only in HTTP mode, from the first request

    # -- asyncio callbacks ---------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        srv = self._srv
        self._transport = transport
        self._peer = transport.get_extra_info("peername")
        loop = srv._loop
        self._t0 = loop.time()
        if srv._closing or len(srv._conns) >= srv.max_connections:
            self._state = _CLOSED
            srv._refuse(self._peer)
            transport.close()
            return
        srv._conns.add(self)
        srv.stats.connections += 1
        if srv._set_write_limits:
            transport.set_write_buffer_limits(WRITE_HIGH, WRITE_LOW)
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._tls = srv.context.wrap_bio(self._in, self._out, server_side=True)
        srv._schedule(self, self._t0 + srv.handshake_timeout)
        if log.isEnabledFor(logging.INFO) and srv._line_allowed("accepted"):
            peer = format_peer(self._peer)
            log.info("accepted %s", peer, extra={"event": "accepted", "peer": peer})

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._srv._rview

    def buffer_updated(self, nbytes: int) -> None:
        srv = self._srv
        data = srv._rview[:nbytes]
        self._rx += nbytes
        state = self._state
        if state == _OPEN:
            self._last = srv._loop.time()
            self._in.write(data)
            self._pump()
        elif state == _HANDSHAKE:
            if self._head is None:
                self._head = bytes(data[:_HEAD_KEEP])
                if data[0] != 0x16 and diagnose.looks_like_http_request(data):
                    self._reply_plain_http(bytes(data[:HTTP_HEAD_LIMIT]))
                    return
            self._in.write(data)
            self._handshake()

    def eof_received(self) -> bool:
        if self._state == _HANDSHAKE:
            self._handshake_failed(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        srv = self._srv
        state = self._state
        if state == _CLOSED:
            return
        if state == _HANDSHAKE:
            self._handshake_failed(exc if isinstance(exc, OSError) else None, close=False)
        self._state = _CLOSED
        if self._due:
            srv._unschedule(self)
        srv._conns.discard(self)
        srv.stats.bytes_in += self._rx
        srv.stats.bytes_out += self._tx
        # Only sessions that got past the handshake log "closed" at INFO; a failure already said why.
        level = logging.INFO if self._head is None and self._rx > 0 and state != _HANDSHAKE else logging.DEBUG
        if log.isEnabledFor(level) and (level != logging.INFO or srv._line_allowed("closed")):
            peer = format_peer(self._peer)
            seconds = srv._loop.time() - self._t0
            log.log(
                level,
                "closed %s: %d bytes in, %d bytes out, %.1f s",
                peer,
                self._rx,
                self._tx,
                seconds,
                extra={"event": "closed", "peer": peer, "bytes_in": self._rx, "bytes_out": self._tx, "seconds": seconds},
            )
        self._tls = self._in = self._out = None
        if srv._closing and not srv._conns:
            srv._all_closed.set()

    def pause_writing(self) -> None:
        # The peer does not read its echo: stop reading from it until it does.
        self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._transport.resume_reading()

    # -- TLS -------------------------------------------------------------------------
    def _flush(self) -> bytes:
        data = self._out.read()
        if data:
            self._tx += len(data)
            self._transport.write(data)
        return data

    def _handshake(self) -> None:
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except ssl.SSLError as exc:
            self._handshake_failed(exc)
            return
        # No flush here: the session tickets go out with whatever _pump writes next (an echo,
        # or our close_notify): one send instead of two. A client that closes right after its
        # Finished got the tickets, reset the connection, and our close_notify then hit EPIPE
        # and asyncio's error path; now both leave in one segment.
        self._handshake_done()

    def _handshake_done(self) -> None:
        srv = self._srv
        self._state = _OPEN
        self._head = None
        srv.stats.handshakes_ok += 1
        now = self._last = srv._loop.time()
        # The handshake deadline's check stays when it comes first: it then waits for the idle one.
        srv._schedule(self, now + srv.idle_timeout)
        if log.isEnabledFor(logging.INFO) and srv._line_allowed("handshake_ok"):
            ms = (now - self._t0) * 1000.0
            report = create_report(self._tls, side="server", peer=self._peer, handshake_ms=ms)
            log.info(
                "handshake ok %s: %s %s%s%s%s %.1f ms",
                report.peer,
                report.tls_version,
                report.cipher,
                f" SNI {report.server_name}" if report.server_name else "",
                f" ALPN {report.alpn}" if report.alpn else "",
                f" client {report.peer_subject}" if report.peer_subject else "",
                ms,
                extra={"event": "handshake_ok", "peer": report.peer, "report": report},
            )
        # A TLS 1.3 client may send data in the same flight as its Finished.
        self._pump()

    def _handshake_failed(self, exc: BaseException | None, *, close: bool = True) -> None:
        if self._state != _HANDSHAKE:
            return
        srv = self._srv
        self._state = _CLOSING
        sent = b""
        if self._out is not None and close:
            sent = self._flush()  # the alert OpenSSL wrote: the whole point of this layer
        srv.stats.handshakes_failed += 1
        if self._due:
            srv._unschedule(self)
        level = srv._failure_level()
        if log.isEnabledFor(level):
            tls = self._tls
            ctx = tls.context if tls is not None else srv.context
            chain = peer_chain(tls) if isinstance(exc, ssl.SSLCertVerificationError) else []
            expl = diagnose.explain_server_failure(
                exc,
                raw=self._head or b"",
                bytes_in=self._rx,
                server_name=requested_server_name(tls) if tls is not None else None,
                certificate=getattr(ctx, "certificate", None),
                mtls=getattr(ctx, "mtls", "off"),
                chain=chain,
                min_tls=srv.min_tls,
            )
            alert_sent = diagnose.parse_plain_alert(sent) if sent else None
            peer = format_peer(self._peer)
            self._log_failure(expl, peer, exc, alert_sent, level)
        if close:
            self._transport.close()

    def _log_failure(
        self, expl: diagnose.Explanation, peer: str | None, exc: BaseException | None, alert_sent: int | None, level: int = logging.WARNING
    ) -> None:
        ms = (self._srv._loop.time() - self._t0) * 1000.0
        sent = f" (sent {diagnose.describe_alert(alert_sent)})" if alert_sent is not None else ""
        log.log(
            level,
            "handshake failed %s: %s%s",
            peer,
            expl.message,
            sent,
            extra={
                "event": "handshake_failed",
                "peer": peer,
                "code": expl.code,
                "reason": expl.message,
                "hint": expl.hint,
                "alert_received": expl.alert,
                "alert_sent": alert_sent,
                "detail": str(exc) if exc is not None else None,
                "ms": ms,
            },
        )

    def _deadline_passed(self, now: float) -> None:
        """The timer wheel's check: the handshake timeout, or the idle timeout once the session is up."""
        srv = self._srv
        state = self._state
        if state == _HANDSHAKE:
            deadline = self._t0 + srv.handshake_timeout
            if now < deadline:
                srv._schedule(self, deadline)
            else:
                self._handshake_timed_out()
        elif state == _OPEN:
            deadline = self._last + srv.idle_timeout
            if now < deadline:
                srv._schedule(self, deadline)
            else:
                self._idle_timed_out()

    def _handshake_timed_out(self) -> None:
        srv = self._srv
        self._state = _CLOSING
        srv.stats.handshakes_failed += 1
        t = srv.handshake_timeout
        if self._rx == 0:
            expl = diagnose.Explanation("handshake_timeout", f"the client sent nothing for {t:g} s (a silent or stalled client)")
        else:
            expl = diagnose.Explanation(
                "handshake_timeout", f"the handshake did not finish within {t:g} s (the client stalled after {self._rx} bytes)"
            )
        level = srv._failure_level()
        if log.isEnabledFor(level):
            self._log_failure(expl, format_peer(self._peer), None, None, level)
        self._transport.abort()

    def _reply_plain_http(self, head: bytes) -> None:
        srv = self._srv
        self._state = _CLOSING
        srv.stats.handshakes_failed += 1
        if self._due:
            srv._unschedule(self)
        m = _HOST_HEADER.search(head)
        host = m.group(1).decode("ascii") if m else srv.url_host
        body = f"this port speaks TLS; use https://{host}/ instead\n".encode()
        reply = (
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )
        self._tx += len(reply)
        self._transport.write(reply)
        level = srv._failure_level()
        if log.isEnabledFor(level):
            line = head.split(b"\r\n", 1)[0][:60].decode("ascii", "replace")
            expl = diagnose.Explanation(
                "plain_http", f"plain HTTP on a TLS port ({line!r}); answered 400 with a pointer to https://"
            )
            self._log_failure(expl, format_peer(self._peer), None, None, level)
        self._transport.close()

    def _pump(self) -> None:
        """Decrypt what arrived and answer it (echo, or the HTTP page)."""
        srv = self._srv
        tls = self._tls
        buf, view = srv._pbuf, srv._pview
        size = len(buf)
        while self._state == _OPEN:
            try:
                n = tls.read(size, buf)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self.shutdown()
                return
            except ssl.SSLError as exc:
                self._flush()
                reason = diagnose.reason_of(exc).lower().replace("_", " ") or str(exc)
                alert = diagnose.alert_of(exc)
                peer = format_peer(self._peer)
                log.info(
                    "connection error %s: %s",
                    peer,
                    diagnose.describe_alert(alert[0]) if alert else reason,
                    extra={"event": "tls_error", "peer": peer, "detail": str(exc), "alert_received": alert[0] if alert else None},
                )
                self._state = _CLOSING
                self._transport.close()
                return
            if not n:
                # read() returns 0 (rather than raising) once the client's close_notify
                # arrived: answer with ours and close.
                self.shutdown()
                return
            if srv.http:
                self._http_request(view[:n])
            else:
                tls.write(view[:n])
        if self._out is not None:
            self._flush()

    def _http_request(self, chunk: memoryview) -> None:
        session = self._http
        if session is None:
            session = self._http = httpmode.create_session(self._tls, self._peer)
        reply, close = session.receive(chunk)
        if reply:
            self._tls.write(reply)
        if close:
            self._http = None
            self.shutdown()

    def _idle_timed_out(self) -> None:
        srv = self._srv
        if log.isEnabledFor(logging.INFO):
            peer = format_peer(self._peer)
            log.info(
                "idle timeout %s: nothing for %g s",
                peer,
                srv.idle_timeout,
                extra={"event": "idle_timeout", "peer": peer, "seconds": srv.idle_timeout},
            )
        self.shutdown()

    def shutdown(self) -> None:
        """Send close_notify when the session is up, then close the socket."""
        if self._state == _CLOSED or self._transport is None:
            return
        if self._state == _OPEN and self._tls is not None:
            try:
                self._tls.unwrap()
            except (ssl.SSLError, ValueError):
                pass  # SSLWantReadError: ours is written, the peer's is not awaited
            self._flush()
        self._state = _CLOSING
        if self._due:
            self._srv._unschedule(self)
        self._transport.close()

    def abort(self) -> None:
        if self._transport is not None and self._state != _CLOSED:
            self._transport.abort()

    def buffered(self) -> int:
        """Bytes this connection holds in user space: unsent output and unprocessed input."""
        total = self._transport.get_write_buffer_size() if self._transport is not None else 0
        if self._in is not None:
            total += self._in.pending + self._out.pending
        if self._http is not None:
            total += self._http.buffered
        return total


class Server:
    """A TLS server: echo by default, or an HTTP/1.1 responder with ``http=True``.

    Example::

        ctx = contexts.create_server_context("cert.pem", "key.pem")
        async with Server(ctx, "localhost", 0) as server:
            print(server.port)
            await server.serve()      # until server.close()
    """

    def __init__(
        self,
        context: ssl.SSLContext,
        host: str | None = "localhost",
        port: int = 8443,
        *,
        handshake_timeout: float = 10.0,
        idle_timeout: float = 300.0,
        max_connections: int = 10000,
        backlog: int = DEFAULT_BACKLOG,
        http: bool = False,
        reuse_port: bool = False,
        shutdown_grace: float = 2.0,
        name: str | None = None,
        log_rate: int | None = None,
    ) -> None:
        """Configure the server; nothing is bound until :meth:`start`.

        Args:
            context: a server context from :func:`tlskit.contexts.create_server_context`.
            host: bind every address this resolves to (IPv4 and IPv6); ``""``/None: all interfaces.
            port: the port; 0 picks a free one (the same on every address), see :attr:`port`.
            handshake_timeout: close a connection whose handshake takes longer (seconds).
            idle_timeout: close an established connection idle this long (seconds).
            max_connections: refuse (close at once, and log) connections beyond this many.
            backlog: the listen backlog (at least 512).
            http: speak HTTP/1.1 (keep-alive): ``/`` is a page about the visitor's handshake,
                ``/json`` the same as JSON (see :mod:`tlskit.httpmode`).
            reuse_port: set SO_REUSEPORT (several processes sharing the port).
            shutdown_grace: how long :meth:`close` waits for connections to finish.
            name: the certificate's name for the log (a store name), if any.
            log_rate: at most this many per-connection INFO records (``accepted``,
                ``handshake_ok``, ``closed``) a second; beyond it they are counted and one
                ``busy`` record a second says how many were not logged. None: every one.
                Failures (WARNING) are never held back.
        """
        if handshake_timeout <= 0 or idle_timeout <= 0:
            raise ValueError("timeouts must be positive")
        self.context = context
        self.host = host
        self.requested_port = port
        self.handshake_timeout = float(handshake_timeout)
        self.idle_timeout = float(idle_timeout)
        self.max_connections = int(max_connections)
        self.backlog = max(512, int(backlog))
        self.http = http
        self.reuse_port = reuse_port
        self.shutdown_grace = shutdown_grace
        self.name = name
        self.stats = ServerStats()
        self.min_tls = {ssl.TLSVersion.TLSv1_3: "1.3"}.get(context.minimum_version, "1.2")
        self._servers: list[asyncio.AbstractServer] = []
        self._sockets: list[socket.socket] = []
        self._conns: set[_Connection] = set()
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._all_closed: asyncio.Event | None = None
        self._finisher: asyncio.Task | None = None
        self._rbuf = bytearray(READ_BUFFER)
        self._rview = memoryview(self._rbuf)
        self._pbuf = bytearray(READ_BUFFER)
        self._pview = memoryview(self._pbuf)
        self._refused_logged_at = -1e9
        self._refused_at_log = 0
        self._failures_since = -1e9
        self._failures_logged = 0
        self.log_rate = log_rate
        self._lines_since = -1e9  # start of the current one-second window
        self._lines = 0
        self._held_back: dict[str, int] = {}
        self._busy_timer: asyncio.TimerHandle | None = None
        self._own_accept = False  # accepting on our own listening sockets (see _accept), not loop.create_server
        self._set_write_limits = True  # False when our transports already start with WRITE_HIGH/WRITE_LOW
        self._wheel: dict[int, set[_Connection]] = {}  # slot (loop time // TIMER_TICK) -> connections to check
        self._wheel_done = 0  # every slot up to this one has been checked
        self._tick: asyncio.TimerHandle | None = None
        self._accept_retry: asyncio.TimerHandle | None = None

    # -- addresses ---------------------------------------------------------------------
    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Every bound ``(address, port)``."""
        return [s.getsockname()[:2] for s in self._sockets]

    @property
    def bound_ports(self) -> list[int]:
        return sorted({a[1] for a in self.addresses})

    @property
    def port(self) -> int:
        """The bound port (the same on every address)."""
        if not self._sockets:
            raise RuntimeError("the server is not started")
        return self.addresses[0][1]

    @property
    def url_host(self) -> str:
        host = self.host if self.host not in (None, *_WILDCARD_HOSTS) else "localhost"
        h = f"[{host}]" if ":" in host else host
        return f"{h}:{self.port}" if self._sockets else h

    @property
    def active(self) -> int:
        return len(self._conns)

    # -- life cycle -------------------------------------------------------------------------
    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Bind and listen on every address, then log ``listening``.

        Raises:
            NetworkError: the host does not resolve, the port is in use or privileged.
        """
        if self._sockets:
            return
        loop = self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self._all_closed = asyncio.Event()
        self._check_open_file_limit()
        socks = await self._bind()
        self._own_accept = can_accept_directly(loop)
        self._set_write_limits = not self._own_accept  # our SocketTransports start with WRITE_HIGH/WRITE_LOW
        try:
            for sock in socks:
                if self._own_accept:
                    sock.listen(self.backlog)
                    loop.add_reader(sock.fileno(), self._accept, sock)
                else:
                    self._servers.append(await loop.create_server(lambda: _Connection(self), sock=sock, backlog=self.backlog))
        except OSError as exc:
            self._stop_accepting(socks)
            for s in self._servers:
                s.close()
            for s in socks:
                s.close()
            raise diagnose.explain_listen_error(exc, host=self.host, port=self.requested_port) from exc
        self._sockets = socks
        self._log_listening()

    def _accept(self, sock: socket.socket) -> None:
        """Accept what the listening socket holds, each into a :class:`SocketTransport`.

        What ``loop.create_server`` does, without its task and future per connection
        (``_accept_connection2``: a task, a future and three more callbacks; about 40,000
        fewer instructions per handshake under callgrind) and with a leaner transport than
        asyncio's. Only on asyncio's selector loops (see :func:`can_accept_directly`);
        elsewhere start() uses create_server.
        """
        if self._closing:  # readable in the same loop iteration as close()
            return
        loop = self._loop
        transport = SocketTransport
        # sock._accept() and a plain int family: socket.accept() turns family and type into
        # enums for every connection (four enum calls, a few µs).
        accept = getattr(sock, "_accept", None)
        family = int(sock.family)
        for _ in range(self.backlog):
            try:
                if accept is not None:
                    fd, addr = accept()
                    conn = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, fileno=fd)
                else:
                    conn, addr = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._pause_accepting(sock, exc)
                    return
                raise  # the loop logs it and keeps calling us
            try:
                conn.setblocking(False)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                transport(loop, conn, _Connection(self), addr, high=WRITE_HIGH, low=WRITE_LOW)
            except BaseException:
                conn.close()
                raise

    def _pause_accepting(self, sock: socket.socket, exc: OSError) -> None:
        # The kernel keeps reporting the socket readable: stop listening to it for a while.
        self._loop.remove_reader(sock.fileno())
        log.warning(
            "cannot accept connections: %s (%d open); retrying in %g s",
            exc.strerror,
            len(self._conns),
            ACCEPT_RETRY,
            extra={"event": "accept_paused", "detail": exc.strerror, "errno": exc.errno, "active": len(self._conns)},
        )
        self._accept_retry = self._loop.call_later(ACCEPT_RETRY, self._resume_accepting, sock)

    def _resume_accepting(self, sock: socket.socket) -> None:
        self._accept_retry = None
        if not self._closing and sock.fileno() >= 0:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def _stop_accepting(self, socks: list[socket.socket]) -> None:
        if not self._own_accept:
            return
        if self._accept_retry is not None:
            self._accept_retry.cancel()
            self._accept_retry = None
        for s in socks:
            if s.fileno() >= 0:
                self._loop.remove_reader(s.fileno())

    # -- the timer wheel: one timer for every connection's timeout ----------------------------
    def _schedule(self, conn: _Connection, when: float) -> None:
        """Have ``conn._deadline_passed`` called at ``when`` (loop time), or up to TIMER_TICK later.

        A set of connections per TIMER_TICK slot instead of a TimerHandle each: no heap of
        thousands of cancelled handles, and a set add instead of call_later plus cancel.
        A connection is in at most one slot; an earlier one already set stays.
        """
        slot = int(when / TIMER_TICK) + 1  # the first slot that starts after ``when``
        old = conn._due
        if old:
            if old <= slot:
                return
            self._unschedule(conn)
        wheel = self._wheel
        bucket = wheel.get(slot)
        if bucket is None:
            wheel[slot] = {conn}
        else:
            bucket.add(conn)
        conn._due = slot
        if self._tick is None:
            self._wheel_done = int(self._loop.time() / TIMER_TICK)
            self._tick = self._loop.call_at((self._wheel_done + 1) * TIMER_TICK, self._on_tick)

    def _unschedule(self, conn: _Connection) -> None:
        bucket = self._wheel.get(conn._due)
        if bucket is not None:
            bucket.discard(conn)
            if not bucket:
                del self._wheel[conn._due]
        conn._due = 0

    def _on_tick(self) -> None:
        loop = self._loop
        now = loop.time()
        upto = int(now / TIMER_TICK)
        wheel = self._wheel
        for slot in range(self._wheel_done + 1, upto + 1):
            bucket = wheel.pop(slot, None)
            if bucket:
                for conn in bucket:
                    conn._due = 0
                    conn._deadline_passed(now)  # reschedules into a later slot when it is not due yet
        self._wheel_done = upto
        self._tick = loop.call_at((upto + 1) * TIMER_TICK, self._on_tick) if wheel else None

    async def reserve_port(self) -> list[socket.socket]:
        """Bind every address without listening, for a supervisor whose workers share the port.

        With ``reuse_port`` the workers bind the same port while these sockets hold it; no
        connection is ever queued on a socket that does not listen.

        Raises:
            NetworkError: as :meth:`start`.
        """
        return await self._bind()

    def _check_open_file_limit(self) -> None:
        """Raise ``ulimit -n`` to the hard limit; warn when that is still too low for max_connections."""
        soft, hard = raise_open_file_limit()
        needed = self.max_connections + FD_RESERVE
        if soft < needed:
            log.warning(
                "the open-file limit (ulimit -n) is %d, too low for %d connections: beyond about %d, "
                "accepting fails; raise the hard limit (e.g. ulimit -Hn %d as root, or LimitNOFILE=) "
                "or lower max_connections",
                soft,
                self.max_connections,
                max(0, soft - FD_RESERVE),
                needed,
                extra={"event": "fd_limit", "soft": soft, "hard": hard, "max_connections": self.max_connections},
            )

    async def _bind(self) -> list[socket.socket]:
        loop = asyncio.get_running_loop()
        host = None if self.host in (None, *_WILDCARD_HOSTS) else self.host
        try:
            infos = await loop.getaddrinfo(host, self.requested_port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except socket.gaierror as exc:
            raise diagnose.explain_listen_error(exc, host=self.host, port=self.requested_port) from exc
        if host is not None and (host.lower() == "localhost" or host.lower().endswith(".localhost")):
            # RFC 6761 §6.3: "localhost" is both loopbacks, whatever /etc/hosts says; curl and
            # browsers resolve it to ::1 and 127.0.0.1 themselves, so listen on both.
            infos = [
                *infos,
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", self.requested_port)),
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", self.requested_port, 0, 0)),
            ]
        seen, addrs = set(), []
        for family, _, _, _, sockaddr in sorted(infos, key=lambda i: i[0] != socket.AF_INET):
            key = (family, sockaddr[0])
            if key not in seen:
                seen.add(key)
                addrs.append((family, sockaddr))
        attempts = 20 if self.requested_port == 0 else 1
        for attempt in range(attempts):
            port, socks = self.requested_port, []
            try:
                for family, sockaddr in addrs:
                    sock = self._bind_one(family, sockaddr, port, skippable=len(addrs) > 1)
                    if sock is None:
                        continue
                    socks.append(sock)
                    if port == 0:
                        port = sock.getsockname()[1]
                if not socks:
                    raise OSError(errno.EADDRNOTAVAIL, "no usable address")
                return socks
            except OSError as exc:
                for s in socks:
                    s.close()
                if self.requested_port == 0 and exc.errno == errno.EADDRINUSE and attempt < attempts - 1:
                    continue  # the free IPv4 port is taken on IPv6: pick another
                raise diagnose.explain_listen_error(exc, host=self.host, port=port) from exc
        raise AssertionError("unreachable")

    def _bind_one(self, family: int, sockaddr: tuple, port: int, *, skippable: bool) -> socket.socket | None:
        try:
            # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
            # and a TLS record must not wait for Nagle (an HTTP reply, a small echo).
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        except OSError as exc:
            if skippable and family == socket.AF_INET6 and exc.errno in (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT):
                log.warning("IPv6 is not available; listening on IPv4 only", extra={"event": "no_ipv6"})
                return None
            raise
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self.reuse_port and hasattr(socket, "SO_REUSEPORT"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                # One socket per family, so "::" and "0.0.0.0" can both be bound.
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((sockaddr[0], port, *sockaddr[2:]))
            sock.setblocking(False)
            return sock
        except OSError as exc:
            sock.close()
            if skippable and family == socket.AF_INET6 and exc.errno == errno.EADDRNOTAVAIL:
                log.warning(
                    "cannot bind %s (IPv6 disabled?); listening on the other addresses",
                    sockaddr[0],
                    extra={"event": "no_ipv6", "address": sockaddr[0]},
                )
                return None
            raise

    def _log_listening(self) -> None:
        from tlskit import pki
        from tlskit.verify import host_matches

        ctx = self.context
        cert = getattr(ctx, "certificate", None)
        info = pki.describe_cert(cert) if cert is not None else None
        host = self.host
        if cert is not None and host not in (None, *_WILDCARD_HOSTS) and not host_matches(cert, host):
            covers = ", ".join(n.split(":", 1)[1] for n in info["sans"]) or "no names"
            log.warning(
                "the certificate does not cover %r (it covers: %s): clients connecting to %s will reject it",
                host,
                covers,
                f"https://{self.url_host}/",
                extra={"event": "san_mismatch", "host": host, "sans": info["sans"]},
            )
        for sni_name, sni_cert in getattr(ctx, "sni_certificates", {}).items():
            probe = "x" + sni_name[1:] if sni_name.startswith("*.") else sni_name
            if not host_matches(sni_cert, probe):
                log.warning(
                    "the certificate for SNI name %r does not cover it",
                    sni_name,
                    extra={"event": "san_mismatch", "host": sni_name, "sans": pki.sans_of(sni_cert)},
                )
        if info is not None and info["days_left"] < 30:
            log.warning(
                "the certificate expires in %d days (%s)",
                info["days_left"],
                info["not_after"],
                extra={"event": "expires_soon", "days_left": info["days_left"]},
            )
        addrs = [format_peer(a) for a in self.addresses]
        mtls = getattr(ctx, "mtls", "off")
        log.info(
            "listening on %s (certificate %s, expires %s, mTLS %s%s)",
            ", ".join(addrs),
            self.name or (info["subject"] if info else "?"),
            info["not_after"][:10] if info else "?",
            mtls,
            f", HTTP mode: https://{self.url_host}/" if self.http else "",
            extra={
                "event": "listening",
                "addresses": addrs,
                "port": self.port,
                "url": f"https://{self.url_host}/",
                "certificate_name": self.name,
                "certificate_path": str(getattr(ctx, "certificate_path", "") or "") or None,
                "certificate": info,
                "mtls": mtls,
                "client_ca": str(getattr(ctx, "client_ca_path", "") or "") or None,
                "alpn": list(getattr(ctx, "alpn", ())),
                "sni": sorted(getattr(ctx, "sni_certificates", {})),
                "mode": "http" if self.http else "echo",
                "loop": "uvloop" if type(self._loop).__module__.startswith("uvloop") else "asyncio",
                "keylog": str(getattr(ctx, "keylog_path", "") or "") or None,
            },
        )

    def _line_allowed(self, event: str) -> bool:
        """Whether a per-connection INFO record may be logged now (see ``log_rate``).

        Rendering a line costs more than a handshake (rich: about 1.5 ms), so a load test
        against a server with the default log would measure the log; above ``log_rate``
        lines a second the server counts instead, and says so once a second.
        """
        rate = self.log_rate
        if rate is None:
            return True
        now = self._loop.time()
        if now - self._lines_since >= 1.0:
            self._lines_since, self._lines = now, 0
        if self._lines < rate:
            self._lines += 1
            return True
        held = self._held_back
        held[event] = held.get(event, 0) + 1
        if self._busy_timer is None:
            self._busy_timer = self._loop.call_at(self._lines_since + 1.0, self._log_held_back)
        return False

    def _log_held_back(self) -> None:
        self._busy_timer = None
        held, self._held_back = self._held_back, {}
        if not held:
            return
        words = {"accepted": "accepted", "handshake_ok": "handshakes ok", "closed": "closed"}
        log.info(
            "busy: %s not logged in the last second (at most %d lines a second; -vv or --json-log log every one)",
            ", ".join(f"{n} {words.get(e, e)}" for e, n in held.items()),
            self.log_rate,
            extra={"event": "busy", "not_logged": held, "log_rate": self.log_rate, "active": len(self._conns)},
        )

    def _failure_level(self) -> int:
        """WARNING for a failed handshake, or DEBUG once ``log_rate`` of them were logged this second.

        A flood of port checks or broken hellos must not become a flood of console lines
        (2,000 connect/close left a legitimate client waiting 1.5-6 s behind the rendering,
        tests/test_hostile.py). The counters and the summary still count every one; with
        ``log_rate`` None every failure is a WARNING.
        """
        rate = self.log_rate
        if rate is None:
            return logging.WARNING
        now = self._loop.time()
        if now - self._failures_since >= 1.0:
            self._failures_since, self._failures_logged = now, 0
        self._failures_logged += 1
        if self._failures_logged == rate + 1 and log.isEnabledFor(logging.WARNING):
            log.warning(
                "more than %d failed handshakes a second: the rest of this second is logged at debug level",
                rate,
                extra={"event": "failures_throttled", "log_rate": rate},
            )
        return logging.WARNING if self._failures_logged <= rate else logging.DEBUG

    def _refuse(self, peer) -> None:
        self.stats.refused += 1
        now = self._loop.time()
        # One line a second at most: a flood must not turn into a flood of log lines.
        if now - self._refused_logged_at >= 1.0 and log.isEnabledFor(logging.WARNING):
            count = self.stats.refused - self._refused_at_log
            self._refused_logged_at, self._refused_at_log = now, self.stats.refused
            p = format_peer(peer)
            why = "shutting down" if self._closing else f"{len(self._conns)} connections open, the limit is {self.max_connections}"
            log.warning(
                "refused %s: %s%s",
                p,
                why,
                f" ({count} refused since the last report)" if count > 1 else "",
                extra={"event": "refused", "peer": p, "active": len(self._conns), "max_connections": self.max_connections, "refused": self.stats.refused},
            )

    async def serve(self) -> ServerStats:
        """Serve until :meth:`close` (or cancellation); start first if needed.

        Returns:
            The final :class:`ServerStats`.
        """
        await self.start()
        try:
            await self._stopped.wait()
        except asyncio.CancelledError:
            self.close()
            try:
                await asyncio.wait_for(asyncio.shield(self._stopped.wait()), self.shutdown_grace + 1)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                pass
            raise
        return self.stats

    def close(self) -> None:
        """Stop accepting, send close_notify on every connection, then finish; call it in the loop's thread.

        Idempotent. The ``stopped`` event (with the summary) is logged when the last
        connection is gone or ``shutdown_grace`` has passed.
        """
        if self._closing or self._loop is None:
            return
        self._closing = True
        self._stop_accepting(self._sockets)
        if self._own_accept:
            for s in self._sockets:
                s.close()
        for s in self._servers:
            s.close()
        for conn in list(self._conns):
            conn.shutdown()
        self._finisher = self._loop.create_task(self._finish())

    async def aclose(self) -> ServerStats:
        """:meth:`close` and wait until it is done."""
        if self._loop is None:
            return self.stats
        self.close()
        await self._stopped.wait()
        return self.stats

    async def _finish(self) -> None:
        if self._conns:
            try:
                await asyncio.wait_for(self._all_closed.wait(), self.shutdown_grace)
            except asyncio.TimeoutError:
                for conn in list(self._conns):
                    conn.abort()
                await asyncio.sleep(0)
        for s in self._servers:
            try:
                await asyncio.wait_for(s.wait_closed(), 1.0)
            except asyncio.TimeoutError:
                pass
        if self._busy_timer is not None:
            self._busy_timer.cancel()
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        self._log_held_back()
        self.stats.active = len(self._conns)
        st = self.stats
        log.info(
            "stopped: %d connections, %d handshakes ok, %d failed, %d refused",
            st.connections,
            st.handshakes_ok,
            st.handshakes_failed,
            st.refused,
            extra={"event": "stopped", "stats": st.to_dict()},
        )
        self._stopped.set()

    def buffered_bytes(self) -> int:
        """Bytes held in user space for every open connection (bounded by back-pressure)."""
        return sum(c.buffered() for c in self._conns)

    def snapshot(self) -> ServerStats:
        """The counters now, with ``active`` filled in."""
        self.stats.active = len(self._conns)
        return ServerStats(**self.stats.to_dict())


def raise_open_file_limit() -> tuple[int, int]:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit (one fd per connection).

    Returns:
        The ``(soft, hard)`` limits now in force; unchanged where there is no ``resource`` module.
    """
    try:
        import resource
    except ImportError:  # not a Unix
        return (1 << 30, 1 << 30)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass  # e.g. macOS caps the soft limit at OPEN_MAX: keep what we have
    return soft, hard


def can_accept_directly(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether :class:`Server` may accept on its own listening sockets in ``loop``.

    True for asyncio's own selector loops, on whose ``add_reader``/``add_writer`` our
    :class:`~tlskit.transport.SocketTransport` runs (no private asyncio API needed). uvloop
    (which has C transports of its own), the Windows proactor (no ``add_reader``) and other
    loops get ``loop.create_server``, with the same protocol code.
    """
    return isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop)


def is_wildcard_host(host: str | None) -> bool:
    """Whether ``host`` means "every interface"."""
    return host in (None, *_WILDCARD_HOSTS)


__all__ = ["DEFAULT_BACKLOG", "Server", "ServerStats", "can_accept_directly"]
