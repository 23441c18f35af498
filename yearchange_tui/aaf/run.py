"""The state of one AAF import run, declared in one place.

An :class:`ImportRun` holds what the run was given (session, delivery, scope, clock),
what it has learnt so far (structures, establishments, nomenclatures, counters,
rejects waiting to be written) and, in :class:`FileGroup`, what waits in the batches
of the dated delivery being read. The collaborators of the import (rejects,
structures, people, links, absent people, the end of the import) are functions
that take the run; none of them keeps state of its own.

Runs on the caller's thread, like :mod:`yearchange_tui.aaf.importer`.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from yearchange_tui.aaf.delivery import (
    COMPLET,
    KIND_ELEVE,
    KIND_ETAB,
    KIND_PERS_EDUC_NAT,
    KIND_PERS_REL_ELEVE,
    Delivery,
    DeliveryFile,
)
from yearchange_tui.aaf.prepare import Prepared
from yearchange_tui.aaf.records import Issue, PersonRow
from yearchange_tui.ent.models import SchoolYear
from yearchange_tui.importing.models import AafImport
from yearchange_tui.workflow.events import Observer

BATCH_SIZE = 1000
"""Records written per batch."""

MODE_IMPORT = "import"
MODE_INIT = "step-4"

STEP4_NEEDS_COMPLET = "AAF-ETAPE4-COMPLET-REQUIS"
"""Step 4 refused for an establishment: the delivery is not its « complet d'initialisation »."""

PERSON_KINDS = (KIND_ELEVE, KIND_PERS_REL_ELEVE, KIND_PERS_EDUC_NAT)

ProgressCallback = Callable[[str], None]


@dataclass
class StructureInfo:
    """A structure known to the import (delivered now or earlier)."""

    jointure: str
    uai: str
    name: str
    establishment_id: int | None
    refused: str | None = None
    classes: dict[str, tuple[str, str]] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)
    is_school: bool = True


@dataclass
class EstablishmentContext:
    """How the import treats one establishment: scope, mode, target school year, counts."""

    id: int
    uai: str
    name: str
    project_id: int
    in_scope: bool
    mode: str = MODE_IMPORT
    year_id: int = 0
    year_label: str = ""
    year_starts_on: dt.date | None = None
    previous_year_id: int | None = None
    overridden: bool = False
    counts: Counter[str] = field(default_factory=Counter)
    classes: dict[str, int] | None = None
    groups: dict[str, int] | None = None
    created_class_ids: set[int] = field(default_factory=set)
    refusal: str | None = None  # step 4 refused (STEP4_NEEDS_COMPLET): nothing written for it
    refusal_files: list[str] = field(default_factory=list)


class RecordRef(NamedTuple):
    """Where a record is, for rejects decided after its element is gone."""

    file: str
    line: int
    identifier: str
    kind: str
    request: str


class PendingPerson:
    """A person record accepted so far, waiting for its batch to be written."""

    __slots__ = (
        "class_keys",
        "classes",
        "establishment_id",
        "establishments",
        "group_keys",
        "groups",
        "heads",
        "issues",
        "name",
        "profiles",
        "raw_xml",
        "ref",
        "row",
        "subjects",
    )

    def __init__(self, row: PersonRow, ref: RecordRef, establishment_id: int | None) -> None:
        self.row = row
        self.ref = ref
        self.establishment_id = establishment_id
        self.establishments: set[int] = set()
        self.classes: dict[int, set[int]] | None = None  # year -> class ids
        self.groups: dict[int, set[int]] | None = None
        self.class_keys: list[tuple[int, str]] = []  # classes to create (students)
        self.group_keys: list[tuple[int, str]] = []
        self.profiles: set[tuple[int, str, str]] = set()
        self.heads: dict[int, list[dict[str, Any]]] | None = None
        self.subjects: dict[int, list[dict[str, Any]]] | None = None
        self.name = ""
        self.issues: list[Issue] = []  # relatives: stored once their establishment is known
        self.raw_xml: str | None = None


@dataclass
class FileGroup:
    """What the run holds while it reads one dated delivery (a group of files).

    Person identifiers and links go to the staging tables by batch (see
    :func:`yearchange_tui.aaf.directory.create_staging`): nothing per record stays
    here longer than a batch.
    """

    is_complet: bool = False
    has_structures: bool = False
    files: list[str] = field(default_factory=list)
    present_rows: list[tuple[str, int, str, int]] = field(default_factory=list)
    link_rows: list[tuple[Any, ...]] = field(default_factory=list)
    covered: set[int] = field(default_factory=set)
    batches: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    batch_ids: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    deletes: dict[str, list[tuple[RecordRef, Prepared | None]]] = field(
        default_factory=lambda: defaultdict(list))

    @classmethod
    def of(cls, files: Sequence[DeliveryFile]) -> FileGroup:
        """The empty state for one dated delivery's files."""
        return cls(is_complet=any(f.delivery_type == COMPLET for f in files),
                   has_structures=any(f.kind == KIND_ETAB for f in files),
                   files=[f.name for f in files])


@dataclass(eq=False)
class ImportRun:
    """One import over one delivery, inside one session/transaction."""

    session: Session
    connection: Connection
    delivery: Delivery
    scope: set[int] | None
    step4: bool
    now: dt.datetime
    observer: Observer
    progress: ProgressCallback | None
    dry_run: bool
    year_n: SchoolYear
    import_row: AafImport
    import_id: int
    structures: dict[str, StructureInfo]
    subject_ids: dict[str, int]
    mef_codes: set[str]
    files_by_name: dict[str, DeliveryFile]
    bytes_total: int
    bytes_done: int = 0
    contexts: dict[int, EstablishmentContext] = field(default_factory=dict)
    records: Counter[str] = field(default_factory=Counter)
    records_by_kind: dict[str, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter))
    rejects: list[dict[str, Any]] = field(default_factory=list)
    deferred: list[tuple[RecordRef, dict[str, Any]]] = field(default_factory=list)
    reject_counts: dict[int | None, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter))
    # Person outcomes of establishments the import holds no context in scope for (None:
    # no establishment), so that every person is in one line of the summary.
    outside_counts: dict[int | None, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter))
    unknown: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    teacher_only: dict[tuple[int, str], list[Any]] = field(default_factory=dict)
    file_rows: list[dict[str, Any]] = field(default_factory=list)
    projects: list[Any] | None = None
    group: FileGroup = field(default_factory=FileGroup)


def count(run: ImportRun, kind: str, outcome: str, establishment_id: int | None = None) -> None:
    """Count one record's outcome (``imported``, ``refused``, ``skipped``).

    A refused person is also counted in one line of the summary: its establishment's,
    or the one of people with no establishment in scope.
    """
    run.records[outcome] += 1
    run.records_by_kind[kind][outcome] += 1
    if outcome == "refused" and kind in PERSON_KINDS:
        person_counts(run, establishment_id)["refused"] += 1


def person_counts(run: ImportRun, establishment_id: int | None) -> Counter[str]:
    """Where a person's outcome is counted: its establishment's line, or an outside one."""
    context = run.contexts.get(establishment_id) if establishment_id is not None else None
    if context is not None and context.in_scope:
        return context.counts
    return run.outside_counts[establishment_id]
