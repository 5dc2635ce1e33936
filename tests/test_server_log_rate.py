"""The per-connection log governor (``Server(log_rate=N)``), over real loopback sockets."""

from __future__ import annotations

from tlskit import client


def _echo(port, certs):
    return client.connect("127.0.0.1", port, ca=certs.ca, system_ca=False, send=b"ping\n", quiet=0.2, timeout=5)


def test_above_log_rate_connections_are_counted_and_summarised(serve, certs, events):
    srv = serve(log_rate=3)
    for _ in range(4):
        assert _echo(srv.port, certs).reply == b"ping\n"
    busy = events.wait("busy", timeout=5)
    assert busy.log_rate == 3 and sum(busy.not_logged.values()) >= 1
    srv.stop()  # the last second's count is logged before "stopped"
    logged = sum(len(events.of(e)) for e in ("accepted", "handshake_ok", "closed"))
    counted = sum(n for r in events.of("busy") for n in r.not_logged.values())
    assert logged + counted == 4 * 3  # every per-connection record is either logged or counted
    assert srv.server.stats.handshakes_ok == 4  # the counters never skip

def test_without_log_rate_every_connection_is_logged(serve, certs, events):
    # The negative twin: the library default logs every event and never says "busy".
    srv = serve()
    for _ in range(4):
        assert _echo(srv.port, certs).reply == b"ping\n"
    events.wait("closed", timeout=5, where=lambda r: len(events.of("closed")) >= 4)
    assert len(events.of("handshake_ok")) == 4 and not events.of("busy")
