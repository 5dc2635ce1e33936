"""Real peers for the interop tests: each test skips, with the reason, when its binary is missing."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# pkilint's scripts live next to the interpreter of the virtualenv, which need not be on PATH.
_PYTHON_BIN = Path(sys.executable).parent

_INSTALL = {
    "openssl": "apt-get install openssl",
    "certtool": "apt-get install gnutls-bin",
    "keytool": "install a JDK, e.g. apt-get install openjdk-17-jdk-headless",
    "lint_pkix_cert": "pip install pkilint (in the test extra)",
    "lint_pkix_signer_signee_cert_chain": "pip install pkilint (in the test extra)",
}


def require(binary: str) -> str:
    """The path of ``binary`` on PATH (or beside this Python); skips the calling test when it is missing."""
    found = shutil.which(binary) or shutil.which(binary, path=str(_PYTHON_BIN))
    if found is None:
        how = _INSTALL.get(binary, "install it")
        pytest.skip(f"{binary} is not installed ({how})")
    return found


@pytest.fixture(scope="session", name="require")
def require_fixture() -> Callable[[str], str]:
    """``require("openssl")`` inside a test or fixture: the binary's path, or a skip with the reason."""
    return require
