"""The TLS client against real loopback servers: reports, replies, and every failure explained."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tlskit import client
from tlskit.client import connect, parse_address
from tlskit.errors import NetworkError, TLSError, VerificationError

from .test_server import needs_ipv6


def trusted(**kw):
    kw.setdefault("ca", None)
    kw.setdefault("system_ca", False)
    kw.setdefault("timeout", 5)
    return kw


# --- little non-TLS servers -------------------------------------------------------------------


class TCPServer:
    """Accepts connections on 127.0.0.1:0 in a thread and hands each to ``handler`` (bounded)."""

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:
        self.handler = handler
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(3)
                try:
                    self.handler(conn)
                except OSError:
                    pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def tcp_server() -> Iterator[Callable[[Callable[[socket.socket], None]], TCPServer]]:
    servers: list[TCPServer] = []

    def start(handler):
        servers.append(TCPServer(handler))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


# --- addresses -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target, expected",
    [
        ("", ("localhost", 8443)),
        ("example.test", ("example.test", 8443)),
        ("example.test:9443", ("example.test", 9443)),
        ("127.0.0.1:1", ("127.0.0.1", 1)),
        ("[::1]:8443", ("::1", 8443)),
        ("[::1]", ("::1", 8443)),
        ("::1", ("::1", 8443)),
        ("https://example.test:4443/path", ("example.test", 4443)),
        ("https://example.test/", ("example.test", 443)),
        (":9000", ("localhost", 9000)),
    ],
)
def test_parse_address(target, expected):
    assert parse_address(target) == expected


@pytest.mark.parametrize("target", ["host:0", "host:70000", "host:http", "[::1", "[::1]x", "fe80::1::2"])
def test_parse_address_rejects_bad_input(target):
    with pytest.raises(ValueError):
        parse_address(target)


# --- success and its report ------------------------------------------------------------------------


def test_connect_reports_the_handshake_and_verifies(serve, certs):
    srv = serve()
    t0 = time.monotonic()
    result = connect("localhost", srv.port, **trusted(ca=certs.ca))
    # The post-handshake read ends at the server's session ticket, not after a fixed wait.
    assert time.monotonic() - t0 < 0.2
    rep = result.report
    assert rep.verified is True and rep.verify_error is None and rep.verify_mode == "verified"
    assert rep.tls_version == "TLS 1.3" and rep.cipher_bits >= 128 and rep.server_name == "localhost"
    assert rep.group is None  # Python 3.11's ssl does not expose it: reported as null, not guessed
    assert rep.peer == f"127.0.0.1:{srv.port}"
    assert rep.peer_chain[0]["subject"] == "CN=localhost" and "CN=tlskit test CA" in rep.peer_chain[1]["subject"]
    assert result.reply is None
    data = json.loads(json.dumps(result.to_dict()))
    for key in ("tls_version", "cipher", "alpn", "server_name", "verified", "verify_error", "peer_chain"):
        assert key in data
    for key in ("subject", "issuer", "sans", "not_before", "not_after", "sha256", "key_type"):
        assert key in data["peer_chain"][0]
    assert data["peer_chain"][0]["sans"] == ["DNS:localhost", "IP:127.0.0.1", "IP:::1"]


def test_send_reads_the_echo(serve, certs):
    srv = serve()
    result = connect("127.0.0.1", srv.port, **trusted(ca=certs.ca), send=b"hi\n", quiet=0.2)
    assert result.reply == b"hi\n"
    assert result.to_dict()["reply"] == "hi\n"


def test_foreign_ca_is_explained_with_the_issuer(serve, certs):
    # Negative twin of the two tests above.
    srv = serve()
    with pytest.raises(VerificationError) as info:
        connect("localhost", srv.port, **trusted(ca=certs.other_ca), send=b"hi\n")
    err = info.value
    assert err.exit_code == 5 and err.code == "unknown_ca"
    assert "tlskit test CA" in err.message and str(certs.other_ca) in err.message
    assert "--ca" in err.hint
    # The chain the server presented is still there for the renderer.
    assert err.report.peer_chain[0]["subject"] == "CN=localhost"


def test_hostname_mismatch_lists_the_names_the_certificate_covers(serve, certs):
    srv = serve(cert=certs.elsewhere_cert, key=certs.elsewhere_key)
    with pytest.raises(VerificationError) as info:
        connect("localhost", srv.port, **trusted(ca=certs.ca))
    err = info.value
    assert err.code == "hostname_mismatch"
    assert "'localhost' is not among" in err.message and "elsewhere.test" in err.message
    assert "tlskit cert issue localhost" in err.hint and "--servername" in err.hint


def test_servername_fixes_a_mismatch(serve, certs):
    # Twin: same server, the covered name as SNI and for the check.
    srv = serve(cert=certs.elsewhere_cert, key=certs.elsewhere_key)
    rep = connect("127.0.0.1", srv.port, **trusted(ca=certs.ca), servername="elsewhere.test").report
    assert rep.verified and rep.server_name == "elsewhere.test"


def test_ip_address_is_checked_against_ip_sans(serve, certs):
    srv = serve()
    assert connect("127.0.0.1", srv.port, **trusted(ca=certs.ca)).report.verified
    srv2 = serve(cert=certs.elsewhere_cert, key=certs.elsewhere_key)
    with pytest.raises(VerificationError, match="'127.0.0.1' is not among"):
        connect("127.0.0.1", srv2.port, **trusted(ca=certs.ca))


def test_cn_only_server_certificate_is_refused(serve, certs):
    srv = serve(cert=certs.cn_only_cert, key=certs.cn_only_key)
    with pytest.raises(VerificationError) as info:
        connect("localhost", srv.port, **trusted(ca=certs.ca))
    assert info.value.code == "hostname_mismatch" and "no DNS or IP names" in info.value.message


def test_expired_server_certificate_shows_the_dates(serve, certs):
    then = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=29)
    srv = serve(cert=certs.expired_cert, key=certs.expired_key, now=then)  # skip the server's own pre-flight
    with pytest.raises(VerificationError) as info:
        connect("localhost", srv.port, **trusted(ca=certs.ca))
    err = info.value
    assert err.code == "expired" and "expired on" in err.message and "valid" in err.message
    assert "--force" in err.hint


def test_not_yet_valid_server_certificate(serve, certs):
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=4)
    srv = serve(cert=certs.future_cert, key=certs.future_key, now=later)
    with pytest.raises(VerificationError) as info:
        connect("localhost", srv.port, **trusted(ca=certs.ca))
    assert info.value.code == "not_yet_valid" and "not valid before" in info.value.message


# --- insecure ----------------------------------------------------------------------------------------


def test_insecure_connects_and_still_says_what_would_have_failed(serve, certs):
    srv = serve()
    rep = connect("localhost", srv.port, **trusted(ca=certs.other_ca), insecure=True).report
    assert rep.verify_mode == "insecure"
    assert rep.verified is False and "not signed by this CA" in rep.verify_error
    assert any("would have failed" in w for w in rep.warnings)


def test_insecure_with_the_right_ca_would_have_verified(serve, certs):
    srv = serve()
    rep = connect("localhost", srv.port, **trusted(ca=certs.ca), insecure=True).report
    assert rep.verified is True and rep.verify_error is None
    assert any("would have verified" in w for w in rep.warnings)


def test_insecure_reports_a_hostname_mismatch(serve, certs):
    srv = serve(cert=certs.elsewhere_cert, key=certs.elsewhere_key)
    rep = connect("localhost", srv.port, **trusted(ca=certs.ca), insecure=True).report
    assert rep.verified is False and "'localhost' is not among the SANs" in rep.verify_error


# --- mTLS -------------------------------------------------------------------------------------------


def test_tls13_rejection_of_a_missing_client_certificate_is_seen_without_sending(serve, certs):
    srv = serve(client_ca=certs.ca, mtls="required")
    with pytest.raises(TLSError) as info:
        connect("localhost", srv.port, **trusted(ca=certs.ca))  # nothing to send: the brief read sees the alert
    err = info.value
    assert err.code == "client_cert_required" and err.alert == 116 and "--cert" in err.hint


def test_client_certificate_is_accepted(serve, certs):
    srv = serve(client_ca=certs.ca, mtls="required")
    rep = connect("localhost", srv.port, **trusted(ca=certs.ca), cert=certs.client_cert, key=certs.client_key).report
    assert rep.verified and rep.tls_version == "TLS 1.3"


def test_tls12_missing_client_certificate_suggests_cert(serve, certs):
    srv = serve(client_ca=certs.ca, mtls="required")
    with pytest.raises(TLSError) as info:
        connect("localhost", srv.port, **trusted(ca=certs.ca), max_tls="1.2")
    assert info.value.code == "handshake_failure" and "--cert" in info.value.hint


def test_rejected_client_certificate_is_explained(serve, certs):
    srv = serve(client_ca=certs.ca, mtls="required")
    with pytest.raises(TLSError) as info:
        connect("localhost", srv.port, **trusted(ca=certs.ca), cert=certs.other_client_cert, key=certs.other_client_key)
    err = info.value
    assert err.code == "client_cert_rejected" and "rejected our client certificate" in err.message
    assert err.report.tls_version == "TLS 1.3"  # the handshake itself had finished


# --- versions, ALPN ---------------------------------------------------------------------------------------


def test_no_shared_version(serve, certs):
    srv = serve(max_tls="1.2")
    with pytest.raises(TLSError) as info:
        connect("localhost", srv.port, **trusted(ca=certs.ca), min_tls="1.3")
    assert info.value.code == "no_shared_version" and info.value.alert == 70
    # Twin: an overlapping range works.
    assert connect("localhost", srv.port, **trusted(ca=certs.ca)).report.tls_version == "TLS 1.2"


def test_alpn_result_is_reported(serve, certs):
    srv = serve(alpn=["h2"])
    assert connect("localhost", srv.port, **trusted(ca=certs.ca), alpn=["h2", "http/1.1"]).report.alpn == "h2"
    assert connect("localhost", srv.port, **trusted(ca=certs.ca), alpn=["http/1.1"]).report.alpn is None


# --- expiry warning, keylog ---------------------------------------------------------------------------------


def test_warn_days_flags_a_certificate_expiring_soon(serve, certs):
    srv = serve()
    result = connect("localhost", srv.port, **trusted(ca=certs.ca), warn_days=1000)
    assert result.expiry_warning and "within --warn-days 1000" in result.expiry_warning
    # Twin: 825-day certificate, 30-day threshold.
    assert connect("localhost", srv.port, **trusted(ca=certs.ca), warn_days=30).expiry_warning is None


def test_client_keylog_is_written_and_reported(serve, certs, tmp_path):
    srv = serve()
    log_file = tmp_path / "keys.log"
    rep = connect("localhost", srv.port, **trusted(ca=certs.ca), keylog=log_file).report
    assert b"CLIENT_TRAFFIC_SECRET_0" in log_file.read_bytes()
    assert any(str(log_file) in w for w in rep.warnings)


# --- IPv6 ----------------------------------------------------------------------------------------------------


@needs_ipv6
def test_ipv6_literal_with_brackets(serve, certs):
    srv = serve(host="::1")
    host, port = parse_address(f"[::1]:{srv.port}")
    rep = connect(host, port, **trusted(ca=certs.ca), send=b"v6", quiet=0.2)
    assert rep.reply == b"v6" and rep.report.peer == f"[::1]:{srv.port}" and rep.report.verified


# --- network failures (exit 4) -------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refused(certs):
    port = _closed_port()
    with pytest.raises(NetworkError) as info:
        connect("127.0.0.1", port, **trusted(ca=certs.ca))
    err = info.value
    assert err.exit_code == 4 and err.code == "refused" and f"127.0.0.1:{port}" in err.message
    assert "tlskit serve" in err.hint


def test_dns_failure(certs):
    # Over 255 characters: the resolver refuses it locally, no DNS packet leaves the machine.
    name = ".".join(["a" * 60] * 5)
    with pytest.raises(NetworkError) as info:
        connect(name, 443, **trusted(ca=certs.ca))
    assert info.value.code == "dns" and info.value.exit_code == 4


def test_invalid_host_name(certs):
    with pytest.raises(NetworkError, match="not a valid host name"):
        connect("a" * 64 + ".test", 443, **trusted(ca=certs.ca))


def test_silent_server_times_out(certs, tcp_server):
    srv = tcp_server(lambda conn: conn.recv(65536) and conn.recv(1))  # silent until we give up
    t0 = time.monotonic()
    with pytest.raises(NetworkError) as info:
        connect("127.0.0.1", srv.port, **trusted(ca=certs.ca, timeout=0.5))
    assert info.value.code == "timeout" and "0.5 s" in info.value.message
    assert time.monotonic() - t0 < 1.5


# --- peers that do not speak TLS -------------------------------------------------------------------------------


def test_plain_http_server_is_recognised(certs, tcp_server):
    def http(conn):
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    srv = tcp_server(http)
    with pytest.raises(TLSError) as info:
        connect("127.0.0.1", srv.port, **trusted(ca=certs.ca))
    err = info.value
    assert err.code == "not_tls" and "plain HTTP" in err.message and "HTTP/1.1 400" in err.message
    assert f"http://127.0.0.1:{srv.port}/" in err.hint


def test_ssh_like_banner_is_recognised(certs, tcp_server):
    srv = tcp_server(lambda conn: conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n"))
    with pytest.raises(TLSError) as info:
        connect("127.0.0.1", srv.port, **trusted(ca=certs.ca))
    assert info.value.code == "not_tls" and "SSH server" in info.value.message


def test_server_closing_without_alert(certs, tcp_server):
    srv = tcp_server(lambda conn: conn.recv(65536))
    with pytest.raises(TLSError) as info:
        connect("127.0.0.1", srv.port, **trusted(ca=certs.ca))
    assert info.value.code == "closed" and "without" in info.value.message


def test_tls_port_of_tlskit_explains_itself_to_plain_http(serve, certs):
    # Our client speaks TLS to our server; a plain-text peer on the same port is told to use https.
    srv = serve()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=3) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 400")
    assert connect("127.0.0.1", srv.port, **trusted(ca=certs.ca)).report.verified


def test_default_port_constant():
    assert client.DEFAULT_PORT == 8443


def test_reply_ends_at_the_servers_close_notify_not_after_the_quiet_period(serve, certs):
    srv = serve(http=True)
    t0 = time.monotonic()
    request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"  # HTTP/1.1 keeps the connection open otherwise
    result = connect("localhost", srv.port, **trusted(ca=certs.ca), send=request, quiet=3)
    assert time.monotonic() - t0 < 1.0
    assert result.reply.startswith(b"HTTP/1.1 200 OK")


# --- every alert a server may send, in plain words -----------------------------------------------------------


def alert_server(number: int):
    """A peer that reads the ClientHello and answers with one plaintext fatal alert, as any TLS server may."""

    def handler(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"\x15\x03\x03\x00\x02\x02" + bytes([number]))

    return handler


@pytest.mark.parametrize(
    ("number", "code", "words", "hint"),
    [
        # 116, 70 and 40 are proven above against a real tlskit server; these are the rest.
        (112, "unrecognized_name", "has no certificate for the name 'localhost'", "--servername"),
        (120, "no_alpn", "no application protocol in common", "--alpn"),
        (71, "insufficient_security", "considers what we offer too weak", "--ciphers"),
        (80, "internal_error", "internal error", "--min-tls"),
        (48, "peer_rejected", "rejected the handshake", "server's log"),
        (86, "alert", "ended the handshake (TLS alert 86 inappropriate_fallback)", "server's log"),
    ],
)
def test_each_alert_from_the_server_is_explained(certs, tcp_server, number, code, words, hint):
    srv = tcp_server(alert_server(number))
    with pytest.raises(TLSError) as info:
        connect("localhost", srv.port, **trusted(ca=certs.ca))
    err = info.value
    assert err.code == code and err.alert == number, (err.code, err.message)
    assert words in err.message and f"TLS alert {number}" in err.message
    assert hint in err.hint
    assert "\n" not in err.message


def test_client_certificate_refusals_name_the_reason(certs, tcp_server):
    # With a certificate sent, 45 and 48 mean the server judged *our* certificate.
    for number, why in ((45, "it says the certificate expired"), (48, "it does not trust the CA that issued it")):
        srv = tcp_server(alert_server(number))
        with pytest.raises(TLSError) as info:
            connect("localhost", srv.port, **trusted(ca=certs.ca), cert=certs.client_cert, key=certs.client_key)
        err = info.value
        assert err.alert == number and err.code == "client_cert_rejected", (err.code, err.message)
        assert why in err.message and "--client" in err.hint


def test_getaddrinfo_gets_plain_ascii_as_bytes_and_the_rest_as_text():
    from tlskit.client import _host_arg

    assert _host_arg("127.0.0.1") == b"127.0.0.1" and _host_arg("::1") == b"::1" and _host_arg("localhost.") == b"localhost."
    # The codec still judges what needs it: an empty or a 64+ character label, a non-ASCII name.
    assert _host_arg("a..b") == "a..b" and _host_arg("x" * 64 + ".test") == "x" * 64 + ".test"
    assert _host_arg("bücher.test") == "bücher.test"
