"""The TLS client: connect, handshake, report, and optionally send and read a reply.

It is synchronous on purpose (a blocking socket and an ``SSLObject`` over memory
BIOs): a one-shot ``tlskit connect`` should not pay for an event loop, and the
BIOs let us see the peer's first raw bytes, which is how "the peer does not speak
TLS" gets recognised.

With TLS 1.3 the server checks our client certificate *after* our side of the
handshake is done, so a rejection arrives as an alert on the first read. We
therefore always read briefly after a TLS 1.3 handshake, even with nothing to
send, until the server's session ticket (sent only once it accepted us) or its
alert arrives, or a short wait passes.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from tlskit.contexts import PathLike, create_client_context
from tlskit.report import HandshakeReport, create_report, format_peer, peer_chain

log = logging.getLogger(__name__)

DEFAULT_PORT = 8443
RECV_SIZE = 64 * 1024
MAX_REPLY = 16 * 1024 * 1024
# After a TLS 1.3 handshake: wait at least this long for a rejection (or the ticket).
POST_HANDSHAKE_MIN = 0.25


@dataclass
class ConnectResult:
    """What :func:`connect` found.

    Attributes:
        report: the handshake facts.
        reply: the bytes the server sent (after ``send``, or unprompted), or None.
        expiry_warning: set when the server's certificate expires within ``warn_days``.
    """

    report: HandshakeReport
    reply: bytes | None = None
    expiry_warning: str | None = None

    def to_dict(self) -> dict:
        out = self.report.to_dict()
        out["reply"] = None if self.reply is None else self.reply.decode("utf-8", "replace")
        out["expiry_warning"] = self.expiry_warning
        return out


def parse_address(target: str | None, default_port: int = DEFAULT_PORT, default_host: str = "localhost") -> tuple[str, int]:
    """``HOST[:PORT]``, ``[IPv6]:PORT``, a bare IPv6 literal or ``https://host:port/`` as ``(host, port)``.

    Raises:
        ValueError: the port is not a number in 1–65535, or the host is empty.
    """
    text = (target or "").strip()
    if not text:
        return default_host, default_port
    if "://" in text:
        parts = urlsplit(text)
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"bad port in {target!r}") from exc
        if not parts.hostname:
            raise ValueError(f"no host in {target!r}")
        return parts.hostname, port or (443 if parts.scheme == "https" else default_port)
    host, port_text = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"missing ']' in {target!r}")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"unexpected {rest!r} after ']' in {target!r}")
            port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif text.count(":") > 1:
        try:
            ipaddress.IPv6Address(text)
        except ValueError as exc:
            raise ValueError(f"{target!r}: write an IPv6 address with a port as [ADDR]:PORT") from exc
    if not host:
        host = default_host
    if port_text == "":
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port {port_text!r} in {target!r}: expected 1–65535")
    return host, int(port_text)


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("timed out")
    return left


def _host_arg(host: str) -> str | bytes:
    """``host`` for getaddrinfo: bytes when plain ASCII with sane labels, else the str itself.

    getaddrinfo encodes every str with Python's "idna" codec, whose import (and stringprep's)
    costs more than the connect on loopback; an ASCII name or address needs no encoding.
    Anything else keeps the codec's checks (its UnicodeError is explained as a bad name).
    """
    if host.isascii() and all(0 < len(label) < 64 for label in host.rstrip(".").split(".")):
        return host.encode("ascii")
    return host


def _open(host: str, port: int, timeout: float, deadline: float) -> socket.socket:
    try:
        infos = socket.getaddrinfo(_host_arg(host), port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        # UnicodeError: the idna codec refuses the name (an empty or a 64+ character label).
        from tlskit import diagnose

        raise diagnose.explain_connect_error(exc, host=host, port=port) from exc
    errors: list[OSError] = []
    for family, type_, proto, _, addr in infos:
        sock = socket.socket(family, type_, proto)
        try:
            sock.settimeout(_remaining(deadline))
            sock.connect(addr)
        except OSError as exc:
            sock.close()
            errors.append(exc)
            if isinstance(exc, TimeoutError):
                break
            continue
        # Small writes (the hello, a short --send) must not wait for Nagle.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    # Prefer the most telling failure: a timeout, else a refusal, else the last one.
    exc = next((e for e in errors if isinstance(e, TimeoutError)), None) or next(
        (e for e in errors if isinstance(e, ConnectionRefusedError)), errors[-1] if errors else TimeoutError("timed out")
    )
    from tlskit import diagnose

    raise diagnose.explain_connect_error(exc, host=host, port=port, timeout=timeout) from exc


class _Session:
    """One connection's socket, BIOs and SSLObject, with deadline-bounded I/O."""

    def __init__(self, sock: socket.socket, tls: ssl.SSLObject, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO) -> None:
        self.sock, self.tls, self.incoming, self.outgoing = sock, tls, incoming, outgoing
        self.raw = b""
        self.eof = False

    def flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def flush_quietly(self) -> None:
        try:
            self.sock.settimeout(0.5)
            self.flush()
        except OSError:
            pass

    def fill(self, until: float) -> bool:
        """Receive once into the incoming BIO; False when ``until`` passed first."""
        left = until - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(RECV_SIZE)
        except TimeoutError:
            return False
        if len(self.raw) < 64:
            self.raw += data[: 64 - len(self.raw)]
        if data:
            self.incoming.write(data)
        else:
            self.eof = True
            self.incoming.write_eof()
        return True

    def handshake(self, deadline: float) -> None:
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                if not self.fill(deadline):
                    raise TimeoutError("handshake timed out") from None
        self.flush()

    def read(self, deadline: float, *, quiet: float | None, limit: int, stop=None) -> tuple[bytes, str]:
        """Read application data until EOF, ``deadline``, ``quiet`` s without data, or ``stop()``.

        Returns:
            The bytes and why reading stopped: ``close_notify``, ``eof``, ``quiet``,
            ``deadline``, ``limit`` or ``stop``.
        """
        out = bytearray()
        last = None
        while True:
            try:
                chunk = self.tls.read(RECV_SIZE)
            except ssl.SSLWantReadError:
                chunk = None
            except ssl.SSLZeroReturnError:
                return bytes(out), "close_notify"
            except ssl.SSLEOFError:
                return bytes(out), "eof"
            if chunk == b"":
                return bytes(out), "close_notify"  # read() returns b"" after the peer's close_notify
            if chunk:
                out += chunk
                last = time.monotonic()
                if len(out) >= limit:
                    return bytes(out), "limit"
                continue
            if self.eof:
                return bytes(out), "eof"
            if stop is not None and stop():
                return bytes(out), "stop"
            until = deadline
            if quiet is not None and last is not None:
                until = min(until, last + quiet)
            if not self.fill(until):
                return bytes(out), "quiet" if until < deadline else "deadline"

    def close(self) -> None:
        try:
            self.tls.unwrap()
        except (ssl.SSLError, ValueError):
            pass  # SSLWantReadError: our close_notify is written; we do not wait for theirs
        self.flush_quietly()


def _has_ticket(tls: ssl.SSLObject) -> bool:
    try:
        session = tls.session
    except (ValueError, ssl.SSLError):
        return False
    return bool(session is not None and session.has_ticket)


def connect(
    host: str = "localhost",
    port: int = DEFAULT_PORT,
    *,
    context: ssl.SSLContext | None = None,
    ca: PathLike | Sequence[PathLike] | None = None,
    system_ca: bool = True,
    cert: PathLike | None = None,
    key: PathLike | None = None,
    alpn: Iterable[str] = (),
    min_tls: str | None = "1.2",
    max_tls: str | None = None,
    ciphers: str | None = None,
    keylog: PathLike | None = None,
    insecure: bool = False,
    passphrase: bytes | None = None,
    servername: str | None = None,
    timeout: float = 10.0,
    send: bytes | None = None,
    quiet: float = 0.5,
    warn_days: int = 0,
    max_reply: int = MAX_REPLY,
    now: dt.datetime | None = None,
) -> ConnectResult:
    """Connect to ``host:port``, handshake, report; send ``send`` and read the reply.

    Args:
        host: a name or an IP address (IPv6 without brackets; see :func:`parse_address`).
        port: the TCP port.
        context: a context from :func:`tlskit.contexts.create_client_context`; when
            None, one is built from ``ca`` … ``passphrase`` (same meaning as there).
        servername: the name sent as SNI and checked against the certificate
            (default ``host``; an IP address is checked against the IP SANs and sends no SNI).
        timeout: bounds the whole exchange: connect, handshake and reading.
        send: bytes to send after the handshake; the reply is read until the server
            closes, ``quiet`` seconds pass without data, or ``timeout``.
        quiet: seconds of silence that end the reply.
        warn_days: set ``expiry_warning`` when the certificate expires within this many days.
        max_reply: stop reading after this many bytes.
        now: the time for date checks (aware), for tests.

    Returns:
        A :class:`ConnectResult`.

    Raises:
        NetworkError: DNS failure, refused, timed out (exit 4).
        VerificationError: the server's certificate did not verify (exit 5).
        TLSError: any other handshake failure, including a client certificate the
            server rejected after a TLS 1.3 handshake (exit 5). Each error has
            ``code``/``alert`` attributes and the partial report as ``report``.
        ConfigError, PKIError: from building the context.
    """
    if context is None:
        context = create_client_context(
            ca=ca, system_ca=system_ca, cert=cert, key=key, alpn=alpn, min_tls=min_tls, max_tls=max_tls,
            ciphers=ciphers, keylog=keylog, insecure=insecure, passphrase=passphrase, now=now,
        )
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    name = servername or host
    deadline = time.monotonic() + timeout
    sock = _open(host, port, timeout, deadline)
    try:
        peer = format_peer(sock.getpeername())
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, outgoing, server_hostname=name)
        session = _Session(sock, tls, incoming, outgoing)
        explain = _explainer(context, host, port, servername, session, timeout, now)
        t0 = time.perf_counter()
        try:
            session.handshake(deadline)
        except (ssl.SSLError, OSError) as exc:
            if isinstance(exc, ssl.SSLError):
                session.flush_quietly()  # our alert: the server's log then says why
            raise explain(exc, after=False) from exc
        handshake_ms = (time.perf_counter() - t0) * 1000.0
        report = _report(tls, context, peer, handshake_ms, name, now)
        reply = bytearray()
        try:
            if tls.version() == "TLSv1.3":
                # The server judges our certificate after our Finished: give it the time
                # to answer (its ticket means yes, an alert means no) before we say "ok".
                wait = min(max(POST_HANDSHAKE_MIN, 4 * handshake_ms / 1000.0), max(0.0, deadline - time.monotonic()))
                data, why = session.read(time.monotonic() + wait, quiet=None, limit=max_reply, stop=lambda: _has_ticket(tls))
                reply += data
                if why == "eof" and not data and send is None:
                    # Gone without a word right after our Finished: a rejection by a
                    # server that sends no alert (asyncio's TLS transport does this).
                    raise ssl.SSLEOFError(ssl.SSL_ERROR_EOF, "EOF right after the handshake")
            if send:
                tls.write(send)
                session.flush()
                data, _ = session.read(deadline, quiet=quiet, limit=max_reply - len(reply))
                reply += data
        except (ssl.SSLError, OSError) as exc:
            err = explain(exc, after=True)
            err.report = report  # type: ignore[attr-defined]
            raise err from exc
        session.close()
    finally:
        sock.close()
    result = ConnectResult(report, bytes(reply) if (send is not None or reply) else None)
    result.expiry_warning = _expiry_warning(report, warn_days, name)
    return result


def _explainer(context, host, port, servername, session: _Session, timeout, now):
    def explain(exc: BaseException, *, after: bool):
        from tlskit import diagnose  # only on failure: a successful connect never pays for it

        chain = peer_chain(session.tls, verified=False)
        err = diagnose.explain_client_failure(
            exc,
            host=host,
            port=port,
            server_name=servername,
            chain=chain,
            raw=session.raw,
            sent_certificate=getattr(context, "certificate", None) is not None,
            trust_files=getattr(context, "trust_files", ()),
            system_ca=getattr(context, "system_ca", False),
            min_tls=_version(context.minimum_version),
            max_tls=_version(context.maximum_version),
            alpn=getattr(context, "alpn", ()),
            after_handshake=after,
            timeout=timeout,
            now=now,
        )
        if chain and not hasattr(err, "report"):
            rep = HandshakeReport(side="client", peer=None, server_name=servername or host, verified=False,
                                  verify_error=err.message, verify_mode="verified")
            from tlskit import pki

            rep.peer_chain = [pki.describe_cert(c, now) for c in chain]
            err.report = rep  # type: ignore[attr-defined]
        return err

    return explain


def _version(v: ssl.TLSVersion) -> str | None:
    return {ssl.TLSVersion.TLSv1_2: "1.2", ssl.TLSVersion.TLSv1_3: "1.3"}.get(v)


def _report(tls: ssl.SSLObject, context: ssl.SSLContext, peer: str, ms: float, name: str, now) -> HandshakeReport:
    if context.verify_mode != ssl.CERT_NONE:
        report = create_report(tls, side="client", peer=peer, handshake_ms=ms, verified=True, now=now)
    else:
        report = _insecure_report(tls, context, peer, ms, name, now)
    keylog = getattr(context, "keylog_path", None)
    if keylog is not None:
        report.warnings.append(f"session keys are written to {keylog}: anyone who reads it can decrypt this session")
    return report


def _insecure_report(tls: ssl.SSLObject, context: ssl.SSLContext, peer: str, ms: float, name: str, now) -> HandshakeReport:
    # --insecure: nothing was checked during the handshake; check now, and say what
    # would have failed, with the same trust the strict path would have used.
    from tlskit import diagnose, verify

    chain = peer_chain(tls, verified=False)
    roots = diagnose.trust_roots(getattr(context, "trust_files", ()), getattr(context, "system_ca", False))
    reasons: list[str]
    if not chain:
        reasons = ["the server sent no certificate"]
    else:
        result = verify.verify_chain(chain, roots, host=name, purpose="server", now=now)
        reasons = [] if result.ok else result.reasons
    report = create_report(
        tls,
        side="client",
        peer=peer,
        handshake_ms=ms,
        verified=not reasons,
        verify_error="; ".join(reasons) or None,
        verify_mode="insecure",
        chain=chain,
        now=now,
    )
    if reasons:
        report.warnings.append(f"verification is off (--insecure); it would have failed: {reasons[0]}")
    else:
        report.warnings.append("verification is off (--insecure); the chain would have verified")
    return report


def _expiry_warning(report: HandshakeReport, warn_days: int, name: str) -> str | None:
    leaf = report.peer_leaf
    if not warn_days or leaf is None:
        return None
    days = leaf["days_left"]
    if days >= warn_days:
        return None
    return f"the certificate of {name} expires in {days} days ({leaf['not_after'][:10]}), within --warn-days {warn_days}"


__all__ = ["ConnectResult", "DEFAULT_PORT", "connect", "parse_address"]
