"""The examples in examples/ run as documented."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_library_example_runs_server_and_client():
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "library.py")], capture_output=True, text=True, timeout=60, env={**os.environ}
    )
    assert done.returncode == 0, done.stderr
    assert "verified=True" in done.stdout
    assert "echo: b'hello over TLS\\n'" in done.stdout
