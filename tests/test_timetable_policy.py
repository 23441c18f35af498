"""The seed's timetable version policy: every row, declarations, the EDT LOGICIEL year."""

from __future__ import annotations

import pytest

from yearchange_tui.timetable.policy import (
    EDT,
    UDT,
    Outcome,
    TimetableVersion,
    VersionError,
    edt_version_from_logiciel,
    evaluate,
    parse_declared_version,
    policy_table,
)

ROWS = [
    # (product, number, outcome without activation, outcome with activation)
    (EDT, 2016, Outcome.TOO_OLD, Outcome.TOO_OLD),
    (EDT, 2017, Outcome.TOO_OLD, Outcome.TOO_OLD),
    (EDT, 2018, Outcome.UNSUPPORTED, Outcome.UNSUPPORTED),
    (EDT, 2019, Outcome.SUPPORTED, Outcome.SUPPORTED),
    (EDT, 2020, Outcome.SUPPORTED, Outcome.SUPPORTED),
    (EDT, 2021, Outcome.NOT_ACTIVATED, Outcome.ACTIVATED),
    (EDT, 2023, Outcome.UNKNOWN, Outcome.UNKNOWN),
    (UDT, 23, Outcome.TOO_OLD, Outcome.TOO_OLD),
    (UDT, 24, Outcome.UNSUPPORTED, Outcome.UNSUPPORTED),
    (UDT, 25, Outcome.SUPPORTED, Outcome.SUPPORTED),
    (UDT, 26, Outcome.SUPPORTED, Outcome.SUPPORTED),
    (UDT, 27, Outcome.NOT_ACTIVATED, Outcome.ACTIVATED),
    (UDT, 28, Outcome.UNKNOWN, Outcome.UNKNOWN),
]


@pytest.mark.parametrize(("product", "number", "without", "with_activation"), ROWS)
def test_every_policy_row(product: str, number: int, without: Outcome,
                          with_activation: Outcome) -> None:
    version = TimetableVersion(product, number)
    off = evaluate(product, None, version, newest_enabled=False)
    on = evaluate(product, None, version, newest_enabled=True)
    assert (off.outcome, on.outcome) == (without, with_activation)
    refused = {Outcome.TOO_OLD, Outcome.NOT_ACTIVATED}
    assert off.accepted is (without not in refused)
    assert on.accepted is (with_activation not in refused)
    if without is Outcome.SUPPORTED:
        assert off.code is None
    else:
        assert off.code is not None and off.code.startswith("EDT-VERSION-")


def test_undeclared_is_refused() -> None:
    """The policy applies to every import (seed §2.2.3): no version, no import."""
    verdict = evaluate(UDT, None, None, newest_enabled=False)
    assert verdict.outcome is Outcome.UNDECLARED and not verdict.accepted
    assert verdict.code == "EDT-VERSION-A-DECLARER"
    assert "ni déclarée" in verdict.label


def test_the_file_wins_over_the_declaration() -> None:
    detected = TimetableVersion(EDT, 2017, "fichier")
    declared = TimetableVersion(EDT, 2020)
    verdict = evaluate(EDT, detected, declared, newest_enabled=False)
    assert verdict.outcome is Outcome.TOO_OLD and verdict.mismatch
    assert verdict.version == detected


@pytest.mark.parametrize(("text", "product", "expected"), [
    ("2020", EDT, (EDT, 2020)),
    ("EDT 2019", EDT, (EDT, 2019)),
    ("edt-2021", None, (EDT, 2021)),
    ("PRONOTE 2020", EDT, (EDT, 2020)),
    ("26", UDT, (UDT, 26)),
    ("v27", UDT, (UDT, 27)),
    ("UDT 2021", UDT, (UDT, 27)),
    ("udt24", None, (UDT, 24)),
    ("25", None, (UDT, 25)),
])
def test_declarations(text: str, product: str | None, expected: tuple[str, int]) -> None:
    version = parse_declared_version(text, product)
    assert (version.product, version.number) == expected
    assert version.source == "déclarée"


@pytest.mark.parametrize(("text", "product"), [
    ("deux mille vingt", EDT), ("2020", None), ("UDT 26", EDT), ("26", EDT), ("", UDT)])
def test_bad_declarations(text: str, product: str | None) -> None:
    with pytest.raises(VersionError):
        parse_declared_version(text, product)


def test_logiciel_year() -> None:
    assert edt_version_from_logiciel("PRONOTE Monoposte-PRONOTE 2013 - 0.5.14") == \
        TimetableVersion(EDT, 2013, "fichier")
    assert edt_version_from_logiciel("EDT Monoposte-EDT 2020 - 1.0.0").number == 2020
    assert edt_version_from_logiciel("Index Education") is None


def test_policy_table_lists_both_products() -> None:
    rows = {row["version"]: row for row in policy_table()}
    assert rows["EDT 2021"] == {"version": "EDT 2021", "sans_activation": "non-activee",
                                "avec_activation": "supportee-activee"}
    assert rows["UDT 24 (2018)"]["sans_activation"] == "non-supportee"
