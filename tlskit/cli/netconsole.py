"""The server's events for ``tlskit serve``: rich one-liners on stderr, or JSON lines on stdout.

``tlskit connect`` prints without rich (:mod:`tlskit.cli.connectview`); a client's
chain under ``serve -v`` uses the same tree lines.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.text import Text

from tlskit.cli.connectview import attach_handler, chain_lines, detach_handler, log_level
from tlskit.cli.console import UI


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
                lines = chain_lines(report.peer_chain, verbose=self.verbose - 1, title="client certificate chain")
                self.console.print(Text.from_ansi("\n".join(lines)))
        hint = getattr(record, "hint", None)
        if self.verbose and hint and getattr(record, "event", None) == "handshake_failed":
            self.console.print(Text(f"    hint: {hint}", style="dim"))


def install_log_handler(
    ui: UI, *, json_lines: bool = False, level: int | None = None, loggers: tuple[str, ...] = ("tlskit",)
) -> logging.Handler:
    """Route tlskit's log records to the terminal (or JSON lines); undo with :func:`remove_log_handler`."""
    handler: logging.Handler = JSONLinesHandler() if json_lines else EventHandler(ui.err, ui.verbose)
    if level is None:
        level = log_level(quiet=ui.quiet, verbose=ui.verbose)
    return attach_handler(handler, level, loggers)


remove_log_handler = detach_handler
