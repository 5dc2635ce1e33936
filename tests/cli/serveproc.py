"""``python -m tlskit serve … --json-log`` as a child process, its events read with a deadline."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path


class ServeProcess:
    """One ``tlskit serve`` child; stopped by its PID (``stop``/``kill``), its JSON events in ``events``."""

    def __init__(self, home: Path, *args: str) -> None:
        env = {**os.environ, "TLSKIT_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "80"}
        env.pop("SSLKEYLOGFILE", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tlskit", "serve", "--json-log", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=home.parent,
        )
        self.events: list[dict] = []
        self._partial = b""

    def wait_event(self, name: str, timeout: float = 10.0, after: int = 0) -> dict:
        """The first ``name`` event from index ``after`` on, reading more output until ``timeout``."""
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while True:
            for e in self.events[after:]:
                if e["event"] == name:
                    return e
            left = deadline - time.monotonic()
            # Raw reads on the file descriptor: a buffered readline() could hide lines from select().
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise AssertionError(f"no {name!r} event within {timeout} s; got {[e['event'] for e in self.events]}")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"serve exited ({self.proc.poll()}): {self.proc.stderr.read().decode()}")
            self._partial += chunk
            *lines, self._partial = self._partial.split(b"\n")
            self.events.extend(json.loads(line) for line in lines if line.strip())

    def stop(self, sig: int, timeout: float = 10.0) -> int:
        self.proc.send_signal(sig)  # this child, by its PID
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc.stdout.close()
        self.proc.stderr.close()
