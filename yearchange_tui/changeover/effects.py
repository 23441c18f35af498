"""Side effects of the change-over steps behind one interface.

The steps describe what they change (rows deleted, updated or inserted, rubrics
created, archives written, messages sent, files removed, the AAF import of step 4, the
school-life defaults of step 5) through :class:`Effects`. :class:`RealEffects` does
it; :class:`RecordingEffects` — the dry run — counts the same statements with
``SELECT COUNT(*)`` over the same ``WHERE``, builds the same archives member by member
but only measures them (no compression, no hash, no file; school-life documents are
counted, not rendered), records messages instead of sending them, and runs the AAF
import in its own dry-run mode. Every count is taken from the state before the statement, so
both give the same numbers. A step never asks which kind of effects it has.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import functools
import hashlib
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import ColumnElement, Connection, Table, delete, func, insert, select, update
from sqlalchemy.orm import Session

from yearchange_tui.aaf.directory import snapshot_class_history
from yearchange_tui.aaf.importer import ImportResult, import_delivery
from yearchange_tui.changeover.zipwriter import MeasuringZip, Member, ZipWriter, measuring
from yearchange_tui.ent.database import Database
from yearchange_tui.ent.models import (
    ArchiveRubric,
    Document,
    FolderKind,
    Message,
    MessageAttachment,
    MessageCopy,
    MessageFolder,
    Rubric,
    RubricKind,
    RubricRight,
    RubricRole,
    StoredFile,
)
from yearchange_tui.timetable.school_life import (
    apply_school_life,
    defaults_to_write,
    propose_school_life,
)
from yearchange_tui.workflow.models import ArchiveManifest

UTC = dt.UTC


@dataclass
class ArchiveResult:
    """What writing (or simulating) one archive produced."""

    key: str
    kind: str
    relative_path: str
    entries: int
    size: int
    sha256: str
    stored_file_id: int | None = None


@dataclass
class Tally:
    """Counts and lists of one unit, shared by both kinds of effects."""

    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lists: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, label: str, amount: int) -> None:
        """Add ``amount`` to the count ``label``."""
        self.counts[label] += amount

    def detail(self, key: str, value: Any) -> None:
        """Record a value of the unit's counts that is not a number (step 4's import
        summary, step 5's missing items)."""
        self.details[key] = value

    def as_dicts(self) -> tuple[dict[str, Any], dict[str, list[str]]]:
        """The counts (with the details) and the lists, sorted by label."""
        counts: dict[str, Any] = {**self.counts, **self.details}
        return dict(sorted(counts.items())), {k: v for k, v in sorted(self.lists.items())}


class _SinkWriter:
    """A write-only, non-seekable stream that hashes what passes and forwards it (or not).

    Small writes (member headers, descriptors) are gathered into
    64 KiB blocks before hashing and writing; larger ones pass as they are.
    """

    BLOCK = 1 << 16

    def __init__(self, target: BinaryIO | None) -> None:
        self.target = target
        self.digest = hashlib.sha256()
        self.position = 0
        self.buffer = bytearray()

    def write(self, data: bytes) -> int:
        self.position += len(data)
        if len(data) >= self.BLOCK:
            # A large member (a stored attachment): hashed and written as it is, not
            # copied into the buffer first.
            self._drain()
            self.digest.update(data)
            if self.target is not None:
                self.target.write(data)
            return len(data)
        self.buffer += data
        if len(self.buffer) >= self.BLOCK:
            self._drain()
        return len(data)

    def _drain(self) -> None:
        if self.buffer:
            self.digest.update(self.buffer)
            if self.target is not None:
                self.target.write(self.buffer)
            self.buffer = bytearray()

    def tell(self) -> int:
        return self.position

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        self._drain()
        if self.target is not None:
            self.target.flush()


class ZipBuilder:
    """Adds entries to an archive being written; entries get a fixed date (reproducible)."""

    def __init__(self, archive: ZipWriter | MeasuringZip) -> None:
        self.archive = archive
        self.entries = 0

    def add_bytes(self, name: str, data: bytes) -> None:
        self.archive.add_bytes(name, data)
        self.entries += 1

    def add_member(self, name: str, member: Member) -> None:
        """Add a member deflated once for several archives (shared pages, attachments)."""
        self.archive.add_member(name, member)
        self.entries += 1

    def add_text(self, name: str, text: str) -> None:
        self.add_bytes(name, text.encode("utf-8"))

    def add_rendered(self, name: str, render: Callable[[], bytes]) -> None:
        """Add a member whose bytes ``render`` makes (queries and formatting: the
        school-life CSV and printable HTML). Measured by the dry run, it is counted
        without being rendered: its size there is its headers only."""
        if isinstance(self.archive, MeasuringZip):
            self.archive.add_unrendered(name)
        else:
            self.archive.add_bytes(name, render())
        self.entries += 1

    def add_file(self, name: str, path: Path) -> None:
        """Copy a stored file into the archive (streamed when large)."""
        self.archive.add_file(name, path)
        self.entries += 1


ArchiveBuild = Callable[[ZipBuilder], None]


def _build_zip(target: BinaryIO | None, build: ArchiveBuild) -> tuple[int, _SinkWriter]:
    """Build an archive into ``target`` (None: nowhere); its entry count and hashing sink."""
    sink = _SinkWriter(target)
    archive = ZipWriter(sink)
    builder = ZipBuilder(archive)
    build(builder)
    archive.close()
    sink.flush()
    return builder.entries, sink


def _measure_zip(build: ArchiveBuild) -> tuple[int, int]:
    """Run ``build`` without writing: its entry count and its size with every member stored
    (see :class:`MeasuringZip`)."""
    archive = MeasuringZip()
    builder = ZipBuilder(archive)
    build(builder)
    archive.close()
    return builder.entries, archive.size


class Effects:
    """Interface of the side effects; see the module docstring.

    Args:
        storage_root: the storage folder every relative path is resolved under.
        tally: where counts and lists go.
        database: the open database, for effects that run in their own transaction
            (the AAF import of step 4).
    """

    def __init__(self, storage_root: Path, tally: Tally,
                 database: Database | None = None) -> None:
        self.storage_root = storage_root
        self.tally = tally
        self.database = database
        self._resolved_folders: dict[str, Path] = {}

    # -- rows ----------------------------------------------------------------------------
    def delete(self, connection: Connection, table: Table, where: ColumnElement[bool],
               label: str) -> int:
        raise NotImplementedError

    def update(self, connection: Connection, table: Table, where: ColumnElement[bool],
               values: dict[str, Any], label: str) -> int:
        raise NotImplementedError

    def insert_rows(self, connection: Connection, table: Table, rows: list[dict[str, Any]],
                    label: str) -> int:
        raise NotImplementedError

    def create_rubric(self, connection: Connection, *, establishment_id: int, kind: RubricKind,
                      name: str, archive_kind: ArchiveRubric | None, owner_id: int | None,
                      created_at: dt.datetime, managers: list[int], label: str,
                      rights_label: str | None = None) -> int | None:
        """Create a rubric with ``managers`` as gestionnaires; its id (None when recorded).

        Counts one under ``label``, and the rights under ``rights_label`` when given.
        """
        raise NotImplementedError

    def snapshot_class_history(self, connection: Connection, establishment_id: int,
                               school_year_id: int) -> None:
        """Keep which class each student was in (the AAF class history) before step 3."""
        raise NotImplementedError

    def fill_school_life_defaults(self, connection: Connection, establishment_id: int
                                  ) -> dict[str, int]:
        """Fill year N+1's periods and opening dates from the project calendar where the
        establishment has set none; the counts written (``periodes``, ``dates_ouverture``)."""
        raise NotImplementedError

    def import_aaf(self, paths: list[str], *, scope: set[int] | None, initialise: bool,
                   now: dt.datetime, progress: Callable[[str], None] | None = None
                   ) -> ImportResult:
        """Apply an AAF delivery in its own transaction (step 4).

        Args:
            paths: the delivery (folder, archive or files).
            scope: establishment ids to update; None for the whole delivery.
            initialise: initialise year N+1 for every establishment in scope (else the
                import decides per establishment from its units, as ``import-aaf`` does).
            now: the time recorded.
            progress: receives one French line per file read.
        """
        raise NotImplementedError

    # -- files ---------------------------------------------------------------------------
    def write_archive(self, connection: Connection, *, key: str, kind: str, relative_path: str,
                      establishment_id: int, build: ArchiveBuild, rubric_id: int | None,
                      title: str, created_at: dt.datetime,
                      school_year_id: int | None = None) -> ArchiveResult:
        """Write a ZIP archive and record it (stored file, document, manifest)."""
        raise NotImplementedError

    def record_manifest(self, connection: Connection, *, establishment_id: int,
                        school_year_id: int, key: str, kind: str, relative_path: str,
                        data: bytes, created_at: dt.datetime, label: str) -> None:
        """Record the manifest (size, SHA-256) of a file another effect wrote, such as a
        message attachment."""
        raise NotImplementedError

    def remove_files(self, relative_paths: Iterable[str], label: str) -> int:
        raise NotImplementedError

    # -- messages ------------------------------------------------------------------------
    def send_message(self, connection: Connection, *, establishment_id: int,
                     recipient_ids: list[int], subject: str, body: str, sent_at: dt.datetime,
                     attachments: list[tuple[str, bytes, str]] | None = None,
                     label: str = "messages envoyés") -> int:
        """Send a system message; ``attachments`` are (storage path, bytes, media type)."""
        raise NotImplementedError

    def archive_members(self) -> AbstractContextManager[None]:
        """Entered around a whole unit: how archive members are made within it
        (compressed for real; only measured by the dry run)."""
        return nullcontext()

    # -- lists ---------------------------------------------------------------------------
    def make_durable(self) -> None:
        """Flush written files to stable storage (nothing to do when nothing was written)."""

    def finish_phase(self, connection: Connection) -> None:
        """Called by the runner before it commits a phase."""

    def _count_archive(self, kind: str, entries: int) -> None:
        self.tally.add(f"archives {kind}", 1)
        self.tally.add(f"entrées {kind}", entries)
        self.tally.add("manifestes enregistrés", 1)

    def record(self, label: str, items: Iterable[str]) -> None:
        """Add items to a named list of the report (both modes)."""
        self.tally.lists[label].extend(items)

    def _safe_path(self, relative_path: str) -> Path:
        """Resolve a relative storage path, refusing anything that leaves the storage root.

        Folders are resolved (symbolic links followed) once per phase: a step writes
        hundreds of archives into the same few folders.
        """
        folder, _, name = relative_path.rpartition("/")
        resolved = self._resolved_folders.get(folder)
        if resolved is None:
            root = self._resolved_folders.get("")
            if root is None:
                root = self._resolved_folders[""] = self.storage_root.resolve()
            resolved = (root / folder).resolve()
            if not resolved.is_relative_to(root):
                raise ValueError(f"chemin hors du stockage refusé : {relative_path}")
            self._resolved_folders[folder] = resolved
        if name in ("", ".", ".."):
            raise ValueError(f"chemin hors du stockage refusé : {relative_path}")
        path = resolved / name
        if path.is_symlink():
            target = path.resolve()
            if not target.is_relative_to(self._resolved_folders[""]):
                raise ValueError(f"chemin hors du stockage refusé : {relative_path}")
        return path


def _count(connection: Connection, table: Table, where: ColumnElement[bool]) -> int:
    return int(connection.execute(select(func.count()).select_from(table).where(where)).scalar()
               or 0)


_SYNC_FILE_RANGE_WRITE = 2


@functools.cache
def _sync_file_range() -> Callable[..., int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    return function  # type: ignore[no-any-return]


def start_writeback(handle: BinaryIO) -> None:
    """Ask the kernel to start writing ``handle``'s data to disk now, without waiting
    (Linux ``sync_file_range(SYNC_FILE_RANGE_WRITE)``; nothing elsewhere).

    Not a durability guarantee — :func:`sync_filesystem` still makes the phase durable —
    but the disk then writes while the next archives are built, instead of all at once
    while the phase waits in ``syncfs``."""
    function = _sync_file_range()
    if function is not None:
        handle.flush()
        function(handle.fileno(), 0, 0, _SYNC_FILE_RANGE_WRITE)


def sync_filesystem(path: Path) -> None:
    """Make every write under ``path`` durable: ``syncfs`` on Linux, ``sync`` elsewhere."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syncfs = libc.syncfs
    except (OSError, AttributeError):
        os.sync()
        return
    descriptor = os.open(path, os.O_RDONLY)
    try:
        if syncfs(descriptor) != 0:
            os.sync()
    finally:
        os.close(descriptor)


class RealEffects(Effects):
    """Does what the steps describe.

    Archives are written to a temporary name and renamed into place; the runner calls
    :meth:`make_durable` (one ``syncfs`` for the whole phase rather than one ``fsync`` per
    file) before it commits the rows that record them. A crash before that commit rolls
    the rows back and the resumed phase rewrites the same files.
    """

    unsynced = False

    def __init__(self, storage_root: Path, tally: Tally,
                 database: Database | None = None) -> None:
        super().__init__(storage_root, tally, database)
        self.pending_archives: list[tuple[Any, ...]] = []
        self._made_folders: set[Path] = set()

    @contextmanager
    def _atomic(self, path: Path) -> Iterator[BinaryIO]:
        """Write ``path`` under a temporary name, renamed into place once complete;
        :meth:`make_durable` syncs it before the phase's rows commit."""
        if path.parent not in self._made_folders:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._made_folders.add(path.parent)
        temporary = path.with_name(f".{path.name}.part")
        try:
            with temporary.open("wb") as handle:
                yield handle
                start_writeback(handle)
        except OSError as error:
            # Disk full…: no partial file left, and the error names the archive.
            temporary.unlink(missing_ok=True)
            if error.filename is None:
                raise OSError(error.errno, error.strerror, str(path)) from error
            raise
        os.replace(temporary, path)
        self.unsynced = True

    def make_durable(self) -> None:
        """Flush the files this phase wrote (and their renames) to stable storage."""
        if self.unsynced:
            sync_filesystem(self.storage_root)
            self.unsynced = False

    def delete(self, connection: Connection, table: Table, where: ColumnElement[bool],
               label: str) -> int:
        count = connection.execute(delete(table).where(where)).rowcount
        self.tally.add(label, count)
        return count

    def update(self, connection: Connection, table: Table, where: ColumnElement[bool],
               values: dict[str, Any], label: str) -> int:
        count = connection.execute(update(table).where(where).values(**values)).rowcount
        self.tally.add(label, count)
        return count

    def insert_rows(self, connection: Connection, table: Table, rows: list[dict[str, Any]],
                    label: str) -> int:
        if rows:
            connection.execute(insert(table), rows)
        self.tally.add(label, len(rows))
        return len(rows)

    def write_archive(self, connection: Connection, *, key: str, kind: str, relative_path: str,
                      establishment_id: int, build: ArchiveBuild, rubric_id: int | None,
                      title: str, created_at: dt.datetime,
                      school_year_id: int | None = None) -> ArchiveResult:
        path = self._safe_path(relative_path)
        with self._atomic(path) as raw:
            entries, sink = _build_zip(raw, build)
        result = ArchiveResult(key, kind, relative_path, entries, sink.position,
                               sink.digest.hexdigest())
        # Rows are written when the phase ends, so the write lock is held for milliseconds.
        self.pending_archives.append((result, path.name, establishment_id, school_year_id,
                                      rubric_id, title, created_at))
        self._count_archive(kind, entries)
        return result

    def finish_phase(self, connection: Connection) -> None:
        """Make the phase's files durable, then record them (file, document, manifest rows)."""
        self.make_durable()
        pending = self.pending_archives
        if not pending:
            return
        # One executemany per table; RETURNING in parameter order gives each archive its id.
        file_ids = connection.execute(
            insert(StoredFile.__table__).returning(StoredFile.id, sort_by_parameter_order=True),
            [{"establishment_id": establishment_id, "relative_path": result.relative_path,
              "original_name": name, "media_type": "application/zip", "size": result.size,
              "sha256": result.sha256, "created_at": created_at}
             for result, name, establishment_id, _, _, _, created_at in pending]).scalars().all()
        documents = []
        manifests = []
        for file_id, (result, _, establishment_id, school_year_id, rubric_id, title,
                      created_at) in zip(file_ids, pending, strict=True):
            result.stored_file_id = file_id
            if rubric_id is not None:
                documents.append({"rubric_id": rubric_id, "stored_file_id": file_id,
                                  "title": title, "description": "Archive du changement d'année",
                                  "author_id": None, "created_at": created_at})
            manifests.append({"establishment_id": establishment_id,
                              "school_year_id": school_year_id, "archive_key": result.key,
                              "kind": result.kind, "relative_path": result.relative_path,
                              "size": result.size, "sha256": result.sha256,
                              "entry_count": result.entries, "stored_file_id": file_id,
                              "created_at": created_at})
        if documents:
            connection.execute(insert(Document.__table__), documents)
        connection.execute(insert(ArchiveManifest.__table__), manifests)
        self.pending_archives = []

    def create_rubric(self, connection: Connection, *, establishment_id: int, kind: RubricKind,
                      name: str, archive_kind: ArchiveRubric | None, owner_id: int | None,
                      created_at: dt.datetime, managers: list[int], label: str,
                      rights_label: str | None = None) -> int | None:
        rubric_id = connection.execute(Rubric.__table__.insert().values(
            establishment_id=establishment_id, school_year_id=None, kind=kind.value, name=name,
            class_id=None, archive_kind=archive_kind.value if archive_kind else None,
            owner_id=owner_id, created_at=created_at)
            .returning(Rubric.__table__.c.id)).scalar_one()
        if managers:
            connection.execute(insert(RubricRight.__table__), [
                {"rubric_id": rubric_id, "person_id": person_id, "group_id": None,
                 "role": RubricRole.MANAGER.value} for person_id in managers])
        self.tally.add(label, 1)
        if rights_label is not None:
            self.tally.add(rights_label, len(managers))
        return int(rubric_id)

    def snapshot_class_history(self, connection: Connection, establishment_id: int,
                               school_year_id: int) -> None:
        snapshot_class_history(connection, establishment_id, school_year_id)

    def fill_school_life_defaults(self, connection: Connection, establishment_id: int
                                  ) -> dict[str, int]:
        # The session joins the phase's transaction: the runner commits it with the checkpoint.
        with Session(bind=connection) as session:
            proposal = propose_school_life(session, establishment_id)
            written = apply_school_life(session, establishment_id, proposal)
        for key, value in written.items():
            self.tally.add(key, value)
        return written

    def import_aaf(self, paths: list[str], *, scope: set[int] | None, initialise: bool,
                   now: dt.datetime, progress: Callable[[str], None] | None = None
                   ) -> ImportResult:
        assert self.database is not None
        return import_delivery(self.database, paths, scope=scope, step4=initialise,
                               progress=progress, now=now, for_step4=True)

    def record_manifest(self, connection: Connection, *, establishment_id: int,
                        school_year_id: int, key: str, kind: str, relative_path: str,
                        data: bytes, created_at: dt.datetime, label: str) -> None:
        stored_file_id = connection.scalar(
            select(StoredFile.id).where(StoredFile.relative_path == relative_path))
        connection.execute(insert(ArchiveManifest.__table__).values(
            establishment_id=establishment_id, school_year_id=school_year_id,
            archive_key=key, kind=kind, relative_path=relative_path, size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            entry_count=max(0, data.count(b"\r\n") - 1), stored_file_id=stored_file_id,
            created_at=created_at))
        self.tally.add(label, 1)

    def remove_files(self, relative_paths: Iterable[str], label: str) -> int:
        count = 0
        for relative_path in relative_paths:
            path = self._safe_path(relative_path)
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            count += 1
        self.tally.add(label, count)
        return count

    def send_message(self, connection: Connection, *, establishment_id: int,
                     recipient_ids: list[int], subject: str, body: str, sent_at: dt.datetime,
                     attachments: list[tuple[str, bytes, str]] | None = None,
                     label: str = "messages envoyés") -> int:
        if not recipient_ids:
            return 0
        message_id = connection.execute(insert(Message.__table__).values(
            establishment_id=establishment_id, sender_id=None, subject=subject, body=body,
            sent_at=sent_at, is_system=True).returning(Message.id)).scalar_one()
        inboxes = dict(connection.execute(
            select(MessageFolder.owner_id, MessageFolder.id).where(
                MessageFolder.owner_id.in_(recipient_ids),
                MessageFolder.kind == FolderKind.INBOX)).all())
        for recipient_id in recipient_ids:
            if recipient_id not in inboxes:
                inboxes[recipient_id] = connection.execute(insert(MessageFolder.__table__).values(
                    owner_id=recipient_id, kind=FolderKind.INBOX.value,
                    name="Boîte de réception").returning(MessageFolder.id)).scalar_one()
        connection.execute(insert(MessageCopy.__table__), [
            {"message_id": message_id, "owner_id": recipient_id,
             "folder_id": inboxes[recipient_id], "is_read": False}
            for recipient_id in recipient_ids])
        for relative_path, data, media_type in attachments or []:
            path = self._safe_path(relative_path)
            name = path.name
            with self._atomic(path) as handle:
                handle.write(data)
            file_id = connection.execute(insert(StoredFile.__table__).values(
                establishment_id=establishment_id, relative_path=relative_path,
                original_name=name, media_type=media_type, size=len(data),
                sha256=hashlib.sha256(data).hexdigest(), created_at=sent_at)
                .returning(StoredFile.id)).scalar_one()
            connection.execute(insert(MessageAttachment.__table__).values(
                message_id=message_id, stored_file_id=file_id))
        self.tally.add(label, 1)
        self.tally.add(f"{label} (destinataires)", len(recipient_ids))
        return message_id


class RecordingEffects(Effects):
    """The dry run: counts and records, changes nothing (no row, no file, no message).

    Archives are built member by member (same entries, same warnings) but their members
    are only measured: nothing is compressed, hashed or written.
    """

    def delete(self, connection: Connection, table: Table, where: ColumnElement[bool],
               label: str) -> int:
        count = _count(connection, table, where)
        self.tally.add(label, count)
        return count

    def update(self, connection: Connection, table: Table, where: ColumnElement[bool],
               values: dict[str, Any], label: str) -> int:
        count = _count(connection, table, where)
        self.tally.add(label, count)
        return count

    def insert_rows(self, connection: Connection, table: Table, rows: list[dict[str, Any]],
                    label: str) -> int:
        self.tally.add(label, len(rows))
        return len(rows)

    def write_archive(self, connection: Connection, *, key: str, kind: str, relative_path: str,
                      establishment_id: int, build: ArchiveBuild, rubric_id: int | None,
                      title: str, created_at: dt.datetime,
                      school_year_id: int | None = None) -> ArchiveResult:
        # Members are only measured (see :meth:`archive_members`): same entries, no
        # compression, no hash; the size is the archive's with every member stored.
        entries, size = _measure_zip(build)
        self._count_archive(kind, entries)
        return ArchiveResult(key, kind, relative_path, entries, size, sha256="")

    def archive_members(self) -> AbstractContextManager[None]:
        """Members are measured, not compressed (:func:`zipwriter.measuring`)."""
        return measuring()

    def create_rubric(self, connection: Connection, *, establishment_id: int, kind: RubricKind,
                      name: str, archive_kind: ArchiveRubric | None, owner_id: int | None,
                      created_at: dt.datetime, managers: list[int], label: str,
                      rights_label: str | None = None) -> int | None:
        self.tally.add(label, 1)
        if rights_label is not None:
            self.tally.add(rights_label, len(managers))
        rubric_id: int | None = None  # nothing is created: the dry run has no rubric id
        return rubric_id

    def snapshot_class_history(self, connection: Connection, establishment_id: int,
                               school_year_id: int) -> None:
        """Nothing to keep: the dry run deletes no class."""

    def fill_school_life_defaults(self, connection: Connection, establishment_id: int
                                  ) -> dict[str, int]:
        with Session(bind=connection) as session:
            written = defaults_to_write(session, establishment_id,
                                        propose_school_life(session, establishment_id))
        for key, value in written.items():
            self.tally.add(key, value)
        return written

    def import_aaf(self, paths: list[str], *, scope: set[int] | None, initialise: bool,
                   now: dt.datetime, progress: Callable[[str], None] | None = None
                   ) -> ImportResult:
        assert self.database is not None
        return import_delivery(self.database, paths, scope=scope, step4=initialise,
                               dry_run=True, progress=progress, now=now, for_step4=True)

    def record_manifest(self, connection: Connection, *, establishment_id: int,
                        school_year_id: int, key: str, kind: str, relative_path: str,
                        data: bytes, created_at: dt.datetime, label: str) -> None:
        self.tally.add(label, 1)

    def remove_files(self, relative_paths: Iterable[str], label: str) -> int:
        count = sum(1 for _ in relative_paths)
        self.tally.add(label, count)
        return count

    def send_message(self, connection: Connection, *, establishment_id: int,
                     recipient_ids: list[int], subject: str, body: str, sent_at: dt.datetime,
                     attachments: list[tuple[str, bytes, str]] | None = None,
                     label: str = "messages envoyés") -> int:
        if not recipient_ids:
            return 0
        self.tally.add(label, 1)
        self.tally.add(f"{label} (destinataires)", len(recipient_ids))
        return 0
