"""``tlskit ca``: create and inspect the local certificate authority."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from tlskit.cli import SUMMARIES, App
from tlskit.cli.options import (
    TlskitSubGroup,
    days_option,
    force_option,
    json_option,
    key_type_option,
    passphrase_file_option,
    read_secret_file,
)

PASSPHRASE_ENV = "TLSKIT_CA_PASSPHRASE"


def _stdin_is_tty() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def ca_passphrase(passphrase_file: Path | None, *, new: bool = False) -> bytes | None:
    """The CA passphrase from the file, ``$TLSKIT_CA_PASSPHRASE``, or a prompt on a terminal."""
    secret = read_secret_file(passphrase_file)
    if secret is None and os.environ.get(PASSPHRASE_ENV):
        secret = os.environ[PASSPHRASE_ENV].encode()
    if secret is None and _stdin_is_tty():
        text = click.prompt(
            "New CA passphrase" if new else "CA passphrase",
            hide_input=True,
            confirmation_prompt=new,
            err=True,
        )
        secret = text.encode()
    return secret


def load_signing_ca(app: App, passphrase_file: Path | None):
    """The store CA with its key, asking for the passphrase only when the key is encrypted."""
    store = app.store
    passphrase = ca_passphrase(passphrase_file) if store.has_ca() and store.ca_key_encrypted() else None
    return store.load_ca(passphrase)


@click.group(cls=TlskitSubGroup, short_help=SUMMARIES["ca"])
def ca() -> None:
    """Create and inspect the local certificate authority.

    \b
    Example:
        tlskit ca init --permit localhost --permit .test --permit 127.0.0.0/8
        tlskit ca show
    """


@ca.command("init")
@click.option("--name", default=None, help="The CA's common name [default: 'tlskit CA user@host'].")
@key_type_option
@days_option("3650 (10 years)")
@click.option(
    "--permit",
    multiple=True,
    metavar="NAME",
    help="Only allow names under NAME (repeatable): DNS suffix (localhost, .test) or IP range (127.0.0.0/8).",
)
@click.option("--encrypt", is_flag=True, default=None, help="Encrypt the CA key with a passphrase.")
@passphrase_file_option("Read the new passphrase from FILE (else $TLSKIT_CA_PASSPHRASE, else a prompt).")
@force_option
@click.option("--yes", is_flag=True, help="With --force: replace the CA even though certificates it issued exist.")
@json_option
@click.pass_obj
def init(app: App, name, key_type, days, permit, encrypt, passphrase_file, force, yes, as_json) -> None:
    """Create a new local CA in HOME/ca.

    The CA certificate is an RFC 5280 root (basicConstraints CA:TRUE, keyUsage
    keyCertSign+cRLSign, both critical). With --permit it carries X.509 name
    constraints, so a leaked CA key cannot sign for the rest of the world.

    \b
    Example:
        tlskit ca init
        tlskit ca init --key-type rsa-3072 --days 1825
        tlskit ca init --permit localhost --permit .test --permit 127.0.0.0/8 --permit ::1
        TLSKIT_CA_PASSPHRASE=… tlskit ca init --encrypt
    """
    from tlskit import pki
    from tlskit.errors import PassphraseError

    settings = app.settings
    settings.apply_flags(
        "ca", {"name": name, "key_type": key_type, "days": days, "permit": permit, "encrypt": encrypt}
    )
    opts = settings.section("ca")
    store = app.store
    if store.has_ca() and not force:
        # Refuse before the (possibly slow) key generation and before any prompt.
        from tlskit.errors import PKIError

        raise PKIError(
            f"a CA already exists in {store.ca_dir}",
            hint="pass --force to replace it (the old files are kept as a backup)",
        )
    if store.has_ca() and force and not yes:
        _refuse_orphaning(store)
    passphrase = None
    if opts["encrypt"] or passphrase_file is not None:
        passphrase = ca_passphrase(passphrase_file, new=True)
        if not passphrase:
            raise PassphraseError(
                "--encrypt needs a passphrase",
                hint=f"pass --passphrase-file FILE or set {PASSPHRASE_ENV}",
            )
    new_ca = pki.create_ca(opts["name"] or None, key_type=opts["key_type"], days=opts["days"], permit=opts["permit"])
    saved = store.save_ca(new_ca, force=force, passphrase=passphrase)
    info = pki.describe_cert(new_ca.cert)
    paths = {"certificate": str(saved.cert), "key": str(saved.key)}
    if as_json:
        from tlskit.cli.plain import print_json

        print_json({**info, "paths": paths, "encrypted": bool(passphrase), "backup": str(saved.backup or "") or None})
        return
    app.plain.ca_created(info, paths, bool(passphrase), str(saved.backup) if saved.backup else None)


def _refuse_orphaning(store) -> None:
    """``ca init --force`` would silently break every certificate the old CA issued: ask twice."""
    from tlskit import pki
    from tlskit.errors import PKIError

    try:
        old = store.load_ca_cert()
    except PKIError:
        return  # an unreadable CA protects nothing
    issued = []
    for paths in store.list_certs():
        try:
            leaf = pki.load_certs(paths.cert.read_bytes())[0]
        except (PKIError, OSError):
            continue
        if leaf.issuer == old.subject:
            issued.append(paths.dir.name)
    if issued:
        shown = ", ".join(issued[:5]) + (f" and {len(issued) - 5} more" if len(issued) > 5 else "")
        raise PKIError(
            f"replacing the CA would stop {len(issued)} certificate(s) it issued from being trusted ({shown})",
            hint="pass --force --yes to replace it anyway, then re-issue them",
        )


@ca.command("show")
@json_option
@click.pass_obj
def show(app: App, as_json: bool) -> None:
    """Show the store CA: subject, key, validity, fingerprints, constraints, files.

    \b
    Example:
        tlskit ca show
        tlskit ca show --json | jq -r .sha256
    """
    from tlskit import pki

    store = app.store
    cert = store.load_ca_cert()
    info = pki.describe_cert(cert)
    paths = {"certificate": str(store.ca_cert_path), "key": str(store.ca_key_path)}
    encrypted = store.ca_key_encrypted()
    if as_json:
        from tlskit.cli.plain import print_json

        print_json({**info, "paths": paths, "encrypted": encrypted})
        return
    app.ui.out.print(app.ui.cert_table(info))
    app.ui.print_paths({**paths, "key encrypted": "yes" if encrypted else "no"})


from tlskit.cli.trust_cmds import install, status, uninstall  # noqa: E402

ca.add_command(install)
ca.add_command(uninstall)
ca.add_command(status)
