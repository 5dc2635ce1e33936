"""Every command has help with an example, appears in docs/, and --help/--version start fast."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from tlskit.cli import cli

from .fresh import fresh_run

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _walk(group: click.Group, ctx: click.Context, prefix: tuple[str, ...] = ()):
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if cmd is None:
            continue
        path = (*prefix, name)
        yield path, cmd
        if isinstance(cmd, click.Group):
            yield from _walk(cmd, ctx, path)


ALL = list(_walk(cli, click.Context(cli)))


def test_walk_finds_the_pki_commands():
    names = {" ".join(p) for p, _ in ALL}
    assert {"ca init", "ca show", "cert issue", "cert show", "cert verify", "cert list", "config show", "config init"} <= names


@pytest.mark.parametrize("path", [p for p, _ in ALL], ids=[" ".join(p) for p, _ in ALL])
def test_every_command_has_help_with_an_example_and_docs(run, path):
    result = run(*path, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.output
    assert "tlskit " + " ".join(path) in result.output  # the example uses the command itself
    docs = "\n".join(p.read_text() for p in DOCS.glob("*.md"))
    assert f"tlskit {' '.join(path)}" in docs, f"'tlskit {' '.join(path)}' is not documented in docs/"


def test_root_help_and_version(run):
    assert run("--help").exit_code == 0
    version = run("--version")
    assert version.exit_code == 0 and version.output.startswith("tlskit ")


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["cert", "--help"], ["cert", "issue", "--help"]])
def test_help_and_version_do_not_import_heavy_modules(args):
    done = fresh_run(*args)
    assert done.exit_code == 0 and done.loaded("cryptography", "rich", "asyncio", "ssl") == []


def test_root_help_lists_every_command_without_importing_them():
    done = fresh_run("--help")
    assert done.exit_code == 0 and sorted(m for m in done.modules if m.startswith("tlskit.cli.")) == []
    from tlskit.cli import SUMMARIES

    for name, summary in SUMMARIES.items():
        assert f"  {name:<8} {summary}" in done.stdout  # listed, whole (not cut with "...")


def test_each_command_s_short_help_is_its_summary():
    # The twin of the test above: the summaries are what the commands say of themselves.
    from tlskit.cli import SUMMARIES

    ctx = click.Context(cli)
    assert set(SUMMARIES) == set(cli.list_commands(ctx))
    for name, summary in SUMMARIES.items():
        assert cli.get_command(ctx, name).get_short_help_str(200) == summary
