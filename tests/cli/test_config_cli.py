"""``tlskit config show`` / ``config init`` and config errors as the user sees them."""

from __future__ import annotations

import json


def test_config_show_reports_each_source(run):
    (run.tmp / "tlskit.toml").write_text("[serve]\nhost = 'app.test'\n\n[connect]\ntimeout = 3\n")
    result = run("config", "show", "--json", env={"TLSKIT_SERVE_PORT": "9443"})
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    rows = {r["key"]: r for r in data["settings"]}
    assert rows["serve.host"]["value"] == "app.test"
    assert rows["serve.host"]["source"].endswith("tlskit.toml:2")
    assert rows["connect.timeout"]["source"].endswith("tlskit.toml:5")
    assert rows["serve.port"] == {"key": "serve.port", "value": 9443, "source": "env:TLSKIT_SERVE_PORT"}
    assert rows["serve.mtls"]["source"] == "default"
    assert data["home"] == str(run.home)
    text = run("config", "show", env={"TLSKIT_SERVE_PORT": "9443"})
    assert "serve.host" in text.stdout and "env:TLSKIT_SERVE_PORT" in text.stdout
    assert "config file:" in text.stderr


def test_flags_win_and_are_reported(run):
    result = run("--home", str(run.tmp / "elsewhere"), "config", "show", "--json")
    rows = {r["key"]: r for r in json.loads(result.stdout)["settings"]}
    assert rows["home"] == {"key": "home", "value": str(run.tmp / "elsewhere"), "source": "flag:--home"}
    after = run("config", "show", "--json", "--home", str(run.tmp / "after"))
    assert json.loads(after.stdout)["home"] == str(run.tmp / "after")


def test_config_typo_is_one_line_with_exit_3(run):
    (run.tmp / "tlskit.toml").write_text("[serve]\n# the port\nprot = 9443\n")
    result = run("ca", "init")
    assert result.exit_code == 3
    assert result.stderr == "error: unknown key 'prot' in [serve] (tlskit.toml:3); did you mean 'port'?\n"
    assert not run.home.exists()


def test_config_file_drives_commands(run):
    (run.tmp / "tlskit.toml").write_text("[ca]\nkey_type = 'ecdsa-p384'\n[cert]\ndays = 90\n")
    assert run("ca", "init").exit_code == 0
    info = json.loads(run("cert", "issue", "localhost", "--json").stdout)
    assert info["days_left"] == 90
    assert json.loads(run("ca", "show", "--json").stdout)["key_type"] == "ecdsa-p384"
    flag = json.loads(run("cert", "issue", "x.test", "--days", "7", "--json").stdout)
    assert flag["days_left"] == 7


def test_missing_explicit_config_is_exit_3(run):
    result = run("--config", "nope.toml", "config", "show")
    assert result.exit_code == 3
    assert "config file nope.toml not found" in result.stderr


def test_config_init_writes_once(run):
    result = run("config", "init")
    assert result.exit_code == 0, result.stderr
    path = run.tmp / "tlskit.toml"
    text = path.read_text()
    assert "[serve]" in text and "# port = 8443" in text
    assert run("config", "show").exit_code == 0  # the starter file loads
    path.write_text(text + "\n# mine\n")
    again = run("config", "init")
    assert again.exit_code == 3
    assert "already exists" in again.stderr and "--force" in again.stderr
    assert path.read_text().endswith("# mine\n")
    assert run("config", "init", "--force").exit_code == 0
    assert not path.read_text().endswith("# mine\n")
