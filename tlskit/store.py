"""The files under HOME: a 0700 home, 0600 keys, atomic writes, no silent overwrite.

Layout (other commands and the tests rely on it)::

    HOME/ca/ca.crt  HOME/ca/ca.key
    HOME/certs/NAME/cert.pem  key.pem  chain.pem  [cert.p12]
    HOME/backups/<UTC time>-<what>/   files replaced by --force
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tlskit.errors import PKIError
from tlskit.names import safe_name

DIR_MODE = 0o700
KEY_MODE = 0o600
CERT_MODE = 0o644


def _write_temp(path: Path, data: bytes, mode: int) -> str:
    """A fsynced temporary file next to ``path`` holding ``data``, ``mode`` from the first instant.

    ``tempfile.mkstemp`` does the same (O_EXCL, 0600, a random name) but costs
    8 ms of imports (shutil, random) in commands that start in 0.2 s.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            fd = os.open(tmp, flags, 0o600)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 100 collisions of 48 random bits
        raise FileExistsError(f"no free temporary name next to {path}")
    try:
        if mode != 0o600:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        _unlink_quietly(tmp)
        raise
    return tmp


def _unlink_quietly(path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_dir(directory: Path) -> None:
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` so that no reader ever sees a partial or over-permissive file.

    The temporary file is created in the same directory with ``mode`` from the
    first instant (``mkstemp`` opens it 0600; we never widen it for keys), is
    fsynced, then renamed over the target; the directory is fsynced too so the
    rename survives a crash.
    """
    write_atomic_group([(Path(path), data, mode)])


def write_atomic_group(files: list[tuple[Path, bytes, int]]) -> None:
    """:func:`write_atomic` for files that belong together (a key and its certificate).

    Every file is written and fsynced to a temporary first; only then are they
    renamed, back to back, in the order given. A crash while writing (the long
    part) leaves every old file in place; what remains is the window of the
    renames themselves, microseconds, which ``load`` catches as a key/certificate
    mismatch with a hint to restore from HOME/backups.
    """
    staged: list[tuple[str, Path]] = []
    try:
        for path, data, mode in files:
            staged.append((_write_temp(Path(path), data, mode), Path(path)))
        while staged:
            tmp, path = staged[0]
            os.replace(tmp, path)
            staged.pop(0)
    except BaseException:
        for tmp, _ in staged:
            _unlink_quietly(tmp)
        raise
    for d in {Path(p).parent for p, _, _ in files}:
        _fsync_dir(d)


def remove_stale_temps(directory: Path, names: Iterable[str]) -> list[Path]:
    """Delete the temporaries (``.NAME.*.tmp``) a killed writer left for ``names`` in ``directory``.

    Only a writer that died between ``mkstemp`` and ``rename`` leaves one, and a
    key's temporary is a copy of private key material: it must not linger. Called
    by the store before it writes the same files again.
    """
    removed = []
    for name in names:
        for tmp in Path(directory).glob(f".{name}.*.tmp"):
            _unlink_quietly(tmp)
            removed.append(tmp)
    return removed


def ensure_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700; tighten an existing tlskit dir."""
    path = Path(path)
    try:
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise PKIError(f"cannot create {path}: {exc.strerror}", hint="pass --home DIR or set TLSKIT_HOME") from exc
    return path


@dataclass(frozen=True)
class CertPaths:
    """Where one certificate of the store lives."""

    name: str
    dir: Path
    cert: Path
    key: Path
    chain: Path
    p12: Path

    def existing(self) -> list[Path]:
        return [p for p in (self.cert, self.key, self.chain, self.p12) if p.exists()]


@dataclass(frozen=True)
class SavedCA:
    cert: Path
    key: Path
    backup: Path | None


class Store:
    """The CA and certificates under one home directory."""

    def __init__(self, home: Path | str) -> None:
        self.home = Path(home).expanduser()

    # -- paths ---------------------------------------------------------------
    @property
    def ca_dir(self) -> Path:
        return self.home / "ca"

    @property
    def ca_cert_path(self) -> Path:
        return self.ca_dir / "ca.crt"

    @property
    def ca_key_path(self) -> Path:
        return self.ca_dir / "ca.key"

    @property
    def certs_dir(self) -> Path:
        return self.home / "certs"

    def cert_paths(self, name: str) -> CertPaths:
        folder = self.certs_dir / safe_name(name)
        return CertPaths(
            name=name,
            dir=folder,
            cert=folder / "cert.pem",
            key=folder / "key.pem",
            chain=folder / "chain.pem",
            p12=folder / "cert.p12",
        )

    def has_ca(self) -> bool:
        return self.ca_cert_path.exists()

    # -- writing ---------------------------------------------------------------
    def _backup(self, files: Iterable[Path], label: str) -> Path | None:
        files = [f for f in files if f.exists()]
        if not files:
            return None
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        # backups/ itself 0700 too: mkdir(parents=True) would create it with the umask's mode.
        dest = ensure_dir(ensure_dir(self.home / "backups") / f"{stamp}-{safe_name(label)}")
        import shutil

        for f in files:
            # copy2 keeps the 0600 mode of keys; the backups dir is 0700 anyway.
            shutil.copy2(f, dest / f.name)
        return dest

    def _refuse_overwrite(self, files: Iterable[Path], what: str) -> None:
        present = [f for f in files if f.exists()]
        if present:
            raise PKIError(
                f"{what} already exists ({present[0]})",
                hint="pass --force to replace it (the old files are kept as a backup)",
            )

    def save_ca(self, ca, *, force: bool = False, passphrase: bytes | None = None) -> SavedCA:
        """Write the CA certificate and key (key 0600, encrypted when ``passphrase`` is given).

        Raises:
            PKIError: a CA exists and ``force`` is false.
        """
        from tlskit import pki

        files = [self.ca_cert_path, self.ca_key_path]
        if not force:
            self._refuse_overwrite(files, "a CA")
        ensure_dir(self.home)
        ensure_dir(self.ca_dir)
        remove_stale_temps(self.ca_dir, [f.name for f in files])
        backup = self._backup(files, "ca") if force else None
        key_pem = pki.key_to_pem(ca.key, passphrase)
        cert_pem = pki.cert_to_pem(ca.cert)
        # Both staged before either is renamed; key first, so no certificate appears without its key.
        write_atomic_group([(self.ca_key_path, key_pem, KEY_MODE), (self.ca_cert_path, cert_pem, CERT_MODE)])
        return SavedCA(self.ca_cert_path, self.ca_key_path, backup)

    def save_cert(
        self,
        issued,
        *,
        name: str | None = None,
        force: bool = False,
        p12: bytes | None = None,
    ) -> tuple[CertPaths, Path | None]:
        """Write ``cert.pem``, ``key.pem`` (0600), ``chain.pem`` (leaf then CA), and optionally ``cert.p12``.

        Returns:
            The paths and the backup folder (when ``force`` replaced files).

        Raises:
            PKIError: the certificate exists and ``force`` is false.
        """
        from tlskit import pki

        name = name or issued.names[0].value
        paths = self.cert_paths(name)
        files = [paths.cert, paths.key, paths.chain, paths.p12]
        if not force:
            self._refuse_overwrite(files, f"a certificate named {name!r}")
        ensure_dir(self.home)
        ensure_dir(self.certs_dir)
        ensure_dir(paths.dir)
        remove_stale_temps(paths.dir, [f.name for f in files])
        backup = self._backup(files, f"cert-{name}") if force else None
        if force:
            for f in (paths.key, paths.p12):
                # Stale files must not survive next to the new certificate.
                if f.exists() and (f is paths.p12 and p12 is None or f is paths.key and issued.key is None):
                    f.unlink()
        leaf = pki.cert_to_pem(issued.cert)
        group = []
        if issued.key is not None:
            group.append((paths.key, pki.key_to_pem(issued.key), KEY_MODE))
        if p12 is not None:
            group.append((paths.p12, p12, KEY_MODE))
        group.append((paths.chain, leaf + pki.cert_to_pem(issued.ca_cert), CERT_MODE))
        group.append((paths.cert, leaf, CERT_MODE))
        # Staged together, renamed back to back: a crash leaves the old set or the new one.
        write_atomic_group(group)
        return paths, backup

    # -- reading ---------------------------------------------------------------
    def ca_key_encrypted(self) -> bool:
        from tlskit import pki

        try:
            return pki.is_encrypted_pem(self.ca_key_path.read_bytes())
        except FileNotFoundError:
            return False

    def load_ca_cert(self):
        from tlskit import pki

        if not self.ca_cert_path.exists():
            raise PKIError(f"no CA in {self.home}", hint="run: tlskit ca init")
        return pki.load_certs(self.ca_cert_path.read_bytes(), what=str(self.ca_cert_path))[0]

    def load_ca(self, passphrase: bytes | None = None):
        """The store CA with its key.

        Raises:
            PKIError: no CA (hint ``tlskit ca init``), unreadable files.
            PassphraseError: the key is encrypted and the passphrase is missing or wrong.
        """
        from tlskit import pki

        cert = self.load_ca_cert()
        try:
            key_data = self.ca_key_path.read_bytes()
        except FileNotFoundError as exc:
            raise PKIError(
                f"the CA key {self.ca_key_path} is missing",
                hint="restore it from a backup, or run: tlskit ca init --force",
            ) from exc
        key = pki.load_key(key_data, passphrase, what=f"the CA key {self.ca_key_path}")
        if not pki.key_matches_cert(key, cert):
            raise PKIError(
                f"the CA key {self.ca_key_path} does not match {self.ca_cert_path}",
                hint="restore the pair from HOME/backups, or run: tlskit ca init --force",
            )
        return pki.CA(cert, key)

    def list_certs(self) -> list[CertPaths]:
        """Every certificate folder that holds a ``cert.pem``, sorted by name."""
        if not self.certs_dir.is_dir():
            return []
        out = []
        for folder in sorted(self.certs_dir.iterdir()):
            if (folder / "cert.pem").is_file():
                out.append(self.cert_paths(folder.name))
        return out

    def resolve_cert(self, name_or_file: str) -> CertPaths:
        """A store NAME or a certificate file path, as :class:`CertPaths`.

        A path wins when it exists; a file given as ``cert.pem`` gets its key from
        ``key.pem`` next to it when present.

        Raises:
            PKIError: neither a file nor a store certificate; hint names the fix.
        """
        path = Path(name_or_file).expanduser()
        if path.is_file():
            key = path.with_name("key.pem")
            return CertPaths(
                name=path.stem, dir=path.parent, cert=path, key=key, chain=path, p12=path.with_suffix(".p12")
            )
        paths = self.cert_paths(name_or_file)
        if paths.cert.is_file():
            return paths
        raise PKIError(
            f"no certificate for {name_or_file!r}",
            hint=f"run: tlskit cert issue {name_or_file}",
        )
