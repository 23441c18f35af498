"""Side effects of the change-over steps behind one interface.

The steps describe what they change (rows deleted, updated or inserted, archives
written, messages sent, files removed) through :class:`Effects`. :class:`RealEffects`
does it; :class:`RecordingEffects` — the dry run — counts the same statements with
``SELECT COUNT(*)`` over the same ``WHERE``, builds the same archives into a sink that
keeps nothing, and records messages instead of sending them. Every count is taken
from the state before the statement, so both give the same numbers.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import hashlib
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import ColumnElement, Connection, Table, delete, func, insert, select, update

from yearchange_tui.changeover.zipwriter import Member, ZipWriter
from yearchange_tui.ent.models import (
    Document,
    FolderKind,
    Message,
    MessageAttachment,
    MessageCopy,
    MessageFolder,
    StoredFile,
)

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

    def add(self, label: str, amount: int) -> None:
        self.counts[label] += amount

    def as_dicts(self) -> tuple[dict[str, int], dict[str, list[str]]]:
        return dict(sorted(self.counts.items())), {k: v for k, v in sorted(self.lists.items())}


class _SinkWriter:
    """A write-only, non-seekable stream that hashes what passes and forwards it (or not).

    Small writes (member headers, descriptors) are gathered into
    64 KiB blocks before hashing and writing.
    """

    BLOCK = 1 << 16

    def __init__(self, target: BinaryIO | None) -> None:
        self.target = target
        self.digest = hashlib.sha256()
        self.position = 0
        self.buffer = bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        self.position += len(data)
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

    def __init__(self, archive: ZipWriter) -> None:
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


class Effects:
    """Interface of the side effects; see the module docstring."""

    dry_run: bool = False

    def __init__(self, storage_root: Path, tally: Tally) -> None:
        self.storage_root = storage_root
        self.tally = tally
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

    # -- files ---------------------------------------------------------------------------
    def write_archive(self, connection: Connection, *, key: str, kind: str, relative_path: str,
                      establishment_id: int, build: ArchiveBuild, rubric_id: int | None,
                      title: str, created_at: dt.datetime,
                      school_year_id: int | None = None) -> ArchiveResult:
        """Write a ZIP archive and record it (stored file, document, manifest)."""
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

    dry_run = False
    unsynced = False

    def __init__(self, storage_root: Path, tally: Tally) -> None:
        super().__init__(storage_root, tally)
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
        with temporary.open("wb") as handle:
            yield handle
        os.replace(temporary, path)
        self.unsynced = True

    def make_durable(self) -> None:
        """Flush the files this phase wrote (and their renames) to stable storage."""
        if self.unsynced:
            sync_filesystem(self.storage_root)
            self.unsynced = False

    def delete(self, connection, table, where, label):  # type: ignore[no-untyped-def]
        count = connection.execute(delete(table).where(where)).rowcount
        self.tally.add(label, count)
        return count

    def update(self, connection, table, where, values, label):  # type: ignore[no-untyped-def]
        count = connection.execute(update(table).where(where).values(**values)).rowcount
        self.tally.add(label, count)
        return count

    def insert_rows(self, connection, table, rows, label):  # type: ignore[no-untyped-def]
        if rows:
            connection.execute(insert(table), rows)
        self.tally.add(label, len(rows))
        return len(rows)

    def write_archive(self, connection, *, key, kind, relative_path, establishment_id, build,
                      rubric_id, title, created_at, school_year_id=None):  # type: ignore[no-untyped-def]
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
        from yearchange_tui.workflow.models import ArchiveManifest

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

    def remove_files(self, relative_paths, label):  # type: ignore[no-untyped-def]
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

    def send_message(self, connection, *, establishment_id, recipient_ids, subject, body, sent_at,
                     attachments=None, label="messages envoyés"):  # type: ignore[no-untyped-def]
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
    """The dry run: counts and records, changes nothing (no row, no file, no message)."""

    dry_run = True

    def delete(self, connection, table, where, label):  # type: ignore[no-untyped-def]
        count = _count(connection, table, where)
        self.tally.add(label, count)
        return count

    def update(self, connection, table, where, values, label):  # type: ignore[no-untyped-def]
        count = _count(connection, table, where)
        self.tally.add(label, count)
        return count

    def insert_rows(self, connection, table, rows, label):  # type: ignore[no-untyped-def]
        self.tally.add(label, len(rows))
        return len(rows)

    def write_archive(self, connection, *, key, kind, relative_path, establishment_id, build,
                      rubric_id, title, created_at, school_year_id=None):  # type: ignore[no-untyped-def]
        entries, sink = _build_zip(None, build)
        self._count_archive(kind, entries)
        return ArchiveResult(key, kind, relative_path, entries, sink.position,
                             sink.digest.hexdigest())

    def remove_files(self, relative_paths, label):  # type: ignore[no-untyped-def]
        count = sum(1 for _ in relative_paths)
        self.tally.add(label, count)
        return count

    def send_message(self, connection, *, establishment_id, recipient_ids, subject, body, sent_at,
                     attachments=None, label="messages envoyés"):  # type: ignore[no-untyped-def]
        if not recipient_ids:
            return 0
        self.tally.add(label, 1)
        self.tally.add(f"{label} (destinataires)", len(recipient_ids))
        return 0
