"""Reject rules shared by the importers: severities, the rule record, the rule book.

Each importer (:mod:`yearchange_tui.aaf.rules`, :mod:`yearchange_tui.timetable.rules`)
lists its own rules, with stable codes and French templates, and exposes them through a
:class:`RuleBook`. Both store their rejects in the same table, hence one severity scale.
"""

from __future__ import annotations

import enum
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


class Severity(enum.StrEnum):
    """How serious a reject is (stored as its French word)."""

    FILE = "fichier"
    ERROR = "erreur"
    WARNING = "avertissement"
    INFO = "information"


# How a reject's severity reads in lists (CLI and console): glyph and word.
SEVERITY_LABELS = {Severity.ERROR.value: "✗ erreur", Severity.WARNING.value: "! avertissement",
                   Severity.INFO.value: "i information"}


@dataclass(frozen=True)
class Rule:
    """One validation rule.

    Attributes:
        code: the stable code (``AAF-NAISSANCE-MANQUANTE``).
        severity: what happens to the record or the delivery.
        title: a short French label.
        explanation: French template of the explanation (``{record}``, ``{value}``…).
        action: French template of what support staff should do.
    """

    code: str
    severity: Severity
    title: str
    explanation: str
    action: str


class _Missing(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return "?"


# French contracts « de » and « à » with the articles « le » and « les »: a template
# saying « de {record} » filled with « le personnel … » must read « du personnel … ».
_CONTRACTIONS = (("de ", "le ", "du "), ("de ", "les ", "des "), ("à ", "le ", "au "),
                 ("à ", "les ", "aux "))


def _contract(text: str, value: str) -> tuple[str, str]:
    """``text`` followed by ``value``, with « de le » / « à les »… contracted at the seam."""
    for preposition, article, contracted in _CONTRACTIONS:
        if value.startswith(article) and (text == preposition or text.endswith(
                (" " + preposition, "\n" + preposition, "(" + preposition))):
            return text[:-len(preposition)], contracted + value[len(article):]
    return text, value


def format_template(template: str, params: Mapping[str, object]) -> str:
    """Fill a French explanation or action template; a missing value shows as ``?``.

    A preposition « de » or « à » followed by a value starting with the article « le »
    or « les » is contracted (« du », « des », « au », « aux »).
    """
    values = _Missing({key: "" if value is None else value for key, value in params.items()})
    formatter = string.Formatter()
    text = ""
    for literal, field, spec, conversion in formatter.parse(template):
        text += literal
        if field is None:
            continue
        value, _ = formatter.get_field(field, (), values)
        if conversion:
            value = formatter.convert_field(value, conversion)
        rendered = formatter.format_field(value, formatter.vformat(spec or "", (), values))
        text, rendered = _contract(text, rendered)
        text += rendered
    return text


class RuleBook:
    """An importer's rules, in documentation order, looked up by code.

    Attributes:
        rules: every rule by code, in documentation order.
    """

    def __init__(self, rules: Iterable[Rule]) -> None:
        self._rule_list = tuple(rules)
        self.rules: Mapping[str, Rule] = {rule.code: rule for rule in self._rule_list}

    def explain(self, code: str, **params: object) -> tuple[str, str]:
        """Return the French explanation and suggested action of a reject.

        Args:
            code: a code of the book.
            **params: values for the templates (``record``, ``value``, ``attribute``…);
                a missing one is shown as ``?``.

        Returns:
            ``(explanation, action)``.
        """
        rule = self.rules[code]
        return format_template(rule.explanation, params), format_template(rule.action, params)

    def severity_of(self, code: str) -> Severity:
        """The severity of a code."""
        return self.rules[code].severity

    def table(self) -> list[dict[str, str]]:
        """The documented table (code, severity, title, explanation template, action)."""
        return [{"code": rule.code, "severity": rule.severity.value, "title": rule.title,
                 "explanation": rule.explanation, "action": rule.action}
                for rule in self._rule_list]


def table_line(row: Mapping[str, str]) -> str:
    """One row of :meth:`RuleBook.table` as a line of the printed list (code, severity, title)."""
    return f"{row['code']:<34} {row['severity']:<14} {row['title']}"
