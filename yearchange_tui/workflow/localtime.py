"""The operator's time zone: the one place that turns a stored time into what an operator
reads.

Times are stored in UTC (naive values read back from SQLite are UTC). Every time shown to
an operator — console header, clock, journal, calendar, detail, CLI tables, JSON — goes
through :func:`to_local`, :func:`format_local` or :func:`iso_local`, in the project's zone:
``Europe/Paris`` unless the configuration says otherwise (``[yearchange.engine]
timezone``, or ``--timezone``), set once per process with :func:`configure`.

Pure standard library; never imports Textual.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIMEZONE = "Europe/Paris"

_zone_name = DEFAULT_TIMEZONE


class TimezoneError(ValueError):
    """An unknown time-zone name (French message)."""


def zone_of(name: str) -> ZoneInfo:
    """The zone called ``name``.

    Raises:
        TimezoneError: for an unknown name.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise TimezoneError(f"fuseau horaire inconnu « {name} »") from error


def configure(name: str | None) -> str:
    """Make ``name`` the operator's zone for this process (None: the default).

    Returns:
        The zone name now in force.

    Raises:
        TimezoneError: for an unknown name (the zone in force is kept).
    """
    global _zone_name
    wanted = name or DEFAULT_TIMEZONE
    zone_of(wanted)
    _zone_name = wanted
    return _zone_name


def zone_name() -> str:
    """The operator's zone name (``Europe/Paris`` unless configured)."""
    return _zone_name


def operator_zone(name: str | None = None) -> ZoneInfo:
    """The operator's zone, or the zone called ``name`` when one is given (a plan or an
    engine configured with its own): the one entry point to a time zone.

    Raises:
        TimezoneError: for an unknown name.
    """
    return zone_of(name or _zone_name)


def to_local(value: dt.datetime) -> dt.datetime:
    """``value`` in the operator's zone (aware); a naive value is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(operator_zone())


def wall_clock(value: dt.datetime) -> dt.datetime:
    """A clock reading as the operator sees it: an aware value converted, a naive one kept
    as it is (a console clock pinned in tests is already a local wall-clock time)."""
    return to_local(value) if value.tzinfo is not None else value


def format_local(value: dt.datetime | None, fmt: str = "%d/%m/%Y %H:%M",
                 empty: str = "—") -> str:
    """``value`` formatted in the operator's zone (``empty`` for None)."""
    if value is None:
        return empty
    return to_local(value).strftime(fmt)


def iso_local(value: dt.datetime | dt.date | None) -> str | None:
    """ISO 8601 with ``T`` and the UTC offset of the operator's zone
    (``2027-07-07T06:00:00+02:00``); a date stays a date; None stays None."""
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        return value.isoformat()
    return to_local(value).isoformat(timespec="seconds")


def local_now() -> dt.datetime:
    """Now, in the operator's zone (aware)."""
    return dt.datetime.now(dt.UTC).astimezone(operator_zone())
