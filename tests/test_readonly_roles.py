"""Read-only that the database enforces (issue #14 finding 1).

A support account whose database refuses its writes — a PostgreSQL role given
``yearchange db grant-readonly``, a SQLite file opened with ``mode=ro`` or not writable by
the account — is read-only without ``--read-only``: reading commands work, changing ones
are refused in French with exit 2 and nothing changes, the console opens in consultation
mode and says why, and no engine starts. An engine refuses to start read-only, so it
never takes the lease and the operator's engine starts afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from changeover_support import make_academy, table_rows
from pg_support import PG_URL, drop_pg_database, fresh_pg_database
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from tui_support import run, screen_text

from yearchange_tui.cli.main import build_parser, main
from yearchange_tui.cli.util import open_database_from_args
from yearchange_tui.ent.database import Database, normalise_url, open_database
from yearchange_tui.ent.models.structure import Establishment
from yearchange_tui.scheduling.lease import read_lease
from yearchange_tui.scheduling.models import EngineRequest
from yearchange_tui.scheduling.spawn import spawn_engine, wait_for_engine
from yearchange_tui.tui.app import build_console
from yearchange_tui.workflow.models import AuditEntry, StepUnit

GRANTED = "Accès en lecture seule accordé par la base"

needs_pg = pytest.mark.skipif(not PG_URL, reason="YEARCHANGE_TEST_PG_URL not set")


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def first_uai(database: Database) -> str:
    with database.session() as session:
        return str(session.scalars(select(Establishment.uai).order_by(Establishment.uai)).first())


def everything(database: Database) -> dict[str, object]:
    """What a change would touch: the ENT tables, the units, the audit, the requests."""
    snapshot: dict[str, object] = dict(table_rows(database))
    with database.session() as session:
        for model in (StepUnit, AuditEntry, EngineRequest):
            snapshot[model.__tablename__] = session.scalar(
                select(func.count()).select_from(model))
        snapshot["units"] = sorted((unit.establishment_id, str(unit.step), str(unit.status))
                                   for unit in session.scalars(select(StepUnit)))
    return snapshot


def lease_held(database: Database) -> bool:
    info = read_lease(database)
    return info is not None and info.held


def assert_support_is_read_only(capsys: pytest.CaptureFixture[str], url: str, storage: Path,
                                owner: Database) -> None:
    """Without --read-only: status works; a run, an engine and a calendar edit are refused
    (exit 2, French, why), and nothing in the database changes."""
    uai = first_uai(owner)
    before = everything(owner)
    where = ("--db", url, "--storage", str(storage))

    status, out, err = cli(capsys, *where, "status")
    assert status == 0, err
    assert uai in out

    status, _out, err = cli(capsys, *where, "run", "archive", "--uai", uai, "--yes")
    assert status == 2
    assert GRANTED in err and "l'étape 2 — action interdite, rien n'a été modifié" in err

    for engine in (["engine", "--no-stdout"], ["engine", "--detach"]):
        status, _out, err = cli(capsys, *where, *engine)
        assert status == 2
        assert GRANTED in err and "le démarrage d'un moteur" in err

    status, _out, err = cli(capsys, *where, "plan", "set", "2", "2027-07-01")
    assert status == 2 and GRANTED in err

    assert everything(owner) == before
    assert not lease_held(owner)


def assert_console_is_consultation(url: str, storage: Path, owner: Database) -> None:
    """The real console on the support account's connection: consultation mode, the
    database named as the reason, a changing key refused, no engine started."""
    args = build_parser().parse_args(["--db", url, "--storage", str(storage)])
    settings, database = open_database_from_args(args, wait_for_lock=False)
    before = everything(owner)
    try:
        app, engine = build_console(settings, database)
        assert engine.client.spawned_pid is None

        async def scenario() -> None:
            async with app.run_test(size=(120, 36), notifications=True) as pilot:
                await pilot.pause()
                assert app.read_only
                assert "CONSULTATION" in screen_text(app)
                notes = [note.message for note in app._notifications]
                assert any(GRANTED in note and "mode consultation" in note for note in notes)
                await pilot.press("r")
                await pilot.pause()
                assert any("« Lancer une étape » est indisponible" in note.message
                           for note in app._notifications)

        try:
            run(scenario)
        finally:
            app.bridge.stop()
    finally:
        database.dispose()
    assert everything(owner) == before
    assert not lease_held(owner)


# -- PostgreSQL: a role given db grant-readonly --------------------------------------------

@pytest.fixture
def pg_academy(tmp_path: Path) -> Iterator[tuple[str, Database, Path, list[str]]]:
    """A PostgreSQL académie, its owner's URL, and the roles the test creates (dropped
    after, with their privileges)."""
    url, name = fresh_pg_database()
    roles: list[str] = []
    academy = make_academy(url, tmp_path / "storage")
    try:
        yield url, academy.database, academy.storage, roles
    finally:
        academy.database.dispose()
        owner = create_engine(make_url(normalise_url(url)), isolation_level="AUTOCOMMIT")
        with owner.connect() as connection:
            for role in roles:
                connection.execute(text(f'DROP OWNED BY "{role}"'))
        owner.dispose()
        drop_pg_database(name)
        admin = create_engine(make_url(normalise_url(url)).set(database="postgres"),
                              isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            for role in reversed(roles):
                connection.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


def as_role(url: str, role: str) -> str:
    return make_url(url).set(username=role, password=None).render_as_string(
        hide_password=False)


def sql(url: str, statement: str) -> object:
    engine = create_engine(make_url(normalise_url(url)), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            result = connection.execute(text(statement))
            return result.scalar() if result.returns_rows else None
    finally:
        engine.dispose()


@needs_pg
def test_a_support_login_role_given_grant_readonly_can_only_read(
        pg_academy: tuple[str, Database, Path, list[str]],
        capsys: pytest.CaptureFixture[str]) -> None:
    url, owner, storage, roles = pg_academy
    role = f"yc_support_{uuid.uuid4().hex[:8]}"
    roles.append(role)
    sql(url, f'CREATE ROLE "{role}" LOGIN')

    status, out, err = cli(capsys, "--db", url, "db", "grant-readonly", role)
    assert status == 0, err
    assert f"✓ Rôle {role} mis à jour : lecture seule" in out
    status, out, err = cli(capsys, "--db", url, "db", "grant-readonly", role)  # idempotent
    assert status == 0, err
    assert sql(url, f"SELECT rolcanlogin FROM pg_roles WHERE rolname = '{role}'") is True

    support = as_role(url, role)
    # The database itself refuses the role's writes, whatever the client does.
    with pytest.raises(Exception, match="permission denied"):
        sql(support, "UPDATE establishments SET name = 'x'")
    assert_support_is_read_only(capsys, support, storage, owner)
    assert_console_is_consultation(support, storage, owner)

    # A table a later migration creates (as the owner) is readable too.
    sql(url, "CREATE TABLE later_migration (id integer)")
    assert sql(support, "SELECT count(*) FROM later_migration") == 0


@needs_pg
def test_grant_readonly_creates_a_nologin_role_that_support_accounts_join(
        pg_academy: tuple[str, Database, Path, list[str]],
        capsys: pytest.CaptureFixture[str]) -> None:
    url, owner, storage, roles = pg_academy
    group = f"yc_readers_{uuid.uuid4().hex[:8]}"
    roles.append(group)
    status, out, err = cli(capsys, "--db", url, "db", "grant-readonly", group)
    assert status == 0, err
    assert f"✓ Rôle {group} créé (NOLOGIN)" in out
    assert sql(url, f"SELECT rolcanlogin FROM pg_roles WHERE rolname = '{group}'") is False
    member = f"yc_alice_{uuid.uuid4().hex[:8]}"
    roles.append(member)
    sql(url, f'CREATE ROLE "{member}" LOGIN IN ROLE "{group}"')
    assert_support_is_read_only(capsys, as_role(url, member), storage, owner)


def test_grant_readonly_on_sqlite_explains_the_file_modes_instead(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'y.db'}"
    make_academy(url, tmp_path / "storage").database.dispose()
    status, _out, err = cli(capsys, "--db", url, "db", "grant-readonly", "support")
    assert status == 2
    assert "SQLite n'a pas de rôles" in err and "mode=ro" in err
    assert "Rien n'a été modifié." in err


# -- SQLite: a file support cannot write -----------------------------------------------------

@pytest.fixture
def sqlite_academy(tmp_path: Path) -> Iterator[tuple[str, Database, Path]]:
    url = f"sqlite:///{tmp_path / 'y.db'}"
    academy = make_academy(url, tmp_path / "storage")
    yield url, academy.database, academy.storage
    academy.database.dispose()


def test_a_sqlite_database_opened_with_mode_ro_is_read_only(
        sqlite_academy: tuple[str, Database, Path], capsys: pytest.CaptureFixture[str]) -> None:
    url, owner, storage = sqlite_academy
    path = make_url(url).database
    read_only_url = f"sqlite:///file:{path}?mode=ro&uri=true"
    assert_support_is_read_only(capsys, read_only_url, storage, owner)
    assert_console_is_consultation(read_only_url, storage, owner)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file modes")
def test_a_sqlite_file_this_account_cannot_write_is_read_only(
        sqlite_academy: tuple[str, Database, Path], capsys: pytest.CaptureFixture[str]) -> None:
    url, owner, storage = sqlite_academy
    path = Path(str(make_url(url).database))
    path.chmod(0o444)
    try:
        assert_support_is_read_only(capsys, url, storage, owner)
        assert_console_is_consultation(url, storage, owner)
    finally:
        path.chmod(0o644)


def test_a_read_only_engine_is_refused_and_takes_no_lease(
        sqlite_academy: tuple[str, Database, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    url, owner, storage = sqlite_academy
    where = ("--db", url, "--storage", str(storage))
    for engine in (["engine", "--no-stdout"], ["engine", "--detach"]):
        status, _out, err = cli(capsys, *where, "--read-only", *engine)
        assert status == 2
        assert "Mode consultation (--read-only) : le démarrage d'un moteur" in err
        assert "rien n'a été modifié" in err
        assert not lease_held(owner)
    config = tmp_path / "config.toml"
    config.write_text("[engine]\nread_only = true\n", encoding="utf-8")
    status, _out, err = cli(capsys, *where, "--config", str(config), "engine", "--no-stdout")
    assert status == 2
    assert "read_only = true dans la section [engine]" in err and not lease_held(owner)
    # The operator's engine then starts: nothing locked it out.
    process = spawn_engine(url, storage, log_file=tmp_path / "engine.log",
                           extra_args=("--poll", "0.2"))
    try:
        assert wait_for_engine(owner, process, 60)
        info = read_lease(owner)
        assert info is not None and info.held and not info.read_only
        status, _out, err = cli(capsys, *where, "engine-stop")
        assert status == 0, err
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)


def test_the_console_never_starts_an_engine_on_a_database_it_cannot_write(
        sqlite_academy: tuple[str, Database, Path]) -> None:
    url, owner, storage = sqlite_academy
    read_only_url = f"sqlite:///file:{make_url(url).database}?mode=ro&uri=true"
    args = build_parser().parse_args(["--db", read_only_url, "--storage", str(storage)])
    settings, database = open_database_from_args(args, wait_for_lock=False)
    try:
        assert settings.read_only and settings.read_only_by_database
        assert database.read_only
        app, engine = build_console(settings, database)
        app.bridge.stop()
        assert engine.client.spawned_pid is None and engine.client.read_only
    finally:
        database.dispose()
    assert not lease_held(owner)


def test_an_engine_opened_directly_records_no_denial(
        sqlite_academy: tuple[str, Database, Path]) -> None:
    url, _owner, _storage = sqlite_academy
    database = open_database(url)
    try:
        assert database.write_denied is None and not database.read_only
    finally:
        database.dispose()
