"""The real anonymised académie export (entcore test corpus): every record accounted for."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from yearchange_tui.aaf.importer import import_delivery
from yearchange_tui.ent.database import open_database
from yearchange_tui.ent.models import Person, SchoolClass
from yearchange_tui.importing.models import AafImportFile, AafReject

CORPUS = (Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "aaf_samples"
          / "edificeio_entcore" / "feeder_aaf-test")

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus AAF de référence absent")


def test_real_corpus_imports_with_every_record_accounted_for(database_url: str) -> None:
    database = open_database(database_url)
    try:
        result = import_delivery(database, [CORPUS])
        records = result.records
        assert len(result.files) == 46
        assert records["total"] == 10 + 718 + 2504 + 642 + 701 + 9975
        assert records["total"] == records["imported"] + records["refused"] + records["skipped"]
        for kind, counts in result.records_by_kind.items():
            accounted = counts["imported"] + counts["refused"] + counts["skipped"]
            assert counts["total"] == accounted, kind
        assert result.header["common"] == {"versionAF": "AAF-VE1301"}
        with database.session() as session:
            refused_records = session.scalar(
                select(func.count(func.distinct(AafReject.file_name + ":" + AafReject.record_id)))
                .where(AafReject.severity == "erreur"))
            assert refused_records == records["refused"]
            # Relatives of the missing Eleve_0000 chunk are cited by no student.
            orphans = session.scalar(select(func.count()).select_from(AafReject).where(
                AafReject.code == "AAF-RESPONSABLE-ORPHELIN"))
            assert orphans > 8000
            assert session.scalar(select(func.count()).select_from(Person)) > 0
            assert session.scalar(select(func.count()).select_from(SchoolClass)) > 0
            # Person files have no XML declaration: read as UTF-8 (accented first names).
            assert session.scalar(select(func.count()).select_from(Person).where(
                Person.first_name == "Kù")) >= 1
            declared = dict(session.execute(select(AafImportFile.kind,
                                                   AafImportFile.declared_encoding)).all())
            assert declared["Eleve"] == "" and declared["EtabEducNat"] == "UTF-8"
    finally:
        database.dispose()
