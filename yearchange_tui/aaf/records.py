"""Per-kind normalisation of AAF records: attribute dictionaries, compound values, checks.

A :class:`~yearchange_tui.aaf.parser.RawRecord` becomes a typed row (structure,
subject, MEF or person) plus a list of :class:`Issue` (reject codes with their
attribute and raw value). Checks that need only the record live here; checks
across records or against the database live in :mod:`yearchange_tui.aaf.importer`.

For an ``addRequest`` a missing attribute is an empty value; for a
``modifyRequest`` only the attributes it carries change (``None`` = unchanged).
"""

from __future__ import annotations

import copyreg
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from yearchange_tui.ent.models.enums import PersonKind, Profile

Attributes = Mapping[str, list[str]]
"""A record's attributes: name → values (``""`` for an empty value)."""

# --- attribute dictionaries (background doc §1.5; deprecated and dated companions included) ---

_PERSON_COMMON = frozenset({
    "ENTPersonJointure", "ENTPersonDateNaissance", "ENTPersonNomPatro", "sn", "givenName",
    "ENTPersonAutresPrenoms", "personalTitle", "mail", "ENTPersonMail", "Mail", "homePhone",
    "telephoneNumber", "mobile", "ENTPersonMobileSMS", "ENTPersonAdresse",
    "ENTPersonCodePostal", "ENTPersonVille", "ENTPersonPays", "ENTPersonAdresseDiffusion",
    "ENTPersonStructRattach",
    # AAF 1D names of the same fields.
    "ENTPersonNom", "ENTPersonPrenom", "ENTPersonCivilite", "ENTPersonTelPerso",
})

KNOWN_ATTRIBUTES: dict[str, frozenset[str]] = {
    "EtabEducNat": frozenset({
        "ENTStructureJointure", "ENTStructureUAI", "ENTEtablissementUAI", "ENTStructureSIREN",
        "ENTStructureNomCourant", "ENTStructureTypeStruct", "ENTStructureCodeTypeStruct",
        "ENTEtablissementMinistereTutelle", "ENTEtablissementCodeMinistereTutelle",
        "ENTEtablissementContrat", "postOfficeBox", "street", "postalCode", "l",
        "telephoneNumber", "facsimileTelephoneNumber", "ENTStructureMailSI",
        "ENTEtablissementStructRattachFctl", "ENTEtablissementBassin", "ENTServAcAcademie",
        "ENTServAcCodeAcademie", "ENTServCodeAcAcademie", "ENTStructureClasses",
        "ENTStructureGroupes", "ENTStructureBoitePostale", "ENTStructureAdresse",
        "ENTStructureCodePostal", "ENTStructureVille", "ENTStructureTelephone",
        "ENTStructureFax", "ENTStructureEmail", "ENTEcoleMinistereTutelle",
        "ENTEcoleCodeMinistereTutelle", "ENTEcoleSecteur", "ENTEcoleCirconscription",
        "ENTEcoleCommune", "ENTEcoleRPI",
    }),
    "MatiereEducNat": frozenset({"ENTMatJointure", "ENTLibelleMatiere", "ENTMatiereRattach"}),
    "MefEducNat": frozenset({"ENTMefJointure", "ENTLibelleMef", "ENTMEFRattach", "ENTMEFSTAT11",
                             "ENTNivFormation", "ENTFiliere"}),
    "Eleve": _PERSON_COMMON | frozenset({
        "ENTEleveINE", "ENTEleveStructRattachId", "ENTEleveStructureRattachIdMEN",
        "ENTEleveParents", "ENTElevePere", "ENTEleveMere", "ENTEleveAutoriteParentale",
        "ENTElevePersRelEleve1", "ENTEleveQualitePersRelEleve1", "ENTElevePersRelEleve2",
        "ENTEleveQualitePersRelEleve2", "ENTElevePersRelEleve", "ENTEleveBoursier",
        "ENTEleveRegime", "ENTEleveTransport", "ENTEleveStatutEleve", "ENTEleveMEF",
        "ENTEleveLibelleMEF", "ENTEleveNivFormation", "ENTEleveFiliere",
        "ENTEleveEnseignements", "ENTEleveCodeEnseignements", "ENTEleveClasses",
        "ENTEleveGroupes", "ENTEleveDateEntreeClasses", "ENTEleveDateSortieClasses",
        "ENTEleveDateEntreeStructRattach", "ENTEleveDateSortieStructRattach",
        "ENTEleveAdresseRel", "ENTEleveEnseignementsEtablissementsAccueil",
        "ENTPersonClasses", "ENTPersonGroupes", "ENTEleveNiveau", "ENTEleveCycle",
        "ENTEleveTypeClasse", "ENTEleveRestaurantScolaire", "ENTEleveGarderieMatin",
        "ENTEleveGarderieSoir", "ENTEleveEtudesSurveillees",
    }),
    "PersRelEleve": _PERSON_COMMON | frozenset({
        "ENTAuxPersRelEleveEleve", "ENTPersRelEleveTelPro", "ENTPersRelEleveTelMobile",
        "ENTPersRelEleveEleve",
    }),
    "PersEducNat": _PERSON_COMMON | frozenset({
        "ENTAuxEnsCategoDiscipline", "ENTAuxEnsDisciplinesPoste", "ENTAuxEnsMEF",
        "ENTAuxEnsMatiereEnseignEtab", "ENTAuxEnsClasses", "ENTAuxEnsGroupes",
        "ENTAuxEnsClassesMatieres", "ENTAuxEnsGroupesMatieres", "ENTAuxEnsClassesPrincipal",
        "ENTPersonFonctions", "PersEducNatPresenceDevantEleves", "ENTPersonCategorieEnseignant",
        "ENTEnsFonctionDir", "ENTPersonSTSId", "ENTPersonStructRattachDate",
        "ENTAuxEnsCategoDisciplineDate", "ENTAuxEnsMEFDate", "ENTAuxEnsClassesMatieresDate",
        "ENTAuxEnsGroupesMatieresDate", "ENTAuxEnsClassesPrincipalDate",
        "ENTPersonFonctionsDate", "ENTPersonCategorieEnseignantDate", "ENTEnsSpecialites",
    }),
}
"""Attribute names known per file kind; any other is reported once per name (warning)."""

_PERSON_READ = ("ENTPersonJointure", "sn", "givenName", "personalTitle",
                "ENTPersonDateNaissance", "ENTPersonStructRattach")

EAGER_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "Eleve": (*_PERSON_READ, "ENTEleveINE", "ENTEleveClasses", "ENTEleveGroupes",
              "ENTElevePersRelEleve", "ENTEleveMEF"),
    "PersRelEleve": (*_PERSON_READ, "mail"),
    "PersEducNat": (*_PERSON_READ, "mail", "ENTPersonFonctions", "ENTPersonCategorieEnseignant",
                    "PersEducNatPresenceDevantEleves", "ENTAuxEnsClassesMatieres",
                    "ENTAuxEnsClasses", "ENTAuxEnsGroupesMatieres", "ENTAuxEnsGroupes",
                    "ENTAuxEnsClassesPrincipal"),
}
"""Attributes read from every record of a kind (the others are read only when needed)."""

JOINTURE_ATTRIBUTE = {
    "EtabEducNat": "ENTStructureJointure", "MatiereEducNat": "ENTMatJointure",
    "MefEducNat": "ENTMefJointure", "Eleve": "ENTPersonJointure",
    "PersRelEleve": "ENTPersonJointure", "PersEducNat": "ENTPersonJointure",
}

COMPOUND_FORMS = {
    "ENTEleveClasses": "structure$classe",
    "ENTEleveGroupes": "structure$groupe",
    "ENTAuxEnsClasses": "structure$classe",
    "ENTAuxEnsGroupes": "structure$groupe",
    "ENTAuxEnsClassesPrincipal": "structure$classe",
    "ENTAuxEnsClassesMatieres": "structure$classe$matière",
    "ENTAuxEnsGroupesMatieres": "structure$groupe$matière",
    "ENTElevePersRelEleve": "responsable$lien$financier$légal$contact$paiement",
    "ENTPersonFonctions": "structure$fonction$libellé$discipline$libellé",
    "ENTStructureClasses": "classe$libellé$MEF…",
    "ENTStructureGroupes": "groupe$libellé$classe…",
}
"""Documented ``$`` forms of compound values (shown in explanations)."""

# Staff function code (ENTPersonFonctions field 1) → ENT profile (SDET national profiles).
FUNCTION_PROFILES: dict[str, Profile] = {
    **{code: Profile.TEACHER for code in ("ENS", "FIJ", "FCA", "FCP", "BED", "IS", "ISES",
                                          "PPA", "RH1D", "RPL", "UPI")},
    "DOC": Profile.DOCUMENTALIST,
    **{code: Profile.DIRECTION for code in ("DIR", "DEC", "DECPR", "DSES")},
    **{code: Profile.EDUCATION for code in ("EDU", "AED", "AES", "SUR")},
}

# Structure types that are administrations, not establishments of the ENT.
ADMINISTRATIVE_TYPES = ("RECTORAT", "INSPECTION", "DSDEN", "SERVICES ACADEMIQUES",
                        "SERVICE ACADEMIQUE", "ADMINISTRATION", "MINISTERE")

MAX_LENGTHS = {"last_name": 100, "first_name": 100, "title": 8, "email": 200}
_ATTRIBUTE_OF = {"last_name": "sn", "first_name": "givenName", "title": "personalTitle",
                 "email": "mail"}
MAX_ID_LENGTH = 32
MAX_CODE_LENGTH = 64


@dataclass
class Issue:
    """A problem found in a record: a rule code, the attribute and raw value concerned."""

    code: str
    attribute: str = ""
    value: str = ""
    params: dict[str, object] = field(default_factory=dict)


@dataclass
class StructureRow:
    """A normalised EtabEducNat record."""

    jointure: str
    uai: str
    name: str
    type_label: str
    postal_code: str
    town: str
    academy_code: str
    academy_name: str
    is_school: bool
    classes: dict[str, tuple[str, str]]  # code -> (label, first MEF)
    groups: dict[str, str]  # code -> label
    present: frozenset[str] = frozenset()


@dataclass
class NomenclatureRow:
    """A normalised MatiereEducNat or MefEducNat record."""

    code: str
    label: str
    level_label: str = ""


class RelativeLink(NamedTuple):
    """One relative of a student: ``id$lien$financier$légal$contact$paiement``.

    A named tuple: cheap to build and to send to the importing process.
    """

    relative: str
    link_code: str
    legal: int
    financial: bool
    contact: bool


def _reduce_relative_link(link: RelativeLink) -> tuple[Any, ...]:
    # Unpickled by tuple.__new__ (C) rather than the named tuple's Python __new__: links
    # cross from the reader processes to the importer by the thousand.
    return tuple.__new__, (RelativeLink, tuple(link))


copyreg.pickle(RelativeLink, _reduce_relative_link)


@dataclass
class PersonRow:
    """A normalised person (student, relative, staff).

    ``columns`` holds the ``people`` columns the record sets (all of them for an
    add, only those carried for a modify). Relationship lists are ``None`` when
    the record does not carry them (modify) — they are then left unchanged.
    """

    kind: PersonKind
    jointure: str
    columns: dict[str, object]
    structure: str | None = None  # attachment structure jointure (None: not carried)
    classes: list[tuple[str, str]] | None = None  # (structure, class code)
    groups: list[tuple[str, str]] | None = None
    relatives: list[RelativeLink] | None = None
    mef: str = ""
    function_structures: list[tuple[str, str]] | None = None  # (structure, function code)
    teacher_classes: list[tuple[str, str, str]] | None = None  # (structure, class, subject)
    teacher_groups: list[tuple[str, str, str]] | None = None
    head_classes: list[tuple[str, str]] | None = None
    is_teacher: bool = False

    @property
    def name(self) -> str:
        """``LAST First`` for messages."""
        last = str(self.columns.get("last_name") or "")
        first = str(self.columns.get("first_name") or "")
        return f"{last} {first}".strip()


def values_of(attributes: Attributes, name: str) -> list[str] | tuple[()]:
    """The values of an attribute (``()`` when the record does not carry it)."""
    try:
        return attributes[name]
    except KeyError:
        return ()


def first_value(attributes: Attributes, name: str) -> str:
    """The first non-empty value of an attribute, stripped ("" when none)."""
    for value in values_of(attributes, name):
        stripped = value.strip()
        if stripped:
            return stripped
    return ""


def non_empty(attributes: Attributes, name: str) -> list[str]:
    """The non-empty values of an attribute, stripped."""
    return [stripped for value in values_of(attributes, name) if (stripped := value.strip())]


def parse_date(value: str) -> dt.date | None:
    """Parse ``dd/mm/yyyy`` (or ``yyyy-mm-dd``); raise ValueError when invalid."""
    if len(value) == 10 and value[2] == "/" and value[5] == "/":
        return dt.date(int(value[6:]), int(value[3:5]), int(value[:2]))
    if len(value) == 10 and value[4] == "-" and value[7] == "-":
        return dt.date(int(value[:4]), int(value[5:7]), int(value[8:]))
    raise ValueError(value)


def _pairs(attributes: Attributes, name: str, issues: list[Issue],
           size: int, minimum: int = 2) -> list[tuple[str, ...]]:
    """Split ``$`` compound values into tuples of ``size`` fields (missing ones empty)."""
    result: list[tuple[str, ...]] = []
    for value in values_of(attributes, name):
        stripped = value.strip()
        if not stripped:
            continue
        parts = [part.strip() for part in stripped.split("$")]
        count = len(parts)
        valid = count >= minimum and len(parts[0]) <= MAX_CODE_LENGTH \
            and len(parts[1]) <= MAX_CODE_LENGTH
        if valid:
            for index in range(minimum):
                if not parts[index]:
                    valid = False
                    break
        if not valid:
            issues.append(Issue("AAF-VALEUR-COMPOSEE-INVALIDE", name, stripped,
                                {"expected": COMPOUND_FORMS.get(name, "…$…")}))
            continue
        if count < size:
            parts.extend([""] * (size - count))
        result.append(tuple(parts[:size]))
    return result


def _check_length(columns: dict[str, object], issues: list[Issue]) -> None:
    for column, limit in MAX_LENGTHS.items():
        value = columns.get(column)
        if isinstance(value, str) and len(value) > limit:
            issues.append(Issue("AAF-VALEUR-TRONQUEE", _ATTRIBUTE_OF[column], value,
                                {"detail": limit}))
            columns[column] = value[:limit]


def _person_columns(attributes: Attributes, kind: PersonKind, modify: bool,
                    issues: list[Issue]) -> dict[str, object] | None:
    """The ``people`` columns of a person record, or None when it is refused."""
    columns: dict[str, object] = {}
    present = attributes.keys()
    if not modify or "sn" in present or "ENTPersonNom" in present:
        last = first_value(attributes, "sn") or first_value(attributes, "ENTPersonNom")
        if not last:
            issues.append(Issue("AAF-NOM-MANQUANT", "sn", ""))
            return None
        columns["last_name"] = last
    if not modify or "givenName" in present or "ENTPersonPrenom" in present:
        first = first_value(attributes, "givenName") or first_value(attributes, "ENTPersonPrenom")
        if not first:
            issues.append(Issue("AAF-PRENOM-MANQUANT", "givenName", ""))
            return None
        columns["first_name"] = first
    if not modify or "personalTitle" in present or "ENTPersonCivilite" in present:
        columns["title"] = (first_value(attributes, "personalTitle")
                            or first_value(attributes, "ENTPersonCivilite"))
    email_attribute = ("mail" if "mail" in present else
                       "ENTPersonMail" if "ENTPersonMail" in present else
                       "Mail" if "Mail" in present else None)
    if not modify or email_attribute is not None:
        columns["email"] = first_value(attributes, email_attribute) if email_attribute else ""
    if not modify or "ENTPersonDateNaissance" in present:
        raw_birth = first_value(attributes, "ENTPersonDateNaissance")
        birth: dt.date | None = None
        if raw_birth:
            try:
                birth = parse_date(raw_birth)
            except ValueError:
                if kind is PersonKind.STUDENT:
                    issues.append(Issue("AAF-NAISSANCE-INVALIDE", "ENTPersonDateNaissance",
                                        raw_birth))
                    return None
                issues.append(Issue("AAF-DATE-INVALIDE", "ENTPersonDateNaissance", raw_birth))
        elif kind is PersonKind.STUDENT:
            issues.append(Issue("AAF-NAISSANCE-MANQUANTE", "ENTPersonDateNaissance", ""))
            return None
        columns["birth_date"] = birth
    if kind is PersonKind.STUDENT and (not modify or "ENTEleveINE" in present):
        ine = first_value(attributes, "ENTEleveINE").upper()
        if len(ine) > 16:
            issues.append(Issue("AAF-VALEUR-COMPOSEE-INVALIDE", "ENTEleveINE", ine,
                                {"expected": "INE de 11 caractères"}))
            ine = ""
        elif not ine:
            # Seed §3.5: INEs must be filled, or accounts clash at the SIECLE switch-over.
            issues.append(Issue("AAF-INE-MANQUANT", "ENTEleveINE", ""))
        columns["ine"] = ine or None
    if len(columns.get("last_name") or "") > 100 or len(columns.get("first_name") or "") > 100 \
            or len(columns.get("title") or "") > 8 or len(columns.get("email") or "") > 200:
        _check_length(columns, issues)
    return columns


def _structure_of(attributes: Attributes, modify: bool) -> str | None:
    if modify and "ENTPersonStructRattach" not in attributes:
        return None
    return first_value(attributes, "ENTPersonStructRattach")


def normalise_student(attributes: Attributes, jointure: str, modify: bool,
                      issues: list[Issue]) -> PersonRow | None:
    """Normalise an Eleve record (None when refused; ``issues`` say why)."""
    columns = _person_columns(attributes, PersonKind.STUDENT, modify, issues)
    if columns is None:
        return None
    row = PersonRow(PersonKind.STUDENT, jointure, columns, _structure_of(attributes, modify))
    present = attributes.keys()
    if not modify or "ENTEleveClasses" in present:
        row.classes = [(s, c) for s, c in _pairs(attributes, "ENTEleveClasses", issues, 2)]
    if not modify or "ENTEleveGroupes" in present:
        row.groups = [(s, g) for s, g in _pairs(attributes, "ENTEleveGroupes", issues, 2)]
    relative_attributes = ("ENTElevePersRelEleve", "ENTEleveAutoriteParentale", "ENTElevePere",
                           "ENTEleveMere", "ENTElevePersRelEleve1", "ENTElevePersRelEleve2")
    if not modify or any(name in present for name in relative_attributes):
        row.relatives = relative_links(attributes, issues)
    row.mef = first_value(attributes, "ENTEleveMEF")
    return row


def _flag(value: str) -> bool:
    return value.strip() in ("1", "O", "o", "true")


def relative_links(attributes: Attributes, issues: list[Issue]) -> list[RelativeLink]:
    """The relatives of a student record (``ENTElevePersRelEleve``, else the older attributes)."""
    links: dict[str, RelativeLink] = {}
    for parts in _pairs(attributes, "ENTElevePersRelEleve", issues, 6, minimum=4):
        relative, link_code, financial, legal, contact = parts[:5]
        try:
            legal_level = int(legal or 0)
        except ValueError:
            issues.append(Issue("AAF-VALEUR-COMPOSEE-INVALIDE", "ENTElevePersRelEleve",
                                "$".join(parts),
                                {"expected": COMPOUND_FORMS["ENTElevePersRelEleve"]}))
            continue
        if relative not in links and len(relative) <= MAX_ID_LENGTH:
            links[relative] = RelativeLink(relative, link_code[:4], legal_level, _flag(financial),
                                           _flag(contact))
    if links:
        return list(links.values())
    # Older exports: the deprecated single attributes.
    legal_ids = set(non_empty(attributes, "ENTEleveAutoriteParentale"))
    for name, code in (("ENTElevePere", "1"), ("ENTEleveMere", "2")):
        for relative in non_empty(attributes, name):
            if relative not in links and len(relative) <= MAX_ID_LENGTH:
                links[relative] = RelativeLink(relative, code, 1 if relative in legal_ids else 0,
                                               False, True)
    for relative in legal_ids:
        if relative not in links and len(relative) <= MAX_ID_LENGTH:
            links[relative] = RelativeLink(relative, "", 1, False, True)
    for position in (1, 2):
        quality = first_value(attributes, f"ENTEleveQualitePersRelEleve{position}").upper()
        for relative in non_empty(attributes, f"ENTElevePersRelEleve{position}"):
            if relative not in links and len(relative) <= MAX_ID_LENGTH:
                links[relative] = RelativeLink(relative, "", 0, quality == "FINANCIER", True)
    return list(links.values())


def normalise_relative(attributes: Attributes, jointure: str, modify: bool,
                       issues: list[Issue]) -> PersonRow | None:
    """Normalise a PersRelEleve record (None when refused)."""
    columns = _person_columns(attributes, PersonKind.RELATIVE, modify, issues)
    if columns is None:
        return None
    return PersonRow(PersonKind.RELATIVE, jointure, columns)


def normalise_staff(attributes: Attributes, jointure: str, modify: bool,
                    issues: list[Issue]) -> PersonRow | None:
    """Normalise a PersEducNat record (None when refused)."""
    present = attributes.keys()
    functions: list[tuple[str, str]] = []
    function_codes: set[str] = set()
    for parts in _pairs(attributes, "ENTPersonFonctions", issues, 5):
        functions.append((parts[0], parts[1]))
        function_codes.add(parts[1])
    category = first_value(attributes, "ENTPersonCategorieEnseignant").upper()
    in_front = first_value(attributes, "PersEducNatPresenceDevantEleves").upper()
    if category in ("O", "N"):
        is_teacher = category == "O"
    elif in_front in ("O", "N"):
        is_teacher = in_front == "O"
    else:
        is_teacher = bool(function_codes & {"ENS", "DOC"})
    kind = PersonKind.TEACHER if is_teacher else PersonKind.STAFF
    columns = _person_columns(attributes, kind, modify, issues)
    if columns is None:
        return None
    teacher_attributes = ("ENTPersonCategorieEnseignant", "PersEducNatPresenceDevantEleves",
                          "ENTPersonFonctions")
    if not modify or any(name in present for name in teacher_attributes):
        columns["kind"] = kind
    row = PersonRow(kind, jointure, columns, _structure_of(attributes, modify),
                    is_teacher=is_teacher)
    if not modify or "ENTPersonFonctions" in present:
        row.function_structures = functions
    if not modify or "ENTAuxEnsClassesMatieres" in present or "ENTAuxEnsClasses" in present:
        row.teacher_classes = _teacher_links(attributes, issues, "ENTAuxEnsClassesMatieres",
                                             "ENTAuxEnsClasses")
    if not modify or "ENTAuxEnsGroupesMatieres" in present or "ENTAuxEnsGroupes" in present:
        row.teacher_groups = _teacher_links(attributes, issues, "ENTAuxEnsGroupesMatieres",
                                            "ENTAuxEnsGroupes")
    if not modify or "ENTAuxEnsClassesPrincipal" in present:
        row.head_classes = [(s, c) for s, c in _pairs(attributes, "ENTAuxEnsClassesPrincipal",
                                                      issues, 2)]
    return row


def _teacher_links(attributes: Attributes, issues: list[Issue], with_subject: str,
                   plain: str) -> list[tuple[str, str, str]]:
    """A teacher's ``(structure, class or group, subject)`` links.

    The ``…Matieres`` values first, then the pairs only the plain attribute carries
    (no subject).
    """
    links: list[tuple[str, str, str]] = _pairs(attributes, with_subject, issues, 3)  # type: ignore[assignment]
    known = {(structure, code) for structure, code, _ in links}
    for structure, code in _pairs(attributes, plain, issues, 2):
        if (structure, code) not in known:
            known.add((structure, code))
            links.append((structure, code, ""))
    return links


def is_administrative(type_label: str) -> bool:
    """True for a rectorat, inspection or other administration (not an ENT establishment)."""
    upper = type_label.upper()
    return any(word in upper for word in ADMINISTRATIVE_TYPES)


def normalise_structure(attributes: Attributes, jointure: str, modify: bool,
                        issues: list[Issue]) -> StructureRow:
    """Normalise an EtabEducNat record (the UAI is checked by the importer)."""
    uai = (first_value(attributes, "ENTStructureUAI")
           or first_value(attributes, "ENTEtablissementUAI")).upper()
    raw_name = first_value(attributes, "ENTStructureNomCourant")
    parts = [part.strip() for part in raw_name.split("$")]
    name = (parts[1] if len(parts) >= 3 and parts[1] else " ".join(p for p in parts if p))
    type_label = first_value(attributes, "ENTStructureTypeStruct")
    classes: dict[str, tuple[str, str]] = {}
    for value in non_empty(attributes, "ENTStructureClasses"):
        fields = [field_.strip() for field_ in value.split("$")]
        if not fields[0] or len(fields[0]) > MAX_CODE_LENGTH:
            issues.append(Issue("AAF-VALEUR-COMPOSEE-INVALIDE", "ENTStructureClasses", value,
                                {"expected": COMPOUND_FORMS["ENTStructureClasses"]}))
            continue
        label = fields[1] if len(fields) > 1 else ""
        mef = next((f for f in fields[2:] if f), "")
        classes[fields[0]] = (label[:200], mef[:16])
    groups: dict[str, str] = {}
    for value in non_empty(attributes, "ENTStructureGroupes"):
        fields = [field_.strip() for field_ in value.split("$")]
        if not fields[0] or len(fields[0]) > MAX_CODE_LENGTH:
            issues.append(Issue("AAF-VALEUR-COMPOSEE-INVALIDE", "ENTStructureGroupes", value,
                                {"expected": COMPOUND_FORMS["ENTStructureGroupes"]}))
            continue
        groups[fields[0]] = (fields[1] if len(fields) > 1 else "")[:200]
    academy_code = (first_value(attributes, "ENTServAcCodeAcademie")
                    or first_value(attributes, "ENTServCodeAcAcademie"))
    return StructureRow(
        jointure, uai, (name or uai or jointure)[:200], type_label[:100],
        (first_value(attributes, "postalCode")
         or first_value(attributes, "ENTStructureCodePostal"))[:10],
        (first_value(attributes, "l") or first_value(attributes, "ENTStructureVille"))[:100],
        academy_code, first_value(attributes, "ENTServAcAcademie"),
        not is_administrative(type_label), classes, groups,
        frozenset(attributes) if modify else frozenset())


def normalise_subject(attributes: Attributes, code: str) -> NomenclatureRow:
    """Normalise a MatiereEducNat record."""
    return NomenclatureRow(code, (first_value(attributes, "ENTLibelleMatiere") or code)[:200])


def normalise_mef(attributes: Attributes, code: str) -> NomenclatureRow:
    """Normalise a MefEducNat record."""
    return NomenclatureRow(code, (first_value(attributes, "ENTLibelleMef") or code)[:200],
                           first_value(attributes, "ENTNivFormation")[:200])
