"""Secrets never on a command line or in output: the database password stays private."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from yearchange_tui.cli.main import main
from yearchange_tui.config import mask_password
from yearchange_tui.ent.database import Access, open_existing_database
from yearchange_tui.scheduling.lease import read_lease

PASSWORD = "S3cret-Pw-42"


def test_urls_are_masked() -> None:
    assert mask_password("postgresql://ent:p%40ss@db:5432/ent") == "postgresql://ent:***@db:5432/ent"
    assert mask_password("postgresql://ent@db/ent") == "postgresql://ent@db/ent"
    assert mask_password("sqlite:////srv/y.db") == "sqlite:////srv/y.db"


def test_config_masks_the_password(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = f"postgresql://ent:{PASSWORD}@127.0.0.1:5432/ent"
    config = tmp_path / "config.toml"
    config.write_text(f'db = "{url}"\n', encoding="utf-8")
    assert main(["--db", url, "config"]) == 0
    assert main(["--config", str(config), "config", "--json"]) == 0
    out = capsys.readouterr().out
    assert PASSWORD not in out
    assert "postgresql://ent:***@127.0.0.1:5432/ent" in out
    assert json.loads(out[out.index("{"):])["db"]["value"] == \
        "postgresql://ent:***@127.0.0.1:5432/ent"


def test_a_detached_engine_keeps_the_password_off_its_command_line_and_log(
        database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("a SQLite URL holds no password")
    # The test server trusts local connections: any password is accepted.
    url = make_url(database_url).set(password=PASSWORD).render_as_string(hide_password=False)
    assert PASSWORD in url
    log_file = tmp_path / "engine.log"
    status = main(["--db", url, "--storage", str(tmp_path / "storage"), "engine", "--detach",
                   "--log-file", str(log_file), "--poll", "0.2"])
    out, err = capsys.readouterr()
    database = open_existing_database(url, Access.READ_ONLY)
    lease = read_lease(database)
    try:
        assert status == 0, err
        assert lease is not None and lease.pid
        command_line = Path(f"/proc/{lease.pid}/cmdline").read_bytes().replace(b"\0", b" ")
        assert b"engine" in command_line
        assert PASSWORD.encode() not in command_line
        assert b"postgresql" not in command_line
        assert PASSWORD not in out + err
    finally:
        if lease is not None and lease.pid:
            os.kill(lease.pid, signal.SIGTERM)
            for _ in range(300):  # wait for a clean stop (lease released)
                info = read_lease(database)
                if info is not None and not info.held:
                    break
                time.sleep(0.1)
        database.dispose()
    log = log_file.read_text(encoding="utf-8")
    assert "Moteur démarré" in log and "Moteur arrêté" in log
    assert PASSWORD not in log
    assert main(["--db", url, "engine-status"]) == 0
    assert main(["--db", url, "config"]) == 0
    out, err = capsys.readouterr()
    assert PASSWORD not in out + err
