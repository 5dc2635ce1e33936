"""Output for the hot commands (``cert issue``, ``ca init``) without importing rich.

rich costs about 40 ms to import; these commands run in scripts and Makefiles many
times, so they print with click alone. The look follows :mod:`tlskit.cli.console`.
"""

from __future__ import annotations

import sys
from typing import Any

import click


def print_json(data: Any) -> None:
    """One JSON document on stdout (never through rich, so ``| jq`` always works)."""
    import json

    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


class Plain:
    """Messages on stderr, data on stdout; colours only on a terminal and without NO_COLOR."""

    def __init__(self, *, quiet: bool = False, no_color: bool = False) -> None:
        self.quiet = quiet
        self.no_color = no_color

    def _style(self, text: str, **kw: Any) -> str:
        return text if self.no_color else click.style(text, **kw)

    def info(self, message: str) -> None:
        if not self.quiet:
            click.echo(message, err=True)

    def warn(self, message: str) -> None:
        click.echo(self._style("warning: ", fg="yellow", bold=True) + message, err=True)

    def _facts(self, title: str, info: dict, paths: dict[str, str]) -> None:
        rows: list[tuple[str, str]] = [("subject", info["subject"] or "(empty; the names are in the SANs)")]
        if not info.get("self_signed"):
            rows.append(("issuer", info["issuer"]))
        if info.get("sans"):
            rows.append(("names", ", ".join(info["sans"])))
        rows.append(("expires", f"{info['not_after'][:10]} ({info['days_left']} days)"))
        bits = f" ({info['key_bits']} bits)" if info.get("key_bits") else ""
        rows.append(("key", f"{info['key_type']}{bits}"))
        if info.get("eku") is not None:
            rows.append(("usage", ", ".join(info["eku"]) or "none"))
        if info.get("permitted"):
            rows.append(("permits", ", ".join(info["permitted"])))
        rows.append(("sha256", info["sha256"]))
        rows += list(paths.items())
        width = max(len(label) for label, _ in rows)
        click.echo(self._style(title, fg="green", bold=True))
        for label, value in rows:
            click.echo(self._style(f"{label:<{width}}", fg="cyan", bold=True) + "  " + value)

    def issued(self, info: dict, paths: dict[str, str], backup: str | None) -> None:
        self._facts("Issued a certificate", info, paths)
        if backup:
            self.info(f"the previous files were kept in {backup}")

    def ca_created(self, info: dict, paths: dict[str, str], encrypted: bool, backup: str | None) -> None:
        self._facts("Created a local CA", info, paths)
        if backup:
            self.info(f"the previous CA was kept in {backup}")
        if encrypted:
            self.info("the CA key is encrypted: commands that sign read $TLSKIT_CA_PASSPHRASE or ask for it")
        self.info("next: tlskit cert issue localhost 127.0.0.1 ::1")
