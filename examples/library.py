"""tlskit as a library: a CA, a certificate, a TLS server and a client, with no CLI.

    python examples/library.py

Everything lives in a temporary directory and on loopback; the script exits by itself.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from pathlib import Path

from tlskit import client, contexts, pki
from tlskit.server import Server
from tlskit.store import Store


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        # 1. A CA limited to local names, and a server certificate, saved in a store.
        store = Store(Path(tmp) / "home")
        ca = pki.create_ca(name="example CA", permit=["localhost", "127.0.0.0/8", "::1"])
        store.save_ca(ca)
        paths, _ = store.save_cert(pki.issue_cert(ca, ["localhost", "127.0.0.1", "::1"]))

        # 2. A TLS echo server on a free port, in a thread with its own event loop.
        server_ctx = contexts.create_server_context(paths.chain, paths.key)
        ready = threading.Event()
        box: dict = {}

        async def run_server() -> None:
            async with Server(server_ctx, "127.0.0.1", 0, handshake_timeout=5) as server:
                box["server"], box["loop"] = server, asyncio.get_running_loop()
                ready.set()
                await server.serve()

        thread = threading.Thread(target=asyncio.run, args=(run_server(),), daemon=True)
        thread.start()
        if not ready.wait(10):
            raise SystemExit("the server did not start")
        port = box["server"].port

        # 3. A client that trusts only our CA, checks the name, and sends a line.
        result = client.connect(
            "127.0.0.1", port, ca=store.ca_cert_path, system_ca=False,
            servername="localhost", send=b"hello over TLS\n", timeout=5,
        )
        report = result.report.to_dict()
        print(f"{report['tls_version']} {report['cipher']} verified={report['verified']}")
        print(f"peer: {report['peer_chain'][0]['subject']} {report['peer_chain'][0]['sans']}")
        print(f"echo: {result.reply!r}")

        # 4. Stop the server from its own loop and wait for it.
        box["loop"].call_soon_threadsafe(box["server"].close)
        thread.join(10)


if __name__ == "__main__":
    main()
