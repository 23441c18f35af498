"""ZIP deliveries: a regular file is recognised whatever tool wrote the archive."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest
from template_support import copy_sample

from yearchange_tui.aaf.delivery import open_delivery
from yearchange_tui.aaf.parser import AafFileError
from yearchange_tui.cli.main import main

DELIVERY = Path(__file__).resolve().parents[1] / "sample_data" / "aaf" / "livraison"


def _writestr_zip(archive: Path, folder: Path) -> Path:
    """The delivery zipped with ``writestr`` (permissions only in ``external_attr``)."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(folder.iterdir()):
            bundle.writestr(path.name, path.read_bytes())
    with zipfile.ZipFile(archive) as bundle:  # what makes today's check stumble
        assert {info.external_attr >> 16 for info in bundle.infolist()} == {0o600}
    return archive


def test_a_zip_written_by_writestr_opens(tmp_path: Path) -> None:
    with open_delivery([_writestr_zip(tmp_path / "livraison.zip", DELIVERY)]) as delivery:
        assert len(delivery.files) == 7 and delivery.source_kind == "zip"


def test_a_zip_written_by_writestr_imports_as_a_user_would(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample = copy_sample(tmp_path / "academie", 2, 7, 2025)
    archive = _writestr_zip(tmp_path / "aaf.zip", sample / "aaf")
    options = ["--db", f"sqlite:///{sample / 'yearchange.db'}", "--storage",
               str(sample / "storage")]
    assert main([*options, "import-aaf", str(archive), "--dry-run"]) == 0, \
        capsys.readouterr().err
    assert "fichier ordinaire" not in capsys.readouterr().err


@pytest.mark.parametrize("kind", [stat.S_IFLNK, stat.S_IFIFO, stat.S_IFCHR])
def test_a_link_or_device_in_a_zip_is_still_refused(tmp_path: Path, kind: int) -> None:
    archive = tmp_path / "lien.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        info = zipfile.ZipInfo("ENT_Complet_Eleve_0000.xml")
        info.create_system = 3
        info.external_attr = (kind | 0o777) << 16
        bundle.writestr(info, "/etc/passwd")
    with pytest.raises(AafFileError) as caught, open_delivery([archive]):
        pass
    assert caught.value.code == "AAF-ARCHIVE-INVALIDE"
    assert "n'est pas un fichier ordinaire" in str(caught.value)
