"""The HTTP mode: the request parser and its limits (no network), then real TLS on loopback."""

from __future__ import annotations

import json
import re
import socket
import ssl

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tlskit import httpmode
from tlskit.contexts import create_client_context
from tlskit.httpmode import MAX_BODY, MAX_HEAD, MAX_HEADERS, ConnectionFacts, HTTPSession, Rejection, Request, RequestParser
from tlskit.report import HandshakeReport

GET = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"


def parse(data: bytes) -> list:
    return RequestParser().feed(data)


def one(data: bytes) -> Request | Rejection:
    items = parse(data)
    assert len(items) == 1, items
    return items[0]


def facts(**report) -> ConnectionFacts:
    r = HandshakeReport(side="server", peer="127.0.0.1:5000", tls_version="TLS 1.3", cipher="TLS_AES_128_GCM_SHA256",
                        cipher_bits=128, alpn="http/1.1", server_name="localhost", **report)
    server_cert = {"subject": "CN=localhost", "issuer": "CN=test CA", "sans": ["DNS:localhost", "IP:127.0.0.1"],
                   "not_before": "2026-01-01T00:00:00+00:00", "not_after": "2027-01-01T00:00:00+00:00",
                   "days_left": 100, "status": "valid", "key_type": "ecdsa-p256", "key_bits": 256, "sha256": "AB:CD"}
    return ConnectionFacts(r, server_cert, "TLSv1.3")


def session() -> HTTPSession:
    return HTTPSession(facts)


def responses(data: bytes) -> list[tuple[bytes, dict[str, str], bytes]]:
    """Split a byte stream of responses (to GET, never HEAD) into (status line, headers, body)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, data[:200]
        lines = head.split(b"\r\n")
        headers = {k.decode().lower(): v.decode().strip() for k, _, v in (line.partition(b":") for line in lines[1:])}
        n = int(headers.get("content-length", "0")) if not lines[0].startswith(b"HTTP/1.1 100") else 0
        out.append((lines[0], headers, rest[:n]))
        data = rest[n:]
    return out


def strip_dates(data: bytes) -> bytes:
    data = re.sub(rb"\r\nDate: [^\r]*", b"", data)
    return re.sub(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", b"", data)


# --- the parser ---------------------------------------------------------------------------------------


def test_a_simple_get_is_parsed():
    req = one(b"GET /json?x=1 HTTP/1.1\r\nHost: localhost:8443\r\nAccept: */*\r\n\r\n")
    assert (req.method, req.target, req.path, req.version) == ("GET", "/json?x=1", "/json", "HTTP/1.1")
    assert req.headers == (("Host", "localhost:8443"), ("Accept", "*/*")) and req.keep_alive


def test_a_request_fed_byte_by_byte_is_the_same_request():
    p = RequestParser()
    got = [item for i in range(len(GET)) for item in p.feed(GET[i : i + 1])]
    assert got == [one(GET)]


def test_pipelined_requests_come_out_in_order():
    data = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n"
    assert [(r.method, r.target) for r in parse(data)] == [("GET", "/a"), ("HEAD", "/b"), ("GET", "/c")]


def test_bare_lf_line_ends_and_leading_empty_lines_are_accepted():
    # RFC 9112 §2.2: a recipient MAY accept LF alone, and SHOULD ignore empty lines before a request.
    req = one(b"\r\n\r\nGET / HTTP/1.1\nHost: x\n\n")
    assert req.path == "/" and req.header("host") == "x"


@pytest.mark.parametrize(
    ("request_head", "keep"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, CLOSE\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", True),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", False),
    ],
)
def test_keep_alive_follows_the_version_and_the_connection_header(request_head, keep):
    assert one(request_head).keep_alive is keep


def test_a_content_length_body_is_read_and_the_next_request_parsed():
    body = b"x" * 1000
    p = RequestParser()
    first = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
    assert p.feed(first + body[:10]) == []  # waiting for the rest of the body
    items = p.feed(body[10:] + GET)
    assert [(r.method, r.body_length) for r in items] == [("POST", 1000), ("GET", 0)]
    assert p.buffered == 0


def test_expect_100_continue_is_answered_before_the_body():
    s = session()
    out, close = s.receive(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
    assert out == b"HTTP/1.1 100 Continue\r\n\r\n" and not close
    out, close = s.receive(b"abc")
    assert out.startswith(b"HTTP/1.1 405 ") and not close


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GET /\r\nHost: x\r\n\r\n", 400),  # no version
        (b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400),  # two spaces
        (b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),  # not a token
        (b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400),  # control in the target
        (b"GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", 400),  # non-ASCII target
        (b"GET relative HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 without Host
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),  # space before the colon (RFC 9112 §5.1)
        (b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),  # obs-fold
        (b"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\rEvil: 1\r\n\r\n", 400),  # bare CR
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),  # an h2 client's preface
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1), 413),
    ],
)
def test_malformed_requests_are_rejected_with_a_status(data, status):
    rej = one(data)
    assert isinstance(rej, Rejection) and rej.status == status and rej.reason


def test_a_duplicated_but_equal_content_length_is_accepted():
    req = one(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok")
    assert req.body_length == 2


def test_the_head_limit_is_16_kib():
    filler = b"X-Filler: " + b"a" * 1000 + b"\r\n"
    fits = b"GET / HTTP/1.1\r\nHost: x\r\n" + filler * 15 + b"\r\n"
    assert len(fits) <= MAX_HEAD and isinstance(one(fits), Request)
    too_big = b"GET / HTTP/1.1\r\nHost: x\r\n" + filler * 17 + b"\r\n"
    assert one(too_big).status == 431


def test_an_endless_head_is_rejected_without_waiting_for_its_end():
    p = RequestParser()
    assert p.feed(b"GET / HTTP/1.1\r\nHost: x\r\n") == []
    items = p.feed(b"X-A: " + b"a" * MAX_HEAD)
    assert len(items) == 1 and items[0].status == 431
    assert p.buffered == 0 and p.feed(GET) == []  # nothing more after a rejection


def test_an_endless_request_line_is_414():
    assert one(b"GET /" + b"a" * (MAX_HEAD + 10)).status == 414


def test_at_most_100_header_fields():
    def head(n: int) -> bytes:
        return b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(n - 1)) + b"\r\n"

    assert isinstance(one(head(MAX_HEADERS)), Request)
    assert one(head(MAX_HEADERS + 1)).status == 431


# --- the session: statuses, keep-alive, pipelining --------------------------------------------------------


def test_get_slash_is_the_html_page_with_security_headers():
    out, close = session().receive(GET)
    [(status, headers, body)] = responses(out)
    assert status == b"HTTP/1.1 200 OK" and not close and "connection" not in headers
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["cache-control"] == "no-store" and headers["x-content-type-options"] == "nosniff"
    csp = headers["content-security-policy"]
    assert csp.startswith("default-src 'none'; style-src 'sha256-") and "script-src" not in csp
    assert "strict-transport-security" not in headers  # HSTS would pin every port of localhost
    page = body.decode()
    assert f"<title>{httpmode.TITLE}</title>" in page and "<code>TLSv1.3</code>" in page
    assert "<script" not in page and "http://" not in page and "https://" not in page  # self-contained
    assert "<code>TLS_AES_128_GCM_SHA256</code> (128 bits)" in page and "<code>DNS:localhost</code>" in page


def test_the_style_hash_in_the_csp_matches_the_inline_style():
    import base64
    import hashlib

    out, _ = session().receive(GET)
    [(_, headers, body)] = responses(out)
    style = re.search(rb"<style>(.*?)</style>", body, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(style).digest()).decode()
    assert f"'sha256-{digest}'" in headers["content-security-policy"]


def test_get_json_is_the_report_plus_request_and_server_certificate():
    out, _ = session().receive(b"GET /json HTTP/1.1\r\nHost: localhost\r\nX-Test: 1\r\n\r\n")
    [(status, headers, body)] = responses(out)
    assert status == b"HTTP/1.1 200 OK" and headers["content-type"] == "application/json"
    doc = json.loads(body)
    assert doc["tls_version"] == "TLS 1.3" and doc["server_name"] == "localhost" and doc["alpn"] == "http/1.1"
    assert doc["request"] == {"method": "GET", "target": "/json", "path": "/json", "version": "HTTP/1.1",
                              "headers": [["Host", "localhost"], ["X-Test", "1"]]}
    assert doc["server_certificate"]["sans"] == ["DNS:localhost", "IP:127.0.0.1"]


def test_head_has_the_get_length_and_no_body():
    get, _ = session().receive(GET)
    head, close = session().receive(b"HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    get_head, _, _ = get.partition(b"\r\n\r\n")
    assert not close and head.endswith(b"\r\n\r\n") and head.count(b"\r\n\r\n") == 1
    length = re.compile(rb"\r\nContent-Length: (\d+)")
    # The page shows the request line, and "HEAD" is one letter longer than "GET".
    assert int(length.search(head).group(1)) == int(length.search(get_head).group(1)) + 1
    assert length.sub(b"", strip_dates(head)) == length.sub(b"", strip_dates(get_head + b"\r\n\r\n"))


def test_unknown_path_is_404_and_the_connection_stays_open():
    out, close = session().receive(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 404 Not Found\r\n") and not close


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "BREW"])
def test_methods_other_than_get_and_head_are_405_with_allow(method):
    out, close = session().receive(f"{method} / HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    [(status, headers, _)] = responses(out)
    assert status == b"HTTP/1.1 405 Method Not Allowed" and headers["allow"] == "GET, HEAD" and not close


def test_a_bad_request_is_400_and_closes():
    out, close = session().receive(b"this is not http\r\n\r\n")
    [(status, headers, body)] = responses(out)
    assert status == b"HTTP/1.1 400 Bad Request" and headers["connection"] == "close" and close
    assert body == b"the request line is not METHOD TARGET HTTP/VERSION\n"


def test_http_1_0_closes_unless_keep_alive():
    out, close = session().receive(b"GET / HTTP/1.0\r\n\r\n")
    assert close and b"\r\nConnection: close\r\n" in out
    out, close = session().receive(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert not close and b"\r\nConnection: keep-alive\r\n" in out


def test_pipelined_requests_get_answers_in_order_and_close_is_honoured():
    data = (b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n" b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n")
    s = session()
    out, close = s.receive(data)
    got = responses(out)
    assert [g[0] for g in got] == [b"HTTP/1.1 200 OK", b"HTTP/1.1 404 Not Found", b"HTTP/1.1 200 OK"]
    assert got[0][1]["content-type"] == "application/json" and got[2][1]["connection"] == "close"
    assert close and s.requests == 3  # nothing answered after the request that asked to close


def test_a_deep_pipeline_in_one_chunk_is_cut_and_closed():
    s = session()
    out, close = s.receive(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n" * 1000)
    got = responses(out)
    assert len(got) == httpmode.MAX_PIPELINE and close and got[-1][1]["connection"] == "close"


def test_hostile_header_values_are_escaped_in_the_page():
    evil = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    out, _ = session().receive(f"GET /?<b>q</b> HTTP/1.1\r\nHost: x\r\nX-Evil: {evil}\r\nUser-Agent: a&b\r\n\r\n".encode())
    page = responses(out)[0][2].decode()
    assert "<script>" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    assert "GET /?&lt;b&gt;q&lt;/b&gt; HTTP/1.1" in page and "a&amp;b" in page


def test_a_client_certificate_is_shown_with_its_names_and_validity():
    leaf = {"subject": "CN=alice", "issuer": "CN=test CA", "sans": ["DNS:alice"], "not_before": "2026-01-01T00:00:00+00:00",
            "not_after": "2027-01-01T00:00:00+00:00", "days_left": 200, "status": "valid", "key_type": "ecdsa-p256",
            "key_bits": 256, "sha256": "AA:BB"}
    s = HTTPSession(lambda: facts(peer_chain=[leaf], verified=True, verify_mode="mtls-required"))
    page = responses(s.receive(GET)[0])[0][2].decode()
    assert "<code>CN=alice</code>" in page and "<code>DNS:alice</code>" in page and "2026-01-01 → 2027-01-01" in page
    assert "verified by this server (mtls-required)" in page
    # Twin: without one the page says so.
    assert "No client certificate" in responses(session().receive(GET)[0])[0][2].decode()


def test_the_connection_facts_are_gathered_once_per_connection():
    calls = []
    s = HTTPSession(lambda: calls.append(1) or facts())
    s.receive(GET + GET)
    s.receive(b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n")
    assert len(calls) == 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600), st.integers(min_value=1, max_value=64))
def test_arbitrary_bytes_give_a_response_or_a_clean_close_never_an_exception(data, step):
    whole_out, whole_close = session().receive(data)
    assert isinstance(whole_out, bytes) and isinstance(whole_close, bool)
    if whole_out:
        assert whole_out.startswith(b"HTTP/1.1 ")
    # Any split of the same bytes gives the same answers (the parser is truly incremental).
    s, out, closed = session(), b"", False
    for i in range(0, len(data), step):
        chunk_out, closed = s.receive(data[i : i + step])
        out += chunk_out
        if closed:
            break
    if not (whole_close and whole_out.count(b"HTTP/1.1 ") >= httpmode.MAX_PIPELINE):
        assert strip_dates(out) == strip_dates(whole_out) and closed == whole_close


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["GET", "HEAD", "POST", "X"]),
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=0, max_size=40),
    st.lists(st.tuples(st.text(min_size=1, max_size=20), st.text(max_size=60)), max_size=8),
)
def test_structured_requests_never_raise_and_always_answer(method, path, headers):
    lines = [f"{method} /{path} HTTP/1.1", "Host: x", *(f"{k}: {v}" for k, v in headers)]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    out, close = session().receive(data)
    if b"Content-Length" not in data and b"content-length" not in data.lower():
        assert out.startswith(b"HTTP/1.1 ")


# --- real TLS on loopback ------------------------------------------------------------------------------------


def tls_connect(port: int, certs) -> ssl.SSLSocket:
    ctx = create_client_context(ca=certs.ca, system_ca=False, alpn=["http/1.1"])
    return ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname="localhost")


def read_response(sock: ssl.SSLSocket, buf: bytearray, *, head_only: bool = False) -> tuple[bytes, dict, bytes]:
    """One response from ``sock`` (``buf`` keeps what arrived after it); a timeout fails the test."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed mid-response: {bytes(buf)!r}"
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {k.decode().lower(): v.decode().strip() for k, _, v in (line.partition(b":") for line in lines[1:])}
    n = 0 if head_only else int(headers["content-length"])
    while len(rest) < n:
        chunk = sock.recv(65536)
        assert chunk
        rest += chunk
    buf[:] = rest[n:]
    return lines[0], headers, rest[:n]


def assert_closed(sock: ssl.SSLSocket) -> None:
    try:
        assert sock.recv(100) == b""
    except (ssl.SSLEOFError, ConnectionResetError):
        pass


def test_two_requests_on_one_tls_connection(serve, certs, events):
    srv = serve(http=True, alpn=["http/1.1"])
    with tls_connect(srv.port, certs) as s:
        assert s.selected_alpn_protocol() == "http/1.1"
        buf = bytearray()
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, headers, page = read_response(s, buf)
        assert status == b"HTTP/1.1 200 OK" and b"<code>TLSv1.3</code>" in page and "connection" not in headers
        s.sendall(b"GET /json HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, headers, body = read_response(s, buf)
        doc = json.loads(body)
        assert doc["server_name"] == "localhost" and doc["alpn"] == "http/1.1" and doc["tls_version"] == "TLS 1.3"
        assert doc["peer"] == "127.0.0.1:%d" % s.getsockname()[1]
        s.sendall(b"GET /json HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        status, headers, _ = read_response(s, buf)
        assert headers["connection"] == "close"
        assert_closed(s)
    assert len(events.of("handshake_ok")) == 1


def test_pipelined_requests_over_tls(serve, certs):
    srv = serve(http=True)
    with tls_connect(srv.port, certs) as s:
        s.sendall(b"GET /json HTTP/1.1\r\nHost: x\r\n\r\nHEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        buf = bytearray()
        assert read_response(s, buf)[1]["content-type"] == "application/json"
        status, headers, _ = read_response(s, buf, head_only=True)
        assert status == b"HTTP/1.1 200 OK" and int(headers["content-length"]) > 1000
        assert read_response(s, buf)[0] == b"HTTP/1.1 404 Not Found"
        assert buf == b""


def test_garbage_over_tls_is_a_400_then_a_close_not_a_crash(serve, certs, events):
    srv = serve(http=True)
    with tls_connect(srv.port, certs) as s:
        s.sendall(b"\x00\xff garbage \r\n\r\n")
        status, headers, _ = read_response(s, bytearray())
        assert status == b"HTTP/1.1 400 Bad Request" and headers["connection"] == "close"
        assert_closed(s)
    events.wait("closed", where=lambda r: r.bytes_in > 0)
    # The server still serves (the autouse fixture fails the test on any asyncio traceback).
    with tls_connect(srv.port, certs) as s:
        s.sendall(GET)
        assert read_response(s, bytearray())[0] == b"HTTP/1.1 200 OK"


def test_a_head_split_across_tls_records_is_one_request(serve, certs):
    srv = serve(http=True)
    with tls_connect(srv.port, certs) as s:
        for i in range(0, len(GET), 5):
            s.sendall(GET[i : i + 5])
        assert read_response(s, bytearray())[0] == b"HTTP/1.1 200 OK"


def test_an_mtls_client_sees_its_certificate_on_the_page(serve, certs):
    srv = serve(http=True, client_ca=certs.ca, mtls="required")
    ctx = create_client_context(ca=certs.ca, system_ca=False, cert=certs.client_cert, key=certs.client_key)
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", srv.port), timeout=5), server_hostname="localhost") as s:
        s.sendall(GET)
        page = read_response(s, bytearray())[2].decode()
    assert "<code>CN=alice</code>" in page and "verified by this server (mtls-required)" in page


def test_the_echo_mode_keeps_no_http_state(serve, certs):
    # Twin of the HTTP tests: the same request in echo mode comes back byte for byte.
    srv = serve()
    with tls_connect(srv.port, certs) as s:
        s.sendall(GET)
        got = b""
        while len(got) < len(GET):
            got += s.recv(1000)
        assert got == GET
        assert srv.call(lambda: [c._http for c in srv.server._conns]) == [None]
