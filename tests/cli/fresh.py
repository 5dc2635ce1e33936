"""Run one tlskit command in a fresh interpreter and see what it imported (start-up tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

_CODE = """
import json, sys
from tlskit.cli import cli
code = 0
try:
    cli(sys.argv[1:], prog_name="tlskit")
except SystemExit as exc:
    code = exc.code or 0
print("\\nFRESH " + json.dumps({"exit": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


@dataclass
class Fresh:
    exit_code: int
    modules: set[str]
    stdout: str
    stderr: str

    def loaded(self, *roots: str) -> list[str]:
        """The loaded modules among ``roots`` (a top-level package, or a module's full name)."""
        return sorted({r for r in roots for m in self.modules if m == r or m.startswith(r + ".")})


def fresh_run(*args: str, env: dict | None = None) -> Fresh:
    done = subprocess.run([sys.executable, "-c", _CODE, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})
    head, sep, tail = done.stderr.rpartition("\nFRESH ")
    assert sep, done.stderr
    data = json.loads(tail)
    return Fresh(data["exit"], set(data["modules"]), done.stdout, head)
