"""The one fold of searched text: case- and accent-insensitive, the same on every database.

``fold("NOËL Camille")`` is ``"noel camille"``: Unicode NFKD, combining marks removed,
then ``str.casefold``. Folded search columns (``people.search_folded``,
``aaf_rejects.search_folded``) are computed here, in Python, when rows are written, so
SQLite and PostgreSQL compare the same stored text with a plain ``LIKE`` (no
``unaccent`` extension, no collation).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any

from lxml import etree

PERSON_FOLD_MAX = 400
"""Length of ``people.search_folded``."""


def fold(text: str) -> str:
    """``text`` without case nor accents, runs of white space made one space."""
    text = text or ""
    if text.isascii():
        # Most names: NFKD changes no ASCII character and none is a combining mark.
        return " ".join(text.lower().split())
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(stripped.casefold().split())


def fold_parts(parts: Iterable[Any]) -> str:
    """The folded text of several values (``None`` and empty values left out)."""
    return fold(" ".join(str(part) for part in parts if part))


def person_search_text(last_name: Any, first_name: Any, ine: Any) -> str:
    """What ``people.search_folded`` holds: names in both orders and the INE."""
    return fold_parts((last_name, first_name, first_name, last_name, ine))[:PERSON_FOLD_MAX]


def reject_search_text(code: Any, record_id: Any, attribute: Any, raw_value: Any,
                       message: Any, name: Any = None) -> str:
    """What ``aaf_rejects.search_folded`` holds: code, record id, attribute, value, message
    and the name of the person or structure the record is about (a person the import
    refused is found by name only through it)."""
    return fold_parts((code, record_id, attribute, raw_value, message, name))


_NAME_ATTRIBUTES = ("sn", "givenName")


def record_attributes(raw_xml: str) -> dict[str, str]:
    """First value of each ``<attr name="…">`` of an AAF record (empty when unreadable)."""
    if not raw_xml.strip():
        return {}
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        root = etree.fromstring(raw_xml.encode("utf-8"), parser)
    except etree.XMLSyntaxError:
        return {}
    found: dict[str, str] = {}
    for attr in root.iter("{*}attr", "attr"):
        name = attr.get("name")
        value = next((v.text or "" for v in attr.iter("{*}value", "value")), "")
        if name and name not in found:
            found[name] = value.strip()
    return found


def record_name(raw_xml: Any) -> str:
    """« BÉRANGER Zoé »: the last and first names (``sn``, ``givenName``) of an AAF
    record's XML ("" when it has none or is unreadable)."""
    found = record_attributes(str(raw_xml or ""))
    return " ".join(found[key] for key in _NAME_ATTRIBUTES if found.get(key))


def _current(context: Any) -> dict[str, Any]:
    return context.get_current_parameters() if context is not None else {}


def person_search_default(context: Any) -> str:
    """Column default of ``people.search_folded`` (ORM and Core inserts with parameters)."""
    params = _current(context)
    return person_search_text(params.get("last_name"), params.get("first_name"),
                              params.get("ine"))


def reject_search_default(context: Any) -> str:
    """Column default of ``aaf_rejects.search_folded``."""
    params = _current(context)
    return reject_search_text(params.get("code"), params.get("record_id"),
                              params.get("attribute"), params.get("raw_value"),
                              params.get("message"), record_name(params.get("raw_xml")))
