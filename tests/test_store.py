"""The store: 0700 dirs, 0600 keys from the first instant, atomic writes, no silent overwrite."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from tlskit import pki
from tlskit.errors import PKIError
from tlskit.store import Store, write_atomic


def _mode(p: Path) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


@pytest.fixture(scope="module")
def ca():
    return pki.create_ca(name="store test CA")


def test_keys_are_0600_even_with_a_permissive_umask(tmp_path, ca):
    old = os.umask(0)
    try:
        store = Store(tmp_path / "home")
        store.save_ca(ca)
        paths, _ = store.save_cert(pki.issue_cert(ca, ["localhost"]))
    finally:
        os.umask(old)
    assert _mode(store.home) == 0o700
    assert _mode(store.ca_key_path) == 0o600
    assert _mode(paths.key) == 0o600
    assert _mode(paths.cert) == 0o644


def test_key_is_never_visible_with_wider_mode(tmp_path, ca):
    """Watch the directory while keys are written: every file that appears is already 0600."""
    target = tmp_path / "k"
    target.mkdir()
    seen: list[int] = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            for entry in os.scandir(target):
                try:
                    seen.append(stat.S_IMODE(entry.stat().st_mode))
                except FileNotFoundError:
                    pass

    old = os.umask(0)
    thread = threading.Thread(target=watch)
    thread.start()
    try:
        for i in range(200):
            write_atomic(target / "key.pem", pki.key_to_pem(ca.key), 0o600)
    finally:
        stop.set()
        thread.join(10)
        os.umask(old)
    assert seen, "the watcher saw no file"
    assert set(seen) == {0o600}


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "ca.key"
    path.write_bytes(b"old")

    class Boom(bytes):
        pass

    with pytest.raises(TypeError):
        write_atomic(path, object(), 0o600)  # type: ignore[arg-type]  # fails mid-write
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.key"]


def test_save_refuses_to_overwrite_and_force_backs_up(tmp_path, ca):
    store = Store(tmp_path / "home")
    store.save_ca(ca)
    with pytest.raises(PKIError, match="a CA already exists"):
        store.save_ca(pki.create_ca())
    assert store.load_ca().cert == ca.cert
    new = pki.create_ca(name="second")
    saved = store.save_ca(new, force=True)
    assert saved.backup is not None and (saved.backup / "ca.key").exists()
    assert _mode(saved.backup / "ca.key") == 0o600
    assert store.load_ca().cert == new.cert


def test_load_ca_checks_the_key_matches(tmp_path, ca):
    store = Store(tmp_path / "home")
    store.save_ca(ca)
    other = pki.create_ca()
    store.ca_key_path.write_bytes(pki.key_to_pem(other.key))
    with pytest.raises(PKIError, match="does not match"):
        store.load_ca()


def test_resolve_cert_by_name_and_by_file(tmp_path, ca):
    store = Store(tmp_path / "home")
    store.save_ca(ca)
    paths, _ = store.save_cert(pki.issue_cert(ca, ["*.dev.test"]))
    assert paths.dir.name == "_wildcard.dev.test"
    assert store.resolve_cert("*.dev.test") == paths
    by_file = store.resolve_cert(str(paths.cert))
    assert by_file.cert == paths.cert and by_file.key == paths.key
    with pytest.raises(PKIError) as err:
        store.resolve_cert("localhost")
    assert str(err.value) == "no certificate for 'localhost'; run: tlskit cert issue localhost"


def test_list_certs_skips_backups_and_junk(tmp_path, ca):
    store = Store(tmp_path / "home")
    store.save_ca(ca)
    store.save_cert(pki.issue_cert(ca, ["b.test"]))
    store.save_cert(pki.issue_cert(ca, ["a.test"]))
    store.save_cert(pki.issue_cert(ca, ["a.test", "www.a.test"]), force=True)
    (store.certs_dir / "empty").mkdir()
    assert [p.name for p in store.list_certs()] == ["a.test", "b.test"]
