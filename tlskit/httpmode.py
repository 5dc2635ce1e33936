"""HTTP/1.1 for ``tlskit serve --http``: a page that shows visitors their own TLS connection.

The server hands each decrypted chunk to :meth:`HTTPSession.receive` and writes back
what it returns; this module never touches a socket. It holds:

- :class:`RequestParser`, an incremental HTTP/1.1 request parser with hard limits
  (request line and headers ≤ 16 KiB, ≤ 100 header fields, bodies only by
  Content-Length up to 64 KiB, read and discarded). Anything malformed becomes a
  :class:`Rejection` (400, 413, 414, 431, 501, 505), never an exception.
- :class:`HTTPSession`, one connection: keep-alive (HTTP/1.1 by default,
  ``Connection: close`` honoured, HTTP/1.0 only with ``Connection: keep-alive``),
  pipelined requests answered in order, 405 for methods other than GET/HEAD,
  404 for paths other than ``/`` and ``/json``, HEAD without a body.
- :func:`render_page` / :func:`render_json`: the HTML page (inline CSS, no
  scripts, every value through :func:`html.escape`) and the JSON document.

Anchors: RFC 9112 (HTTP/1.1 message syntax), RFC 9110 (semantics); h11's
``_readers.py`` for what a strict but forgiving parser accepts.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import json
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

from tlskit import __version__

MAX_HEAD = 16 * 1024  # request line + header fields, like h11's default max_incomplete_event_size
MAX_LINE = 8 * 1024  # request line alone (RFC 9112 §3: at least 8000 octets SHOULD be supported)
MAX_HEADERS = 100
MAX_BODY = 64 * 1024  # bodies are read and thrown away: GET/HEAD need none
MAX_PIPELINE = 16  # answers per received chunk; the last then closes (bounds the output of one read)

PATHS = ("/", "/json")

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")  # RFC 9110 §5.6.2 tchar
_TARGET = re.compile(rb"[\x21-\x7e]+\Z")  # visible ASCII, no spaces (RFC 9112 §3.2)
_VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])\Z")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # CTLs other than HTAB (RFC 9110 §5.5)
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_DIGITS = re.compile(r"[0-9]{1,12}\Z")


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed request; header names keep their case, values are latin-1 decoded."""

    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...] = ()
    body_length: int = 0

    @property
    def path(self) -> str:
        """The path without the query, also for an absolute-form target (``https://host/p?q``)."""
        t = self.target
        if "://" in t:
            t = "/" + t.split("://", 1)[1].partition("/")[2]
        return t.split("?", 1)[0].split("#", 1)[0] or "/"

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        n = name.lower()
        return next((v for k, v in self.headers if k.lower() == n), None)

    def tokens(self, name: str) -> set[str]:
        """The comma-separated tokens of every ``name`` header, lower-cased (``Connection``)."""
        n = name.lower()
        return {t.strip().lower() for k, v in self.headers if k.lower() == n for t in v.split(",") if t.strip()}

    @property
    def keep_alive(self) -> bool:
        """Whether the client wants the connection kept open after the response (RFC 9112 §9.3)."""
        conn = self.tokens("connection")
        if "close" in conn:
            return False
        return self.version != "HTTP/1.0" or "keep-alive" in conn

    @property
    def request_line(self) -> str:
        return f"{self.method} {self.target} {self.version}"

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "target": self.target,
            "path": self.path,
            "version": self.version,
            "headers": [[k, v] for k, v in self.headers],
        }


@dataclass(frozen=True, slots=True)
class Rejection:
    """Input the parser refused: answered with ``status`` and then the connection closes."""

    status: int
    reason: str


_CONTINUE = object()  # the parser's signal: a request with Expect: 100-continue waits for its body


class _Reject(Exception):
    """Internal control flow of the parser; always turned into a :class:`Rejection`."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class RequestParser:
    """Incremental HTTP/1.1 request parser: bytes in, complete requests out.

    Example::

        p = RequestParser()
        p.feed(b"GET / HTTP/1.1\\r\\nHo")            # []
        p.feed(b"st: x\\r\\n\\r\\n")                   # [Request(method='GET', ...)]

    After a :class:`Rejection` it returns nothing more: the connection must close.
    """

    __slots__ = ("_buf", "_scanned", "_pending", "_skip", "_failed")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf already searched for the end of the head
        self._pending: Request | None = None  # a request whose body is still arriving
        self._skip = 0  # body bytes still to discard
        self._failed = False

    @property
    def buffered(self) -> int:
        """Bytes held: an incomplete head (at most :data:`MAX_HEAD`) or unread pipelined requests."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview, *, limit: int | None = None) -> list:
        """Add ``data``; return what is now complete, in order.

        Args:
            data: the next bytes from the client.
            limit: stop after this many complete requests (the rest stays buffered).

        Returns:
            :class:`Request` objects, at most one final :class:`Rejection`, and the
            private continue marker (see :class:`HTTPSession`).
        """
        out: list = []
        if self._failed:
            return out
        self._buf += data
        try:
            self._parse(out, limit)
        except _Reject as rej:
            self._failed = True
            self._buf = bytearray()
            out.append(Rejection(rej.status, rej.reason))
        return out

    def _parse(self, out: list, limit: int | None) -> None:
        buf = self._buf
        while limit is None or sum(isinstance(x, Request) for x in out) < limit:
            if self._pending is not None:
                n = min(self._skip, len(buf))
                del buf[:n]
                self._skip -= n
                if self._skip:
                    return
                out.append(self._pending)
                self._pending = None
                continue
            # RFC 9112 §2.2: ignore empty lines before a request line (old clients send CRLF after a body).
            i = 0
            while i < len(buf) and buf[i] in b"\r\n":
                i += 1
            if i:
                del buf[:i]
                self._scanned = 0
            if not buf:
                return
            m = _HEAD_END.search(buf, max(0, self._scanned - 3))
            if m is None:
                self._scanned = len(buf)
                if len(buf) > MAX_HEAD:
                    if buf.find(b"\n", 0, MAX_LINE) < 0:
                        raise _Reject(414, "the request line is too long")
                    raise _Reject(431, f"the request head exceeds {MAX_HEAD // 1024} KiB")
                return
            if m.end() > MAX_HEAD:
                raise _Reject(431, f"the request head exceeds {MAX_HEAD // 1024} KiB")
            head = bytes(buf[: m.start()])
            del buf[: m.end()]
            self._scanned = 0
            req = _parse_head(head)
            if req.body_length:
                self._pending, self._skip = req, req.body_length
                if "100-continue" in req.tokens("expect") and req.version != "HTTP/1.0":
                    out.append(_CONTINUE)
                continue
            out.append(req)


def _parse_head(head: bytes) -> Request:
    """Parse a request line and its header fields (without the blank line that ends them).

    Raises:
        _Reject: malformed input (400), a line too long (414), too many fields (431),
            a transfer coding (501) or an HTTP version other than 1.x (505).
    """
    lines = head.split(b"\n")
    for i, line in enumerate(lines):
        if line.endswith(b"\r"):
            line = lines[i] = line[:-1]
        if b"\r" in line:
            raise _Reject(400, "a bare CR in the request head")  # RFC 9112 §2.2
    first = lines[0]
    if len(first) > MAX_LINE:
        raise _Reject(414, "the request line is too long")
    parts = first.split(b" ")
    if len(parts) != 3 or not all(parts):
        raise _Reject(400, "the request line is not METHOD TARGET HTTP/VERSION")
    method, target, version = parts
    if not _TOKEN.match(method):
        raise _Reject(400, "the method is not a token")
    if not _TARGET.match(target):
        raise _Reject(400, "the request target holds spaces, controls or non-ASCII bytes")
    vm = _VERSION.match(version)
    if vm is None:
        raise _Reject(400, "the request line does not end with HTTP/1.1 or HTTP/1.0")
    if vm.group(1) != b"1":
        raise _Reject(505, f"{version.decode('ascii')} is not supported; this server speaks HTTP/1.1")
    if not (target.startswith(b"/") or target == b"*" or re.match(rb"https?://", target, re.I)):
        raise _Reject(400, "the request target is not a path or an absolute URL")
    fields = lines[1:]
    if len(fields) > MAX_HEADERS:
        raise _Reject(431, f"more than {MAX_HEADERS} header fields")
    headers = []
    for line in fields:
        if line[:1] in (b" ", b"\t"):
            raise _Reject(400, "obsolete line folding in a header field")  # RFC 9112 §5.2
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.match(name):
            # also "Name : v": whitespace before the colon MUST be rejected (RFC 9112 §5.1)
            raise _Reject(400, "a malformed header field")
        value = value.strip(b" \t")
        if _BAD_VALUE.search(value):
            raise _Reject(400, "a control character in a header value")
        headers.append((name.decode("ascii"), value.decode("latin-1")))
    req = Request(method.decode("ascii"), target.decode("ascii"), version.decode("ascii"), tuple(headers))
    names = [k.lower() for k, _ in headers]
    if req.version != "HTTP/1.0" and names.count("host") != 1:
        raise _Reject(400, "an HTTP/1.1 request needs exactly one Host header")  # RFC 9112 §3.2
    if "transfer-encoding" in names:
        # Request bodies are never needed here; refusing codings also closes the
        # Content-Length / Transfer-Encoding smuggling door (RFC 9112 §6.1).
        raise _Reject(501, "Transfer-Encoding in a request is not supported; send Content-Length")
    lengths = {v.strip() for k, val in headers if k.lower() == "content-length" for v in val.split(",")}
    if lengths:
        if len(lengths) != 1 or not _DIGITS.match(next(iter(lengths))):
            raise _Reject(400, "an invalid Content-Length")
        n = int(next(iter(lengths)))
        if n > MAX_BODY:
            raise _Reject(413, f"the request body exceeds {MAX_BODY // 1024} KiB")
        req = Request(req.method, req.target, req.version, req.headers, n)
    return req


# --- what the page shows ------------------------------------------------------------------------


@dataclass
class ConnectionFacts:
    """What the server knows about one TLS connection, gathered once per connection.

    ``report`` is a :class:`tlskit.report.HandshakeReport`; ``server_certificate``
    is :func:`tlskit.pki.describe_cert` of the certificate this connection got
    (after SNI), or None; ``protocol`` is OpenSSL's name (``TLSv1.3``).
    """

    report: Any
    server_certificate: dict | None = None
    protocol: str | None = None


def describe_connection(sslobj: ssl.SSLObject, peer: Any = None) -> ConnectionFacts:
    """The :class:`ConnectionFacts` of a handshaken server-side ``sslobj``."""
    from tlskit import pki
    from tlskit.report import create_report

    report = create_report(sslobj, side="server", peer=peer)
    cert = getattr(sslobj.context, "certificate", None)  # the SNI callback may have switched contexts
    return ConnectionFacts(report, pki.describe_cert(cert) if cert is not None else None, sslobj.version())


def render_json(request: Request, facts: ConnectionFacts) -> dict:
    """The handshake report (``HandshakeReport.to_dict()``) plus ``request`` and ``server_certificate``."""
    doc = facts.report.to_dict()
    doc["request"] = request.to_dict()
    doc["server_certificate"] = facts.server_certificate
    return doc


_STYLE = """
:root{color-scheme:light dark;--bg:#f4f6f9;--fg:#1c2430;--muted:#5d6b7e;--card:#fff;--line:#e2e7ee;
--accent:#0b7a5a;--accent-bg:#e3f5ee;--code:#eef1f5;--warn:#9a5b00}
@media (prefers-color-scheme:dark){:root{--bg:#11161d;--fg:#e4e9f0;--muted:#93a1b3;--card:#19212b;
--line:#2a3441;--accent:#45d19f;--accent-bg:#143328;--code:#222c38;--warn:#f0b35a}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.5 system-ui,-apple-system,"Segoe UI",
Roboto,"Liberation Sans",sans-serif}
main{max-width:1080px;margin:0 auto;padding:32px 24px 48px}
header{margin-bottom:24px}
.brand{margin:0;color:var(--muted);font:600 13px/1 ui-monospace,"DejaVu Sans Mono",monospace;letter-spacing:.04em}
h1{margin:6px 0 10px;font-size:30px;line-height:1.2}
.lead{margin:0;display:flex;flex-wrap:wrap;gap:8px;align-items:center}
.pill{display:inline-block;padding:3px 10px;border-radius:999px;background:var(--code);font-size:13px;font-weight:600}
.pill.ok{background:var(--accent-bg);color:var(--accent)}
.grid{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:16px}
@media (max-width:760px){.grid{grid-template-columns:1fr}}
section{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:18px 20px;min-width:0}
section.wide{grid-column:1/-1}
h2{margin:0 0 12px;font-size:13px;text-transform:uppercase;letter-spacing:.08em;color:var(--muted)}
dl{margin:0;display:grid;grid-template-columns:max-content 1fr;gap:6px 16px}
dt{color:var(--muted)}
dd{margin:0;overflow-wrap:anywhere}
code,pre{font:13px/1.45 ui-monospace,"DejaVu Sans Mono",monospace;background:var(--code);border-radius:6px}
code{padding:1px 6px}
pre{margin:0 0 12px;padding:10px 12px;overflow-x:auto}
table{width:100%;border-collapse:collapse;font-size:14px}
th,td{text-align:left;vertical-align:top;padding:6px 8px;border-top:1px solid var(--line)}
th{width:28%;color:var(--muted);font-weight:500;font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:13px}
td{overflow-wrap:anywhere;font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:13px}
.none{color:var(--muted);font-style:italic}
.warn{color:var(--warn);font-weight:600}
ul.names{margin:0;padding:0;list-style:none;display:flex;flex-wrap:wrap;gap:6px}
footer{margin-top:24px;color:var(--muted);font-size:13px}
a{color:var(--accent)}
"""
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
# No scripts, no frames, no forms, no external anything: the only resource is the inline style (by hash).
PAGE_CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_OTHER_CSP = "default-src 'none'; frame-ancestors 'none'"

TITLE = "tlskit · your TLS connection"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _dl(rows: list[tuple[str, str]]) -> str:
    # values are already-escaped HTML
    return "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def _none(text: str) -> str:
    return f'<span class="none">{_e(text)}</span>'


def _names(sans: list[str]) -> str:
    if not sans:
        return _none("no subject alternative names")
    return '<ul class="names">' + "".join(f"<li><code>{_e(s)}</code></li>" for s in sans) + "</ul>"


def _validity(info: dict) -> str:
    days = info.get("days_left")
    status = info.get("status", "valid")
    span = f"{_e(info['not_before'][:10])} → {_e(info['not_after'][:10])}"
    if status != "valid":
        return f'{span} <span class="warn">{_e(status.upper())}</span>'
    left = f"{days} days left"
    return f'{span} <span class="{"warn" if days is not None and days < 30 else "none"}">({_e(left)})</span>'


def _cert_rows(info: dict) -> list[tuple[str, str]]:
    key = f"{info.get('key_type')}" + (f" ({info['key_bits']} bits)" if info.get("key_bits") else "")
    return [
        ("Names", _names(info.get("sans") or [])),
        ("Subject", f"<code>{_e(info.get('subject') or '(empty)')}</code>"),
        ("Issuer", f"<code>{_e(info.get('issuer'))}</code>"),
        ("Valid", _validity(info)),
        ("Key", _e(key)),
        ("SHA-256", f"<code>{_e(info.get('sha256'))}</code>"),
    ]


def render_page(request: Request, facts: ConnectionFacts, *, now: dt.datetime | None = None) -> str:
    """The HTML page about the visitor's connection; every dynamic value is escaped."""
    r = facts.report
    now = now or dt.datetime.now(dt.timezone.utc)
    bits = f" ({r.cipher_bits} bits)" if r.cipher_bits else ""
    protocol = _e(r.tls_version or "?") + (f" <code>{_e(facts.protocol)}</code>" if facts.protocol else "")
    conn = [
        ("Protocol", protocol),
        ("Cipher", f"<code>{_e(r.cipher or '?')}</code>{_e(bits)}"),
        ("Key exchange", _e(r.group) if r.group else _none("not exposed by Python's ssl module")),
        ("Server name (SNI)", f"<code>{_e(r.server_name)}</code>" if r.server_name else _none("none sent")),
        ("ALPN", f"<code>{_e(r.alpn)}</code>" if r.alpn else _none("none negotiated")),
        ("Resumed session", "yes" if r.session_reused else "no"),
        ("Your address", f"<code>{_e(r.peer or '?')}</code>"),
    ]
    leaf = r.peer_chain[0] if r.peer_chain else None
    if leaf is not None:
        checked = "verified by this server" if r.verified else "not verified"
        client = _dl([*_cert_rows(leaf), ("Chain", _e(f"{len(r.peer_chain)} certificate(s), {checked} ({r.verify_mode})"))])
    else:
        why = "this server does not ask for one (start it with --mtls)" if r.verify_mode == "none" else "none sent"
        client = f"<p>{_none('No client certificate: ' + why)}</p>"
    server = _dl(_cert_rows(facts.server_certificate)) if facts.server_certificate else f"<p>{_none('unknown')}</p>"
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in request.headers)
    headers = f"<table>{rows}</table>" if rows else f"<p>{_none('no header fields')}</p>"
    lead = (
        '<span class="pill ok">✓ handshake OK</span>'
        f'<span class="pill">{_e(r.tls_version or "?")}</span>'
        f'<span class="pill">{_e(r.cipher or "?")}</span>'
        + (f'<span class="pill">SNI {_e(r.server_name)}</span>' if r.server_name else "")
        + (f'<span class="pill">client certificate</span>' if leaf is not None else "")
    )
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f'<title>{_e(TITLE)}</title><link rel="icon" href="data:,">'
        f"<style>{_STYLE}</style></head>\n<body><main>"
        '<header><p class="brand">tlskit serve --http</p>'
        "<h1>Your TLS connection</h1>"
        f'<div class="lead">{lead}</div></header>\n'
        '<div class="grid">'
        f"<section><h2>Connection</h2>{_dl(conn)}</section>"
        f"<section><h2>Server certificate</h2>{server}</section>"
        f'<section class="wide"><h2>Client certificate</h2>{client}</section>'
        f'<section class="wide"><h2>Your request</h2><pre>{_e(request.request_line)}</pre>{headers}</section>'
        "</div>\n"
        f'<footer>The same as JSON: <a href="/json">/json</a> · tlskit {_e(__version__)} · '
        f"{_e(now.strftime('%Y-%m-%d %H:%M:%S'))} UTC</footer>"
        "</main></body></html>\n"
    )


# --- responses ------------------------------------------------------------------------------


def _security_headers(csp: str) -> str:
    # No Strict-Transport-Security: HSTS on "localhost" would pin every port of it to https in the browser.
    return (
        "Cache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        f"Content-Security-Policy: {csp}\r\n"
        "X-Frame-Options: DENY\r\n"
        "Referrer-Policy: no-referrer\r\n"
        "Cross-Origin-Resource-Policy: same-origin\r\n"
        "Cross-Origin-Opener-Policy: same-origin\r\n"
    )


def render_response(
    status: int,
    body: bytes,
    *,
    content_type: str = "text/plain; charset=utf-8",
    head_only: bool = False,
    close: bool = False,
    keep_alive_header: bool = False,
    csp: str = _OTHER_CSP,
    extra: str = "",
) -> bytes:
    """A complete HTTP/1.1 response; with ``head_only`` the headers of it (HEAD)."""
    phrase = HTTPStatus(status).phrase
    conn = "Connection: close\r\n" if close else ("Connection: keep-alive\r\n" if keep_alive_header else "")
    head = (
        f"HTTP/1.1 {status} {phrase}\r\n"
        f"Server: tlskit/{__version__}\r\n"
        f"Date: {formatdate(usegmt=True)}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"{_security_headers(csp)}{extra}{conn}\r\n"
    ).encode("latin-1")
    return head if head_only else head + body


class HTTPSession:
    """The HTTP side of one TLS connection.

    Example::

        session = create_session(sslobj, peer)
        out, close = session.receive(plaintext)   # write ``out``; close after it if ``close``
    """

    __slots__ = ("_parser", "_describe", "_facts", "requests")

    def __init__(self, describe: Callable[[], ConnectionFacts]) -> None:
        """Args:
        describe: returns the connection's :class:`ConnectionFacts`; called once, at the first request.
        """
        self._parser = RequestParser()
        self._describe = describe
        self._facts: ConnectionFacts | None = None
        self.requests = 0

    @property
    def buffered(self) -> int:
        """Bytes of unprocessed input held for this connection."""
        return self._parser.buffered

    def facts(self) -> ConnectionFacts:
        if self._facts is None:
            self._facts = self._describe()
        return self._facts

    def receive(self, data: bytes | bytearray | memoryview) -> tuple[bytes, bool]:
        """Feed decrypted bytes from the client.

        Returns:
            ``(reply, close)``: the bytes to send (possibly empty), and whether to close
            the connection once they are sent.
        """
        items = self._parser.feed(data, limit=MAX_PIPELINE)
        answered = sum(isinstance(x, Request) for x in items)
        # A client pipelining more than MAX_PIPELINE requests in one chunk gets that many
        # answers and a close (RFC 9112 §9.3.2 lets a client retry the rest): one read
        # must not turn into megabytes of output.
        saturated = answered >= MAX_PIPELINE
        out: list[bytes] = []
        n = 0
        for item in items:
            if item is _CONTINUE:
                out.append(b"HTTP/1.1 100 Continue\r\n\r\n")
                continue
            if isinstance(item, Rejection):
                out.append(render_response(item.status, (item.reason + "\n").encode(), close=True))
                return b"".join(out), True
            n += 1
            self.requests += 1
            close = not item.keep_alive or (saturated and n == answered)
            out.append(self.respond(item, close=close))
            if close:
                return b"".join(out), True
        return b"".join(out), False

    def respond(self, request: Request, *, close: bool = False) -> bytes:
        """The response to one complete request."""
        head_only = request.method == "HEAD"
        ka = not close and request.version == "HTTP/1.0"
        if request.method not in ("GET", "HEAD"):
            body = f"{request.method} is not allowed here; use GET or HEAD\n".encode()
            return render_response(405, body, head_only=False, close=close, keep_alive_header=ka, extra="Allow: GET, HEAD\r\n")
        path = request.path
        if path == "/":
            page = render_page(request, self.facts()).encode()
            return render_response(200, page, content_type="text/html; charset=utf-8", head_only=head_only,
                                   close=close, keep_alive_header=ka, csp=PAGE_CSP)
        if path == "/json":
            doc = json.dumps(render_json(request, self.facts()), indent=2, default=str) + "\n"
            return render_response(200, doc.encode(), content_type="application/json", head_only=head_only,
                                   close=close, keep_alive_header=ka)
        body = b"not found; this server has / (a page about your connection) and /json\n"
        return render_response(404, body, head_only=head_only, close=close, keep_alive_header=ka)


def create_session(sslobj: ssl.SSLObject, peer: Any = None) -> HTTPSession:
    """An :class:`HTTPSession` whose page describes the handshaken ``sslobj``."""
    return HTTPSession(lambda: describe_connection(sslobj, peer))


__all__ = [
    "MAX_BODY",
    "MAX_HEAD",
    "MAX_HEADERS",
    "ConnectionFacts",
    "HTTPSession",
    "Rejection",
    "Request",
    "RequestParser",
    "create_session",
    "describe_connection",
    "render_json",
    "render_page",
    "render_response",
]
