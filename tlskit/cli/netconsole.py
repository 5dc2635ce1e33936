"""Rendering for ``tlskit serve`` and ``tlskit connect``: the handshake report, the peer's
chain as a tree, and the server's events (rich on stderr, or JSON lines on stdout).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from tlskit.cli.console import UI, WARN_DAYS


def _date(iso: str) -> str:
    return dt.datetime.fromisoformat(iso).strftime("%Y-%m-%d")


def _validity(info: dict) -> Text:
    days = info["days_left"]
    status = info.get("status", "valid")
    span = f"{_date(info['not_before'])} → {_date(info['not_after'])}  "
    if status == "expired":
        return Text(span) + Text(f"EXPIRED {-days} days ago", style="bold red")
    if status == "not yet valid":
        return Text(span) + Text("NOT YET VALID", style="bold red")
    return Text(span) + Text(f"{days} days left", style="yellow" if days < WARN_DAYS else "green")


def chain_tree(chain: list[dict], *, verbose: int = 0, title: str = "peer certificate chain") -> Tree:
    """The chain from the leaf down to its issuer(s), one node each."""
    tree = Tree(Text(title, style="bold"))
    node = tree
    for i, info in enumerate(chain):
        role = "leaf" if i == 0 else ("CA" if info.get("is_ca") else "intermediate")
        label = Text(f"{info['subject']}", style="bold cyan" if i == 0 else "cyan") + Text(f"  ({role})", style="dim")
        node = node.add(label)
        if info.get("sans"):
            node.add(Text("names  ") + Text(", ".join(s.split(":", 1)[1] if s.startswith(("DNS:", "IP:")) else s for s in info["sans"])))
        node.add(Text("valid  ") + _validity(info))
        bits = f" ({info['key_bits']} bits)" if info.get("key_bits") else ""
        node.add(Text(f"key    {info['key_type']}{bits}"))
        if verbose:
            node.add(Text(f"issuer {info['issuer']}", style="dim"))
            node.add(Text(f"sha256 {info['sha256']}", style="dim"))
    return tree


def verification_line(report) -> Text:
    """The verification result in words."""
    leaf = report.peer_chain[0] if report.peer_chain else None
    name = report.server_name or "the host"
    if report.verify_mode == "insecure":
        if report.verified:
            return Text("! not verified (--insecure); the chain would have verified", style="bold yellow")
        return Text("✗ NOT verified (--insecure): it would have failed: ", style="bold red") + Text(report.verify_error or "?")
    if report.verified:
        issuer = report.peer_chain[-1]["subject"] if report.peer_chain else "a trusted CA"
        covered = f"{name!r} is among its names" if leaf else "the name matches"
        return Text("✓ verified: ", style="bold green") + Text(f"the chain ends at {issuer}, and {covered}")
    return Text("✗ not verified: ", style="bold red") + Text(report.verify_error or "unknown reason")


def report_table(report) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold cyan", no_wrap=True)
    t.add_column(overflow="fold")
    t.add_row("peer", report.peer or "?")
    t.add_row("protocol", report.tls_version or "?")
    bits = f" ({report.cipher_bits} bits)" if report.cipher_bits else ""
    t.add_row("cipher", f"{report.cipher}{bits}")
    t.add_row("key exchange", report.group or Text("not exposed by this Python's ssl module", style="dim"))
    t.add_row("server name", report.server_name or "-")
    t.add_row("ALPN", report.alpn or "-")
    t.add_row("resumed", "yes" if report.session_reused else "no")
    if report.handshake_ms is not None:
        t.add_row("handshake", f"{report.handshake_ms:.1f} ms")
    return t


def print_report(ui: UI, report, *, to_stderr: bool = False) -> None:
    """The handshake summary, the chain tree and the verification result."""
    console = ui.err if to_stderr else ui.out
    console.print(Text(f"TLS handshake with {report.peer}", style="bold"))
    console.print(report_table(report))
    if report.peer_chain:
        console.print(chain_tree(report.peer_chain, verbose=ui.verbose))
    console.print(verification_line(report))
    for w in report.warnings:
        ui.warn(w)


def print_failure(ui: UI, exc: BaseException) -> None:
    """What ``-v`` adds to a failed connect: the underlying error, and the chain the server sent."""
    cause = exc.__cause__
    if cause is not None:
        ui.err.print(Text("underlying error: ", style="dim") + Text(f"{type(cause).__name__}: {cause}", style="dim"))
    report = getattr(exc, "report", None)
    if report is not None and report.peer_chain:
        ui.err.print(chain_tree(report.peer_chain, verbose=ui.verbose, title="the server presented"))


def failure_json(exc, exit_code: int) -> dict:
    report = getattr(exc, "report", None)
    out: dict[str, Any] = report.to_dict() if report is not None else {}
    out.update(
        {
            "ok": False,
            "error": getattr(exc, "message", str(exc)),
            "hint": getattr(exc, "hint", None),
            "code": getattr(exc, "code", None),
            "alert": getattr(exc, "alert", None),
            "exit_code": exit_code,
        }
    )
    out.setdefault("verified", False)
    return out


def write_reply(data: bytes) -> None:
    """The peer's reply, byte for byte, on stdout."""
    out = getattr(sys.stdout, "buffer", None)
    if out is not None:
        out.write(data)
        out.flush()
    else:  # a text-only stream (tests)
        sys.stdout.write(data.decode("utf-8", "replace"))
        sys.stdout.flush()


# --- the server's events ---------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return value


_STANDARD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime"}


def record_to_dict(record: logging.LogRecord) -> dict:
    """A log record as one JSON-ready event: time, level, event, message and every ``extra`` field."""
    out = {
        "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "event": getattr(record, "event", None),
        "message": record.getMessage(),
    }
    for key, value in vars(record).items():
        if key not in _STANDARD and key not in out:
            out[key] = _jsonable(value)
    return out


class JSONLinesHandler(logging.Handler):
    """One JSON object per line on stdout (``--json-log``), for tools."""

    def __init__(self, stream=None) -> None:
        super().__init__()
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = self.stream or sys.stdout
            stream.write(json.dumps(record_to_dict(record), default=str) + "\n")
            stream.flush()
        except Exception:  # a logging handler never raises into the server
            self.handleError(record)


class EventHandler(RichHandler):
    """Rich one-line events on stderr; with ``-v`` a completed handshake also shows the peer's chain."""

    def __init__(self, console: Console, verbose: int = 0) -> None:
        super().__init__(console=console, markup=False, show_path=False, rich_tracebacks=False)
        self.verbose = verbose

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        if self.verbose and getattr(record, "event", None) == "handshake_ok":
            report = getattr(record, "report", None)
            if report is not None and report.peer_chain:
                self.console.print(chain_tree(report.peer_chain, verbose=self.verbose - 1, title="client certificate chain"))
        hint = getattr(record, "hint", None)
        if self.verbose and hint and getattr(record, "event", None) == "handshake_failed":
            self.console.print(Text(f"    hint: {hint}", style="dim"))


def install_log_handler(
    ui: UI, *, json_lines: bool = False, level: int | None = None, loggers: tuple[str, ...] = ("tlskit",)
) -> logging.Handler:
    """Route tlskit's log records to the terminal (or JSON lines); undo with :func:`remove_log_handler`.

    ``loggers`` limits what is shown: ``connect`` only wants the client side's
    warnings (key log, --insecure), never a server's events.
    """
    handler: logging.Handler = JSONLinesHandler() if json_lines else EventHandler(ui.err, ui.verbose)
    if level is None:
        level = logging.WARNING if ui.quiet else (logging.DEBUG if ui.verbose >= 2 else logging.INFO)
    handler.setLevel(level)
    saved = []
    for name in loggers:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.propagate))
        logger.addHandler(handler)
        if logger.level == logging.NOTSET or logger.level > level:
            logger.setLevel(level)
        logger.propagate = False  # no second copy through the root logger
    handler._tlskit_saved = saved  # type: ignore[attr-defined]
    return handler


def remove_log_handler(handler: logging.Handler) -> None:
    for logger, level, propagate in getattr(handler, "_tlskit_saved", []):
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
