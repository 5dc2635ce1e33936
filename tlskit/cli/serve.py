"""``tlskit serve``: a TLS test server (echo, or a small HTTP page) with every handshake logged."""

from __future__ import annotations

from pathlib import Path

import click

from tlskit.cli import SUMMARIES, App
from tlskit.cli.options import TlskitCommand, alpn_option, keylog_option, tls_version_options

# A rich line costs about 1.5 ms, more than a handshake: above this many per-connection lines a
# second the console gets a one-line count instead (-vv and --json-log still get every event).
CONSOLE_LINES_PER_SECOND = 50


def _sni_entry(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    for v in values:
        name, sep, cert = v.partition("=")
        if not sep or not name.strip() or not cert.strip():
            raise click.BadParameter(f"{v!r}: expected NAME=CERT (a store name or a PEM file)", param=param)
    return values


@click.command("serve", cls=TlskitCommand, short_help=SUMMARIES["serve"])
@click.option("--host", default=None, help="Listen on every address of HOST (IPv4 and IPv6) [default: localhost].")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port; 0 picks a free one [default: 8443].")
@click.option("--cert", default=None, metavar="NAME|FILE", help="Store certificate NAME or a PEM file [default: named after --host].")
@click.option("--key", default=None, metavar="FILE", help="Private key, when --cert is a file without key.pem beside it.")
@click.option("--client-ca", default=None, metavar="FILE", help="Require client certificates signed by this CA (mTLS).")
@click.option("--mtls", type=click.Choice(["off", "optional", "required"]), default=None, is_flag=False, flag_value="required",
              help="Client certificates: required (--mtls alone), optional, or off; checked against --client-ca or the store CA.")
@alpn_option
@tls_version_options
@click.option("--ciphers", default=None, metavar="STRING", help="OpenSSL cipher string for TLS 1.2 [default: ECDHE with AES-GCM or ChaCha20].")
@click.option("--handshake-timeout", type=click.FloatRange(min=0.001), default=None, metavar="SECONDS", help="Close a handshake that takes longer [default: 10].")
@click.option("--idle-timeout", type=click.FloatRange(min=0.001), default=None, metavar="SECONDS", help="Close a connection idle this long [default: 300].")
@click.option("--max-connections", type=click.IntRange(min=1), default=None, metavar="N", help="Refuse connections beyond N [default: 10000].")
@click.option("--sni", multiple=True, metavar="NAME=CERT", callback=_sni_entry, help="Serve CERT to clients asking for NAME (repeatable).")
@keylog_option
@click.option("--http/--echo", "http", default=None, help="Answer HTTP requests with a page about the handshake, instead of echoing [default: echo].")
@click.option("--json-log", is_flag=True, default=None, help="Write the events as JSON lines on stdout, for tools.")
@click.option("--workers", type=click.IntRange(1, 256), default=None, metavar="N",
              help="Run N server processes sharing the port (SO_REUSEPORT); dead ones are restarted [default: 1].")
@click.option("--loop", "loop", type=click.Choice(["auto", "asyncio", "uvloop"]), default=None,
              help="Event loop: uvloop when installed (auto), asyncio, or uvloop (pip install uvloop; "
                   "about 15% less CPU per handshake) [default: auto].")
@click.pass_obj
def serve(app: App, host, port, cert, key, client_ca, mtls, alpn, min_tls, max_tls, ciphers, handshake_timeout,
          idle_timeout, max_connections, sni, keylog, http, json_log, workers, loop) -> None:
    """Run a TLS test server: whatever a client sends comes back (or, with --http, a page).

    Every connection is logged: accepted, the handshake (version, cipher, SNI,
    ALPN, client certificate, time) or why it failed in plain words, and closed.
    -v adds the client's certificate chain. Ctrl-C or SIGTERM stops it cleanly
    with a summary.

    --workers N runs N processes on the same port (SO_REUSEPORT: the kernel
    spreads connections over them), one per core for the most handshakes per
    second. The parent accepts nothing: it shows every worker's events, tagged
    [worker N], starts a new worker when one dies, and stops them all on
    Ctrl-C/SIGTERM. --max-connections applies to each worker. At start the
    open-file limit (ulimit -n) is raised to the hard limit, with a warning when
    that is still too low for --max-connections.

    \b
    Example:
        tlskit serve                         # https://localhost:8443, certs/localhost
        tlskit serve --port 0 --http         # a free port; https://localhost:PORT/ shows your handshake
        tlskit serve --mtls                  # require a client certificate from the store CA
        tlskit serve --sni api.test=api.test --sni other.test=/path/other.pem
        tlskit serve --workers 2             # two processes on one port, e.g. for a load test
    """
    import asyncio
    import signal

    from tlskit import contexts
    from tlskit.cli.netconsole import install_log_handler, remove_log_handler
    from tlskit.server import Server

    settings = app.settings
    settings.apply_flags("serve", {
        "host": host, "port": port, "cert": cert, "key": key, "client_ca": client_ca, "mtls": mtls, "alpn": alpn,
        "min_tls": min_tls, "max_tls": max_tls, "ciphers": ciphers, "handshake_timeout": handshake_timeout,
        "idle_timeout": idle_timeout, "max_connections": max_connections, "sni": sni, "keylog": keylog,
        "http": http, "json_log": json_log, "workers": workers, "loop": loop,
    })
    opts = settings.section("serve")
    store = app.store
    from tlskit.server import is_wildcard_host

    if opts["cert"]:
        cert_file, key_file, cert_name = _resolve_pair(store, opts["cert"], opts["key"] or None)
    else:
        host_name = "localhost" if is_wildcard_host(opts["host"]) else opts["host"]
        cert_file, key_file, cert_name = _default_pair(store, host_name)
    mode = opts["mtls"]
    alpn_protocols = opts["alpn"]
    if opts["http"] and settings.source("serve", "alpn") == "default":
        alpn_protocols = ["http/1.1"]  # what the HTTP mode speaks; h2 only when --alpn asks for it
    client_ca_file = opts["client_ca"] or None
    if client_ca_file is None and mode != "off" and store.has_ca():
        client_ca_file = str(store.ca_cert_path)
    sni_map = {}
    for entry in opts["sni"]:
        name, _, ref = entry.partition("=")
        c, k, _ = _resolve_pair(store, ref.strip(), None)
        sni_map[name.strip()] = (c, k)
    policy = _loop_policy(opts["loop"])
    handler = install_log_handler(app.ui, json_lines=opts["json_log"])
    saved_policy = asyncio.get_event_loop_policy()
    if policy is not None:
        asyncio.set_event_loop_policy(policy)
    try:
        ctx = contexts.create_server_context(
            cert_file,
            key_file,
            client_ca=client_ca_file,
            mtls=mode,
            alpn=alpn_protocols,
            min_tls=opts["min_tls"] or None,
            max_tls=opts["max_tls"] or None,
            ciphers=opts["ciphers"] or None,
            keylog=opts["keylog"] or None,
            sni=sni_map or None,
        )

        every_line = opts["json_log"] or app.ui.verbose >= 2
        log_rate = None if every_line else max(1, CONSOLE_LINES_PER_SECOND // opts["workers"])

        def create_server(port: int, reuse_port: bool = False) -> Server:
            return Server(
                ctx,
                opts["host"],
                port,
                handshake_timeout=opts["handshake_timeout"],
                idle_timeout=opts["idle_timeout"],
                max_connections=opts["max_connections"],
                http=opts["http"],
                reuse_port=reuse_port,
                name=cert_name,
                log_rate=log_rate,
            )

        if opts["workers"] > 1:
            from tlskit.workers import WorkerPool

            pool = WorkerPool(lambda p: create_server(p, reuse_port=True), opts["workers"], port=opts["port"],
                              level=handler.level)
            pool.run()
            return
        server = create_server(opts["port"])

        async def run() -> None:
            loop = asyncio.get_running_loop()
            stop_requested = False

            def stop() -> None:
                nonlocal stop_requested
                stop_requested = True
                server.close()  # a no-op until the server has started

            # Before binding: a signal during start-up must also stop cleanly.
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, stop)
                except (NotImplementedError, RuntimeError, ValueError):
                    pass  # not the main thread, or not a Unix loop: Ctrl-C still ends asyncio.run
            await server.start()
            if stop_requested:
                server.close()
            await server.serve()

        asyncio.run(run())
    finally:
        remove_log_handler(handler)
        if policy is not None:
            asyncio.set_event_loop_policy(saved_policy)


def _loop_policy(name: str):
    """The event loop policy for ``--loop``; None for asyncio's own.

    uvloop runs the same protocol code (alerts included: the outgoing BIO is flushed before
    close either way) with less overhead per callback. It is optional, not a dependency:
    ``auto`` uses it when it is installed, as uvicorn's ``--loop auto`` does.
    """
    if name == "asyncio":
        return None
    from tlskit.errors import ConfigError

    try:
        import uvloop
    except ImportError as exc:
        if name == "auto":
            return None
        raise ConfigError("--loop uvloop needs the uvloop package", hint="pip install uvloop, or use --loop asyncio") from exc
    return uvloop.EventLoopPolicy()


def _resolve_pair(store, ref: str, key: str | None) -> tuple[Path, Path | None, str]:
    """A store NAME or a PEM file as (certificate, key, display name); the key beside it when present."""
    paths = store.resolve_cert(ref)
    key_path = Path(key).expanduser() if key else (paths.key if paths.key.exists() else None)
    return paths.cert, key_path, paths.name


def _default_pair(store, host: str) -> tuple[Path, Path | None, str]:
    """The store certificate named after ``host``, else the first store certificate that covers it.

    ``--host 127.0.0.1`` then finds ``certs/localhost`` issued for ``localhost 127.0.0.1 ::1``.

    Raises:
        PKIError: none: ``no certificate for 'HOST'; run: tlskit cert issue HOST``.
    """
    from tlskit.errors import PKIError

    try:
        return _resolve_pair(store, host, None)
    except PKIError as missing:
        from tlskit import pki
        from tlskit.verify import host_matches

        for paths in store.list_certs():
            try:
                leaf = pki.load_certs(paths.cert.read_bytes(), what=str(paths.cert))[0]
            except (PKIError, OSError):
                continue
            if host_matches(leaf, host) and paths.key.exists():
                return paths.cert, paths.key, paths.name
        raise missing
