"""curl against the server's HTTP mode (an HTTP client makes no sense against an echo)."""

from __future__ import annotations

import pytest

from .peers import run

pytestmark = pytest.mark.interop


@pytest.fixture
def curl(require) -> str:
    return require("curl")


def test_curl_with_our_ca_gets_the_page(curl, serve, certs, events):
    srv = serve(host="localhost", http=True, alpn=["http/1.1"])
    out = run([curl, "-sS", "--max-time", "5", "--cacert", certs.ca, f"https://localhost:{srv.port}/"])
    assert out.returncode == 0, out.stdout
    assert b"TLS handshake OK" in out.stdout and b"ALPN: http/1.1" in out.stdout
    assert events.wait("handshake_ok").report.alpn == "http/1.1"


def test_curl_without_our_ca_refuses_and_our_log_says_why(curl, serve, certs, events):
    srv = serve(host="localhost", http=True)
    out = run([curl, "-sS", "--max-time", "5", "--cacert", certs.other_ca, f"https://localhost:{srv.port}/"])
    assert out.returncode == 60, out.stdout  # CURLE_PEER_FAILED_VERIFICATION
    assert events.wait("handshake_failed").code == "client_untrusted_ca"


def test_curl_plain_http_to_the_tls_port_is_told_to_use_https(curl, serve):
    srv = serve(host="localhost")
    out = run([curl, "-sS", "--max-time", "5", "-i", f"http://localhost:{srv.port}/"])
    assert out.stdout.startswith(b"HTTP/1.1 400 Bad Request")
    assert f"use https://localhost:{srv.port}/".encode() in out.stdout


def test_curl_with_a_client_certificate_under_mtls(curl, serve, certs):
    srv = serve(host="localhost", http=True, client_ca=certs.ca, mtls="required")
    url = f"https://localhost:{srv.port}/"
    ok = run([curl, "-sS", "--max-time", "5", "--cacert", certs.ca, "--cert", certs.client_cert, "--key", certs.client_key, url])
    assert ok.returncode == 0, ok.stdout
    assert b"client certificate: CN=alice" in ok.stdout
    # Twin: without one, curl fails (TLS 1.3 alert 116).
    refused = run([curl, "-sS", "--max-time", "5", "--cacert", certs.ca, url])
    assert refused.returncode != 0
    assert b"alert" in refused.stdout.lower()
