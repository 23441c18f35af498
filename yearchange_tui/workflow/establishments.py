"""Establishments by UAI: the one place a UAI typed by an operator becomes an establishment.

Every command, screen and engine request that names establishments by UAI goes through
:func:`establishments_by_uai`, so normalisation (spaces, case) and the French refusal of an
unknown UAI are the same everywhere.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from yearchange_tui.ent.models import Establishment, EstablishmentKind

KIND_LABELS = {"college": "collège", "lycee": "lycée", "other": "autre"}
"""The French word of each establishment kind (grid, status, plan)."""


class UnknownEstablishmentError(Exception):
    """A UAI given by the operator is not in the database (French message)."""

    code = "ETABLISSEMENT-INCONNU"

    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(f"Établissement inconnu : {', '.join(missing)}.")


@dataclass(frozen=True)
class EstablishmentRef:
    """The establishment fields units, commands and screens need."""

    id: int
    uai: str
    name: str
    project_id: int
    closing_date: dt.date | None
    kind: EstablishmentKind


def normalise_uai(uai: str) -> str:
    """A UAI as stored: no surrounding spaces, upper case."""
    return uai.strip().upper()


def establishments_by_uai(session: Session | Connection, uais: Iterable[str] | None = None,
                          ) -> dict[str, EstablishmentRef]:
    """The establishments named by ``uais`` (every establishment when None), keyed by UAI
    and in UAI order.

    Raises:
        UnknownEstablishmentError: when a UAI is not in the database (nothing is returned).
    """
    query = select(Establishment.id, Establishment.uai, Establishment.name,
                   Establishment.project_id, Establishment.closing_date, Establishment.kind)
    wanted: set[str] | None = None
    if uais is not None:
        wanted = {normalise_uai(uai) for uai in uais if uai.strip()}
        query = query.where(Establishment.uai.in_(sorted(wanted)))
    refs = {row[1]: EstablishmentRef(*row) for row in session.execute(query).all()}
    if wanted is not None:
        missing = sorted(wanted - set(refs))
        if missing:
            raise UnknownEstablishmentError(missing)
    return dict(sorted(refs.items()))


def establishment_by_uai(session: Session | Connection, uai: str) -> EstablishmentRef:
    """One establishment by UAI.

    Raises:
        UnknownEstablishmentError: when the UAI is not in the database.
    """
    return next(iter(establishments_by_uai(session, [uai]).values()))
