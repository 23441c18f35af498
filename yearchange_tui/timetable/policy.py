"""The seed's timetable version policy (§2.1, §2.2.3; product.md), with stable outcomes.

| product | supported | once activated for the project | accepted, "not supported" | refused |
|---|---|---|---|---|
| EDT (Index Education) | 2019, 2020 | 2021 | 2018 | 2017 and older |
| UDT (UnDeuxTemps) | v25, v26 | v27 (« UDT 2021 ») | v24 | v23 and older |

The version is read from the file where the format carries it (EDT encrypted
container: the product year in ``LOGICIEL``); otherwise (clear EDT payload, UDT,
STS-web) the policy applies to the establishment's declaration: the software and version
recorded from its first manual import or set with ``timetable-version set``
(:func:`choose_declaration`). An import with neither is refused (the policy applies to
every import, seed §2.2.3), so the same export gets the same answer with or without
``--version``; a ``--version`` that contradicts the declaration is refused too. A
version newer than the policy knows is a warning. The verdict (:class:`VersionVerdict`)
is computed and shown before anything is written.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

EDT = "EDT"
UDT = "UDT"

# UDT versions are also named by year: « UDT 2021 (v27) » (seed §2.2).
UDT_YEAR_OFFSET = 2021 - 27

EDT_SUPPORTED = (2019, 2020)
EDT_ON_ACTIVATION = (2021,)
EDT_UNSUPPORTED = (2018,)
UDT_SUPPORTED = (25, 26)
UDT_ON_ACTIVATION = (27,)
UDT_UNSUPPORTED = (24,)

_DECLARED = re.compile(
    r"^\s*(?P<product>edt|udt|pronote)?[\s_-]*v?(?P<number>\d{2,4})\s*$", re.IGNORECASE)
_LOGICIEL_YEAR = re.compile(r"\b(?:EDT|PRONOTE|EMPLOI DU TEMPS)\b\D{0,40}?((?:19|20)\d{2})\b",
                            re.IGNORECASE)


class VersionError(ValueError):
    """A declared version that cannot be read (French message)."""


class Outcome(enum.StrEnum):
    """Stable outcome of the version policy."""

    SUPPORTED = "supportee"
    ACTIVATED = "supportee-activee"  # newest version, activated for the project
    NOT_ACTIVATED = "non-activee"  # newest version, not yet activated: refused
    UNSUPPORTED = "non-supportee"  # accepted with a warning
    TOO_OLD = "trop-ancienne"  # refused
    UNKNOWN = "inconnue"  # newer than the policy knows: warning
    UNDECLARED = "non-declaree"  # not in the file and not declared: warning


OUTCOME_LABELS = {
    Outcome.SUPPORTED: "✓ supportée",
    Outcome.ACTIVATED: "✓ supportée (activée pour le projet)",
    Outcome.NOT_ACTIVATED: "⊘ refusée : pas encore activée pour le projet",
    Outcome.UNSUPPORTED: "! acceptée sans garantie : plus supportée",
    Outcome.TOO_OLD: "⊘ refusée : trop ancienne",
    Outcome.UNKNOWN: "! version inconnue de la politique : import sans garantie",
    Outcome.UNDECLARED: "⊘ refusée : version ni lue dans le fichier ni déclarée pour "
                        "l'établissement",
}

# Outcome → the code stored (warning) or raised (refusal).
OUTCOME_CODES = {
    Outcome.NOT_ACTIVATED: "EDT-VERSION-NON-ACTIVEE",
    Outcome.UNSUPPORTED: "EDT-VERSION-NON-SUPPORTEE",
    Outcome.TOO_OLD: "EDT-VERSION-TROP-ANCIENNE",
    Outcome.UNKNOWN: "EDT-VERSION-INCONNUE",
    Outcome.UNDECLARED: "EDT-VERSION-A-DECLARER",
}
REFUSED = (Outcome.NOT_ACTIVATED, Outcome.TOO_OLD, Outcome.UNDECLARED)

DECLARATION_CONFLICT = "EDT-VERSION-DECLARATION-DIFFERENTE"
"""Refusal: a ``--version`` or an export of another software than the declaration."""
SOURCE_ESTABLISHMENT = "déclaration"  # the establishment's, stored
SOURCE_OPERATOR = "déclarée"


@dataclass(frozen=True)
class TimetableVersion:
    """A product version: EDT by year, UDT by version number.

    Attributes:
        product: ``EDT`` or ``UDT``.
        number: the EDT year (2020) or the UDT version (26).
        source: ``fichier`` (read from the export) or ``déclarée`` (given on import).
    """

    product: str
    number: int
    source: str = "déclarée"

    @property
    def label(self) -> str:
        """« EDT 2020 » or « UDT 26 (2020) »."""
        if self.product == UDT:
            return f"UDT {self.number} ({self.number + UDT_YEAR_OFFSET})"
        return f"EDT {self.number}"


@dataclass(frozen=True)
class VersionVerdict:
    """What the policy says about one import, before anything is written."""

    outcome: Outcome
    version: TimetableVersion | None
    product: str  # the product the policy was applied to (EDT, UDT, or "" for STS undeclared)
    declared: TimetableVersion | None = None
    mismatch: bool = False  # a declaration that differs from the file's version

    @property
    def accepted(self) -> bool:
        """False when the import is refused."""
        return self.outcome not in REFUSED

    @property
    def code(self) -> str | None:
        """The warning or refusal code (None when supported)."""
        return OUTCOME_CODES.get(self.outcome)

    @property
    def label(self) -> str:
        """French line for the operator."""
        if self.version is None:
            return f"version {self.product or 'du logiciel'} — {OUTCOME_LABELS[self.outcome]}"
        return f"{self.version.label}, {self.version.source} — {OUTCOME_LABELS[self.outcome]}"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {"outcome": self.outcome.value, "accepted": self.accepted, "code": self.code,
                "version": self.version.label if self.version else None,
                "source": self.version.source if self.version else None,
                "declared": self.declared.label if self.declared else None,
                "mismatch": self.mismatch, "label": self.label}


def supported_summary(product: str) -> str:
    """« EDT 2019, EDT 2020 (EDT 2021 une fois activée) » for messages."""
    if product == UDT:
        return "UDT 25, UDT 26 (UDT 27 une fois activée ; UDT 24 sans garantie)"
    return "EDT 2019, EDT 2020 (EDT 2021 une fois activée ; EDT 2018 sans garantie)"


def parse_declared_version(text: str, product: str | None) -> TimetableVersion:
    """Read an operator's declaration: ``2020``, ``EDT 2020``, ``26``, ``v26``, ``UDT 2021``.

    Args:
        text: what the operator typed.
        product: the export's product (``EDT``, ``UDT``), None for STS-web files (which
            any software may have produced: the product must then be named, unless
            the number says it).

    Raises:
        VersionError: when the text is not a version.
    """
    match = _DECLARED.match(text or "")
    if match is None:
        raise VersionError(f"version « {text} » illisible : attendu par exemple « EDT 2020 », "
                           "« 2020 », « UDT 26 » ou « 26 »")
    named = (match.group("product") or "").upper()
    if named == "PRONOTE":
        named = EDT
    number = int(match.group("number"))
    chosen = named or product
    if chosen is None:
        if number < 100:
            chosen = UDT
        else:
            raise VersionError(f"version « {text} » ambiguë pour un fichier STS-web : préciser "
                               "le logiciel (« EDT 2020 » ou « UDT 26 »)")
    if product is not None and named and named != product:
        raise VersionError(f"version « {text} » déclarée pour {named} alors que le fichier est "
                           f"un export {product}")
    if chosen == UDT and number >= 1900:
        number -= UDT_YEAR_OFFSET
    if chosen == EDT and number < 1900:
        raise VersionError(f"version « {text} » : une version EDT est une année (« EDT 2020 »)")
    return TimetableVersion(chosen, number, "déclarée")


class DeclarationConflict(ValueError):
    """The import contradicts the establishment's declaration (French ``value``/``detail``)."""

    def __init__(self, value: str, detail: str) -> None:
        super().__init__(f"{value} ≠ {detail}")
        self.value = value
        self.detail = detail


def choose_declaration(product: str | None, operator: TimetableVersion | None,
                       stored: TimetableVersion | None) -> TimetableVersion | None:
    """The declaration the policy applies to when the file does not carry its version.

    Args:
        product: the export's product (``EDT``, ``UDT``), None for STS-web files.
        operator: the operator's ``--version``, if any.
        stored: the establishment's declaration, if any.

    Raises:
        DeclarationConflict: the export is of another software than the declaration, or
            ``--version`` contradicts it.
    """
    if stored is None:
        return operator
    if product and stored.product != product:
        raise DeclarationConflict(f"un export {product}", stored.label)
    if operator is not None and (operator.product, operator.number) != (stored.product,
                                                                         stored.number):
        raise DeclarationConflict(f"--version {operator.label}", stored.label)
    return stored


def edt_version_from_logiciel(logiciel: str) -> TimetableVersion | None:
    """The product year of an EDT container's ``LOGICIEL`` (« … EDT 2020 - 1.0.3 »).

    PRONOTE exports use the same container and the same yearly releases; their year
    is taken the same way. None when no year can be read.
    """
    found = _LOGICIEL_YEAR.findall(logiciel or "")
    if not found:
        return None
    return TimetableVersion(EDT, int(found[-1]), "fichier")


def evaluate(product: str, detected: TimetableVersion | None,
             declared: TimetableVersion | None, *, newest_enabled: bool) -> VersionVerdict:
    """Apply the policy.

    Args:
        product: the export's product (``EDT``, ``UDT``), or ``""`` for STS-web files.
        detected: the version read from the file, if the format carries one.
        declared: the operator's declaration, if any.
        newest_enabled: the project's ``newest_timetable_versions_enabled``.
    """
    version = detected or declared
    mismatch = bool(detected and declared and (detected.product, detected.number)
                    != (declared.product, declared.number))
    if version is None:
        return VersionVerdict(Outcome.UNDECLARED, None, product, declared)
    if version.product == UDT:
        supported, newest, unsupported = UDT_SUPPORTED, UDT_ON_ACTIVATION, UDT_UNSUPPORTED
    else:
        supported, newest, unsupported = EDT_SUPPORTED, EDT_ON_ACTIVATION, EDT_UNSUPPORTED
    number = version.number
    if number in supported:
        outcome = Outcome.SUPPORTED
    elif number in newest:
        outcome = Outcome.ACTIVATED if newest_enabled else Outcome.NOT_ACTIVATED
    elif number in unsupported:
        outcome = Outcome.UNSUPPORTED
    elif number < min(unsupported):
        outcome = Outcome.TOO_OLD
    else:
        outcome = Outcome.UNKNOWN
    return VersionVerdict(outcome, version, version.product, declared, mismatch)


def policy_table() -> list[dict[str, str]]:
    """The policy as rows (product, version, outcome without and with activation)."""
    rows = []
    for product, numbers in ((EDT, range(2016, 2023)), (UDT, range(22, 29))):
        for number in numbers:
            version = TimetableVersion(product, number)
            off = evaluate(product, None, version, newest_enabled=False)
            on = evaluate(product, None, version, newest_enabled=True)
            rows.append({"version": version.label, "sans_activation": off.outcome.value,
                         "avec_activation": on.outcome.value})
    return rows
