"""Support commands: ``find`` (one search over establishments, people and rejects) and
``person`` (why can't this person log in).

Both read :mod:`yearchange_tui.aaf.support` (the one search, the one person's facts),
the same functions the console's rejects browser and person screen read.
"""

from __future__ import annotations

import argparse
from typing import Any

from yearchange_tui.aaf.support import (
    KIND_LABELS,
    FindResult,
    PersonHit,
    best_person_hits,
    facts_lines,
    find,
    person_facts,
)
from yearchange_tui.cli.tables import print_paragraph, print_table, table
from yearchange_tui.cli.util import (
    EXIT_OK,
    JSON_HELP,
    UsageError,
    day_option,
    open_database_from_args,
    print_json,
)
from yearchange_tui.ent.database import Access
from yearchange_tui.workflow.localtime import local_now


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``find`` and ``person``."""
    finder = commands.add_parser(
        "find", parents=[common], help="chercher un établissement, une personne, un rejet",
        description="Une seule recherche, sans casse ni accents (« noel » trouve « NOËL ») : "
                    "UAI (début), nom d'établissement, code de rejet, identifiant "
                    "(jointure, INE), login et noms.")
    finder.add_argument("text", metavar="TEXTE", help="texte cherché")
    finder.add_argument("--limit", type=int, default=20, metavar="N",
                        help="nombre maximal de résultats par rubrique (défaut : 20)")
    finder.add_argument("--json", action="store_true", help=JSON_HELP)
    finder.set_defaults(handler=cmd_find)

    person = commands.add_parser(
        "person", parents=[common], help="pourquoi cette personne ne peut-elle pas se connecter ?",
        description="Pour une personne trouvée par la recherche (nom, login, jointure, INE) : "
                    "sa fiche, son compte (créé, signalé absent du Complet), sa classe, "
                    "le blocage des accès du jour, ses rejets et la phrase à dire à "
                    "l'établissement.")
    person.add_argument("query", metavar="RECHERCHE", help="nom, login, jointure ou INE")
    person.add_argument("--at", metavar="AAAA-MM-JJ", help="date (défaut : aujourd'hui)")
    person.add_argument("--json", action="store_true", help=JSON_HELP)
    person.set_defaults(handler=cmd_person)


def _check_text(text: str) -> str:
    if not text.strip():
        raise UsageError("Texte de recherche vide : précisez un nom, un UAI, un code…")
    return text


def cmd_find(args: argparse.Namespace) -> int:
    """``yearchange find TEXTE``."""
    text = _check_text(args.text)
    if args.limit < 1:
        raise UsageError("--limit doit être un entier positif.")
    _settings, database = open_database_from_args(args, Access.READ_ONLY)
    with database.session() as session:
        result = find(session, text, args.limit)
    if args.json:
        print_json(_find_json(result))
        return EXIT_OK
    _print_find(result)
    return EXIT_OK


def _find_json(result: FindResult) -> dict[str, Any]:
    return {"text": result.text,
            "establishments": [{"uai": e.uai, "name": e.name} for e in result.establishments],
            "people": [_hit_json(hit) for hit in result.people],
            "people_total": result.people_total,
            "rejects": [{"id": r.id, "import": r.import_id, "uai": r.uai, "code": r.code,
                         "severity": r.severity, "record_id": r.record_id,
                         "message": r.message} for r in result.rejects],
            "rejects_total": result.rejects_total}


def _hit_json(hit: PersonHit) -> dict[str, Any]:
    return {"jointure": hit.jointure, "imported": hit.person_id is not None,
            "last_name": hit.last_name, "first_name": hit.first_name, "kind": hit.kind,
            "login": hit.login, "uai": hit.uai}


def _more(shown: int, total: int) -> str:
    return f" ({shown} affichés sur {total}, --limit pour plus)" if total > shown else ""


def _print_find(result: FindResult) -> None:
    if not (result.establishments or result.people or result.rejects):
        print(f"Rien ne correspond à « {result.text} ».")
        return
    if result.establishments:
        print(f"Établissements : {len(result.establishments)}")
        rows = table(("UAI", {"no_wrap": True}), ("Nom", {"ratio": 1}))
        for hit in result.establishments:
            rows.add_row(hit.uai, hit.name)
        print_table(rows, indent=2)
    if result.people:
        print(f"Personnes : {result.people_total}"
              f"{_more(len(result.people), result.people_total)}")
        rows = table(("Nom", {"ratio": 1}), ("Type", {}), ("UAI", {"no_wrap": True}),
                     ("Jointure", {"no_wrap": True}), ("Compte", {}))
        for hit in result.people:
            name = " ".join(part for part in (hit.last_name, hit.first_name) if part) or "—"
            rows.add_row(name, _kind(hit), hit.uai or "—", hit.jointure or "—",
                         hit.login if hit.person_id is not None else "refusé")
        print_table(rows, indent=2)
    if result.rejects:
        print(f"Rejets : {result.rejects_total}{_more(len(result.rejects), result.rejects_total)}")
        for hit in result.rejects:
            print_paragraph(f"{hit.uai or '—'} · {hit.code} · {hit.record_id or '—'} · "
                            f"import n° {hit.import_id}", "  ", "    ")
            print_paragraph(hit.message, "    ")
    if result.people:
        print_paragraph("Détail d'une personne : yearchange person JOINTURE")


def _kind(hit: PersonHit) -> str:
    return KIND_LABELS.get(hit.kind, hit.kind)


def cmd_person(args: argparse.Namespace) -> int:
    """``yearchange person RECHERCHE [--at DATE]``."""
    text = _check_text(args.query)
    if args.at:
        day = day_option(args.at)
    else:
        day = local_now().date()
    _settings, database = open_database_from_args(args, Access.READ_ONLY)
    with database.session() as session:
        hits = find(session, text, limit=10).people
        hits = best_person_hits(hits, text)
        if not hits:
            raise UsageError(f"Personne inconnue : « {text} » (ni nom, ni login, ni jointure, "
                             "ni INE ; essayez yearchange find).")
        if len(hits) > 1:
            print(f"{len(hits)} personnes correspondent à « {text} » ; précisez (jointure) :")
            for hit in hits:
                print_paragraph(f"{hit.jointure or '—'}  {hit.label}", "  ", "    ")
            return EXIT_OK
        facts = person_facts(session, hits[0], day)
    if args.json:
        decision = facts.decision
        print_json({**_hit_json(facts.hit), "day": day.isoformat(),
                    "account": facts.account, "absent_since": (
                        facts.absent_since.isoformat() if facts.absent_since else None),
                    "classes": [{"year": label, "code": code} for label, code in facts.classes],
                    "likely_previous_year_classes": [
                        {"code": code, "reason": reason} for code, reason in facts.old_classes],
                    "blocked": bool(decision and decision.blocked),
                    "access": facts.access,
                    "block_message": decision.message if decision else "",
                    "rejects": [{"code": r.code, "severity": r.severity, "import": r.import_id,
                                 "where": r.where, "message": r.message, "action": r.action}
                                for r in facts.rejects],
                    "advice": facts.advice, "raw_xml": facts.raw_xml})
        return EXIT_OK
    for label, value in facts_lines(facts):
        if label:
            print_paragraph(f"{label} : {value}", "", "    ")
        else:
            print_paragraph(value, "    ", "      ")
    if facts.raw_xml:
        print("Dernier enregistrement XML :")
        print(facts.raw_xml.rstrip())
    return EXIT_OK
