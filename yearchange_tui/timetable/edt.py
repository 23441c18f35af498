"""Index Education (EDT / PRONOTE) ENT export: the encrypted container and the clear payload.

**Container** (``EXPORT_INDEX_EDUCATION``, namespace
``http://www.index-education.com/conteneurexportchiffre``): ``VERSION``,
``LOGICIEL``, ``CLES/PARTENAIRE@NOM``, ``CONTENU`` (base64,
``@CompresseAvantChiffrement``), ``VERIFICATION`` (base64 SHA-256), ``DATEHEURE``,
``UAI``, ``NOMETABLISSEMENT``, ``CODEPOSTALVILLE``. :func:`read_container` reads it
without any key, so its header is shown before anything else.
:func:`decrypt_container` opens it with the partner's RSA private key: the partner's
``PARTENAIRE`` value is RSA/PKCS#1 v1.5-decrypted into 48 bytes (AES-128 key, IV,
MD5 of both), ``CONTENU`` is AES-CBC/PKCS#7-decrypted, zlib-inflated when
compressed, then checked against ``VERIFICATION``. The SHA-256 is that of the
AES plaintext (entcore's reading, the one used in production); the hash of the
inflated XML, with or without a UTF-8 BOM, is accepted too, because the schema
only says "du contenu non chiffré". :func:`seal_container` writes a container
(tests, sample files).

**Clear payload** (``ExportEmploiDuTemps@Version@UAI``, namespace
``http://www.index-education.com/exportemploidutemps``): :func:`parse_payload`
streams it into :class:`~yearchange_tui.timetable.data.TimetableData`. Courses get
their time from the ``GrilleHoraire`` places and their weeks from the ``Semaines``
masks (bit *n* = week *n* counted from ``DatePremierJourSemaine1``, bit 0 unused;
``SemainesInclusion`` when ``Semaines`` is absent; ``SemainesAnnulation`` on the
course removes weeks). A course with several teachers or audiences becomes one
course per (teacher, audience), on the weeks both share.

Runs on the caller's thread.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from lxml import etree

from yearchange_tui.ent.base import utcnow
from yearchange_tui.ent.school_year import school_year_opening_on
from yearchange_tui.timetable.data import (
    Place,
    Problem,
    TimetableData,
    TtClass,
    TtCourse,
    TtGroup,
    TtStudent,
    TtSubject,
    TtTeacher,
    parse_clock,
    parse_iso_date,
)
from yearchange_tui.timetable.xmlsafe import (
    TimetableFileError,
    excerpt,
    iter_xml,
    local_name,
    text_of,
)

CONTAINER_NAMESPACE = "http://www.index-education.com/conteneurexportchiffre"
PAYLOAD_NAMESPACE = "http://www.index-education.com/exportemploidutemps"
CONTAINER_ROOT = "EXPORT_INDEX_EDUCATION"
PAYLOAD_ROOT = "ExportEmploiDuTemps"
KNOWN_PAYLOAD_VERSIONS = ("1.1",)
MAX_PAYLOAD_BYTES = 256 * 1024 * 1024
_UTF8_BOM = b"\xef\xbb\xbf"


# --------------------------------------------------------------------------------------
# Encrypted container
# --------------------------------------------------------------------------------------


@dataclass
class EdtContainer:
    """An encrypted container: its clear header, and the encrypted parts (kept private)."""

    file: str
    version: str = ""
    logiciel: str = ""
    partners: list[str] = field(default_factory=list)
    compressed: bool = True
    created_at: str = ""
    uai: str = ""
    establishment_name: str = ""
    postal_city: str = ""
    _keys: dict[str, str] = field(default_factory=dict, repr=False)
    _content: str = field(default="", repr=False)
    _verification: str = field(default="", repr=False)

    def header(self) -> dict[str, Any]:
        """The fields readable without a key (shown to the operator)."""
        return {"VERSION": self.version, "LOGICIEL": self.logiciel, "UAI": self.uai,
                "DATEHEURE": self.created_at, "NOMETABLISSEMENT": self.establishment_name,
                "CODEPOSTALVILLE": self.postal_city, "PARTENAIRES": list(self.partners),
                "COMPRESSE": self.compressed}


def read_container(source: Path | bytes, file: str) -> EdtContainer:
    """Read a container's header and encrypted parts, without any key.

    Raises:
        TimetableFileError: unsafe or broken XML, or a container without content.
    """
    container = EdtContainer(file)
    texts: dict[str, str] = {}
    for event, element in iter_xml(source, file, events=("end",)):
        name = local_name(element.tag)
        parent = element.getparent()
        if parent is None:
            continue
        if name == "PARTENAIRE":
            partner = (element.get("NOM") or "").strip()
            container.partners.append(partner)
            container._keys[partner] = "".join((element.text or "").split())
        elif local_name(parent.tag) == CONTAINER_ROOT:
            if name == "CONTENU":
                container._content = "".join((element.text or "").split())
                flag = (element.get("CompresseAvantChiffrement") or "true").strip().lower()
                container.compressed = flag not in ("false", "0")
            elif name != "CLES":
                texts[name] = text_of(element)
            element.clear()
        del event
    container.version = texts.get("VERSION", "")
    container.logiciel = texts.get("LOGICIEL", "")
    container.created_at = texts.get("DATEHEURE", "")
    container.uai = texts.get("UAI", "").upper()
    container.establishment_name = texts.get("NOMETABLISSEMENT", "")
    container.postal_city = texts.get("CODEPOSTALVILLE", "")
    container._verification = "".join(texts.get("VERIFICATION", "").split())
    if not container._content:
        raise TimetableFileError("EDT-FICHIERS-MANQUANTS", file, value="EDT chiffré",
                                 detail="l'élément CONTENU est vide ou absent")
    return container


def load_private_key(data: bytes) -> Any:
    """An RSA private key from PEM or DER (PKCS#8 or PKCS#1), without password.

    Raises:
        ValueError: French message when the key cannot be read.
    """
    # cryptography is loaded only when an EDT key is used.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    loaders = (serialization.load_pem_private_key, serialization.load_der_private_key)
    for loader in loaders:
        try:
            key = loader(data, password=None)
        except TypeError as error:
            raise ValueError("la clé privée est protégée par un mot de passe (non pris en "
                             "charge : fournir une clé PEM sans mot de passe, lisible du seul "
                             "compte de service)") from error
        except ValueError:
            continue
        if isinstance(key, rsa.RSAPrivateKey):
            return key
        raise ValueError("la clé n'est pas une clé RSA")
    raise ValueError("clé privée illisible (PEM ou DER attendu)")


def _refuse(file: str, detail: str, code: str = "EDT-DECHIFFREMENT-IMPOSSIBLE"
            ) -> TimetableFileError:
    return TimetableFileError(code, file, detail=detail)


def decrypt_container(container: EdtContainer, private_key: bytes | Any, partner: str) -> bytes:
    """Decrypt a container with a partner's RSA private key; return the clear payload.

    Args:
        container: from :func:`read_container`.
        private_key: PEM/DER bytes or a loaded RSA private key.
        partner: the partner name registered with Index Education (``PARTENAIRE@NOM``).

    Raises:
        TimetableFileError: ``EDT-DECHIFFREMENT-IMPOSSIBLE`` (no key for the partner, wrong
            key), ``EDT-CONTENU-INVALIDE`` (bad base64, padding, zlib or size),
            ``EDT-VERIFICATION-ECHEC`` (SHA-256 mismatch).
    """
    file = container.file
    # cryptography is loaded only when an EDT key is used.
    from cryptography.hazmat.primitives import padding as symmetric_padding
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    wrapped_text = container._keys.get(partner)
    if not wrapped_text:
        known = ", ".join(f"« {name} »" for name in container.partners) or "aucun"
        raise _refuse(file, f"aucune clé pour le partenaire « {partner} » (partenaires du "
                            f"fichier : {known})")
    if isinstance(private_key, bytes):
        try:
            private_key = load_private_key(private_key)
        except ValueError as error:
            raise _refuse(file, str(error)) from error
    try:
        wrapped = base64.b64decode(wrapped_text, validate=True)
        ciphertext = base64.b64decode(container._content, validate=True)
        expected = base64.b64decode(container._verification, validate=True)
    except (binascii.Error, ValueError) as error:
        raise _refuse(file, f"base64 invalide ({error})", "EDT-CONTENU-INVALIDE") from error
    try:
        secret = private_key.decrypt(wrapped, padding.PKCS1v15())
    except ValueError as error:
        raise _refuse(file, "la clé privée ne correspond pas à la clé du partenaire") from error
    if len(secret) < 48 or hashlib.md5(secret[:32]).digest() != secret[32:48]:
        raise _refuse(file, "la clé privée ne correspond pas à la clé du partenaire (contrôle "
                            "MD5 de la clé AES en échec)")
    if not ciphertext or len(ciphertext) % 16:
        raise _refuse(file, "longueur du contenu chiffré invalide", "EDT-CONTENU-INVALIDE")
    decryptor = Cipher(algorithms.AES(secret[:16]), modes.CBC(secret[16:32])).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = symmetric_padding.PKCS7(128).unpadder()
    try:
        plain = unpadder.update(padded) + unpadder.finalize()
    except ValueError as error:
        raise _refuse(file, "bourrage AES invalide : clé ou contenu incorrect") from error
    if container.compressed:
        inflater = zlib.decompressobj()
        try:
            payload = inflater.decompress(plain, MAX_PAYLOAD_BYTES)
        except zlib.error as error:
            raise _refuse(file, f"données compressées invalides ({error})",
                          "EDT-CONTENU-INVALIDE") from error
        if inflater.unconsumed_tail:
            raise _refuse(file, f"plus de {MAX_PAYLOAD_BYTES // (1024 * 1024)} Mo une fois "
                                "décompressé", "EDT-CONTENU-INVALIDE")
    else:
        payload = plain
    candidates = {hashlib.sha256(plain).digest(), hashlib.sha256(payload).digest()}
    if payload.startswith(_UTF8_BOM):
        payload = payload[len(_UTF8_BOM):]
        candidates.add(hashlib.sha256(payload).digest())
    if expected not in candidates:
        raise _refuse(file, f"attendu {expected.hex()[:16]}…", "EDT-VERIFICATION-ECHEC")
    return payload


def seal_container(payload: bytes, partners: Sequence[tuple[str, Any]], *, logiciel: str,
                   uai: str, establishment_name: str = "", postal_city: str = "",
                   created_at: dt.datetime | None = None, version: str = "1.0",
                   compress: bool = True) -> bytes:
    """Write an encrypted container for ``payload`` (the reverse of :func:`decrypt_container`).

    Args:
        payload: the clear ``ExportEmploiDuTemps`` bytes.
        partners: ``(name, public key)`` pairs (PEM bytes or loaded RSA public keys), at
            most two as the schema allows.
        logiciel: the ``LOGICIEL`` text (« EDT Monoposte-EDT 2020 - 1.0.0 »).
        uai: the establishment.
        establishment_name: ``NOMETABLISSEMENT``.
        postal_city: ``CODEPOSTALVILLE``.
        created_at: ``DATEHEURE`` (default: now).
        version: the container ``VERSION``.
        compress: zlib the payload before encryption.
    """
    # cryptography is loaded only when an EDT key is used.
    from cryptography.hazmat.primitives import padding as symmetric_padding
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    if not 1 <= len(partners) <= 2:
        raise ValueError("un conteneur a une ou deux clés partenaires")
    key, iv = os.urandom(16), os.urandom(16)
    secret = key + iv + hashlib.md5(key + iv).digest()
    plain = zlib.compress(payload, 9) if compress else payload
    padder = symmetric_padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    moment = created_at or utcnow()

    def wrap(data: bytes) -> str:
        text = base64.b64encode(data).decode("ascii")
        return "\n".join(text[i:i + 76] for i in range(0, len(text), 76))

    root = etree.Element(f"{{{CONTAINER_NAMESPACE}}}{CONTAINER_ROOT}",
                         nsmap={None: CONTAINER_NAMESPACE})

    def child(parent: etree._Element, name: str, text: str = "") -> etree._Element:
        element = etree.SubElement(parent, f"{{{CONTAINER_NAMESPACE}}}{name}")
        element.text = text
        return element

    child(root, "VERSION", version)
    child(root, "LOGICIEL", logiciel)
    keys = child(root, "CLES")
    keys.text = None
    for name, public_key in partners:
        if isinstance(public_key, bytes):
            public_key = serialization.load_pem_public_key(public_key)
        element = child(keys, "PARTENAIRE", wrap(public_key.encrypt(secret, padding.PKCS1v15())))
        element.set("NOM", name)
    content = child(root, "CONTENU", wrap(ciphertext))
    content.set("CompresseAvantChiffrement", "true" if compress else "false")
    child(root, "VERIFICATION", base64.b64encode(hashlib.sha256(plain).digest()).decode())
    child(root, "DATEHEURE", moment.isoformat(timespec="milliseconds"))
    child(root, "UAI", uai)
    child(root, "NOMETABLISSEMENT", establishment_name)
    child(root, "CODEPOSTALVILLE", postal_city)
    etree.indent(root, "  ")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8") + b"\n"


# --------------------------------------------------------------------------------------
# Clear payload
# --------------------------------------------------------------------------------------


@dataclass
class PayloadHeader:
    """The payload's identity and format version."""

    version: str = ""
    uai: str = ""


@dataclass
class _RawCourse:
    day: str
    first: str
    count: str
    cancelled: str
    subject: list[str]
    resources: list[tuple[str, str, str | None]]  # (kind, ident, mask)
    place: Place


def _mask(element: etree._Element) -> str | None:
    value = element.get("Semaines")
    if value is None:
        value = element.get("SemainesInclusion")
    return value.strip() if value is not None else None


class _PayloadReader:
    """Streams one clear payload into a :class:`TimetableData`."""

    ITEM_SECTIONS: ClassVar[dict[str, str]] = {
        "Matieres": "Matiere", "Professeurs": "Professeur", "Classes": "Classe",
        "Groupes": "Groupe", "Salles": "Salle", "Eleves": "Eleve", "Cours": "Cours"}

    def __init__(self, file: str) -> None:
        self.file = file
        self.data = TimetableData("edt", carries_students=True)
        self.header = PayloadHeader()
        self.week1: dt.date | None = None
        self.places: dict[int, tuple[str, str]] = {}
        self.rooms: dict[str, str] = {}
        self.part_owner: dict[str, str] = {}
        self.group_parts: dict[str, list[str]] = {}
        self.group_students: dict[str, list[str]] = {}
        self.student_parts: dict[str, list[str]] = {}
        self.raw_courses: list[_RawCourse] = []

    def place(self, element: etree._Element) -> Place:
        return Place(self.file, element.sourceline, excerpt(element))

    def run(self, source: Path | bytes) -> TimetableData:
        for event, element in iter_xml(source, self.file):
            name = local_name(element.tag)
            if event == "start":
                if element.getparent() is None:
                    if name != PAYLOAD_ROOT:
                        raise TimetableFileError(
                            "EDT-FORMAT-INCONNU", self.file, element.sourceline,
                            value=self.file, detail=f"élément racine « {name} »")
                    self.header.version = (element.get("Version") or "").strip()
                    self.header.uai = (element.get("UAI") or "").strip().upper()
                continue
            parent = element.getparent()
            if parent is None:
                continue
            parent_name = local_name(parent.tag)
            if parent_name == PAYLOAD_ROOT:
                if name == "AnneeScolaire":
                    self.school_year(element)
                elif name == "GrilleHoraire":
                    self.grid(element)
                element.clear()
            elif self.ITEM_SECTIONS.get(parent_name) == name and (
                    parent.getparent() is not None
                    and local_name(parent.getparent().tag) == PAYLOAD_ROOT):
                getattr(self, f"item_{name.lower()}")(element)
                element.clear()
                while element.getprevious() is not None:
                    del parent[0]
        self.finish()
        self.data.uai = self.header.uai
        return self.data

    # -- sections ------------------------------------------------------------------------

    def school_year(self, element: etree._Element) -> None:
        first = parse_iso_date(element.get("DateDebut") or "")
        last = parse_iso_date(element.get("DateFin") or "")
        self.week1 = parse_iso_date(element.get("DatePremierJourSemaine1") or "")
        self.data.first_day, self.data.last_day = first, last
        if first is not None:
            self.data.school_year_start = school_year_opening_on(first)

    def grid(self, element: etree._Element) -> None:
        for place in element.iter():
            if local_name(place.tag) != "Place":
                continue
            try:
                number = int(place.get("Numero") or "")
            except ValueError:
                continue
            self.places[number] = (place.get("LibelleHeureDebut") or "",
                                   place.get("LibelleHeureFin") or "")

    def item_matiere(self, element: etree._Element) -> None:
        key = element.get("Ident") or ""
        self.data.subjects[key] = TtSubject(key, (element.get("Code") or "").strip(),
                                            (element.get("Libelle") or "").strip())

    def item_professeur(self, element: etree._Element) -> None:
        key = element.get("Ident") or ""
        sts = (element.get("IDSTS") or "").strip()
        self.data.teachers[key] = TtTeacher(
            key, (element.get("Nom") or "").strip(), (element.get("Prenom") or "").strip(),
            parse_iso_date(element.get("DateNaissance") or ""), (sts,) if sts else (),
            self.place(element))

    def item_classe(self, element: etree._Element) -> None:
        key = element.get("Ident") or ""
        name = (element.get("Nom") or "").strip()
        self.data.classes[key] = TtClass(key, name, name)
        for part in element:
            if local_name(part.tag) == "PartieDeClasse" and part.get("Ident"):
                self.part_owner[part.get("Ident") or ""] = key

    def item_groupe(self, element: etree._Element) -> None:
        key = element.get("Ident") or ""
        name = (element.get("Nom") or "").strip()
        group = TtGroup(key, name, name, place=self.place(element))
        parts: list[str] = []
        students: list[str] = []
        for child in element:
            child_name = local_name(child.tag)
            ident = child.get("Ident") or ""
            if child_name == "Classe" and ident and ident not in group.class_keys:
                group.class_keys.append(ident)
            elif child_name == "PartieDeClasse" and ident:
                parts.append(ident)
            elif child_name == "Eleve" and ident:
                students.append(ident)
        self.data.groups[key] = group
        self.group_parts[key] = parts
        self.group_students[key] = students

    def item_salle(self, element: etree._Element) -> None:
        self.rooms[element.get("Ident") or ""] = (element.get("Nom") or "").strip()

    def item_eleve(self, element: etree._Element) -> None:
        key = element.get("Ident") or ""
        student = TtStudent(key, (element.get("Nom") or "").strip(),
                            (element.get("Prenom") or "").strip(),
                            parse_iso_date(element.get("DateNaissance") or ""),
                            (element.get("NumeroNational") or "").strip(),
                            place=self.place(element))
        self.data.students[key] = student
        self.student_parts[key] = [child.get("Ident") or "" for child in element
                                   if local_name(child.tag) == "PartieDeClasse"]

    def item_cours(self, element: etree._Element) -> None:
        subject: list[str] = []
        resources: list[tuple[str, str, str | None]] = []
        for child in element:
            kind = local_name(child.tag)
            ident = (child.get("Ident") or "").strip()
            if kind == "Matiere":
                subject.append(ident)
            elif kind in ("Professeur", "Classe", "PartieDeClasse", "Groupe", "Salle"):
                resources.append((kind, ident, _mask(child)))
        self.raw_courses.append(_RawCourse(
            element.get("Jour") or "", element.get("NumeroPlaceDebut") or "",
            element.get("NombrePlaces") or "", (element.get("SemainesAnnulation") or "").strip(),
            subject, resources, self.place(element)))

    # -- after the whole file --------------------------------------------------------------

    def weeks(self, mask: str | None) -> frozenset[int] | None:
        """ISO weeks of a mask (None: no mask, every week)."""
        if mask is None or self.week1 is None:
            return None
        try:
            value = int(mask)
        except ValueError:
            return None
        weeks = set()
        number = 1
        value >>= 1
        while value:
            if value & 1:
                weeks.add((self.week1 + dt.timedelta(weeks=number - 1)).isocalendar()[1])
            value >>= 1
            number += 1
            if number > 64:
                break
        return frozenset(weeks)

    def finish(self) -> None:
        data = self.data
        for group_key, parts in self.group_parts.items():
            group = data.groups[group_key]
            for part in parts:
                owner = self.part_owner.get(part)
                if owner is not None and owner not in group.class_keys:
                    group.class_keys.append(owner)
        part_groups: dict[str, set[str]] = {}
        for group_key, parts in self.group_parts.items():
            for part in parts:
                part_groups.setdefault(part, set()).add(group_key)
        for student_key, parts in self.student_parts.items():
            student = data.students[student_key]
            for part in parts:
                student.group_keys |= part_groups.get(part, set())
        for group_key, students in self.group_students.items():
            for student_key in students:
                if student_key in data.students:
                    data.students[student_key].group_keys.add(group_key)
        for raw in self.raw_courses:
            self.course(raw)

    def course(self, raw: _RawCourse) -> None:
        data = self.data
        label = "le cours"
        try:
            day, first, count = int(raw.day), int(raw.first), int(raw.count)
        except ValueError:
            data.problems.append(Problem("EDT-COURS-INCOMPLET", raw.place, label, kind="Cours",
                                         detail="jour, place ou durée lisible"))
            return
        start = self.places.get(first)
        end = self.places.get(first + count - 1) if count > 0 else None
        starts_at = parse_clock(start[0]) if start else None
        ends_at = parse_clock(end[1]) if end else None
        if not 1 <= day <= 7 or starts_at is None or ends_at is None or ends_at <= starts_at:
            data.problems.append(Problem(
                "EDT-COURS-HORS-GRILLE", raw.place, label, kind="Cours",
                detail=f"jour {raw.day}, place {raw.first}, {raw.count} place(s) ; la grille a "
                       f"{len(self.places)} place(s)"))
            return
        probe = TtCourse("", [], [], [], day, starts_at, ends_at)
        label = probe.label
        if not raw.subject or not raw.subject[0]:
            data.problems.append(Problem("EDT-COURS-INCOMPLET", raw.place, label, kind="Cours",
                                         detail="matière"))
            return
        subject_key = raw.subject[0]
        if subject_key not in data.subjects:
            data.problems.append(Problem("EDT-REFERENCE-INCONNUE", raw.place, label,
                                         record_id=subject_key, kind="Cours",
                                         attribute="la matière n°", value=subject_key))
            return
        teachers: list[tuple[str, str | None]] = []
        audiences: list[tuple[str, str, str | None]] = []
        rooms: list[str] = []
        labels = {"Professeur": ("l'enseignant n°", self.data.teachers),
                  "Classe": ("la classe n°", self.data.classes),
                  "Groupe": ("le groupe n°", self.data.groups),
                  "PartieDeClasse": ("la partie de classe n°", self.part_owner),
                  "Salle": ("la salle n°", self.rooms)}
        for kind, ident, mask in raw.resources:
            attribute, known = labels[kind]
            if ident not in known:
                data.problems.append(Problem("EDT-REFERENCE-INCONNUE", raw.place, label,
                                             record_id=ident, kind="Cours", attribute=attribute,
                                             value=ident))
                return
            if kind == "Professeur":
                teachers.append((ident, mask))
            elif kind == "Salle":
                if self.rooms[ident] and self.rooms[ident] not in rooms:
                    rooms.append(self.rooms[ident])
            elif kind == "PartieDeClasse":
                audiences.append(("Classe", self.part_owner[ident], mask))
            else:
                audiences.append((kind, ident, mask))
        groups = [a for a in audiences if a[0] == "Groupe"]
        chosen = groups or [a for a in audiences if a[0] == "Classe"]
        unique: dict[tuple[str, str], str | None] = {}
        for kind, ident, mask in chosen:
            unique.setdefault((kind, ident), mask)
        if not unique:
            data.problems.append(Problem("EDT-COURS-INCOMPLET", raw.place, label, kind="Cours",
                                         detail="classe ni groupe"))
            return
        cancelled = self.weeks(raw.cancelled) if raw.cancelled else None
        room = ", ".join(rooms)[:50]
        for (kind, ident), audience_mask in unique.items():
            for teacher_key, teacher_mask in (teachers or [(None, None)]):
                weeks = self.weeks(audience_mask)
                teacher_weeks = self.weeks(teacher_mask)
                if teacher_weeks is not None:
                    weeks = teacher_weeks if weeks is None else weeks & teacher_weeks
                if cancelled and weeks is not None:
                    weeks = weeks - cancelled
                if weeks is not None and not weeks:
                    continue
                data.courses.append(TtCourse(
                    subject_key, [teacher_key] if teacher_key else [],
                    [ident] if kind == "Classe" else [], [ident] if kind == "Groupe" else [],
                    day, starts_at, ends_at, room, weeks, "", raw.place))


def parse_payload(source: Path | bytes, file: str) -> tuple[PayloadHeader, TimetableData]:
    """Read a clear ``ExportEmploiDuTemps`` payload.

    Raises:
        TimetableFileError: unsafe or broken XML, or another root element.
    """
    reader = _PayloadReader(file)
    data = reader.run(source)
    return reader.header, data
