"""tlskit itself as a child process, for the tests where a real browser or curl is the peer.

A :class:`TlskitHome` is a temporary HOME (and tlskit store) that every child gets
as its environment, so ``ca install --target nss`` writes ``HOME/.pki/nssdb`` where
Chromium, started with the same HOME, reads it. Servers are stopped by their PID.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .peers import Peer

_LISTENING = rb"HTTP mode: https://localhost:(\d+)/"


class _EnvPeer(Peer):
    """A :class:`Peer` with its own environment (stdin closed, stdout and stderr merged)."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.argv = [str(a) for a in argv]
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.output = b""


class TlskitHome:
    """A throw-away HOME with a tlskit store in ``HOME/tlskit`` and a clean environment."""

    def __init__(self, root: Path) -> None:
        self.home = root / "home"
        self.home.mkdir(parents=True)
        self.store = self.home / "tlskit"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TLSKIT_", "SSLKEYLOGFILE", "XDG_"))}
        env.update({"HOME": str(self.home), "TLSKIT_HOME": str(self.store), "NO_COLOR": "1", "COLUMNS": "200"})
        self.env = env

    @property
    def ca_cert(self) -> Path:
        return self.store / "ca" / "ca.crt"

    def tlskit(self, *args: str, timeout: float = 60.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``tlskit ARGS`` to completion; with ``check`` a non-zero exit fails with its stderr."""
        proc = subprocess.run([sys.executable, "-m", "tlskit", *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"tlskit {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def init_localhost(self) -> None:
        """``tlskit ca init`` and ``tlskit cert issue localhost 127.0.0.1 ::1``."""
        self.tlskit("ca", "init", "-q")
        self.tlskit("cert", "issue", "localhost", "127.0.0.1", "::1", "-q")

    @contextmanager
    def serve_http(self, *args: str, timeout: float = 15.0) -> Iterator[int]:
        """``tlskit serve --http --port 0``; yields the port read from its listening line."""
        peer = _EnvPeer([sys.executable, "-m", "tlskit", "serve", "--http", "--port", "0", *args], self.env)
        try:
            port = int(peer.wait_for(_LISTENING, timeout).group(1))
            yield port
        finally:
            if peer.proc.poll() is None:
                peer.proc.send_signal(signal.SIGTERM)  # this child, by its PID: a clean stop
            try:
                self.server_exit = peer.finish(10)
            finally:
                peer.stop()
                self.server_output = peer.text
