"""The system trust store for real: curl trusts ``tlskit serve --http`` without --cacert only while the CA is installed.

This changes the machine, so it runs only with TLSKIT_TEST_SYSTEM_TRUST=1 (CI sets it when
it runs as root), and the CA is uninstalled in a ``finally`` whatever happens.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tlskit import trust

from .tlskit_proc import TlskitHome

pytestmark = [
    pytest.mark.interop,
    pytest.mark.system_trust,
    pytest.mark.skipif(os.environ.get("TLSKIT_TEST_SYSTEM_TRUST") != "1", reason="changes the system trust store: set TLSKIT_TEST_SYSTEM_TRUST=1"),
]


def curl_json(curl: str, port: int, env: dict) -> subprocess.CompletedProcess[str]:
    # No --cacert: curl uses the system bundle, which update-ca-certificates rebuilds.
    return subprocess.run([curl, "-sS", "--max-time", "10", f"https://localhost:{port}/json"], env=env,
                          capture_output=True, text=True, timeout=30)


def connect_system_only(port: int, env: dict, empty_home) -> subprocess.CompletedProcess[str]:
    # An empty home has no store CA: the system store is all that tlskit connect trusts.
    return subprocess.run([sys.executable, "-m", "tlskit", "connect", f"localhost:{port}", "--json"],
                          env={**env, "TLSKIT_HOME": str(empty_home)}, capture_output=True, text=True, timeout=60)


def test_curl_trusts_serve_http_after_ca_install_system_and_not_after_uninstall(tmp_path, require):
    curl = require("curl")
    store = trust.detect_system_store()
    if store is None or store.kind == "macos" or os.geteuid() != 0:
        pytest.skip("needs root and a Linux system trust store")
    home = TlskitHome(tmp_path)
    home.init_localhost()
    env = {k: v for k, v in home.env.items() if k not in ("CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")}
    with home.serve_http() as port:
        before = curl_json(curl, port, env)
        assert before.returncode == 60, before.stderr  # the negative twin: unknown CA (CURLE_PEER_FAILED_VERIFICATION)
        empty = tmp_path / "empty-home"
        assert connect_system_only(port, env, empty).returncode == 5
        try:
            installed = home.tlskit("ca", "install", "--target", "system")
            assert installed.stdout.split()[:2] == ["system", "installed"], installed.stdout
            trusted = curl_json(curl, port, env)
            assert trusted.returncode == 0, trusted.stderr
            doc = json.loads(trusted.stdout)
            assert doc["tls_version"] == "TLS 1.3" and doc["server_name"] == "localhost"
            assert doc["request"]["path"] == "/json" and "DNS:localhost" in doc["server_certificate"]["sans"]
            # tlskit connect finds it too, through the hashed directory update-ca-certificates keeps.
            mine = connect_system_only(port, env, empty)
            assert mine.returncode == 0, mine.stdout + mine.stderr
            assert json.loads(mine.stdout)["verified"] is True
        finally:
            removed = home.tlskit("ca", "uninstall", "--target", "system", check=False)
        assert removed.returncode == 0, removed.stderr
        assert removed.stdout.split()[:2] == ["system", "removed"], removed.stdout
        after = curl_json(curl, port, env)
        assert after.returncode == 60, after.stdout
        assert connect_system_only(port, env, empty).returncode == 5
