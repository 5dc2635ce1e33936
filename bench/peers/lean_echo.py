"""The floor for any Python TLS server on asyncio: OpenSSL on the socket itself, the loop as reactor.

No MemoryBIO and no asyncio transport or protocol: each accepted socket gets CPython's C-level
TLS object (``SSLContext._wrap_socket``, what ``wrap_socket`` builds under its Python
wrapper; OpenSSL reads and writes the descriptor and sends its own alerts), and
``loop.add_reader`` calls one function per readable event. No logging, no timeouts, no
limits, no HTTP: the least Python per handshake we know how to write (2.88 M instructions
per handshake under callgrind, against 2.80 M for nginx, 3.06 M for bare_echo.py and
2.97 M for tlskit serve). With ``--processes 2`` it is the floor for
``tlskit serve --workers 2``. It uses a private CPython method, which tlskit itself does not.
usage: lean_echo.py CERT KEY PORT [--processes N]
"""

import asyncio
import socket
import ssl
import sys

import processes


class Conn:
    __slots__ = ("raw", "tls", "up", "pending")

    def __init__(self, raw: socket.socket, tls) -> None:
        # The C object only holds a weak reference to its socket: keep the socket here.
        self.raw, self.tls, self.up, self.pending = raw, tls, False, b""


def main(cert: str, key: str, port: int, n: int) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    processes.fork(n)  # then each process binds a socket of its own
    listener = socket.create_server(("127.0.0.1", port), backlog=1024, reuse_port=n > 1)
    listener.setblocking(False)
    loop = asyncio.new_event_loop()
    size = 256 * 1024
    buf = bytearray(size)
    view = memoryview(buf)

    def close(c: Conn) -> None:
        loop.remove_reader(c.raw.fileno())
        if c.pending:
            loop.remove_writer(c.raw.fileno())
        c.raw.close()

    def send(c: Conn, data) -> bool:
        """Write ``data``; False (and a writer waiting) when the socket is full."""
        try:
            c.tls.write(data)
            return True
        except ssl.SSLWantWriteError:  # retried later with the same bytes, as OpenSSL requires
            c.pending = bytes(data)
            loop.remove_reader(c.raw.fileno())
            loop.add_writer(c.raw.fileno(), writable, c)
            return False

    def writable(c: Conn) -> None:
        data, c.pending = c.pending, b""
        loop.remove_writer(c.raw.fileno())
        loop.add_reader(c.raw.fileno(), readable, c)
        try:
            send(c, data)
        except (ssl.SSLError, OSError):
            close(c)

    def readable(c: Conn) -> None:
        tls = c.tls
        try:
            if not c.up:
                tls.do_handshake()
                c.up = True
            while True:
                k = tls.read(size, buf)
                if not k:  # close_notify
                    break
                if not send(c, view[:k]):
                    return
        except ssl.SSLWantReadError:
            return
        except (ssl.SSLError, OSError, ValueError):  # EOF without close_notify, a reset, a bad record
            pass
        close(c)

    def accept() -> None:
        for _ in range(64):
            try:
                raw, _ = listener.accept()
            except BlockingIOError:
                return
            raw.setblocking(False)
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            loop.add_reader(raw.fileno(), readable, Conn(raw, ctx._wrap_socket(raw, True)))

    loop.add_reader(listener.fileno(), accept)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    argv = sys.argv[1:]
    n = processes.count(argv)
    main(argv[0], argv[1], int(argv[2]), n)
