"""The ``tlskit`` command: the root group, the one place errors become exit codes.

Start-up is kept near the interpreter's floor: this module imports only click;
subcommand modules are imported when named, and they import the core
(cryptography, rich, asyncio) inside the command functions.
"""

from __future__ import annotations

import importlib
import os
import sys
from functools import cached_property

import click

from tlskit import __version__
from tlskit.errors import EXIT_INTERNAL, TlskitError

# name -> "module:attribute"; imported on first use so --help and --version stay fast.
SUBCOMMANDS = {
    "ca": "tlskit.cli.ca:ca",
    "cert": "tlskit.cli.cert:cert",
    "config": "tlskit.cli.config_cmd:config",
    "serve": "tlskit.cli.serve:serve",
    "connect": "tlskit.cli.connect:connect",
}
# Their one-line help, for ``tlskit --help`` without importing them (each command also
# uses it as its ``short_help``, so the two cannot drift apart).
SUMMARIES = {
    "ca": "Create, inspect and install the local certificate authority.",
    "cert": "Issue, show, verify and list certificates.",
    "config": "Inspect and create configuration.",
    "serve": "Run a TLS test server that logs every handshake.",
    "connect": "Connect, show the handshake and the chain, explain failures.",
}


class App:
    """What every command needs, built lazily: settings, the store, the console."""

    def __init__(
        self,
        *,
        home: str | None = None,
        config: str | None = None,
        quiet: bool = False,
        verbose: int = 0,
        no_color: bool = False,
        debug: bool = False,
    ) -> None:
        self.home_flag = home
        self.config_flag = config
        self.quiet = quiet
        self.verbose = verbose
        self.no_color = no_color or bool(os.environ.get("NO_COLOR"))
        self.debug = debug

    @cached_property
    def settings(self):
        from tlskit import config

        settings = config.load_settings(self.config_flag)
        if self.home_flag:
            settings.apply_flags(config.TOP, {"home": self.home_flag})
        return settings

    @cached_property
    def store(self):
        from tlskit import config
        from tlskit.store import Store

        return Store(config.resolve_home(self.settings))

    @cached_property
    def plain(self):
        """Output without rich, for the commands whose start-up time matters."""
        from tlskit.cli.plain import Plain

        return Plain(quiet=self.quiet, no_color=self.no_color)

    @cached_property
    def ui(self):
        from tlskit.cli.console import UI

        return UI(quiet=self.quiet, verbose=self.verbose, no_color=self.no_color)


def _print_error(message: str) -> None:
    click.echo(message, err=True)


class TlskitGroup(click.Group):
    """A group that loads subcommands lazily and turns errors into one line and an exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(SUBCOMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:  # a command that is not built yet
                return None
            raise
        return getattr(mod, attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's own version imports every subcommand for its help line: 10+ ms of imports
        # for ``tlskit --help``. A command not imported yet is listed with its summary.
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.commands.get(name)
            if cmd is None and name in SUMMARIES:
                rows.append((name, SUMMARIES[name]))
                continue
            cmd = cmd or self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(formatter.width - 6 - len(name))))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except TlskitError as exc:
            app = ctx.obj if isinstance(ctx.obj, App) else None
            if app is not None and app.debug:
                _print_traceback(exc)
            _print_error(f"error: {exc}")
            ctx.exit(exc.exit_code)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            _print_error("interrupted")
            ctx.exit(130)
        except Exception as exc:  # a bug: say so in one line, the traceback only with --debug
            app = ctx.obj if isinstance(ctx.obj, App) else None
            if app is not None and app.debug:
                _print_traceback(exc)
            line = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
            _print_error(f"internal error: {line} (run with --debug for the traceback)")
            ctx.exit(EXIT_INTERNAL)


def _print_traceback(exc: BaseException) -> None:
    from rich.console import Console
    from rich.traceback import Traceback

    Console(stderr=True).print(
        Traceback.from_exception(type(exc), exc, exc.__traceback__, suppress=[click], show_locals=False)
    )


@click.group(cls=TlskitGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="tlskit", message="%(prog)s %(version)s")
@click.option("--home", metavar="DIR", help="Store directory (default: $TLSKIT_HOME, config 'home', ~/.local/share/tlskit).")
@click.option("--config", "config_file", metavar="FILE", help="Config file (default: $TLSKIT_CONFIG, ./tlskit.toml, ~/.config/tlskit/config.toml).")
@click.option("-q", "--quiet", is_flag=True, help="Only print results and errors.")
@click.option("-v", "--verbose", count=True, help="More detail (repeatable).")
@click.option("--no-color", is_flag=True, help="No colours (also: NO_COLOR=1).")
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
@click.pass_context
def cli(ctx: click.Context, home, config_file, quiet, verbose, no_color, debug) -> None:
    """tlskit: local TLS for developers.

    Create a local CA, issue certificates with the right names, run a TLS test
    server and a client that explains every failure.

    \b
    Example:
        tlskit ca init
        tlskit cert issue localhost 127.0.0.1 ::1
        tlskit serve            # in one terminal
        tlskit connect          # in another

    \b
    Exit codes: 0 ok, 1 internal error, 2 usage, 3 configuration,
    4 network, 5 TLS handshake or verification, 6 PKI.
    Shell completion: eval "$(_TLSKIT_COMPLETE=bash_source tlskit)" (zsh_source, fish_source).
    """
    if home:
        home = os.path.abspath(os.path.expanduser(home))
    ctx.obj = App(home=home, config=config_file, quiet=quiet, verbose=verbose, no_color=no_color, debug=debug)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="tlskit")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
