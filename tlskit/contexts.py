"""The one place an :class:`ssl.SSLContext` is configured, for the server and the client.

Both builders take plain values (file paths, version strings, lists) and check
every file before a socket exists: a missing or unreadable file, a file that is
not PEM, a key that does not belong to its certificate, or a certificate outside
its validity each raise a :class:`~tlskit.errors.TlskitError` that names the file
and the fix. What they configure is remembered on the returned
:class:`TLSContext` (a plain ``ssl.SSLContext`` subclass) so that the server's
log and the client's diagnoses can say what was trusted and served.

Anchors: CPython ``Lib/ssl.py`` (``create_default_context``), urllib3
``util/ssl_.py`` (``create_urllib3_context``), hypercorn ``config.py``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import ssl
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Union

from cryptography import x509

from tlskit import pki
from tlskit.errors import ConfigError, PKIError

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
VERSION_NAMES = {ssl.TLSVersion.TLSv1_2: "1.2", ssl.TLSVersion.TLSv1_3: "1.3"}
MTLS_MODES = ("off", "optional", "required")

# TLS 1.2 suites for the server: forward secrecy (ECDHE) with an AEAD cipher only.
# No CBC (Lucky13, padding oracles), no static RSA key exchange (no forward secrecy,
# ROBOT), no finite-field DHE (weak groups, Raccoon, slow). TLS 1.3 suites are all
# AEAD already and Python 3.11's ssl has no API to change them.
SERVER_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"

_KEY_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.+?-----END \1PRIVATE KEY-----", re.S)
_CERT_MARK = b"-----BEGIN CERTIFICATE-----"


class TLSContext(ssl.SSLContext):
    """An :class:`ssl.SSLContext` that remembers what tlskit configured in it.

    Attributes:
        side: ``"server"`` or ``"client"``.
        certificate: the leaf certificate it presents (server) or sends (client), or None.
        certificate_path: the file it came from.
        mtls: the server's client-certificate mode: ``off``, ``optional`` or ``required``.
        client_ca_path: the CA file that client certificates must chain to (server).
        trust_files: the CA files the client trusts.
        system_ca: whether the client also trusts the system store.
        insecure: verification is off (client ``--insecure``).
        keylog_path: where session keys are written, or None.
        keylog_source: ``"flag"`` or ``"env"`` (``SSLKEYLOGFILE``).
        sni_certificates: server name → the certificate served for it.
        alpn: the ALPN protocols offered or accepted.
    """

    side: str = "client"
    certificate: x509.Certificate | None = None
    certificate_path: Path | None = None
    mtls: str = "off"
    client_ca_path: Path | None = None
    trust_files: tuple[Path, ...] = ()
    system_ca: bool = False
    insecure: bool = False
    keylog_path: Path | None = None
    keylog_source: str | None = None
    sni_certificates: dict[str, x509.Certificate]
    alpn: tuple[str, ...] = ()


# --- parsing plain values ---------------------------------------------------------


def parse_tls_version(value: str | None, *, what: str = "min_tls") -> ssl.TLSVersion | None:
    """``"1.2"`` / ``"1.3"`` (also ``TLSv1.2``, ``tls1.3``) as :class:`ssl.TLSVersion`; empty is None.

    Raises:
        ConfigError: any other value, including 1.0 and 1.1.
    """
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip().lower().removeprefix("tlsv").removeprefix("tls").strip()
    if text in TLS_VERSIONS:
        return TLS_VERSIONS[text]
    if text in ("1", "1.0", "1.1", "ssl3", "sslv3", "3"):
        raise ConfigError(
            f"{what} {value!r} is not supported",
            hint="TLS 1.0 and 1.1 are deprecated by RFC 8996; use 1.2 or 1.3",
        )
    raise ConfigError(f"{what} {value!r} is not a TLS version", hint="use 1.2 or 1.3")


def _set_versions(ctx: ssl.SSLContext, min_tls: str | None, max_tls: str | None) -> None:
    # TLS 1.2 floor: 1.0 and 1.1 are deprecated by RFC 8996 (and OpenSSL 3 refuses them at SECLEVEL 2).
    low = parse_tls_version(min_tls, what="min_tls") or ssl.TLSVersion.TLSv1_2
    high = parse_tls_version(max_tls, what="max_tls")
    if high is not None and high < low:
        raise ConfigError(
            f"max_tls {VERSION_NAMES[high]} is below min_tls {VERSION_NAMES[low]}",
            hint="raise --max-tls or lower --min-tls",
        )
    ctx.minimum_version = low
    if high is not None:
        ctx.maximum_version = high


def _set_alpn(ctx: TLSContext, alpn: Iterable[str]) -> None:
    protocols = [p.strip() for p in alpn if p and p.strip()]
    for p in protocols:
        if len(p.encode()) > 255:
            raise ConfigError(f"ALPN protocol {p[:20]!r}… is longer than 255 bytes")
    if protocols:
        ctx.set_alpn_protocols(protocols)
    ctx.alpn = tuple(protocols)


def _set_ciphers(ctx: ssl.SSLContext, ciphers: str) -> None:
    try:
        ctx.set_ciphers(ciphers)
    except ssl.SSLError as exc:
        raise ConfigError(
            f"no cipher matches {ciphers!r}",
            hint="use an OpenSSL cipher string such as ECDHE+AESGCM (it applies to TLS 1.2)",
        ) from exc


# --- pre-flight checks: before any socket opens --------------------------------------


def _read(path: PathLike, what: str) -> tuple[Path, bytes]:
    p = Path(path).expanduser()
    try:
        return p, p.read_bytes()
    except FileNotFoundError as exc:
        raise PKIError(f"{what} {p} does not exist", hint="check the path, or list the store with: tlskit cert list") from exc
    except IsADirectoryError as exc:
        raise PKIError(f"{what} {p} is a directory, not a file") from exc
    except PermissionError as exc:
        raise PKIError(f"cannot read {what} {p}: permission denied", hint="check the file's owner and mode") from exc
    except OSError as exc:
        raise PKIError(f"cannot read {what} {p}: {exc.strerror}") from exc


def _parse_certs(p: Path, data: bytes, what: str) -> list[x509.Certificate]:
    if _CERT_MARK not in data:
        if data[:1] == b"\x30":
            raise PKIError(
                f"{what} {p} is DER, not PEM",
                hint=f"convert it: openssl x509 -inform der -in {p} -out {p.with_suffix('.pem')}",
            )
        if b"PRIVATE KEY-----" in data:
            raise PKIError(f"{what} {p} holds a private key, not a certificate", hint="did you swap --cert and --key?")
        raise PKIError(f"{what} {p} is not a PEM certificate", hint="expected a -----BEGIN CERTIFICATE----- block")
    import warnings

    try:
        with warnings.catch_warnings():
            # System bundles hold old roots with non-positive serials; that is not the user's problem.
            warnings.simplefilter("ignore")
            return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise PKIError(f"{what} {p} holds a damaged PEM certificate", hint="issue it again") from exc


def _check_validity(cert: x509.Certificate, p: Path, what: str, now: dt.datetime) -> None:
    names = [n.split(":", 1)[1] for n in pki.sans_of(cert) if n.startswith(("DNS:", "IP:"))]
    reissue = f"tlskit cert issue {' '.join(names) or 'NAME'} --force"
    if now < cert.not_valid_before_utc:
        raise PKIError(
            f"{what} {p} is not valid until {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
            hint=f"check this machine's clock, or issue a new one: {reissue}",
        )
    if now > cert.not_valid_after_utc:
        days = (now - cert.not_valid_after_utc).days
        raise PKIError(
            f"{what} {p} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC ({days} days ago)",
            hint=f"issue a new one: {reissue}",
        )


def load_cert_pair(
    cert: PathLike,
    key: PathLike | None = None,
    *,
    passphrase: bytes | None = None,
    purpose: str = "server",
    now: dt.datetime | None = None,
) -> x509.Certificate:
    """Check a certificate file and its key the way the handshake will need them.

    Args:
        cert: a PEM file with the leaf first (a chain file is fine).
        key: its PEM private key; None when the key is in ``cert`` too.
        passphrase: for an encrypted key.
        purpose: ``"server"`` or ``"client"``: a certificate without that EKU gets a warning.
        now: the time to check validity against (aware), for tests.

    Returns:
        The leaf certificate.

    Raises:
        PKIError: a file is missing, unreadable or not PEM, the key does not match
            the certificate, or the certificate is expired or not yet valid.
        PassphraseError: the key is encrypted and the passphrase is missing or wrong.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    cert_path, data = _read(cert, "certificate")
    leaf = _parse_certs(cert_path, data, "certificate")[0]
    if key is None:
        key_path, key_data = cert_path, data
        if not _KEY_BLOCK.search(key_data):
            raise PKIError(f"no key given for the certificate {cert_path}", hint="pass --key FILE")
    else:
        key_path, key_data = _read(key, "key")
    block = _KEY_BLOCK.search(key_data)
    if block is None:
        if _CERT_MARK in key_data:
            raise PKIError(f"key {key_path} holds a certificate, not a private key", hint="did you swap --cert and --key?")
        if key_data[:1] == b"\x30":
            raise PKIError(
                f"key {key_path} is DER, not PEM",
                hint=f"convert it: openssl pkey -inform der -in {key_path} -out {key_path.with_suffix('.pem')}",
            )
        raise PKIError(f"key {key_path} is not a PEM private key", hint="expected a -----BEGIN PRIVATE KEY----- block")
    private_key = pki.load_key(block.group(0), passphrase, what=f"the key {key_path}")
    if not pki.key_matches_cert(private_key, leaf):
        raise PKIError(
            f"the key {key_path} does not match the certificate {cert_path}",
            hint="pass the key that was issued with this certificate (HOME/certs/NAME/key.pem)",
        )
    _check_validity(leaf, cert_path, "certificate", now)
    eku = pki.eku_of(leaf)
    wanted = "serverAuth" if purpose == "server" else "clientAuth"
    if eku is not None and wanted not in eku:
        flag = "without --client" if purpose == "server" else "with --client"
        log.warning(
            "certificate %s is not for a TLS %s (its EKU is %s): peers will reject it; issue it %s",
            cert_path,
            purpose,
            ", ".join(eku) or "empty",
            flag,
            extra={"event": "certificate_purpose", "path": str(cert_path), "purpose": purpose},
        )
    return leaf


def load_ca_file(path: PathLike, *, what: str = "CA file", now: dt.datetime | None = None) -> list[x509.Certificate]:
    """Check a PEM bundle of CA certificates and return them.

    An expired CA only gets a warning: the handshake fails later and explains why.

    Raises:
        PKIError: missing, unreadable, or not PEM certificates.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    p, data = _read(path, what)
    certs = _parse_certs(p, data, what)
    # In a bundle (the system store has 140 roots) a few expired roots are normal noise:
    # warn only when every CA in the file has expired, which does break verification.
    expired = [c for c in certs if now > c.not_valid_after_utc]
    for c in expired if len(expired) == len(certs) else []:
        if now > c.not_valid_after_utc:
            log.warning(
                "%s %s: %s expired on %s",
                what,
                p,
                c.subject.rfc4514_string(),
                f"{c.not_valid_after_utc:%Y-%m-%d}",
                extra={"event": "ca_expired", "path": str(p)},
            )
    return certs


def resolve_keylog(keylog: PathLike | None, environ: Mapping[str, str] | None = None) -> tuple[Path | None, str | None]:
    """Where session keys go: ``keylog`` if given, else ``$SSLKEYLOGFILE``; and which one it was.

    Returns:
        ``(path, "flag" | "env")`` or ``(None, None)``.
    """
    if keylog:
        return Path(keylog).expanduser(), "flag"
    env = (os.environ if environ is None else environ).get("SSLKEYLOGFILE", "")
    if env.strip():
        return Path(env).expanduser(), "env"
    return None, None


def _set_keylog(ctx: TLSContext, keylog: PathLike | None, environ: Mapping[str, str] | None, *, warn: bool) -> None:
    path, source = resolve_keylog(keylog, environ)
    if path is None:
        return
    try:
        # The setter opens the file for appending right away, so a bad path fails here.
        ctx.keylog_filename = str(path)
    except OSError as exc:
        origin = "--keylog" if source == "flag" else "SSLKEYLOGFILE"
        raise ConfigError(
            f"cannot write the key log {path} ({origin}): {exc.strerror}",
            hint="pass a writable path to --keylog, or unset SSLKEYLOGFILE",
        ) from exc
    ctx.keylog_path, ctx.keylog_source = path, source
    if warn:
        origin = "" if source == "flag" else " (from SSLKEYLOGFILE)"
        log.warning(
            "TLS session keys are written to %s%s: anyone who can read it can decrypt this traffic",
            path,
            origin,
            extra={"event": "keylog", "path": str(path), "source": source},
        )


def _load_pair_into(ctx: ssl.SSLContext, cert: PathLike, key: PathLike | None, passphrase: bytes | None) -> None:
    try:
        ctx.load_cert_chain(str(Path(cert).expanduser()), str(Path(key).expanduser()) if key else None, passphrase)
    except ssl.SSLError as exc:
        raise PKIError(
            f"OpenSSL refused the certificate {cert}: {exc.reason or exc}",
            hint="issue a new one with tlskit (ECDSA P-256 or RSA ≥ 2048 with SHA-256)",
        ) from exc


def _load_trust_into(ctx: ssl.SSLContext, path: Path) -> None:
    try:
        ctx.load_verify_locations(cafile=str(path))
    except ssl.SSLError as exc:
        raise PKIError(f"OpenSSL cannot use the CA file {path}: {exc.reason or exc}") from exc


# c_rehash / update-ca-certificates names: the subject hash, a dot, a counter.
_HASH_LINK = re.compile(r"[0-9a-f]{8}\.[0-9]+")


def system_hash_dir(paths: ssl.DefaultVerifyPaths, environ: Mapping[str, str]) -> str | None:
    """The system's hashed CA directory (``/etc/ssl/certs`` on Debian), when OpenSSL can use it alone.

    None on Windows (its store is not files), when ``SSL_CERT_FILE`` names a bundle
    other than the system's own (the user chose that trust), or when the directory
    has no hash links (Fedora's ``/etc/pki/tls/certs``, an empty macOS one): then
    OpenSSL's default, the bundle file and the directory.
    """
    if sys.platform == "win32":
        return None
    chosen = environ.get(paths.openssl_cafile_env)
    if chosen and os.path.realpath(chosen) != os.path.realpath(paths.openssl_cafile):
        return None
    folder = paths.capath  # SSL_CERT_DIR when set, else OpenSSL's; None when not a directory
    if not folder:
        return None
    try:
        with os.scandir(folder) as entries:
            if any(_HASH_LINK.fullmatch(e.name) for e in entries):
                return folder
    except OSError:
        pass
    return None


def load_system_trust(ctx: ssl.SSLContext, environ: Mapping[str, str] | None = None) -> None:
    """Trust the system store, the fast way when the system has a hashed CA directory.

    ``load_default_certs()`` parses the whole bundle file (about 140 CAs, 46 ms on
    the reference machine: a third of a one-shot ``tlskit connect``) before the first
    byte is sent. Given the hashed directory that ``update-ca-certificates`` keeps in
    step with that bundle, OpenSSL reads only the CA a chain needs, by subject hash.
    """
    folder = system_hash_dir(ssl.get_default_verify_paths(), os.environ if environ is None else environ)
    if folder:
        ctx.load_verify_locations(capath=folder)
    else:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)


# --- the builders -----------------------------------------------------------------


def _new(side: str) -> TLSContext:
    protocol = ssl.PROTOCOL_TLS_SERVER if side == "server" else ssl.PROTOCOL_TLS_CLIENT
    ctx = TLSContext(protocol)
    ctx.side = side
    ctx.sni_certificates = {}
    return ctx


def _server_base(
    cert: PathLike,
    key: PathLike | None,
    *,
    client_ca: Path | None,
    mtls: str,
    alpn: Iterable[str],
    min_tls: str | None,
    max_tls: str | None,
    ciphers: str | None,
    passphrase: bytes | None,
    now: dt.datetime,
) -> TLSContext:
    leaf = load_cert_pair(cert, key, passphrase=passphrase, purpose="server", now=now)
    ctx = _new("server")
    _set_versions(ctx, min_tls, max_tls)
    _set_ciphers(ctx, ciphers or SERVER_CIPHERS)
    # Our order wins over the client's, so a client cannot steer us to its weakest suite.
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    # CRIME (CVE-2012-4929): TLS compression leaks secrets through sizes.
    ctx.options |= ssl.OP_NO_COMPRESSION
    # Client-initiated renegotiation is a CPU DoS lever and TLS 1.3 has none anyway.
    ctx.options |= ssl.OP_NO_RENEGOTIATION
    # A fresh ECDHE key per handshake (the default since OpenSSL 1.1, stated here on purpose).
    ctx.options |= ssl.OP_SINGLE_ECDH_USE
    _load_pair_into(ctx, cert, key, passphrase)
    ctx.certificate = leaf
    ctx.certificate_path = Path(cert).expanduser()
    if mtls != "off":
        assert client_ca is not None
        _load_trust_into(ctx, client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED if mtls == "required" else ssl.CERT_OPTIONAL
        # Same strictness as CPython 3.13's default: reject malformed client certificates.
        ctx.verify_flags |= ssl.VERIFY_X509_STRICT
        ctx.client_ca_path = client_ca
    ctx.mtls = mtls
    _set_alpn(ctx, alpn)
    return ctx


def create_server_context(
    cert: PathLike,
    key: PathLike | None = None,
    *,
    client_ca: PathLike | None = None,
    mtls: str = "off",
    alpn: Iterable[str] = (),
    min_tls: str | None = "1.2",
    max_tls: str | None = None,
    ciphers: str | None = None,
    keylog: PathLike | None = None,
    sni: Mapping[str, tuple[PathLike, PathLike | None]] | None = None,
    passphrase: bytes | None = None,
    environ: Mapping[str, str] | None = None,
    now: dt.datetime | None = None,
) -> TLSContext:
    """Build the server context, after checking every file it needs.

    Args:
        cert: the certificate PEM (leaf first; a chain file also sends the CA).
        key: its private key; None when ``cert`` holds the key too.
        client_ca: CA file that client certificates must chain to (mTLS).
        mtls: ``off``, ``optional`` (request a certificate, verify it when sent) or
            ``required``. ``off`` together with a ``client_ca`` means ``required``,
            because giving a client CA asks for mTLS.
        alpn: protocols to accept, in preference order (e.g. ``["h2", "http/1.1"]``).
        min_tls: ``"1.2"`` (default) or ``"1.3"``.
        max_tls: ``"1.2"``, ``"1.3"`` or None for the library's highest.
        ciphers: an OpenSSL cipher string for TLS 1.2; default :data:`SERVER_CIPHERS`.
        keylog: write session keys here (NSS key log format); default ``$SSLKEYLOGFILE``.
            A warning is logged, since the file decrypts the traffic.
        sni: server name → ``(cert, key)`` served when a client asks for that name
            through SNI; other names get the default certificate. ``*.example.test``
            keys match one label.
        passphrase: for encrypted keys.
        environ: the environment to read ``SSLKEYLOGFILE`` from (default ``os.environ``).
        now: the time to check validity against (aware), for tests.

    Returns:
        A :class:`TLSContext`; its ``sni_callback`` records the name each client asked
        for (see :func:`requested_server_name`) and switches certificates.

    Raises:
        ConfigError: bad version, cipher string, mTLS mode, ALPN value or key-log path.
        PKIError: a certificate, key or CA file fails a pre-flight check.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    mode = (mtls or "off").strip().lower()
    if mode not in MTLS_MODES:
        raise ConfigError(f"mtls {mtls!r} is not one of {', '.join(MTLS_MODES)}")
    ca_path: Path | None = None
    if client_ca:
        ca_path = Path(client_ca).expanduser()
        load_ca_file(ca_path, what="client CA file", now=now)
        if mode == "off":
            mode = "required"
    elif mode != "off":
        raise ConfigError(
            f"mtls {mode!r} needs a CA to verify client certificates",
            hint="pass --client-ca FILE, or create the store CA with: tlskit ca init",
        )
    opts = dict(client_ca=ca_path, mtls=mode, alpn=tuple(alpn), min_tls=min_tls, max_tls=max_tls,
                ciphers=ciphers, passphrase=passphrase, now=now)
    ctx = _server_base(cert, key, **opts)
    _set_keylog(ctx, keylog, environ, warn=True)
    if sni:
        by_name: dict[str, TLSContext] = {}
        for name, (sni_cert, sni_key) in sni.items():
            sub = _server_base(sni_cert, sni_key, **opts)
            # The key-log callback belongs to the context the handshake ends up on.
            _set_keylog(sub, keylog, environ, warn=False)
            norm = name.strip().lower().rstrip(".")
            by_name[norm] = sub
            ctx.sni_certificates[norm] = sub.certificate  # type: ignore[assignment]
        ctx.sni_callback = _make_sni_callback(by_name)
    else:
        ctx.sni_callback = _record_sni
    _install_bad_sni_filter()
    return ctx


def _install_bad_sni_filter() -> None:
    """Keep a hostile client's non-ASCII SNI from printing a traceback on the server's stderr.

    CPython decodes the SNI as ASCII before it calls ``sni_callback``; when that
    fails it reports the UnicodeDecodeError through ``sys.unraisablehook`` (a full
    traceback per connection) and aborts the handshake with alert 80, which the
    server logs as an ordinary failed handshake (``bad_sni``). This hook drops
    exactly that report, and hands every other one to the previous hook.
    Installed once; idempotent.
    """
    previous = sys.unraisablehook
    if getattr(previous, "tlskit_bad_sni_filter", False):
        return

    def hook(unraisable) -> None:
        if (
            isinstance(unraisable.exc_value, UnicodeDecodeError)
            and isinstance(unraisable.object, bytes)
            and _raised_in_ssl_handshake(unraisable.exc_traceback)
        ):
            log.debug("a client sent a non-ASCII server name %r", unraisable.object[:64], extra={"event": "bad_sni"})
            return
        previous(unraisable)

    hook.tlskit_bad_sni_filter = True  # type: ignore[attr-defined]
    sys.unraisablehook = hook


def _raised_in_ssl_handshake(tb) -> bool:
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == "do_handshake" and code.co_filename == ssl.__file__:
            return True
        tb = tb.tb_next
    return False


_SNI_ATTR = "tlskit_server_name"


def _record_sni(sslobj: ssl.SSLObject, server_name: str | None, ctx: ssl.SSLContext) -> None:
    # The server side's server_hostname is always None: SNI is only seen here.
    if server_name:
        setattr(sslobj, _SNI_ATTR, server_name.lower())


def _make_sni_callback(by_name: Mapping[str, ssl.SSLContext]):
    def callback(sslobj: ssl.SSLObject, server_name: str | None, ctx: ssl.SSLContext) -> None:
        if not server_name:
            return
        name = server_name.lower()
        setattr(sslobj, _SNI_ATTR, name)
        target = by_name.get(name)
        if target is None and "." in name:
            target = by_name.get("*." + name.split(".", 1)[1])
        if target is not None:
            sslobj.context = target

    return callback


def requested_server_name(sslobj: ssl.SSLObject) -> str | None:
    """The SNI name a client sent to our server, as recorded by the context's ``sni_callback``."""
    return getattr(sslobj, _SNI_ATTR, None)


def create_client_context(
    *,
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
    environ: Mapping[str, str] | None = None,
    now: dt.datetime | None = None,
) -> TLSContext:
    """Build the client context: hardened by default, after checking every file it needs.

    Args:
        ca: CA file(s) to trust.
        system_ca: also trust the system store.
        cert: a client certificate for mTLS (leaf first).
        key: its key; None when ``cert`` holds the key too.
        alpn: protocols to offer, in preference order.
        min_tls: ``"1.2"`` (default) or ``"1.3"``.
        max_tls: ``"1.2"``, ``"1.3"`` or None.
        ciphers: an OpenSSL cipher string for TLS 1.2; default: CPython's.
        keylog: write session keys here; default ``$SSLKEYLOGFILE`` (with a warning).
        insecure: turn certificate and hostname verification OFF. The trust settings
            are still recorded, so :mod:`tlskit.client` can report what would have failed.
        passphrase: for an encrypted client key.
        environ: the environment to read ``SSLKEYLOGFILE`` from (default ``os.environ``).
        now: the time to check validity against (aware), for tests.

    Returns:
        A :class:`TLSContext`.

    Raises:
        ConfigError: nothing to trust, bad version, cipher, ALPN or key-log path.
        PKIError: a file fails a pre-flight check.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    if ca is None:
        ca_list: list[Path] = []
    elif isinstance(ca, (str, os.PathLike)):
        ca_list = [Path(ca).expanduser()]
    else:
        ca_list = [Path(c).expanduser() for c in ca]
    for c in ca_list:
        load_ca_file(c, now=now)
    if not ca_list and not system_ca and not insecure:
        raise ConfigError(
            "no certificate authority to trust",
            hint="pass --ca FILE, create the store CA (tlskit ca init), or allow --system-ca",
        )
    leaf = load_cert_pair(cert, key, passphrase=passphrase, purpose="client", now=now) if cert else None
    # PROTOCOL_TLS_CLIENT starts with CERT_REQUIRED and check_hostname=True: a server
    # must prove it holds a certificate for the name we asked for, signed by a CA we trust.
    ctx = _new("client")
    _set_versions(ctx, min_tls, max_tls)
    if ciphers:
        _set_ciphers(ctx, ciphers)
    # RFC 6125 §6.4.4: never fall back to the subject CN. Python 3.11 still does when a
    # certificate has no SAN; browsers stopped long ago.
    ctx.hostname_checks_common_name = False
    # CPython 3.13's defaults: reject malformed certificates (strict RFC 5280), and accept
    # a trusted intermediate or a pinned leaf in --ca as an anchor.
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT | ssl.VERIFY_X509_PARTIAL_CHAIN
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    for c in ca_list:
        _load_trust_into(ctx, c)
    if system_ca:
        load_system_trust(ctx)
    ctx.trust_files = tuple(ca_list)
    ctx.system_ca = bool(system_ca)
    if cert:
        _load_pair_into(ctx, cert, key, passphrase)
        ctx.certificate = leaf
        ctx.certificate_path = Path(cert).expanduser()
    _set_alpn(ctx, alpn)
    _set_keylog(ctx, keylog, environ, warn=True)
    if insecure:
        _make_insecure(ctx)
    return ctx


def _make_insecure(ctx: TLSContext) -> None:
    """The one code path that turns verification off; loudly."""
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.insecure = True
    log.warning(
        "certificate verification is OFF (--insecure): anyone on the path can impersonate the server",
        extra={"event": "insecure"},
    )


def tls_version_name(version: ssl.TLSVersion | None) -> str | None:
    """``ssl.TLSVersion.TLSv1_3`` → ``"1.3"``."""
    return None if version is None else VERSION_NAMES.get(version, str(version))


__all__ = [
    "MTLS_MODES",
    "SERVER_CIPHERS",
    "TLSContext",
    "create_client_context",
    "create_server_context",
    "load_ca_file",
    "load_cert_pair",
    "parse_tls_version",
    "requested_server_name",
    "resolve_keylog",
    "tls_version_name",
]
