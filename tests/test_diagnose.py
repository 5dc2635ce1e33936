"""Failure explanations from real ssl exceptions (in-memory handshakes) and real OSErrors; no network."""

from __future__ import annotations

import errno
import socket
import ssl

import pytest

from tlskit import diagnose
from tlskit.contexts import create_client_context, create_server_context
from tlskit.errors import NetworkError, TLSError, VerificationError

from .conftest import HandshakeFailed


def failure(in_memory, server, client, name="localhost") -> HandshakeFailed:
    with pytest.raises(HandshakeFailed) as info:
        in_memory(server, client, name)
    return info.value


def test_alert_of_reads_the_alert_the_peer_sent(certs, in_memory):
    server = create_server_context(certs.cert, certs.key)
    f = failure(in_memory, server, create_client_context(ca=certs.other_ca, system_ca=False))
    assert f.side == "client" and diagnose.alert_of(f.error) is None  # our own verification failed: no alert received
    # The server then got our alert 48: the same call on its side names it.
    with pytest.raises(ssl.SSLError) as info:
        f.server.do_handshake()
    assert diagnose.alert_of(info.value) == (48, "unknown_ca")


def test_parse_plain_alert():
    assert diagnose.parse_plain_alert(bytes.fromhex("15030300020246")) == 70
    assert diagnose.parse_plain_alert(bytes.fromhex("1603030002abcd")) is None
    assert diagnose.parse_plain_alert(b"") is None


@pytest.mark.parametrize(
    "raw, words",
    [
        (b"HTTP/1.1 400 Bad Request\r\n", "plain HTTP"),
        (b"GET / HTTP/1.1\r\n", "plain HTTP request"),
        (b"SSH-2.0-OpenSSH\r\n", "SSH server"),
        (b"220 mail.test ESMTP\r\n", "STARTTLS"),
        (b"hello there\n", "plain text"),
        (b"\x00\x01\x02\x03", "not TLS"),
    ],
)
def test_describe_non_tls(raw, words):
    assert words in diagnose.describe_non_tls(raw)


def test_tls_records_are_not_called_non_tls():
    assert diagnose.describe_non_tls(b"\x16\x03\x01\x00\x05") is None
    assert diagnose.describe_non_tls(b"") is None


def test_hostname_mismatch_explanation_lists_the_sans(certs, in_memory):
    server = create_server_context(certs.cert, certs.key)
    f = failure(in_memory, server, create_client_context(ca=certs.ca, system_ca=False), "wrong.test")
    from tlskit.report import peer_chain

    err = diagnose.explain_client_failure(
        f.error, host="wrong.test", port=443, chain=peer_chain(f.client, verified=False), trust_files=[certs.ca]
    )
    assert isinstance(err, VerificationError) and err.exit_code == 5
    assert err.code == "hostname_mismatch" and "localhost, 127.0.0.1, ::1" in err.message


def test_unknown_ca_explanation_names_issuer_and_trust(certs, in_memory):
    server = create_server_context(certs.cert, certs.key)
    f = failure(in_memory, server, create_client_context(ca=certs.other_ca, system_ca=False))
    from tlskit.report import peer_chain

    err = diagnose.explain_client_failure(
        f.error, host="localhost", port=443, chain=peer_chain(f.client, verified=False), trust_files=[certs.other_ca]
    )
    assert err.code == "unknown_ca" and "tlskit test CA" in err.message and str(certs.other_ca) in err.message


def test_server_side_explains_a_missing_client_certificate(certs, in_memory):
    server = create_server_context(certs.cert, certs.key, client_ca=certs.ca)
    f = failure(in_memory, server, create_client_context(ca=certs.ca, system_ca=False))
    expl = diagnose.explain_server_failure(f.error, mtls="required", bytes_in=500)
    assert expl.code == "client_sent_no_cert" and "--cert" in expl.hint


def test_server_side_explains_no_shared_cipher(certs, in_memory):
    server = create_server_context(certs.cert, certs.key)
    client = create_client_context(ca=certs.ca, system_ca=False, max_tls="1.2", ciphers="AES128-SHA")
    f = failure(in_memory, server, client)
    assert f.side == "server"
    assert diagnose.explain_server_failure(f.error, bytes_in=300).code == "no_shared_cipher"


def test_client_side_alert_40_without_a_certificate_suggests_cert_and_ciphers():
    exc = ssl.SSLError(1, "[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] sslv3 alert handshake failure")
    exc.reason = "SSLV3_ALERT_HANDSHAKE_FAILURE"
    err = diagnose.explain_client_failure(exc, host="h", port=1)
    assert isinstance(err, TLSError) and err.alert == 40 and "--cert" in err.hint and "--ciphers" in err.hint


def test_network_errors_are_exit_4():
    refused = diagnose.explain_connect_error(ConnectionRefusedError(errno.ECONNREFUSED, "refused"), host="::1", port=9)
    assert isinstance(refused, NetworkError) and refused.exit_code == 4 and "[::1]:9" in refused.message
    dns = diagnose.explain_connect_error(socket.gaierror(socket.EAI_NONAME, "Name or service not known"), host="x.test", port=1)
    assert dns.code == "dns" and "x.test" in dns.message
    timeout = diagnose.explain_connect_error(TimeoutError("timed out"), host="h", port=1, timeout=2)
    assert timeout.code == "timeout" and "2 s" in timeout.message


def test_listen_errors_name_the_port():
    in_use = diagnose.explain_listen_error(OSError(errno.EADDRINUSE, "Address already in use"), host="localhost", port=8443)
    assert in_use.exit_code == 4 and "port 8443 is already in use" in in_use.message and "--port" in in_use.hint
    denied = diagnose.explain_listen_error(OSError(errno.EACCES, "Permission denied"), host="localhost", port=443)
    assert "privileged" in denied.message and "--port 8443" in denied.hint


def test_a_port_check_is_not_a_tls_failure_story():
    assert diagnose.explain_server_failure(None, bytes_in=0).code == "closed_early"
    assert diagnose.explain_server_failure(None, raw=b"GET / HTTP/1.0\r\n", bytes_in=16).code == "plain_http"
