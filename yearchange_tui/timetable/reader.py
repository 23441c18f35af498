"""Recognise a timetable export, read it, and judge it before anything is written.

:func:`inspect_timetable` takes what the operator gave (a file or a folder): it
recognises the format (EDT container or clear payload, UDT ZIP or folder, one
STS-web file or the pair), reads the identity and version markers, applies the
version policy, decrypts an EDT container when a partner key is available, and
reads the whole export into :class:`~yearchange_tui.timetable.data.TimetableData`.
Nothing touches the database. A file that cannot be read at all raises
:class:`~yearchange_tui.timetable.xmlsafe.TimetableFileError`; a file read but
refused (other establishment or year, version refused, key missing) comes back
with :attr:`TimetableInspection.refusal` set, so that its header and verdict can
be shown first. Runs on the caller's thread.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yearchange_tui.ent.school_year import school_year_of
from yearchange_tui.importing.limits import MIB, cap_text
from yearchange_tui.importing.limits import current as input_limits
from yearchange_tui.timetable import edt, sts, udt
from yearchange_tui.timetable.data import TimetableData
from yearchange_tui.timetable.policy import (
    DECLARATION_CONFLICT,
    EDT,
    UDT,
    DeclarationConflict,
    Outcome,
    TimetableVersion,
    VersionError,
    VersionVerdict,
    choose_declaration,
    edt_version_from_logiciel,
    evaluate,
    parse_declared_version,
    supported_summary,
)
from yearchange_tui.timetable.xmlsafe import TimetableFileError, root_name

FORMAT_LABELS = {"edt-chiffre": "EDT (Index Education), export ENT chiffré",
                 "edt": "EDT (Index Education), export ENT en clair",
                 "udt": "UnDeuxTemps (UDT), ZIP UDCal",
                 "sts": "STS-web"}
_PRODUCTS = {"edt-chiffre": EDT, "edt": EDT, "udt": UDT, "sts": ""}


@dataclass(frozen=True)
class PartnerKey:
    """An Index Education partner private key and the partner name it belongs to."""

    partner: str
    key: bytes
    source: str  # where it came from, for messages (« projet ENT-LYON », « --key … »)


@dataclass
class FileInfo:
    """One file read: name, size, checksum and what it is."""

    name: str
    path: str
    size: int
    sha256: str
    kind: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.name, "path": self.path, "size": self.size,
                "sha256": self.sha256, "kind": self.kind}


@dataclass
class TimetableInspection:
    """What an export is and what the policy says, before anything is written."""

    path: Path
    format: str  # edt-chiffre, edt, udt, sts
    files: list[FileInfo] = field(default_factory=list)
    header: dict[str, Any] = field(default_factory=dict)
    uai: str = ""
    uai_source: str = ""
    school_year_start: int | None = None
    verdict: VersionVerdict | None = None
    key_status: str = ""
    data: TimetableData | None = None
    refusal: TimetableFileError | None = None

    @property
    def product(self) -> str:
        """``EDT``, ``UDT`` or ``""`` (STS-web)."""
        return _PRODUCTS[self.format]

    @property
    def format_label(self) -> str:
        """French name of the format."""
        return FORMAT_LABELS[self.format]

    @property
    def sha256(self) -> str:
        """The export's checksum (of its single file, or of the files' checksums)."""
        if len(self.files) == 1:
            return self.files[0].sha256
        digest = hashlib.sha256()
        for info in sorted(self.files, key=lambda f: f.name):
            digest.update(info.sha256.encode("ascii"))
        return digest.hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"path": str(self.path), "format": self.format, "format_label": self.format_label,
                "files": [f.to_dict() for f in self.files], "header": self.header,
                "uai": self.uai, "uai_source": self.uai_source,
                "school_year_start": self.school_year_start,
                "verdict": self.verdict.to_dict() if self.verdict else None,
                "key_status": self.key_status,
                "counts": self.data.counts() if self.data else None,
                "refusal": self.refusal.to_dict() if self.refusal else None}


def _file_info(path: Path, kind: str) -> FileInfo:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return FileInfo(path.name, str(path.resolve()), path.stat().st_size, digest.hexdigest(), kind)


def _check_size(path: Path, key: str) -> None:
    """Refuse a file above its cap (``sts_file_mib``, ``edt_file_mib``) before it is parsed.

    Raises:
        TimetableFileError: ``EDT-FICHIER-TROP-VOLUMINEUX``, naming the cap.
    """
    size = path.stat().st_size
    if size > getattr(input_limits(), key) * MIB:
        shown = f"{size / MIB:.1f}".replace(".", ",")
        raise TimetableFileError("EDT-FICHIER-TROP-VOLUMINEUX", path.name, value=path.name,
                                 detail=f"{shown} Mio, au-delà de la {cap_text(key)}")


def _classify(path: Path) -> tuple[str, list[tuple[Path, str]]]:
    """The format and the files of what the operator gave."""
    if not path.exists():
        raise TimetableFileError("EDT-FICHIER-INTROUVABLE", path.name, value=str(path),
                                 detail="")
    if path.is_dir():
        if udt.is_udt_folder(path):
            return "udt", [(path, "UDT")]
        candidates = sorted(p for p in path.iterdir()
                            if p.is_file() and not p.name.startswith(".")
                            and p.suffix.lower() == ".xml")
        if not candidates:
            raise TimetableFileError("EDT-FORMAT-INCONNU", path.name, value=str(path),
                                     detail="dossier sans fichier XML ni UDCal")
        roots = [(p, root_name(p, p.name)) for p in candidates]
        sts_files = [(p, r) for p, r in roots if r in sts.ROOTS]
        if sts_files and len(sts_files) == len(roots) and len(roots) <= 2:
            sts_files.sort(key=lambda item: item[1] != sts.STS_TO_EDT)
            return "sts", sts_files
        if len(roots) == 1:
            return _classify_file(roots[0][0], roots[0][1])
        raise TimetableFileError(
            "EDT-FORMAT-INCONNU", path.name, value=str(path),
            detail="le dossier doit contenir un export UDT (UDCal_NN.xml), un export EDT, "
                   "ou un sts_emp et/ou un emp_sts ; il contient : "
                   + ", ".join(f"{p.name} ({r})" for p, r in roots))
    if zipfile.is_zipfile(path):
        return "udt", [(path, "UDT")]
    return _classify_file(path, root_name(path, path.name))


def _classify_file(path: Path, root: str) -> tuple[str, list[tuple[Path, str]]]:
    if root == edt.CONTAINER_ROOT:
        return "edt-chiffre", [(path, root)]
    if root == edt.PAYLOAD_ROOT:
        return "edt", [(path, root)]
    if root in sts.ROOTS:
        return "sts", [(path, root)]
    raise TimetableFileError("EDT-FORMAT-INCONNU", path.name, value=path.name,
                             detail=f"élément racine « {root} »")


def inspect_timetable(path: Path | str, *, expected_uai: str = "",
                      expected_year: int | None = None, declared_version: str | None = None,
                      newest_enabled: bool = False, partner_key: PartnerKey | None = None,
                      project_code: str = "",
                      establishment_version: TimetableVersion | None = None
                      ) -> TimetableInspection:
    """Recognise, read and judge an export; nothing is written anywhere.

    Args:
        path: a file or a folder.
        expected_uai: the establishment the import is for (``--uai``).
        expected_year: the school year the timetable must describe (N+1 start year).
        declared_version: the operator's declaration (``--version``), if any.
        newest_enabled: the project's activation of EDT 2021 / UDT 27.
        partner_key: the key to open an encrypted EDT container.
        project_code: for messages.
        establishment_version: the establishment's declaration (software and version),
            which the policy applies to when the file does not carry its version.

    Raises:
        TimetableFileError: the export cannot be read (missing, unknown format, unsafe or
            broken XML or archive, malformed declaration).
    """
    path = Path(path)
    kind, files = _classify(path)
    inspection = TimetableInspection(path, kind)
    product = inspection.product or None
    declared: TimetableVersion | None = None
    if declared_version:
        try:
            declared = parse_declared_version(declared_version, product)
        except VersionError as error:
            raise TimetableFileError("EDT-FORMAT-INCONNU", path.name, value=path.name,
                                     detail=str(error)) from error
    conflict: DeclarationConflict | None = None
    if kind == "edt-chiffre":
        # The container carries its version: the policy applies to it; a declaration
        # that differs is only noted (and updated from the file once imported).
        declared = declared or establishment_version
    else:
        try:
            declared = choose_declaration(product, declared, establishment_version)
        except DeclarationConflict as error:
            conflict = error
    detected: TimetableVersion | None = None
    payload: bytes | Path | None = None
    if kind == "edt-chiffre":
        file_path = files[0][0]
        inspection.files.append(_file_info(file_path, edt.CONTAINER_ROOT))
        container = edt.read_container(file_path, file_path.name)
        inspection.header = container.header()
        inspection.uai, inspection.uai_source = container.uai, "fichier"
        detected = edt_version_from_logiciel(container.logiciel)
        inspection.verdict = evaluate(EDT, detected, declared, newest_enabled=newest_enabled)
        # The readable header (UAI, version, export date) is judged before any key is asked.
        if (_refuse_on_identity_or_policy(inspection, expected_uai, None, project_code)
                or _refuse_on_export_date(inspection, container.created_at, expected_year)):
            return inspection
        if partner_key is None:
            inspection.key_status = "aucune clé partenaire configurée"
            inspection.refusal = TimetableFileError(
                "EDT-CLE-PARTENAIRE-ABSENTE", file_path.name,
                value=f"VERSION {container.version or '?'}, {container.logiciel or '?'}",
                detail="partenaires du fichier : " + (", ".join(
                    f"« {name} »" for name in container.partners) or "aucun"))
            return inspection
        inspection.key_status = (f"clé du partenaire « {partner_key.partner} » "
                                 f"({partner_key.source})")
        try:
            payload = edt.decrypt_container(container, partner_key.key, partner_key.partner)
        except TimetableFileError as error:
            inspection.refusal = error
            return inspection
    elif kind == "edt":
        file_path = files[0][0]
        _check_size(file_path, "edt_file_mib")
        inspection.files.append(_file_info(file_path, edt.PAYLOAD_ROOT))
        payload = file_path
    if kind in ("edt-chiffre", "edt"):
        assert payload is not None
        header, data = edt.parse_payload(payload, files[0][0].name)
        inspection.header.update({"Version": header.version, "UAI (contenu)": header.uai})
        if kind == "edt":
            inspection.uai, inspection.uai_source = header.uai, "fichier"
        elif header.uai and header.uai != inspection.uai:
            inspection.refusal = TimetableFileError(
                "EDT-UAI-INCOHERENT", files[0][0].name, value=header.uai,
                expected=inspection.uai, detail="le contenu déchiffré ne concerne pas "
                                                "l'établissement de l'en-tête")
            return inspection
        inspection.data = data
    elif kind == "udt":
        source = files[0][0]
        if source.is_dir():
            udt_source = udt.open_folder(source)
            for name in udt_source.names:
                inspection.files.append(_file_info(source / udt_source.files[name][0], "UDCal"))
        else:
            inspection.files.append(_file_info(source, "UDT"))
            udt_source = udt.open_zip(source)
        inspection.header = {"fichiers": len(udt_source.files),
                             "semaines": sum(1 for n in udt_source.names
                                             if n.startswith("udcal_12_"))}
        inspection.uai = udt.uai_from_name(source.name)
        inspection.uai_source = "nom du fichier" if inspection.uai else ""
        inspection.data = udt.parse_udt(udt_source)
    else:
        for file_path, _root in files:
            _check_size(file_path, "sts_file_mib")
        for file_path, root in files:
            inspection.files.append(_file_info(file_path, root))
        data, roots = sts.parse_sts([(p, p.name) for p, _root in files])
        inspection.header = {"fichiers": ", ".join(f"{p.name} ({r})" for (p, _), r
                                                   in zip(files, roots, strict=True))}
        inspection.uai, inspection.uai_source = data.uai, "fichier"
        inspection.data = data
    data = inspection.data
    assert data is not None
    inspection.school_year_start = data.school_year_start
    inspection.header.setdefault("annee_scolaire", data.school_year_start)
    if inspection.verdict is None:
        inspection.verdict = evaluate(product or "", detected, declared,
                                      newest_enabled=newest_enabled)
    _refuse_on_identity_or_policy(inspection, expected_uai, expected_year, project_code,
                                  conflict)
    return inspection


def _refuse_on_export_date(inspection: TimetableInspection, created_at: str,
                           expected_year: int | None) -> bool:
    """Refuse an encrypted container whose export date (``DATEHEURE``, readable without a
    key) cannot be that of the expected school year's timetable: exported before April of
    its first year or after August of its second."""
    if expected_year is None or not created_at:
        return False
    try:
        exported = dt.date.fromisoformat(created_at[:10])
    except ValueError:
        return False
    if dt.date(expected_year, 4, 1) <= exported <= dt.date(expected_year + 1, 8, 31):
        return False
    start = school_year_of(exported)
    name = inspection.files[0].name if inspection.files else inspection.path.name
    inspection.refusal = TimetableFileError(
        "EDT-ANNEE-INCOHERENTE", name,
        value=f"{start}-{start + 1} (d'après sa date d'export, {exported:%d/%m/%Y})",
        expected=f"{expected_year}-{expected_year + 1}")
    return True


def _refuse_on_identity_or_policy(inspection: TimetableInspection, expected_uai: str,
                                  expected_year: int | None, project_code: str,
                                  conflict: DeclarationConflict | None = None) -> bool:
    """Set the refusal for another establishment or year, an import that contradicts the
    establishment's declaration, or a version the policy refuses (or cannot judge)."""
    name = inspection.files[0].name if inspection.files else inspection.path.name
    if expected_uai and inspection.uai and inspection.uai != expected_uai.upper():
        inspection.refusal = TimetableFileError(
            "EDT-UAI-INCOHERENT", name, value=inspection.uai, expected=expected_uai.upper(),
            detail=f"UAI lu dans le {inspection.uai_source}")
        return True
    if (expected_year is not None and inspection.school_year_start is not None
            and inspection.school_year_start != expected_year):
        start = inspection.school_year_start
        inspection.refusal = TimetableFileError(
            "EDT-ANNEE-INCOHERENTE", name, value=f"{start}-{start + 1}",
            expected=f"{expected_year}-{expected_year + 1}")
        return True
    if conflict is not None:
        inspection.refusal = TimetableFileError(DECLARATION_CONFLICT, name,
                                                value=conflict.value, detail=conflict.detail)
        return True
    verdict = inspection.verdict
    if verdict is not None and verdict.outcome is Outcome.UNDECLARED:
        software = {EDT: "EDT", UDT: "UnDeuxTemps"}.get(verdict.product, "EDT ou UnDeuxTemps")
        inspection.refusal = TimetableFileError(
            "EDT-VERSION-A-DECLARER", name,
            detail=f"export {software}, aucune version déclarée pour l'établissement "
                   f"{inspection.uai or ''} ni donnée par --version".replace("  ", " "))
        return True
    if verdict is not None and not verdict.accepted:
        assert verdict.version is not None and verdict.code is not None
        detail = (supported_summary(verdict.product)
                  if verdict.outcome is Outcome.TOO_OLD else f"« {project_code} »")
        inspection.refusal = TimetableFileError(verdict.code, name, value=verdict.version.label,
                                                detail=detail)
        return True
    return False
