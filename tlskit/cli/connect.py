"""``tlskit connect``: a TLS client that reports the handshake and explains every failure."""

from __future__ import annotations

import click

from tlskit.cli import SUMMARIES, App
from tlskit.cli.options import TlskitCommand, alpn_option, json_option, keylog_option, tls_version_options

MAX_STDIN = 16 * 1024 * 1024


class AddressType(click.ParamType):
    """``HOST[:PORT]``, ``[IPv6]:PORT`` or ``https://host:port/``; checked at parse time."""

    name = "HOST[:PORT]"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        from tlskit.client import parse_address

        try:
            host, port = parse_address(value, default_port=0, default_host="")
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return host or None, port or None


def _stdin_bytes() -> bytes | None:
    """What was piped in, when stdin is not a terminal (``echo hi | tlskit connect``)."""
    import sys

    stream = sys.stdin
    try:
        if stream is None or stream.isatty():
            return None
    except (AttributeError, ValueError):
        return None
    buffer = getattr(stream, "buffer", None)
    data = buffer.read(MAX_STDIN) if buffer is not None else stream.read(MAX_STDIN).encode()
    return data or None


@click.command("connect", cls=TlskitCommand, short_help=SUMMARIES["connect"])
@click.argument("target", required=False, type=AddressType(), metavar="[HOST[:PORT]]")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port, when TARGET has none [default: 8443].")
@click.option("--servername", default=None, metavar="NAME", help="SNI and the name to check, e.g. when connecting to an IP or a tunnel.")
@click.option("--ca", default=None, metavar="FILE", help="Trust only this CA file [default: the store CA and the system store].")
@click.option("--system-ca/--no-system-ca", "system_ca", default=None, help="Also trust the system CA store [default: yes, unless --ca].")
@click.option("--cert", default=None, metavar="NAME|FILE", help="Client certificate for mTLS: a store NAME or a PEM file.")
@click.option("--key", default=None, metavar="FILE", help="Client key, when --cert is a file without key.pem beside it.")
@alpn_option
@tls_version_options
@click.option("--ciphers", default=None, metavar="STRING", help="OpenSSL cipher string for TLS 1.2.")
@click.option("--timeout", type=click.FloatRange(min=0.001), default=None, metavar="SECONDS", help="For connect, handshake and reply [default: 10].")
@keylog_option
@click.option("--insecure", is_flag=True, default=None, help="Do not verify the server (it still reports what would have failed).")
@click.option("--send", default=None, metavar="TEXT", help="Send TEXT after the handshake and print the reply (else piped stdin is sent).")
@click.option("--warn-days", type=click.IntRange(min=0), default=None, metavar="N", help="Exit 5 when the certificate expires within N days.")
@json_option
@click.pass_obj
def connect(app: App, target, port, servername, ca, system_ca, cert, key, alpn, min_tls, max_tls, ciphers, timeout,
            keylog, insecure, send, warn_days, as_json) -> None:
    """Connect to a TLS server, show the handshake and the certificate chain.

    When the handshake fails, says why in plain words (hostname not in the
    certificate, untrusted CA, expired, client certificate required …) and
    exits 4 (network) or 5 (TLS). Piped stdin or --send is sent and the reply
    printed on stdout (the handshake summary then goes to stderr).

    \b
    Example:
        tlskit connect                          # localhost:8443
        echo hi | tlskit connect localhost:8443
        tlskit connect '[::1]:8443' --json | jq .tls_version
        tlskit connect 127.0.0.1:8443 --servername localhost
        tlskit connect --cert alice             # mTLS with a store client certificate
        tlskit connect example.test:443 --warn-days 30
    """
    # No rich, no asyncio, and cryptography only for the chain: this is a one-shot command.
    from tlskit import client
    from tlskit.cli.connectview import (
        MessageHandler,
        Out,
        attach_handler,
        detach_handler,
        failure_json,
        log_level,
        print_failure,
        print_report,
        write_reply,
    )
    from tlskit.cli.plain import print_json
    from tlskit.errors import TLSError, TlskitError

    t_host, t_port = target if target else (None, None)
    if t_port is not None and port is not None and t_port != port:
        raise click.BadParameter(f"the port is given twice ({t_port} and --port {port})", param_hint="TARGET")
    settings = app.settings
    settings.apply_flags("connect", {
        "host": t_host, "port": t_port or port, "servername": servername, "ca": ca, "system_ca": system_ca,
        "cert": cert, "key": key, "alpn": alpn, "min_tls": min_tls, "max_tls": max_tls, "ciphers": ciphers,
        "timeout": timeout, "keylog": keylog, "insecure": insecure, "warn_days": warn_days,
    })
    opts = settings.section("connect")
    store = app.store
    if opts["ca"]:
        # --ca means "trust only this", unless the system store was asked for explicitly.
        trust = [opts["ca"]]
        use_system = opts["system_ca"] and settings.source("connect", "system_ca") != "default"
    else:
        trust = [str(store.ca_cert_path)] if store.has_ca() else []
        use_system = opts["system_ca"]
    cert_file = key_file = None
    if opts["cert"]:
        paths = store.resolve_cert(opts["cert"])
        cert_file = paths.cert
        key_file = opts["key"] or (paths.key if paths.key.exists() else None)
    elif opts["key"]:
        raise click.BadParameter("--key needs --cert", param_hint="--key")
    payload = send.encode() if send is not None else _stdin_bytes()
    out = Out(color=not app.no_color, quiet=app.quiet, verbose=app.verbose)
    handler = attach_handler(
        MessageHandler(out), log_level(quiet=app.quiet, verbose=app.verbose), ("tlskit.contexts", "tlskit.client")
    )
    try:
        try:
            result = client.connect(
                opts["host"],
                opts["port"],
                ca=trust,
                system_ca=use_system,
                cert=cert_file,
                key=key_file,
                alpn=opts["alpn"],
                min_tls=opts["min_tls"] or None,
                max_tls=opts["max_tls"] or None,
                ciphers=opts["ciphers"] or None,
                keylog=opts["keylog"] or None,
                insecure=opts["insecure"],
                servername=opts["servername"] or None,
                timeout=opts["timeout"],
                send=payload,
                warn_days=opts["warn_days"],
            )
        except TlskitError as exc:
            if as_json:
                print_json(failure_json(exc, exc.exit_code))
            elif app.verbose:
                print_failure(out, exc)
            raise
    finally:
        detach_handler(handler)
    if as_json:
        print_json(result.to_dict())
    else:
        print_report(out, result.report, to_stderr=payload is not None)
        if result.reply:
            write_reply(result.reply)
    if result.expiry_warning:
        raise TLSError(result.expiry_warning, hint="renew it before it expires: tlskit cert issue NAME --force")
