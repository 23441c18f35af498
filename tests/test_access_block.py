"""Access blocking of step 4: one window for ``plan``, ``access-block`` and the redirect;
the seed's limits on every date edit; profiles and notices. Also the one school-year rule."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from yearchange_tui.aaf.importer import import_delivery
from yearchange_tui.cli.main import main
from yearchange_tui.ent import base
from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.ent.models import (
    Establishment,
    EstablishmentKind,
    Person,
    PersonKind,
    PersonProfile,
    Profile,
    Project,
    SchoolYear,
)
from yearchange_tui.ent.school_year import school_year_carried_by_aaf, school_year_of
from yearchange_tui.sample.roster import default_school_year
from yearchange_tui.workflow.access_block import (
    AccessBlockError,
    access_decision,
    deactivation_notices_suspended,
    set_deactivation_notice_suspension,
    set_establishment_block,
)
from yearchange_tui.workflow.calendar import Milestone, resolve_target, set_date
from yearchange_tui.workflow.models import AuditEntry, CalendarDate


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


def in_pre_rentree(monkeypatch: pytest.MonkeyPatch, summer: int) -> None:
    """Pin the package clock on the template's « Rentrée des enseignants » (1 September),
    the only time an establishment may amend its block (seed §6.4, checklist row 129)."""
    monkeypatch.setattr(base, "clock", lambda: dt.datetime(summer, 9, 1, 8, 0, tzinfo=dt.UTC))


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


def test_establishment_may_shorten_or_lengthen_within_the_project_limits(
        setup, monkeypatch: pytest.MonkeyPatch) -> None:
    database, ids = setup
    in_pre_rentree(monkeypatch, 2026)
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


def test_establishment_dates_need_the_project_permission(
        setup, monkeypatch: pytest.MonkeyPatch) -> None:
    database, ids = setup
    in_pre_rentree(monkeypatch, 2026)
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


# -- one window for `plan` and `access-block`, whatever the edit --------------------------

DELIVERY = Path(__file__).resolve().parents[1] / "sample_data" / "aaf" / "livraison"

YEAR = 2026  # change-over of 2026-2027: its summer is 2027


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("academie")
    assert main(["sample", "--establishments", "2", "--seed", "7", "--year", str(YEAR),
                 "--out", str(out)]) == 0
    return out


@dataclass
class Sample:
    options: list[str]
    uai: str
    other_uai: str
    kind: str
    project: str
    login: str


@pytest.fixture
def sample(sample_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Sample:
    """A private copy of the sample database, one establishment and one of its students."""
    shutil.copyfile(sample_dir / "yearchange.db", tmp_path / "yearchange.db")
    options = ["--db", f"sqlite:///{tmp_path / 'yearchange.db'}",
               "--storage", str(sample_dir / "storage")]
    database = open_database(options[1])
    with database.session() as session:
        first, second = session.scalars(select(Establishment).order_by(Establishment.uai))
        login = session.scalar(select(Person.login).where(
            Person.kind == PersonKind.STUDENT, Person.establishment_id == first.id).limit(1))
        project = session.get(Project, first.project_id)
        found = Sample(options, first.uai, second.uai, str(first.kind.value), project.code,
                       login)
    database.dispose()
    capsys.readouterr()
    return found


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def plan_dates(sample: Sample, capsys: pytest.CaptureFixture[str], uai: str = ""
               ) -> tuple[str | None, str | None]:
    status, out, _ = run(capsys, *sample.options, "plan", "--json", "--uai", uai or sample.uai)
    assert status == 0
    (entry,) = json.loads(out)["establishments"]
    dates = {m["milestone"]: m["date"] for m in entry["milestones"]}
    return dates["access-block-start"], dates["access-block-end"]


def plan_window(sample: Sample, capsys: pytest.CaptureFixture[str], uai: str = ""
                ) -> tuple[dt.date, dt.date]:
    starts, ends = plan_dates(sample, capsys, uai)
    assert starts and ends
    return dt.date.fromisoformat(starts), dt.date.fromisoformat(ends)


def decision_on(sample: Sample, capsys: pytest.CaptureFixture[str], day: dt.date
                ) -> dict[str, object]:
    status, out, _ = run(capsys, *sample.options, "access-block", "--login", sample.login,
                         "--at", day.isoformat(), "--json")
    assert status == 0
    return json.loads(out)


def assert_agree(sample: Sample, capsys: pytest.CaptureFixture[str],
                 expected: tuple[dt.date, dt.date]) -> None:
    """``plan`` shows ``expected``, and ``access-block`` blocks exactly those days around
    each edge (the day before, the day itself, the day after)."""
    starts, ends = plan_window(sample, capsys)
    assert (starts, ends) == expected
    one = dt.timedelta(days=1)
    for edge in (starts, ends):
        for day in (edge - one, edge, edge + one):
            decision = decision_on(sample, capsys, day)
            assert decision["blocked"] == (starts <= day <= ends), day
            if decision["blocked"]:  # the redirect page names the same days
                assert f"du {starts:%d/%m/%Y} au {ends:%d/%m/%Y} inclus" in decision["message"]


def d(month: int, day: int) -> dt.date:
    return dt.date(YEAR + 1, month, day)


PROJECT_WINDOW = (d(8, 20), d(9, 1))  # the sample project's own dates


@pytest.mark.parametrize("level", ["establishment", "kind", "project"])
def test_plan_and_access_block_agree_for_every_edit(level: str, sample: Sample,
                                                    capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    in_pre_rentree(monkeypatch, YEAR + 1)
    where = {"establishment": ["--uai", sample.uai], "kind": ["--kind", sample.kind],
             "project": ["--project", sample.project]}[level]
    # What is left once the edits are removed: the project's dates, or none at all when
    # the project's own dates are the ones removed (the template has none, seed §6.4).
    base = PROJECT_WINDOW
    assert_agree(sample, capsys, PROJECT_WINDOW)

    assert run(capsys, *sample.options, "plan", "set", "access-block-start", "2027-08-25",
               *where)[0] == 0
    assert_agree(sample, capsys, (d(8, 25), PROJECT_WINDOW[1]))
    assert run(capsys, *sample.options, "plan", "set", "access-block-end", "2027-09-05",
               *where)[0] == 0
    assert_agree(sample, capsys, (d(8, 25), d(9, 5)))

    status, out, _ = run(capsys, *sample.options, "plan", "unset", "access-block-start", *where)
    assert status == 0 and "rétablie" in out
    if level == "project":
        assert plan_dates(sample, capsys) == (None, "2027-09-05")
        decision = decision_on(sample, capsys, d(8, 28))
        assert not decision["blocked"] and decision["reason"] == (
            "aucun blocage paramétré pour le projet")
        return
    assert_agree(sample, capsys, (base[0], d(9, 5)))
    assert run(capsys, *sample.options, "plan", "unset", "access-block-end", *where)[0] == 0
    assert_agree(sample, capsys, base)


def test_an_edit_for_every_project_yields_to_the_project_dates(
        sample: Sample, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, *sample.options, "plan", "set", "access-block-end", "2027-09-04")[0] == 0
    assert_agree(sample, capsys, PROJECT_WINDOW)
    assert run(capsys, *sample.options, "plan", "unset", "access-block-end", "--project",
               sample.project)[0] == 0
    assert_agree(sample, capsys, (PROJECT_WINDOW[0], d(9, 4)))


def database_state(sample: Sample) -> tuple[object, ...]:
    database = open_database(sample.options[1])
    with database.session() as session:
        state = (
            session.scalar(select(func.count()).select_from(CalendarDate)),
            session.scalar(select(func.count()).select_from(AuditEntry)),
            tuple(session.execute(select(Establishment.uai, Establishment.access_block_starts_on,
                                         Establishment.access_block_ends_on)).all()),
            tuple(session.execute(select(Project.code, Project.access_block_starts_on,
                                         Project.access_block_ends_on)).all()))
    database.dispose()
    return state


@pytest.mark.parametrize(("argv", "code", "words"), [
    (["access-block-end", "2027-10-30", "--uai", "{uai}"], "BLOCAGE-APRES-MI-SEPTEMBRE",
     "au-delà du 15/09/2027 (mi-septembre)"),
    (["access-block-end", "2027-09-16", "--project", "{project}"],
     "BLOCAGE-APRES-MI-SEPTEMBRE", "au-delà du 15/09/2027"),
    (["access-block-end", "2027-09-20", "--kind", "{kind}"], "BLOCAGE-APRES-MI-SEPTEMBRE",
     "au-delà du 15/09/2027"),
    (["access-block-start", "2027-08-10", "--project", "{project}"], "BLOCAGE-AVANT-ETAPE-4",
     "avant l'initialisation de l'annuaire (étape 4, le 18/08/2027)"),
    (["access-block-start", "2027-08-19", "--uai", "{uai}"], "BLOCAGE-AVANT-PROJET",
     "avant le 20/08/2027 (limite du projet"),
    (["access-block-start", "2027-09-10", "--uai", "{uai}"], "BLOCAGE-FIN-AVANT-DEBUT",
     "avant de commencer le 10/09/2027"),
    (["access-block-start", "aucune", "--kind", "{kind}"], "BLOCAGE-SANS-DATE",
     "une date est nécessaire"),
])
def test_an_out_of_limit_date_is_refused_and_changes_nothing(
        argv: list[str], code: str, words: str, sample: Sample,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    in_pre_rentree(monkeypatch, YEAR + 1)
    before_plan = run(capsys, *sample.options, "plan", "--json")[1]
    before = database_state(sample)
    argv = [a.format(uai=sample.uai, project=sample.project, kind=sample.kind) for a in argv]
    status, out, err = run(capsys, *sample.options, "plan", "set", *argv)
    assert status == 2
    assert out == ""
    assert code in err and words in err
    assert "au plus tard à la mi-septembre" in err  # the rule itself, in French
    assert database_state(sample) == before
    assert run(capsys, *sample.options, "plan", "--json")[1] == before_plan


def test_establishment_dates_need_the_project_permission_on_the_command_line(
        sample: Sample, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    in_pre_rentree(monkeypatch, YEAR + 1)
    database = open_database(sample.options[1])
    with database.session() as session:
        session.scalar(select(Project).where(Project.code == sample.project)
                       ).access_block_override_allowed = False
    database.dispose()
    before = database_state(sample)
    status, _, err = run(capsys, *sample.options, "plan", "set", "access-block-end",
                         "2027-09-05", "--uai", sample.uai)
    assert status == 2
    assert "BLOCAGE-NON-AUTORISE" in err and "autorisation de la MOA" in err
    assert database_state(sample) == before
    # The MOE still sets the project's dates.
    assert run(capsys, *sample.options, "plan", "set", "access-block-end", "2027-09-05",
               "--project", sample.project)[0] == 0
    assert_agree(sample, capsys, (PROJECT_WINDOW[0], d(9, 5)))


def test_a_refused_edit_by_any_writer_writes_nothing(sample: Sample,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The calendar API the engine's ``set-date`` requests use refuses the same dates."""
    in_pre_rentree(monkeypatch, YEAR + 1)
    before = database_state(sample)
    database = open_database(sample.options[1])
    with (pytest.raises(AccessBlockError, match="BLOCAGE-APRES-MI-SEPTEMBRE"),
          database.session() as session):
        target = resolve_target(session, uai=sample.uai)
        set_date(session, YEAR, Milestone.ACCESS_BLOCK_END, d(10, 30), target=target)
    with (pytest.raises(AccessBlockError, match="BLOCAGE-APRES-MI-SEPTEMBRE"),
          database.session() as session):
        establishment = session.scalar(select(Establishment).where(
            Establishment.uai == sample.uai))
        set_establishment_block(session, establishment.id, None, d(10, 30))
    database.dispose()
    assert database_state(sample) == before


# -- the school-year rule -----------------------------------------------------------------

SCHOOL_YEARS = [  # day, year it belongs to, year an AAF delivery of that day carries
    (dt.date(2027, 7, 31), 2026, 2026),
    (dt.date(2027, 8, 15), 2026, 2027),
    (dt.date(2027, 8, 31), 2026, 2027),
    (dt.date(2027, 9, 1), 2027, 2027),
]


@pytest.mark.parametrize(("day", "belongs_to", "carried"), SCHOOL_YEARS)
def test_one_school_year_rule_for_the_sample_and_the_aaf_importer(
        day: dt.date, belongs_to: int, carried: int, tmp_path: Path) -> None:
    assert school_year_of(day) == belongs_to
    assert default_school_year(day) == belongs_to  # the sample académie's default year
    assert school_year_carried_by_aaf(day) == carried
    # A first AAF delivery into an empty database makes the year it carries current.
    delivery = tmp_path / "aaf"
    delivery.mkdir()
    source = DELIVERY / "ENT_99_Complet_20260818_EtabEducNat_0000.xml"
    shutil.copyfile(source, delivery / f"ENT_99_Complet_{day:%Y%m%d}_EtabEducNat_0000.xml")
    database = open_database(f"sqlite:///{tmp_path / 'fresh.db'}")
    import_delivery(database, [delivery])
    with database.session() as session:
        current = session.scalar(select(SchoolYear).where(SchoolYear.is_current.is_(True)))
        assert (current.start_year, current.starts_on, current.ends_on) == (
            carried, dt.date(carried, 9, 1), dt.date(carried + 1, 8, 31))
    database.dispose()


def test_without_a_date_access_block_answers_for_today_by_the_one_clock(
        sample: Sample, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "clock", lambda: dt.datetime(2027, 8, 25, 9, 0, tzinfo=dt.UTC))
    status, out, _ = run(capsys, *sample.options, "access-block", "--login", sample.login)
    assert status == 0 and out.startswith("⊘ bloqué le 25/08/2027")
    monkeypatch.setattr(base, "clock", lambda: dt.datetime(2027, 9, 2, 9, 0, tzinfo=dt.UTC))
    status, out, _ = run(capsys, *sample.options, "access-block", "--login", sample.login)
    assert status == 0 and out.startswith("✓ accès ouvert le 02/09/2027")


def test_an_establishment_amends_its_block_only_during_the_pre_rentree(
        sample: Sample, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Seed checklist row 129 (§6.4): « Lors de la pré-rentrée, […] les établissements
    pourront amender le paramétrage projet » — an establishment's own dates or message are
    refused outside the pré-rentrée (the calendar's « Rentrée des enseignants » to the eve
    of the « Rentrée des élèves »), with a French reason naming the period; nothing changes.
    The project's own edits are not limited."""
    moment = [dt.datetime(YEAR + 1, 8, 25, 8, 0, tzinfo=dt.UTC)]
    monkeypatch.setattr(base, "clock", lambda: moment[0])
    before = database_state(sample)
    for argv in (["access-block", "set", "--uai", sample.uai, "--fin", "2027-09-03"],
                 ["access-block", "set", "--uai", sample.uai, "--message", "Fermé."],
                 ["plan", "set", "access-block-end", "2027-09-03", "--uai", sample.uai]):
        status, _, err = run(capsys, *sample.options, *argv)
        assert status == 2, argv
        assert "[BLOCAGE-HORS-PRE-RENTREE]" in err
        assert ("que pendant la pré-rentrée, le 01/09/2027 ; nous sommes le 25/08/2027"
                in err), err
    assert database_state(sample) == before
    assert run(capsys, *sample.options, "plan", "set", "access-block-end", "2027-09-03",
               "--project", sample.project)[0] == 0

    # The project moves its pré-rentrée: three days of teachers before the students.
    assert run(capsys, *sample.options, "plan", "set", "teachers-start", "2027-08-30",
               "--project", sample.project)[0] == 0
    moment[0] = dt.datetime(YEAR + 1, 8, 31, 8, 0, tzinfo=dt.UTC)
    status, out, err = run(capsys, *sample.options, "access-block", "set", "--uai",
                           sample.uai, "--fin", "2027-09-02", "--message", "Fermé.")
    assert status == 0, err
    assert "blocage du 20/08/2027 au 02/09/2027 (établissement)" in out
    moment[0] = dt.datetime(YEAR + 1, 9, 2, 8, 0, tzinfo=dt.UTC)  # the students' day
    status, _, err = run(capsys, *sample.options, "access-block", "set", "--uai",
                         sample.uai, "--fin", "2027-09-01")
    assert status == 2
    assert "pendant la pré-rentrée, du 30/08/2027 au 01/09/2027 ; nous sommes le 02/09/2027" in (
        err)
