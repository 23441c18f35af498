"""The French of every reject template: rendered over all codes, it reads as correct French.

No « de le », « de les », « à le », « à les » (French contracts them), and a count agrees
with its noun. Support staff read these sentences by the hundred in September.
"""

from __future__ import annotations

import re

import pytest

from yearchange_tui.aaf.rejects import KIND_LABELS
from yearchange_tui.aaf.rules import RULES as AAF_RULES
from yearchange_tui.aaf.rules import explain as aaf_explain
from yearchange_tui.french import plural
from yearchange_tui.importing.rules import format_template
from yearchange_tui.timetable.rules import RULES as TIMETABLE_RULES
from yearchange_tui.timetable.rules import explain as timetable_explain

UNCONTRACTED = re.compile(r"\b(de|à|De|À) (le|les) ", re.UNICODE)
# A count of one with a plural noun, or two with a singular one (« 1 occurrences »).
DISAGREEING = re.compile(r"\b1 occurrences\b|\b[2-9] occurrence\b")

RECORDS = [f"{label} 1234" for label in KIND_LABELS.values()] + [
    "les cours du lundi", "le cours 6A MATHS", "l'enregistrement"]


def _params(record: str, count: int) -> dict[str, object]:
    return {"record": record, "Record": record[:1].upper() + record[1:],
            "name": "DUPONT Marie", "value": "le groupe 3A", "attribute": "sn",
            "kind": "Eleve", "uai": "0421234A", "request": "de modification (modifyRequest)",
            "detail": "le libellé", "other": "le personnel 99", "expected": "les trois champs",
            "count": count, "occurrences": plural(count, "occurrence"), "what": "le cours",
            "year": "2026-2027", "courses": count, "services": count, "groups": count}


@pytest.mark.parametrize(("rules", "explain"), [(AAF_RULES, aaf_explain),
                                                 (TIMETABLE_RULES, timetable_explain)],
                         ids=["aaf", "emploi-du-temps"])
def test_every_reject_template_reads_as_french(rules, explain) -> None:
    faults = []
    for code in rules:
        for record in RECORDS:
            for count in (1, 3):
                for text in explain(code, **_params(record, count)):
                    if UNCONTRACTED.search(text) or DISAGREEING.search(text) or "(s)" in text:
                        faults.append(f"{code}: {text}")
    assert faults == []


def test_staff_reference_to_an_unknown_structure_reads_du_personnel() -> None:
    message, _ = aaf_explain("AAF-REFERENCE-STRUCTURE-INCONNUE", record="le personnel 12",
                             attribute="ENTPersonFonctions", value="0999999Z")
    assert message.startswith("L'attribut ENTPersonFonctions du personnel 12 cite")
    message, _ = aaf_explain("AAF-ATTRIBUT-INCONNU", record="l'élève 7", attribute="x",
                             kind="Eleve", occurrences=plural(1, "occurrence"))
    assert "(1 occurrence, la première dans l'élève 7)" in message


def test_contraction_only_at_a_value_seam() -> None:
    assert format_template("à {x} et de {y}", {"x": "les élèves", "y": "le MEF"}) \
        == "aux élèves et du MEF"
    # A pronoun written in the template itself is left alone (« de le faire »).
    assert format_template("Merci de le faire pour {x}", {"x": "la classe"}) \
        == "Merci de le faire pour la classe"
    assert format_template("de {x}", {"x": "l'élève"}) == "de l'élève"
