"""What a finished handshake established, filled the same way on both sides.

Every fact comes from the ``SSLObject``: ``version()``, ``cipher()``,
``selected_alpn_protocol()``, ``session_reused`` and the peer's chain. The server
learns the SNI name only through its context's ``sni_callback``
(:func:`tlskit.contexts.requested_server_name`).
"""

from __future__ import annotations

import datetime as dt
import ssl
import sys
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from tlskit import pki
from tlskit.contexts import requested_server_name

# ssl's DER encoding constant for _ssl.Certificate.public_bytes (3.11/3.12 chains).
_ENCODING_DER = 2


def peer_chain(sslobj: ssl.SSLObject | ssl.SSLSocket, *, verified: bool = True) -> list[x509.Certificate]:
    """The peer's certificate chain, leaf first.

    The verified chain (which ends at our trust anchor) when ``verified`` and it is
    available, else the chain as the peer sent it. The methods are public from
    Python 3.13; on 3.11/3.12 the same methods live on the private ``_sslobj``.
    After a failed verification the unverified chain is still there, which is what
    lets a diagnosis name the certificate's SANs and issuer.
    """
    if sys.version_info >= (3, 13):
        target: Any = sslobj
    else:
        target = getattr(sslobj, "_sslobj", None) or sslobj
    chain: list[Any] = []
    try:
        if verified:
            chain = list(target.get_verified_chain() or [])
        if not chain:
            chain = list(target.get_unverified_chain() or [])
    except (AttributeError, ValueError, ssl.SSLError):
        return []
    out = []
    for item in chain:
        if item is None:
            continue  # 3.11's server side prepends the peer's certificate even when there is none
        der = item if isinstance(item, bytes) else item.public_bytes(_ENCODING_DER)
        out.append(x509.load_der_x509_certificate(der))
    return out


def format_peer(address: Any) -> str | None:
    """``('::1', 8443, 0, 0)`` → ``[::1]:8443``; ``('127.0.0.1', 5)`` → ``127.0.0.1:5``."""
    if not address:
        return None
    if isinstance(address, (tuple, list)) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)


@dataclass
class HandshakeReport:
    """The facts of one TLS handshake, as seen from ``side``.

    ``group`` (the key-exchange group) is None: Python 3.11's ``ssl`` does not expose
    it, and we do not guess. ``verified`` is True when the peer's chain was checked
    and accepted, False when it failed (only possible with ``--insecure`` on the
    client, or for a report attached to a failure), None when nothing was checked
    (a server without mTLS). ``verify_error`` says what failed.
    """

    side: str
    peer: str | None = None
    tls_version: str | None = None
    cipher: str | None = None
    cipher_bits: int | None = None
    group: str | None = None
    alpn: str | None = None
    server_name: str | None = None
    session_reused: bool = False
    peer_chain: list[dict] = field(default_factory=list)
    verified: bool | None = None
    verify_error: str | None = None
    verify_mode: str = "none"
    handshake_ms: float | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def peer_subject(self) -> str | None:
        """The subject of the peer's leaf certificate (the client's under mTLS)."""
        return self.peer_chain[0]["subject"] if self.peer_chain else None

    @property
    def peer_leaf(self) -> dict | None:
        return self.peer_chain[0] if self.peer_chain else None

    def to_dict(self) -> dict:
        """A JSON-ready dict: ``json.dumps(report.to_dict())`` works as is."""
        return {
            "side": self.side,
            "peer": self.peer,
            "tls_version": self.tls_version,
            "cipher": self.cipher,
            "cipher_bits": self.cipher_bits,
            "group": self.group,
            "alpn": self.alpn,
            "server_name": self.server_name,
            "session_reused": self.session_reused,
            "verified": self.verified,
            "verify_error": self.verify_error,
            "verify_mode": self.verify_mode,
            "handshake_ms": None if self.handshake_ms is None else round(self.handshake_ms, 3),
            "peer_chain": self.peer_chain,
            "warnings": list(self.warnings),
        }


def _version_name(raw: str | None) -> str | None:
    # "TLSv1.3" → "TLS 1.3", the way people write it.
    if not raw:
        return None
    return raw.replace("TLSv", "TLS ") if raw.startswith("TLSv") else raw


def create_report(
    sslobj: ssl.SSLObject | ssl.SSLSocket,
    *,
    side: str,
    peer: Any = None,
    handshake_ms: float | None = None,
    verified: bool | None = None,
    verify_error: str | None = None,
    verify_mode: str | None = None,
    chain: list[x509.Certificate] | None = None,
    now: dt.datetime | None = None,
) -> HandshakeReport:
    """Fill a :class:`HandshakeReport` from a handshaken ``sslobj``.

    Args:
        sslobj: the connection, after ``do_handshake()`` succeeded.
        side: ``"client"`` or ``"server"``.
        peer: the peer's socket address (tuple) or a preformatted string.
        handshake_ms: how long the handshake took.
        verified: the verification result; default: True when the context required
            and checked a peer certificate, None when it checked nothing.
        verify_error: what failed, in plain words.
        verify_mode: how the peer was checked (``verified``, ``insecure``, ``mtls-required`` …).
        chain: the peer chain, when already fetched with :func:`peer_chain`.
        now: for the chain's days-left figures (aware), for tests.
    """
    cipher = sslobj.cipher()
    certs = chain if chain is not None else peer_chain(sslobj, verified=sslobj.context.verify_mode != ssl.CERT_NONE)
    if side == "client":
        server_name = sslobj.server_hostname
    else:
        server_name = requested_server_name(sslobj)  # type: ignore[arg-type]
    mode = sslobj.context.verify_mode
    if verified is None and mode != ssl.CERT_NONE and certs:
        verified = True
    if verify_mode is None:
        if side == "client":
            verify_mode = "verified" if mode != ssl.CERT_NONE else "insecure"
        else:
            verify_mode = {ssl.CERT_NONE: "none", ssl.CERT_OPTIONAL: "mtls-optional", ssl.CERT_REQUIRED: "mtls-required"}[mode]
    # Python 3.15 adds SSLObject.group(); use it when it exists, never guess it.
    group_fn = getattr(sslobj, "group", None)
    group = group_fn() if callable(group_fn) else None
    return HandshakeReport(
        side=side,
        peer=peer if isinstance(peer, str) or peer is None else format_peer(peer),
        tls_version=_version_name(sslobj.version()),
        cipher=cipher[0] if cipher else None,
        cipher_bits=cipher[2] if cipher else None,
        group=group,
        alpn=sslobj.selected_alpn_protocol(),
        server_name=server_name,
        session_reused=bool(sslobj.session_reused),
        peer_chain=[pki.describe_cert(c, now) for c in certs],
        verified=verified,
        verify_error=verify_error,
        verify_mode=verify_mode,
        handshake_ms=handshake_ms,
    )



__all__ = ["HandshakeReport", "create_report", "format_peer", "peer_chain"]
