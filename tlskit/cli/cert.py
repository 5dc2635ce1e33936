"""``tlskit cert``: issue, show, verify and list certificates."""

from __future__ import annotations

from pathlib import Path

import click

from tlskit.cli import SUMMARIES, App
from tlskit.cli.ca import load_signing_ca
from tlskit.cli.options import (
    TlskitSubGroup,
    days_option,
    force_option,
    json_option,
    key_type_option,
    passphrase_file_option,
    read_secret_file,
)


@click.group(cls=TlskitSubGroup, short_help=SUMMARIES["cert"])
def cert() -> None:
    """Issue, show, verify and list certificates.

    \b
    Example:
        tlskit cert issue localhost 127.0.0.1 ::1
        tlskit cert list
    """


def _p12_password(password_file: Path | None) -> bytes:
    secret = read_secret_file(password_file)
    if secret is None:
        from tlskit.cli.ca import _stdin_is_tty

        if not _stdin_is_tty():
            from tlskit.errors import PKIError

            raise PKIError("--p12 needs a password", hint="pass --p12-password-file FILE")
        secret = click.prompt("PKCS#12 password", hide_input=True, confirmation_prompt=True, err=True).encode()
    return secret


@cert.command("issue")
@click.argument("names", nargs=-1, metavar="NAME...")
@key_type_option
@days_option("825, the most Apple accepts")
@click.option("--client", is_flag=True, help="Client certificate (EKU clientAuth) for mutual TLS.")
@click.option("--server", is_flag=True, help="Server certificate (EKU serverAuth); the default, add it to --client for both.")
@click.option("--csr", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Sign this CSR instead of generating a key.")
@click.option("--p12", is_flag=True, help="Also write cert.p12 (PKCS#12, AES-256) for Java, Windows and browsers.")
@click.option("--p12-password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Read the PKCS#12 password from FILE.")
@passphrase_file_option()
@force_option
@json_option
@click.pass_obj
def issue(app: App, names, key_type, days, client, server, csr, p12, p12_password_file, passphrase_file, force, as_json) -> None:
    """Issue a certificate for NAMES, signed by the store CA.

    NAMES are DNS names (localhost, *.dev.test, international names become
    punycode), IP addresses (127.0.0.1, ::1), emails (user@dev.test) or URIs
    (spiffe://dev.test/api). All go in the SAN extension; the first is also the
    CN and names the folder HOME/certs/NAME/ (cert.pem, key.pem, chain.pem).

    \b
    Example:
        tlskit cert issue localhost 127.0.0.1 ::1
        tlskit cert issue '*.dev.test' dev.test
        tlskit cert issue --client alice            # for mTLS
        tlskit cert issue --csr app.csr             # keep your own key
        tlskit cert issue --p12 --p12-password-file pw.txt localhost
    """
    from tlskit import pki
    from tlskit.cli.plain import print_json

    settings = app.settings
    settings.apply_flags("cert", {"key_type": key_type, "days": days})
    opts = settings.section("cert")
    parsed_csr = None
    if csr is not None:
        parsed_csr, csr_names = pki.load_csr(csr.read_bytes())
        names = names or tuple(csr_names)
    # Check every name before touching the CA, its passphrase or the disk.
    idents = pki.classify_names(names)
    store = app.store
    first = idents[0].value
    paths = store.cert_paths(first)
    if not force and paths.existing():
        from tlskit.errors import PKIError

        raise PKIError(
            f"a certificate named {first!r} already exists ({paths.dir})",
            hint="pass --force to replace it (the old files are kept as a backup)",
        )
    if opts["days"] > pki.MAX_LEAF_DAYS:
        app.plain.warn(
            f"--days {opts['days']} is more than {pki.MAX_LEAF_DAYS}: Apple platforms (macOS, iOS, Safari) "
            "will reject this certificate"
        )
    if opts["key_type"] == "ed25519" and (server or not client):
        app.plain.warn("browsers (Chrome, Firefox, Safari) do not accept Ed25519 server certificates; prefer ecdsa-p256")
    signing_ca = load_signing_ca(app, passphrase_file)
    issued = pki.issue_cert(
        signing_ca,
        [i.value for i in idents],
        key_type=opts["key_type"],
        days=opts["days"],
        server=server or not client,
        client=client,
        csr=parsed_csr,
    )
    p12_bytes = None
    if p12:
        p12_bytes = pki.to_pkcs12(issued, _p12_password(p12_password_file), friendly_name=first)
    saved, backup = store.save_cert(issued, name=first, force=force, p12=p12_bytes)
    info = pki.describe_cert(issued.cert)
    files = {"certificate": str(saved.cert), "chain": str(saved.chain)}
    if issued.key is not None:
        files["key"] = str(saved.key)
    if p12_bytes is not None:
        files["pkcs12"] = str(saved.p12)
    if as_json:
        print_json({**info, "name": first, "paths": files, "backup": str(backup) if backup else None})
        return
    app.plain.issued(info, files, str(backup) if backup else None)


def _load_any(app: App, target: str, p12_password_file: Path | None, *, chain: bool = False):
    """Certificates from a file (PEM, DER, PKCS#12) or a store NAME (its leaf, or with ``chain`` leaf + CA)."""
    from tlskit import pki

    path = Path(target).expanduser()
    if not path.is_file():
        paths = app.store.resolve_cert(target)
        path = paths.chain if chain else paths.cert
    data = path.read_bytes()
    if path.suffix.lower() in (".p12", ".pfx"):
        _, certs = pki.load_pkcs12(data, read_secret_file(p12_password_file))
        return certs, path
    return pki.load_certs(data, what=str(path)), path


@cert.command("show")
@click.argument("target", metavar="FILE|NAME")
@click.option("--p12-password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Password of a PKCS#12 file.")
@json_option
@click.pass_obj
def show(app: App, target: str, p12_password_file, as_json: bool) -> None:
    """Show a certificate, a chain file or a PKCS#12 bundle in readable form.

    \b
    Example:
        tlskit cert show localhost
        tlskit cert show /etc/ssl/certs/ISRG_Root_X1.pem
        tlskit cert show localhost --json | jq .days_left
    """
    from tlskit import pki

    certs, path = _load_any(app, target, p12_password_file)
    infos = [pki.describe_cert(c) for c in certs]
    if as_json:
        from tlskit.cli.plain import print_json

        print_json(infos[0] if len(infos) == 1 else {"file": str(path), "chain": infos})
        return
    app.ui.show_cert(infos, str(path))


@cert.command("verify")
@click.argument("target", metavar="FILE|NAME")
@click.option("--host", default=None, help="Check this host name or IP against the SANs.")
@click.option("--ca", "ca_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Trust this CA file instead of the store CA.")
@click.option("--purpose", type=click.Choice(["server", "client"]), default="server", show_default=True, help="What the certificate must be good for.")
@json_option
@click.pass_obj
def verify_cmd(app: App, target: str, host, ca_file, purpose, as_json: bool) -> None:
    """Verify a certificate against the CA, and say in plain words what fails.

    Uses the X.509 verification of the cryptography package (the Web-PKI rules
    browsers apply). Without --host a server certificate is checked for each of
    its names. Exit status 5 when it does not verify.

    \b
    Example:
        tlskit cert verify localhost
        tlskit cert verify localhost --host 127.0.0.1
        tlskit cert verify alice --purpose client
        tlskit cert verify server.pem --ca other-ca.pem --host api.test
    """
    from tlskit import pki, verify

    certs, _ = _load_any(app, target, None, chain=True)
    if ca_file is not None:
        roots = [c for c in pki.load_certs(ca_file.read_bytes(), what=str(ca_file)) if pki.is_ca(c)]
        if not roots:
            from tlskit.errors import PKIError

            raise PKIError(f"{ca_file} contains no CA certificate")
    else:
        roots = [app.store.load_ca_cert()]
    result = verify.verify_chain(certs, roots, host=host, purpose=purpose)
    if as_json:
        from tlskit.cli.plain import print_json

        print_json(result.to_dict())
    else:
        app.ui.verify_result(result.to_dict())
    verify.raise_for(result)




@cert.command("list")
@json_option
@click.pass_obj
def list_cmd(app: App, as_json: bool) -> None:
    """List the store's certificates with their names and expiry.

    \b
    Example:
        tlskit cert list
        tlskit cert list --json | jq -r '.[] | select(.days_left < 30) | .name'
    """
    from tlskit import pki
    from tlskit.errors import TlskitError

    rows = []
    for paths in app.store.list_certs():
        try:
            leaf = pki.load_certs(paths.cert.read_bytes(), what=str(paths.cert))[0]
        except (TlskitError, OSError) as exc:
            rows.append({"name": paths.dir.name, "path": str(paths.cert), "error": str(exc)})
            continue
        info = pki.describe_cert(leaf)
        rows.append({"name": paths.dir.name, "path": str(paths.cert), **info})
    if as_json:
        from tlskit.cli.plain import print_json

        print_json(rows)
        return
    app.ui.cert_list(rows, str(app.store.home))
