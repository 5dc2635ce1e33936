"""The floor for a Python TLS server: ssl.SSLObject over two MemoryBIOs on a plain asyncio.Protocol.

No logging, no timeouts, no limits: what tlskit's server costs above this is its features.
With ``--processes 2`` (SO_REUSEPORT, as ``tlskit serve --workers 2``) it is the floor of
this design for ``--workers 2``.
usage: bare_echo.py CERT KEY PORT [--processes N]
"""

import asyncio
import ssl
import socket
import sys

import processes


class Echo(asyncio.Protocol):
    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.inc, self.out, server_side=True)
        self.up = False

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.inc.write(data)
        done = False
        try:
            if not self.up:
                self.tls.do_handshake()
                self.up = True
            while data := self.tls.read(65536):
                self.tls.write(data)
            done = True  # close_notify arrived
            self.tls.unwrap()
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLError, ValueError):
            done = True
        if self.out.pending:
            self.transport.write(self.out.read())
        if done:
            self.transport.close()


async def main(ctx: ssl.SSLContext, sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Echo(ctx), sock=sock, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    argv = sys.argv[1:]
    n = processes.count(argv)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(argv[0], argv[1])
    processes.fork(n)  # then each process binds a socket of its own
    listener = socket.create_server(("127.0.0.1", int(argv[2])), backlog=1024, reuse_port=n > 1)
    asyncio.run(main(context, listener))
