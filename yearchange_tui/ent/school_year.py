"""The school-year rule: which school year a date belongs to.

A school year is named by the calendar year it starts in (``2026`` for 2026-2027) and runs
from 1 September to 31 August, the bounds every :class:`~yearchange_tui.ent.models.SchoolYear`
row carries. The whole change-over summer (closure in July, steps 1 to 3, step 4 in the
second half of August) still belongs to year N: the steps archive and delete year N's data
while it is the current year, and year N+1 starts with the return to school on
1-2 September (seed §3.5). So the one threshold is September.

Callers that ask a different question name it with its own function, built on
:func:`school_year_of`: which year an AAF delivery carries, which year a timetable that
opens on a given day describes.
"""

from __future__ import annotations

import datetime as dt

FIRST_MONTH = 9
"""A school year starts on 1 September (and ends on 31 August)."""


def school_year_of(day: dt.date) -> int:
    """The school year ``day`` belongs to (its start year).

    The year turns on 1 September: 31 August 2027 is in 2026-2027, 1 September 2027 in
    2027-2028. July and August are the end of year N, not the start of N+1: the
    change-over steps of that summer work on year N (see the module docstring).
    """
    return day.year if day.month >= FIRST_MONTH else day.year - 1


def school_year_bounds(start_year: int) -> tuple[dt.date, dt.date]:
    """First and last day of school year ``start_year`` (1 September to 31 August)."""
    first_day = dt.date(start_year, FIRST_MONTH, 1)
    return first_day, dt.date(start_year + 1, FIRST_MONTH, 1) - dt.timedelta(days=1)


def school_year_label(start_year: int) -> str:
    """``2026-2027`` for 2026."""
    return f"{start_year}-{start_year + 1}"


def school_year_carried_by_aaf(delivered_on: dt.date) -> int:
    """The school year an AAF delivery of ``delivered_on`` describes.

    In August the académie switches SIECLE to year N+1 and builds the « complet
    d'initialisation » (seed §3.5, « Bascule SIECLE »); from then on its files describe
    the year that starts in September. A delivery of 15 August 2027 therefore carries
    2027-2028 although the day itself still belongs to 2026-2027.
    """
    year = school_year_of(delivered_on)
    return year + 1 if delivered_on.month == 8 else year


def school_year_opening_on(first_day: dt.date) -> int:
    """The school year whose first day is ``first_day`` (a timetable's opening date).

    A school year may open in the summer before its official start (pré-rentrée in the
    last days of August), so a first day in July or August opens the coming year.
    """
    year = school_year_of(first_day)
    return year + 1 if first_day.month in (7, 8) else year


def day_in_school_year(start_year: int, month: int, day: int) -> dt.date:
    """The date of ``day``/``month`` inside school year ``start_year`` (30/11 → autumn of
    the start year, 15/03 → spring of the next)."""
    return dt.date(start_year if month >= FIRST_MONTH else start_year + 1, month, day)
