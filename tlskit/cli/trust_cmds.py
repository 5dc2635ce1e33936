"""``tlskit ca install`` / ``ca uninstall`` / ``ca status``: make this machine trust the store CA.

Only click and the shared options are imported here; the core (cryptography) and the
renderer (rich) are imported inside the commands, so ``tlskit --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from tlskit.cli.options import TlskitCommand, json_option

if TYPE_CHECKING:
    from tlskit.cli import App

TARGET_CHOICES = ("system", "nss", "java")


def target_option(verb: str):
    return click.option(
        "--target",
        "targets",
        multiple=True,
        type=click.Choice(TARGET_CHOICES),
        help=f"Only {verb} this trust store (repeatable): system, nss (Chromium, Firefox), java. "
        "[default: every one found]",
    )


@click.command("install", cls=TlskitCommand)
@target_option("change")
@json_option
@click.pass_obj
def install(app: App, targets: tuple[str, ...], as_json: bool) -> None:
    """Make this machine trust the store CA.

    Targets: system (update-ca-certificates / update-ca-trust / the macOS System
    keychain; needs root), nss (~/.pki/nssdb, created when missing, and every
    Firefox profile; needs certutil), java (the JDK's cacerts; needs keytool).
    Each entry is named tlskit-<SHA-256 prefix>, so a second run changes nothing
    and `tlskit ca uninstall` removes exactly these. Exits 6 when a store failed.

    \b
    Example:
        tlskit ca install
        tlskit ca install --target nss
        sudo tlskit --home ~/.local/share/tlskit ca install --target system
    """
    from tlskit import trust
    from tlskit.cli.trustconsole import print_trust_report

    report = trust.install(app.store.load_ca_cert(), targets or None, store_home=app.store.home)
    print_trust_report(app.ui, report, as_json=as_json)
    report.raise_for_failures()


@click.command("uninstall", cls=TlskitCommand)
@target_option("change")
@json_option
@click.pass_obj
def uninstall(app: App, targets: tuple[str, ...], as_json: bool) -> None:
    """Remove the store CA from the trust stores.

    Undoes `tlskit ca install`: only the entries named tlskit-<SHA-256 prefix> of
    the current CA are removed; anything else in a store, even the same
    certificate under another name, stays. Exits 6 when a store failed.

    \b
    Example:
        tlskit ca uninstall
        tlskit ca uninstall --target nss --json
        sudo tlskit --home ~/.local/share/tlskit ca uninstall --target system
    """
    from tlskit import trust
    from tlskit.cli.trustconsole import print_trust_report

    report = trust.uninstall(app.store.load_ca_cert(), targets or None, store_home=app.store.home)
    print_trust_report(app.ui, report, as_json=as_json)
    report.raise_for_failures()


@click.command("status", cls=TlskitCommand)
@target_option("check")
@json_option
@click.pass_obj
def status(app: App, targets: tuple[str, ...], as_json: bool) -> None:
    """Show which trust stores trust the store CA.

    Changes nothing and needs no root. Exits 0 whatever the answer (read --json
    for scripts), 6 only when a check itself failed.

    \b
    Example:
        tlskit ca status
        tlskit ca status --json | jq '.results[] | {target, store, outcome}'
    """
    from tlskit import trust
    from tlskit.cli.trustconsole import print_trust_report

    report = trust.status(app.store.load_ca_cert(), targets or None)
    print_trust_report(app.ui, report, as_json=as_json)
    report.raise_for_failures()
