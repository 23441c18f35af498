"""Console commands of the CLI: ``console`` (optionally on the scripted engine), ``themes``
(list and check theme files) and ``console-bench``. Imports Textual only when run."""

from __future__ import annotations

import argparse
from typing import Any

from yearchange_tui.cli.util import (
    EXIT_OK,
    EXIT_USAGE,
    JSON_HELP,
    err,
    print_json,
    settings_from_args,
)


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the console's commands to the ``yearchange`` parser."""
    console = commands.add_parser(
        "console", parents=[common], help="ouvrir la console opérateur",
        description="Ouvre la console ; --scripted N l'ouvre sur un moteur simulé de N "
                    "établissements (formation, démonstration, sans base).")
    console.add_argument("--scripted", type=int, metavar="N", default=None,
                         help="moteur simulé de N établissements")
    console.add_argument("--theme", metavar="NOM", default=None, help="thème à utiliser")
    console.set_defaults(handler=cmd_console)

    themes = commands.add_parser("themes", parents=[common],
                                 help="lister et vérifier les thèmes de la console")
    themes.add_argument("--check", action="store_true",
                        help="sortie 2 si un fichier de thème est invalide")
    themes.add_argument("--json", action="store_true", help=JSON_HELP)
    themes.set_defaults(handler=cmd_themes)

    keys = commands.add_parser("keys", parents=[common],
                               help="lister les touches de la console et leurs identifiants")
    keys.add_argument("--json", action="store_true", help=JSON_HELP)
    keys.set_defaults(handler=cmd_keys)

    bench = commands.add_parser(
        "console-bench", parents=[common],
        help="mesurer la console sans terminal (latence touche → affichage, filtre, "
             "calendrier, CPU au repos, mémoire)",
        description="Mesure la console sans terminal sur une base réelle remplie pour "
                    "l'occasion (SQLite temporaire, ou la base vide que nomme --db), "
                    "interrogée par le vrai client ; --scripted la mesure sur le moteur "
                    "simulé.")
    bench.add_argument("--establishments", type=int, default=1000, metavar="N",
                       help="nombre d'établissements (défaut 1000)")
    bench.add_argument("--scripted", action="store_true",
                       help="moteur simulé, sans base (sans le coût réel des lectures)")
    bench.add_argument("--full-reads", action="store_true",
                       help="chaque lecture relit tous les établissements (comparaison avec "
                            "la console d'avant la lecture incrémentale)")
    bench.add_argument("--idle-seconds", type=float, default=10.0, metavar="S",
                       help="durée de chaque mesure du CPU au repos (défaut 10)")
    bench.add_argument("--running", type=int, default=8, metavar="U",
                       help="unités en cours pendant la mesure (défaut 8)")
    bench.add_argument("--presses", type=int, default=100, metavar="K",
                       help="nombre de touches mesurées (défaut 100)")
    bench.add_argument("--json", action="store_true", help=JSON_HELP)
    bench.set_defaults(handler=cmd_console_bench)


def cmd_console(args: argparse.Namespace) -> int:
    """``yearchange console [--scripted N]``."""
    if args.scripted is None:
        # cli.main imports this module to register its commands: a top-level import is a cycle.
        from yearchange_tui.cli.main import open_console

        return int(open_console(args) or 0)
    # Textual is loaded only when a console opens, not for the other commands.
    from yearchange_tui.tui.app import YearChangeApp, theme_dirs_for
    from yearchange_tui.tui.fake_engine import FakeEngine

    engine = FakeEngine(max(1, args.scripted), auto=True, step_total=20, workers=2,
                        read_only=bool(getattr(args, "read_only", False)))
    engine.start_script(0.25)
    app = YearChangeApp(engine, read_only=engine.read_only, rejects=engine.rejects,
                        details=engine, theme=args.theme, theme_dirs=theme_dirs_for())
    try:
        return int(app.run() or 0)
    finally:
        app.bridge.stop()
        engine.close()


def cmd_themes(args: argparse.Namespace) -> int:
    """``yearchange themes [--check]``."""
    # Textual (theme parsing) is loaded only by this command, not by the other commands.
    from yearchange_tui.tui.app import theme_dirs_for
    from yearchange_tui.tui.theming import load_theme_dirs

    folders = theme_dirs_for()
    loaded = load_theme_dirs(folders)
    if args.json:
        print_json({"themes": {name: str(path) for name, path in loaded.sources.items()},
                    "errors": loaded.errors, "folders": [str(f) for f in folders]})
    else:
        for name, path in sorted(loaded.sources.items()):
            print(f"✓ {name:<28} {path}")
        for error in loaded.errors:
            print(f"✗ {error}")
    if loaded.errors and args.check:
        err(f"yearchange : {len(loaded.errors)} fichier(s) de thème invalide(s).")
        return EXIT_USAGE
    return EXIT_OK


def cmd_keys(args: argparse.Namespace) -> int:
    """``yearchange keys``: every binding id, its keys (config remaps applied), its label."""
    # Textual (key bindings) is loaded only by this command, not by the other commands.
    from yearchange_tui.tui.bindings import (
        SPECS,
        display_keys,
        effective_keys,
        keymap_from_settings,
    )

    settings = settings_from_args(args)
    raw = settings.values["keys"].value if "keys" in settings.values else None
    keymap, problems = keymap_from_settings(raw)
    rows = [{"id": spec.id, "keys": effective_keys(spec.id, keymap), "label": spec.label,
             "scope": spec.scope, "changes_data": spec.changes_data} for spec in SPECS]
    if args.json:
        print_json({"bindings": rows, "problems": problems})
        return EXIT_OK
    scopes = {"app": "partout", "grid": "grille", "rejects": "rejets", "log": "journal",
              "detail": "détail", "timeline": "calendrier", "school-life": "vie scolaire"}
    for row in rows:
        print(f"{row['id']:<22} {display_keys(row['keys']):<16} {scopes[row['scope']]:<13} "
              f"{row['label']}")
    for problem in problems:
        err(f"yearchange : {problem}")
    return EXIT_OK


def cmd_console_bench(args: argparse.Namespace) -> int:
    """``yearchange console-bench``."""
    # Textual is loaded only when the console bench runs, not for the other commands.
    from yearchange_tui.bench.console import bench_console
    from yearchange_tui.sample.fill import SampleDatabaseNotEmptyError

    if args.establishments < 1 or args.presses < 1 or args.idle_seconds <= 0:
        err("yearchange : --establishments, --presses et --idle-seconds doivent être "
            "positifs.")
        return EXIT_USAGE
    try:
        result = bench_console(args.establishments, args.running, args.presses,
                               db_url=getattr(args, "db", None), scripted=args.scripted,
                               idle_seconds=args.idle_seconds,
                               full_reads=args.full_reads)
    except SampleDatabaseNotEmptyError as error:
        err(f"yearchange : {error}")
        return EXIT_USAGE
    if args.json:
        print_json(result)
        return EXIT_OK
    latency = result["key_to_redraw_ms"]
    where = ("moteur simulé" if result.get("engine") == "scripted"
             else f"base {result['backend']} (client réel)")
    print(f"Console — {result['establishments']} établissements, {result['running_units']} "
          f"unités en cours, {where}, terminal {result['terminal'][0]}×"
          f"{result['terminal'][1]}")
    print(f"  touche → affichage : p50 {latency['p50']} ms, p95 {latency['p95']} ms, "
          f"max {latency['max']} ms ({latency.get('measured', result.get('measured'))} "
          "touches)" + _cpu(latency))
    if result.get("engine") == "database":
        typed, calendar = result["filter_keystroke_ms"], result["calendar_open_ms"]
        idle, poll = result["idle_cpu_percent"], result["poll"]
        print(f"  frappe du filtre : p50 {typed['p50']} ms, p95 {typed['p95']} ms, "
              f"max {typed['max']} ms" + _cpu(typed))
        print(f"  ouverture du calendrier : p50 {calendar['p50']} ms, "
              f"max {calendar['max']} ms" + _cpu(calendar))
        print(f"  CPU au repos : {idle['units_running']} % d'un cœur (unités en cours), "
              f"{idle['engine_quiet']} % (moteur calme)")
        print(f"  lectures : première {poll['first_cpu_s']} s CPU, puis "
              f"{poll['later_cpu_ms_mean']} ms CPU en moyenne ({poll['count']} lectures)")
        print(f"  base remplie en {result['build_s']} s, premier affichage complet en "
              f"{result['first_load_s']} s")
    print(f"  tableau de progression : {result['board']['reports']} rapports, "
          f"{result['board']['drains']} vidages")
    print(f"  mémoire : pic {result['peak_rss_mb']} Mo (hausse {result['rss_growth_mb']} Mo)")
    if result.get("load") is not None:
        print(f"  charge de la machine (1 min) : {result['load']}")
    return EXIT_OK


def _cpu(figures: dict[str, Any]) -> str:
    """The CPU beside a wall-clock latency (a loaded machine stretches only the latter)."""
    if figures.get("cpu_p50") is None:
        return ""
    return f" ; CPU p50 {figures['cpu_p50']} ms, p95 {figures['cpu_p95']} ms"
