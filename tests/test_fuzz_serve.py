"""Arbitrary bytes at a running server (hypothesis): a clean close, an alert or the 400, nothing else.

One in-process server takes every example (bounded: 150 examples, each a fresh
connection that sends its bytes, half-closes and reads for at most 2 s). The
inputs are raw bytes, TLS-looking records, and mutations of a real ClientHello
(truncated, bit-flipped, spliced) so the fuzzing reaches OpenSSL's parser and
our own first-flight checks. After the run the server still serves a
legitimate client, holds no connection, and no exception has escaped a
protocol callback (tests/conftest.py's autouse fixture fails the test if asyncio
logged one).
"""

from __future__ import annotations

import socket
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .test_hostile import alerts_in, assert_plain_log, real_client_hello, wait_released
from .test_server import echo

EXAMPLES = 150


def exchange(port: int, data: bytes, timeout: float = 2.0) -> tuple[bytes, str]:
    """Send, half-close, read until the server closes; returns (reply, how it ended)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            return b"", "reset"
        out, deadline = b"", time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                return out, "reset"
            except TimeoutError:
                return out, "timeout"
            if not chunk:
                return out, "closed"
            out += chunk
        return out, "timeout"


def acceptable(reply: bytes) -> bool:
    """Nothing, TLS records (an alert, or the start of a handshake) or our plain-HTTP 400."""
    if not reply:
        return True
    if reply.startswith(b"HTTP/1.1 400 Bad Request\r\n"):
        return b"this port speaks TLS; use https://" in reply
    return reply[0] in (0x15, 0x16) and reply[1] == 3


def records(hello: bytes):
    """Strategies for bytes a hostile or broken client might send."""
    tls_header = st.builds(
        lambda ctype, minor, length, body: bytes([ctype, 3, minor]) + length.to_bytes(2, "big") + body,
        st.sampled_from([20, 21, 22, 23, 24]),
        st.integers(0, 4),
        st.integers(0, 0xFFFF),
        st.binary(max_size=512),
    )
    truncated = st.integers(0, len(hello)).map(lambda n: hello[:n])
    flipped = st.lists(st.tuples(st.integers(0, len(hello) - 1), st.integers(1, 255)), min_size=1, max_size=8).map(
        lambda flips: _flip(hello, flips)
    )
    spliced = st.tuples(st.integers(0, len(hello)), st.binary(max_size=64)).map(lambda t: hello[: t[0]] + t[1] + hello[t[0] :])
    http_like = st.builds(
        lambda m, rest: m + rest, st.sampled_from([b"GET ", b"POST ", b"HEAD ", b"PRI * ", b"CONNECT "]), st.binary(max_size=256)
    )
    return st.one_of(st.binary(min_size=1, max_size=2048), tls_header, truncated, flipped, spliced, http_like)


def _flip(data: bytes, flips: list[tuple[int, int]]) -> bytes:
    b = bytearray(data)
    for i, x in flips:
        b[i] ^= x
    return bytes(b)


def test_arbitrary_bytes_get_a_clean_close_an_alert_or_a_400(serve, certs, events):
    srv = serve(handshake_timeout=1, idle_timeout=1)
    hello = real_client_hello(certs)
    endings: dict[str, int] = {}
    alerts: dict[int, int] = {}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same 150 inputs every run: a failure reproduces
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(records(hello))
    def one(data: bytes) -> None:
        reply, how = exchange(srv.port, data)
        endings[how] = endings.get(how, 0) + 1
        for _, desc in alerts_in(reply):
            alerts[desc] = alerts.get(desc, 0) + 1
        assert acceptable(reply), (data[:64].hex(), reply[:64].hex())
        assert srv.thread.is_alive(), "the server thread died"

    one()
    assert sum(endings.values()) >= EXAMPLES, endings
    # The server survived and still serves a legitimate client.
    assert echo(srv.port, certs).reply == b"ping\n"
    wait_released(srv)
    assert endings.get("timeout", 0) <= EXAMPLES // 10, endings  # a truncated hello may wait, rarely
    assert alerts, "no example drew an alert: the fuzzer did not reach the TLS parser"
    assert_plain_log(events)


def test_the_outcome_check_rejects_an_unexpected_reply():
    # Negative twin: what the server must never answer.
    assert not acceptable(b"Traceback (most recent call last):")
    assert not acceptable(b"HTTP/1.1 200 OK\r\n\r\n")
    assert acceptable(b"\x15\x03\x03\x00\x02\x02\x32")
    assert acceptable(b"")
