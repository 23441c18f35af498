"""Step 2's classeur: one ZIP per student with the activities distributed to them during
year N (seed §6.2), with their attachments, and nothing from another year."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from changeover_support import WINDOW, Academy, make_academy
from sqlalchemy import select, text, update

from yearchange_tui.ent.models import SchoolYear
from yearchange_tui.workflow.models import Step
from yearchange_tui.workflow.units import current_school_year, next_school_year


@pytest.fixture
def academy(database_url: str, tmp_path: Path) -> Iterator[Academy]:
    academy = make_academy(database_url, tmp_path / "storage")
    yield academy
    academy.database.dispose()


def _rows(academy: Academy, sql: str, **params: object) -> list[tuple]:
    with academy.database.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql), params)]


def test_a_students_classeur_zip_holds_their_year_activities_and_attachments(
        academy: Academy) -> None:
    # The student with the most distributed activities that have attachments.
    [(student_id, year_id)] = _rows(
        academy,
        "SELECT d.student_id, a.school_year_id FROM activity_distributions d "
        "JOIN binder_activities a ON a.id = d.activity_id "
        "JOIN activity_attachments t ON t.activity_id = a.id "
        "GROUP BY d.student_id, a.school_year_id ORDER BY COUNT(*) DESC, d.student_id LIMIT 1")
    # An activity of the year before, distributed to the same student, must stay out.
    with academy.database.session() as session:
        year = current_school_year(session)
        previous = session.scalar(select(SchoolYear).where(
            SchoolYear.start_year == year.start_year - 1))
        if previous is None:
            previous = SchoolYear(start_year=year.start_year - 1,
                                  label=f"{year.start_year - 1}-{year.start_year}",
                                  starts_on=year.starts_on.replace(year=year.start_year - 1),
                                  ends_on=year.ends_on.replace(year=year.start_year),
                                  is_current=False)
            session.add(previous)
            session.flush()
        old_activity = session.execute(text(
            "INSERT INTO binder_activities (establishment_id, school_year_id, title, "
            "instructions, created_at) SELECT establishment_id, :year, 'Activité de l''an "
            "passé', '', :at FROM people WHERE id = :student RETURNING id"),
            {"year": previous.id, "at": dt.datetime(2025, 3, 1, tzinfo=dt.UTC),
             "student": student_id}).scalar()
        session.execute(text(
            "INSERT INTO activity_distributions (activity_id, student_id, distributed_at) "
            "VALUES (:a, :s, :at)"),
            {"a": old_activity, "s": student_id, "at": dt.datetime(2025, 3, 1, tzinfo=dt.UTC)})
        session.commit()
    expected_activities = {row[0] for row in _rows(
        academy, "SELECT d.activity_id FROM activity_distributions d JOIN binder_activities a "
                 "ON a.id = d.activity_id WHERE d.student_id = :s AND a.school_year_id = :y",
        s=student_id, y=year_id)}
    attachments = _rows(
        academy, "SELECT f.id, f.original_name, f.relative_path FROM activity_attachments t "
                 "JOIN stored_files f ON f.id = t.stored_file_id "
                 "WHERE t.activity_id IN (SELECT activity_id FROM activity_distributions "
                 "WHERE student_id = :s) AND t.activity_id <> :old", s=student_id, old=old_activity)
    assert expected_activities and attachments

    runner = academy.runner()
    [outcome] = runner.run(Step.ARCHIVE, runner.establishments())
    assert outcome.status == "done"
    [(relative,)] = _rows(academy, "SELECT relative_path FROM archive_manifests "
                                   "WHERE archive_key = :k", k=f"classeur:{student_id}")
    with zipfile.ZipFile(academy.storage / relative) as archive:
        names = set(archive.namelist())
        index = archive.read("index.html").decode("utf-8")
        pages = {int(m.group(1)) for n in names if (m := re.fullmatch(r"activites/(\d+)\.html", n))}
        assert pages == expected_activities
        assert f"{len(expected_activities)} activités diffusées" in index
        assert "Activité de l'an passé" not in index
        for file_id, _name, path in attachments:
            [member] = [n for n in names if n.startswith(f"pieces-jointes/{file_id}-")]
            assert hashlib.sha256(archive.read(member)).digest() == \
                hashlib.sha256((academy.storage / path).read_bytes()).digest()
    assert f"activites/{old_activity}.html" not in names


def test_with_the_next_year_current_and_no_new_activity_the_classeurs_are_empty(
        academy: Academy) -> None:
    distributions = _rows(academy, "SELECT COUNT(*) FROM activity_distributions")[0][0]
    assert distributions > 0
    with academy.database.session() as session:
        year = current_school_year(session)
        following = next_school_year(session, year)
        session.execute(update(SchoolYear).values(is_current=False))
        session.execute(update(SchoolYear).where(SchoolYear.id == following.id)
                        .values(is_current=True))
        session.commit()
        assert session.scalar(select(SchoolYear.label).where(SchoolYear.is_current)) == \
            following.label
    later = academy.runner(now=WINDOW + dt.timedelta(days=365))
    [outcome] = later.dry_run(later.establishments(), (Step.ARCHIVE,))
    archives = outcome.counts["archives classeur"]
    assert archives > 0
    # Each classeur holds its summary and stylesheet only: no activity, no attachment.
    assert outcome.counts["entrées classeur"] == 2 * archives
