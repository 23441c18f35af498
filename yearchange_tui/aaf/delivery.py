"""An AAF delivery: a folder, a ``.tgz``/``.tar.gz``/``.zip`` archive, or a list of files.

Files are recognised by their real names (``ENT_<UAI>_Complet_<YYYYMMDD>_<Kind>_<NNNN>.xml``,
``FULL_…_Complet_…``, ``ENT_Complet_<Kind>_0000.xml``…) and, when the name does not
say, by their operational attribute. They are applied in dependency order: by
delivery date, a Complet before a Delta of the same date, then structures,
subjects, MEF, students, relatives, staff, then chunk number.

Archives are extracted into a private temporary folder with every member path
checked (no absolute path, no ``..``, no link or device) and the archive's caps
counted while it is extracted: members, decompressed size and compression ratio
(:mod:`~yearchange_tui.importing.limits`, configurable); each extracted file's
SHA-256 is computed while it is written. The folder
(:func:`~yearchange_tui.importing.scratch.scratch_folder`) is removed when the delivery
is closed, and on SIGTERM or SIGHUP; one left by a killed import is removed when the
next delivery is opened. The file contents are checked later by the parser.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import stat
import tarfile
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from yearchange_tui.aaf.parser import AafFileError, Prologue, delivery_refusal, inspect_prologue
from yearchange_tui.importing.limits import MIB, cap_text
from yearchange_tui.importing.limits import current as input_limits
from yearchange_tui.importing.scratch import remove_stale, scratch_folder

KIND_ETAB = "EtabEducNat"
KIND_MATIERE = "MatiereEducNat"
KIND_MEF = "MefEducNat"
KIND_ELEVE = "Eleve"
KIND_PERS_REL_ELEVE = "PersRelEleve"
KIND_PERS_EDUC_NAT = "PersEducNat"

KIND_ORDER: tuple[str, ...] = (KIND_ETAB, KIND_MATIERE, KIND_MEF, KIND_ELEVE,
                               KIND_PERS_REL_ELEVE, KIND_PERS_EDUC_NAT)
"""The six kinds in dependency order."""

CATEGORY_KINDS: dict[tuple[str, str], str] = {
    ("categorieStructure", "EtabEducNat"): KIND_ETAB,
    ("categorieMatiere", "MatEducNat"): KIND_MATIERE,
    ("categorieMatiere", "MatiereEducNat"): KIND_MATIERE,
    ("categorieMef", "MefEducNat"): KIND_MEF,
    ("categoriePersonne", "Eleve"): KIND_ELEVE,
    ("categoriePersonne", "PersRelEleve"): KIND_PERS_REL_ELEVE,
    ("categoriePersonne", "PersEducNat"): KIND_PERS_EDUC_NAT,
}
"""Operational attribute (name, value) → file kind."""

COMPLET = "Complet"
DELTA = "Delta"

_KIND_IN_NAME = re.compile(
    r"(?:^|[_\-.])(EtabEducNat|MatiereEducNat|MefEducNat|PersRelEleve|PersEducNat|Eleve)"
    r"(?:_(\d{1,6}))?\.xml$", re.IGNORECASE)
_TYPE_IN_NAME = re.compile(r"(?:^|[_\-.])(Complet|Delta)(?:[_\-.]|\d|$)", re.IGNORECASE)
_DATE_IN_NAME = re.compile(r"(?:^|[_\-.])((?:19|20)\d{6})(?:[_\-.]|$)")
_UAI_IN_NAME = re.compile(r"^ENT_(\d{7}[A-Z])_", re.IGNORECASE)
_ARCHIVE_SUFFIXES = (".tgz", ".tar.gz", ".tar", ".zip")
_RATIO_FLOOR = 4096
"""Bytes under which a member's compression ratio is not judged (it cannot be a bomb)."""


@dataclass
class DeliveryFile:
    """One XML file of a delivery.

    Attributes:
        path: where it is read from.
        name: its name as shown to operators (relative to the delivery).
        kind: the file kind (from the name, else from the content).
        kind_from_name: the kind its name announces, if any.
        delivery_type: ``Complet``, ``Delta`` or ``""``.
        delivery_date: the date in its name, if any.
        chunk: the chunk number (``_0003`` → 3).
        uai: the UAI in a per-establishment name (``ENT_<UAI>_…``), if any.
        prologue: what the start of the file says.
    """

    path: Path
    name: str
    kind: str
    kind_from_name: str | None
    delivery_type: str
    delivery_date: dt.date | None
    chunk: int
    uai: str
    prologue: Prologue
    size: int = 0
    _sha256: str | None = None

    @property
    def sha256(self) -> str:
        """SHA-256 of the file bytes (computed once)."""
        if self._sha256 is None:
            digest = hashlib.sha256()
            with self.path.open("rb") as handle:
                for block in iter(lambda: handle.read(1024 * 1024), b""):
                    digest.update(block)
            self._sha256 = digest.hexdigest()
        return self._sha256

    def sort_key(self) -> tuple[object, ...]:
        """Order of application: date, Complet before Delta, kind, chunk, name."""
        return (self.delivery_date or dt.date.min, 0 if self.delivery_type != DELTA else 1,
                KIND_ORDER.index(self.kind), self.chunk, self.name)


@dataclass
class Delivery:
    """An opened delivery: its ordered files and where it came from."""

    source: list[str]
    source_kind: str
    files: list[DeliveryFile]
    ignored: list[str] = field(default_factory=list)

    @property
    def delivery_type(self) -> str:
        """``Complet``, ``Delta``, ``Complet+Delta`` or ``""``."""
        types = {f.delivery_type for f in self.files if f.delivery_type}
        if types == {COMPLET}:
            return COMPLET
        if types == {DELTA}:
            return DELTA
        if types:
            return "Complet+Delta"
        return ""

    @property
    def newest_date(self) -> dt.date | None:
        """The newest date found in the file names."""
        dates = [f.delivery_date for f in self.files if f.delivery_date]
        return max(dates) if dates else None

    def groups(self) -> list[list[DeliveryFile]]:
        """The files split into dated deliveries (a Complet, then each Delta), in order."""
        groups: dict[tuple[object, ...], list[DeliveryFile]] = {}
        for delivery_file in self.files:
            key = (delivery_file.delivery_date or dt.date.min,
                   0 if delivery_file.delivery_type != DELTA else 1)
            groups.setdefault(key, []).append(delivery_file)
        return [groups[key] for key in sorted(groups)]  # type: ignore[type-var]


def kind_from_name(name: str) -> tuple[str | None, int]:
    """Return the kind and chunk number a file name announces (``(None, 0)`` if none)."""
    match = _KIND_IN_NAME.search(name)
    if match is None:
        return None, 0
    kind = next(k for k in KIND_ORDER if k.lower() == match.group(1).lower())
    return kind, int(match.group(2) or 0)


def _describe(path: Path, name: str) -> DeliveryFile:
    prologue = inspect_prologue(path, name)
    base = PurePosixPath(name).name
    named_kind, chunk = kind_from_name(base)
    content_kind = CATEGORY_KINDS.get(prologue.category) if prologue.category else None
    if prologue.category and prologue.category != ("", "") and content_kind is None \
            and named_kind is None:
        raise AafFileError("AAF-FICHIER-TYPE-INCONNU", name, None,
                           value="/".join(prologue.category))
    if named_kind and content_kind and named_kind != content_kind:
        raise AafFileError("AAF-FICHIER-TYPE-INCOHERENT", name, None, expected=named_kind,
                           value=content_kind)
    kind = named_kind or content_kind
    if kind is None:
        raise AafFileError("AAF-FICHIER-TYPE-INCONNU", name, None,
                           value="/".join(prologue.category or ("", "")) or "aucune")
    type_match = _TYPE_IN_NAME.search(base)
    delivery_type = ""
    if type_match:
        delivery_type = COMPLET if type_match.group(1).lower() == "complet" else DELTA
    delivery_date = None
    date_match = _DATE_IN_NAME.search(base)
    if date_match:
        digits = date_match.group(1)
        try:
            delivery_date = dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
        except ValueError:
            delivery_date = None
    uai_match = _UAI_IN_NAME.match(base)
    return DeliveryFile(path, name, kind, named_kind, delivery_type, delivery_date, chunk,
                        uai_match.group(1).upper() if uai_match else "", prologue,
                        size=path.stat().st_size)


def _is_archive(path: Path) -> bool:
    lowered = path.name.lower()
    return any(lowered.endswith(suffix) for suffix in _ARCHIVE_SUFFIXES)


def _safe_member_path(name: str, archive: str) -> PurePosixPath:
    member = PurePosixPath(name.replace("\\", "/"))
    if member.is_absolute() or ".." in member.parts or (member.parts and ":" in member.parts[0]):
        raise AafFileError("AAF-ARCHIVE-INVALIDE", archive, value=archive,
                           detail=f"chemin interdit « {name} »")
    return member


def _wanted_member(member: PurePosixPath) -> bool:
    return bool(member.parts) and not any(part.startswith(".") for part in member.parts) \
        and member.suffix.lower() == ".xml"


class _SizeBudget:
    """The caps of one archive, counted while it is extracted (see :mod:`~yearchange_tui.importing.limits`).

    Members are counted as they are met, declared sizes before a member is written and
    the bytes really written block by block: the archive is refused as soon as a cap is
    crossed, whatever the way its content is split into members.
    """

    def __init__(self, archive: str, compressed: int) -> None:
        self.archive = archive
        self.compressed = compressed
        self.limits = input_limits()
        self.entries = 0
        self.declared = 0
        self.total = 0

    def _refuse(self, detail: str) -> AafFileError:
        return AafFileError("AAF-ARCHIVE-INVALIDE", self.archive, value=self.archive,
                            detail=detail)

    def count(self, entries: int = 1) -> None:
        """Count members of the archive (any kind): refused above the entry cap."""
        self.entries += entries
        if self.entries > self.limits.aaf_archive_entries:
            raise self._refuse(f"au moins {self.entries} entrées, au-delà de la "
                               f"{cap_text('aaf_archive_entries')}")

    def _size_refusal(self) -> AafFileError:
        return self._refuse(f"contenu décompressé au-delà de la {cap_text('aaf_archive_mib')}")

    def add(self, member: str, size: int, compressed: int | None) -> None:
        """Check a member's declared size before it is written.

        Args:
            member: its name in the archive.
            size: its declared decompressed size.
            compressed: its compressed size (``None`` in a tar, compressed as a whole).
        """
        self.declared += size
        if self.declared > self.limits.aaf_archive_mib * MIB:
            raise self._size_refusal()
        if compressed is not None:
            self.check_ratio(member, size, compressed)
        self.check_ratio(member, self.declared, self.compressed)

    def check_ratio(self, member: str, size: int, compressed: int) -> None:
        """Refuse ``size`` bytes out of ``compressed`` above the compression ratio cap.

        Below :data:`_RATIO_FLOOR` bytes nothing is a bomb (and members are counted).
        """
        ratio = self.limits.aaf_compression_ratio
        if size > _RATIO_FLOOR and size > ratio * max(compressed, 1):
            raise self._refuse(f"taux de compression anormal pour « {member} » (bombe de "
                               f"décompression ?), au-delà de la "
                               f"{cap_text('aaf_compression_ratio')}")

    def written(self, size: int) -> None:
        """Count bytes really written: refused as soon as the size cap is crossed."""
        self.total += size
        if self.total > self.limits.aaf_archive_mib * MIB:
            raise self._size_refusal()


def _copy(source, target: Path, budget: _SizeBudget, declared: int) -> str:  # type: ignore[no-untyped-def]
    """Copy one member block by block; return its SHA-256 (computed on the way)."""
    written = 0
    digest = hashlib.sha256()
    with target.open("wb") as out:
        for block in iter(lambda: source.read(1024 * 1024), b""):
            written += len(block)
            if written > declared:
                raise AafFileError("AAF-ARCHIVE-INVALIDE", budget.archive, value=budget.archive,
                                   detail="taille d'un fichier différente de celle annoncée")
            budget.written(len(block))
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def _regular_member(info: zipfile.ZipInfo) -> bool:
    """False for a symbolic link, device, FIFO… stored in a ZIP written on Unix.

    The file type lives in the high 16 bits of ``external_attr`` (Unix mode) only when
    the archive was made on Unix (``create_system`` 3); a type of 0 is a regular file —
    Python's ``zipfile.writestr`` stores permissions alone (``0o600``) — as is a mode of 0.
    """
    if info.create_system != 3:
        return True
    kind = stat.S_IFMT(info.external_attr >> 16)
    return kind in (0, stat.S_IFREG)


def _extract_zip(archive: Path, target: Path, shown: str,
                 digests: dict[Path, str]) -> list[tuple[Path, str]]:
    budget = _SizeBudget(shown, archive.stat().st_size)
    extracted: list[tuple[Path, str]] = []
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = bundle.infolist()
            budget.count(len(members))  # the central directory lists them all: before writing
            for info in members:
                member = _safe_member_path(info.filename, shown)
                if info.is_dir() or not _wanted_member(member):
                    continue
                if not _regular_member(info):
                    raise AafFileError("AAF-ARCHIVE-INVALIDE", shown, value=shown,
                                       detail=f"« {info.filename} » n'est pas un fichier ordinaire")
                budget.add(info.filename, info.file_size, info.compress_size)
                destination = target / Path(*member.parts)
                destination.parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(info) as source:
                    digests[destination] = _copy(source, destination, budget, info.file_size)
                extracted.append((destination, f"{shown}/{member.as_posix()}"))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError,
            NotImplementedError) as error:
        raise AafFileError("AAF-ARCHIVE-INVALIDE", shown, value=shown, detail=str(error)) from error
    return extracted


def _extract_tar(archive: Path, target: Path, shown: str,
                 digests: dict[Path, str]) -> list[tuple[Path, str]]:
    budget = _SizeBudget(shown, archive.stat().st_size)
    extracted: list[tuple[Path, str]] = []
    try:
        with tarfile.open(archive, "r:*") as bundle:
            for info in bundle:
                budget.count()
                member = _safe_member_path(info.name, shown)
                if info.isdir():
                    continue
                if not info.isfile():
                    if _wanted_member(member) or info.issym() or info.islnk() or info.isdev():
                        raise AafFileError("AAF-ARCHIVE-INVALIDE", shown, value=shown,
                                           detail=f"« {info.name} » est un lien ou un fichier "
                                                  "spécial")
                    continue
                if not _wanted_member(member):
                    continue
                budget.add(info.name, info.size, None)
                destination = target / Path(*member.parts)
                destination.parent.mkdir(parents=True, exist_ok=True)
                source = bundle.extractfile(info)
                if source is None:
                    continue
                with source:
                    digests[destination] = _copy(source, destination, budget, info.size)
                extracted.append((destination, f"{shown}/{member.as_posix()}"))
    except (tarfile.TarError, OSError, EOFError) as error:
        raise AafFileError("AAF-ARCHIVE-INVALIDE", shown, value=shown, detail=str(error)) from error
    return extracted


def _folder_files(folder: Path) -> tuple[list[tuple[Path, str]], list[str]]:
    found: list[tuple[Path, str]] = []
    ignored: list[str] = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        if path.suffix.lower() == ".xml":
            found.append((path, relative.as_posix()))
        elif path.suffix.lower() not in (".dtd",):
            ignored.append(relative.as_posix())
    return found, ignored


@contextmanager
def open_delivery(paths: Sequence[Path | str]) -> Iterator[Delivery]:
    """Open a delivery and check every file's prologue before anything is written.

    Args:
        paths: one folder, one archive, or one or more XML files (or archives).

    Yields:
        The delivery, files in application order. Archives are extracted into a
        temporary folder removed on exit (and on SIGTERM or SIGHUP); their files'
        SHA-256 are known from the extraction.

    Raises:
        AafFileError: a missing path, an empty delivery, an unsafe archive, a file
            whose start is invalid or whose content contradicts its name.
    """
    if not paths:
        raise AafFileError("AAF-LIVRAISON-VIDE", value="(aucun chemin)")
    remove_stale("aaf")  # folders left by an import killed outright (kill -9)
    workdir: Path | None = None
    digests: dict[Path, str] = {}
    with ExitStack() as cleanup:
        candidates: list[tuple[Path, str]] = []
        ignored: list[str] = []
        kinds: set[str] = set()
        for raw_path in paths:
            path = Path(raw_path).expanduser()
            shown = str(raw_path)
            if not path.exists():
                raise AafFileError("AAF-LIVRAISON-INTROUVABLE", shown, value=shown, detail="")
            if path.is_dir():
                found, skipped = _folder_files(path)
                candidates.extend(found)
                ignored.extend(skipped)
                kinds.add("dossier")
            elif _is_archive(path):
                if workdir is None:
                    workdir = cleanup.enter_context(scratch_folder("aaf"))
                target = workdir / f"{len(kinds)}-{len(candidates)}"
                target.mkdir()
                if path.name.lower().endswith(".zip"):
                    candidates.extend(_extract_zip(path, target, path.name, digests))
                    kinds.add("zip")
                else:
                    candidates.extend(_extract_tar(path, target, path.name, digests))
                    kinds.add("tgz")
            else:
                candidates.append((path, path.name))
                kinds.add("fichiers")
        if not candidates:
            raise AafFileError("AAF-LIVRAISON-VIDE", value=", ".join(str(p) for p in paths))
        try:
            files = [_describe(path, name) for path, name in candidates]
        except AafFileError as error:  # every malformed file named in one refusal
            raise delivery_refusal(error, candidates) from error
        for delivery_file in files:
            delivery_file._sha256 = digests.get(delivery_file.path)
        files.sort(key=DeliveryFile.sort_key)
        source_kind = kinds.pop() if len(kinds) == 1 else "mixte"
        yield Delivery([str(Path(p).expanduser().resolve()) for p in paths], source_kind,
                       files, ignored)
