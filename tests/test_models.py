"""The ENT model on a real database (SQLite always, PostgreSQL when configured)."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import delete, func, inspect, select
from sqlalchemy.exc import IntegrityError

from yearchange_tui.ent.base import Base
from yearchange_tui.ent.database import DatabaseError, head_revision, open_database
from yearchange_tui.ent.models import (
    ENT_MODELS,
    ClassMembership,
    ClassRole,
    Establishment,
    EstablishmentKind,
    Group,
    GroupKind,
    Person,
    PersonKind,
    Project,
    Rubric,
    RubricKind,
    RubricRight,
    RubricRole,
    SchoolClass,
    SchoolYear,
)
from yearchange_tui.ent.uai import InvalidUAIError
from yearchange_tui.models_registry import import_all_models

NOW = dt.datetime(2026, 6, 30, 12, tzinfo=dt.UTC)


def test_first_use_creates_the_schema_and_says_so(database_url: str) -> None:
    messages: list[str] = []
    database = open_database(database_url, report=messages.append)
    try:
        assert len(messages) == 1 and messages[0].startswith("Création de la base de données")
        tables = set(inspect(database.engine).get_table_names())
        assert {model.__tablename__ for model in ENT_MODELS} <= tables
    finally:
        database.dispose()
    again: list[str] = []
    open_database(database_url, report=again.append).dispose()
    assert again == []


def test_migrations_match_the_model(database_url: str) -> None:
    import_all_models()
    database = open_database(database_url)
    try:
        with database.engine.connect() as connection:
            # procrastinate's own tables come from its schema SQL, not from our models.
            context = MigrationContext.configure(connection, opts={
                "compare_type": True,
                "include_name": lambda name, type_, _parents: not (
                    type_ == "table" and str(name).startswith("procrastinate_"))})
            differences = compare_metadata(context, Base.metadata)
        assert differences == [], "run an Alembic autogenerate: the model changed"
        with database.engine.connect() as connection:
            version = connection.exec_driver_sql("SELECT version_num FROM alembic_version")
            assert version.scalar() == head_revision()
    finally:
        database.dispose()


def test_year_scoped_tables_are_indexed_by_establishment_and_year(database_url: str) -> None:
    database = open_database(database_url)
    try:
        inspector = inspect(database.engine)
        missing = []
        for model in ENT_MODELS:
            columns = model.__table__.c
            if "establishment_id" in columns and "school_year_id" in columns:
                indexes = (inspector.get_indexes(model.__tablename__)
                           + inspector.get_unique_constraints(model.__tablename__))
                if not any(index["column_names"][:2] == ["establishment_id", "school_year_id"]
                           for index in indexes):
                    missing.append(model.__tablename__)
        assert missing == []
    finally:
        database.dispose()


def _frame(session) -> tuple[Establishment, SchoolYear]:  # type: ignore[no-untyped-def]
    project = Project(code="P", name="Projet")
    year = SchoolYear(start_year=2025, label="2025-2026", starts_on=dt.date(2025, 9, 1),
                      ends_on=dt.date(2026, 8, 31), is_current=True)
    session.add_all([project, year])
    session.flush()
    establishment = Establishment(project_id=project.id, uai="0750654D", name="Collège Test",
                                  kind=EstablishmentKind.COLLEGE)
    session.add(establishment)
    session.flush()
    return establishment, year


def _person(establishment: Establishment, login: str, kind: PersonKind = PersonKind.TEACHER,
            ine: str | None = None) -> Person:
    return Person(establishment_id=establishment.id, kind=kind, login=login, last_name="NOM",
                  first_name="Prénom", ine=ine)


def test_rights_are_held_by_exactly_one_of_user_or_group(database_url: str) -> None:
    database = open_database(database_url)
    try:
        with database.session() as session:
            establishment, year = _frame(session)
            teacher = _person(establishment, "t1")
            group = Group(establishment_id=establishment.id, kind=GroupKind.ADMINS,
                          name="administrateurs")
            rubric = Rubric(establishment_id=establishment.id, school_year_id=year.id,
                            kind=RubricKind.CLASS, name="Classe 6A", created_at=NOW)
            session.add_all([teacher, group, rubric])
            session.flush()
            session.add_all([
                RubricRight(rubric_id=rubric.id, person_id=teacher.id, role=RubricRole.WRITER),
                RubricRight(rubric_id=rubric.id, group_id=group.id, role=RubricRole.MANAGER),
            ])
        with pytest.raises(IntegrityError), database.session() as session:
            session.add(RubricRight(rubric_id=rubric.id, role=RubricRole.VISITOR))
        with database.session() as session:
            roles = session.scalars(select(RubricRight.role).order_by(RubricRight.role)).all()
            assert roles == [RubricRole.MANAGER, RubricRole.WRITER]
    finally:
        database.dispose()


def test_an_ine_belongs_to_one_person(database_url: str) -> None:
    database = open_database(database_url)
    try:
        with database.session() as session:
            establishment, _ = _frame(session)
            session.add(_person(establishment, "s1", PersonKind.STUDENT, "123456789AB"))
        with pytest.raises(IntegrityError), database.session() as session:
            establishment = session.scalars(select(Establishment)).one()
            session.add(_person(establishment, "s2", PersonKind.STUDENT, "123456789AB"))
    finally:
        database.dispose()


def test_deleting_a_class_takes_its_memberships_with_it(database_url: str) -> None:
    database = open_database(database_url)
    try:
        with database.session() as session:
            establishment, year = _frame(session)
            student = _person(establishment, "s1", PersonKind.STUDENT)
            school_class = SchoolClass(establishment_id=establishment.id,
                                       school_year_id=year.id, code="6A")
            session.add_all([student, school_class])
            session.flush()
            session.add(ClassMembership(class_id=school_class.id, person_id=student.id,
                                        role=ClassRole.STUDENT))
        with database.session() as session:
            session.execute(delete(SchoolClass))
        with database.session() as session:
            assert session.scalar(select(func.count()).select_from(ClassMembership)) == 0
            assert session.scalar(select(func.count()).select_from(Person)) == 1
    finally:
        database.dispose()


def test_an_invalid_uai_never_reaches_the_database() -> None:
    with pytest.raises(InvalidUAIError, match="lettre clé"):
        Establishment(uai="0750654E", name="X", kind=EstablishmentKind.COLLEGE, project_id=1)


def test_an_unreachable_database_gives_a_french_error() -> None:
    with pytest.raises(DatabaseError, match="inaccessible"):
        open_database("postgresql://nobody@127.0.0.1:1/nothing")
    with pytest.raises(DatabaseError, match="invalide"):
        open_database("pas une url")
