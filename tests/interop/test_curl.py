"""curl against the server's HTTP mode (an HTTP client makes no sense against an echo)."""

from __future__ import annotations

import json

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
    assert b"<title>tlskit \xc2\xb7 your TLS connection</title>" in out.stdout
    assert b"<dt>ALPN</dt><dd><code>http/1.1</code>" in out.stdout
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
    ok = run([curl, "-sS", "--max-time", "5", "--cacert", certs.ca, "--cert", certs.client_cert, "--key", certs.client_key, url + "json"])
    assert ok.returncode == 0, ok.stdout
    doc = json.loads(ok.stdout)
    assert doc["peer_chain"][0]["subject"] == "CN=alice" and doc["verify_mode"] == "mtls-required" and doc["verified"]
    # Twin: without one, curl fails (TLS 1.3 alert 116).
    refused = run([curl, "-sS", "--max-time", "5", "--cacert", certs.ca, url])
    assert refused.returncode != 0
    assert b"alert" in refused.stdout.lower()


def test_curl_gets_the_json_report_of_its_own_handshake(curl, serve, certs):
    srv = serve(host="localhost", http=True, alpn=["http/1.1"])
    out = run([curl, "-sS", "--max-time", "5", "--cacert", certs.ca, "-D", "-", f"https://localhost:{srv.port}/json"])
    assert out.returncode == 0, out.stdout
    head, _, body = out.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"\r\nContent-Type: application/json\r\n" in head
    doc = json.loads(body)
    assert doc["side"] == "server" and doc["tls_version"] == "TLS 1.3" and doc["server_name"] == "localhost"
    assert doc["alpn"] == "http/1.1" and doc["cipher_bits"] >= 128 and doc["peer_chain"] == []
    assert doc["request"]["method"] == "GET" and doc["request"]["path"] == "/json"
    assert ["Host", f"localhost:{srv.port}"] in doc["request"]["headers"]
    assert "DNS:localhost" in doc["server_certificate"]["sans"] and doc["server_certificate"]["days_left"] > 0


def test_curl_without_the_ca_gets_no_json(curl, serve):
    # Twin of the test above: curl's own trust store does not hold the test CA.
    srv = serve(host="localhost", http=True)
    out = run([curl, "-sS", "--max-time", "5", f"https://localhost:{srv.port}/json"])
    assert out.returncode == 60, out.stdout  # CURLE_PEER_FAILED_VERIFICATION
    assert b'"tls_version"' not in out.stdout


def test_curl_reuses_one_connection_for_two_urls(curl, serve, certs, events):
    srv = serve(host="localhost", http=True, alpn=["http/1.1"])
    base = f"https://localhost:{srv.port}"
    out = run([curl, "-sv", "--max-time", "5", "--cacert", certs.ca, f"{base}/", f"{base}/json", "-o", "/dev/null", "-o", "/dev/null"])
    assert out.returncode == 0, out.stdout
    assert b"Re-using existing connection" in out.stdout
    assert out.stdout.count(b"< HTTP/1.1 200 OK") == 2
    events.wait("closed", where=lambda r: r.bytes_in > 0)
    assert len(events.of("handshake_ok")) == 1  # one handshake, two responses


def test_curl_told_to_close_gets_a_new_connection_each_time(curl, serve, certs, events):
    # Twin of the keep-alive test: with "Connection: close" the server closes, and curl must reconnect.
    srv = serve(host="localhost", http=True, alpn=["http/1.1"])
    base = f"https://localhost:{srv.port}"
    out = run([curl, "-sv", "--max-time", "5", "--cacert", certs.ca, "-H", "Connection: close",
               f"{base}/", f"{base}/json", "-o", "/dev/null", "-o", "/dev/null"])
    assert out.returncode == 0, out.stdout
    assert b"Re-using existing connection" not in out.stdout
    assert out.stdout.count(b"< Connection: close") == 2
    events.wait("handshake_ok", where=lambda r: len(events.of("handshake_ok")) >= 2)


def test_curl_head_gets_the_length_and_no_body(curl, serve, certs):
    srv = serve(host="localhost", http=True)
    out = run([curl, "-sS", "--max-time", "5", "--cacert", certs.ca, "-I", f"https://localhost:{srv.port}/"])
    assert out.returncode == 0, out.stdout
    assert out.stdout.startswith(b"HTTP/1.1 200 OK") and b"content-length: " in out.stdout.lower()
    assert b"<html" not in out.stdout and b"content-security-policy: default-src 'none'" in out.stdout.lower()
