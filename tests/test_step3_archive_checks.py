"""Step 3's archive check done ahead (issue 16): the next establishment's archives are
hashed while the previous unit deletes; the guard reuses a pass only while the file is
unwritten since. Real files, real databases."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from changeover_support import Academy, count, make_academy
from sqlalchemy import text

from yearchange_tui.changeover import verify
from yearchange_tui.changeover.steps.delete_obsolete import warm_archive_checks
from yearchange_tui.workflow.models import Step
from yearchange_tui.workflow.units import current_school_year


@pytest.fixture
def academy(database_url: str, tmp_path: Path) -> Iterator[Academy]:
    academy = make_academy(database_url, tmp_path / "storage", establishments=2)
    try:
        runner = academy.runner()
        establishments = runner.establishments()
        for step in (Step.PURGE_TRASH, Step.ARCHIVE):
            assert {o.status for o in runner.run(step, establishments)} == {"done"}
        yield academy
    finally:
        academy.database.dispose()


def _hashes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    hashed: list[Path] = []
    real = verify._sha256

    def counting(path: Path) -> str:
        hashed.append(path)
        return real(path)

    monkeypatch.setattr(verify, "_sha256", counting)
    return hashed


def test_the_guard_does_not_hash_again_what_was_just_checked_ahead(
        academy: Academy, monkeypatch: pytest.MonkeyPatch) -> None:
    ref = academy.runner().establishments()[0]
    hashed = _hashes(monkeypatch)
    warm_archive_checks(academy.database, academy.storage, ref)
    with academy.database.session() as session:
        year_id = current_school_year(session).id
        manifests = count(academy.database, "SELECT COUNT(*) FROM archive_manifests "
                          "WHERE establishment_id = :e", e=ref.id)
        assert manifests > 0 and len(hashed) == manifests
        assert verify.archive_problems(session, academy.storage, ref.id, year_id) == []
        assert len(hashed) == manifests, "hashed again right after the check ahead"
        # Each pass is used once: the next check hashes every byte again.
        assert verify.archive_problems(session, academy.storage, ref.id, year_id) == []
        assert len(hashed) == 2 * manifests


def test_an_archive_altered_after_its_check_ahead_is_refused(academy: Academy) -> None:
    runner = academy.runner()
    establishments = runner.establishments()
    ref = establishments[0]
    warm_archive_checks(academy.database, academy.storage, ref)
    with academy.database.engine.connect() as connection:
        relative = connection.execute(text(
            "SELECT relative_path FROM archive_manifests WHERE establishment_id = :e "
            "ORDER BY id LIMIT 1"), {"e": ref.id}).scalar()
    path = academy.storage / relative
    before = path.stat()
    data = path.read_bytes()
    # Same size, same modification time: only the change time tells.
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    classes = count(academy.database, "SELECT COUNT(*) FROM classes")
    outcomes = runner.run(Step.DELETE_OBSOLETE, establishments)
    assert outcomes[0].status == "refused" and outcomes[0].code == "archives-invalides"
    assert "SHA-256" in (outcomes[0].error or "")
    assert outcomes[1].status == "done"  # the next one, checked ahead meanwhile
    assert count(academy.database, "SELECT COUNT(*) FROM classes") < classes
    path.write_bytes(data)
    assert runner.run(Step.DELETE_OBSOLETE, [ref])[0].status == "done"
