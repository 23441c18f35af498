"""UAI key-letter validation."""

import pytest

from yearchange_tui.ent.uai import InvalidUAIError, is_valid_uai, make_uai, validate_uai


@pytest.mark.parametrize("uai", ["0750654D", "0693890D", "0010001W"])
def test_real_uais_are_valid(uai: str) -> None:
    assert is_valid_uai(uai)


def test_wrong_key_letter_names_the_expected_one() -> None:
    with pytest.raises(InvalidUAIError, match="devrait être D"):
        validate_uai("0750654E")


@pytest.mark.parametrize("value", ["075065D", "07506544", "ABCDEFGH", "", "0750654I"])
def test_malformed_uais_are_refused(value: str) -> None:
    assert not is_valid_uai(value)


def test_lower_case_is_normalised() -> None:
    assert validate_uai(" 0750654d ") == "0750654D"


def test_make_uai_adds_the_key() -> None:
    assert make_uai("0750654") == "0750654D"
