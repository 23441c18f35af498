"""AAF parsing: encodings, header comments, hostile and broken files, delivery packaging."""

from __future__ import annotations

import io
import re
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from yearchange_tui.aaf.delivery import KIND_ORDER, kind_from_name, open_delivery
from yearchange_tui.aaf.parser import AafFileError, AafFileReader, HtmlEntityFilter
from yearchange_tui.aaf.rules import RULES, Severity, explain, rules_table

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "aaf"
DELIVERY = SAMPLE / "livraison"
REFUSED = SAMPLE / "refuses"

EXPECTED_REFUSALS = {
    "entites_internes_Eleve_0000.xml": "AAF-DTD-INTERNE",
    "entite_externe_Eleve_0000.xml": "AAF-DTD-INTERNE",
    "dtd_distante_Eleve_0000.xml": "AAF-DOCTYPE-INTERDIT",
    "doctype_public_Eleve_0000.xml": "AAF-DOCTYPE-INTERDIT",
    "tronque_EtabEducNat_0000.xml": "AAF-XML-MALFORME",
    "racine_html_Eleve_0000.xml": "AAF-RACINE-INATTENDUE",
    "binaire_Eleve_0000.xml": "AAF-FICHIER-BINAIRE",
    "type_incoherent_PersRelEleve_0000.xml": "AAF-FICHIER-TYPE-INCOHERENT",
    "encodage_faux_Eleve_0000.xml": "AAF-ENCODAGE-INVALIDE",
    "entite_inconnue_Eleve_0000.xml": "AAF-ENTITE-INCONNUE",
    "vide_Eleve_0000.xml": "AAF-XML-MALFORME",
}

HEAD = ('<?xml version="1.0" encoding="{encoding}"?>\n'
        '<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">\n')


def read_all(paths: list[Path]) -> dict[str, list]:
    """Open a delivery and read every record (values read while each element is alive)."""
    found: dict[str, list] = {}
    with open_delivery(paths) as delivery:
        for delivery_file in delivery.files:
            reader = AafFileReader(delivery_file.path, delivery_file.name, delivery_file.prologue)
            found[delivery_file.name] = [
                (raw.request, raw.identifier, {name: list(raw.attributes[name])
                                               for name in raw.names}, reader)
                for raw in reader.records()]
    return found


def eleve(identifier: str, last: str, first: str, extra: str = "") -> str:
    return ("<addRequest><operationalAttributes><attr name=\"categoriePersonne\"><value>Eleve"
            "</value></attr></operationalAttributes>"
            f"<identifier><id>{identifier}</id></identifier><attributes>"
            f"<attr name=\"ENTPersonJointure\"><value>{identifier}</value></attr>"
            f"<attr name=\"sn\"><value>{last}</value></attr>"
            f"<attr name=\"givenName\"><value>{first}</value></attr>{extra}"
            "</attributes></addRequest>\n")


def write(path: Path, body: str, encoding: str | None, codec: str) -> Path:
    head = HEAD.format(encoding=encoding) if encoding else \
        '<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">\n'
    path.write_bytes((head + "<ficAlimMENESR>\n" + body + "</ficAlimMENESR>\n").encode(codec))
    return path


@pytest.mark.parametrize("name", sorted(EXPECTED_REFUSALS))
def test_hostile_and_broken_files_are_refused_with_their_code(name: str) -> None:
    with pytest.raises(AafFileError) as caught:
        read_all([REFUSED / name])
    error = caught.value
    assert error.code == EXPECTED_REFUSALS[name]
    assert RULES[error.code].severity is Severity.FILE
    assert error.file.endswith(name)
    assert error.message and error.action  # French explanation and action
    if name not in ("type_incoherent_PersRelEleve_0000.xml",):
        assert error.line is not None and error.line >= 1


def test_refused_files_are_all_documented() -> None:
    assert sorted(p.name for p in REFUSED.iterdir()) == sorted(EXPECTED_REFUSALS)
    readme = (SAMPLE.parent / "README.md").read_text(encoding="utf-8")
    for name, code in EXPECTED_REFUSALS.items():
        assert f"| `{name}` | {code}" in readme


def test_billion_laughs_is_never_expanded(tmp_path: Path) -> None:
    # 10 levels of 10 references: expanding would need gigabytes; refusal is immediate.
    levels = "".join(f'<!ENTITY e{i} "{("&e" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    path = tmp_path / "bombe_Eleve_0000.xml"
    path.write_text('<?xml version="1.0"?>\n<!DOCTYPE ficAlimMENESR [<!ENTITY e0 "lol">'
                    + levels + ']>\n<ficAlimMENESR>' + eleve("1", "&e9;", "x")
                    + "</ficAlimMENESR>", encoding="utf-8")
    with pytest.raises(AafFileError) as caught:
        read_all([path])
    assert caught.value.code == "AAF-DTD-INTERNE"


def test_doctype_hidden_after_a_long_comment_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "tardif_Eleve_0000.xml"
    path.write_bytes(b"<?xml version='1.0'?>\n<!--" + b"x" * 70_000 + b"-->\n"
                     b"<!DOCTYPE ficAlimMENESR [<!ENTITY a 'x'>]>\n<ficAlimMENESR/>")
    with pytest.raises(AafFileError) as caught:
        read_all([path])
    assert caught.value.code == "AAF-DTD-INTERNE" and caught.value.line == 4


def test_encodings_as_real_deliveries_have_them() -> None:
    files = read_all([DELIVERY])
    etab = {identifier: attrs for _, identifier, attrs, _ in
            files["ENT_99_Complet_20260818_EtabEducNat_0000.xml"]}
    # Raw Latin-1 bytes under an ISO-8859-1 declaration.
    assert etab["7001"]["ENTStructureNomCourant"] == ["CLG$COLLÈGE JEAN MOULIN$VILLEBOURG"]
    assert etab["7001"]["ENTEtablissementMinistereTutelle"] == \
        ["MINISTERE DE L'EDUCATION NATIONALE"]
    subjects = {identifier: attrs for _, identifier, attrs, _ in
                files["ENT_99_Complet_20260818_MatiereEducNat_0000.xml"]}
    # HTML named entities become the right characters.
    assert subjects["061300"]["ENTLibelleMatiere"] == ["MATHÉMATIQUES"]
    assert subjects["020100"]["ENTLibelleMatiere"] == ["LANGUES ET CULTURES DE L'ANTIQUITÉ : LATIN"]
    students = {identifier: attrs for _, identifier, attrs, _ in
                files["ENT_99_Complet_20260818_Eleve_0000.xml"]}
    # Numeric character references in a pure ASCII ISO-8859-15 file.
    assert students["1000101"]["givenName"] == ["Léa"]
    assert students["1000317"]["sn"] == ["CLÉMENT"]
    assert students["1000317"]["givenName"] == ["Anaïs"]
    relatives = {identifier: attrs for _, identifier, attrs, _ in
                 files["ENT_99_Complet_20260818_PersRelEleve_0000.xml"]}
    # No declaration: UTF-8 bytes (and CRLF line ends).
    assert relatives["3000151"]["givenName"] == ["François"]
    assert (DELIVERY / "ENT_99_Complet_20260818_PersRelEleve_0000.xml").read_bytes().startswith(
        b"<!DOCTYPE")


def test_header_comments_are_read() -> None:
    files = read_all([DELIVERY / "ENT_99_Complet_20260818_Eleve_0000.xml"])
    reader = files["ENT_99_Complet_20260818_Eleve_0000.xml"][0][3]
    assert reader.header.fields == {
        "versionAF": "AAF-VE2407", "versionSDET": "Annexe 4bis version 6.4",
        "codeAcademieExport": "99", "degre": "2D", "dateGenerationExport": "18/08/2026"}


def test_attribute_without_value_is_an_empty_value(tmp_path: Path) -> None:
    path = write(tmp_path / "x_Eleve_0000.xml",
                 eleve("7", "A", "B",
                       '<attr name="ENTElevePere"></attr><attr name="mail"><value/></attr>'),
                 "UTF-8", "utf-8")
    ((_, _, attributes, _),) = read_all([path])["x_Eleve_0000.xml"]
    assert attributes["ENTElevePere"] == [] and attributes["mail"] == [""]


def test_html_entity_cut_between_two_reads_is_rewritten() -> None:
    data = b"<a>" + b"x" * 4090 + b"&eacute;&amp;</a>"
    stream = HtmlEntityFilter(io.BytesIO(data), "f")
    out = b""
    while chunk := stream.read(4096):
        out += chunk
    assert out == b"<a>" + b"x" * 4090 + b"&#233;&amp;</a>"


def test_unknown_entity_gives_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "y_Eleve_0000.xml", eleve("1", "A", "B") + eleve("2", "&zzz;", "C"),
                 "UTF-8", "utf-8")
    with pytest.raises(AafFileError) as caught:
        read_all([path])
    assert caught.value.code == "AAF-ENTITE-INCONNUE" and caught.value.line == 5


def test_kind_comes_from_the_content_when_the_name_does_not_say(tmp_path: Path) -> None:
    path = write(tmp_path / "export.xml", eleve("1", "A", "B"), "UTF-8", "utf-8")
    with open_delivery([path]) as delivery:
        assert delivery.files[0].kind == "Eleve"


def test_delivery_order_is_date_then_complet_then_dependency(tmp_path: Path) -> None:
    folder = tmp_path / "livraison"
    shutil.copytree(DELIVERY, folder)
    with open_delivery([folder]) as delivery:
        order = [(f.delivery_type, f.kind) for f in delivery.files]
        assert order == [("Complet", kind) for kind in KIND_ORDER] + [("Delta", "Eleve")]
        assert [len(group) for group in delivery.groups()] == [6, 1]
        assert delivery.delivery_type == "Complet+Delta"


def test_names_of_real_deliveries() -> None:
    assert kind_from_name("clean-FULL_ENTTSSERVICES_Complet_20130117_PersRelEleve_0039.xml") == \
        ("PersRelEleve", 39)
    assert kind_from_name("ENT_0693890D_Complet_20130218_Eleve_0000.xml") == ("Eleve", 0)
    assert kind_from_name("ENT2DVA-ENT16_Complet_20240916_MefEducNat_0000.xml") == ("MefEducNat", 0)
    assert kind_from_name("ENT_Complet_PersEducNat_0000.xml") == ("PersEducNat", 0)
    assert kind_from_name("notes.xml") == (None, 0)


def test_tgz_and_zip_deliveries(tmp_path: Path) -> None:
    tgz = tmp_path / "Complet99-ENT.20260818.tgz"
    with tarfile.open(tgz, "w:gz") as bundle:
        for path in DELIVERY.iterdir():
            bundle.add(path, arcname=f"livraison/{path.name}")
    archive = tmp_path / "livraison.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in DELIVERY.iterdir():
            bundle.write(path, path.name)
    for source in (tgz, archive):
        with open_delivery([source]) as delivery:
            assert len(delivery.files) == 7
            assert delivery.source_kind in ("tgz", "zip")
            extracted = delivery.files[0].path
            assert extracted.is_file()
        assert not extracted.exists()  # the temporary folder is removed


@pytest.mark.parametrize("member", ["../evil_Eleve_0000.xml", "/etc/evil_Eleve_0000.xml"])
def test_archive_member_outside_the_folder_is_refused(tmp_path: Path, member: str) -> None:
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr(member, "<ficAlimMENESR/>")
    with pytest.raises(AafFileError) as caught:
        read_all([archive])
    assert caught.value.code == "AAF-ARCHIVE-INVALIDE"


def test_archive_with_a_link_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "lien.tgz"
    with tarfile.open(archive, "w:gz") as bundle:
        info = tarfile.TarInfo("ENT_Complet_Eleve_0000.xml")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        bundle.addfile(info)
    with pytest.raises(AafFileError) as caught:
        read_all([archive])
    assert caught.value.code == "AAF-ARCHIVE-INVALIDE"


def test_decompression_bomb_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "bombe.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("ENT_Complet_Eleve_0000.xml", b" " * (20 * 1024 * 1024))
    with pytest.raises(AafFileError) as caught:
        read_all([archive])
    assert caught.value.code == "AAF-ARCHIVE-INVALIDE"


def test_missing_and_empty_deliveries(tmp_path: Path) -> None:
    with pytest.raises(AafFileError) as caught:
        read_all([tmp_path / "absent"])
    assert caught.value.code == "AAF-LIVRAISON-INTROUVABLE"
    (tmp_path / "vide").mkdir()
    with pytest.raises(AafFileError) as caught:
        read_all([tmp_path / "vide"])
    assert caught.value.code == "AAF-LIVRAISON-VIDE"


def test_every_rule_has_a_french_explanation_and_action() -> None:
    table = rules_table()
    assert len({rule["code"] for rule in table}) == len(table)
    for rule in table:
        assert rule["code"].startswith("AAF-") and rule["code"] == rule["code"].upper()
        message, action = explain(rule["code"], record="l'élève 1", Record="L'élève 1")
        assert message and action and "{" not in message and "{" not in action


def test_records_leave_the_tree_once_read() -> None:
    """Streaming: no record read stays in the tree (memory flat whatever the size)."""
    with open_delivery([DELIVERY]) as delivery:
        for delivery_file in delivery.files:
            reader = AafFileReader(delivery_file.path, delivery_file.name, delivery_file.prologue)
            seen = 0
            for raw in reader.records():
                if raw.request == "unknown":
                    continue
                # Only what the parser has read ahead follows it; nothing precedes it.
                assert raw.element.getparent() is not None
                assert raw.element.getprevious() is None, (delivery_file.name, raw.line)
                seen += 1
            assert seen


def test_values_not_read_are_gone_once_the_reader_moves_on() -> None:
    with open_delivery([DELIVERY / "ENT_99_Complet_20260818_Eleve_0000.xml"]) as delivery:
        delivery_file = delivery.files[0]
        reader = AafFileReader(delivery_file.path, delivery_file.name, delivery_file.prologue,
                               eager=("sn",))
        records = list(reader.records())
    first = records[0]
    assert first.attributes["sn"]  # read while the record was current
    assert "givenName" in first.names and "givenName" in first.attributes
    with pytest.raises(LookupError):
        first.attributes["givenName"]


def test_record_excerpts_find_every_record_by_its_line() -> None:
    """The excerpts of deferred rejects: the bytes from a line's request to its end tag."""
    from yearchange_tui.aaf.parser import record_excerpts

    with open_delivery([DELIVERY]) as delivery:
        for delivery_file in delivery.files:
            data = delivery_file.path.read_bytes()
            lines = data.split(b"\n")
            starts = [i + 1 for i, text in enumerate(lines)
                      if re.search(rb"<(add|modify|delete)Request[\s>]", text)]
            wanted = [*starts, len(lines) + 5]  # and a line past the end
            found = record_excerpts(delivery_file.path, delivery_file.prologue, wanted)
            assert sorted(found) == starts, delivery_file.name
            codec = delivery_file.prologue.declared_encoding or "utf-8"
            for line in starts:
                text = found[line]
                assert text.startswith("<") and text.endswith("Request>")
                assert text.encode(codec, "replace").split(b"\n")[0] in lines[line - 1]
