"""Unit claims: a unit runs only after one process has claimed it in the database.

Whoever starts a unit (the engine, ``yearchange run``, a worker process) claims it first,
in the same transaction that marks it running. A second claimant is refused with a French
message naming the holder (host, pid, since when). A claim whose holder is gone is taken
over and the unit resumes from its last checkpoint:

- on this host, the holder is gone when its process no longer exists;
- on another host, when its heartbeat is older than the time-to-live (a holder refreshes
  the heartbeat of its claims every :data:`HEARTBEAT_INTERVAL` seconds).

Both durations can be set in the environment (``YEARCHANGE_CLAIM_TTL``,
``YEARCHANGE_CLAIM_HEARTBEAT``); the host name is :func:`host_name` (``YEARCHANGE_HOST_NAME``
simulates several machines on one).

Taking a claim over is a compare-and-swap on the claim's token, so two processes racing
for the same stale claim cannot both win; a fresh claim is an ``INSERT … ON CONFLICT DO
NOTHING`` on the unit's id, which the database serialises (SQLite and PostgreSQL).

Runs on the caller's thread; :class:`ClaimHeartbeat` runs one daemon thread per database.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from yearchange_tui.ent.database import Database
from yearchange_tui.workflow.calendar import as_utc
from yearchange_tui.workflow.localtime import format_local
from yearchange_tui.workflow.models import UnitClaim

log = logging.getLogger(__name__)

CLAIM_TTL = dt.timedelta(seconds=120)
"""A claim held from another host whose heartbeat is older than this is taken over."""

HEARTBEAT_INTERVAL = 15.0
"""Seconds between two heartbeats of the claims a process holds."""

CLAIM_REFUSED_CODE = "UNITE-DEJA-PRISE"

HOST_VARIABLE = "YEARCHANGE_HOST_NAME"
"""Overrides this machine's name for claims, the lease and the fleet (``worker --host``)."""

TTL_VARIABLE = "YEARCHANGE_CLAIM_TTL"
"""Seconds: overrides :data:`CLAIM_TTL` (short in fault tests)."""

HEARTBEAT_VARIABLE = "YEARCHANGE_CLAIM_HEARTBEAT"
"""Seconds: overrides :data:`HEARTBEAT_INTERVAL`."""


def host_name() -> str:
    """The name this process runs under in claims, the lease and the fleet: the machine's
    name, or ``YEARCHANGE_HOST_NAME`` (several simulated machines on one). The audit's
    system identity keeps the real name."""
    return os.environ.get(HOST_VARIABLE, "").strip() or socket.gethostname()


def _seconds(variable: str, default: float) -> float:
    try:
        value = float(os.environ.get(variable, ""))
    except ValueError:
        return default
    return value if value > 0 else default


def claim_ttl() -> dt.timedelta:
    """How old another host's heartbeat must be for its claims to be taken over."""
    return dt.timedelta(seconds=_seconds(TTL_VARIABLE, CLAIM_TTL.total_seconds()))


def heartbeat_interval() -> float:
    """Seconds between two heartbeats of the claims a process holds."""
    return _seconds(HEARTBEAT_VARIABLE, HEARTBEAT_INTERVAL)


def wall_now() -> dt.datetime:
    """Real time (UTC), never the package's pinned business clock: liveness is about now."""
    return dt.datetime.now(dt.UTC)


def pid_alive(pid: int) -> bool:
    """True when a process with this id exists on this host (and is not a zombie)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """True for a process that has exited but was not reaped yet (Linux ``/proc``)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


@dataclass(frozen=True)
class ClaimInfo:
    """A claim as stored."""

    unit_id: int
    token: str
    host: str
    pid: int
    claimed_at: dt.datetime
    heartbeat_at: dt.datetime

    def is_live(self, now: dt.datetime, ttl: dt.timedelta | None = None) -> bool:
        """True while the holder is there: on this host its process exists; on another
        host its heartbeat is recent (``ttl``: :func:`claim_ttl` by default)."""
        if self.host == host_name():
            return pid_alive(self.pid)
        return now - self.heartbeat_at <= (ttl if ttl is not None else claim_ttl())

    def is_this_process(self) -> bool:
        """True for a claim held by the calling process."""
        return self.host == host_name() and self.pid == os.getpid()

    def holder_text(self) -> str:
        """« hôte (pid N) depuis le JJ/MM/AAAA HH:MM », in the operator's zone."""
        return (f"{self.host} (pid {self.pid}) depuis le "
                f"{format_local(self.claimed_at, '%d/%m/%Y %H:%M:%S')}")


class UnitClaimedError(Exception):
    """Another live process runs this unit (French message naming it)."""

    code = CLAIM_REFUSED_CODE

    def __init__(self, info: ClaimInfo, what: str) -> None:
        super().__init__(f"{what} est déjà en cours d'exécution par {info.holder_text()} ; "
                         "rien n'a été lancé. Attendez sa fin (yearchange status) ou, si ce "
                         "processus est arrêté, relancez : l'unité reprendra à son dernier "
                         "point de reprise.")
        self.info = info


@dataclass(frozen=True)
class Claim:
    """A claim this process holds; ``previous`` is the dead holder it took over, if any."""

    unit_id: int
    token: str
    previous: ClaimInfo | None


def claim_info(row: Any) -> ClaimInfo:
    """A stored claim (a :class:`UnitClaim` or a row of its columns) as :class:`ClaimInfo`."""
    claimed_at, heartbeat_at = as_utc(row.claimed_at), as_utc(row.heartbeat_at)
    assert claimed_at is not None and heartbeat_at is not None
    return ClaimInfo(unit_id=row.unit_id, token=row.token, host=row.host, pid=row.pid,
                     claimed_at=claimed_at, heartbeat_at=heartbeat_at)


def read_claim(connection: Connection, unit_id: int) -> ClaimInfo | None:
    """The claim on a unit, or None."""
    row = connection.execute(select(UnitClaim).where(UnitClaim.unit_id == unit_id)).first()
    return claim_info(row) if row is not None else None


def _insert(connection: Connection) -> Any:
    dialect = connection.dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(UnitClaim)


def claim_unit(connection: Connection, unit_id: int, what: str,
               now: dt.datetime | None = None, ttl: dt.timedelta | None = None) -> Claim:
    """Claim a unit for this process, in the caller's transaction.

    Args:
        connection: the transaction that marks the unit running.
        unit_id: the unit.
        what: the unit in French, for the refusal (« L'étape 2 de 0690573Y »).
        now: the time recorded (real time by default).
        ttl: how old another host's heartbeat must be for its claim to be taken over.

    Raises:
        UnitClaimedError: another live process holds the claim.
    """
    now = now or wall_now()
    token = uuid.uuid4().hex
    values = {"unit_id": unit_id, "token": token, "host": host_name(),
              "pid": os.getpid(), "claimed_at": now, "heartbeat_at": now}
    current = read_claim(connection, unit_id)
    if current is not None and current.is_live(now, ttl):
        # Refused by a read alone: no write lock asked (a SQLite holder may hold it).
        raise UnitClaimedError(current, what)
    for _attempt in range(3):
        inserted = connection.execute(
            _insert(connection).values(**values).on_conflict_do_nothing(
                index_elements=["unit_id"]).returning(UnitClaim.unit_id)).first()
        if inserted is not None:
            return Claim(unit_id, token, None)
        current = read_claim(connection, unit_id)
        if current is None:
            continue  # released between the two statements: try again
        if current.is_live(now, ttl):
            raise UnitClaimedError(current, what)
        taken = connection.execute(update(UnitClaim).where(
            UnitClaim.unit_id == unit_id, UnitClaim.token == current.token).values(**values))
        if taken.rowcount == 1:
            log.warning("Unité %d reprise à %s (processus disparu).", unit_id,
                        current.holder_text())
            return Claim(unit_id, token, current)
    latest = read_claim(connection, unit_id)
    assert latest is not None
    raise UnitClaimedError(latest, what)


def release_claim(connection: Connection, claim: Claim) -> None:
    """Give a claim up (the unit stopped: done, failed, blocked or interrupted)."""
    connection.execute(delete(UnitClaim).where(UnitClaim.unit_id == claim.unit_id,
                                               UnitClaim.token == claim.token))


class ClaimHeartbeat:
    """Refreshes the heartbeat of the claims this process holds on one database.

    A daemon thread runs only while this process holds claims there (so a process that
    runs no unit stays single-threaded, which the AAF readers' plain fork needs); a failed
    heartbeat (a busy SQLite database) is logged and tried again at the next interval.
    """

    def __init__(self, database: Database, interval: float | None = None) -> None:
        self.database = database
        self.interval = interval if interval is not None else heartbeat_interval()
        self.tokens: set[str] = set()
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None

    @classmethod
    def of(cls, database: Database) -> ClaimHeartbeat:
        """The heartbeat of ``database`` in this process."""
        key = f"{os.getpid()}:{database.url}"
        with _HEARTBEATS_LOCK:
            beat = _HEARTBEATS.get(key)
            if beat is None:
                beat = _HEARTBEATS[key] = cls(database)
            return beat

    def hold(self, claim: Claim) -> None:
        """Keep ``claim`` alive until :meth:`drop`."""
        with self.lock:
            self.tokens.add(claim.token)
            if self.thread is None:
                self.wake.clear()
                self.thread = threading.Thread(target=self._beat, name="unit-claims",
                                               daemon=True)
                self.thread.start()

    def drop(self, claim: Claim) -> None:
        """Stop keeping ``claim`` alive; the thread ends with the last claim."""
        with self.lock:
            self.tokens.discard(claim.token)
            if not self.tokens:
                self.wake.set()

    def _beat(self) -> None:
        while True:
            self.wake.wait(self.interval)
            with self.lock:
                if not self.tokens:
                    self.thread = None
                    return
                self.wake.clear()
                tokens = sorted(self.tokens)
            try:
                with self.database.engine.begin() as connection:
                    connection.execute(update(UnitClaim).where(
                        UnitClaim.token.in_(tokens)).values(heartbeat_at=wall_now()))
            except SQLAlchemyError as error:  # a busy database: the next beat tries again
                log.warning("Signe de vie des unités en cours non enregistré : %s", error)


_HEARTBEATS: dict[str, ClaimHeartbeat] = {}
_HEARTBEATS_LOCK = threading.Lock()
