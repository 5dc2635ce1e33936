"""Settings: defaults < config file < ``TLSKIT_*`` environment < command-line flags.

Every value remembers where it came from (``default``, ``file:tlskit.toml:4``,
``env:TLSKIT_SERVE_PORT``, ``flag:--port``): that is what ``tlskit config show``
prints. The real defaults live here, once; the CLI passes only the flags the user
actually typed.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tlskit.errors import ConfigError

KEY_TYPES = ["ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096", "ed25519"]
TLS_VERSIONS = ["1.2", "1.3"]
TOP = ""  # the table of top-level keys (``home``)


class Key:
    """One setting: its type, default, and a line of help (also used by ``config init``).

    A plain class, not a dataclass: this module is imported by every command, and
    start-up time matters more than the generated ``__repr__``.
    """

    __slots__ = ("section", "name", "type", "default", "help", "choices", "minimum", "maximum")

    def __init__(
        self,
        section: str,
        name: str,
        type: str,  # str | path | int | float | bool | list | choice
        default: Any,
        help: str,
        choices: tuple[str, ...] = (),
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> None:
        self.section, self.name, self.type, self.default, self.help = section, name, type, default, help
        self.choices, self.minimum, self.maximum = choices, minimum, maximum

    def __repr__(self) -> str:
        return f"Key({self.dotted!r}, {self.type}, default={self.default!r})"

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.name}" if self.section else self.name

    @property
    def env(self) -> str:
        parts = ["TLSKIT"] + ([self.section.upper()] if self.section else []) + [self.name.upper()]
        return "_".join(parts)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _keys(section: str, *specs: tuple) -> dict[str, Key]:
    out = {}
    for spec in specs:
        name, typ, default, help_, *rest = spec
        extra = rest[0] if rest else {}
        out[name] = Key(section, name, typ, default, help_, **extra)
    return out


_PORT = {"minimum": 0, "maximum": 65535}
_POSITIVE = {"minimum": 0.001}
_TLS = {"choices": ("", *TLS_VERSIONS)}

SCHEMA: dict[str, dict[str, Key]] = {
    TOP: _keys(TOP, ("home", "path", "", "where the CA and certificates live (default: the platform data dir)")),
    "ca": _keys(
        "ca",
        ("name", "str", "", "the CA's common name (default: 'tlskit CA user@host')"),
        ("key_type", "choice", "ecdsa-p256", "key type of a new CA", {"choices": tuple(KEY_TYPES)}),
        ("days", "int", 3650, "validity of a new CA, in days", {"minimum": 1}),
        ("permit", "list", [], "name constraints: DNS suffixes and IP ranges the CA may sign for"),
        ("encrypt", "bool", False, "encrypt the CA key with a passphrase"),
    ),
    "cert": _keys(
        "cert",
        ("key_type", "choice", "ecdsa-p256", "key type of new certificates", {"choices": tuple(KEY_TYPES)}),
        ("days", "int", 825, "validity of new certificates, in days (Apple accepts at most 825)", {"minimum": 1}),
    ),
    "serve": _keys(
        "serve",
        ("host", "str", "localhost", "host to listen on (every address it resolves to)"),
        ("port", "int", 8443, "port to listen on (0 picks a free one)", _PORT),
        ("cert", "str", "", "store certificate NAME or a PEM file (default: named after the host)"),
        ("key", "path", "", "private key file, when cert is a file without key.pem beside it"),
        ("client_ca", "path", "", "CA file for client certificates (default: the store CA)"),
        ("mtls", "choice", "off", "client certificates: off, optional or required",
         {"choices": ("off", "optional", "required")}),
        ("alpn", "list", [], "ALPN protocols to offer, e.g. ['h2', 'http/1.1']"),
        ("min_tls", "choice", "1.2", "lowest TLS version", _TLS),
        ("max_tls", "choice", "", "highest TLS version (empty: the newest)", _TLS),
        ("ciphers", "str", "", "OpenSSL cipher string for TLS 1.2 (empty: the hardened default)"),
        ("handshake_timeout", "float", 10.0, "seconds a client may take to finish the handshake", _POSITIVE),
        ("idle_timeout", "float", 300.0, "seconds of silence before a connection is closed", _POSITIVE),
        ("max_connections", "int", 10000, "connections held at once; more are refused", {"minimum": 1}),
        ("sni", "list", [], "certificates by SNI name: ['api.test=api.test', 'other.test=/path/cert.pem']"),
        ("keylog", "path", "", "write TLS session keys to this file (SSLKEYLOGFILE format)"),
        ("http", "bool", False, "answer HTTP/1.1 with a page about the visitor's handshake"),
        ("json_log", "bool", False, "log events as JSON lines"),
        ("workers", "int", 1, "server processes sharing the port (SO_REUSEPORT)", {"minimum": 1, "maximum": 256}),
        ("loop", "choice", "auto", "event loop: auto (uvloop when installed), asyncio or uvloop",
         {"choices": ("auto", "asyncio", "uvloop")}),
    ),
    "connect": _keys(
        "connect",
        ("host", "str", "localhost", "host to connect to"),
        ("port", "int", 8443, "port to connect to", _PORT),
        ("ca", "path", "", "trust only this CA file (default: the store CA and the system store)"),
        ("system_ca", "bool", True, "also trust the system's CA store"),
        ("servername", "str", "", "SNI name and the name to check (default: the host)"),
        ("cert", "str", "", "client certificate: store NAME or PEM file (mTLS)"),
        ("key", "path", "", "client private key file"),
        ("alpn", "list", [], "ALPN protocols to offer"),
        ("min_tls", "choice", "1.2", "lowest TLS version", _TLS),
        ("max_tls", "choice", "", "highest TLS version (empty: the newest)", _TLS),
        ("ciphers", "str", "", "OpenSSL cipher string for TLS 1.2"),
        ("timeout", "float", 10.0, "seconds for connect, handshake and reply", _POSITIVE),
        ("keylog", "path", "", "write TLS session keys to this file (SSLKEYLOGFILE format)"),
        ("insecure", "bool", False, "do not verify the server (still reports what would fail)"),
        ("warn_days", "int", 0, "fail when the server certificate expires within N days", {"minimum": 0}),
    ),
}

TYPE_WORDS = {
    "str": "a string",
    "path": "a path (string)",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "list": "a list of strings",
    "choice": "one of",
}


class Value:
    """A value and where it came from."""

    __slots__ = ("value", "source")

    def __init__(self, value: Any, source: str) -> None:
        self.value = value
        self.source = source

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Value) and (self.value, self.source) == (other.value, other.source)

    def __repr__(self) -> str:
        return f"Value({self.value!r}, {self.source!r})"


class Settings:
    """Effective settings with the source of each value."""

    def __init__(
        self,
        values: dict[tuple[str, str], Value],
        config_file: Path | None = None,
        config_file_reason: str = "",
        warnings: list[str] | None = None,
    ) -> None:
        self.values = values
        self.config_file = config_file
        self.config_file_reason = config_file_reason
        self.warnings = warnings or []

    def get(self, section: str, name: str) -> Any:
        return self.values[(section, name)].value

    def source(self, section: str, name: str) -> str:
        return self.values[(section, name)].source

    def section(self, section: str) -> dict[str, Any]:
        return {name: self.values[(section, name)].value for name in SCHEMA[section]}

    def apply_flags(self, section: str, flags: Mapping[str, Any]) -> None:
        """Layer the flags the user typed (``None`` means not given) over the rest."""
        for name, value in flags.items():
            if value is None or (isinstance(value, tuple) and not value and SCHEMA[section][name].type == "list"):
                continue
            key = SCHEMA[section][name]
            checked = _check(key, list(value) if isinstance(value, tuple) else value, where=f"flag {key.flag}")
            self.values[(section, name)] = Value(checked, f"flag:{key.flag}")

    def rows(self) -> list[dict[str, Any]]:
        """One row per key, for ``config show``."""
        return [
            {"key": key.dotted, "value": self.values[(sec, name)].value, "source": self.values[(sec, name)].source}
            for sec, keys in SCHEMA.items()
            for name, key in keys.items()
        ]


# --- discovery --------------------------------------------------------------------


def user_config_dir(env: Mapping[str, str] = os.environ) -> Path:
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "tlskit"
    if os.name == "nt":
        return Path(env.get("APPDATA") or Path.home() / "AppData" / "Roaming") / "tlskit"
    return Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "tlskit"


def user_data_dir(env: Mapping[str, str] = os.environ) -> Path:
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "tlskit"
    if os.name == "nt":
        return Path(env.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "tlskit"
    return Path(env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "tlskit"


def find_config_file(
    explicit: str | Path | None, env: Mapping[str, str] = os.environ, cwd: Path | None = None
) -> tuple[Path | None, str]:
    """The config file to read and why: ``--config``, ``TLSKIT_CONFIG``, ``./tlskit.toml``, the user dir.

    Raises:
        ConfigError: an explicitly named file does not exist.
    """
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} not found", hint="check --config, or run: tlskit config init")
        return path, "--config"
    if env.get("TLSKIT_CONFIG"):
        path = Path(env["TLSKIT_CONFIG"]).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} (from TLSKIT_CONFIG) not found", hint="unset TLSKIT_CONFIG or create it")
        return path, "TLSKIT_CONFIG"
    local = (cwd or Path.cwd()) / "tlskit.toml"
    if local.is_file():
        return local, "./tlskit.toml"
    user = user_config_dir(env) / "config.toml"
    if user.is_file():
        return user, "user config dir"
    return None, "none found"


# --- checking -----------------------------------------------------------------------


def _suggest(word: str, options: list[str]) -> str:
    import difflib  # only on the error path

    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(options)}"


def _check(key: Key, value: Any, *, where: str) -> Any:
    """Type- and range-check one value; return it normalised."""

    def fail(expected: str) -> ConfigError:
        return ConfigError(
            f"{key.dotted} ({where}) must be {expected}, not {value!r}",
            hint=f"example: {key.name} = {_toml_value(key.default if key.default not in ('', []) else _example(key))}",
        )

    t = key.type
    if t in ("str", "path"):
        if not isinstance(value, str):
            raise fail(TYPE_WORDS[t])
    elif t == "choice":
        if not isinstance(value, str) or value not in key.choices:
            raise fail("one of " + ", ".join(repr(c) for c in key.choices if c))
    elif t == "bool":
        if not isinstance(value, bool):
            raise fail("true or false")
    elif t == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail("an integer")
    elif t == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail("a number")
        value = float(value)
    elif t == "list":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise fail('a list of strings, like ["a", "b"]')
    if t in ("int", "float"):
        if key.minimum is not None and value < key.minimum:
            raise ConfigError(f"{key.dotted} ({where}) must be at least {key.minimum:g}, not {value!r}")
        if key.maximum is not None and value > key.maximum:
            raise ConfigError(f"{key.dotted} ({where}) must be at most {key.maximum:g}, not {value!r}")
    return value


def _example(key: Key) -> Any:
    return {"str": "text", "path": "/path/to/file", "int": 1, "float": 1.5, "bool": True, "list": ["a"],
            "choice": key.choices[-1] if key.choices else ""}[key.type]


def _parse_env(key: Key, raw: str) -> Any:
    where = f"env {key.env}"
    t = key.type
    if t == "bool":
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{key.env}={raw!r} must be true or false (1/0, yes/no, on/off)")
    if t in ("int", "float"):
        try:
            number = int(raw) if t == "int" else float(raw)
        except ValueError as exc:
            raise ConfigError(f"{key.env}={raw!r} must be {TYPE_WORDS[t]}") from exc
        return _check(key, number, where=where)
    if t == "list":
        return [part.strip() for part in raw.split(",") if part.strip()]
    return _check(key, raw, where=where)


_TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\"' -]+?)\s*\]\s*(#.*)?$")
_KEYLINE = re.compile(r"^\s*(\"[^\"]*\"|'[^']*'|[A-Za-z0-9_.-]+)\s*=")


def _key_lines(text: str) -> dict[tuple[str, str], int]:
    """Line numbers of ``key =`` lines by (table, key), found by scanning the text."""
    lines: dict[tuple[str, str], int] = {}
    table = TOP
    for number, line in enumerate(text.splitlines(), start=1):
        m = _TABLE.match(line)
        if m:
            table = m.group(1).strip().strip("\"'")
            lines.setdefault((table, ""), number)
            continue
        m = _KEYLINE.match(line)
        if m:
            name = m.group(1).strip("\"'")
            if "." in name and table == TOP:
                sec, _, name = name.rpartition(".")
                lines.setdefault((sec, name), number)
            else:
                lines.setdefault((table, name), number)
    return lines


def read_config_file(path: Path) -> tuple[dict[tuple[str, str], Value], list[str]]:
    """Parse and check one TOML config file.

    Raises:
        ConfigError: syntax error (with line and column), unknown section or key
            (with the closest valid one), or a value of the wrong type.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    import tomllib  # only when there is a file to read

    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}", hint="see docs/config.md for the format") from exc
    lines = _key_lines(text)
    name = path.name
    out: dict[tuple[str, str], Value] = {}
    warnings: list[str] = []
    sections = [s for s in SCHEMA if s]
    for top_key, top_value in data.items():
        if top_key in SCHEMA[TOP]:
            items = [(TOP, top_key, top_value)]
        elif isinstance(top_value, dict):
            if top_key not in SCHEMA:
                line = lines.get((top_key, ""), "?")
                raise ConfigError(
                    f"unknown section [{top_key}] ({name}:{line}); {_suggest(top_key, sections)}",
                    hint=f"sections are {', '.join('[' + s + ']' for s in sections)}",
                )
            items = [(top_key, k, v) for k, v in top_value.items()]
        else:
            line = lines.get((TOP, top_key), "?")
            raise ConfigError(
                f"unknown key {top_key!r} at top level ({name}:{line}); "
                f"{_suggest(top_key, list(SCHEMA[TOP]) + sections)}"
            )
        for sec, k, v in items:
            line = lines.get((sec, k), "?")
            keys = SCHEMA[sec]
            if k not in keys:
                where = f"in [{sec}]" if sec else "at top level"
                raise ConfigError(f"unknown key {k!r} {where} ({name}:{line}); {_suggest(k, list(keys))}")
            key = keys[k]
            if isinstance(v, dict):
                raise ConfigError(f"{key.dotted} ({name}:{line}) must be {TYPE_WORDS[key.type]}, not a table")
            checked = _check(key, v, where=f"{name}:{line}")
            if key.type == "path" and checked:
                # Relative paths in a config file are relative to the file, not to where tlskit runs.
                p = Path(checked).expanduser()
                checked = str(p if p.is_absolute() else (path.parent / p).resolve())
            out[(sec, k)] = Value(checked, f"file:{path}:{line}")
    return out, warnings


def load_settings(
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Build the effective settings from defaults, the config file and the environment.

    Flags are layered on afterwards with :meth:`Settings.apply_flags`.

    Raises:
        ConfigError: on any bad file or environment value.
    """
    env = os.environ if env is None else env
    values = {(sec, name): Value(key.default, "default") for sec, keys in SCHEMA.items() for name, key in keys.items()}
    path, reason = find_config_file(config_file, env, cwd)
    warnings: list[str] = []
    if path is not None:
        from_file, warnings = read_config_file(path)
        values.update(from_file)
    for sec, keys in SCHEMA.items():
        for name, key in keys.items():
            if key.env in env:
                values[(sec, name)] = Value(_parse_env(key, env[key.env]), f"env:{key.env}")
    return Settings(values, path, reason, warnings)


def resolve_home(settings: Settings, env: Mapping[str, str] | None = None) -> Path:
    """``--home`` > ``TLSKIT_HOME`` > config ``home`` > the platform data dir (already layered)."""
    home = settings.get(TOP, "home")
    return Path(home).expanduser() if home else user_data_dir(os.environ if env is None else env)


# --- config init ------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def starter_config() -> str:
    """A commented ``tlskit.toml`` that lists every key with its default (all commented out)."""
    out = [
        "# tlskit configuration. Every key is shown with its default, commented out.",
        "# Precedence: defaults < this file < TLSKIT_<SECTION>_<KEY> environment < flags.",
        "# Check the effective values with: tlskit config show",
        "",
    ]
    for sec, keys in SCHEMA.items():
        if sec:
            out.append(f"[{sec}]")
        for key in keys.values():
            choices = f" ({', '.join(c for c in key.choices if c)})" if key.choices else ""
            out.append(f"# {key.help}{choices}")
            out.append(f"# {key.name} = {_toml_value(key.default)}")
        out.append("")
    return "\n".join(out)
