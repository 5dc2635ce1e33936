"""Options shared by several commands, written once.

Every option that maps to a config key has ``default=None`` so that only what the
user typed is layered over the config file and environment (the real defaults
live in :mod:`tlskit.config`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from tlskit.config import KEY_TYPES, TLS_VERSIONS

F = Callable


# --- options accepted both before and after the subcommand ------------------------


def _set_on_app(attr: str, *, count: bool = False):
    def callback(ctx: click.Context, param: click.Parameter, value):
        from tlskit.cli import App

        app = ctx.find_object(App)
        if app is None or value in (None, False, 0):
            return
        if attr == "home":
            import os

            value = os.path.abspath(os.path.expanduser(value))
        setattr(app, attr, getattr(app, attr) + value if count else value)

    return callback


def common_params() -> list[click.Option]:
    """``--home --config -q -v --no-color --debug`` for every command, so ``tlskit cert issue -q`` works."""
    return [
        click.Option(["--home"], metavar="DIR", expose_value=False, callback=_set_on_app("home_flag"),
                     help="Store directory (default: $TLSKIT_HOME, config 'home', the platform data dir)."),
        click.Option(["--config", "config_file"], metavar="FILE", expose_value=False, callback=_set_on_app("config_flag"),
                     help="Config file (default: $TLSKIT_CONFIG, ./tlskit.toml, the user config dir)."),
        click.Option(["-q", "--quiet"], is_flag=True, expose_value=False, callback=_set_on_app("quiet"),
                     help="Only print results and errors."),
        click.Option(["-v", "--verbose"], count=True, expose_value=False, callback=_set_on_app("verbose", count=True),
                     help="More detail (repeatable)."),
        click.Option(["--no-color"], is_flag=True, expose_value=False, callback=_set_on_app("no_color"),
                     help="No colours (also: NO_COLOR=1)."),
        click.Option(["--debug"], is_flag=True, expose_value=False, callback=_set_on_app("debug"),
                     help="Show tracebacks of errors."),
    ]


class TlskitCommand(click.Command):
    """A command that also takes the global options after its name."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.params.extend(common_params())


class TlskitSubGroup(click.Group):
    """A command group whose commands are :class:`TlskitCommand`."""

    command_class = TlskitCommand


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout, for scripts.")(f)


def force_option(f: F) -> F:
    return click.option(
        "--force", is_flag=True, help="Replace existing files (the old ones are kept in HOME/backups)."
    )(f)


def key_type_option(f: F) -> F:
    return click.option(
        "--key-type",
        type=click.Choice(KEY_TYPES),
        default=None,
        help="Key type [default: ecdsa-p256].",
    )(f)


def days_option(default_text: str) -> Callable[[F], F]:
    def deco(f: F) -> F:
        return click.option(
            "--days", type=click.IntRange(min=1), default=None, help=f"Validity in days [default: {default_text}]."
        )(f)

    return deco


def passphrase_file_option(help_text: str = "Read the CA passphrase from FILE (else $TLSKIT_CA_PASSPHRASE, else a prompt).") -> Callable[[F], F]:
    def deco(f: F) -> F:
        return click.option(
            "--passphrase-file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            default=None,
            help=help_text,
        )(f)

    return deco


def tls_version_options(f: F) -> F:
    f = click.option("--max-tls", type=click.Choice(TLS_VERSIONS), default=None, help="Highest TLS version.")(f)
    f = click.option("--min-tls", type=click.Choice(TLS_VERSIONS), default=None, help="Lowest TLS version [default: 1.2].")(f)
    return f


def alpn_option(f: F) -> F:
    return click.option(
        "--alpn", multiple=True, metavar="PROTO", help="ALPN protocol to offer (repeatable), e.g. --alpn h2 --alpn http/1.1."
    )(f)


def keylog_option(f: F) -> F:
    return click.option(
        "--keylog",
        metavar="FILE",
        default=None,
        help="Append TLS session keys to FILE for Wireshark (also: $SSLKEYLOGFILE). Exposes the traffic!",
    )(f)


def read_secret_file(path: Path | None) -> bytes | None:
    """The first line of a secret file, without its newline (how people write them)."""
    if path is None:
        return None
    data = path.read_bytes()
    return data.splitlines()[0] if data.strip() else b""
