"""Access blocking of step 4: project dates, establishment overrides, profiles, notices."""

from __future__ import annotations

import datetime as dt

import pytest

from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.ent.models import (
    Establishment,
    EstablishmentKind,
    Person,
    PersonKind,
    PersonProfile,
    Profile,
    Project,
)
from yearchange_tui.workflow.access_block import (
    AccessBlockError,
    access_decision,
    deactivation_notices_suspended,
    set_deactivation_notice_suspension,
    set_establishment_block,
)


@pytest.fixture
def setup(database_url: str):
    database = open_database(database_url)
    with database.session() as session:
        project = Project(code="ENT-X", name="ENT X", ent_name="ENT Exemple",
                          access_block_starts_on=dt.date(2026, 8, 20),
                          access_block_ends_on=dt.date(2026, 9, 1),
                          access_block_message="Votre espace {ent} est indisponible du {debut} "
                                               "au {fin} inclus.",
                          access_block_profiles="National_ELV,National_TUT",
                          access_block_override_allowed=True)
        session.add(project)
        session.flush()
        establishment = Establishment(project_id=project.id, uai="0999001W", name="C",
                                      kind=EstablishmentKind.COLLEGE)
        session.add(establishment)
        session.flush()
        ids = {}
        for key, kind, profiles in (("student", PersonKind.STUDENT, [Profile.STUDENT]),
                                    ("parent", PersonKind.RELATIVE, [Profile.RELATIVE]),
                                    ("teacher", PersonKind.TEACHER, [Profile.TEACHER]),
                                    ("teacher_parent", PersonKind.TEACHER,
                                     [Profile.TEACHER, Profile.RELATIVE])):
            person = Person(kind=kind, login=key, last_name="N", first_name=key,
                            establishment_id=establishment.id)
            session.add(person)
            session.flush()
            for profile in profiles:
                session.add(PersonProfile(person_id=person.id, establishment_id=establishment.id,
                                          profile=profile))
            ids[key] = person.id
        ids["establishment"] = establishment.id
        ids["project"] = project.id
    yield database, ids
    database.dispose()


def decide(database: Database, person_id: int, day: dt.date):
    with database.session() as session:
        return access_decision(session, person_id, day)


def test_students_and_parents_are_blocked_during_the_project_window(setup) -> None:
    database, ids = setup
    inside = dt.date(2026, 8, 25)
    for who in ("student", "parent"):
        decision = decide(database, ids[who], inside)
        assert decision.blocked
        assert decision.message == ("Votre espace ENT Exemple est indisponible du 20/08/2026 au "
                                    "01/09/2026 inclus.")
    assert decide(database, ids["student"], dt.date(2026, 9, 1)).blocked  # end day included
    assert not decide(database, ids["student"], dt.date(2026, 9, 2)).blocked
    assert not decide(database, ids["student"], dt.date(2026, 8, 19)).blocked
    assert not decide(database, ids["teacher"], inside).blocked
    # A teacher who is also a parent keeps access.
    assert not decide(database, ids["teacher_parent"], inside).blocked


def test_establishment_may_shorten_or_lengthen_within_the_project_limits(setup) -> None:
    database, ids = setup
    with database.session() as session:
        window = set_establishment_block(session, ids["establishment"], None,
                                         dt.date(2026, 9, 8))
        assert window is not None and window.source == "établissement"
    assert decide(database, ids["student"], dt.date(2026, 9, 7)).blocked
    with database.session() as session:
        set_establishment_block(session, ids["establishment"], dt.date(2026, 8, 28),
                                dt.date(2026, 8, 30))
    assert not decide(database, ids["student"], dt.date(2026, 8, 25)).blocked
    assert decide(database, ids["student"], dt.date(2026, 8, 29)).blocked
    with database.session() as session:
        with pytest.raises(AccessBlockError, match="avant le 20/08/2026"):
            set_establishment_block(session, ids["establishment"], dt.date(2026, 8, 10), None)
        with pytest.raises(AccessBlockError, match="au-delà du 15/09/2026"):
            set_establishment_block(session, ids["establishment"], None, dt.date(2026, 9, 30))


def test_establishment_dates_need_the_project_permission(setup) -> None:
    database, ids = setup
    with database.session() as session:
        session.get(Project, ids["project"]).access_block_override_allowed = False
        with pytest.raises(AccessBlockError, match="n'autorise pas"):
            set_establishment_block(session, ids["establishment"], None, dt.date(2026, 9, 8))
        # Dates set earlier no longer apply once the project withdraws the permission.
        establishment = session.get(Establishment, ids["establishment"])
        establishment.access_block_ends_on = dt.date(2026, 9, 8)
    assert not decide(database, ids["student"], dt.date(2026, 9, 7)).blocked


def test_deactivation_notices_suspended_until_mid_september_at_most(setup) -> None:
    database, ids = setup
    with database.session() as session:
        with pytest.raises(AccessBlockError, match="mi-septembre"):
            set_deactivation_notice_suspension(session, ids["project"], dt.date(2026, 9, 30))
        set_deactivation_notice_suspension(session, ids["project"], dt.date(2026, 9, 15))
    with database.session() as session:
        assert deactivation_notices_suspended(session, ids["project"], dt.date(2026, 9, 15))
        assert not deactivation_notices_suspended(session, ids["project"], dt.date(2026, 9, 16))
