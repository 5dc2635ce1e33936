"""Rendering with rich: data on stdout, messages and logs on stderr.

Only this package imports rich. JSON output bypasses rich entirely so that
``tlskit … --json | jq`` always gets clean bytes.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from tlskit.cli.connectview import WARN_DAYS  # noqa: E402  (one threshold for every "expires soon")
from tlskit.cli.plain import print_json  # noqa: E402,F401  (one JSON writer for every command)


def _days_style(days: int, status: str = "valid") -> str:
    if status != "valid" or days < 0:
        return "bold red"
    if days < WARN_DAYS:
        return "yellow"
    return "green"


def _date(iso: str) -> str:
    return dt.datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M UTC")


class UI:
    """One object per run that knows the verbosity and colour choices."""

    def __init__(self, *, quiet: bool = False, verbose: int = 0, no_color: bool = False) -> None:
        self.quiet = quiet
        self.verbose = verbose
        kw: dict[str, Any] = {"no_color": True, "color_system": None} if no_color else {}
        self.out = Console(highlight=False, **kw)
        self.err = Console(stderr=True, highlight=False, **kw)

    # -- messages ---------------------------------------------------------------
    def info(self, message: str) -> None:
        if not self.quiet:
            self.err.print(Text(message))

    def success(self, message: str) -> None:
        if not self.quiet:
            self.err.print(Text("✓ ", style="green") + Text(message))

    def warn(self, message: str) -> None:
        self.err.print(Text("warning: ", style="bold yellow") + Text(message))

    def log_handler(self) -> logging.Handler:
        from rich.logging import RichHandler

        return RichHandler(console=self.err, markup=False, show_path=False, rich_tracebacks=False)

    # -- certificates ---------------------------------------------------------------
    def cert_table(self, info: dict, title: str | None = None) -> Table:
        t = Table.grid(padding=(0, 2))
        t.add_column(style="bold cyan", no_wrap=True)
        t.add_column(overflow="fold")
        if title:
            t.title = title
        t.add_row("subject", info["subject"])
        t.add_row("issuer", info["issuer"] + (" (self-signed)" if info.get("self_signed") else ""))
        if info.get("sans"):
            t.add_row("names", ", ".join(info["sans"]))
        days = info["days_left"]
        status = info.get("status", "valid")
        if status == "expired":
            left = Text(f"EXPIRED {-days} days ago", style="bold red")
        elif status == "not yet valid":
            left = Text("NOT YET VALID", style="bold red")
        else:
            left = Text(f"{days} days left", style=_days_style(days, status))
        t.add_row("valid", Text(f"{_date(info['not_before'])} → {_date(info['not_after'])}  ") + left)
        bits = f" ({info['key_bits']} bits)" if info.get("key_bits") else ""
        t.add_row("key", f"{info['key_type']}{bits}, signed with {info.get('signature_algorithm', '?')}")
        if info.get("is_ca"):
            t.add_row("CA", "yes")
        if info.get("eku") is not None:
            t.add_row("usage", ", ".join(info["eku"]) or "none")
        if info.get("permitted"):
            t.add_row("permits", ", ".join(info["permitted"]))
        if info.get("excluded"):
            t.add_row("excludes", ", ".join(e if e != "DNS:" else "DNS:(all)" for e in info["excluded"]))
        t.add_row("serial", info["serial"])
        t.add_row("sha256", info["sha256"])
        if self.verbose:
            t.add_row("sha1", info["sha1"])
        return t

    def print_paths(self, paths: dict[str, str]) -> None:
        """File paths on lines of their own, never wrapped, so they can be copied."""
        width = max((len(k) for k in paths), default=0)
        for label, path in paths.items():
            self.out.print(Text(f"{label:<{width}}  ", style="bold cyan") + Text(path), soft_wrap=True)

    def show_cert(self, infos: list[dict], source: str) -> None:
        for i, info in enumerate(infos):
            if len(infos) > 1:
                self.out.print(Text(f"[{i}] " + ("leaf" if i == 0 else "CA" if info["is_ca"] else "intermediate"), style="bold"))
            self.out.print(self.cert_table(info))
            if i < len(infos) - 1:
                self.out.print()
        for info in infos:
            if info["status"] == "expired":
                self.warn(f"{info['subject']} expired on {_date(info['not_after'])}")
            elif info["status"] == "valid" and info["days_left"] < WARN_DAYS:
                self.warn(f"{info['subject']} expires in {info['days_left']} days")

    def ca_created(self, info: dict, paths: dict[str, str], encrypted: bool, backup: str | None) -> None:
        self.out.print(Text("Created a local CA", style="bold green"))
        self.out.print(self.cert_table(info))
        self.print_paths(paths)
        if backup:
            self.info(f"the previous CA was kept in {backup}")
        if encrypted:
            self.info("the CA key is encrypted: commands that sign read $TLSKIT_CA_PASSPHRASE or ask for it")
        self.info("next: tlskit cert issue localhost 127.0.0.1 ::1")

    def issued(self, info: dict, paths: dict[str, str], backup: str | None) -> None:
        self.out.print(Text("Issued a certificate", style="bold green"))
        self.out.print(self.cert_table(info))
        self.print_paths(paths)
        if backup:
            self.info(f"the previous files were kept in {backup}")

    def cert_list(self, rows: list[dict], home: str) -> None:
        if not rows:
            self.info(f"no certificates in {home}; run: tlskit cert issue localhost")
            return
        t = Table(box=None, header_style="bold")
        for col in ("name", "names", "usage", "expires", "days left"):
            t.add_column(col)
        for r in rows:
            if r.get("error"):
                t.add_row(r["name"], Text(r["error"], style="red"), "", "", "")
                continue
            t.add_row(
                r["name"],
                ", ".join(s.split(":", 1)[1] for s in r["sans"]),
                ", ".join(r["eku"] or []),
                _date(r["not_after"]),
                Text(str(r["days_left"]), style=_days_style(r["days_left"], r["status"])),
            )
        self.out.print(t)

    def verify_result(self, result: dict) -> None:
        subject = result["subject"]
        target = f"for {result['host']}" if result["host"] else f"as a {result['purpose']}"
        if result["ok"]:
            self.out.print(Text("✓ ", style="bold green") + Text(f"{subject} verifies {target}"))
            if self.verbose:
                self.out.print(Text(f"  checked with {result['method']}", style="dim"))
            return
        tree = Tree(Text(f"✗ {subject} does not verify {target}", style="bold red"))
        for reason in result["reasons"]:
            tree.add(Text(reason))
        self.out.print(tree)

    def config_rows(self, rows: list[dict], file: str | None, reason: str) -> None:
        self.info(f"config file: {file or 'none'} ({reason})")
        t = Table(box=None, header_style="bold")
        t.add_column("key", style="cyan")
        t.add_column("value", overflow="fold")
        t.add_column("source", style="dim", overflow="fold")
        for r in rows:
            value = r["value"]
            shown = json.dumps(value) if not isinstance(value, str) else (value if value else '""')
            style = "" if r["source"] == "default" else "bold"
            t.add_row(r["key"], Text(shown, style=style), r["source"])
        self.out.print(t)
