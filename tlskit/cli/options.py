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
