"""``tlskit config``: see the effective settings, write a starter file."""

from __future__ import annotations

from pathlib import Path

import click

from tlskit.cli import SUMMARIES, App
from tlskit.cli.options import TlskitSubGroup, force_option, json_option


@click.group(cls=TlskitSubGroup, short_help=SUMMARIES["config"])
def config() -> None:
    """Inspect and create configuration.

    Precedence: defaults < config file < TLSKIT_<SECTION>_<KEY> < flags.

    \b
    Example:
        tlskit config init
        tlskit config show
    """


@config.command("show")
@json_option
@click.pass_obj
def show(app: App, as_json: bool) -> None:
    """Print every setting, its effective value and where it came from.

    Sources: default, file:PATH:LINE, env:TLSKIT_…, flag:--….

    \b
    Example:
        tlskit config show
        TLSKIT_SERVE_PORT=9443 tlskit config show --json
    """
    from tlskit import config as cfg

    settings = app.settings
    rows = settings.rows()
    file = str(settings.config_file) if settings.config_file else None
    home = str(cfg.resolve_home(settings))
    if as_json:
        from tlskit.cli.console import print_json

        print_json({"config_file": file, "home": home, "settings": rows})
        return
    app.ui.config_rows(rows, file, settings.config_file_reason)
    app.ui.info(f"home: {home}")


@config.command("init")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path), default=Path("tlskit.toml"))
@force_option
@click.pass_obj
def init(app: App, path: Path, force: bool) -> None:
    """Write a commented starter config file (default: ./tlskit.toml).

    \b
    Example:
        tlskit config init
        tlskit config init ~/.config/tlskit/config.toml
    """
    from tlskit import config as cfg
    from tlskit.errors import ConfigError
    from tlskit.store import write_atomic

    if path.exists() and not force:
        raise ConfigError(f"{path} already exists", hint="pass --force to replace it")
    if not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, cfg.starter_config().encode(), 0o644)
    app.ui.success(f"wrote {path}")
