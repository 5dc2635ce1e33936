"""The context builders: hardened defaults, pre-flight checks, SNI, ALPN, key logging.

No sockets: handshakes run between two real SSLObjects over memory BIOs.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import ssl

import pytest

from tlskit import pki
from tlskit.contexts import (
    SERVER_CIPHERS,
    create_client_context,
    create_server_context,
    load_cert_pair,
    parse_tls_version,
    requested_server_name,
    resolve_keylog,
)
from tlskit.errors import ConfigError, PassphraseError, PKIError


def tls12_suites(ctx: ssl.SSLContext) -> list[dict]:
    # "protocol" is the oldest version a suite works with; everything not TLS 1.3-only is a TLS 1.2 suite.
    return [c for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3"]


def is_hardened_suite(c: dict) -> bool:
    return c["kea"] == "kx-ecdhe" and c["aead"] and c["symmetric"] in ("aes-128-gcm", "aes-256-gcm", "chacha20-poly1305")


# --- server defaults -------------------------------------------------------------------


def test_server_context_defaults_are_hardened(certs):
    ctx = create_server_context(certs.cert, certs.key)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    for flag in (ssl.OP_CIPHER_SERVER_PREFERENCE, ssl.OP_NO_COMPRESSION, ssl.OP_NO_RENEGOTIATION):
        assert ctx.options & flag
    suites = tls12_suites(ctx)
    assert suites and all(is_hardened_suite(c) for c in suites), [c["name"] for c in suites]
    assert ctx.verify_mode == ssl.CERT_NONE and ctx.mtls == "off"
    assert ctx.certificate.subject.rfc4514_string() == "CN=localhost"


def test_suite_check_catches_cbc_and_static_rsa(certs):
    # Negative twin: the same check fails for a cipher string that allows CBC and RSA key exchange.
    ctx = create_server_context(certs.cert, certs.key, ciphers="AES128-SHA:" + SERVER_CIPHERS)
    assert not all(is_hardened_suite(c) for c in tls12_suites(ctx))


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_server_refuses_tls11_in_memory(certs, in_memory):
    server = create_server_context(certs.cert, certs.key)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(str(certs.ca))
    client.minimum_version = client.maximum_version = ssl.TLSVersion.TLSv1_1
    client.set_ciphers("DEFAULT@SECLEVEL=0")
    with pytest.raises(Exception) as info:
        in_memory(server, client)
    assert "UNSUPPORTED_PROTOCOL" in str(info.value) or "PROTOCOL_VERSION" in str(info.value) or "NO_PROTOCOLS" in str(info.value)


def test_server_accepts_tls12_and_tls13(certs, in_memory):
    server = create_server_context(certs.cert, certs.key)
    for version in ("TLSv1.2", "TLSv1.3"):
        client = create_client_context(ca=certs.ca, system_ca=False, min_tls=version[-3:], max_tls=version[-3:])
        c, s = in_memory(server, client)
        assert c.version() == s.version() == version


def test_min_and_max_versions_are_applied(certs, in_memory):
    server = create_server_context(certs.cert, certs.key, min_tls="1.3")
    assert server.minimum_version == ssl.TLSVersion.TLSv1_3
    client = create_client_context(ca=certs.ca, system_ca=False, max_tls="1.2")
    with pytest.raises(Exception):
        in_memory(server, client)


@pytest.mark.parametrize("value", ["1.0", "1.1", "TLSv1.1", "ssl3"])
def test_versions_below_tls12_are_refused_with_rfc_hint(value):
    with pytest.raises(ConfigError) as info:
        parse_tls_version(value)
    assert "RFC 8996" in info.value.hint


def test_version_strings_parse():
    assert parse_tls_version("1.2") == ssl.TLSVersion.TLSv1_2
    assert parse_tls_version("TLSv1.3") == ssl.TLSVersion.TLSv1_3
    assert parse_tls_version("") is None
    with pytest.raises(ConfigError):
        parse_tls_version("1.4")


def test_max_below_min_is_a_config_error(certs):
    with pytest.raises(ConfigError, match="below"):
        create_server_context(certs.cert, certs.key, min_tls="1.3", max_tls="1.2")


# --- client defaults -------------------------------------------------------------------------


def test_client_context_defaults_are_hardened(certs):
    ctx = create_client_context(ca=certs.ca, system_ca=False)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname is True
    assert ctx.hostname_checks_common_name is False
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_flags & ssl.VERIFY_X509_STRICT
    assert not ctx.insecure


def test_client_rejects_a_cn_only_certificate(certs, in_memory):
    server = create_server_context(certs.cn_only_cert, certs.cn_only_key)
    client = create_client_context(ca=certs.ca, system_ca=False)
    with pytest.raises(Exception) as info:
        in_memory(server, client, "localhost")
    assert "Hostname mismatch" in str(info.value) or "HOSTNAME" in str(info.value).upper()


def test_python_default_context_accepts_the_cn_only_certificate(certs, in_memory):
    # Negative twin: the stock 3.11 client matches the CN, which is why we switch it off.
    server = create_server_context(certs.cn_only_cert, certs.cn_only_key)
    client = ssl.create_default_context(cafile=str(certs.ca))
    if not client.hostname_checks_common_name:
        pytest.skip("this Python no longer matches the CN by default")
    client.verify_flags &= ~ssl.VERIFY_X509_STRICT
    c, _ = in_memory(server, client, "localhost")
    assert c.version()


def test_client_verifies_against_the_given_ca(certs, in_memory):
    server = create_server_context(certs.cert, certs.key)
    c, _ = in_memory(server, create_client_context(ca=certs.ca, system_ca=False))
    assert c.getpeercert()["subject"] == ((("commonName", "localhost"),),)
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        in_memory(server, create_client_context(ca=certs.other_ca, system_ca=False))


def test_client_without_any_trust_is_a_config_error():
    with pytest.raises(ConfigError) as info:
        create_client_context(ca=None, system_ca=False)
    assert "--ca" in info.value.hint


def test_insecure_client_skips_verification_and_says_so(certs, in_memory, caplog):
    server = create_server_context(certs.cert, certs.key)
    with caplog.at_level(logging.WARNING, logger="tlskit.contexts"):
        client = create_client_context(ca=certs.other_ca, system_ca=False, insecure=True)
    assert client.insecure and client.verify_mode == ssl.CERT_NONE and not client.check_hostname
    assert any("verification is OFF" in r.getMessage() for r in caplog.records)
    c, _ = in_memory(server, client, "wrong.test")
    assert c.version()
    # What it would have trusted is remembered, for the report.
    assert client.trust_files == (certs.other_ca,)


# --- mTLS ----------------------------------------------------------------------------------------


def test_mtls_modes(certs):
    required = create_server_context(certs.cert, certs.key, client_ca=certs.ca, mtls="required")
    optional = create_server_context(certs.cert, certs.key, client_ca=certs.ca, mtls="optional")
    implied = create_server_context(certs.cert, certs.key, client_ca=certs.ca)
    off = create_server_context(certs.cert, certs.key)
    assert required.verify_mode == ssl.CERT_REQUIRED and required.mtls == "required"
    assert optional.verify_mode == ssl.CERT_OPTIONAL
    assert implied.verify_mode == ssl.CERT_REQUIRED and implied.mtls == "required"
    assert off.verify_mode == ssl.CERT_NONE


def test_mtls_without_a_client_ca_is_a_config_error(certs):
    with pytest.raises(ConfigError) as info:
        create_server_context(certs.cert, certs.key, mtls="required")
    assert "--client-ca" in info.value.hint
    with pytest.raises(ConfigError):
        create_server_context(certs.cert, certs.key, client_ca=certs.ca, mtls="sometimes")


def test_mtls_handshake_in_memory(certs, in_memory):
    server = create_server_context(certs.cert, certs.key, client_ca=certs.ca, mtls="required")
    with_cert = create_client_context(ca=certs.ca, system_ca=False, cert=certs.client_cert, key=certs.client_key)
    _, s = in_memory(server, with_cert)
    assert s.getpeercert()["subject"] == ((("commonName", "alice"),),)
    with pytest.raises(Exception) as info:
        in_memory(server, create_client_context(ca=certs.ca, system_ca=False))
    assert "CERTIFICATE_REQUIRED" in str(info.value) or "PEER_DID_NOT_RETURN" in str(info.value)


# --- pre-flight checks ---------------------------------------------------------------------------


def test_missing_certificate_file_names_the_path(certs, tmp_path):
    missing = tmp_path / "nope.pem"
    with pytest.raises(PKIError) as info:
        create_server_context(missing, certs.key)
    assert str(missing) in info.value.message and "does not exist" in info.value.message


def test_missing_key_file_names_the_path(certs, tmp_path):
    with pytest.raises(PKIError, match="key .*nope.key does not exist"):
        create_server_context(certs.cert, tmp_path / "nope.key")


def test_directory_instead_of_file(certs, tmp_path):
    with pytest.raises(PKIError, match="is a directory"):
        load_cert_pair(tmp_path, certs.key)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file, so a 0000 file is still readable")
def test_unreadable_key(certs, tmp_path):
    key = tmp_path / "key.pem"
    key.write_bytes(certs.key.read_bytes())
    key.chmod(0)
    with pytest.raises(PKIError, match="permission denied"):
        load_cert_pair(certs.cert, key)


def test_not_pem_certificate(certs, tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("hello\n")
    with pytest.raises(PKIError, match="not a PEM certificate"):
        load_cert_pair(junk, certs.key)


def test_der_certificate_gets_a_conversion_hint(certs, tmp_path):
    der = tmp_path / "cert.der"
    from cryptography.hazmat.primitives.serialization import Encoding

    der.write_bytes(certs.ca_obj.cert.public_bytes(Encoding.DER))
    with pytest.raises(PKIError) as info:
        load_cert_pair(der, certs.key)
    assert "DER" in info.value.message and "openssl x509 -inform der" in info.value.hint


def test_swapped_cert_and_key(certs):
    with pytest.raises(PKIError) as info:
        load_cert_pair(certs.key, certs.cert)
    assert "swap" in info.value.hint


def test_key_that_does_not_match_the_certificate(certs):
    with pytest.raises(PKIError) as info:
        create_server_context(certs.cert, certs.other_key)
    assert "does not match" in info.value.message
    assert str(certs.other_key) in info.value.message and str(certs.cert) in info.value.message


def test_matching_pair_passes(certs):
    # Positive twin of the mismatch test.
    assert load_cert_pair(certs.other_cert, certs.other_key).subject.rfc4514_string() == "CN=localhost"


def test_expired_certificate_is_caught_before_any_socket(certs):
    with pytest.raises(PKIError) as info:
        create_server_context(certs.expired_cert, certs.expired_key)
    assert "expired on" in info.value.message and "tlskit cert issue localhost" in info.value.hint


def test_not_yet_valid_certificate(certs):
    with pytest.raises(PKIError, match="not valid until"):
        create_server_context(certs.future_cert, certs.future_key)


def test_expiry_check_uses_now(certs):
    # The expired certificate was valid a month ago: the check is about dates, not the file.
    then = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=29)
    assert create_server_context(certs.expired_cert, certs.expired_key, now=then).certificate is not None


def test_combined_pem_with_cert_and_key(certs, tmp_path):
    both = tmp_path / "both.pem"
    both.write_bytes(certs.cert.read_bytes() + certs.key.read_bytes())
    assert create_server_context(both).certificate is not None
    with pytest.raises(PKIError, match="no key given"):
        create_server_context(certs.cert)


def test_encrypted_key_needs_its_passphrase(certs, tmp_path):
    issued = pki.issue_cert(certs.ca_obj, ["localhost"])
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_bytes(pki.cert_to_pem(issued.cert))
    key.write_bytes(pki.key_to_pem(issued.key, b"s3cret"))
    with pytest.raises(PassphraseError):
        create_server_context(cert, key)
    assert create_server_context(cert, key, passphrase=b"s3cret").certificate == issued.cert


def test_client_certificate_without_client_eku_warns(certs, caplog):
    with caplog.at_level(logging.WARNING, logger="tlskit.contexts"):
        create_client_context(ca=certs.ca, system_ca=False, cert=certs.cert, key=certs.key)
    assert any(getattr(r, "event", None) == "certificate_purpose" for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tlskit.contexts"):
        create_client_context(ca=certs.ca, system_ca=False, cert=certs.client_cert, key=certs.client_key)
    assert not any(getattr(r, "event", None) == "certificate_purpose" for r in caplog.records)


def test_missing_ca_file(tmp_path):
    with pytest.raises(PKIError, match="CA file .* does not exist"):
        create_client_context(ca=tmp_path / "ca.crt", system_ca=False)


# --- SNI and ALPN ------------------------------------------------------------------------------


def test_sni_switches_certificate_and_records_the_name(certs, in_memory):
    server = create_server_context(certs.cert, certs.key, sni={"elsewhere.test": (certs.elsewhere_cert, certs.elsewhere_key)})
    assert set(server.sni_certificates) == {"elsewhere.test"}
    client = create_client_context(ca=certs.ca, system_ca=False)
    c, s = in_memory(server, client, "elsewhere.test")
    assert dict(x[0] for x in c.getpeercert()["subject"])["commonName"] == "elsewhere.test"
    assert requested_server_name(s) == "elsewhere.test"
    assert s.server_hostname is None  # why the callback is needed
    c, s = in_memory(server, create_client_context(ca=certs.ca, system_ca=False), "localhost")
    assert dict(x[0] for x in c.getpeercert()["subject"])["commonName"] == "localhost"
    assert requested_server_name(s) == "localhost"


def test_sni_wildcard_entry_matches_one_label(certs, tmp_path, in_memory):
    wc, wk = certs.issue(tmp_path, ["*.dev.test"])
    server = create_server_context(certs.cert, certs.key, sni={"*.dev.test": (wc, wk)})
    c, _ = in_memory(server, create_client_context(ca=certs.ca, system_ca=False), "api.dev.test")
    assert dict(x[0] for x in c.getpeercert()["subject"])["commonName"] == "*.dev.test"


def test_no_sni_from_client_records_nothing(certs, in_memory):
    server = create_server_context(certs.cert, certs.key)
    client = create_client_context(ca=certs.ca, system_ca=False)
    _, s = in_memory(server, client, "127.0.0.1")  # IP addresses are not sent as SNI
    assert requested_server_name(s) is None


def test_alpn_is_negotiated(certs, in_memory):
    server = create_server_context(certs.cert, certs.key, alpn=["h2", "http/1.1"])
    c, s = in_memory(server, create_client_context(ca=certs.ca, system_ca=False, alpn=["http/1.1"]))
    assert c.selected_alpn_protocol() == s.selected_alpn_protocol() == "http/1.1"
    c, _ = in_memory(server, create_client_context(ca=certs.ca, system_ca=False))
    assert c.selected_alpn_protocol() is None


# --- key logging --------------------------------------------------------------------------------


def test_keylog_flag_writes_secrets_and_warns(certs, tmp_path, in_memory, caplog):
    log_file = tmp_path / "keys.log"
    with caplog.at_level(logging.WARNING, logger="tlskit.contexts"):
        client = create_client_context(ca=certs.ca, system_ca=False, keylog=log_file, environ={})
    assert client.keylog_path == log_file and client.keylog_source == "flag"
    assert any(getattr(r, "event", None) == "keylog" for r in caplog.records)
    in_memory(create_server_context(certs.cert, certs.key, environ={}), client)
    assert b"CLIENT_HANDSHAKE_TRAFFIC_SECRET" in log_file.read_bytes()


def test_keylog_from_sslkeylogfile_environment(certs, tmp_path, in_memory, caplog):
    log_file = tmp_path / "env-keys.log"
    with caplog.at_level(logging.WARNING, logger="tlskit.contexts"):
        server = create_server_context(certs.cert, certs.key, environ={"SSLKEYLOGFILE": str(log_file)})
    assert server.keylog_source == "env"
    assert any("SSLKEYLOGFILE" in r.getMessage() for r in caplog.records)
    in_memory(server, create_client_context(ca=certs.ca, system_ca=False, environ={}))
    assert b"SERVER_HANDSHAKE_TRAFFIC_SECRET" in log_file.read_bytes()


def test_no_keylog_without_flag_or_environment(certs, caplog):
    # Negative twin: nothing asked for, nothing written, no warning.
    with caplog.at_level(logging.WARNING, logger="tlskit.contexts"):
        ctx = create_client_context(ca=certs.ca, system_ca=False, environ={})
    assert ctx.keylog_path is None and ctx.keylog_filename is None
    assert not caplog.records
    assert resolve_keylog(None, {}) == (None, None)


def test_unwritable_keylog_is_a_config_error(certs, tmp_path):
    with pytest.raises(ConfigError) as info:
        create_client_context(ca=certs.ca, system_ca=False, keylog=tmp_path / "no" / "such" / "dir" / "k.log")
    assert "--keylog" in info.value.message or "--keylog" in info.value.hint


# --- the system store: the hashed directory instead of parsing the whole bundle ------------


def _paths(tmp_path, *, capath, cafile=None) -> ssl.DefaultVerifyPaths:
    return ssl.DefaultVerifyPaths(cafile, capath, "SSL_CERT_FILE", str(tmp_path / "system.pem"), "SSL_CERT_DIR", capath)


def test_system_hash_dir_is_used_only_with_hash_links_and_no_other_bundle_chosen(tmp_path):
    from tlskit.contexts import system_hash_dir

    hashed, plain = tmp_path / "hashed", tmp_path / "plain"
    hashed.mkdir()
    plain.mkdir()
    (hashed / "5ad8a5d6.0").write_text("")
    (plain / "ca-bundle.crt").write_text("")  # Fedora's layout: a bundle, no hash links
    (tmp_path / "system.pem").write_text("")
    assert system_hash_dir(_paths(tmp_path, capath=str(hashed)), {}) == str(hashed)
    assert system_hash_dir(_paths(tmp_path, capath=str(plain)), {}) is None
    assert system_hash_dir(_paths(tmp_path, capath=None), {}) is None
    # SSL_CERT_FILE naming the system's own bundle changes nothing; another bundle wins.
    assert system_hash_dir(_paths(tmp_path, capath=str(hashed)), {"SSL_CERT_FILE": str(tmp_path / "system.pem")}) == str(hashed)
    assert system_hash_dir(_paths(tmp_path, capath=str(hashed)), {"SSL_CERT_FILE": str(tmp_path / "mine.pem")}) is None


def test_a_hashed_system_directory_is_read_lazily_and_verifies(certs, in_memory, tmp_path, monkeypatch):
    import shutil
    import subprocess

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command for the subject hash")
    subject_hash = subprocess.run([openssl, "x509", "-noout", "-subject_hash", "-in", str(certs.ca)],
                                  capture_output=True, text=True, check=True).stdout.strip()
    folder = tmp_path / "certs"
    folder.mkdir()
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.setenv("SSL_CERT_DIR", str(folder))
    server = create_server_context(certs.cert, certs.key)
    # Without the CA's hash link: not trusted (the twin).
    (folder / "00000000.0").write_bytes(certs.other_ca.read_bytes())
    with pytest.raises(Exception, match="certificate verify failed"):
        in_memory(server, create_client_context(system_ca=True))
    (folder / f"{subject_hash}.0").write_bytes(certs.ca.read_bytes())
    client = create_client_context(system_ca=True)
    assert client.cert_store_stats()["x509_ca"] == 0  # nothing parsed up front
    c, _ = in_memory(server, client)
    assert c.version() == "TLSv1.3"
