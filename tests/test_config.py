"""Settings resolution: default < config file < environment < command line."""

import subprocess
import sys
from pathlib import Path

import pytest

from yearchange_tui.config import ConfigError, load_settings


def test_defaults_live_in_the_user_data_folder(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    monkeypatch.setenv("YEARCHANGE_DATA_DIR", str(tmp_path / "data"))
    settings = load_settings({})
    assert settings.db_url == f"sqlite:///{tmp_path / 'data' / 'yearchange.db'}"
    assert settings.storage_dir == tmp_path / "data" / "storage"
    assert settings.values["db"].source == "défaut"
    assert settings.read_only is False


def test_later_sources_win_and_say_where_they_come_from(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('db = "sqlite:///from-file.db"\nstorage = "/srv/from-file"\n'
                      "read_only = true\n", encoding="utf-8")
    monkeypatch.setenv("YEARCHANGE_STORAGE", "/srv/from-env")
    settings = load_settings({"db": "postgresql://ent@db/ent"}, config_file=config)
    assert settings.db_url == "postgresql://ent@db/ent"
    assert settings.values["db"].source == "--db"
    assert settings.storage_dir == Path("/srv/from-env")
    assert settings.values["storage"].source == "YEARCHANGE_STORAGE"
    assert settings.read_only is True
    assert settings.values["read_only"].source == str(config)


def test_unknown_key_in_the_config_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('databse = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="databse"):
        load_settings({}, config_file=config)


def test_broken_config_file_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("db = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="illisible"):
        load_settings({}, config_file=config)


def test_a_config_location_that_cannot_be_read_is_reported(tmp_path: Path) -> None:
    unreadable = tmp_path / ("x" * 300) / "config.toml"  # a name the system refuses
    with pytest.raises(ConfigError, match="illisible"):
        load_settings({}, config_file=unreadable)


def test_config_command_opens_no_database(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from yearchange_tui.cli.main import main

    url = f"sqlite:///{tmp_path / 'absente' / 'yearchange.db'}"
    assert main(["--db", url, "config"]) == 0
    assert f"{url}  (--db)" in capsys.readouterr().out
    assert not (tmp_path / "absente").exists()


def test_the_processes_a_command_starts_read_its_config_file(tmp_path: Path) -> None:
    """``yearchange --config F engine`` starts worker and import processes: they read F,
    not the per-user file (before, the engine's workers ran with the defaults)."""
    config = tmp_path / "exploitation.toml"
    config.write_text("[yearchange]\nlock_timeout = 7\n", encoding="utf-8")
    script = ("import subprocess, sys\n"
              "from yearchange_tui.cli.main import build_parser\n"
              "from yearchange_tui.cli.util import config_for_children\n"
              f"config_for_children(build_parser().parse_args(['--config', {str(config)!r}, "
              "'engine']))\n"
              "sys.exit(subprocess.run([sys.executable, '-m', 'yearchange_tui', 'config'])"
              ".returncode)\n")
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           check=True, stdin=subprocess.DEVNULL).stdout
    assert f"lock_timeout  7  ({config})" in shown
