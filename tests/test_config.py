"""Unit tests for aqe._config: layering, validation messages and root finding."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from aqe import _config
from aqe._config import ROOT_MARKERS, Config, find_root, load_config
from aqe._exceptions import ConfigError, UsageError
from aqe._options import OPTIONS, by_name


def project(tmp_path: Path, aqe_table: str | None = None, *, raw: str | None = None) -> Path:
    """A directory whose pyproject holds ``[tool.aqe]`` with ``aqe_table`` (or ``raw`` text)."""
    text = raw if raw is not None else f"[tool.aqe]\n{aqe_table or ''}\n"
    (tmp_path / "pyproject.toml").write_text(text, encoding="utf-8")
    return tmp_path


def config_error(root: Path, flags: dict[str, Any] | None = None, **environ: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(root, flags or {}, environ=environ)
    message = str(info.value)
    assert "\n" not in message, f"not one line: {message!r}"
    assert message.strip() == message and message
    return message


# -- precedence ----------------------------------------------------------------------


def test_defaults_without_pyproject(tmp_path: Path) -> None:
    assert load_config(tmp_path, {}, environ={}) == Config()


def test_pyproject_env_flags_precedence(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        'workers = 2\njunit-xml = "py.xml"\njson = "py.json"\nhistory = false\n'
        'pytest_args = ["-x", "-p", "no:cacheprovider"]',
    )
    only_file = load_config(root, {}, environ={})
    assert only_file.workers == 2
    assert only_file.junit_xml == "py.xml"
    assert only_file.history is False
    assert only_file.pytest_args == ("-x", "-p", "no:cacheprovider")

    env = {"AQE_WORKERS": "3", "AQE_JUNIT_XML": "env.xml"}
    with_env = load_config(root, {}, environ=env)
    assert (with_env.workers, with_env.junit_xml, with_env.json) == (3, "env.xml", "py.json")

    with_flags = load_config(root, {"workers": "4", "json": "flag.json"}, environ=env)
    assert with_flags.workers == 4  # flag beats env beats file
    assert with_flags.junit_xml == "env.xml"  # env beats file, no flag given
    assert with_flags.json == "flag.json"  # flag beats file
    assert with_flags.history is False  # only the file set it
    assert with_flags.pytest_args == ("-x", "-p", "no:cacheprovider")


def test_dashes_and_underscores_are_the_same_key(tmp_path: Path) -> None:
    root = project(tmp_path, 'history-path = "a.db"\nbytecode_cache = false')
    config = load_config(root, {"junit-xml": "j.xml", "history_path": "b.db"}, environ={})
    assert config.history_path == "b.db"
    assert config.bytecode_cache is False
    assert config.junit_xml == "j.xml"
    assert load_config(root, {}, environ={"AQE_HISTORY_PATH": "c.db"}).history_path == "c.db"


def test_explicit_environ_replaces_os_environ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AQE_WORKERS", "0")  # would be an error if it were read
    assert load_config(tmp_path, {}, environ={}).workers is None
    assert load_config(tmp_path, {}, environ={"AQE_WORKERS": ""}).workers is None


def test_env_strings_are_parsed(tmp_path: Path) -> None:
    env = {"AQE_HISTORY": "off", "AQE_LIVE": "yes", "AQE_PYTEST_ARGS": "-x -k 'a and b'"}
    config = load_config(tmp_path, {}, environ=env)
    assert config.history is False
    assert config.live is True
    assert config.pytest_args == ("-x", "-k", "a and b")


# -- workers -------------------------------------------------------------------------


def test_workers_auto_resolves_to_cpu_count(tmp_path: Path) -> None:
    root = project(tmp_path, "workers = 3")
    assert load_config(root, {}, environ={}).resolved_workers() == 3
    for layer in ({"AQE_WORKERS": "auto"}, {"AQE_WORKERS": "AUTO"}):
        config = load_config(root, {}, environ=layer)
        assert config.workers is None
        assert config.resolved_workers() == (os.cpu_count() or 1)
    config = load_config(root, {"workers": "auto"}, environ={})
    assert config.resolved_workers() == (os.cpu_count() or 1)


# -- invalid values: one line naming the key and where it came from -------------------

BAD_VALUES = [
    pytest.param("workers", "workers = 0", "0", 0, id="workers=0"),
    pytest.param("workers", 'workers = "many"', "many", "many", id="workers=many"),
    pytest.param("workers", "workers = true", "true", True, id="workers=true"),
    pytest.param("history", "history = 3", " ", 3, id="history=3"),
    pytest.param("timeout", "timeout = -1", "-1", "-1", id="timeout=-1"),
    pytest.param("timeout", 'timeout = "soon"', "soon", "soon", id="timeout=soon"),
    pytest.param("run_timeout", "run_timeout = true", "nan", "inf", id="run_timeout=nan"),
    pytest.param("split", 'split = "class"', "class", "class", id="split=class"),
]


@pytest.mark.parametrize(("key", "toml", "env_value", "flag_value"), BAD_VALUES)
def test_bad_value_in_pyproject_names_key_and_file(
    tmp_path: Path, key: str, toml: str, env_value: str, flag_value: object
) -> None:
    root = project(tmp_path, toml)
    message = config_error(root)
    assert key in message
    assert str(root / "pyproject.toml") in message


@pytest.mark.parametrize(("key", "toml", "env_value", "flag_value"), BAD_VALUES)
def test_bad_value_in_env_names_variable(
    tmp_path: Path, key: str, toml: str, env_value: str, flag_value: object
) -> None:
    message = config_error(tmp_path, **{f"AQE_{key.upper()}": env_value})
    assert f"AQE_{key.upper()}" in message
    assert "pyproject" not in message


def test_time_limits_take_seconds_and_zero_or_off_means_none(tmp_path: Path) -> None:
    root = project(tmp_path, "timeout = 2.5\nrun_timeout = 0")
    config = load_config(root, {}, environ={})
    assert (config.timeout, config.run_timeout) == (2.5, None)
    config = load_config(root, {"run_timeout": "90"}, environ={"AQE_TIMEOUT": "off"})
    assert (config.timeout, config.run_timeout) == (None, 90.0)


@pytest.mark.parametrize(("key", "toml", "env_value", "flag_value"), BAD_VALUES)
def test_bad_value_in_flags_names_option(
    tmp_path: Path, key: str, toml: str, env_value: str, flag_value: object
) -> None:
    message = config_error(tmp_path, {key: flag_value})
    flag = {"history": "--no-history"}.get(key, f"--{key.replace('_', '-')}")  # as typed
    assert flag in message
    assert "AQE_" not in message


@pytest.mark.parametrize("toml", ["workers = 1.5", "workers = 2.9"])
def test_fractional_workers_rejected(tmp_path: Path, toml: str) -> None:
    """A float is not "a positive integer"; it must not be truncated silently."""
    message = config_error(project(tmp_path, toml))
    assert "workers" in message
    assert str(tmp_path / "pyproject.toml") in message


def test_bad_flag_wins_over_good_file_and_env(tmp_path: Path) -> None:
    root = project(tmp_path, "workers = 2")
    message = config_error(root, {"workers": "0"}, AQE_WORKERS="3")
    assert "--workers" in message


def test_pytest_args_not_a_list(tmp_path: Path) -> None:
    message = config_error(project(tmp_path, "pytest_args = 5"))
    assert "pytest_args" in message
    assert str(tmp_path / "pyproject.toml") in message
    assert "pytest_args" in config_error(project(tmp_path, 'pytest_args = ["-x", 1]'))
    (tmp_path / "pyproject.toml").unlink()
    assert "--pytest-args" in config_error(tmp_path, {"pytest_args": 5})


def test_unknown_key_in_each_layer(tmp_path: Path) -> None:
    root = project(tmp_path, "frobnicate = 1")
    message = config_error(root)
    assert "frobnicate" in message
    assert str(root / "pyproject.toml") in message

    (root / "pyproject.toml").unlink()
    assert "--frobnicate" in config_error(root, {"frobnicate": 1})


def test_unknown_env_variable_is_named_once_and_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CI system may define its own AQE_* variables: one warning each, not a stop;
    a bad value of a known variable still stops aqe."""
    monkeypatch.setattr(_config, "_warned", set())
    env = {"AQE_FROBNICATE": "1", "AQE_WROKERS": "2", "AQE_RETRIES": "1"}
    assert load_config(tmp_path, {}, environ=env) == Config(retries=1)
    assert load_config(tmp_path, {}, environ=env) == Config(retries=1)
    assert capsys.readouterr().err.splitlines() == [
        "aqe: warning: ignoring environment variable AQE_FROBNICATE: not an aqe setting",
        "aqe: warning: ignoring environment variable AQE_WROKERS: not an aqe setting "
        "(did you mean AQE_WORKERS?)",
    ]
    assert "AQE_RETRIES" in config_error(tmp_path, AQE_RETRIES="-1", AQE_FROBNICATE="1")


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    root = project(tmp_path, raw="[tool.aqe\nworkers = 2\n")
    message = config_error(root)
    assert str(root / "pyproject.toml") in message


def test_tool_aqe_not_a_table(tmp_path: Path) -> None:
    root = project(tmp_path, raw='[tool]\naqe = "fast"\n')
    message = config_error(root)
    assert "[tool.aqe]" in message
    assert str(root / "pyproject.toml") in message


def test_config_error_is_a_usage_error() -> None:
    assert issubclass(ConfigError, UsageError)
    assert ConfigError.exit_code == 4


def test_pyproject_without_tool_aqe_is_fine(tmp_path: Path) -> None:
    root = project(tmp_path, raw='[project]\nname = "x"\n[tool.pytest.ini_options]\n')
    assert load_config(root, {}, environ={}) == Config()


# -- find_root -----------------------------------------------------------------------


@pytest.mark.parametrize("marker", ["pyproject.toml", "pytest.ini"])
def test_find_root_nearest_marker(tmp_path: Path, marker: str) -> None:
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    inner = tmp_path / "pkg"
    deep = inner / "tests" / "unit"
    deep.mkdir(parents=True)
    (inner / marker).write_text("", encoding="utf-8")
    assert find_root(deep) == inner.resolve()
    assert find_root(inner) == inner.resolve()
    test_file = deep / "test_x.py"
    test_file.write_text("", encoding="utf-8")
    assert find_root(test_file) == inner.resolve()
    assert find_root(tmp_path / "pkg" / ".." / "pkg" / "tests") == inner.resolve()


def test_find_root_ignores_marker_named_directory(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    inner = tmp_path / "inner"
    (inner / "pytest.ini").mkdir(parents=True)  # a directory, not a marker file
    assert find_root(inner) == tmp_path.resolve()


def test_find_root_falls_back_to_start(tmp_path: Path) -> None:
    start = tmp_path / "a" / "b"
    start.mkdir(parents=True)
    for parent in start.resolve().parents:
        if any((parent / marker).is_file() for marker in ROOT_MARKERS):
            pytest.skip(f"{parent} holds a project marker")
    assert find_root(start) == start.resolve()


# -- one definition per setting -------------------------------------------------------


def test_every_setting_has_one_definition() -> None:
    """Each Config field carries its parser (and flag); the loader and the CLI read
    only this table, so no second list of names can fall out of step."""
    assert list(OPTIONS) == [f.name for f in dataclasses.fields(Config)]
    flags = [d for option in OPTIONS.values() for d in option.flags]
    assert len(flags) == len(set(flags))
    assert OPTIONS["history"].flag_name("history") == "--no-history"
    assert OPTIONS["history_path"].flag_name("history_path") == "--history"
    assert OPTIONS["live"].flag_name("live") == "--live"
    assert OPTIONS["flaky_window"].flag_name("flaky_window") == "--flaky-window"


def test_engine_settings_filled_by_name() -> None:
    from aqe._cli import _engine_settings
    from aqe._engine._limits import EngineSettings
    from aqe._engine._retry import RetryPolicy

    config = Config(
        workers=3,
        timeout=5.0,
        split="file",
        retries=2,
        retry_budget=0.5,
        retry_jitter=0.0,
        isolate_on=frozenset({"crash"}),
        fail_on_flaky=True,
    )
    settings = _engine_settings(config, status_path="s.json", quarantined=frozenset({"a::b"}))
    assert settings == EngineSettings(
        workers=3,
        timeout=5.0,
        split="file",
        retry=RetryPolicy(retries=2, budget=0.5, jitter=0.0),
        isolate_on=frozenset({"crash"}),
        fail_on_flaky=True,
        status_path="s.json",
        quarantined=frozenset({"a::b"}),
    )


def test_a_field_no_setting_fills_is_an_error() -> None:
    @dataclasses.dataclass(frozen=True)
    class Wants:
        timeout: float | None
        no_such_setting: int

    with pytest.raises(TypeError, match="no_such_setting"):
        by_name(Wants, Config())
    assert by_name(Wants, Config(timeout=1.0), no_such_setting=3) == Wants(1.0, 3)


# -- where the history is --------------------------------------------------------------


def test_history_key_takes_a_url_or_path_as_well_as_a_switch(tmp_path: Path) -> None:
    url = "postgresql://aqe@db.example.com/aqe_history"
    config = load_config(project(tmp_path, f'history = "{url}"'), {}, environ={})
    assert (config.history, config.history_path) == (True, url)
    config = load_config(tmp_path, {}, environ={"AQE_HISTORY": "shared/h.db"})
    assert (config.history, config.history_path) == (True, "shared/h.db")
    config = load_config(tmp_path, {}, environ={"AQE_HISTORY": "false"})
    assert config.history is False
    # The later layer wins whichever key it uses; --no-history always turns it off.
    config = load_config(tmp_path, {"history_path": "flag.db"}, environ={"AQE_HISTORY": url})
    assert config.history_path == "flag.db"
    config = load_config(tmp_path, {"history": False}, environ={"AQE_HISTORY": url})
    assert config.history is False


@pytest.mark.parametrize("toml", ['history = ""', "history = 3", "history = []"])
def test_a_history_key_that_is_neither_switch_nor_place_names_the_key(
    tmp_path: Path, toml: str
) -> None:
    message = config_error(project(tmp_path, toml))
    assert "'history' in [tool.aqe]" in message
    assert "postgresql:// URL" in message
