"""GnuTLS as the peer: gnutls-cli against our server, our client against gnutls-serv."""

from __future__ import annotations

import pytest

from tlskit.client import connect
from tlskit.errors import VerificationError

from .peers import Peer, free_port, wait_listening

pytestmark = pytest.mark.interop


@pytest.fixture
def gnutls_cli(require) -> str:
    return require("gnutls-cli")


def cli(binary, port, ca, *extra):
    return Peer([binary, "--x509cafile", ca, "-p", str(port), *extra, "localhost"])


def test_gnutls_cli_verifies_our_server_and_gets_the_echo(gnutls_cli, serve, certs, events):
    srv = serve(host="localhost")
    with cli(gnutls_cli, srv.port, certs.ca) as peer:
        peer.wait_for(rb"Handshake was completed")
        peer.send(b"hi from gnutls\n")
        peer.wait_for(rb"\nhi from gnutls\n")
        assert peer.finish() == 0
    assert events.wait("handshake_ok").report.tls_version == "TLS 1.3"


def test_gnutls_cli_with_a_foreign_ca_is_refused(gnutls_cli, serve, certs):
    srv = serve(host="localhost")
    with cli(gnutls_cli, srv.port, certs.other_ca) as peer:
        assert peer.finish() != 0
        assert "issuer is unknown" in peer.text or "NOT trusted" in peer.text


def test_gnutls_cli_tls11_gets_alert_70(gnutls_cli, serve, certs, events):
    srv = serve(host="localhost")
    with cli(gnutls_cli, srv.port, certs.ca, "--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.1") as peer:
        assert peer.finish() != 0
        assert "Received alert [70]" in peer.text
    failed = events.wait("handshake_failed")
    assert failed.code == "no_shared_version" and failed.alert_sent == 70


def test_gnutls_cli_without_certificate_gets_alert_116_under_mtls(gnutls_cli, serve, certs, events):
    srv = serve(host="localhost", client_ca=certs.ca, mtls="required")
    with cli(gnutls_cli, srv.port, certs.ca) as peer:
        peer.send(b"let me in\n")
        peer.wait_for(rb"Received alert \[116\]")
        assert peer.finish() != 0
    assert events.wait("handshake_failed").code == "client_sent_no_cert"


def test_gnutls_cli_with_a_client_certificate_is_accepted_under_mtls(gnutls_cli, serve, certs, events):
    srv = serve(host="localhost", client_ca=certs.ca, mtls="required")
    extra = ["--x509certfile", certs.client_cert, "--x509keyfile", certs.client_key]
    with cli(gnutls_cli, srv.port, certs.ca, *extra) as peer:
        peer.send(b"alice here\n")
        peer.wait_for(rb"\nalice here\n")
        assert peer.finish() == 0
    assert events.wait("handshake_ok").report.peer_subject == "CN=alice"


# --- our client against gnutls-serv --------------------------------------------------------------------


def gnutls_serv(binary, cert, key, port, *extra) -> Peer:
    # gnutls-serv has no bind-address option: it listens on every interface; we only connect via loopback.
    peer = Peer([binary, "--port", str(port), "--x509certfile", cert, "--x509keyfile", key, "--echo", *extra])
    try:
        wait_listening(port)
    except AssertionError:
        peer.stop()
        raise
    return peer


@pytest.fixture
def gnutls_serv_bin(require) -> str:
    return require("gnutls-serv")


def test_our_client_verifies_gnutls_serv_and_reads_the_echo(gnutls_serv_bin, certs):
    port = free_port()
    with gnutls_serv(gnutls_serv_bin, certs.cert, certs.key, port):
        result = connect("localhost", port, ca=certs.ca, system_ca=False, send=b"hello gnutls\n", quiet=0.3, timeout=5)
    assert result.report.verified is True
    assert result.reply == b"hello gnutls\n"


def test_our_client_refuses_gnutls_serv_with_a_foreign_certificate(gnutls_serv_bin, certs):
    port = free_port()
    with gnutls_serv(gnutls_serv_bin, certs.other_cert, certs.other_key, port):
        with pytest.raises(VerificationError) as info:
            connect("localhost", port, ca=certs.ca, system_ca=False, timeout=5)
    assert info.value.code == "unknown_ca"
