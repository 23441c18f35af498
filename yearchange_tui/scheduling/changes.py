"""What changed since a console's previous read: the ``console_changes`` log the database's
triggers write (migration 0025), read by a cursor.

On SQLite writers are serialised: the rows after the previous read's largest id are every
change since. On PostgreSQL ids are taken before commit, so a transaction still open at
the previous read may commit rows with smaller ids later: the cursor keeps the
transactions open at that read (from the snapshot of the statement that read the largest
id) and takes their rows too. Never imports Textual; blocking reads, for worker threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, delete, func, or_, select, text
from sqlalchemy.orm import Session

from yearchange_tui.scheduling.models import ConsoleChange

KEEP_ROWS = 200_000
"""Rows :func:`prune_changes` keeps; a console further behind reads everything again."""


@dataclass(frozen=True)
class ChangeCursor:
    """Where a reader of the log stands."""

    last_id: int = 0
    """The largest id visible at the previous read."""
    open_xids: tuple[int, ...] = ()
    """PostgreSQL: transactions still open at the previous read."""


@dataclass
class Changed:
    """What :func:`changes_since` found."""

    cursor: ChangeCursor
    """The cursor to pass next time."""
    establishment_ids: set[int] = field(default_factory=set)
    everything: bool = False
    """Something every establishment depends on changed (or the history was pruned, or
    there was no previous read): read every establishment."""


def changes_since(session: Session, cursor: ChangeCursor | None) -> Changed:
    """The establishments changed since ``cursor`` (None: everything) and the next cursor.

    Take it before reading the data it names: whatever commits after this read is in the
    next one.
    """
    if session.get_bind().dialect.name == "postgresql":
        last_id, snapshot = session.execute(text(
            "SELECT (SELECT max(id) FROM console_changes), pg_current_snapshot()::text")).one()
        xip = snapshot.split(":")[2]
        following = ChangeCursor(int(last_id or 0),
                                 tuple(int(xid) for xid in xip.split(",") if xid))
    else:
        following = ChangeCursor(int(session.scalar(select(func.max(ConsoleChange.id))) or 0))
    if cursor is None:
        return Changed(following, everything=True)
    oldest = session.scalar(select(func.min(ConsoleChange.id)))
    if oldest is not None and oldest > cursor.last_id + 1 and cursor.last_id:
        return Changed(following, everything=True)  # pruned past this reader
    newer = ConsoleChange.id > cursor.last_id
    if cursor.open_xids:
        newer = or_(newer, ConsoleChange.xid.in_(cursor.open_xids))
    found = set(session.scalars(select(ConsoleChange.establishment_id).where(newer).distinct()))
    if None in found:
        return Changed(following, everything=True)
    return Changed(following, {int(establishment_id) for establishment_id in found})


def prune_changes(connection: Connection, keep: int | None = None) -> int:
    """Delete all but the newest ``keep`` rows of the log (the engine, with its events, and
    ``yearchange run`` when it ends: without an engine nothing else would); returns how
    many went."""
    keep = KEEP_ROWS if keep is None else keep
    newest = connection.scalar(select(func.max(ConsoleChange.id)))
    if newest is None or newest <= keep:
        return 0
    result = connection.execute(delete(ConsoleChange).where(ConsoleChange.id <= newest - keep))
    return int(result.rowcount or 0)
