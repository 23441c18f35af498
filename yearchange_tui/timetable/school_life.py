"""The domain of step 5, « Initialisation de la vie scolaire N+1 » (seed §6.5).

What the cahier de textes of year N+1 needs before it can open (seed §6.3 lists what
step 3 deleted; §6.5 says step 5 rebuilds it): periods (trimesters or semesters),
opening and closing dates, alternations (weeks A/B), teaching services and weekly
courses from the timetable import, head teachers from the AAF.

Plain functions for the console's wizard (no Textual here):

- :func:`propose_school_life` — the defaults proposed for one establishment: periods
  cut from the project calendar (rentrée élèves → fermeture of N+1), opening and
  closing dates, and what is already there;
- :func:`apply_school_life` — write a (possibly edited) proposal;
- :func:`missing_items` — what is still missing, each item with a stable code, a
  French label, a detail, an action and whether it blocks the cahier de textes.

The unit of work that runs them (``yearchange run init-school-life``, the engine) is
:mod:`yearchange_tui.changeover.steps.init_school_life`. Runs on the caller's thread.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from yearchange_tui.ent.database import Database
from yearchange_tui.ent.models import (
    Alternation,
    Course,
    Establishment,
    EstablishmentKind,
    HeadTeacher,
    OpeningDates,
    Period,
    PeriodKind,
    SchoolClass,
    SchoolYear,
    TeachingService,
)
from yearchange_tui.timetable.models import TimetableImport
from yearchange_tui.workflow.calendar import Milestone, build_plan, template_dates
from yearchange_tui.workflow.guards import unit_statuses
from yearchange_tui.workflow.models import Step, UnitStatus
from yearchange_tui.workflow.units import (
    current_school_year,
    following_school_year,
    get_unit,
)

logger = logging.getLogger(__name__)

STEP = Step.INIT_SCHOOL_LIFE

PERIOD_NAMES = {PeriodKind.TRIMESTER: ("1er trimestre", "2e trimestre", "3e trimestre"),
                PeriodKind.SEMESTER: ("1er semestre", "2nd semestre")}
PERIOD_KIND_LABELS = {PeriodKind.TRIMESTER: "trimestres", PeriodKind.SEMESTER: "semestres"}
# Last day of each period but the last (month, day), counted in year N+1's calendar.
PERIOD_ENDS = {PeriodKind.TRIMESTER: ((11, 30), (3, 15)), PeriodKind.SEMESTER: ((1, 31),)}


class SchoolLifeError(Exception):
    """A bad step-5 request (unknown establishment, dates upside down…); French message."""


@dataclass(frozen=True)
class PeriodProposal:
    """One period proposed (or found)."""

    position: int
    name: str
    starts_on: dt.date
    ends_on: dt.date


@dataclass
class SchoolLifeProposal:
    """The defaults proposed to an establishment, and what it already has.

    Attributes:
        period_kind: trimesters (default for collèges) or semesters (lycées).
        periods: the periods proposed, in order.
        opens_on: opening date (rentrée des élèves of N+1).
        closes_on: closing date (fermeture of N+1).
        source: where the dates come from (« calendrier du projet », « modèle »…).
        existing: counts already set (periods, dates, alternations, services, courses,
            classes, head teachers).
    """

    uai: str
    name: str
    school_year: str
    period_kind: PeriodKind
    periods: list[PeriodProposal]
    opens_on: dt.date
    closes_on: dt.date
    source: str
    existing: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"uai": self.uai, "name": self.name, "school_year": self.school_year,
                "period_kind": self.period_kind.value, "source": self.source,
                "opens_on": self.opens_on.isoformat(), "closes_on": self.closes_on.isoformat(),
                "periods": [{**asdict(p), "starts_on": p.starts_on.isoformat(),
                             "ends_on": p.ends_on.isoformat()} for p in self.periods],
                "existing": self.existing}


@dataclass(frozen=True)
class MissingItem:
    """One thing still missing before the cahier de textes can open.

    Attributes:
        code: stable code (``periodes``, ``services``…).
        label: French title.
        detail: French detail (counts, class codes).
        action: what to do, in French.
        blocking: True when the cahier de textes cannot open without it.
    """

    code: str
    label: str
    detail: str
    action: str
    blocking: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


MISSING_CODES = ("annuaire", "classes", "emploi-du-temps", "services", "classes-sans-service",
                 "cours", "dates-ouverture", "periodes", "professeurs-principaux",
                 "rejets-emploi-du-temps")
"""Every code :func:`missing_items` may return, in the order it checks them."""


@dataclass
class SchoolLifeStatus:
    """The check of one establishment."""

    uai: str
    name: str
    school_year: str
    items: list[MissingItem]
    step_status: str

    @property
    def ready(self) -> bool:
        """True when nothing blocking is missing."""
        return not any(item.blocking for item in self.items)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"uai": self.uai, "name": self.name, "school_year": self.school_year,
                "ready": self.ready, "step_status": self.step_status,
                "missing": [item.to_dict() for item in self.items]}


# --------------------------------------------------------------------------------------
# Years and dates
# --------------------------------------------------------------------------------------


def current_and_next_years(session: Session) -> tuple[SchoolYear, SchoolYear | None]:
    """School year N and, once step 4 created it, N+1."""
    year_n = current_school_year(session)
    return year_n, following_school_year(session, year_n)


def _establishment(session: Session, establishment_id: int) -> Establishment:
    establishment = session.get(Establishment, establishment_id)
    if establishment is None:
        raise SchoolLifeError(f"Établissement inconnu (n° {establishment_id}).")
    return establishment


def _first_saturday_of_july(year: int) -> dt.date:
    july = dt.date(year, 7, 1)
    return july + dt.timedelta(days=(5 - july.weekday()) % 7)


def calendar_dates(session: Session, establishment: Establishment, start_year: int
                   ) -> tuple[dt.date, dt.date, str]:
    """Opening and closing dates of school year ``start_year`` from the project calendar.

    Opening is the « rentrée des élèves » milestone of the change-over into that year,
    closing the « fin d'année scolaire » milestone of the next change-over, with the
    project's and establishment's edits when they fall in that school year (an
    establishment's closing date of the year before is not carried over); otherwise the
    calendar template (6 July for collèges, 15 July for lycées); when the template has no
    date, 2 September and early or mid-July.

    Returns:
        ``(opens_on, closes_on, source)``.
    """
    opens_on: dt.date | None = None
    closes_on: dt.date | None = None
    sources: set[str] = set()
    kind = establishment.kind.value
    try:
        before = build_plan(session, start_year - 1, uais=[establishment.uai])
        after = build_plan(session, start_year, uais=[establishment.uai])
        start = before.get(establishment.id, Milestone.START_OF_TERM)
        end = after.get(establishment.id, Milestone.CLOSURE)
    except Exception:  # the calendar is only a proposal: use the template
        logger.warning("Calendrier du projet illisible pour %s : dates du modèle utilisées.",
                       establishment.uai, exc_info=True)
        start = end = None
    if start is not None and start.on_date is not None and (
            dt.date(start_year, 8, 15) <= start.on_date <= dt.date(start_year, 9, 30)):
        opens_on = start.on_date
        sources.add(start.source)
    if end is not None and end.on_date is not None and (
            dt.date(start_year + 1, 6, 1) <= end.on_date <= dt.date(start_year + 1, 8, 31)):
        closes_on = end.on_date
        sources.add(end.source)
    template = template_dates(start_year)
    if opens_on is None:
        opens_on = template[Milestone.START_OF_TERM].get("*")
        sources.add("modèle")
    if closes_on is None:
        dates = template[Milestone.CLOSURE]
        closes_on = dates.get(kind) or dates.get("*")
        sources.add("modèle")
    if opens_on is None:
        opens_on = dt.date(start_year, 9, 2)
    if closes_on is None:
        if establishment.kind is EstablishmentKind.COLLEGE:
            closes_on = _first_saturday_of_july(start_year + 1)
        else:
            closes_on = dt.date(start_year + 1, 7, 15)
    source = "calendrier du projet" + (f" ({', '.join(sorted(sources))})" if sources else "")
    return opens_on, closes_on, source


def propose_periods(kind: PeriodKind, opens_on: dt.date, closes_on: dt.date
                    ) -> list[PeriodProposal]:
    """Cut the year into trimesters (ends 30 November, 15 March) or semesters (31 January).

    Raises:
        SchoolLifeError: when the dates are upside down or too close for the cut.
    """
    if closes_on <= opens_on:
        raise SchoolLifeError(f"La date de fermeture ({closes_on:%d/%m/%Y}) doit suivre la "
                              f"date d'ouverture ({opens_on:%d/%m/%Y}).")
    ends = []
    for month, day in PERIOD_ENDS[kind]:
        year = opens_on.year if month >= 8 else opens_on.year + 1
        ends.append(dt.date(year, month, day))
    ends.append(closes_on)
    periods = []
    start = opens_on
    for position, (name, end) in enumerate(zip(PERIOD_NAMES[kind], ends, strict=True), start=1):
        if end < start:
            raise SchoolLifeError(f"Les dates ne permettent pas de découper l'année en "
                                  f"{PERIOD_KIND_LABELS[kind]} ({name} finirait le "
                                  f"{end:%d/%m/%Y}, avant son début le {start:%d/%m/%Y}).")
        periods.append(PeriodProposal(position, name, start, end))
        start = end + dt.timedelta(days=1)
    return periods


def existing_counts(session: Session, establishment_id: int, year_id: int) -> dict[str, int]:
    """What the establishment already has for year ``year_id`` (periods, dates, services…)."""
    def count(model: Any) -> int:
        return session.scalar(select(func.count()).select_from(model).where(
            model.establishment_id == establishment_id,
            model.school_year_id == year_id)) or 0

    return {"periodes": count(Period), "dates_ouverture": count(OpeningDates),
            "alternances": count(Alternation), "services": count(TeachingService),
            "cours": count(Course), "classes": count(SchoolClass),
            "professeurs_principaux": count(HeadTeacher),
            "imports_emploi_du_temps": count(TimetableImport)}


def propose_school_life(session: Session, establishment_id: int, *,
                        period_kind: PeriodKind | None = None, opens_on: dt.date | None = None,
                        closes_on: dt.date | None = None) -> SchoolLifeProposal:
    """The defaults the wizard proposes to one establishment for year N+1.

    Args:
        session: an open session.
        establishment_id: the establishment.
        period_kind: trimesters or semesters (default: trimesters for collèges,
            semesters otherwise); the periods already set win when no kind is asked.
        opens_on: opening date (default: the project calendar's rentrée des élèves).
        closes_on: closing date (default: the project calendar's fermeture of N+1).

    Raises:
        SchoolLifeError: unknown establishment, no year N+1 yet, bad dates.
    """
    establishment = _establishment(session, establishment_id)
    year_n, year_next = current_and_next_years(session)
    start_year = year_n.start_year + 1
    label = year_next.label if year_next else f"{start_year}-{start_year + 1}"
    calendar_open, calendar_close, source = calendar_dates(session, establishment, start_year)
    existing = existing_counts(session, establishment.id, year_next.id) if year_next else {}
    periods: list[PeriodProposal] = []
    dates = None
    if year_next is not None:
        dates = session.scalar(select(OpeningDates).where(
            OpeningDates.establishment_id == establishment.id,
            OpeningDates.school_year_id == year_next.id))
        current = list(session.scalars(select(Period).where(
            Period.establishment_id == establishment.id, Period.school_year_id == year_next.id)
            .order_by(Period.position)))
        if current and period_kind is None and opens_on is None and closes_on is None:
            periods = [PeriodProposal(p.position, p.name, p.starts_on, p.ends_on)
                       for p in current]
            period_kind = current[0].kind
            source = "déjà saisi"
    if opens_on is None:
        opens_on = dates.opens_on if dates is not None else calendar_open
    if closes_on is None:
        closes_on = dates.closes_on if dates is not None else calendar_close
    if period_kind is None:
        period_kind = (PeriodKind.TRIMESTER if establishment.kind is EstablishmentKind.COLLEGE
                       else PeriodKind.SEMESTER)
    if not periods:
        periods = propose_periods(period_kind, opens_on, closes_on)
    return SchoolLifeProposal(establishment.uai, establishment.name, label, period_kind,
                              periods, opens_on, closes_on, source, existing)


def apply_school_life(session: Session, establishment_id: int, proposal: SchoolLifeProposal,
                      *, replace: bool = False) -> dict[str, int]:
    """Write a proposal's periods and opening dates for year N+1.

    Args:
        session: an open session (the caller commits).
        establishment_id: the establishment.
        proposal: from :func:`propose_school_life`, possibly edited.
        replace: replace periods and dates already set (default: only fill what is
            missing, so an establishment's own choices are never overwritten).

    Returns:
        Counts written (``periodes``, ``dates_ouverture``).

    Raises:
        SchoolLifeError: no year N+1 yet, or periods outside the opening dates or overlapping.
    """
    _year_n, year_next = current_and_next_years(session)
    if year_next is None:
        raise SchoolLifeError("L'année N+1 n'existe pas encore : l'étape 4 (initialisation de "
                              "l'annuaire) la crée.")
    _check_periods(proposal.periods, proposal.opens_on, proposal.closes_on)
    scope = {"establishment_id": establishment_id, "school_year_id": year_next.id}
    written = {"periodes": 0, "dates_ouverture": 0}
    has_periods, has_dates = _already_set(session, establishment_id, year_next.id)
    if replace or not has_periods:
        session.execute(delete(Period).where(Period.establishment_id == establishment_id,
                                             Period.school_year_id == year_next.id))
        session.execute(insert(Period), [{
            **scope, "kind": proposal.period_kind, "position": p.position, "name": p.name,
            "starts_on": p.starts_on, "ends_on": p.ends_on} for p in proposal.periods])
        written["periodes"] = len(proposal.periods)
    if replace or not has_dates:
        session.execute(delete(OpeningDates).where(
            OpeningDates.establishment_id == establishment_id,
            OpeningDates.school_year_id == year_next.id))
        session.execute(insert(OpeningDates), [{**scope, "opens_on": proposal.opens_on,
                                                "closes_on": proposal.closes_on}])
        written["dates_ouverture"] = 1
    session.flush()
    return written


DEFAULT_CODES = ("dates-ouverture", "periodes")
"""The missing items step 5's « valeurs par défaut » fill."""

NOT_CHOSEN = ("aucune valeur par défaut écrite : le projet n'a pas choisi « valeurs par "
              "défaut » pour cet établissement, qui saisit ses périodes et dates (à la main ou "
              "avec l'assistant) ; yearchange project set --uai UAI --vie-scolaire defaut")


def defaults_refusal(session: Session, establishment_id: int) -> str:
    """Why step 5 writes no default periods and dates for this establishment, or ``""``.

    Step 5 is the establishments' step (seed §6.5): the engine writes defaults only where
    the project chose « valeurs par défaut » for the establishment, and never on a unit
    that stays « bloqué » for something else missing (directory, classes, timetable…).

    Raises:
        SchoolLifeError: unknown establishment.
    """
    establishment = _establishment(session, establishment_id)
    if not establishment.school_life_defaults:
        return NOT_CHOSEN
    blocking = [item for item in missing_items(session, establishment_id)
                if item.blocking and item.code not in DEFAULT_CODES]
    if blocking:
        return ("aucune valeur par défaut écrite : l'étape 5 reste bloquée ("
                + ", ".join(item.label for item in blocking) + ")")
    return ""


def defaults_to_write(session: Session, establishment_id: int,
                      proposal: SchoolLifeProposal) -> dict[str, int]:
    """What :func:`apply_school_life` would write without ``replace``: the proposal's
    periods and opening dates, except where the establishment has set its own."""
    _year_n, year_next = current_and_next_years(session)
    written = {"periodes": len(proposal.periods), "dates_ouverture": 1}
    if year_next is not None:
        has_periods, has_dates = _already_set(session, establishment_id, year_next.id)
        written = {"periodes": 0 if has_periods else written["periodes"],
                   "dates_ouverture": 0 if has_dates else 1}
    return written


def _already_set(session: Session, establishment_id: int, school_year_id: int
                 ) -> tuple[bool, bool]:
    """Whether the establishment has periods, and opening dates, for that year."""
    has_periods = session.scalar(select(Period.id).where(
        Period.establishment_id == establishment_id,
        Period.school_year_id == school_year_id).limit(1)) is not None
    has_dates = session.scalar(select(OpeningDates.id).where(
        OpeningDates.establishment_id == establishment_id,
        OpeningDates.school_year_id == school_year_id).limit(1)) is not None
    return has_periods, has_dates


def _check_periods(periods: Sequence[PeriodProposal], opens_on: dt.date,
                   closes_on: dt.date) -> None:
    problem = period_problem(periods, opens_on, closes_on)
    if problem:
        raise SchoolLifeError(problem)


def period_problem(periods: Sequence[Any], opens_on: dt.date | None,
                   closes_on: dt.date | None) -> str:
    """A French description of what is wrong with periods, or ``""``."""
    ordered = sorted(periods, key=lambda p: p.starts_on)
    for period in ordered:
        if period.ends_on < period.starts_on:
            return f"la période « {period.name} » finit avant de commencer"
    for first, second in itertools.pairwise(ordered):
        if second.starts_on <= first.ends_on:
            return f"les périodes « {first.name} » et « {second.name} » se chevauchent"
    if ordered and opens_on is not None and closes_on is not None and (
            ordered[0].starts_on > opens_on or ordered[-1].ends_on < closes_on):
        return (f"les périodes ({ordered[0].starts_on:%d/%m/%Y} → {ordered[-1].ends_on:%d/%m/%Y}) "
                f"ne couvrent pas l'année ({opens_on:%d/%m/%Y} → {closes_on:%d/%m/%Y})")
    return ""


# --------------------------------------------------------------------------------------
# The check
# --------------------------------------------------------------------------------------


def _codes(values: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(values[:limit])
    return shown + (f", … (+{len(values) - limit})" if len(values) > limit else "")


def missing_items(session: Session, establishment_id: int) -> list[MissingItem]:
    """What is still missing before the establishment's cahier de textes can open (N+1).

    Items come in the order of :data:`MISSING_CODES`; ``blocking`` ones keep step 5 from
    being done, the others are to complete (head teachers, timetable rejects).

    Raises:
        SchoolLifeError: unknown establishment.
    """
    establishment = _establishment(session, establishment_id)
    year_n, year_next = current_and_next_years(session)
    items: list[MissingItem] = []
    statuses = unit_statuses(session, establishment.id, year_n.id)
    if statuses[Step.INIT_DIRECTORY] is not UnitStatus.DONE:
        items.append(MissingItem(
            "annuaire", "Annuaire N+1 non initialisé",
            "l'étape 4 (initialisation de l'annuaire) n'est pas terminée",
            "Attendre l'import AAF d'initialisation (étape 4, MOE)."))
    if year_next is None:
        return items
    year_id = year_next.id
    scope = (establishment.id, year_id)
    classes = dict(session.execute(select(SchoolClass.id, SchoolClass.code).where(
        SchoolClass.establishment_id == scope[0], SchoolClass.school_year_id == year_id)).all())
    if not classes:
        items.append(MissingItem(
            "classes", "Aucune classe", f"aucune classe pour {year_next.label}",
            "Les classes viennent de l'import AAF (élèves affectés dans SIECLE)."))
    imports = session.scalar(select(func.count()).select_from(TimetableImport).where(
        TimetableImport.establishment_id == scope[0], TimetableImport.school_year_id == year_id))
    services = session.scalar(select(func.count()).select_from(TeachingService).where(
        TeachingService.establishment_id == scope[0],
        TeachingService.school_year_id == year_id)) or 0
    if not imports:
        items.append(MissingItem(
            "emploi-du-temps", "Emploi du temps non importé",
            "aucun import d'emploi du temps pour l'année" + (
                " (services saisis à la main)" if services else ""),
            "Faire le premier import de l'emploi du temps, en mode manuel (yearchange "
            "import-timetable CHEMIN --uai UAI).", blocking=not services))
    if not services:
        items.append(MissingItem(
            "services", "Aucun service d'enseignement", "aucun service pour l'année",
            "Importer l'emploi du temps (il crée les services) ou les saisir dans l'ENT."))
    elif classes:
        served = set(session.scalars(select(TeachingService.class_id).where(
            TeachingService.establishment_id == scope[0],
            TeachingService.school_year_id == year_id, TeachingService.class_id.is_not(None))))
        lonely = sorted(code for class_id, code in classes.items() if class_id not in served)
        if lonely:
            items.append(MissingItem(
                "classes-sans-service", "Classes sans service d'enseignement",
                f"{len(lonely)} classe(s) : {_codes(lonely)}",
                "S'il s'agit d'une classe de l'an dernier (rejet AAF-CLASSE-N-1-PROBABLE), faire "
                "sortir ses élèves dans SIECLE ; sinon vérifier son nom dans le logiciel "
                "d'emploi du temps (rejets EDT-CLASSE-INCONNUE) et réimporter.", blocking=False))
    courses = session.scalar(select(func.count()).select_from(Course).where(
        Course.establishment_id == scope[0], Course.school_year_id == year_id)) or 0
    if services and not courses:
        items.append(MissingItem(
            "cours", "Aucun cours hebdomadaire", "des services mais aucun cours (import STS-web "
            "sts_emp seul ?)",
            "Importer l'export ENT du logiciel d'emploi du temps (EDT, UDT) ou le fichier "
            "emp_sts, qui portent les cours."))
    dates = session.scalar(select(OpeningDates).where(
        OpeningDates.establishment_id == scope[0], OpeningDates.school_year_id == year_id))
    if dates is None:
        items.append(MissingItem(
            "dates-ouverture", "Dates d'ouverture et de fermeture absentes",
            "aucune date d'ouverture ni de fermeture pour l'année",
            "Les saisir (assistant de la vie scolaire) ou lancer yearchange run "
            "init-school-life, qui propose celles du calendrier du projet."))
    periods = list(session.scalars(select(Period).where(
        Period.establishment_id == scope[0], Period.school_year_id == year_id)))
    if not periods:
        items.append(MissingItem(
            "periodes", "Périodes absentes", "aucun trimestre ni semestre pour l'année",
            "Les saisir (assistant de la vie scolaire) ou lancer yearchange run "
            "init-school-life, qui les découpe d'après le calendrier du projet."))
    else:
        problem = period_problem(periods, dates.opens_on if dates else None,
                                 dates.closes_on if dates else None)
        if problem:
            items.append(MissingItem("periodes", "Périodes incohérentes", problem,
                                     "Corriger les périodes dans l'assistant de la vie "
                                     "scolaire (yearchange school-life-init --replace)."))
    if classes:
        headed = set(session.scalars(select(HeadTeacher.class_id).where(
            HeadTeacher.establishment_id == scope[0], HeadTeacher.school_year_id == year_id)))
        without = sorted(code for class_id, code in classes.items() if class_id not in headed)
        if without:
            items.append(MissingItem(
                "professeurs-principaux", "Classes sans professeur principal",
                f"{len(without)} classe(s) : {_codes(without)}",
                "Les professeurs principaux viennent de l'AAF (STS-web) : les désigner dans "
                "STS-web, ils arriveront au prochain import AAF.", blocking=False))
    latest = session.scalar(select(TimetableImport).where(
        TimetableImport.establishment_id == scope[0], TimetableImport.school_year_id == year_id)
        .order_by(TimetableImport.id.desc()).limit(1))
    if latest is not None:
        rejects = json.loads(latest.counts or "{}").get("rejects", {})
        errors = {code: n for code, n in rejects.items()
                  if code in ("EDT-CLASSE-INCONNUE", "EDT-ENSEIGNANT-INCONNU",
                              "EDT-MATIERE-INCONNUE", "EDT-REFERENCE-INCONNUE",
                              "EDT-COURS-HORS-GRILLE", "EDT-COURS-INCOMPLET")}
        if errors:
            items.append(MissingItem(
                "rejets-emploi-du-temps", "Rejets du dernier import d'emploi du temps",
                ", ".join(f"{code} ×{n}" for code, n in sorted(errors.items())),
                f"Consulter les rejets (yearchange rejects --uai {establishment.uai}) et "
                "corriger dans le logiciel d'emploi du temps.", blocking=False))
    return items


def school_life_check(database: Database, establishment_ids: Sequence[int] | None = None
                      ) -> list[SchoolLifeStatus]:
    """The missing-items check of several establishments (all when None), by UAI."""
    with database.session() as session:
        query = select(Establishment).order_by(Establishment.uai)
        if establishment_ids is not None:
            query = query.where(Establishment.id.in_(list(establishment_ids)))
        year_n, year_next = current_and_next_years(session)
        label = year_next.label if year_next else f"{year_n.start_year + 1}-{year_n.start_year + 2}"
        statuses = []
        for establishment in session.scalars(query):
            unit = get_unit(session, establishment.id, year_n.id, STEP, create=False)
            statuses.append(SchoolLifeStatus(
                establishment.uai, establishment.name, label,
                missing_items(session, establishment.id),
                unit.status.value if unit is not None else UnitStatus.PENDING.value))
        return statuses
