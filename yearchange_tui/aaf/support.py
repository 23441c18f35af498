"""Support staff's questions: one search over people and rejects, and one person's facts.

:func:`find` is the one search (``yearchange find``, ``/`` in the console's rejects
browser through :func:`reject_condition`, ``yearchange person``): a text matches an
establishment by UAI prefix or name, a reject by code, record id (jointure), attribute,
value or message, and a person by name, INE, login or jointure — all compared folded
(:func:`~yearchange_tui.ent.folding.fold`: no case, no accents) on the stored
``search_folded`` columns, so SQLite and PostgreSQL answer alike.

:func:`person_facts` gathers what answers "why can't this person log in": the record
as imported (or the refused record, when the import refused it), the account state
(created, flagged absent from a Complet), the class for N+1 (and N; flagged « classe N-1
probable » by the step-4 detection when it looks like last year's), the access-block
answer from :func:`~yearchange_tui.workflow.access_block.access_decision` (the one
owner of that rule), the person's rejects, and a line to tell the school.

Runs on the caller's thread; reads only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, false, func, or_, select
from sqlalchemy.orm import Session

from yearchange_tui.aaf.classes_n1 import likely_previous_year_classes
from yearchange_tui.aaf.rules import RULES
from yearchange_tui.aaf.run import PERSON_KINDS
from yearchange_tui.ent.folding import fold, person_search_text, record_attributes
from yearchange_tui.ent.models import (
    ClassMembership,
    Establishment,
    Person,
    SchoolClass,
    SchoolYear,
)
from yearchange_tui.importing.models import AafReject
from yearchange_tui.workflow.access_block import AccessDecision, access_decision
from yearchange_tui.workflow.localtime import format_local

KIND_LABELS = {"student": "élève", "relative": "responsable", "teacher": "enseignant",
               "staff": "personnel", "Eleve": "élève", "PersRelEleve": "responsable",
               "PersEducNat": "personnel"}


@dataclass(frozen=True)
class EstablishmentHit:
    """An establishment the text names."""

    uai: str
    name: str


@dataclass(frozen=True)
class PersonHit:
    """A person the text names: in the directory, or only in the rejects (import refused)."""

    jointure: str
    person_id: int | None
    last_name: str
    first_name: str
    kind: str
    login: str
    uai: str

    @property
    def label(self) -> str:
        """« NOËL Camille (élève, 0698689V) »."""
        name = " ".join(part for part in (self.last_name, self.first_name) if part) or \
            self.jointure
        kind = KIND_LABELS.get(self.kind, self.kind)
        where = ", ".join(part for part in (kind, self.uai) if part)
        return f"{name} ({where})" if where else name


@dataclass(frozen=True)
class RejectHit:
    """A reject the text names."""

    id: int
    import_id: int
    uai: str
    code: str
    severity: str
    record_id: str
    message: str
    action: str


@dataclass
class FindResult:
    """What :func:`find` found, each list at most ``limit`` long, with the full counts."""

    text: str
    establishments: list[EstablishmentHit] = field(default_factory=list)
    people: list[PersonHit] = field(default_factory=list)
    rejects: list[RejectHit] = field(default_factory=list)
    people_total: int = 0
    rejects_total: int = 0


def _needles(text: str) -> tuple[str, str]:
    """(the text as typed, upper-case and trimmed — for UAIs; the folded text)."""
    return text.strip().upper(), fold(text)


def words(text: str) -> list[str]:
    """The folded words of ``text``: each must match, in any order (« beranger zoe »)."""
    return fold(text).split()


def establishment_names(session: Session) -> list[tuple[str, str]]:
    """Every establishment's (UAI, folded name), by UAI: read once per search."""
    return [(uai, fold(name or "")) for uai, name in session.execute(
        select(Establishment.uai, Establishment.name).order_by(Establishment.uai))]


def matching_uais(session: Session, text: str,
                  names: list[tuple[str, str]] | None = None) -> list[str]:
    """UAIs of the establishments whose UAI starts with ``text`` or whose name holds every
    word of it.

    Establishments are few (an académie's hundreds): their names are folded here, or come
    folded from :func:`establishment_names` when a search asks several times.
    """
    upper, folded = _needles(text)
    if not folded:
        return []
    needles = folded.split()
    found = []
    for uai, folded_name in names if names is not None else establishment_names(session):
        if uai.upper().startswith(upper) or all(word in folded_name for word in needles):
            found.append(uai)
    return found


def _person_word(word: str) -> ColumnElement[bool]:
    return or_(Person.search_folded.contains(word, autoescape=True),
               func.lower(Person.login).contains(word, autoescape=True),
               func.lower(Person.aaf_jointure).contains(word, autoescape=True))


def person_condition(text: str) -> ColumnElement[bool]:
    """People whose names or INE (folded), login or jointure hold every word of ``text``."""
    needles = words(text)
    if not needles:
        return false()
    return and_(*(_person_word(word) for word in needles))


def _reject_word(session: Session, word: str,
                 names: list[tuple[str, str]]) -> ColumnElement[bool]:
    uais = matching_uais(session, word, names)
    return or_(AafReject.uai.startswith(word.upper(), autoescape=True),
               AafReject.uai.in_(uais) if uais else false(),
               AafReject.search_folded.contains(word, autoescape=True),
               AafReject.record_id.in_(select(Person.aaf_jointure)
                                       .where(_person_word(word))))


def reject_condition(session: Session, text: str,
                     names: list[tuple[str, str]] | None = None) -> ColumnElement[bool]:
    """Rejects ``text`` names, every word of it matching in any order: its establishment
    (UAI prefix, name), its code, record id, attribute, value, message or the name in its
    record (folded), or a person it is about (name, login, INE). A whole text that is an
    establishment's name (« emile zola ») names its rejects too."""
    upper, folded = _needles(text)
    if not folded:
        return false()
    if names is None:
        names = establishment_names(session)
    whole = matching_uais(session, text, names)
    return or_(AafReject.uai.startswith(upper, autoescape=True),
               AafReject.uai.in_(whole) if whole else false(),
               and_(*(_reject_word(session, word, names) for word in folded.split())))


def find(session: Session, text: str, limit: int = 20) -> FindResult:
    """Establishments, people and rejects ``text`` names (newest imports first)."""
    result = FindResult(text)
    if not fold(text):
        return result
    establishments = list(session.execute(select(Establishment.uai, Establishment.name)
                                          .order_by(Establishment.uai)))
    names = dict(establishments)
    folded_names = [(uai, fold(name or "")) for uai, name in establishments]
    result.establishments = [EstablishmentHit(uai, names.get(uai, ""))
                             for uai in matching_uais(session, text, folded_names)][:limit]
    directory = select(Person, Establishment.uai).outerjoin(
        Establishment, Establishment.id == Person.establishment_id).where(person_condition(text))
    result.people_total = session.scalar(
        select(func.count()).select_from(Person).where(person_condition(text))) or 0
    for person, uai in session.execute(directory.order_by(Person.last_name, Person.first_name,
                                                          Person.id).limit(limit)):
        result.people.append(PersonHit(person.aaf_jointure or "", person.id, person.last_name,
                                       person.first_name, str(person.kind), person.login,
                                       uai or ""))
    condition = reject_condition(session, text, folded_names)
    result.rejects_total = session.scalar(
        select(func.count()).select_from(AafReject).where(condition)) or 0
    for row in session.scalars(select(AafReject).where(condition).order_by(
            AafReject.import_id.desc(), AafReject.uai, AafReject.file_name, AafReject.line,
            AafReject.id).limit(limit)):
        result.rejects.append(RejectHit(row.id, row.import_id, row.uai, row.code, row.severity,
                                        row.record_id, row.message, row.action))
    # People the import refused: in the rejects only, never in the directory.
    refused = (select(AafReject.record_id, AafReject.kind, AafReject.uai,
                      func.max(AafReject.id).label("last"))
               .where(condition, AafReject.kind.in_(PERSON_KINDS), AafReject.record_id != "",
                      AafReject.record_id.not_in(
                          select(Person.aaf_jointure).where(Person.aaf_jointure.is_not(None))))
               .group_by(AafReject.record_id, AafReject.kind, AafReject.uai)
               .order_by(AafReject.record_id).limit(limit)).subquery()
    for record_id, kind, uai, xml in session.execute(
            select(refused.c.record_id, refused.c.kind, refused.c.uai, AafReject.raw_xml)
            .join(AafReject, AafReject.id == refused.c.last).order_by(refused.c.record_id)):
        attributes = record_attributes(xml or "")
        result.people.append(PersonHit(record_id, None, attributes.get("sn", ""),
                                       attributes.get("givenName", ""), kind, "", uai or ""))
        result.people_total += 1
    return result


def best_person_hits(hits: list[PersonHit], text: str) -> list[PersonHit]:
    """The hits ``text`` names best: the one whose jointure or login it is, else those whose
    own name or INE holds it (not those found through a reject that cites the name)."""
    typed = text.strip().casefold()
    exact = [hit for hit in hits if typed in (hit.jointure.casefold(), hit.login.casefold())]
    if exact:
        return exact[:1]
    needles = words(text)
    named = [hit for hit in hits
             if all(word in person_search_text(hit.last_name, hit.first_name, "")
                    for word in needles)]
    return named or hits


# --- one person ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonReject:
    """A reject or warning on the person, explained."""

    import_id: int
    code: str
    severity: str
    where: str
    message: str
    action: str


@dataclass
class PersonFacts:
    """What answers "why can't this person log in", for one day."""

    hit: PersonHit
    day: dt.date
    birth_date: dt.date | None = None
    ine: str = ""
    establishment: str = ""
    absent_since: dt.datetime | None = None
    classes: list[tuple[str, str]] = field(default_factory=list)  # (year label, class code)
    decision: AccessDecision | None = None
    rejects: list[PersonReject] = field(default_factory=list)
    raw_xml: str = ""
    # Their newest year's classes that look like last year's (code, reason), from the
    # step-4 detection (:func:`~yearchange_tui.aaf.classes_n1.likely_previous_year_classes`).
    old_classes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def imported(self) -> bool:
        """True when the person is in the directory (an account exists)."""
        return self.hit.person_id is not None

    @property
    def account(self) -> str:
        """The account state, in French."""
        if not self.imported:
            return "aucun compte : l'import AAF a refusé l'enregistrement"
        if self.absent_since is not None:
            return (f"signalé absent du Complet le {format_local(self.absent_since, '%d/%m/%Y')} "
                    "(compte conservé, non supprimé)")
        return "compte créé, présent dans le dernier import"

    @property
    def access(self) -> str:
        """The access-block answer for :attr:`day`, in French."""
        decision = self.decision
        if decision is None:
            return "sans objet (aucun compte)"
        if decision.blocked:
            return f"⊘ bloqué le {self.day:%d/%m/%Y} ({decision.reason})"
        dates = ""
        if decision.window is not None:
            dates = f" ; blocage {decision.window.describe(self.day)}"
        return f"✓ accès ouvert le {self.day:%d/%m/%Y} ({decision.reason}){dates}"

    @property
    def advice(self) -> str:
        """What to tell the school, built from the facts above."""
        kind = KIND_LABELS.get(self.hit.kind, "utilisateur").capitalize()
        errors = [reject for reject in self.rejects if reject.severity == "erreur"]
        if not self.imported and errors:
            first = errors[0]
            return f"{kind} sans compte : {first.message} {first.action}".strip()
        if self.decision is not None and self.decision.blocked and \
                self.decision.window is not None:
            return (f"{kind} bloqué jusqu'au {self.decision.window.ends_on:%d/%m} : message "
                    f"affiché « {self.decision.message} »")
        if self.old_classes:
            code, reason = self.old_classes[0]
            return (f"{kind} dans la classe {code}, classe N-1 probable ({reason}) : "
                    f"{RULES['AAF-CLASSE-N-1-PROBABLE'].action}")
        if self.absent_since is not None:
            return (f"{kind} absent du dernier Complet AAF (depuis le "
                    f"{format_local(self.absent_since, '%d/%m/%Y')}) : vérifier sa saisie dans SIECLE ou STS ; "
                    "visible 2 à 3 jours après correction.")
        if errors or self.rejects:
            first = (errors or self.rejects)[0]
            return f"{kind} importé avec un rejet : {first.message} {first.action}".strip()
        return (f"{kind} importé, non bloqué, sans rejet : vérifier l'identifiant "
                f"({self.hit.login or '—'}) et le mot de passe.")


def person_facts(session: Session, hit: PersonHit, day: dt.date) -> PersonFacts:
    """The facts of one person found by :func:`find`, for ``day`` (the operator's date)."""
    facts = PersonFacts(hit, day)
    if hit.person_id is not None:
        person = session.get(Person, hit.person_id)
        if person is not None:
            facts.birth_date = person.birth_date
            facts.ine = person.ine or ""
            facts.absent_since = person.disappeared_at
            establishment = (session.get(Establishment, person.establishment_id)
                             if person.establishment_id is not None else None)
            if establishment is not None:
                facts.establishment = f"{establishment.uai} {establishment.name}"
            facts.classes = [(label, code) for label, code in session.execute(
                select(SchoolYear.label, SchoolClass.code)
                .join(SchoolClass, SchoolClass.school_year_id == SchoolYear.id)
                .join(ClassMembership, ClassMembership.class_id == SchoolClass.id)
                .where(ClassMembership.person_id == person.id)
                .order_by(SchoolYear.start_year.desc(), SchoolClass.code))]
            facts.decision = access_decision(session, person.id, day)
            facts.old_classes = _old_classes(session, person.id)
    if hit.jointure:
        rows = list(session.scalars(select(AafReject).where(
            AafReject.record_id == hit.jointure).order_by(AafReject.import_id.desc(),
                                                          AafReject.id)))
        facts.rejects = [PersonReject(row.import_id, row.code, row.severity,
                                      f"{row.file_name}:{row.line}" if row.line
                                      else row.file_name, row.message, row.action)
                         for row in rows]
        facts.raw_xml = next((row.raw_xml for row in rows if row.raw_xml), "")
        if hit.person_id is None and facts.raw_xml:
            # Refused: the class the delivery asked for (« structure$CODE »), not created.
            delivered = record_attributes(facts.raw_xml).get("ENTEleveClasses", "")
            if delivered:
                facts.classes = [("demandée par la livraison, non créée",
                                  delivered.rpartition("$")[2])]
        if not facts.establishment and hit.uai:
            name = session.scalar(select(Establishment.name).where(Establishment.uai == hit.uai))
            facts.establishment = f"{hit.uai} {name or ''}".strip()
    return facts


def _old_classes(session: Session, person_id: int) -> list[tuple[str, str]]:
    """The person's classes of their newest year that the step-4 detection flags as
    « classe N-1 probable » (code, French reason)."""
    rows = session.execute(
        select(SchoolYear.id, SchoolYear.start_year, SchoolClass.establishment_id,
               SchoolClass.code)
        .join(SchoolClass, SchoolClass.school_year_id == SchoolYear.id)
        .join(ClassMembership, ClassMembership.class_id == SchoolClass.id)
        .where(ClassMembership.person_id == person_id)
        .order_by(SchoolYear.start_year.desc())).all()
    if not rows:
        return []
    year_id, start_year = rows[0][0], rows[0][1]
    newest = [(establishment_id, code) for row_year, _start, establishment_id, code in rows
              if row_year == year_id]
    previous = session.scalar(select(SchoolYear.id).where(
        SchoolYear.start_year == start_year - 1))
    flagged: list[tuple[str, str]] = []
    for establishment_id in sorted({establishment_id for establishment_id, _ in newest}):
        findings = {finding.code: finding.reason for finding in likely_previous_year_classes(
            session.connection(), establishment_id, year_id, previous)}
        flagged.extend((code, findings[code]) for where, code in sorted(newest)
                       if where == establishment_id and code in findings)
    return flagged


def _classes_by_year(classes: list[tuple[str, str]]) -> str:
    """« 5EME2 (2026-2027) » or « 2027-2028 : 3C, 3E ; 2026-2027 : 4D » (newest year first)."""
    if not classes:
        return "aucune"
    years: dict[str, list[str]] = {}
    for label, code in classes:
        years.setdefault(label, []).append(code)
    if all(len(codes) == 1 for codes in years.values()):
        return " ; ".join(f"{codes[0]} ({label})" for label, codes in years.items())
    return " ; ".join(f"{label} : {', '.join(codes)}" for label, codes in years.items())


def facts_lines(facts: PersonFacts) -> list[tuple[str, str]]:
    """The person's facts as (label, French text) lines, for the CLI and the console."""
    hit = facts.hit
    name = " ".join(part for part in (hit.last_name, hit.first_name) if part) or "—"
    identity = ", ".join(part for part in (
        KIND_LABELS.get(hit.kind, hit.kind),
        f"né(e) le {facts.birth_date:%d/%m/%Y}" if facts.birth_date else "",
        f"INE {facts.ine}" if facts.ine else "") if part)
    lines = [("Personne", f"{name} ({identity})" if identity else name),
             ("Identifiants", f"jointure {hit.jointure or '—'} · login {hit.login or '—'}"),
             ("Établissement", facts.establishment or "—"),
             ("Compte", facts.account),
             ("Classe", _classes_by_year(facts.classes)),
             *(("Classe N-1 probable", f"{code} : {reason}")
               for code, reason in facts.old_classes),
             ("Accès", facts.access)]
    if facts.decision is not None and facts.decision.blocked and facts.decision.message:
        lines.append(("Message affiché", facts.decision.message))
    if not facts.rejects:
        lines.append(("Rejets", "aucun"))
    for reject in facts.rejects:
        lines.append(("Rejet", (f"{reject.severity} · {reject.code} · import n° "
                               f"{reject.import_id} · {reject.where}")))
        lines.append(("", reject.message))
        if reject.action:
            lines.append(("", f"→ {reject.action}"))
    lines.append(("À dire à l'établissement", facts.advice))
    return lines
