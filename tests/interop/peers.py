"""Running real TLS peers (openssl, gnutls, curl) on loopback with bounded lifetimes.

Every process is started by :class:`Peer`, read with timeouts, and killed by its own
PID at the end of the ``with`` block.
"""

from __future__ import annotations

import os
import re
import select
import socket
import subprocess
import time
from collections.abc import Sequence


class Peer:
    """A child process with stdin as a pipe and stdout+stderr merged, read with deadlines."""

    def __init__(self, argv: Sequence[str], *, keep_stdin: bool = True) -> None:
        self.argv = [str(a) for a in argv]
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE if keep_stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.output = b""

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _pump(self, until: float) -> bool:
        """Read what is available until ``until``; False at EOF."""
        fd = self.proc.stdout.fileno()
        left = until - time.monotonic()
        if left <= 0:
            return True
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return True
        chunk = os.read(fd, 65536)
        if not chunk:
            return False
        self.output += chunk
        return True

    def wait_for(self, pattern: bytes, timeout: float = 5.0) -> re.Match:
        """Wait until ``pattern`` (a regex) appears in the output."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.output)
            if m:
                return m
            if time.monotonic() >= deadline:
                raise AssertionError(f"{pattern!r} not seen within {timeout} s from {self.argv[:2]}: {self.output[-2000:]!r}")
            if not self._pump(deadline):
                m = re.search(pattern, self.output)
                if m:
                    return m
                raise AssertionError(f"{self.argv[0]} exited without printing {pattern!r}: {self.output[-2000:]!r}")

    def send(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass

    def finish(self, timeout: float = 5.0) -> int:
        """Close stdin, collect the rest of the output, and return the exit status."""
        self.close_stdin()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._pump(deadline):
                break  # EOF on its output: it has exited
        try:
            return self.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired as exc:
            self.stop()
            raise AssertionError(f"{self.argv[0]} did not exit within {timeout} s: {self.output[-2000:]!r}") from exc

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # this child only, by its PID
            self.proc.wait(5)
        self.close_stdin()
        self.proc.stdout.close()

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", "replace")


def run(argv: Sequence[str], *, input: bytes = b"", timeout: float = 10.0) -> subprocess.CompletedProcess:
    """Run a command to completion with a timeout; stdout and stderr merged."""
    return subprocess.run([str(a) for a in argv], input=input, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)


def free_port() -> int:
    """A port that was free a moment ago, for peers that cannot pick one themselves (gnutls-serv)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, host: str = "127.0.0.1", timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() >= deadline:
                raise AssertionError(f"nothing listens on {host}:{port} after {timeout} s") from None
            time.sleep(0.05)
