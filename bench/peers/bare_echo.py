"""The floor for a Python TLS server: ssl.SSLObject over two MemoryBIOs on a plain asyncio.Protocol.

No logging, no timeouts, no limits: what tlskit's server costs above this is its features.
usage: bare_echo.py CERT KEY PORT
"""

import asyncio
import ssl
import sys


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


async def main(cert: str, key: str, port: int) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Echo(ctx), "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
