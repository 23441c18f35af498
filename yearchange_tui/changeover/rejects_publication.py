"""Each establishment's AAF rejects, published to its own heads (seed §3.3: « Sensibiliser
les administrateurs à consulter les rejets sur leur portail »; checklist row 20, issue #15).

``yearchange rejects --publish [--uai U] [--import N]`` writes, per establishment with
rejects in the import, a CSV (the one CSV writer, :mod:`yearchange_tui.ent.csvfile`, the
columns of ``rejects --csv``) in the establishment's space
(``<UAI>/rejets/rejets-<UAI>-import-<N>.csv``) attached to an internal message to its
heads (profile direction) — the path the step-2 sanctions CSV takes. Publishing the same
import again replaces the earlier message and file (and says so); every publication is
audited. Runs on the caller's thread.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select

from yearchange_tui.changeover.effects import RealEffects, Tally
from yearchange_tui.ent.csvfile import csv_bytes
from yearchange_tui.ent.models import (
    Message,
    MessageAttachment,
    MessageCopy,
    PersonProfile,
    Profile,
    StoredFile,
)
from yearchange_tui.importing.models import AafImport, AafReject
from yearchange_tui.workflow.audit import audit

if TYPE_CHECKING:
    from yearchange_tui.changeover.runner import ChangeoverRunner

CSV_COLUMNS = ("import", "uai", "code", "severite", "fichier", "ligne", "identifiant", "type",
               "requete", "attribut", "valeur", "explication", "action")
"""The columns of every rejects CSV (``rejects --csv`` and the published file)."""


def csv_row(row: Any) -> tuple[Any, ...]:
    """One reject (an :class:`AafReject` or a row of its table) as a CSV row of
    :data:`CSV_COLUMNS`."""
    return (row.import_id, row.uai, row.code, row.severity, row.file_name, row.line or "",
            row.record_id, row.kind, row.request, row.attribute, row.raw_value, row.message,
            row.action)


class PublicationError(ValueError):
    """A publication refused before anything is written (French, stable code)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(f"{message} [{code}]")


@dataclass(frozen=True)
class Publication:
    """What was published for one establishment."""

    uai: str
    import_id: int
    rejects: int
    by_severity: dict[str, int]
    recipients: int
    path: str
    replaced: bool
    problem: str = ""  # why nothing was published (French), when nothing was

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"uai": self.uai, "import": self.import_id, "rejects": self.rejects,
                "by_severity": self.by_severity, "recipients": self.recipients,
                "path": self.path, "replaced": self.replaced, "problem": self.problem}


def subject(import_id: int) -> str:
    """The message's subject, one per import (what a re-publication replaces)."""
    return f"[Import AAF] Rejets de l'import n° {import_id}"


def body(name: str, import_id: int, rejects: int, by_severity: dict[str, int]) -> str:
    """The message's body."""
    detail = ", ".join(f"{count} {severity}(s)" for severity, count in sorted(by_severity.items()))
    return (
        "Bonjour,\n\n"
        f"L'import de l'annuaire académique (AAF) n° {import_id} a rejeté ou signalé "
        f"{rejects} enregistrement(s) pour {name} ({detail}). Vous trouverez ci-joint "
        "chaque rejet avec son fichier, sa ligne, son explication et l'action à mener ; la "
        "plupart se corrigent dans SIECLE ou STS-web et sont visibles dans l'ENT après le "
        "prochain import.\n\n"
        "Cordialement")


def latest_aaf_import(runner: ChangeoverRunner) -> int | None:
    """The latest AAF delivery's number (timetable imports share the rejects store)."""
    with runner.database.session() as session:
        return session.scalar(select(AafImport.id).where(AafImport.mode != "timetable")
                              .order_by(AafImport.id.desc()).limit(1))


def publish_rejects(runner: ChangeoverRunner, import_id: int | None = None,
                    uais: list[str] | None = None) -> list[Publication]:
    """Publish each establishment's rejects of an AAF import to its heads.

    Args:
        runner: the change-over runner (database and storage).
        import_id: the import (default: the latest AAF delivery).
        uais: only these establishments (default: every one with rejects in the import).

    Returns:
        One :class:`Publication` per establishment, by UAI.

    Raises:
        PublicationError: no AAF import, or an unknown import.
    """
    runner.refuse_read_only("la publication des rejets")
    if import_id is None:
        import_id = latest_aaf_import(runner)
        if import_id is None:
            raise PublicationError("REJETS-AUCUN-IMPORT", "Aucun import AAF dans la base.")
    with runner.database.session() as session:
        if session.get(AafImport, import_id) is None:
            raise PublicationError("REJETS-IMPORT-INCONNU", f"Import AAF n° {import_id} inconnu.")
        with_rejects = set(session.scalars(select(AafReject.uai).where(
            AafReject.import_id == import_id, AafReject.uai != "").distinct()))
    refs = [ref for ref in runner.establishments(uais) if uais or ref.uai in with_rejects]
    now = runner.now()
    published = []
    for ref in refs:
        tally = Tally()
        with runner.database.engine.begin() as connection:
            severities = Counter(dict(connection.execute(
                select(AafReject.severity, func.count(AafReject.id)).where(
                    AafReject.import_id == import_id, AafReject.uai == ref.uai)
                .group_by(AafReject.severity)).all()))
            total = sum(severities.values())
            path = f"{ref.uai}/rejets/rejets-{ref.uai}-import-{import_id}.csv"
            heads = list(connection.scalars(
                select(PersonProfile.person_id).where(
                    PersonProfile.establishment_id == ref.id,
                    PersonProfile.profile == Profile.DIRECTION)
                .distinct().order_by(PersonProfile.person_id)))
            if not total:
                published.append(Publication(ref.uai, import_id, 0, {}, 0, "", False,
                                             "aucun rejet dans cet import, rien à publier"))
                continue
            if not heads:
                published.append(Publication(
                    ref.uai, import_id, total, dict(severities), 0, "", False,
                    "aucun chef d'établissement (profil direction) à qui publier "
                    "[REJETS-SANS-DIRECTION]"))
                continue
            replaced = _remove_earlier(connection, ref.id, import_id)
            rows = connection.execute(
                select(AafReject.__table__).where(AafReject.import_id == import_id,
                                                  AafReject.uai == ref.uai)
                .order_by(AafReject.file_name, AafReject.line, AafReject.id)
                .execution_options(yield_per=2000))
            data = csv_bytes(CSV_COLUMNS, (csv_row(row) for row in rows))
            RealEffects(runner.storage_root, tally).send_message(
                connection, establishment_id=ref.id, recipient_ids=heads,
                subject=subject(import_id), body=body(ref.name, import_id, total,
                                                      dict(severities)),
                sent_at=now, attachments=[(path, data, "text/csv")],
                label="rejets publiés")
        publication = Publication(ref.uai, import_id, total, dict(severities), len(heads),
                                  path, replaced)
        with runner.database.session() as session:
            audit(session, "rejects-publish", "done", establishment_id=ref.id,
                  details=publication.as_dict())
        published.append(publication)
    return published


def _remove_earlier(connection: Any, establishment_id: int, import_id: int) -> bool:
    """Remove an earlier publication of the same import (message, copies, attachment,
    stored file row; the file itself is overwritten). True when there was one."""
    earlier = list(connection.scalars(select(Message.id).where(
        Message.establishment_id == establishment_id, Message.subject == subject(import_id),
        Message.is_system.is_(True))))
    if not earlier:
        return False
    files = list(connection.scalars(select(MessageAttachment.stored_file_id).where(
        MessageAttachment.message_id.in_(earlier))))
    connection.execute(delete(MessageAttachment).where(
        MessageAttachment.message_id.in_(earlier)))
    connection.execute(delete(MessageCopy).where(MessageCopy.message_id.in_(earlier)))
    connection.execute(delete(Message).where(Message.id.in_(earlier)))
    if files:
        connection.execute(delete(StoredFile).where(StoredFile.id.in_(files)))
    return True
