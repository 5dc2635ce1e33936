"""Make this machine trust the tlskit CA, say whether it does, and undo it exactly.

Three targets, each detected on the machine and reported on its own:

``system``
    The operating system's store, which OpenSSL, GnuTLS, curl, Python and most
    command-line tools read. Linux: the CA is written as ``tlskit-<id>.crt`` into
    the distribution's anchor directory and the bundle is rebuilt
    (``update-ca-certificates`` on Debian/Ubuntu, ``update-ca-trust extract`` on
    Fedora/RHEL). macOS: ``security add-trusted-cert`` into the System keychain.
    Needs root.
``nss``
    NSS databases: the user's ``~/.pki/nssdb`` (Chromium and Chrome on Linux;
    created, as Chromium would, when missing) and every Firefox profile's
    ``cert9.db``. Changed with ``certutil`` from libnss3-tools / nss-tools.
``java``
    A Java keystore: the JDK's ``lib/security/cacerts`` (from ``$JAVA_HOME``, else
    the JDK that the ``keytool`` on PATH belongs to), or an explicit keystore.

Every entry tlskit creates is named ``tlskit-`` plus the first 16 hex digits of the
CA's SHA-256 fingerprint (:func:`trust_name`), so installing twice changes nothing
and uninstalling removes exactly that entry and nothing else. Entries that hold the
same certificate under another name were made by someone else: they are reported
and never changed.

Every external command runs with a timeout, its output captured; a failure becomes
a :class:`~tlskit.errors.PKIError` (exit 6) naming the command and quoting its
error output.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from tlskit.errors import PKIError
from tlskit.store import write_atomic

log = logging.getLogger(__name__)

TARGETS = ("system", "nss", "java")

# Outcomes, one per trust store and action.
INSTALLED = "installed"
ALREADY_INSTALLED = "already installed"
REMOVED = "removed"
NOT_INSTALLED = "not installed"
TRUSTED = "trusted"
NOT_TRUSTED = "not trusted"
SKIPPED = "skipped"
FAILED = "failed"

NSS_TRUST = "C,,"  # a CA trusted to issue TLS server certificates; not for e-mail or code signing
JAVA_STOREPASS = "changeit"  # the JDK's documented default password of cacerts
CERTUTIL_HINT = (
    "install certutil: apt-get install libnss3-tools (Debian/Ubuntu), "
    "dnf install nss-tools (Fedora/RHEL), brew install nss (macOS)"
)
TIMEOUT = 60.0
# update-ca-certificates runs hooks: Debian's ca-certificates-java rebuilds the JDK's cacerts.
UPDATE_TIMEOUT = 300.0
_STOREPASS_ENV = "KEYTOOL_STOREPASS"  # -storepass:env keeps the password out of `ps`
_PEM_RE = re.compile(rb"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.S)
_SBIN = os.pathsep.join(("/usr/local/sbin", "/usr/sbin", "/sbin"))


# --- results -------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustResult:
    """What happened in one trust store (one file, database or keystore)."""

    target: str  # system | nss | java
    store: str  # the file, database or keystore; "" when none was found
    outcome: str  # installed | already installed | removed | not installed | trusted | not trusted | skipped | failed
    label: str = ""  # what the store is for: "Chromium", "Firefox profile x.default", "Debian system store"
    reason: str | None = None  # why it was skipped or failed, or a detail worth knowing
    hint: str | None = None  # the fix, for skipped and failed stores

    @property
    def failed(self) -> bool:
        return self.outcome == FAILED

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "store": self.store or None,
            "label": self.label or None,
            "outcome": self.outcome,
            "reason": self.reason,
            "hint": self.hint,
        }


@dataclass
class TrustReport:
    """The results of one ``install``, ``uninstall`` or ``status`` run, one per trust store."""

    action: str  # install | uninstall | status
    name: str  # the nickname / file name / alias, see trust_name()
    subject: str
    sha256: str
    results: list[TrustResult] = field(default_factory=list)
    store_home: Path | str | None = field(default=None, repr=False)  # for the sudo hint

    @property
    def failures(self) -> list[TrustResult]:
        return [r for r in self.results if r.failed]

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {
            "action": self.action,
            "name": self.name,
            "ca": {"subject": self.subject, "sha256": self.sha256},
            "ok": self.ok,
            "results": [r.to_dict() for r in self.results],
        }

    def raise_for_failures(self) -> None:
        """Raise one :class:`PKIError` naming every trust store that failed (after rendering).

        Raises:
            PKIError: at least one store failed; the hint is the first failure's.
        """
        failures = self.failures
        if not failures:
            return
        verb = {"install": "install the CA into", "uninstall": "remove the CA from"}.get(self.action, "check")
        # Several stores that need root get one sudo command, not one per store.
        sudo = [r.target for r in failures if (r.hint or "").startswith(SUDO_PREFIX)]
        hint = failures[0].hint
        if len(sudo) > 1:
            hint = sudo_hint(self.action, sudo, self.store_home)
        if len(failures) == 1:
            r = failures[0]
            raise PKIError(f"could not {verb} {_store_words(r)}: {r.reason}", hint=hint)
        parts = ", ".join(f"{r.target}: {r.reason}" for r in failures)
        raise PKIError(f"could not {verb} {len(failures)} trust stores ({parts})", hint=hint)


def _store_words(r: TrustResult) -> str:
    if r.target == "system":
        return "the system trust store"
    kind = {"nss": "the NSS database", "java": "the Java keystore"}[r.target]
    return f"{kind} {r.store}" if r.store else kind.replace("the ", "", 1).replace("database", "databases")


# --- names, commands, permissions --------------------------------------------------------


def trust_name(cert: x509.Certificate) -> str:
    """The nickname, file name and alias tlskit uses for ``cert`` in every trust store.

    ``tlskit-`` and the first 16 hex digits of the SHA-256 fingerprint: the same CA
    always gets the same name (install is idempotent), another CA never does.
    """
    return "tlskit-" + cert.fingerprint(hashes.SHA256()).hex()[:16]


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def pem_certs(data: bytes) -> list[bytes]:
    """The DER of every PEM certificate block in ``data`` (a bundle, certutil or keytool output)."""
    out = []
    for m in _PEM_RE.finditer(data):
        try:
            out.append(base64.b64decode(b"".join(m.group(1).split()), validate=True))
        except ValueError:
            continue  # a damaged block is not our certificate
    return out


def _output_words(done: subprocess.CompletedProcess[str]) -> str:
    # keytool prints its errors on stdout, certutil on stderr: quote whichever has words.
    text = (done.stderr or "").strip() or (done.stdout or "").strip() or "no output"
    line = " / ".join(x.strip() for x in text.splitlines() if x.strip())
    return line if len(line) <= 400 else line[:397] + "..."


def run_command(
    cmd: Sequence[str | os.PathLike],
    *,
    timeout: float = TIMEOUT,
    env: dict[str, str] | None = None,
    check: bool = True,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` with a timeout, no stdin (or ``input``) and captured output.

    Args:
        cmd: the program and its arguments.
        timeout: seconds before the command is killed.
        env: extra environment variables.
        check: raise when the exit status is not 0.
        input: text for its stdin, which is otherwise empty.

    Returns:
        The finished process (``stdout``/``stderr`` as text).

    Raises:
        PKIError: the program is missing, timed out, or (with ``check``) failed; the
            message quotes the command and its error output.
    """
    argv = [os.fspath(c) for c in cmd]
    shown = shlex.join(argv)
    full_env = {**os.environ, "LC_ALL": "C", **(env or {})}
    try:
        done = subprocess.run(
            argv,
            # certutil and keytool prompt on a terminal: never let them wait for one.
            stdin=subprocess.DEVNULL if input is None else None,
            input=input,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            env=full_env,
        )
    except FileNotFoundError as exc:
        raise PKIError(f"{argv[0]} not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise PKIError(f"`{shown}` did not finish within {timeout:g} s") from exc
    except OSError as exc:
        raise PKIError(f"cannot run `{shown}`: {exc.strerror}") from exc
    if check and done.returncode != 0:
        raise PKIError(f"`{shown}` failed (exit {done.returncode}): {_output_words(done)}")
    return done


SUDO_PREFIX = "run with sudo: "


def sudo_hint(action: str, targets: str | Sequence[str], store_home: Path | str | None = None) -> str:
    """``run with sudo: sudo tlskit [--home H] ca ACTION --target T...``.

    The store is named with ``--home`` because sudo resets ``$HOME`` to root's, where
    there is no CA (or worse, another one).
    """
    home = f" --home {shlex.quote(str(store_home))}" if store_home else ""
    names = [targets] if isinstance(targets, str) else list(targets)
    flags = "".join(f" --target {t}" for t in names)
    return f"{SUDO_PREFIX}sudo tlskit{home} ca {action}{flags}"


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def check_writable(
    path: Path,
    *,
    action: str,
    target: str,
    store_home: Path | str | None = None,
    root_owned: bool = True,
) -> None:
    """Fail early, and explain, when this process may not change ``path``.

    ``path`` may not exist yet: its nearest existing parent decides. The check is
    ``access(2)`` with the effective ids, so it is right for root on a read-only
    file system and for a user who owns the store, not only for "am I root".

    Args:
        path: the file or directory about to be written.
        action, target, store_home: for the ``sudo tlskit … ca ACTION --target TARGET`` hint.
        root_owned: the store belongs to root (system, the JDK's cacerts), so sudo is
            the fix; otherwise (a user's NSS database) the owner is.

    Raises:
        PKIError: ``path`` is not writable; the hint says to use sudo, or to check the
            owner, or, for root, that the file system is read-only.
    """
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    kwargs = {"effective_ids": True} if os.access in os.supports_effective_ids else {}
    if os.access(probe, os.W_OK, **kwargs):
        return
    if _is_root():
        raise PKIError(
            f"cannot write {probe} although running as root",
            hint="the file system is read-only (a container image or a read-only mount?)",
        )
    if not root_owned:
        raise PKIError(f"cannot write {probe}", hint=f"check who owns it: ls -ld {shlex.quote(str(probe))}")
    raise PKIError(f"cannot write {probe} (needs root)", hint=sudo_hint(action, target, store_home))


# --- system ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SystemStore:
    """The operating system's trust store and the commands that rebuild it.

    On Linux tlskit writes ``anchors/<name><suffix>`` and runs ``update``
    (``update_remove`` after deleting the file); ``bundle`` is the file the
    command produces, which clients read, and is checked to contain the CA. On
    macOS (``kind == "macos"``) the CA goes into ``keychain`` with ``security``.

    ``hooks`` and ``links`` are Debian's ``/etc/ca-certificates/update.d`` and
    ``/etc/ssl/certs``: after a removal the hooks are told ``-links/<name>.pem``,
    which ``update-ca-certificates --fresh`` never tells them.
    """

    kind: str  # debian | fedora | arch | suse | macos
    label: str
    anchors: Path | None = None
    suffix: str = ".crt"
    update: tuple[str, ...] = ()
    update_remove: tuple[str, ...] = ()
    bundle: Path | None = None
    keychain: Path | None = None
    hooks: Path | None = None
    links: Path | None = None

    def file_for(self, name: str) -> Path | None:
        return self.anchors / f"{name}{self.suffix}" if self.anchors else None

    def location(self, name: str) -> str:
        f = self.file_for(name)
        return str(f if f is not None else self.keychain)


def _which(cmd: str) -> str | None:
    # The sbin directories are not on an ordinary user's PATH, yet the commands live there.
    return shutil.which(cmd) or shutil.which(cmd, path=_SBIN)


def detect_system_store() -> SystemStore | None:
    """The system trust store of this machine, or None when its layout is unknown.

    The order is mkcert's: Fedora/RHEL, Debian/Ubuntu, Arch, openSUSE, and macOS by
    platform. Only Debian is exercised by the test suite.
    """
    if sys.platform == "darwin":
        return SystemStore(
            "macos", "macOS System keychain", keychain=Path("/Library/Keychains/System.keychain")
        )
    layouts = [
        ("fedora", "Fedora/RHEL system store", "/etc/pki/ca-trust/source/anchors", ".pem",
         "update-ca-trust", ("extract",), ("extract",), "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"),
        ("debian", "Debian/Ubuntu system store", "/usr/local/share/ca-certificates", ".crt",
         # --fresh after a removal: rebuild every link, so the deleted CA's link cannot linger.
         "update-ca-certificates", (), ("--fresh",), "/etc/ssl/certs/ca-certificates.crt"),
        ("arch", "Arch system store", "/etc/ca-certificates/trust-source/anchors", ".crt",
         "trust", ("extract-compat",), ("extract-compat",), "/etc/ssl/certs/ca-certificates.crt"),
        ("suse", "openSUSE system store", "/usr/share/pki/trust/anchors", ".pem",
         "update-ca-certificates", (), (), "/var/lib/ca-certificates/ca-bundle.pem"),
    ]
    for kind, label, anchors, suffix, command, add_args, remove_args, bundle in layouts:
        exe = _which(command)
        if exe and Path(anchors).is_dir():
            debian = kind == "debian"
            return SystemStore(
                kind, label, Path(anchors), suffix, (exe, *add_args), (exe, *remove_args), Path(bundle),
                hooks=Path("/etc/ca-certificates/update.d") if debian else None,
                links=Path("/etc/ssl/certs") if debian else None,
            )
    return None


def _notify_removal(store: SystemStore, name: str) -> None:
    """Tell Debian's update hooks that ``<name>.pem`` is gone.

    ``update-ca-certificates --fresh`` deletes the link before it lists what changed, so
    its hooks never hear of the removal, and ca-certificates-java would keep the CA in
    the JDK's cacerts as ``debian:<name>.pem`` forever. The hooks read ``+``/``-`` lines
    on stdin (their documented interface); this is the line the command should have sent.
    """
    if store.hooks is None or store.links is None or not store.hooks.is_dir():
        return
    line = f"-{store.links / (name + '.pem')}\n"
    for hook in sorted(store.hooks.iterdir()):
        # run-parts' rule: only executable files with plain names (no dpkg leftovers).
        if re.fullmatch(r"[A-Za-z0-9_-]+", hook.name) and hook.is_file() and os.access(hook, os.X_OK):
            run_command([hook], input=line, timeout=UPDATE_TIMEOUT)


def _bundle_has(store: SystemStore, der: bytes) -> bool | None:
    if store.bundle is None:
        return None
    try:
        return der in pem_certs(store.bundle.read_bytes())
    except OSError:
        return False


def _file_holds(path: Path, der: bytes) -> bool:
    try:
        return der in pem_certs(path.read_bytes())
    except OSError:
        return False


def _system_status(cert: x509.Certificate, store: SystemStore) -> TrustResult:
    name, der = trust_name(cert), _der(cert)
    if store.kind == "macos":
        return _mac_status(cert, store)
    path = store.file_for(name)
    assert path is not None
    ours = _file_holds(path, der)
    bundled = _bundle_has(store, der)
    where = str(path)
    if ours and bundled is not False:
        return TrustResult("system", where, TRUSTED, store.label)
    if ours:
        return TrustResult(
            "system", where, NOT_TRUSTED, store.label,
            reason=f"the file is there but {store.bundle} does not contain the CA yet",
            hint=f"run: {shlex.join(store.update)} (tlskit ca install does)",
        )
    if bundled:
        return TrustResult(
            "system", where, TRUSTED, store.label, reason=f"in {store.bundle}, from a file tlskit did not write"
        )
    return TrustResult("system", where, NOT_TRUSTED, store.label)


def _rebuild(store: SystemStore, command: tuple[str, ...]) -> None:
    if command:
        run_command(command, timeout=UPDATE_TIMEOUT)


def _system_install(cert: x509.Certificate, store: SystemStore, store_home) -> TrustResult:
    if store.kind == "macos":
        return _mac_install(cert, store, store_home)
    name, der = trust_name(cert), _der(cert)
    path = store.file_for(name)
    assert path is not None and store.anchors is not None
    ours = _file_holds(path, der)
    bundled = _bundle_has(store, der)
    if ours and bundled is not False:
        return TrustResult("system", str(path), ALREADY_INSTALLED, store.label)
    check_writable(path, action="install", target="system", store_home=store_home)
    wrote = False
    if not ours:
        try:
            write_atomic(path, _pem(cert), 0o644)  # world-readable, like every anchor
        except OSError as exc:
            raise PKIError(f"cannot write {path}: {exc.strerror}") from exc
        wrote = True
    try:
        _rebuild(store, store.update)
    except PKIError:
        if wrote:  # leave the machine as it was, not half-installed
            path.unlink(missing_ok=True)
        raise
    if _bundle_has(store, der) is False:
        raise PKIError(
            f"{shlex.join(store.update)} ran, but {store.bundle} does not contain the CA",
            hint=f"check {path} and the output of {shlex.join(store.update)}",
        )
    return TrustResult("system", str(path), INSTALLED, store.label, reason=None if wrote else "rebuilt the bundle")


def _system_uninstall(cert: x509.Certificate, store: SystemStore, store_home) -> TrustResult:
    if store.kind == "macos":
        return _mac_uninstall(cert, store, store_home)
    name, der = trust_name(cert), _der(cert)
    path = store.file_for(name)
    assert path is not None
    if not path.exists():
        reason = None
        if _bundle_has(store, der):
            reason = f"the CA is still in {store.bundle} from a file tlskit did not write; tlskit removes only {path.name}"
        return TrustResult("system", str(path), NOT_INSTALLED, store.label, reason=reason)
    check_writable(path.parent, action="uninstall", target="system", store_home=store_home)
    try:
        path.unlink()
    except OSError as exc:
        raise PKIError(f"cannot remove {path}: {exc.strerror}") from exc
    _rebuild(store, store.update_remove)
    try:
        _notify_removal(store, name)
    except PKIError as exc:
        raise PKIError(f"removed {path}, but an update hook failed: {exc.message}") from exc
    return TrustResult("system", str(path), REMOVED, store.label)


# macOS: documented, implemented like mkcert, and not testable on this Linux CI.


def _mac_sha1(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - how `security` names certificates


def _mac_present(cert: x509.Certificate, store: SystemStore) -> bool:
    done = run_command(["security", "find-certificate", "-a", "-Z", str(store.keychain)], check=False)
    return _mac_sha1(cert) in done.stdout.upper()


def _with_pem_file(cert: x509.Certificate, fn: Callable[[Path], object]) -> object:
    with tempfile.TemporaryDirectory(prefix="tlskit-trust-") as tmp:
        path = Path(tmp) / "ca.pem"
        path.write_bytes(_pem(cert))
        return fn(path)


def _mac_trusted(cert: x509.Certificate) -> bool:
    done = _with_pem_file(cert, lambda p: run_command(["security", "verify-cert", "-c", str(p)], check=False))
    return done.returncode == 0  # type: ignore[union-attr]


def _mac_status(cert: x509.Certificate, store: SystemStore) -> TrustResult:
    ok = _mac_present(cert, store) and _mac_trusted(cert)
    return TrustResult("system", str(store.keychain), TRUSTED if ok else NOT_TRUSTED, store.label)


def _mac_need_root(action: str, store_home) -> None:
    if not _is_root():
        raise PKIError(
            "the macOS System keychain needs root", hint=sudo_hint(action, "system", store_home)
        )


def _mac_install(cert: x509.Certificate, store: SystemStore, store_home) -> TrustResult:
    if _mac_present(cert, store) and _mac_trusted(cert):
        return TrustResult("system", str(store.keychain), ALREADY_INSTALLED, store.label)
    _mac_need_root("install", store_home)
    _with_pem_file(
        cert,
        lambda p: run_command(
            ["security", "add-trusted-cert", "-d", "-r", "trustRoot", "-k", str(store.keychain), str(p)]
        ),
    )
    return TrustResult("system", str(store.keychain), INSTALLED, store.label)


def _mac_uninstall(cert: x509.Certificate, store: SystemStore, store_home) -> TrustResult:
    if not _mac_present(cert, store):
        return TrustResult("system", str(store.keychain), NOT_INSTALLED, store.label)
    _mac_need_root("uninstall", store_home)
    # Trust settings first (they outlive the certificate otherwise), then the certificate itself.
    _with_pem_file(cert, lambda p: run_command(["security", "remove-trusted-cert", "-d", str(p)], check=False))
    run_command(["security", "delete-certificate", "-Z", _mac_sha1(cert), str(store.keychain)])
    return TrustResult("system", str(store.keychain), REMOVED, store.label)


# --- NSS -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NSSDatabase:
    """One NSS certificate database (a directory holding ``cert9.db``)."""

    path: Path
    label: str  # "Chromium", "Firefox profile x.default"
    create: bool = False  # the user's ~/.pki/nssdb: created at install, as Chromium would

    @property
    def exists(self) -> bool:
        return (self.path / "cert9.db").is_file()

    @property
    def spec(self) -> str:
        return f"sql:{self.path}"


def find_certutil() -> str | None:
    """``certutil`` on PATH, else where Homebrew's nss keeps it (it is not linked there)."""
    found = shutil.which("certutil")
    if found:
        return found
    for brew in ("/opt/homebrew/opt/nss/bin/certutil", "/usr/local/opt/nss/bin/certutil"):
        if os.access(brew, os.X_OK):
            return brew
    return None


def _home(home: Path | str | None) -> Path:
    return Path(home) if home is not None else Path(os.environ.get("HOME") or Path.home())


def find_nss_databases(home: Path | str | None = None) -> list[NSSDatabase]:
    """The NSS databases of the user whose home is ``home`` (default ``$HOME``).

    On Linux, ``~/.pki/nssdb`` always comes first (it is created at install when it
    does not exist yet), then snap Chromium's, then each Firefox profile that has a
    ``cert9.db``: ``~/.mozilla/firefox/*``, the XDG location of newer Firefox
    (``$XDG_CONFIG_HOME/mozilla/firefox/*``), snap (``~/snap/firefox/common/...``)
    and flatpak. On macOS, the Firefox profiles under ``~/Library``.
    """
    home = _home(home)
    dbs: list[NSSDatabase] = []
    if sys.platform.startswith("linux"):
        dbs.append(NSSDatabase(home / ".pki" / "nssdb", "Chromium", create=True))
        snap_chromium = home / "snap" / "chromium" / "current" / ".pki" / "nssdb"
        if (snap_chromium / "cert9.db").is_file():
            dbs.append(NSSDatabase(snap_chromium, "Chromium (snap)"))
    xdg = os.environ.get("XDG_CONFIG_HOME")
    config_home = Path(xdg) if xdg and os.path.isabs(xdg) else home / ".config"
    profile_roots = [
        (home / ".mozilla" / "firefox", "Firefox"),
        (config_home / "mozilla" / "firefox", "Firefox"),
        (home / "snap" / "firefox" / "common" / ".mozilla" / "firefox", "Firefox (snap)"),
        (home / ".var" / "app" / "org.mozilla.firefox" / ".mozilla" / "firefox", "Firefox (flatpak)"),
        (home / "Library" / "Application Support" / "Firefox" / "Profiles", "Firefox"),
    ]
    seen = {db.path.resolve() for db in dbs}
    for root, app in profile_roots:
        if not root.is_dir():
            continue
        for profile in sorted(root.iterdir()):
            if (profile / "cert9.db").is_file() and profile.resolve() not in seen:
                seen.add(profile.resolve())
                dbs.append(NSSDatabase(profile, f"{app} profile {profile.name}"))
    return dbs


def _nss_entries(certutil: str, db: NSSDatabase) -> dict[str, str]:
    """Nickname -> trust flags (``C,,``), from ``certutil -L``."""
    done = run_command([certutil, "-L", "-d", db.spec])
    entries = {}
    for line in done.stdout.splitlines():
        # "nickname with spaces      C,,": the flags are the last word; the header lines have no such word.
        m = re.match(r"^(\S.*?)\s+([A-Za-z]*,[A-Za-z]*,[A-Za-z]*)\s*$", line)
        if m:
            entries[m.group(1)] = m.group(2)
    return entries


def _nss_ders(certutil: str, db: NSSDatabase, nick: str) -> list[bytes]:
    done = run_command([certutil, "-L", "-d", db.spec, "-n", nick, "-a"], check=False)
    return pem_certs(done.stdout.encode()) if done.returncode == 0 else []


def _ssl_trusted(flags: str) -> bool:
    return "C" in flags.split(",")[0]


def _nss_find(certutil: str, db: NSSDatabase, cert: x509.Certificate) -> tuple[str | None, str]:
    """The nickname that holds ``cert`` in ``db`` (ours first) and its trust flags."""
    name, der = trust_name(cert), _der(cert)
    entries = _nss_entries(certutil, db)
    if name in entries and der in _nss_ders(certutil, db, name):
        return name, entries[name]
    # NSS keeps one nickname per certificate: adding it again under ours would silently
    # change the trust of someone else's entry. Look for it under every other nickname.
    for nick, flags in entries.items():
        if nick != name and der in _nss_ders(certutil, db, nick):
            return nick, flags
    return None, ""


def _nss_status(certutil: str, db: NSSDatabase, cert: x509.Certificate) -> TrustResult:
    if not db.exists:
        reason = "no database yet (tlskit ca install creates it)" if db.create else "no database"
        return TrustResult("nss", str(db.path), NOT_TRUSTED, db.label, reason=reason)
    nick, flags = _nss_find(certutil, db, cert)
    if nick is None:
        return TrustResult("nss", str(db.path), NOT_TRUSTED, db.label)
    other = "" if nick == trust_name(cert) else f"as {nick!r}, an entry tlskit did not create"
    if _ssl_trusted(flags):
        return TrustResult("nss", str(db.path), TRUSTED, db.label, reason=other or None)
    return TrustResult(
        "nss", str(db.path), NOT_TRUSTED, db.label,
        reason=f"present{' ' + other if other else ''} with trust flags {flags!r}, not trusted for TLS",
    )


def _nss_writable(db: NSSDatabase, action: str, store_home) -> None:
    check_writable(
        db.path, action=action, target="nss", store_home=store_home,
        root_owned=False,
    )


def _nss_install(certutil: str, db: NSSDatabase, cert: x509.Certificate, store_home) -> TrustResult:
    name = trust_name(cert)
    created = False
    if not db.exists:
        _nss_writable(db, "install", store_home)
        try:
            # 0700 like Chromium's own: the database can hold the user's client keys.
            db.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            db.path.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise PKIError(f"cannot create {db.path}: {exc.strerror}") from exc
        run_command([certutil, "-N", "-d", db.spec, "--empty-password"])
        created = True
    nick, flags = _nss_find(certutil, db, cert)
    if nick is not None and nick != name:
        if _ssl_trusted(flags):
            return TrustResult(
                "nss", str(db.path), ALREADY_INSTALLED, db.label, reason=f"as {nick!r}, an entry tlskit did not create"
            )
        raise PKIError(
            f"{db.path} already holds the CA as {nick!r} with trust {flags!r}, and tlskit does not change entries it did not create",
            hint=f"trust it yourself: certutil -M -d {shlex.quote(db.spec)} -n {shlex.quote(nick)} -t {NSS_TRUST}",
        )
    if nick == name and _ssl_trusted(flags):
        return TrustResult("nss", str(db.path), ALREADY_INSTALLED, db.label)
    _nss_writable(db, "install", store_home)
    if nick == name:  # ours, but someone took the TLS trust away
        run_command([certutil, "-M", "-d", db.spec, "-n", name, "-t", NSS_TRUST])
        detail = f"restored the trust flags to {NSS_TRUST}"
    else:
        _with_pem_file(cert, lambda p: run_command([certutil, "-A", "-d", db.spec, "-n", name, "-t", NSS_TRUST, "-i", str(p)]))
        detail = "created the database" if created else None
    nick, flags = _nss_find(certutil, db, cert)
    if nick != name or not _ssl_trusted(flags):
        raise PKIError(f"certutil reported success, but {db.path} does not list {name!r} with trust {NSS_TRUST}")
    return TrustResult("nss", str(db.path), INSTALLED, db.label, reason=detail)


def _nss_uninstall(certutil: str, db: NSSDatabase, cert: x509.Certificate, store_home) -> TrustResult:
    name = trust_name(cert)
    if not db.exists or name not in _nss_entries(certutil, db):
        return TrustResult("nss", str(db.path), NOT_INSTALLED, db.label)
    _nss_writable(db, "uninstall", store_home)
    # -D removes one certificate per call; a nickname can (rarely) hold several.
    for _ in range(16):
        run_command([certutil, "-D", "-d", db.spec, "-n", name])
        if name not in _nss_entries(certutil, db):
            break
    else:
        raise PKIError(f"{name!r} is still in {db.path} after 16 deletions")
    return TrustResult("nss", str(db.path), REMOVED, db.label)


# --- Java ------------------------------------------------------------------------------


@dataclass(frozen=True)
class JavaKeystore:
    """A Java keystore (JKS or PKCS12) and the ``keytool`` that edits it."""

    path: Path
    keytool: str
    storepass: str = JAVA_STOREPASS
    label: str = "Java keystore"


def find_java_keystore(keystore: Path | str | None = None, *, storepass: str = JAVA_STOREPASS) -> JavaKeystore:
    """The keystore to change: ``keystore`` when given, else the JDK's ``cacerts``.

    The JDK is ``$JAVA_HOME`` when set, else the one the ``keytool`` on PATH belongs
    to (its real path, through the ``alternatives`` symlinks). Both ``lib/security``
    (JDK 9+) and ``jre/lib/security`` (JDK 8) are looked at.

    Raises:
        PKIError: no ``keytool``, or no keystore; the message says where it looked.
    """
    java_home = os.environ.get("JAVA_HOME")
    keytool = None
    if java_home and os.access(Path(java_home) / "bin" / "keytool", os.X_OK):
        keytool = str(Path(java_home) / "bin" / "keytool")
    keytool = keytool or shutil.which("keytool")
    if keytool is None:
        raise PKIError("keytool not found", hint="install a JDK (apt-get install default-jdk-headless) or set JAVA_HOME")
    if keystore is not None:
        path = Path(keystore)
        if not path.is_file():
            raise PKIError(f"no Java keystore at {path}")
        return JavaKeystore(path, keytool, storepass, "Java keystore")
    if java_home:
        jdks, source = [Path(java_home)], f"JAVA_HOME={java_home}"
    else:
        jdks, source = [Path(os.path.realpath(keytool)).parent.parent], f"the JDK of {keytool}"
    for jdk in jdks:
        for rel in ("lib/security/cacerts", "jre/lib/security/cacerts"):
            if (jdk / rel).is_file():
                return JavaKeystore(jdk / rel, keytool, storepass, "JDK cacerts")
    raise PKIError(
        f"no lib/security/cacerts in {source}", hint="set JAVA_HOME to a JDK (a directory with lib/security/cacerts)"
    )


@dataclass
class _JavaEntry:
    kind: str  # trustedCertEntry | PrivateKeyEntry | ...
    ders: list[bytes]


def _keytool(ks: JavaKeystore, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run_command(
        # English whatever the locale ("Alias name:" is parsed below); and keytool is a
        # short-lived JVM: the C1 compiler alone and the serial GC halve its start-up.
        [ks.keytool, "-J-Duser.language=en", "-J-Duser.country=US", "-J-XX:TieredStopAtLevel=1",
         "-J-XX:+UseSerialGC", *args,
         "-keystore", str(ks.path), "-storepass:env", _STOREPASS_ENV],
        env={_STOREPASS_ENV: ks.storepass},
        check=check,
    )


def _java_entries(ks: JavaKeystore) -> dict[str, _JavaEntry]:
    done = _keytool(ks, "-list", "-rfc")
    entries: dict[str, _JavaEntry] = {}
    for block in re.split(r"^Alias name: ", done.stdout, flags=re.M)[1:]:
        alias, _, rest = block.partition("\n")
        kind = re.search(r"^Entry type: (\S+)", rest, re.M)
        entries[alias.strip()] = _JavaEntry(kind.group(1) if kind else "", pem_certs(rest.encode()))
    return entries


def _java_holder(entries: dict[str, _JavaEntry], der: bytes, name: str) -> str | None:
    """The alias of a trusted entry holding ``der``: ours first."""
    if name in entries and entries[name].kind == "trustedCertEntry" and der in entries[name].ders:
        return name
    for alias, e in entries.items():
        if e.kind == "trustedCertEntry" and der in e.ders:
            return alias
    return None


def _java_status(ks: JavaKeystore, cert: x509.Certificate) -> TrustResult:
    name = trust_name(cert)
    holder = _java_holder(_java_entries(ks), _der(cert), name)
    if holder is None:
        return TrustResult("java", str(ks.path), NOT_TRUSTED, ks.label)
    reason = None if holder == name else f"as alias {holder!r}, an entry tlskit did not create"
    return TrustResult("java", str(ks.path), TRUSTED, ks.label, reason=reason)


def _java_writable(ks: JavaKeystore, action: str, store_home) -> None:
    # keytool rewrites the file in place, through symlinks (Debian: /etc/ssl/certs/java/cacerts).
    check_writable(
        Path(os.path.realpath(ks.path)), action=action, target="java",
        store_home=store_home,
    )


def _java_install(ks: JavaKeystore, cert: x509.Certificate, store_home) -> TrustResult:
    name, der = trust_name(cert), _der(cert)
    entries = _java_entries(ks)
    ours = entries.get(name)
    if ours is not None and ours.kind == "trustedCertEntry" and der in ours.ders:
        return TrustResult("java", str(ks.path), ALREADY_INSTALLED, ks.label)
    _java_writable(ks, "install", store_home)
    if name in entries:  # our alias with something else in it: replace it
        _keytool(ks, "-delete", "-alias", name)
    _with_pem_file(cert, lambda p: _keytool(ks, "-importcert", "-noprompt", "-alias", name, "-file", str(p)))
    if _java_holder(_java_entries(ks), der, name) != name:
        raise PKIError(f"keytool reported success, but {ks.path} has no trusted entry {name!r}")
    return TrustResult("java", str(ks.path), INSTALLED, ks.label)


def _java_uninstall(ks: JavaKeystore, cert: x509.Certificate, store_home) -> TrustResult:
    name = trust_name(cert)
    entries = _java_entries(ks)
    if name not in entries:
        other = _java_holder(entries, _der(cert), name)
        reason = f"still trusted as alias {other!r}, an entry tlskit did not create" if other else None
        return TrustResult("java", str(ks.path), NOT_INSTALLED, ks.label, reason=reason)
    _java_writable(ks, "uninstall", store_home)
    _keytool(ks, "-delete", "-alias", name)
    return TrustResult("java", str(ks.path), REMOVED, ks.label)


# --- the three actions --------------------------------------------------------------------


@dataclass(frozen=True)
class _Where:
    home: Path | None
    system_store: SystemStore | None
    java_keystore: Path | None
    java_storepass: str
    store_home: Path | str | None


def _choose(targets: Iterable[str] | None) -> tuple[list[str], bool]:
    if not targets:
        return list(TARGETS), False
    chosen: list[str] = []
    for t in targets:
        if t not in TARGETS:
            raise PKIError(f"unknown trust target {t!r}", hint=f"use one of: {', '.join(TARGETS)}")
        if t not in chosen:
            chosen.append(t)
    return chosen, True


def _attempt(target: str, store: str, label: str, fn: Callable[[], TrustResult]) -> TrustResult:
    # One store failing must not hide what happened to the others: record it and go on.
    try:
        return fn()
    except PKIError as exc:
        return TrustResult(target, store, FAILED, label, exc.message, exc.hint)


def _system_results(action: str, cert: x509.Certificate, where: _Where, missing: str) -> list[TrustResult]:
    store = where.system_store or detect_system_store()
    if store is None:
        return [TrustResult(
            "system", "", missing, reason="no known system trust store on this machine",
            hint="supported: update-ca-certificates (Debian/Ubuntu, openSUSE), update-ca-trust (Fedora/RHEL), "
            "trust (Arch), security (macOS)",
        )]
    if action == "install":
        fn = lambda: _system_install(cert, store, where.store_home)  # noqa: E731
    elif action == "uninstall":
        fn = lambda: _system_uninstall(cert, store, where.store_home)  # noqa: E731
    else:
        fn = lambda: _system_status(cert, store)  # noqa: E731
    return [_attempt("system", store.location(trust_name(cert)), store.label, fn)]


def _nss_results(action: str, cert: x509.Certificate, where: _Where, missing: str) -> list[TrustResult]:
    certutil = find_certutil()
    dbs = find_nss_databases(where.home)
    if certutil is None:
        found = ", ".join(str(d.path) for d in dbs if d.exists) or "none yet"
        return [TrustResult("nss", "", missing, reason=f"certutil not found (NSS databases: {found})", hint=CERTUTIL_HINT)]
    if action == "uninstall":
        dbs = [d for d in dbs if d.exists]
    if not dbs:
        outcome = NOT_INSTALLED if action == "uninstall" else missing
        return [TrustResult("nss", "", outcome, reason="no NSS database (no ~/.pki/nssdb, no Firefox profile)")]
    results = []
    for db in dbs:
        if action == "install":
            fn = lambda d=db: _nss_install(certutil, d, cert, where.store_home)  # noqa: E731
        elif action == "uninstall":
            fn = lambda d=db: _nss_uninstall(certutil, d, cert, where.store_home)  # noqa: E731
        else:
            fn = lambda d=db: _nss_status(certutil, d, cert)  # noqa: E731
        results.append(_attempt("nss", str(db.path), db.label, fn))
    return results


def _java_results(action: str, cert: x509.Certificate, where: _Where, missing: str) -> list[TrustResult]:
    try:
        ks = find_java_keystore(where.java_keystore, storepass=where.java_storepass)
    except PKIError as exc:
        return [TrustResult("java", "", missing, reason=exc.message, hint=exc.hint)]
    if action == "install":
        fn = lambda: _java_install(ks, cert, where.store_home)  # noqa: E731
    elif action == "uninstall":
        fn = lambda: _java_uninstall(ks, cert, where.store_home)  # noqa: E731
    else:
        fn = lambda: _java_status(ks, cert)  # noqa: E731
    return [_attempt("java", str(ks.path), ks.label, fn)]


_BY_TARGET = {"system": _system_results, "nss": _nss_results, "java": _java_results}


def _run_action(action: str, cert: x509.Certificate, targets: Iterable[str] | None, where: _Where) -> TrustReport:
    from tlskit import pki

    if not pki.is_ca(cert):
        raise PKIError(
            f"{cert.subject.rfc4514_string()} is not a CA certificate", hint="trust stores take CA certificates"
        )
    chosen, explicit = _choose(targets)
    report = TrustReport(
        action, trust_name(cert), cert.subject.rfc4514_string(), pki.fingerprint(cert), store_home=where.store_home
    )
    # A target that is not on this machine fails only when asked for by name, and never for status.
    missing = FAILED if explicit and action != "status" else SKIPPED
    for target in chosen:
        report.results.extend(_BY_TARGET[target](action, cert, where, missing))
    for r in report.results:
        log.debug("trust %s: %s %s %s", action, r.target, r.store, r.outcome, extra={"trust_result": r})
    return report


def _where(home, system_store, java_keystore, java_storepass, store_home) -> _Where:
    return _Where(
        Path(home) if home is not None else None,
        system_store,
        Path(java_keystore) if java_keystore is not None else None,
        java_storepass,
        store_home,
    )


def install(
    ca_cert: x509.Certificate,
    targets: Iterable[str] | None = None,
    *,
    home: Path | str | None = None,
    system_store: SystemStore | None = None,
    java_keystore: Path | str | None = None,
    java_storepass: str = JAVA_STOREPASS,
    store_home: Path | str | None = None,
) -> TrustReport:
    """Make every chosen trust store trust ``ca_cert``; stores that already do are left alone.

    Args:
        ca_cert: the CA certificate (its key is not needed).
        targets: some of ``system``, ``nss``, ``java``; None means every target found
            on this machine (a missing one is ``skipped``; a named one ``failed``).
        home: the user's home, for the NSS databases (default ``$HOME``).
        system_store: the system store to change (default :func:`detect_system_store`).
        java_keystore: a keystore to change instead of the JDK's ``cacerts``.
        java_storepass: its password (``changeit`` is the JDK's default).
        store_home: the tlskit home, named in the ``sudo`` hint.

    Returns:
        A :class:`TrustReport`, one result per store: ``installed``, ``already
        installed``, ``skipped`` or ``failed``. Failures are recorded, not raised:
        call :meth:`TrustReport.raise_for_failures` after showing them.

    Raises:
        PKIError: ``ca_cert`` is not a CA, or a target name is unknown.
    """
    return _run_action("install", ca_cert, targets, _where(home, system_store, java_keystore, java_storepass, store_home))


def uninstall(
    ca_cert: x509.Certificate,
    targets: Iterable[str] | None = None,
    *,
    home: Path | str | None = None,
    system_store: SystemStore | None = None,
    java_keystore: Path | str | None = None,
    java_storepass: str = JAVA_STOREPASS,
    store_home: Path | str | None = None,
) -> TrustReport:
    """Remove what :func:`install` added for ``ca_cert`` (its :func:`trust_name` entries) and nothing else.

    Arguments as for :func:`install`.

    Returns:
        A :class:`TrustReport`: ``removed``, ``not installed``, ``skipped`` or ``failed``.

    Raises:
        PKIError: ``ca_cert`` is not a CA, or a target name is unknown.
    """
    return _run_action("uninstall", ca_cert, targets, _where(home, system_store, java_keystore, java_storepass, store_home))


def status(
    ca_cert: x509.Certificate,
    targets: Iterable[str] | None = None,
    *,
    home: Path | str | None = None,
    system_store: SystemStore | None = None,
    java_keystore: Path | str | None = None,
    java_storepass: str = JAVA_STOREPASS,
) -> TrustReport:
    """Whether each trust store trusts ``ca_cert`` now; changes nothing.

    system: tlskit's file holds the CA and the rebuilt bundle contains it (or the
    bundle has it from another file); nss: an entry holds it with TLS trust (``C``
    in the SSL flags); java: a ``trustedCertEntry`` holds it.

    Returns:
        A :class:`TrustReport`: ``trusted``, ``not trusted``, ``skipped`` (the target
        is not on this machine) or ``failed`` (the check itself failed).

    Raises:
        PKIError: ``ca_cert`` is not a CA, or a target name is unknown.
    """
    return _run_action("status", ca_cert, targets, _where(home, system_store, java_keystore, java_storepass, None))
