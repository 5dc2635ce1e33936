"""OpenSSL as the peer: s_client against ``tlskit`` serve's core, our client against s_server."""

from __future__ import annotations

import pytest

from tlskit.client import connect
from tlskit.errors import TLSError, VerificationError

from ..test_server import needs_ipv6
from .peers import Peer

pytestmark = pytest.mark.interop


@pytest.fixture
def openssl(require) -> str:
    return require("openssl")


def s_client(openssl, port, ca, *, host="127.0.0.1", name="localhost", extra=()):
    return Peer(
        [openssl, "s_client", "-connect", f"{host}:{port}" if ":" not in host else f"[{host}]:{port}",
         "-servername", name, "-CAfile", ca, "-verify_return_error", "-verify_hostname", name, "-brief", *extra]
    )


def s_server(openssl, cert, key, *extra) -> tuple[Peer, int]:
    peer = Peer([openssl, "s_server", "-accept", "127.0.0.1:0", "-cert", cert, "-key", key, *extra])
    m = peer.wait_for(rb"ACCEPT (?:127\.0\.0\.1|\[?[0-9a-f:.]+\]?):(\d+)")
    return peer, int(m.group(1))


# --- s_client against our server ----------------------------------------------------------------------


def test_s_client_verifies_our_server_and_gets_the_echo(openssl, serve, certs, events):
    srv = serve()
    with s_client(openssl, srv.port, certs.ca) as peer:
        peer.wait_for(rb"Verification: OK")
        peer.send(b"hello from openssl\n")
        peer.wait_for(rb"hello from openssl\n.*hello from openssl\n|\nhello from openssl\n", timeout=5)
        assert peer.finish() == 0
    assert events.wait("handshake_ok").report.server_name == "localhost"


def test_s_client_refuses_a_wrong_hostname(openssl, serve, certs, events):
    srv = serve()
    with s_client(openssl, srv.port, certs.ca, name="wrong.test") as peer:
        assert peer.finish() == 1
        assert "hostname mismatch" in peer.text.lower()
    failed = events.wait("handshake_failed")
    assert failed.code == "client_hostname_mismatch" and failed.alert_received == 42


def test_s_client_with_a_foreign_ca_tells_our_log_why(openssl, serve, certs, events):
    srv = serve()
    with s_client(openssl, srv.port, certs.other_ca) as peer:
        assert peer.finish() == 1
    failed = events.wait("handshake_failed")
    assert failed.code == "client_untrusted_ca" and failed.alert_received == 48


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_s_client_tls11_gets_a_protocol_version_alert(openssl, serve, certs, events):
    srv = serve()
    with s_client(openssl, srv.port, certs.ca, extra=["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]) as peer:
        assert peer.finish() != 0
        assert "alert number 70" in peer.text or "alert protocol version" in peer.text
    failed = events.wait("handshake_failed")
    assert failed.code == "no_shared_version" and failed.alert_sent == 70


def test_s_client_without_certificate_is_rejected_under_mtls(openssl, serve, certs, events):
    srv = serve(client_ca=certs.ca, mtls="required")
    with s_client(openssl, srv.port, certs.ca) as peer:
        # TLS 1.3: s_client finishes its handshake first; our alert arrives on its next read.
        peer.send(b"let me in\n")
        peer.wait_for(rb"alert number 116|alert certificate required")
        assert peer.finish() == 1
    assert events.wait("handshake_failed").code == "client_sent_no_cert"


def test_s_client_with_a_client_certificate_is_accepted_under_mtls(openssl, serve, certs, events):
    srv = serve(client_ca=certs.ca, mtls="required")
    with s_client(openssl, srv.port, certs.ca, extra=["-cert", certs.client_cert, "-key", certs.client_key]) as peer:
        peer.wait_for(rb"Verification: OK")
        peer.send(b"it's alice\n")
        peer.wait_for(rb"\nit's alice\n")
        assert peer.finish() == 0
    assert events.wait("handshake_ok").report.peer_subject == "CN=alice"


@needs_ipv6
def test_s_client_over_ipv6(openssl, serve, certs):
    srv = serve(host="::1")
    with s_client(openssl, srv.port, certs.ca, host="::1", name="localhost") as peer:
        peer.wait_for(rb"Verification: OK")
        peer.send(b"six\n")
        peer.wait_for(rb"\nsix\n")
        assert peer.finish() == 0


# --- our client against s_server -----------------------------------------------------------------------


def test_our_client_verifies_s_server_and_reads_its_response(openssl, certs):
    peer, port = s_server(openssl, certs.cert, certs.key, "-www")
    with peer:
        result = connect("localhost", port, ca=certs.ca, system_ca=False, send=b"GET / HTTP/1.0\r\n\r\n", timeout=5)
    assert result.report.verified is True and result.report.tls_version == "TLS 1.3"
    assert result.reply.startswith(b"HTTP/1.0 200 ok")


def test_our_client_refuses_s_server_with_a_foreign_certificate(openssl, certs):
    peer, port = s_server(openssl, certs.other_cert, certs.other_key, "-www")
    with peer:
        with pytest.raises(VerificationError) as info:
            connect("localhost", port, ca=certs.ca, system_ca=False, timeout=5)
    assert info.value.code == "unknown_ca" and "someone else's CA" in info.value.message


def test_our_client_certificate_against_s_server_verify(openssl, certs):
    peer, port = s_server(openssl, certs.cert, certs.key, "-www", "-Verify", "1", "-CAfile", certs.ca)
    with peer:
        result = connect(
            "localhost", port, ca=certs.ca, system_ca=False, cert=certs.client_cert, key=certs.client_key,
            send=b"GET / HTTP/1.0\r\n\r\n", timeout=5,
        )
    assert result.report.verified and result.reply.startswith(b"HTTP/1.0 200 ok")


def test_s_server_verify_rejects_our_client_without_certificate(openssl, certs):
    peer, port = s_server(openssl, certs.cert, certs.key, "-www", "-Verify", "1", "-CAfile", certs.ca)
    with peer:
        with pytest.raises(TLSError) as info:
            connect("localhost", port, ca=certs.ca, system_ca=False, timeout=5)
    assert info.value.code == "client_cert_required" and info.value.alert == 116


def test_our_client_with_nothing_to_send_against_s_server(openssl, certs):
    # s_server without -www only talks when its stdin does; the handshake report is all we want.
    peer, port = s_server(openssl, certs.cert, certs.key)
    with peer:
        result = connect("localhost", port, ca=certs.ca, system_ca=False, timeout=5)
        assert result.report.verified and result.reply is None


def test_no_shared_version_with_a_tls12_only_s_server(openssl, certs):
    peer, port = s_server(openssl, certs.cert, certs.key, "-www", "-tls1_2")
    with peer:
        with pytest.raises(TLSError) as info:
            connect("localhost", port, ca=certs.ca, system_ca=False, min_tls="1.3", timeout=5)
        assert info.value.code == "no_shared_version"
        # Twin: our default range includes TLS 1.2.
        assert connect("localhost", port, ca=certs.ca, system_ca=False, timeout=5).report.tls_version == "TLS 1.2"
