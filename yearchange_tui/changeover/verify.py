"""Verification: archive checksums and the invariants each finished step leaves behind."""

from __future__ import annotations

import hashlib
import os
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yearchange_tui.ent.models import (
    Establishment,
    Group,
    GroupKind,
    Rubric,
    RubricKind,
    SchoolClass,
    SchoolYear,
    TrashEntry,
)
from yearchange_tui.workflow.models import (
    UNIT_STATUS_LABELS,
    ArchiveManifest,
    Step,
    StepUnit,
    UnitStatus,
)


def _sha256(path: Path) -> str:
    # file_digest reads into one reused buffer (no bytes object per chunk); hashlib
    # releases the GIL while it hashes, so several files hash at once in threads.
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


CHECK_THREADS = min(4, os.cpu_count() or 1)
"""Archives checked at the same time by :func:`archive_problems` (SHA-256 on every core)."""


def _signature(path: Path) -> tuple[int, int, int, int] | None:
    """What any write to ``path`` changes (inode, size, mtime, ctime); None when absent."""
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns


class PassedChecks:
    """Archives this process hashed moments ago and found intact (:func:`warm_checks`),
    so the guard that follows, inside the unit's claiming transaction, need not hash them
    again: each passed check is used once, and only while the file's inode, size, mtime
    and ctime are still those seen around the hash (any write changes the ctime)."""

    LIMIT = 200_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._passed: dict[tuple[str, str, int, str], tuple[int, int, int, int]] = {}

    def add(self, root: Path, relative_path: str, size: int, sha256: str,
            signature: tuple[int, int, int, int]) -> None:
        with self._lock:
            if len(self._passed) >= self.LIMIT:
                self._passed.clear()
            self._passed[(str(root), relative_path, size, sha256)] = signature

    def take(self, root: Path, relative_path: str, size: int, sha256: str) -> bool:
        """True when the archive passed moments ago and has not been written since."""
        with self._lock:
            signature = self._passed.pop((str(root), relative_path, size, sha256), None)
        return signature is not None and signature == _signature(root / relative_path)


PASSED = PassedChecks()
"""This process's archives hashed ahead of their unit (step 3's warm-up)."""


def _check_ahead(storage_root: Path, row: Any) -> None:
    _key, relative_path, size, sha256 = row
    before = _signature(storage_root / relative_path)
    if before is None or check_archive(storage_root, relative_path, size, sha256,
                                       deep=False) is not None:
        return
    if _signature(storage_root / relative_path) == before:
        PASSED.add(storage_root, relative_path, size, sha256, before)


def warm_checks(session: Session, storage_root: Path, establishment_id: int,
                school_year_id: int) -> None:
    """Hash an establishment's step-2 archives ahead of step 3's guard, outside the unit's
    transaction (and while the previous unit deletes): see :class:`PassedChecks`."""
    manifests = _manifests(session, establishment_id, school_year_id)
    session.rollback()  # no snapshot held while hashing
    with ThreadPoolExecutor(max_workers=CHECK_THREADS) as pool:
        list(pool.map(lambda row: _check_ahead(storage_root, row), manifests))


def _manifests(session: Session, establishment_id: int, school_year_id: int) -> list[Any]:
    return list(session.execute(select(
        ArchiveManifest.archive_key, ArchiveManifest.relative_path, ArchiveManifest.size,
        ArchiveManifest.sha256).where(ArchiveManifest.establishment_id == establishment_id,
                                      ArchiveManifest.school_year_id == school_year_id)).all())


def _guard_check(storage_root: Path, row: Any) -> str | None:
    _key, relative_path, size, sha256 = row
    if PASSED.take(storage_root, relative_path, size, sha256):
        return None
    return check_archive(storage_root, relative_path, size, sha256, deep=False)


def check_archive(storage_root: Path, relative_path: str, size: int, sha256: str,
                  deep: bool = True) -> str | None:
    """Return a French problem description, or None when the archive is intact.

    The SHA-256 proves the bytes are those written; ``deep`` also decompresses every ZIP
    entry and checks its CRC (``yearchange verify``).
    """
    path = storage_root / relative_path
    if not path.is_file():
        return f"archive absente : {relative_path}"
    if path.stat().st_size != size:
        return f"taille différente du manifeste : {relative_path}"
    if _sha256(path) != sha256:
        return f"empreinte SHA-256 différente du manifeste : {relative_path}"
    if deep and path.suffix == ".zip":
        try:
            with zipfile.ZipFile(path) as archive:
                broken = archive.testzip()
        except zipfile.BadZipFile:
            return f"archive ZIP illisible : {relative_path}"
        if broken is not None:
            return f"entrée corrompue {broken} dans {relative_path}"
    return None


def archive_problems(session: Session, storage_root: Path, establishment_id: int,
                     school_year_id: int) -> list[str]:
    """Problems with the step-2 archives of one establishment (empty when all is well).

    Every class of year N must have its cahier de textes archive, and every manifest's
    file must exist with its recorded size and SHA-256 (and pass ``testzip``).
    """
    manifests = _manifests(session, establishment_id, school_year_id)
    problems: list[str] = []
    if not manifests:
        return ["aucune archive de l'étape 2 enregistrée"]
    keys = {row[0] for row in manifests}
    classes = session.scalars(select(SchoolClass.code).where(
        SchoolClass.establishment_id == establishment_id,
        SchoolClass.school_year_id == school_year_id)).all()
    problems += [f"archive du cahier de textes de la classe {code} manquante"
                 for code in sorted(classes) if f"cahier-de-textes:{code}" not in keys]
    # Step 3's guard hashes every byte step 2 wrote (gigabytes for a large
    # establishment): one file per thread, problems still listed in manifest order.
    with ThreadPoolExecutor(max_workers=CHECK_THREADS) as pool:
        found = pool.map(lambda row: _guard_check(storage_root, row), manifests)
        problems += [problem for problem in found if problem]
    return problems


@dataclass
class VerifyReport:
    """Result of ``yearchange verify`` for one establishment."""

    uai: str
    archives_checked: int = 0
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"uai": self.uai, "archives_checked": self.archives_checked,
                "ok": not self.problems, "problems": self.problems}


def verify(session: Session, storage_root: Path, establishment_ids: list[int],
           school_year_id: int) -> list[VerifyReport]:
    """Check archives and step invariants for each establishment."""
    year_start = session.scalar(select(SchoolYear.start_year).where(SchoolYear.id == school_year_id))
    obsolete = select(SchoolYear.id).where(SchoolYear.start_year <= year_start)
    reports = []
    for establishment_id in establishment_ids:
        uai = session.scalar(select(Establishment.uai).where(Establishment.id == establishment_id))
        report = VerifyReport(uai or "?")
        statuses = dict(session.execute(select(StepUnit.step, StepUnit.status).where(
            StepUnit.establishment_id == establishment_id,
            StepUnit.school_year_id == school_year_id)).all())
        done = {Step(step) for step, status in statuses.items()
                if UnitStatus(status) is UnitStatus.DONE}
        manifests = session.execute(select(
            ArchiveManifest.relative_path, ArchiveManifest.size, ArchiveManifest.sha256)
            .where(ArchiveManifest.establishment_id == establishment_id,
                   ArchiveManifest.school_year_id == school_year_id)).all()
        for relative_path, size, sha256 in manifests:
            report.archives_checked += 1
            problem = check_archive(storage_root, relative_path, size, sha256)
            if problem:
                report.problems.append(problem)
        archive_status = statuses.get(Step.ARCHIVE)
        if archive_status is None:
            report.problems.append("étape 2 (archivage) jamais lancée : aucune archive de "
                                   "l'année à vérifier")
        elif UnitStatus(archive_status) not in (UnitStatus.DONE, UnitStatus.SKIPPED):
            label = UNIT_STATUS_LABELS[UnitStatus(archive_status)]
            report.problems.append(f"étape 2 (archivage) non terminée (état : {label}) : les "
                                   "archives de l'année ne sont pas complètes")
        if Step.ARCHIVE in done:
            if not manifests:
                report.problems.append("étape 2 terminée sans archive enregistrée")
            left = session.scalar(select(func.count()).select_from(Rubric).where(
                Rubric.establishment_id == establishment_id,
                Rubric.kind.in_([RubricKind.CLASS, RubricKind.TEMPORARY]),
                Rubric.school_year_id == school_year_id,
                Rubric.id.not_in(select(TrashEntry.rubric_id))))
            if left:
                report.problems.append(
                    f"{left} rubrique(s) de classe ou temporaire(s) de l'année hors corbeille")
        if Step.PURGE_TRASH in done and Step.ARCHIVE in done:
            stale = session.scalar(select(func.count()).select_from(TrashEntry).where(
                TrashEntry.establishment_id == establishment_id,
                TrashEntry.school_year_id.in_(obsolete), TrashEntry.school_year_id != school_year_id))
            if stale:
                report.problems.append(f"{stale} élément(s) d'années antérieures encore dans la "
                                       "corbeille après la purge")
        if Step.DELETE_OBSOLETE in done:
            classes = session.scalar(select(func.count()).select_from(SchoolClass).where(
                SchoolClass.establishment_id == establishment_id,
                SchoolClass.school_year_id.in_(obsolete)))
            if classes:
                report.problems.append(f"{classes} classe(s) de l'année N encore présente(s)")
            options = session.scalar(select(func.count()).select_from(Group).where(
                Group.establishment_id == establishment_id, Group.kind == GroupKind.OPTION,
                Group.school_year_id.in_(obsolete)))
            if options:
                report.problems.append(f"{options} groupe(s) d'options encore présent(s)")
        reports.append(report)
    return reports
