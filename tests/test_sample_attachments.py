"""The sample's attachments: a seeded mix of every type a real ENT holds, with sizes from
the documented log-normal distributions (issue 16)."""

from __future__ import annotations

import io
import random
import statistics
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from changeover_support import Academy, make_academy
from sqlalchemy import text

from yearchange_tui.sample.attachments import (
    SMALL_MAX,
    SMALL_MIN,
    TYPES,
    draw_size,
    make_attachment,
)

MAGIC = {"pdf": b"%PDF-", "jpg": b"\xff\xd8\xff", "png": b"\x89PNG\r\n\x1a\n",
         "docx": b"PK\x03\x04", "xlsx": b"PK\x03\x04", "odt": b"PK\x03\x04"}


def _draw(seed: int, count: int, **options: object) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    return [(made.name, made.content) for made in
            (make_attachment(rng, f"piece-{n}", **options) for n in range(count))]


def test_the_same_seed_gives_the_same_attachments_and_another_seed_others() -> None:
    assert _draw(7, 60) == _draw(7, 60)
    assert _draw(7, 60) != _draw(8, 60)


def test_every_type_has_real_headers_and_office_documents_are_zip_containers() -> None:
    drawn = _draw(3, 800)
    by_type = Counter(name.rsplit(".", 1)[1] for name, _ in drawn)
    assert set(by_type) == {kind.extension for kind in TYPES}
    for name, content in drawn:
        extension = name.rsplit(".", 1)[1]
        # Text is cut at a character boundary; a container adds its directory.
        assert SMALL_MIN - 3 <= len(content) <= SMALL_MAX + 4096, name
        if extension in MAGIC:
            assert content.startswith(MAGIC[extension]), name
        if extension == "mp4":
            assert content[4:8] == b"ftyp" and b"mdat" in content[:64]
        if extension in ("docx", "xlsx", "odt"):
            with zipfile.ZipFile(io.BytesIO(content)) as document:
                assert document.testzip() is None
                if extension == "odt":
                    assert document.namelist()[0] == "mimetype"
        if extension in ("txt", "html", "csv"):
            content.decode("utf-8")


def test_a_classeur_activity_never_gets_a_video() -> None:
    drawn = _draw(4, 600, classeur=True)
    assert not [name for name, _ in drawn if name.endswith(".mp4")]


def test_realistic_sizes_follow_the_table() -> None:
    """The median of each type's sizes is the table's (log-normal: half above, half below)."""
    rng = random.Random(11)
    for kind in TYPES:
        sizes = [draw_size(kind, rng, "realistic") for _ in range(3000)]
        assert statistics.median(sizes) == pytest.approx(kind.median, rel=0.1), kind.extension
        assert max(sizes) <= kind.cap
        # A spread, not a constant: the 90th percentile is well above the median.
        assert statistics.quantiles(sizes, n=10)[-1] > 1.8 * kind.median, kind.extension


@pytest.fixture
def academy(tmp_path: Path) -> Iterator[Academy]:
    academy = make_academy(f"sqlite:///{tmp_path / 'ent.db'}", tmp_path / "storage")
    yield academy
    academy.database.dispose()


def test_the_sample_attaches_every_type_to_textbooks_and_classeurs(academy: Academy) -> None:
    with academy.database.engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT f.original_name, f.size, f.relative_path FROM stored_files f WHERE f.id IN "
            "(SELECT stored_file_id FROM textbook_attachments UNION "
            "SELECT stored_file_id FROM activity_attachments)")).all()
    extensions = Counter(name.rsplit(".", 1)[1] for name, _, _ in rows)
    assert set(extensions) == {kind.extension for kind in TYPES}
    for name, size, relative_path in rows:
        assert (academy.storage / relative_path).stat().st_size == size, name
