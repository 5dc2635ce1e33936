"""Rendering of ``tlskit ca install|uninstall|status``: one line per trust store on stdout."""

from __future__ import annotations

from collections import Counter

from rich.text import Text

from tlskit.cli.console import UI, print_json

STYLES = {
    "installed": "bold green",
    "already installed": "green",
    "removed": "bold green",
    "not installed": "dim",
    "trusted": "bold green",
    "not trusted": "yellow",
    "skipped": "dim",
    "failed": "bold red",
}
_WIDTH = max(len(k) for k in STYLES)
_INDENT = " " * (6 + 2 + _WIDTH + 2)


def trust_lines(report) -> list[Text]:
    """``target  outcome  store (label)`` and, indented below, the reason and the hint."""
    lines = []
    for r in report.results:
        line = Text(f"{r.target:<6}  ") + Text(f"{r.outcome:<{_WIDTH}}", style=STYLES.get(r.outcome, ""))
        if r.store:
            line += Text(f"  {r.store}")
        if r.label:
            line += Text(f" ({r.label})", style="dim")
        lines.append(line)
        if r.reason:
            lines.append(Text(_INDENT + r.reason, style="red" if r.failed else "dim"))
        if r.hint and not r.failed:  # a failure's hint ends the run, on the error line
            lines.append(Text(_INDENT + "hint: " + r.hint, style="dim"))
    return lines


def summary(report) -> str:
    counts = Counter(r.outcome for r in report.results)
    if report.action == "install":
        if counts["installed"]:
            return f"installed the CA into {counts['installed']} trust store(s); restart running browsers to pick it up"
        if counts["already installed"] and not counts["failed"]:
            return "nothing changed: the CA was already installed"
        return "nothing was installed"
    if report.action == "uninstall":
        if counts["removed"]:
            return f"removed the CA from {counts['removed']} trust store(s)"
        return "nothing changed: tlskit had not installed this CA anywhere"
    trusted = counts["trusted"]
    checked = trusted + counts["not trusted"]
    return f"trusted by {trusted} of {checked} trust store(s) checked"


def print_trust_report(ui: UI, report, *, as_json: bool = False) -> None:
    """The results on stdout (or one JSON object), a header and a summary on stderr."""
    if as_json:
        print_json(report.to_dict())
        return
    ui.info(f"CA {report.subject} as {report.name}")
    for line in trust_lines(report):
        ui.out.print(line, soft_wrap=True)  # paths on one line, never wrapped, so they can be copied
    ui.info(summary(report))
