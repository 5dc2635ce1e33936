"""``tlskit connect`` through click's CliRunner, against a real tlskit server on loopback."""

from __future__ import annotations

import json

import pytest

from ..test_server import needs_ipv6
from .fresh import fresh_run


@pytest.fixture
def store(run):
    """The CLI's temporary home with a CA, a localhost certificate and a client certificate."""
    assert run("ca", "init", "-q").exit_code == 0
    assert run("cert", "issue", "localhost", "127.0.0.1", "::1", "-q").exit_code == 0
    assert run("cert", "issue", "--client", "alice", "-q").exit_code == 0
    return run.home


@pytest.fixture
def local_server(serve, store):
    def start(**kw):
        d = store / "certs" / "localhost"
        kw.setdefault("cert", d / "cert.pem")
        kw.setdefault("key", d / "key.pem")
        return serve(**kw)

    return start


def test_connect_shows_the_handshake_and_verifies(run, local_server):
    srv = local_server()
    result = run("connect", f"127.0.0.1:{srv.port}", "--servername", "localhost")
    assert result.exit_code == 0, result.stderr
    assert "TLS 1.3" in result.stdout and "✓ verified" in result.stdout
    assert "CN=localhost" in result.stdout and "names  localhost, 127.0.0.1, ::1" in result.stdout


def test_connect_json_is_one_object_with_the_documented_keys(run, local_server):
    srv = local_server()
    result = run("connect", f"127.0.0.1:{srv.port}", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    for key in ("tls_version", "cipher", "alpn", "server_name", "verified", "verify_error", "peer_chain"):
        assert key in data
    assert data["verified"] is True and data["peer_chain"][0]["sha256"]


def test_piped_stdin_is_sent_and_the_echo_printed_alone_on_stdout(run, local_server):
    srv = local_server()
    result = run("connect", f"127.0.0.1:{srv.port}", input=b"hi\n")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "hi\n"
    assert "✓ verified" in result.stderr  # the summary moved to stderr


def test_send_option(run, local_server):
    srv = local_server()
    result = run("connect", f"127.0.0.1:{srv.port}", "--send", "ping", "-q")
    assert result.exit_code == 0 and result.stdout == "ping"


def test_hostname_mismatch_is_one_line_and_exit_5(run, local_server):
    srv = local_server()
    result = run("connect", f"127.0.0.1:{srv.port}", "--servername", "wrong.test")
    assert result.exit_code == 5
    assert result.stderr.startswith("error: 'wrong.test' is not among the names")
    assert "tlskit cert issue wrong.test" in result.stderr and result.stderr.count("\n") == 1


def test_verbose_failure_shows_the_underlying_error_and_the_chain(run, local_server):
    srv = local_server()
    result = run("connect", f"127.0.0.1:{srv.port}", "--servername", "wrong.test", "-v")
    assert result.exit_code == 5
    assert "underlying error: SSLCertVerificationError" in result.stderr
    assert "the server presented" in result.stderr


def test_json_failure_is_still_one_json_object(run, local_server):
    srv = local_server()
    result = run("connect", f"127.0.0.1:{srv.port}", "--servername", "wrong.test", "--json")
    assert result.exit_code == 5
    data = json.loads(result.stdout)
    assert data["ok"] is False and data["code"] == "hostname_mismatch" and data["verified"] is False


def test_refused_is_exit_4(run, store):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run("connect", f"127.0.0.1:{port}")
    assert result.exit_code == 4 and "connection refused" in result.stderr


def test_foreign_ca_server_fails_and_insecure_reports_why(run, serve, certs, store):
    srv = serve(cert=certs.other_cert, key=certs.other_key)
    strict = run("connect", f"127.0.0.1:{srv.port}", "--servername", "localhost", "--no-system-ca")
    assert strict.exit_code == 5 and "not trusted" in strict.stderr
    loose = run("connect", f"127.0.0.1:{srv.port}", "--servername", "localhost", "--no-system-ca", "--insecure")
    assert loose.exit_code == 0, loose.stderr
    assert "verification is OFF" in loose.stderr
    assert "NOT verified (--insecure)" in loose.stdout and "not signed by this CA" in loose.stdout


def test_ca_option_trusts_only_that_file(run, serve, certs, store):
    srv = serve(cert=certs.other_cert, key=certs.other_key)
    ok = run("connect", f"127.0.0.1:{srv.port}", "--servername", "localhost", "--ca", str(certs.other_ca))
    assert ok.exit_code == 0, ok.stderr
    # Twin: the store CA does not vouch for this server.
    assert run("connect", f"127.0.0.1:{srv.port}", "--servername", "localhost").exit_code == 5


def test_mtls_client_certificate_from_the_store(run, local_server, store):
    srv = local_server(client_ca=store / "ca" / "ca.crt", mtls="required")
    without = run("connect", f"127.0.0.1:{srv.port}", "--servername", "localhost")
    assert without.exit_code == 5 and "requires a client certificate" in without.stderr and "--cert" in without.stderr
    with_cert = run("connect", f"127.0.0.1:{srv.port}", "--servername", "localhost", "--cert", "alice")
    assert with_cert.exit_code == 0, with_cert.stderr


def test_warn_days(run, local_server):
    srv = local_server()
    soon = run("connect", f"127.0.0.1:{srv.port}", "--warn-days", "1000")
    assert soon.exit_code == 5 and "within --warn-days 1000" in soon.stderr
    assert run("connect", f"127.0.0.1:{srv.port}", "--warn-days", "30").exit_code == 0


@needs_ipv6
def test_ipv6_literal_target(run, local_server):
    srv = local_server(host="::1")
    result = run("connect", f"[::1]:{srv.port}", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["peer"] == f"[::1]:{srv.port}"


@pytest.mark.parametrize("args", [["host:99999"], ["[::1"], ["--key", "k.pem"], ["localhost:1", "--port", "2"]])
def test_bad_flags_are_usage_errors(run, store, args):
    assert run("connect", *args).exit_code == 2


def test_config_file_sets_the_port(run, local_server):
    srv = local_server()
    (run.tmp / "tlskit.toml").write_text(f"[connect]\nport = {srv.port}\nservername = 'localhost'\nhost = '127.0.0.1'\n")
    result = run("connect", "-q")
    assert result.exit_code == 0, result.stderr


def test_connect_rejects_a_cn_only_certificate_that_python_s_default_accepts(run, serve, certs):
    # The same server, two clients: Python 3.11's default context matches the CN (and its
    # X509_STRICT flag is the only thing that refuses such a leaf), tlskit connect does not match it.
    import socket
    import ssl

    srv = serve(cert=certs.cn_only_cert, key=certs.cn_only_key)
    default = ssl.create_default_context(cafile=str(certs.ca))
    if not default.hostname_checks_common_name:
        pytest.skip("this Python no longer matches the CN by default")
    default.verify_flags &= ~ssl.VERIFY_X509_STRICT  # as on Pythons before 3.13, and most clients
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as raw:
        with default.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.version()  # accepted on the CN alone
    result = run("connect", f"127.0.0.1:{srv.port}", "--servername", "localhost", "--ca", str(certs.ca))
    assert result.exit_code == 5, result.stdout + result.stderr
    assert "no DNS or IP names" in result.stderr and "Traceback" not in result.stderr


# --- start-up: a successful one-shot connect pays for neither rich nor asyncio ---------------

@pytest.mark.parametrize("extra", [[], ["--json"], ["-v", "--no-color"]], ids=["text", "json", "verbose"])
def test_a_successful_connect_imports_no_rich_asyncio_or_diagnosis(run, local_server, extra):
    srv = local_server()
    done = fresh_run("connect", f"127.0.0.1:{srv.port}", "--servername", "localhost", *extra,
                     env={"TLSKIT_HOME": str(run.home)})
    assert done.exit_code == 0, done.stderr
    assert done.loaded("rich", "asyncio", "tlskit.diagnose") == []
    assert "✓ verified" in done.stdout or '"verified": true' in done.stdout


def test_a_failed_connect_still_explains_with_the_diagnosis_module(run, local_server):
    # The negative twin: the explanation is imported when it is needed.
    srv = local_server()
    done = fresh_run("connect", f"127.0.0.1:{srv.port}", "--servername", "wrong.test", env={"TLSKIT_HOME": str(run.home)})
    assert done.exit_code == 5 and done.loaded("rich", "asyncio", "tlskit.diagnose") == ["tlskit.diagnose"]
    assert "'wrong.test' is not among the names" in done.stderr


def test_chain_tree_closes_each_branch(run, local_server):
    srv = local_server()
    lines = run("connect", f"127.0.0.1:{srv.port}", "--servername", "localhost").stdout.splitlines()
    tree = lines[lines.index("peer certificate chain") + 1 : -1]
    assert tree[0].startswith("└── CN=localhost  (leaf)")
    ca = next(i for i, line in enumerate(tree) if line.endswith("(CA)"))
    assert tree[ca].startswith("    └── CN=tlskit CA ")
    assert tree[-1].startswith("        └── key ") and all(line.startswith("    ├── ") for line in tree[1:ca])
    assert "\x1b[" not in "\n".join(lines)  # not a terminal: no colour codes


@pytest.mark.parametrize("host", ["a..b", "x" * 64 + ".test"])
def test_a_malformed_host_name_is_explained_before_any_lookup(run, store, host):
    result = run("connect", f"{host}:8443")
    assert result.exit_code == 4 and "is not a valid host name" in result.stderr
