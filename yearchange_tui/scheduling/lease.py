"""One engine per database: a lease row (holder, host, pid, heartbeat).

Only the holder runs the scheduler. A process that finds a live lease refuses to start a
second engine; a stale lease (heartbeat older than the time-to-live, or a holder process
gone on this host) is taken over. Acquisition is a compare-and-swap on the lease token, so
two engines racing for a stale lease cannot both win.

Runs on the caller's thread (the engine's heartbeat thread for :meth:`Lease.heartbeat`).
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from yearchange_tui.ent.database import Database
from yearchange_tui.scheduling.models import EngineLease
from yearchange_tui.workflow.calendar import as_utc
from yearchange_tui.workflow.claims import host_name, pid_alive
from yearchange_tui.workflow.units import utcnow

LEASE_NAME = "engine"
DEFAULT_TTL = dt.timedelta(seconds=60)


class LeaseHeldError(Exception):
    """Another live engine holds the lease (French message)."""

    def __init__(self, info: LeaseInfo, now: dt.datetime) -> None:
        age = ""
        if info.heartbeat_at is not None:
            age = f", dernier signe de vie il y a {int((now - info.heartbeat_at).total_seconds())} s"
        super().__init__(f"Un moteur tourne déjà sur cette base : {info.holder}{age}. "
                         "Un seul moteur par base ; la console s'y rattache.")
        self.info = info


class LeaseLostError(Exception):
    """This engine's lease was taken over (it stalled longer than the time-to-live)."""


@dataclass(frozen=True)
class LeaseInfo:
    """The lease as stored."""

    holder: str
    host: str
    pid: int
    held: bool
    acquired_at: dt.datetime | None
    heartbeat_at: dt.datetime | None
    paused: bool
    read_only: bool
    log_path: str

    def is_live(self, now: dt.datetime, ttl: dt.timedelta = DEFAULT_TTL) -> bool:
        """True when a holder is there: a recent heartbeat and, on this host, a live pid."""
        if not self.held or self.heartbeat_at is None:
            return False
        if now - self.heartbeat_at > ttl:
            return False
        return self.host != host_name() or pid_alive(self.pid)


def holder_name() -> str:
    """``host:pid`` of this process."""
    return f"{host_name()}:{os.getpid()}"


def _info(row: EngineLease) -> LeaseInfo:
    return LeaseInfo(holder=row.holder, host=row.host, pid=row.pid, held=row.token is not None,
                     acquired_at=as_utc(row.acquired_at), heartbeat_at=as_utc(row.heartbeat_at),
                     paused=bool(row.paused), read_only=bool(row.read_only),
                     log_path=row.log_path or "")


def _ensure_row(database: Database) -> None:
    with database.session() as session:
        if session.get(EngineLease, LEASE_NAME) is not None:
            return
    try:
        with database.engine.begin() as connection:
            connection.execute(insert(EngineLease).values(
                name=LEASE_NAME, token=None, holder="", host="", pid=0, paused=False,
                read_only=False, log_path=""))
    except IntegrityError:
        pass  # another process created it first


def read_lease(database: Database) -> LeaseInfo | None:
    """The lease, or None when no engine ever ran on this database."""
    with database.session() as session:
        row = session.get(EngineLease, LEASE_NAME)
        return _info(row) if row is not None else None


class Lease:
    """The lease held by this process."""

    def __init__(self, database: Database, token: str, clock: Callable[[], dt.datetime],
                 previous: LeaseInfo | None) -> None:
        self.database = database
        self.token = token
        self.clock = clock
        self.previous = previous
        """The stale holder taken over, if there was one."""

    def heartbeat(self) -> str:
        """Say this engine is alive.

        Returns:
            Who asked this engine to stop (``yearchange engine-stop``), or ''.

        Raises:
            LeaseLostError: when another engine took the lease over.
        """
        with self.database.engine.begin() as connection:
            result = connection.execute(update(EngineLease).where(
                EngineLease.name == LEASE_NAME, EngineLease.token == self.token)
                .values(heartbeat_at=self.clock()))
            stop = connection.execute(select(
                EngineLease.stop_requested_at, EngineLease.stop_requested_by).where(
                EngineLease.name == LEASE_NAME, EngineLease.token == self.token)).first()
        if result.rowcount != 1:
            raise LeaseLostError("Le bail du moteur a été repris par un autre processus.")
        if stop is None or stop[0] is None:
            return ""
        return stop[1] or "yearchange engine-stop"

    def release(self) -> None:
        """Give the lease up (a clean stop); the pause state stays."""
        with self.database.engine.begin() as connection:
            connection.execute(update(EngineLease).where(
                EngineLease.name == LEASE_NAME, EngineLease.token == self.token)
                .values(token=None, heartbeat_at=None))


def acquire(database: Database, *, ttl: dt.timedelta = DEFAULT_TTL, read_only: bool = False,
            log_path: str = "", clock: Callable[[], dt.datetime] = utcnow) -> Lease:
    """Take the engine lease.

    Raises:
        LeaseHeldError: when a live engine holds it.
    """
    _ensure_row(database)
    with database.session() as session:
        row = session.get(EngineLease, LEASE_NAME)
        assert row is not None
        current = _info(row)
        old_token = row.token
    now = clock()
    if current.is_live(now, ttl):
        raise LeaseHeldError(current, now)
    token = uuid.uuid4().hex
    condition = (EngineLease.token.is_(None) if old_token is None
                 else EngineLease.token == old_token)
    with database.engine.begin() as connection:
        result = connection.execute(update(EngineLease).where(
            EngineLease.name == LEASE_NAME, condition).values(
            token=token, holder=holder_name(), host=host_name(), pid=os.getpid(),
            acquired_at=now, heartbeat_at=now, read_only=read_only, log_path=log_path,
            stop_requested_at=None, stop_requested_by=""))
    if result.rowcount != 1:
        latest = read_lease(database)
        assert latest is not None
        raise LeaseHeldError(latest, now)
    return Lease(database, token, clock, current if current.held else None)


def set_paused(database: Database, paused: bool) -> None:
    """Pause or resume the engine (kept across engine restarts)."""
    _ensure_row(database)
    with database.engine.begin() as connection:
        connection.execute(update(EngineLease).where(EngineLease.name == LEASE_NAME)
                           .values(paused=paused))


def is_paused(database: Database) -> bool:
    """True while the engine is paused."""
    with database.session() as session:
        return bool(session.scalar(select(EngineLease.paused).where(
            EngineLease.name == LEASE_NAME)))


def request_engine_stop(database: Database, requested_by: str,
                        clock: Callable[[], dt.datetime] = utcnow) -> bool:
    """Ask the engine holding the lease to stop (it reads this with its next heartbeat).

    Returns:
        True when a holder was asked; False when nobody holds the lease.
    """
    with database.engine.begin() as connection:
        result = connection.execute(update(EngineLease).where(
            EngineLease.name == LEASE_NAME, EngineLease.token.is_not(None)).values(
            stop_requested_at=clock(), stop_requested_by=requested_by[:300]))
    return result.rowcount == 1


def wait_engine_stopped(database: Database, info: LeaseInfo, timeout: float,
                        poll: float = 0.2, ttl: dt.timedelta = DEFAULT_TTL,
                        clock: Callable[[], dt.datetime] = utcnow) -> bool:
    """Wait until the engine ``info`` describes has stopped: its lease released (or dead)
    and, on this host, its process gone (so nothing it writes can land after).

    Returns:
        True when it stopped within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    local = info.host == host_name()
    while True:
        current = read_lease(database)
        released = (current is None or not current.held or current.pid != info.pid
                    or current.host != info.host or not current.is_live(clock(), ttl))
        if released and not (local and pid_alive(info.pid)):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)
