"""Review fixes of the AAF importer: streamed reject excerpts, add then modify in one Delta."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from yearchange_tui.aaf.parser import inspect_prologue, record_excerpts


def structure_record(index: int) -> str:
    return (f'<addRequest><operationalAttributes><attr name="categoriePersonne"><value>Eleve'
            f'</value></attr></operationalAttributes><identifier><id>{index}</id></identifier>'
            f'<attributes><attr name="sn"><value>Hélène {index}</value></attr>'
            f'<attr name="givenName"><value>Zoé\n</value></attr></attributes></addRequest>')


def test_record_excerpts_stream_a_large_latin1_file(tmp_path: Path) -> None:
    """Excerpts at the start, middle and end are right, and the file is never held whole."""
    path = tmp_path / "ENT_99_Complet_20260818_Eleve_0000.xml"
    count = 60_000  # about 16 MB
    with path.open("w", encoding="latin-1", newline="\n") as out:
        out.write('<?xml version="1.0" encoding="ISO-8859-1"?>\n'
                  '<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">\n<ficAlimMENESR>\n')
        for index in range(count):
            out.write(structure_record(index) + "\n")  # each record takes two lines
        out.write("</ficAlimMENESR>\n")
    size = path.stat().st_size
    prologue = inspect_prologue(path, path.name)
    first, middle, last = 0, count // 2, count - 1
    lines = {4 + 2 * index: index for index in (first, middle, last)}
    tracemalloc.start()
    try:
        found = record_excerpts(path, prologue, [*lines, 4 + 2 * count + 10])
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found == {line: structure_record(index) for line, index in lines.items()}
    assert peak < size // 4, (peak, size)


STRUCTURE_ADD = """<addRequest>
<operationalAttributes><attr name="categorieStructure"><value>EtabEducNat</value></attr></operationalAttributes>
<identifier><id>7100</id></identifier>
<attributes>
<attr name="ENTStructureJointure"><value>7100</value></attr>
<attr name="ENTStructureUAI"><value>0999100D</value></attr>
<attr name="ENTStructureNomCourant"><value>CLG$COLLÈGE ANCIEN NOM$VILLEBOURG</value></attr>
<attr name="ENTStructureTypeStruct"><value>COLLEGE</value></attr>
<attr name="postalCode"><value>99100</value></attr>
<attr name="l"><value>VILLEBOURG</value></attr>
<attr name="ENTServAcCodeAcademie"><value>099</value></attr>
<attr name="ENTStructureClasses"><value/></attr>
<attr name="ENTStructureGroupes"><value/></attr>
</attributes>
</addRequest>
"""
STRUCTURE_MODIFY = """<modifyRequest>
<operationalAttributes><attr name="categorieStructure"><value>EtabEducNat</value></attr></operationalAttributes>
<identifier><id>7100</id></identifier>
<modifications>
<modification name="ENTStructureNomCourant" operation="replace"><value>CLG$COLLÈGE NOUVEAU NOM$VILLEBOURG</value></modification>
<modification name="l" operation="replace"><value>NOUVELLEVILLE</value></modification>
</modifications>
</modifyRequest>
"""
def delta(path: Path, body: str) -> Path:
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n'
                    '<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">\n<ficAlimMENESR>\n'
                    + body + "</ficAlimMENESR>\n", encoding="utf-8")
    return path


def test_add_then_modify_one_structure_in_one_delta(database_url: str, tmp_path: Path) -> None:
    from sqlalchemy import select

    from yearchange_tui.aaf.models import AafStructure
    from yearchange_tui.cli.main import main
    from yearchange_tui.ent.database import open_database
    from yearchange_tui.ent.models import Establishment
    from yearchange_tui.importing.models import AafReject

    folder = tmp_path / "livraison"
    folder.mkdir()
    delta(folder / "ENT_99_Delta_20260821_EtabEducNat_0000.xml", STRUCTURE_ADD + STRUCTURE_MODIFY)
    options = ["--db", database_url, "--storage", str(tmp_path / "storage")]
    assert main([*options, "db", "upgrade"]) == 0  # import-aaf never creates the database
    assert main([*options, "import-aaf", str(folder)]) == 0
    database = open_database(database_url)
    try:
        with database.session() as session:
            structures = session.execute(select(AafStructure.jointure, AafStructure.name)).all()
            assert [(j, "NOUVEAU NOM" in n) for j, n in structures] == [("7100", True)]
            schools = session.execute(select(Establishment.uai, Establishment.name,
                                             Establishment.town)).all()
            assert len(schools) == 1
            uai, name, town = schools[0]
            assert uai == "0999100D" and "NOUVEAU NOM" in name and town == "NOUVELLEVILLE"
            assert session.scalars(select(AafReject.code)).all() == []
    finally:
        database.dispose()
