"""What ``tlskit connect`` prints, without rich: the handshake, the chain as a tree, the verdict.

``connect`` is a one-shot command that people run in loops and scripts, and rich
costs about 40 ms to import (more than the handshake), so this output is plain
text styled with click (colours only on a terminal, never with ``--no-color`` or
NO_COLOR). ``tlskit serve -v`` shows a client's chain with the same lines.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

WARN_DAYS = 30
LABEL_WIDTH = 12


class Out:
    """Styled lines on stdout or stderr; ``color=False`` strips every style."""

    def __init__(self, *, color: bool | None = None, quiet: bool = False, verbose: int = 0) -> None:
        self.color = None if color is None or color else False
        self.quiet = quiet
        self.verbose = verbose

    def line(self, text: str = "", *, err: bool = False) -> None:
        click.echo(text, err=err, color=self.color)

    def warn(self, message: str) -> None:
        self.line(click.style("warning: ", fg="yellow", bold=True) + message, err=True)


def _date(iso: str) -> str:
    return iso[:10]


def validity(info: dict) -> str:
    """``2026-12-01 → 2029-03-05  825 days left``, the tail in red, yellow or green."""
    days = info["days_left"]
    status = info.get("status", "valid")
    span = f"{_date(info['not_before'])} → {_date(info['not_after'])}  "
    if status == "expired":
        return span + click.style(f"EXPIRED {-days} days ago", fg="red", bold=True)
    if status == "not yet valid":
        return span + click.style("NOT YET VALID", fg="red", bold=True)
    return span + click.style(f"{days} days left", fg="yellow" if days < WARN_DAYS else "green")


def _short_name(san: str) -> str:
    return san.split(":", 1)[1] if san.startswith(("DNS:", "IP:")) else san


def chain_lines(chain: list[dict], *, verbose: int = 0, title: str = "peer certificate chain") -> list[str]:
    """The chain as a tree, leaf first; each certificate's issuer is the last child of its node.

    ::

        peer certificate chain
        └── CN=localhost  (leaf)
            ├── names  localhost, 127.0.0.1
            ├── valid  2026-12-01 → 2029-03-05  825 days left
            ├── key    ecdsa-p256 (256 bits)
            └── CN=tlskit CA …  (CA)
                ├── valid  …
                └── key    ecdsa-p256 (256 bits)
    """
    lines = [click.style(title, bold=True)]
    indent = ""
    for i, info in enumerate(chain):
        role = "leaf" if i == 0 else ("CA" if info.get("is_ca") else "intermediate")
        lines.append(f"{indent}└── " + click.style(info["subject"], fg="cyan", bold=i == 0)
                     + click.style(f"  ({role})", dim=True))
        indent += "    "
        details = []
        if info.get("sans"):
            details.append("names  " + ", ".join(_short_name(s) for s in info["sans"]))
        details.append("valid  " + validity(info))
        bits = f" ({info['key_bits']} bits)" if info.get("key_bits") else ""
        details.append(f"key    {info['key_type']}{bits}")
        if verbose:
            details.append(click.style(f"issuer {info['issuer']}", dim=True))
            details.append(click.style(f"sha256 {info['sha256']}", dim=True))
        last_detail = i == len(chain) - 1
        for j, text in enumerate(details):
            branch = "└── " if last_detail and j == len(details) - 1 else "├── "
            lines.append(indent + branch + text)
    return lines


def verification_line(report) -> str:
    """The verification result in words."""
    leaf = report.peer_chain[0] if report.peer_chain else None
    name = report.server_name or "the host"
    if report.verify_mode == "insecure":
        if report.verified:
            return click.style("! not verified (--insecure); the chain would have verified", fg="yellow", bold=True)
        return click.style("✗ NOT verified (--insecure): it would have failed: ", fg="red", bold=True) + (
            report.verify_error or "?"
        )
    if report.verified:
        issuer = report.peer_chain[-1]["subject"] if report.peer_chain else "a trusted CA"
        covered = f"{name!r} is among its names" if leaf else "the name matches"
        return click.style("✓ verified: ", fg="green", bold=True) + f"the chain ends at {issuer}, and {covered}"
    return click.style("✗ not verified: ", fg="red", bold=True) + (report.verify_error or "unknown reason")


def report_lines(report) -> list[str]:
    """The handshake facts, one ``label  value`` line each."""
    bits = f" ({report.cipher_bits} bits)" if report.cipher_bits else ""
    rows = [
        ("peer", report.peer or "?"),
        ("protocol", report.tls_version or "?"),
        ("cipher", f"{report.cipher}{bits}"),
        ("key exchange", report.group or click.style("not exposed by this Python's ssl module", dim=True)),
        ("server name", report.server_name or "-"),
        ("ALPN", report.alpn or "-"),
        ("resumed", "yes" if report.session_reused else "no"),
    ]
    if report.handshake_ms is not None:
        rows.append(("handshake", f"{report.handshake_ms:.1f} ms"))
    return [click.style(f"{label:<{LABEL_WIDTH}}", fg="cyan", bold=True) + "  " + value for label, value in rows]


def print_report(out: Out, report, *, to_stderr: bool = False) -> None:
    """The handshake summary, the chain tree and the verification result."""
    lines = [click.style(f"TLS handshake with {report.peer}", bold=True), *report_lines(report)]
    if report.peer_chain:
        lines += chain_lines(report.peer_chain, verbose=out.verbose)
    lines.append(verification_line(report))
    out.line("\n".join(lines), err=to_stderr)
    for w in report.warnings:
        out.warn(w)


def print_failure(out: Out, exc: BaseException) -> None:
    """What ``-v`` adds to a failed connect: the underlying error, and the chain the server sent."""
    cause = exc.__cause__
    if cause is not None:
        out.line(click.style(f"underlying error: {type(cause).__name__}: {cause}", dim=True), err=True)
    report = getattr(exc, "report", None)
    if report is not None and report.peer_chain:
        out.line("\n".join(chain_lines(report.peer_chain, verbose=out.verbose, title="the server presented")), err=True)


def failure_json(exc, exit_code: int) -> dict:
    """A failed connect as the same JSON object as a success, with ``ok: false`` and the reason."""
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
    stream = getattr(sys.stdout, "buffer", None)
    if stream is not None:
        stream.write(data)
        stream.flush()
    else:  # a text-only stream (tests)
        sys.stdout.write(data.decode("utf-8", "replace"))
        sys.stdout.flush()


class MessageHandler(logging.Handler):
    """The client side's log records (key log, --insecure) as ``warning: …`` lines on stderr."""

    def __init__(self, out: Out) -> None:
        super().__init__()
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.levelno >= logging.WARNING:
                self.out.warn(message)
            else:
                self.out.line(message, err=True)
        except Exception:  # a logging handler never raises into the command
            self.handleError(record)


def attach_handler(handler: logging.Handler, level: int, loggers: tuple[str, ...]) -> logging.Handler:
    """Route these loggers' records to ``handler`` only (no second copy through the root logger).

    Undo with :func:`detach_handler`, which restores each logger's level and propagation.
    """
    handler.setLevel(level)
    saved = []
    for name in loggers:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.propagate))
        logger.addHandler(handler)
        if logger.level == logging.NOTSET or logger.level > level:
            logger.setLevel(level)
        logger.propagate = False
    handler._tlskit_saved = saved  # type: ignore[attr-defined]
    return handler


def detach_handler(handler: logging.Handler) -> None:
    for logger, level, propagate in getattr(handler, "_tlskit_saved", []):
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def log_level(*, quiet: bool, verbose: int) -> int:
    """WARNING with -q, DEBUG with -vv, else INFO."""
    return logging.WARNING if quiet else (logging.DEBUG if verbose >= 2 else logging.INFO)
