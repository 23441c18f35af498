"""Each establishment's AAF rejects, published to its own heads (seed §3.3: « Sensibiliser
les administrateurs à consulter les rejets sur leur portail »; checklist row 20, issue #15).

``yearchange rejects --publish [--uai U] [--import N]`` writes, per establishment with
rejects in the import, a CSV (the one CSV writer, :mod:`yearchange_tui.ent.csvfile`, the
columns of ``rejects --csv``) in the establishment's space
(``<UAI>/rejets/rejets-<UAI>-import-<N>.csv``) attached to an internal message to its
heads (profile direction) — the path the step-2 sanctions CSV takes, with a printable
HTML of the same rows beside it (``rejets-<UAI>-import-<N>.html``, :func:`html_document`,
also written alone by ``rejects --html``). An import is published once per
establishment: publishing it again is refused for that establishment (« déjà publiés
le … », date in the operator's zone) unless ``republish`` (``--republier``), which
replaces the earlier message and files; every publication is audited. Runs on the
caller's thread.
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, func, select

from yearchange_tui.changeover.archives import printable_page
from yearchange_tui.changeover.effects import RealEffects, Tally
from yearchange_tui.changeover.steps.archive import heads_query
from yearchange_tui.ent.csvfile import csv_bytes
from yearchange_tui.ent.models import (
    Message,
    MessageAttachment,
    MessageCopy,
    StoredFile,
)
from yearchange_tui.importing.models import AafImport, AafReject
from yearchange_tui.workflow.audit import audit
from yearchange_tui.workflow.localtime import format_local

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
    html_path: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"uai": self.uai, "import": self.import_id, "rejects": self.rejects,
                "by_severity": self.by_severity, "recipients": self.recipients,
                "path": self.path, "html_path": self.html_path, "replaced": self.replaced,
                "problem": self.problem}


HTML_HEADINGS = ("Import", "UAI", "Code", "Sévérité", "Fichier", "Ligne", "Identifiant",
                 "Type", "Requête", "Attribut", "Valeur", "Explication", "Action")
"""French headings of the printable HTML, one per :data:`CSV_COLUMNS` column."""


def html_name(uai: str, import_id: int) -> str:
    """The printable file's name: ``rejets-<UAI>-import-<N>.html``."""
    return f"rejets-{uai}-import-{import_id}.html"


def _rows(connection: Connection, import_id: int, uai: str) -> Any:
    """The establishment's rejects of the import, streamed, in file and line order."""
    return connection.execute(
        select(AafReject.__table__).where(AafReject.import_id == import_id,
                                          AafReject.uai == uai)
        .order_by(AafReject.file_name, AafReject.line, AafReject.id)
        .execution_options(yield_per=2000))


def html_document(connection: Connection, import_id: int, uai: str, name: str) -> bytes:
    """A printable HTML (French, escaped) of one establishment's rejects of an import: the
    rows and columns of the CSV, under the archives' page and style."""
    cells = []
    count = 0
    for row in _rows(connection, import_id, uai):
        count += 1
        cells.append("<tr>" + "".join(f"<td>{html.escape(str(value))}</td>"
                                      for value in csv_row(row)) + "</tr>")
    head = "".join(f"<th>{html.escape(label)}</th>" for label in HTML_HEADINGS)
    title = f"Rejets de l'import AAF n° {import_id} — {uai}"
    body = (f"<h1>{html.escape(title)}</h1>"
            f"<p>{html.escape(name)} — {count} rejet(s) ou avertissement(s). Chaque ligne "
            "donne le fichier, la ligne, l'explication et l'action à mener.</p>"
            f"<table><tr>{head}</tr>{''.join(cells)}</table>")
    return printable_page(title, body).encode("utf-8")


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
                    uais: list[str] | None = None,
                    republish: bool = False) -> list[Publication]:
    """Publish each establishment's rejects of an AAF import to its heads.

    Args:
        runner: the change-over runner (database and storage).
        import_id: the import (default: the latest AAF delivery).
        uais: only these establishments (default: every one with rejects in the import).
        republish: send again to an establishment the import was already published to
            (replacing the earlier message and files); without it, that establishment is
            refused (``REJETS-DEJA-PUBLIES``).

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
            if not total:
                published.append(Publication(ref.uai, import_id, 0, {}, 0, "", False,
                                             "aucun rejet dans cet import, rien à publier"))
                continue
            heads = list(connection.scalars(heads_query(ref.id)))
            if not heads:
                published.append(Publication(
                    ref.uai, import_id, total, dict(severities), 0, "", False,
                    "aucun chef d'établissement (profil direction) à qui publier "
                    "[REJETS-SANS-DIRECTION]"))
                continue
            earlier = _earlier(connection, ref.id, import_id)
            if earlier is not None and not republish:
                published.append(Publication(
                    ref.uai, import_id, total, dict(severities), 0, "", False,
                    f"déjà publiés le {format_local(earlier, '%d/%m/%Y à %H:%M')} ; "
                    "--republier pour les envoyer à nouveau [REJETS-DEJA-PUBLIES]"))
                continue
            replaced = _remove_earlier(connection, ref.id, import_id)
            data = csv_bytes(CSV_COLUMNS, (csv_row(row)
                                           for row in _rows(connection, import_id, ref.uai)))
            html_path = f"{ref.uai}/rejets/{html_name(ref.uai, import_id)}"
            printable = html_document(connection, import_id, ref.uai, ref.name)
            RealEffects(runner.storage_root, tally).send_message(
                connection, establishment_id=ref.id, recipient_ids=heads,
                subject=subject(import_id), body=body(ref.name, import_id, total,
                                                      dict(severities)),
                sent_at=now, attachments=[(path, data, "text/csv"),
                                          (html_path, printable, "text/html")],
                label="rejets publiés")
        publication = Publication(ref.uai, import_id, total, dict(severities), len(heads),
                                  path, replaced, html_path=html_path)
        with runner.database.session() as session:
            audit(session, "rejects-publish", "done", establishment_id=ref.id,
                  details=publication.as_dict())
        published.append(publication)
    return published


def _earlier(connection: Connection, establishment_id: int,
             import_id: int) -> Any:
    """When the import was last published to the establishment (None: never)."""
    return connection.scalar(select(func.max(Message.sent_at)).where(
        Message.establishment_id == establishment_id, Message.subject == subject(import_id),
        Message.is_system.is_(True)))


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
