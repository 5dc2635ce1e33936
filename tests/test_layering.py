"""The core is a library: click and rich are imported only under tlskit/cli/ (ast scan)."""

from __future__ import annotations

import ast
from pathlib import Path

import tlskit

PACKAGE = Path(tlskit.__file__).parent
UI_ONLY = {"click", "rich"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_core_modules_do_not_import_click_or_rich():
    core = [p for p in PACKAGE.rglob("*.py") if "cli" not in p.relative_to(PACKAGE).parts]
    assert len(core) >= 6
    offenders = {str(p.relative_to(PACKAGE)): sorted(_imports(p) & UI_ONLY) for p in core if _imports(p) & UI_ONLY}
    assert offenders == {}


def test_the_cli_does_import_them():
    # Proves the scan sees imports at all (the negative twin of the test above).
    assert "click" in _imports(PACKAGE / "cli" / "__init__.py")
    assert "rich" in _imports(PACKAGE / "cli" / "console.py")


def test_only_contexts_builds_ssl_contexts():
    """STYLE: nothing but contexts.py calls ssl.SSLContext(...) or sets verify_mode."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "contexts.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
                "SSLContext",
                "create_default_context",
            ):
                offenders.append(f"{path.name}:{node.lineno}")
            if isinstance(node, ast.Attribute) and node.attr == "verify_mode" and isinstance(node.ctx, ast.Store):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
