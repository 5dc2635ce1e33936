"""The config layer: precedence, sources, discovery, and errors that name file, line and key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tlskit import config
from tlskit.errors import ConfigError


def _write(tmp_path: Path, text: str, name: str = "tlskit.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_when_nothing_is_set(tmp_path):
    s = config.load_settings(env={}, cwd=tmp_path)
    assert s.get("serve", "port") == 8443
    assert s.source("serve", "port") == "default"
    assert s.get("connect", "system_ca") is True
    assert s.config_file is None


def test_precedence_default_file_env_flag(tmp_path):
    path = _write(tmp_path, "[serve]\nhost = 'example.test'\nport = 9000\n")
    s = config.load_settings(env={"TLSKIT_SERVE_PORT": "9100"}, cwd=tmp_path)
    assert s.config_file == path
    assert (s.get("serve", "host"), s.source("serve", "host")) == ("example.test", f"file:{path}:2")
    assert (s.get("serve", "port"), s.source("serve", "port")) == (9100, "env:TLSKIT_SERVE_PORT")
    s.apply_flags("serve", {"port": 9200, "host": None})
    assert (s.get("serve", "port"), s.source("serve", "port")) == (9200, "flag:--port")
    assert s.source("serve", "host") == f"file:{path}:2"


def test_discovery_order(tmp_path):
    local = _write(tmp_path, "[serve]\nport = 1\n")
    xdg = tmp_path / "xdg" / "tlskit"
    xdg.mkdir(parents=True)
    user = _write(xdg, "[serve]\nport = 2\n", "config.toml")
    other = _write(tmp_path, "[serve]\nport = 3\n", "other.toml")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert config.find_config_file(None, env, tmp_path)[0] == local
    assert config.find_config_file(None, env, tmp_path / "xdg")[0] == user
    assert config.find_config_file(None, {**env, "TLSKIT_CONFIG": str(other)}, tmp_path)[0] == other
    assert config.find_config_file(str(other), env, tmp_path)[0] == other
    with pytest.raises(ConfigError, match="not found"):
        config.find_config_file(str(tmp_path / "missing.toml"), env, tmp_path)


def test_unknown_key_names_file_line_and_suggests(tmp_path):
    _write(tmp_path, "# comment\n\n[serve]\nprot = 9443\n")
    with pytest.raises(ConfigError) as err:
        config.load_settings(env={}, cwd=tmp_path)
    assert str(err.value) == "unknown key 'prot' in [serve] (tlskit.toml:4); did you mean 'port'?"
    assert err.value.exit_code == 3


def test_unknown_section_suggests(tmp_path):
    _write(tmp_path, "[sever]\nport = 1\n")
    with pytest.raises(ConfigError, match=r"unknown section \[sever\] \(tlskit.toml:1\); did you mean 'serve'\?"):
        config.load_settings(env={}, cwd=tmp_path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[serve]\nport = '8443'\n", "serve.port (tlskit.toml:2) must be an integer, not '8443'"),
        ("[serve]\nport = true\n", "must be an integer, not True"),
        ("[serve]\nport = 70000\n", "must be at most 65535"),
        ("[connect]\nsystem_ca = 'yes'\n", "must be true or false"),
        ("[serve]\nalpn = 'h2'\n", "must be a list of strings"),
        ("[serve]\nmtls = 'always'\n", "must be one of 'off', 'optional', 'required'"),
        ("[ca]\nkey_type = 'dsa'\n", "must be one of 'ecdsa-p256'"),
        ("[serve]\nhandshake_timeout = 0\n", "must be at least"),
        ("[serve.port]\nx = 1\n", "must be an integer, not a table"),
    ],
)
def test_wrong_type_says_what_was_expected(tmp_path, text, expected):
    _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        config.load_settings(env={}, cwd=tmp_path)
    assert expected in str(err.value)


def test_toml_syntax_error_has_line_and_column(tmp_path):
    _write(tmp_path, "[serve]\nport = = 1\n")
    with pytest.raises(ConfigError, match=r"invalid TOML: .*line 2, column"):
        config.load_settings(env={}, cwd=tmp_path)


@pytest.mark.parametrize(
    ("var", "raw", "expected"),
    [
        ("TLSKIT_SERVE_PORT", "0", 0),
        ("TLSKIT_CONNECT_SYSTEM_CA", "no", False),
        ("TLSKIT_SERVE_ALPN", "h2, http/1.1", ["h2", "http/1.1"]),
        ("TLSKIT_SERVE_HANDSHAKE_TIMEOUT", "2.5", 2.5),
        ("TLSKIT_CA_PERMIT", "localhost,.test", ["localhost", ".test"]),
    ],
)
def test_environment_values_are_parsed_by_type(tmp_path, var, raw, expected):
    s = config.load_settings(env={var: raw}, cwd=tmp_path)
    section, name = {k.env: (k.section, k.name) for keys in config.SCHEMA.values() for k in keys.values()}[var]
    assert s.get(section, name) == expected
    assert s.source(section, name) == f"env:{var}"


@pytest.mark.parametrize(("var", "raw"), [("TLSKIT_SERVE_PORT", "http"), ("TLSKIT_CONNECT_INSECURE", "maybe")])
def test_bad_environment_values_are_config_errors(tmp_path, var, raw):
    with pytest.raises(ConfigError, match=var):
        config.load_settings(env={var: raw}, cwd=tmp_path)


def test_relative_paths_in_a_file_are_relative_to_the_file(tmp_path):
    sub = tmp_path / "conf"
    sub.mkdir()
    path = _write(sub, "home = 'store'\n[connect]\nca = 'ca.pem'\n")
    s = config.load_settings(config_file=path, env={}, cwd=tmp_path)
    assert s.get("", "home") == str(sub / "store")
    assert s.get("connect", "ca") == str(sub / "ca.pem")
    assert config.resolve_home(s) == sub / "store"


def test_home_precedence(tmp_path):
    path = _write(tmp_path, "home = '/from/file'\n")
    s = config.load_settings(config_file=path, env={}, cwd=tmp_path)
    assert config.resolve_home(s) == Path("/from/file")
    s = config.load_settings(config_file=path, env={"TLSKIT_HOME": "/from/env"}, cwd=tmp_path)
    assert config.resolve_home(s) == Path("/from/env")
    s.apply_flags("", {"home": "/from/flag"})
    assert config.resolve_home(s) == Path("/from/flag")
    empty = tmp_path / "empty"
    empty.mkdir()
    s = config.load_settings(env={"XDG_DATA_HOME": str(tmp_path / "data")}, cwd=empty)
    assert config.resolve_home(s, env={"XDG_DATA_HOME": str(tmp_path / "data")}) == tmp_path / "data" / "tlskit"


def test_starter_config_is_valid_toml_listing_every_key(tmp_path):
    text = config.starter_config()
    assert all(v == {} for v in tomllib.loads(text).values())  # every key commented out
    uncommented = "\n".join(
        line[2:] if line.startswith("# ") and " = " in line else line for line in text.splitlines()
    )
    data = tomllib.loads(uncommented)
    for section, keys in config.SCHEMA.items():
        for name, key in keys.items():
            got = data[name] if not section else data[section][name]
            assert got == key.default, key.dotted
    path = _write(tmp_path, uncommented)
    s = config.load_settings(config_file=path, env={}, cwd=tmp_path)
    assert s.get("serve", "port") == 8443


def test_the_example_config_is_valid(tmp_path):
    example = Path(__file__).resolve().parents[1] / "examples" / "tlskit.toml"
    s = config.load_settings(config_file=example, env={}, cwd=tmp_path)
    assert s.get("serve", "mtls") == "required"
    assert s.get("connect", "cert") == "alice"
    assert s.source("serve", "mtls").startswith(f"file:{example}:")


# --- property tests: whatever the file says, the outcome is settings or a ConfigError ----------

from hypothesis import HealthCheck, given, settings as hsettings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.lists(st.text(max_size=8), max_size=3),
)
_names = st.one_of(
    st.sampled_from(sorted({k for keys in config.SCHEMA.values() for k in keys} | set(config.SCHEMA) - {""})),
    st.from_regex(r"[a-z_]{1,12}", fullmatch=True),
)


@hsettings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_arbitrary_text_is_settings_or_config_error(tmp_path, text):
    path = tmp_path / "fuzz.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        config.load_settings(config_file=path, env={}, cwd=tmp_path)
    except ConfigError as exc:
        assert exc.exit_code == 3 and exc.message


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.dictionaries(_names, st.one_of(_scalars, st.dictionaries(_names, _scalars, max_size=4)), max_size=4))
def test_arbitrary_toml_documents_are_settings_or_config_error(tmp_path, data):
    lines = []
    tables = []
    for k, v in data.items():
        if isinstance(v, dict):
            tables.append((k, v))
        else:
            lines.append(f"{k} = {config._toml_value(v)}")
    for k, v in tables:
        lines.append(f"[{k}]")
        lines += [f"{kk} = {config._toml_value(vv)}" for kk, vv in v.items()]
    path = tmp_path / "fuzz.toml"
    path.write_text("\n".join(lines) + "\n")
    try:
        s = config.load_settings(config_file=path, env={}, cwd=tmp_path)
    except ConfigError as exc:
        assert exc.exit_code == 3 and exc.message
        return
    for row in s.rows():  # every accepted value has the schema's type
        key = next(k for keys in config.SCHEMA.values() for k in keys.values() if k.dotted == row["key"])
        config._check(key, row["value"], where="test")
