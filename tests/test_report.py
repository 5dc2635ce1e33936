"""The handshake report, filled from real SSLObjects (in-memory handshakes)."""

from __future__ import annotations

import json

from tlskit.contexts import create_client_context, create_server_context
from tlskit.report import HandshakeReport, create_report, format_peer, peer_chain


def test_peer_chain_is_leaf_first_on_both_sides(certs, in_memory):
    server = create_server_context(certs.cert, certs.key, client_ca=certs.ca, mtls="required")
    client = create_client_context(ca=certs.ca, system_ca=False, cert=certs.client_cert, key=certs.client_key)
    c, s = in_memory(server, client)
    assert [x.subject.rfc4514_string() for x in peer_chain(c)][0] == "CN=localhost"
    assert peer_chain(s)[0].subject.rfc4514_string() == "CN=alice"
    # Verified chains end at our trust anchor.
    assert peer_chain(c)[-1] == certs.ca_obj.cert


def test_peer_chain_is_empty_without_a_client_certificate(certs, in_memory):
    server = create_server_context(certs.cert, certs.key)
    _, s = in_memory(server, create_client_context(ca=certs.ca, system_ca=False))
    assert peer_chain(s) == []


def test_client_report(certs, in_memory):
    server = create_server_context(certs.cert, certs.key, alpn=["h2"])
    c, _ = in_memory(server, create_client_context(ca=certs.ca, system_ca=False, alpn=["h2"]))
    rep = create_report(c, side="client", peer=("127.0.0.1", 8443), handshake_ms=1.5)
    assert rep.tls_version == "TLS 1.3" and rep.alpn == "h2" and rep.server_name == "localhost"
    assert rep.verified is True and rep.verify_mode == "verified" and rep.group is None
    assert rep.peer == "127.0.0.1:8443" and rep.peer_subject == "CN=localhost"
    data = json.loads(json.dumps(rep.to_dict()))
    assert {"tls_version", "cipher", "alpn", "server_name", "verified", "verify_error", "peer_chain"} <= set(data)
    assert {"subject", "issuer", "sans", "not_before", "not_after", "sha256", "key_type"} <= set(data["peer_chain"][0])


def test_server_report_records_sni_and_no_verification_without_mtls(certs, in_memory):
    server = create_server_context(certs.cert, certs.key)
    _, s = in_memory(server, create_client_context(ca=certs.ca, system_ca=False))
    rep = create_report(s, side="server")
    assert rep.server_name == "localhost" and rep.verified is None and rep.verify_mode == "none"
    assert rep.peer_chain == []


def test_format_peer():
    assert format_peer(("::1", 8443, 0, 0)) == "[::1]:8443"
    assert format_peer(("127.0.0.1", 1)) == "127.0.0.1:1"
    assert format_peer(None) is None


def test_empty_report_serialises():
    assert HandshakeReport(side="client").to_dict()["peer_chain"] == []
