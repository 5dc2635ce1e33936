"""A real browser: headless Chromium trusts our CA through the NSS database, and only then.

Chromium on Linux reads the CAs of ``$HOME/.pki/nssdb``; ``tlskit ca install --target
nss`` puts ours there. Every run gets the same temporary HOME as tlskit, its own
``--user-data-dir``, no ``--ignore-certificate-errors``, and a timeout. The negative
twin skips ``ca install`` and must see no page.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tlskit import httpmode

from .tlskit_proc import TlskitHome

pytestmark = [pytest.mark.interop, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CERTUTIL = shutil.which("certutil")
if CHROMIUM is None:
    pytestmark.append(pytest.mark.skip(reason="chromium is not installed (apt-get install chromium)"))
elif CERTUTIL is None:
    pytestmark.append(pytest.mark.skip(reason="certutil is not installed (apt-get install libnss3-tools)"))

BROWSER_TIMEOUT = 60.0


def chromium(home: TlskitHome, tmp: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """One headless page load; stdout is the DOM (with --dump-dom), stderr Chromium's log."""
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    argv = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        # Without these Chromium reaches for the internet and stalls (PEERS.md).
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", *extra, url,
    ]
    return subprocess.run(argv, env=home.env, capture_output=True, text=True, timeout=BROWSER_TIMEOUT)


@pytest.fixture
def home(tmp_path: Path) -> TlskitHome:
    h = TlskitHome(tmp_path)
    h.init_localhost()
    return h


def test_chromium_trusts_the_installed_ca_and_shows_the_page(home, tmp_path):
    installed = home.tlskit("ca", "install", "--target", "nss")
    assert installed.stdout.split()[:2] == ["nss", "installed"], installed.stdout
    shots = tmp_path / "shots"
    shots.mkdir()
    with home.serve_http() as port:
        url = f"https://localhost:{port}/"
        dom = chromium(home, tmp_path, url, "--dump-dom")
        shot = chromium(home, tmp_path, url, f"--screenshot={shots / 'page.png'}", "--window-size=1200,900")
    assert dom.returncode == 0, dom.stderr[-3000:]
    assert f"<title>{httpmode.TITLE}</title>" in dom.stdout, dom.stderr[-3000:]
    assert "<code>TLSv1.3</code>" in dom.stdout and "<h1>Your TLS connection</h1>" in dom.stdout
    assert "<dt>Server name (SNI)</dt><dd><code>localhost</code></dd>" in dom.stdout
    assert "<dt>ALPN</dt><dd><code>http/1.1</code></dd>" in dom.stdout  # serve --http advertises http/1.1
    assert "ERR_CERT" not in dom.stderr
    # The browser's own request headers are on the page (Chromium always sends these).
    assert "<th>User-Agent</th>" in dom.stdout and "HeadlessChrome" in dom.stdout
    assert shot.returncode == 0, shot.stderr[-3000:]
    png = (shots / "page.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000  # a real page, not a blank or an interstitial
    assert "handshake ok" in home.server_output and "SNI localhost ALPN http/1.1" in home.server_output
    assert home.server_exit == 0


def test_chromium_without_the_ca_installed_shows_no_page(home, tmp_path):
    # Negative twin: the same run, with no `tlskit ca install`: Chromium refuses the certificate.
    with home.serve_http() as port:
        dom = chromium(home, tmp_path, f"https://localhost:{port}/", "--dump-dom")
    assert httpmode.TITLE not in dom.stdout and "TLSv1.3" not in dom.stdout
    assert "ERR_CERT_AUTHORITY_INVALID" in dom.stderr, dom.stderr[-3000:]
    # Our server saw the refusal: Chromium sent an alert, and the log explains it.
    assert "handshake failed" in home.server_output, home.server_output[-3000:]


def test_chromium_after_ca_uninstall_shows_no_page_again(home, tmp_path):
    # Uninstall really removes trust: install, uninstall, then the same refusal as never installed.
    home.tlskit("ca", "install", "--target", "nss")
    removed = home.tlskit("ca", "uninstall", "--target", "nss")
    assert removed.stdout.split()[:2] == ["nss", "removed"], removed.stdout
    with home.serve_http() as port:
        dom = chromium(home, tmp_path, f"https://localhost:{port}/", "--dump-dom")
    assert httpmode.TITLE not in dom.stdout
    assert "ERR_CERT_AUTHORITY_INVALID" in dom.stderr, dom.stderr[-3000:]
