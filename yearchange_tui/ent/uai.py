"""UAI (Unité Administrative Immatriculée) identifiers of establishments.

A UAI is seven digits followed by a key letter. The key is the number formed by
the seven digits modulo 23, used as an index into an alphabet without I, O and Q.
"""

from __future__ import annotations

import re

UAI_KEY_ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ"
_UAI_PATTERN = re.compile(r"^(\d{7})([A-Z])$")


class InvalidUAIError(ValueError):
    """Raised when a string is not a valid UAI; the message is French, for operators."""


def uai_key_letter(digits: str) -> str:
    """Return the key letter of a UAI from its seven digits.

    Args:
        digits: exactly seven decimal digits.

    Returns:
        The key letter.
    """
    if len(digits) != 7 or not digits.isdigit():
        raise InvalidUAIError(f"UAI « {digits} » : sept chiffres attendus.")
    return UAI_KEY_ALPHABET[int(digits) % 23]


def make_uai(digits: str) -> str:
    """Return a full UAI (digits and key letter) from seven digits."""
    return digits + uai_key_letter(digits)


def validate_uai(value: str) -> str:
    """Check a UAI and return it normalised to upper case.

    Raises:
        InvalidUAIError: with a French message naming the problem.
    """
    normalised = value.strip().upper()
    match = _UAI_PATTERN.match(normalised)
    if match is None:
        raise InvalidUAIError(
            f"UAI « {value} » invalide : sept chiffres suivis d'une lettre clé attendus."
        )
    expected = uai_key_letter(match.group(1))
    if match.group(2) != expected:
        raise InvalidUAIError(
            f"UAI « {value} » invalide : la lettre clé devrait être {expected}."
        )
    return normalised


def is_valid_uai(value: str) -> bool:
    """Return True when ``value`` is a valid UAI."""
    try:
        validate_uai(value)
    except InvalidUAIError:
        return False
    return True
