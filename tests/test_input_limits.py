"""Input limits that cannot be split around (issue 14, findings 5 to 8), as an operator meets them.

- AAF archives (zip, tgz): entries, decompressed size and compression ratio counted while
  they are extracted, whatever the size of each member; nothing left in the temporary folder.
- The root element is checked on every AAF file, however short.
- A UTF-16 AAF file's HTML entities go through the same path as in UTF-8.
- STS-web and clear EDT files above their cap are refused before they are read.

The caps are set low in each test's configuration file, so the hostile inputs stay small.
"""

from __future__ import annotations

import io
import re
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from template_support import copy_sample
from timetable_support import PARTNER, SAMPLES, UAI, build_directory, snapshot

from yearchange_tui.cli.main import main
from yearchange_tui.ent.database import open_database
from yearchange_tui.ent.models import Person
from yearchange_tui.importing.limits import InputLimits, configure

MIB = 1024 * 1024
CLEAR_EDT = SAMPLES / "edt" / f"Edt_To_{PARTNER}_{UAI}_Enclair.xml"
STS = SAMPLES / "sts" / f"sts_emp_{UAI}_2026.xml"


@pytest.fixture(autouse=True)
def _default_limits_after() -> Iterator[None]:
    """A command configures this process's caps: give the next test the defaults back."""
    yield
    configure(InputLimits())


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary folder archives are extracted into (watched for leftovers)."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_sample(tmp_path_factory.mktemp("academie"), 2, 7, 2025)


@pytest.fixture
def work(sample_dir: Path, tmp_path: Path) -> list[str]:
    """Global options on a private copy of the sample database."""
    (tmp_path / "yearchange.db").write_bytes((sample_dir / "yearchange.db").read_bytes())
    return ["--db", f"sqlite:///{tmp_path / 'yearchange.db'}", "--storage",
            str(sample_dir / "storage")]


def config(tmp_path: Path, **limits: int) -> list[str]:
    """``--config FILE`` with these caps in its ``[limits]`` section."""
    path = tmp_path / "config.toml"
    path.write_text("[limits]\n" + "".join(f"{key} = {value}\n" for key, value in limits.items()),
                    encoding="utf-8")
    return ["--config", str(path)]


def people(options: list[str]) -> int:
    database = open_database(options[1])
    with database.session() as session:
        count = session.scalar(select(func.count()).select_from(Person))
    database.dispose()
    return count


def zeros_zip(path: Path, members: int, size: int = MIB) -> Path:
    """A ZIP of ``members`` AAF-named members of ``size`` zero bytes (a few KiB on disk)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        for number in range(members):
            bundle.writestr(f"ENT_Complet_20260818_Eleve_{number:04d}.xml", bytes(size))
    return path


def zeros_tgz(path: Path, members: int, size: int = MIB) -> Path:
    """The same as a gzipped tar."""
    with tarfile.open(path, "w:gz") as bundle:
        for number in range(members):
            info = tarfile.TarInfo(f"ENT_Complet_20260818_Eleve_{number:04d}.xml")
            info.size = size
            bundle.addfile(info, io.BytesIO(bytes(size)))
    return path


def refused(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run a command that must be refused (exit 2); its French error output."""
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2, err
    return err


# -- finding 5: archives ---------------------------------------------------------------------

def test_a_zip_of_1_mib_members_is_refused_at_its_first_member(
        work: list[str], temp_root: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    # 40 MiB of zeros in 40 members of exactly 1 MiB: each one far beyond the ratio cap.
    archive = zeros_zip(tmp_path / "bombe.zip", 40)
    assert archive.stat().st_size < 100_000
    before = people(work)
    err = refused(capsys, [*work, "import-aaf", str(archive)])
    assert "[AAF-ARCHIVE-INVALIDE]" in err and "bombe.zip" in err
    assert "taux de compression anormal" in err and "ENT_Complet_20260818_Eleve_0000.xml" in err
    assert "limite 200 (clé aaf_compression_ratio de la section [limits]" in err
    assert "rien n'a été importé" in err
    assert people(work) == before
    assert list(temp_root.iterdir()) == []


@pytest.mark.parametrize("build", [zeros_zip, zeros_tgz], ids=["zip", "tgz"])
def test_the_decompressed_size_cap_stops_the_extraction(
        build, work: list[str], temp_root: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    # The ratio cap raised out of the way: only the total size cap can stop these 5 MiB.
    options = [*work, *config(tmp_path, aaf_archive_mib=2, aaf_compression_ratio=1_000_000)]
    archive = build(tmp_path / f"gros.{'zip' if build is zeros_zip else 'tgz'}", 5)
    before = people(work)
    err = refused(capsys, [*options, "import-aaf", str(archive)])
    assert "[AAF-ARCHIVE-INVALIDE]" in err and archive.name in err
    assert ("contenu décompressé au-delà de la limite 2 Mio (clé aaf_archive_mib de la "
            "section [limits] du fichier de configuration)") in err
    assert people(work) == before
    assert list(temp_root.iterdir()) == []


@pytest.mark.parametrize("build", [zeros_zip, zeros_tgz], ids=["zip", "tgz"])
def test_an_aaf_archive_has_an_entry_cap(
        build, work: list[str], temp_root: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    options = [*work, *config(tmp_path, aaf_archive_entries=50)]
    archive = build(tmp_path / f"nombreux.{'zip' if build is zeros_zip else 'tgz'}", 51, 10)
    before = people(work)
    err = refused(capsys, [*options, "import-aaf", str(archive)])
    assert "[AAF-ARCHIVE-INVALIDE]" in err and archive.name in err
    assert "au moins 51 entrées, au-delà de la limite 50 (clé aaf_archive_entries" in err
    assert people(work) == before
    assert list(temp_root.iterdir()) == []


def test_the_udt_caps_come_from_the_same_section(
        database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = open_database(database_url)
    build_directory(database)
    before = snapshot(database)
    archive = tmp_path / f"{UAI}_20260825100000_UDT.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for week in range(6):
            bundle.writestr(f"UDCal_12_{week:02d}.xml", b"<a/>")
    options = ["--db", database_url, "--storage", str(tmp_path / "storage"),
               *config(tmp_path, udt_archive_entries=5)]
    err = refused(capsys, [*options, "import-timetable", str(archive), "--uai", UAI,
                           "--version", "26"])
    assert "[EDT-ARCHIVE-INVALIDE]" in err and archive.name in err
    assert "6 entrées, au-delà de la limite 5 (clé udt_archive_entries" in err
    assert snapshot(database) == before
    database.dispose()


def test_a_bad_cap_in_the_config_file_is_refused_in_french(
        work: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(capsys, [*work, *config(tmp_path, sts_file_mib=0), "config"])
    assert "Limite invalide « sts_file_mib = 0 »" in err
    path = tmp_path / "config.toml"
    path.write_text("[limits]\ntaille_max = 3\n", encoding="utf-8")
    err = refused(capsys, [*work, "--config", str(path), "config"])
    assert "Clé inconnue « taille_max » dans la section [limits]" in err


# -- finding 6: the root check on short files ----------------------------------------------

@pytest.mark.parametrize("content", [b"<x/>", b"<x></x>", b"<?xml version=\"1.0\"?><x/>"])
def test_a_short_file_with_another_root_is_refused(
        content: bytes, work: list[str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ENT_Complet_20260818_Eleve_0000.xml"
    path.write_bytes(content)
    before = people(work)
    err = refused(capsys, [*work, "import-aaf", str(path)])
    assert "[AAF-RACINE-INATTENDUE]" in err and path.name in err
    assert "« x » au lieu de « ficAlimMENESR »" in err
    assert people(work) == before


# -- finding 7: UTF-16 and HTML entities --------------------------------------------------

_DECLARATION = re.compile(r"^<\?xml[^>]*\?>\s*")


def utf16_delivery(sample_dir: Path, target: Path, first_name: str) -> str:
    """The sample delivery with its first relatives' file re-encoded in UTF-16, the first
    relative's first name replaced by ``first_name``; returns that relative's jointure."""
    target.mkdir()
    relatives = min((sample_dir / "aaf").glob("*PersRelEleve*.xml"))
    for path in sorted((sample_dir / "aaf").iterdir()):
        if path.is_file() and path != relatives:
            (target / path.name).write_bytes(path.read_bytes())
    raw = relatives.read_bytes()
    declared = re.match(rb"""<\?xml[^>]*encoding=["']([^"']+)""", raw)
    text = raw.decode(declared.group(1).decode("ascii") if declared else "utf-8")
    jointure = re.search(r'name="ENTPersonJointure"><value>([^<]+)<', text)
    assert jointure is not None
    start = jointure.end()
    text = text[:start] + re.sub(r'(<attr name="givenName"><value>)[^<]*(</value>)',
                                 lambda match: match[1] + first_name + match[2],
                                 text[start:], count=1)
    text = '<?xml version="1.0" encoding="UTF-16"?>\n' + _DECLARATION.sub("", text)
    (target / relatives.name).write_bytes(text.encode("utf-16"))
    return jointure.group(1)


def steps_1_to_3_done(options: list[str]) -> None:
    from yearchange_tui.ent.models import Establishment
    from yearchange_tui.workflow.models import Step
    from yearchange_tui.workflow.units import current_school_year, finish_unit, get_unit

    database = open_database(options[1])
    with database.session() as session:
        year = current_school_year(session)
        for establishment in session.scalars(select(Establishment)):
            for step in (Step.PURGE_TRASH, Step.ARCHIVE, Step.DELETE_OBSOLETE):
                finish_unit(get_unit(session, establishment.id, year.id, step), {})
    database.dispose()


def test_html_entities_of_a_utf16_file_are_stored_decoded(
        work: list[str], sample_dir: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    jointure = utf16_delivery(sample_dir, tmp_path / "aaf", "H&eacute;l&egrave;ne")
    steps_1_to_3_done(work)
    assert main([*work, "import-aaf", str(tmp_path / "aaf")]) == 0, capsys.readouterr().err
    database = open_database(work[1])
    with database.session() as session:
        first_name = session.scalar(select(Person.first_name)
                                    .where(Person.aaf_jointure == jointure))
    database.dispose()
    assert first_name == "Hélène"


def test_an_unknown_entity_in_a_utf16_file_refuses_the_delivery(
        work: list[str], sample_dir: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    utf16_delivery(sample_dir, tmp_path / "aaf", "H&eacute;l&inconnue;ne")
    steps_1_to_3_done(work)
    before = people(work)
    err = refused(capsys, [*work, "import-aaf", str(tmp_path / "aaf")])
    assert "[AAF-ENTITE-INCONNUE]" in err and "« &inconnue; »" in err
    assert "PersRelEleve" in err
    assert people(work) == before


# -- finding 8: STS-web and clear EDT files -----------------------------------------------

def padded(source: Path, target: Path, size: int) -> Path:
    """``source`` followed by a comment that brings it to ``size`` bytes (still valid XML)."""
    data = source.read_bytes()
    target.write_bytes(data + b"<!--" + b"x" * (size - len(data) - 7) + b"-->\n")
    return target


@pytest.mark.parametrize(("source", "key"), [(STS, "sts_file_mib"), (CLEAR_EDT, "edt_file_mib")],
                         ids=["sts", "edt"])
def test_a_timetable_file_above_its_cap_is_refused_before_it_is_read(
        source: Path, key: str, database_url: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    database = open_database(database_url)
    build_directory(database)
    before = snapshot(database)
    path = padded(source, tmp_path / source.name, 2 * MIB + 100)
    options = ["--db", database_url, "--storage", str(tmp_path / "storage"),
               *config(tmp_path, **{key: 2})]
    version = ["--version", "2020"] if key == "edt_file_mib" else []
    err = refused(capsys, [*options, "import-timetable", str(path), "--uai", UAI, *version])
    assert "[EDT-FICHIER-TROP-VOLUMINEUX]" in err and path.name in err
    assert (f"2,0 Mio, au-delà de la limite 2 Mio (clé {key} de la section [limits] du "
            "fichier de configuration)") in err
    assert "Rien n'a été importé" in err
    assert snapshot(database) == before
    database.dispose()


def test_a_timetable_file_under_its_cap_is_read(
        database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = open_database(database_url)
    build_directory(database)
    database.dispose()
    path = padded(CLEAR_EDT, tmp_path / CLEAR_EDT.name, 2 * MIB - 100)
    options = ["--db", database_url, "--storage", str(tmp_path / "storage"),
               *config(tmp_path, edt_file_mib=2)]
    assert main([*options, "import-timetable", str(path), "--uai", UAI, "--version", "2020",
                 "--dry-run"]) == 0, capsys.readouterr().err
