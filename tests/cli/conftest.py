"""CLI tests: click's CliRunner on the real command, a temporary home, a fixed environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tlskit.cli import cli


@dataclass
class Run:
    runner: CliRunner
    home: Path
    tmp: Path

    def __call__(self, *args: str, input: str | bytes | None = None, env: dict | None = None) -> Result:
        result = self.runner.invoke(cli, list(args), input=input, env=env or {}, catch_exceptions=False)
        # No traceback ever reaches a user, whatever the command did.
        assert "Traceback" not in result.output, result.output
        assert "Traceback" not in result.stderr, result.stderr
        return result


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    home = tmp_path / "home"
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # no stray ./tlskit.toml from the developer's checkout
    for var in ("TLSKIT_CONFIG", "TLSKIT_CA_PASSPHRASE", "SSLKEYLOGFILE"):
        monkeypatch.delenv(var, raising=False)
    for var in [v for v in __import__("os").environ if v.startswith("TLSKIT_")]:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("TLSKIT_HOME", str(home))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "80")
    return Run(CliRunner(), home, work)


@pytest.fixture
def served(run):
    """``served(*args)``: ``tlskit serve --json-log ARGS`` as a child with a localhost certificate; killed after."""
    from .serveproc import ServeProcess

    run("ca", "init", "-q")
    run("cert", "issue", "localhost", "127.0.0.1", "::1", "-q")
    procs: list[ServeProcess] = []

    def start(*args: str) -> ServeProcess:
        procs.append(ServeProcess(run.home, *args))
        return procs[-1]

    yield start
    for p in procs:
        p.kill()
