"""Shared fixtures: a throw-away store with a CA and certificates, in-memory handshakes,
and a real tlskit server running in a thread with its own event loop.

Every wait here has a timeout; every server is stopped at teardown.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from tlskit import pki
from tlskit.contexts import create_server_context
from tlskit.server import Server
from tlskit.store import Store

CONTEXT_KEYS = ("client_ca", "mtls", "alpn", "min_tls", "max_tls", "ciphers", "keylog", "sni", "passphrase", "environ", "now")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "interop: runs a real openssl / gnutls / curl peer on loopback")
    config.addinivalue_line("markers", "slow: takes more than a second")


# --- certificates -------------------------------------------------------------------------


@dataclass
class Certs:
    """Paths of the test PKI (one store CA, one foreign CA) and the CA objects to issue more."""

    home: Path
    ca_obj: pki.CA
    other_ca_obj: pki.CA
    ca: Path
    cert: Path
    key: Path
    chain: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    other_cert: Path
    other_key: Path
    other_client_cert: Path
    other_client_key: Path
    elsewhere_cert: Path
    elsewhere_key: Path
    expired_cert: Path
    expired_key: Path
    future_cert: Path
    future_key: Path
    cn_only_cert: Path
    cn_only_key: Path

    def issue(self, directory: Path, names: list[str], *, ca: pki.CA | None = None, **kwargs) -> tuple[Path, Path]:
        """Issue one more certificate into ``directory``; returns (cert, key) paths."""
        issued = pki.issue_cert(ca or self.ca_obj, names, **kwargs)
        return write_pair(directory, names[0].replace("*", "_wildcard"), issued.cert, issued.key)


def write_pair(directory: Path, stem: str, cert: x509.Certificate, key) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    c, k = directory / f"{stem}.crt", directory / f"{stem}.key"
    c.write_bytes(pki.cert_to_pem(cert))
    k.write_bytes(pki.key_to_pem(key))
    k.chmod(0o600)
    return c, k


def _cn_only(ca: pki.CA, name: str):
    """A leaf with a CN and no SAN: what tlskit never issues, built by hand to test the client."""
    key = pki.generate_key()
    now = dt.datetime.now(dt.timezone.utc)
    ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return cert, key


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    root = tmp_path_factory.mktemp("pki")
    home = root / "home"
    store = Store(home)
    ca = pki.create_ca("tlskit test CA")
    store.save_ca(ca)
    leaf = pki.issue_cert(ca, ["localhost", "127.0.0.1", "::1"])
    saved = store.save_cert(leaf)
    paths = saved[0] if isinstance(saved, tuple) else saved
    alice = pki.issue_cert(ca, ["alice"], server=False, client=True)
    saved = store.save_cert(alice)
    alice_paths = saved[0] if isinstance(saved, tuple) else saved
    other = pki.create_ca("someone else's CA")
    other_dir = root / "other"
    other_dir.mkdir()
    (other_dir / "ca.crt").write_bytes(pki.cert_to_pem(other.cert))
    o_leaf = pki.issue_cert(other, ["localhost", "127.0.0.1", "::1"])
    o_client = pki.issue_cert(other, ["mallory"], server=False, client=True)
    extra = root / "extra"
    elsewhere = pki.issue_cert(ca, ["elsewhere.test"])
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=30)
    expired = pki.issue_cert(ca, ["localhost", "127.0.0.1"], not_before=past, days=2)
    future = pki.issue_cert(ca, ["localhost", "127.0.0.1"], not_before=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3))
    cn_cert, cn_key = _cn_only(ca, "localhost")
    oc, ok = write_pair(other_dir, "localhost", o_leaf.cert, o_leaf.key)
    occ, ock = write_pair(other_dir, "mallory", o_client.cert, o_client.key)
    ec, ek = write_pair(extra, "elsewhere", elsewhere.cert, elsewhere.key)
    xc, xk = write_pair(extra, "expired", expired.cert, expired.key)
    fc, fk = write_pair(extra, "future", future.cert, future.key)
    cc, ck = write_pair(extra, "cn-only", cn_cert, cn_key)
    return Certs(
        home=home,
        ca_obj=ca,
        other_ca_obj=other,
        ca=store.ca_cert_path,
        cert=paths.cert,
        key=paths.key,
        chain=paths.chain,
        client_cert=alice_paths.cert,
        client_key=alice_paths.key,
        other_ca=other_dir / "ca.crt",
        other_cert=oc,
        other_key=ok,
        other_client_cert=occ,
        other_client_key=ock,
        elsewhere_cert=ec,
        elsewhere_key=ek,
        expired_cert=xc,
        expired_key=xk,
        future_cert=fc,
        future_key=fk,
        cn_only_cert=cc,
        cn_only_key=ck,
    )


# --- in-memory handshakes (real OpenSSL, no sockets) ----------------------------------------


class HandshakeFailed(Exception):
    def __init__(self, side: str, error: ssl.SSLError, client: ssl.SSLObject, server: ssl.SSLObject) -> None:
        super().__init__(f"{side}: {error}")
        self.side, self.error, self.client, self.server = side, error, client, server


def handshake_in_memory(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, server_hostname: str | None = "localhost"
) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    """Drive a full handshake between two SSLObjects through memory BIOs (at most 10 rounds)."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=server_hostname)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for side, obj in (("client", client), ("server", server)):
            if done[side]:
                continue
            try:
                obj.do_handshake()
                done[side] = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                # Deliver what the failing side wrote (its alert), as a socket would.
                s_in.write(c_out.read())
                c_in.write(s_out.read())
                raise HandshakeFailed(side, exc, client, server) from exc
            s_in.write(c_out.read())
            c_in.write(s_out.read())
        if all(done.values()):
            # Let the client process the server's tickets or a post-handshake alert.
            try:
                client.read(1)
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                raise HandshakeFailed("client", exc, client, server) from exc
            return client, server
    raise AssertionError("handshake did not finish in 10 rounds")


@pytest.fixture
def in_memory() -> Callable[..., tuple[ssl.SSLObject, ssl.SSLObject]]:
    return handshake_in_memory


# --- log events ----------------------------------------------------------------------------


class EventLog(logging.Handler):
    """Collects tlskit's log records (from any thread) and waits for one with a timeout."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._cond = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._cond:
            self.records.append(record)
            self._cond.notify_all()

    def of(self, event: str) -> list[logging.LogRecord]:
        with self._cond:
            return [r for r in self.records if getattr(r, "event", None) == event]

    def wait(self, event: str, timeout: float = 5.0, where: Callable[[logging.LogRecord], bool] | None = None) -> logging.LogRecord:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for r in self.records:
                    if getattr(r, "event", None) == event and (where is None or where(r)):
                        return r
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [getattr(r, "event", None) for r in self.records]
                    raise AssertionError(f"no {event!r} event within {timeout} s; saw {seen}")
                self._cond.wait(left)


@pytest.fixture
def events() -> Iterator[EventLog]:
    handler = EventLog()
    logger = logging.getLogger("tlskit")
    old = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


@pytest.fixture(autouse=True)
def no_tracebacks_from_asyncio() -> Iterator[None]:
    """Fail any test during which asyncio logged an error (an exception escaped a protocol callback)."""
    handler = EventLog()
    handler.setLevel(logging.ERROR)
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    errors = [r.getMessage() for r in handler.records if r.levelno >= logging.ERROR]
    assert not errors, errors


# --- a real server in a thread -------------------------------------------------------------------


class RunningServer:
    """A :class:`tlskit.server.Server` serving in a daemon thread with its own event loop."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.final_stats = None
        self.thread = threading.Thread(target=self._run, name="tlskit-test-server", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        finally:
            self.loop.close()

    async def _main(self) -> None:
        try:
            await self.server.start()
        except BaseException as exc:  # reported to the test thread
            self.error = exc
            self.ready.set()
            return
        self.ready.set()
        self.final_stats = await self.server.serve()

    def start(self, timeout: float = 5.0) -> RunningServer:
        self.thread.start()
        if not self.ready.wait(timeout):
            raise AssertionError(f"server did not start within {timeout} s")
        if self.error is not None:
            self.thread.join(timeout)
            raise self.error
        return self

    @property
    def port(self) -> int:
        return self.server.port

    def call(self, fn: Callable, *args, timeout: float = 5.0):
        """Run ``fn(*args)`` in the server's loop thread and return its result."""

        async def run():
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self.thread.is_alive() and not self.loop.is_closed():
            try:
                self.loop.call_soon_threadsafe(self.server.close)
            except RuntimeError:
                pass  # the loop just finished
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError(f"server did not stop within {timeout} s")


@pytest.fixture
def serve(certs: Certs) -> Iterator[Callable[..., RunningServer]]:
    """``serve(**options)``: start a tlskit server on 127.0.0.1:0 (by default) with the store's localhost certificate.

    Context options (``mtls``, ``client_ca``, ``alpn``, ``sni`` …) go to
    :func:`create_server_context`; the rest to :class:`Server`.
    """
    running: list[RunningServer] = []

    def start(*, cert: Path | None = None, key: Path | None = None, host: str | None = "127.0.0.1", port: int = 0, **options) -> RunningServer:
        ctx_opts = {k: options.pop(k) for k in CONTEXT_KEYS if k in options}
        ctx = create_server_context(cert or certs.cert, key if key is not None or cert is not None else certs.key, **ctx_opts)
        r = RunningServer(Server(ctx, host, port, **options))
        running.append(r)
        return r.start()

    yield start
    for r in running:
        r.stop()
