"""``tlskit serve``: start-up errors through CliRunner, a real run as a child process with signals."""

from __future__ import annotations

import json
import signal
import socket

import pytest

from tlskit.client import connect


def test_missing_certificate_is_exit_6_with_the_fix(run):
    assert run("ca", "init", "-q").exit_code == 0
    result = run("serve", "--port", "0")
    assert result.exit_code == 6
    assert result.stderr == "error: no certificate for 'localhost'; run: tlskit cert issue localhost\n"


def test_port_in_use_is_exit_4_naming_the_port(run):
    run("ca", "init", "-q")
    run("cert", "issue", "localhost", "127.0.0.1", "-q")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", "--host", "127.0.0.1", "--port", str(port))
    assert result.exit_code == 4 and f"port {port} is already in use" in result.stderr


def test_mtls_without_any_ca_is_a_config_error(run, certs):
    result = run("serve", "--cert", str(certs.cert), "--key", str(certs.key), "--mtls", "--port", "0")
    assert result.exit_code == 3 and "--client-ca" in result.stderr


def test_host_without_a_covering_certificate_is_exit_6(run):
    # Twin of the port-in-use test, where certs/localhost covers 127.0.0.1 and serve gets as far as binding.
    run("ca", "init", "-q")
    run("cert", "issue", "localhost", "-q")  # no IP in it this time
    result = run("serve", "--host", "127.0.0.1", "--port", "0")
    assert result.exit_code == 6 and "no certificate for '127.0.0.1'" in result.stderr


def test_bad_sni_entry_is_a_usage_error(run):
    assert run("serve", "--sni", "no-equals-sign").exit_code == 2


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_runs_echoes_and_stops_cleanly_on_a_signal(served, run, sig):
    proc = served("--port", "0", "--host", "127.0.0.1")
    listening = proc.wait_event("listening")
    port = listening["port"]
    assert listening["certificate_name"] == "localhost" and listening["mtls"] == "off"
    result = connect("127.0.0.1", port, ca=run.home / "ca" / "ca.crt", system_ca=False, servername="localhost",
                     send=b"hi\n", quiet=0.2, timeout=5)
    assert result.reply == b"hi\n"
    ok = proc.wait_event("handshake_ok")
    assert ok["report"]["tls_version"] == "TLS 1.3" and ok["report"]["server_name"] == "localhost"
    assert proc.stop(sig) == 0
    stopped = proc.wait_event("stopped")
    assert stopped["stats"]["connections"] == 1 and stopped["stats"]["handshakes_ok"] == 1
    assert b"Traceback" not in proc.proc.stderr.read()


@pytest.mark.slow
def test_serve_warns_when_the_certificate_does_not_cover_the_host(served, run):
    run("cert", "issue", "elsewhere.test", "-q")
    proc = served("--port", "0", "--host", "127.0.0.1", "--cert", "elsewhere.test")
    warning = proc.wait_event("san_mismatch")
    assert warning["level"] == "warning" and warning["host"] == "127.0.0.1"
    proc.wait_event("listening")
    assert proc.stop(signal.SIGTERM) == 0


@pytest.mark.slow
def test_serve_http_prints_the_url_and_offers_http_1_1(served, run):
    proc = served("--port", "0", "--host", "localhost", "--http")
    listening = proc.wait_event("listening")
    port = listening["port"]
    assert listening["mode"] == "http" and listening["alpn"] == ["http/1.1"]
    assert f"HTTP mode: https://localhost:{port}/" in listening["message"]
    result = connect("localhost", port, ca=run.home / "ca" / "ca.crt", system_ca=False, alpn=["h2", "http/1.1"],
                     send=b"GET /json HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", quiet=2, timeout=5)
    assert result.report.alpn == "http/1.1"  # h2 is offered by the client but not by the HTTP mode
    assert json.loads(result.reply.partition(b"\r\n\r\n")[2])["request"]["path"] == "/json"
    assert proc.stop(signal.SIGTERM) == 0


@pytest.mark.slow
def test_serve_http_with_an_explicit_alpn_uses_it(served, run):
    # Twin of the test above: --alpn overrides the HTTP mode's default.
    proc = served("--port", "0", "--host", "localhost", "--http", "--alpn", "h2")
    assert proc.wait_event("listening")["alpn"] == ["h2"]
    assert proc.stop(signal.SIGTERM) == 0
