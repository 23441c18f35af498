"""``yearchange bench``: the engine's parts against the machine's floor, measured in one run."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from yearchange_tui.bench.changeover import run_bench
from yearchange_tui.bench.postgres import BenchDatabaseError, run_linearity, run_pg_bench
from yearchange_tui.bench.scale import (
    BENCH_URL_VARIABLE,
    ScaleBenchError,
    run_scale_bench,
    scale_lines,
    scale_url,
)
from yearchange_tui.cli.util import EXIT_OK, JSON_HELP, UsageError, err, print_json
from yearchange_tui.sample.attachments import PROFILES

PG_URL_VARIABLE = BENCH_URL_VARIABLE
LINEARITY_SIZES = (5, 20, 60)


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``yearchange bench``."""
    bench = commands.add_parser(
        "bench", parents=[common], help="mesurer les débits face au plancher de la machine",
        description="Construit une académie d'exemple (20 établissements, 3 avec --quick) dans "
                    "un dossier temporaire et mesure les étapes 2 et 3 (et l'import AAF) face "
                    "au plancher mesuré dans la même exécution. Avec --db postgresql://… "
                    f"(ou la variable {PG_URL_VARIABLE}), les mêmes mesures sur PostgreSQL, "
                    "dans des bases que le banc crée puis supprime sur ce serveur.")
    bench.add_argument("--quick", action="store_true", help="3 établissements au lieu de 20")
    bench.add_argument("--establishments", type=int, default=None, metavar="N",
                       help="nombre d'établissements (défaut 20, 3 avec --quick)")
    bench.add_argument("--keep", metavar="DIR", type=Path, default=None,
                       help="garder l'académie mesurée dans DIR")
    bench.add_argument("--workers", type=int, default=None, metavar="N",
                       help="processus pour l'étape 2 (défaut : min(2, cœurs))")
    bench.add_argument("--scale", action="store_true",
                       help="PostgreSQL : unités par seconde avec 1 puis 2 processus de travail, "
                            "projection pour 10 000 établissements (--db postgresql://… ou "
                            "YEARCHANGE_BENCH_PG_URL ; défaut 10 établissements)")
    bench.add_argument("--linearity", action="store_true",
                       help="PostgreSQL : simulation d'académies fraîchement importées de "
                            "5, 20 et 60 établissements, temps par établissement")
    bench.add_argument("--sizes", default=None, metavar="N,N,…",
                       help="tailles mesurées avec --linearity (défaut 5,20,60)")
    bench.add_argument("--attachments", choices=PROFILES, default="realistic",
                       help="pièces jointes de l'académie mesurée : realistic (défaut, tailles "
                            "d'un vrai ENT) ou small (÷256, mesure rapide)")
    bench.add_argument("--json", action="store_true", help=JSON_HELP)
    bench.set_defaults(handler=cmd_bench)


def _load(value: float | None) -> str:
    return "" if value is None else f"[charge {value:.2f}]"


def _print_step2(s2: dict[str, Any]) -> None:
    """Step 2 against its floor (both backends print it the same way)."""
    print(f"  étape 2 : {s2['engine_mb_per_s']} Mo/s (non compressés, {s2['archives']} archives, "
          f"{s2['workers']} processus, niveau {s2['archive_level']}) {_load(s2['load'])}")
    print(f"    plancher zlib + écriture (mêmes processus, établissements entiers, membres distincts une fois par établissement) : "
          f"{s2['zlib_mb_per_s']} Mo/s {_load(s2['floor_load'])}")
    print(f"    par cœur : {s2['engine_mb_per_s_per_core']} Mo/s contre "
          f"{s2['zlib_mb_per_s_per_core']} Mo/s → ratio {s2['ratio']}")


def _print_archive_check(s3: dict[str, Any]) -> None:
    """Step 3's archive check (a rule of the model the floor does not pay), timed apart."""
    gigabytes = f"{s3['archive_check_bytes'] / 1e9:.2f}".replace(".", ",")
    print(f"    dont contrôle SHA-256 des archives de l'étape 2 avant suppression "
          f"({gigabytes} Go, mesuré à part) : {min(s3['archive_check_seconds'])} s ; "
          f"ratio hors contrôle (estimé) {s3['ratio_without_archive_check'] or '—'}")
    if s3.get("ratio_same_work") is not None:
        print(f"    même travail : plancher + lecture et SHA-256 des mêmes archives "
              f"(hashlib, {min(s3['archive_check_floor_seconds'])} s) → ratio "
              f"{s3['ratio_same_work']}")


def _pg_url(args: argparse.Namespace) -> str | None:
    """The PostgreSQL server of ``--db`` (or YEARCHANGE_BENCH_PG_URL); None for SQLite.

    YEARCHANGE_DB (the product's database) never sends the bench anywhere.
    """
    return getattr(args, "db", None) or os.environ.get(PG_URL_VARIABLE) or None


def _sizes(text: str | None) -> tuple[int, ...]:
    if text is None:
        return LINEARITY_SIZES
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise UsageError(f"--sizes attend des nombres d'établissements séparés par des "
                         f"virgules, comme 5,20,60 (reçu : {text}).")
    return sizes


def cmd_bench(args: argparse.Namespace) -> int:
    """``yearchange bench``."""
    if args.scale:
        return cmd_bench_scale(args)
    url = _pg_url(args)
    if args.linearity and url is None:
        raise UsageError("--linearity mesure PostgreSQL : donnez --db postgresql://… "
                         f"(ou la variable {PG_URL_VARIABLE}).")
    if url is not None:
        try:
            return _cmd_pg_bench(args, url)
        except BenchDatabaseError as error:
            raise UsageError(f"{error.message} (code {error.code})") from error
    count = args.establishments or (3 if args.quick else 20)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        work = args.keep
        result = run_bench(count, work, None if args.json else lambda line: err(f"… {line}"),
                           repeats=2 if args.quick else 3, workers=args.workers,
                           attachments=args.attachments)
    else:
        with tempfile.TemporaryDirectory(prefix="yearchange-bench-") as folder:
            result = run_bench(count, Path(folder),
                               None if args.json else lambda line: err(f"… {line}"),
                               repeats=2 if args.quick else 3, workers=args.workers,
                           attachments=args.attachments)
    if args.json:
        print_json(result)
        return EXIT_OK
    s2, s3 = result["step2"], result["step3"]
    print(f"Banc d'essai — {count} établissements (académie construite en "
          f"{result['sample_build_seconds']} s) ; {result['cores']} cœurs, charge 1 min "
          "relevée après chaque mesure (machine partagée : comparer les ratios, pas les débits)")
    print(f"  étape 3 : {s3['engine_rows_per_s']} lignes/s, plancher DELETE SQL brut "
          f"{s3['raw_sql_rows_per_s']} lignes/s → ratio {s3['ratio']} {_load(s3['load'])}")
    _print_archive_check(s3)
    _print_step2(s2)
    dry = result["dry_run"]
    print(f"  passage à blanc contre l'ancien (archives construites en entier, 1 processus) : "
          f"{dry['speedup_same_process']}× plus rapide en 1 processus (CPU ÷ "
          f"{dry['cpu_ratio_same_process']}), {dry['speedup']}× en {dry['workers']} (CPU ÷ "
          f"{dry['cpu_ratio']}) ; rapports identiques : "
          f"{'oui' if dry['same_report'] else 'NON'} {_load(dry['load'])}")
    aaf = result.get("aaf")
    if aaf:
        print(f"  import AAF : {aaf['import_records_per_s']} enregistrements/s, plancher "
              f"{aaf['floor_records_per_s']} ({_floor_processes(aaf)}) → ratio (horloge) "
              f"{aaf['ratio']}, ratio CPU {aaf['ratio_cpu']} {_load(aaf.get('load'))}")
        for key, value in aaf.items():
            print(f"  AAF {key} : {value}")
    console = result.get("console")
    if console:
        for key, value in console.items():
            print(f"  console {key} : {value}")
    else:
        print("  console : mesure impossible (voir yearchange console-bench)")
    return EXIT_OK


def cmd_bench_scale(args: argparse.Namespace) -> int:
    """``yearchange bench --scale``: 1 then 2 worker processes on PostgreSQL."""
    count = args.establishments or (3 if args.quick else 10)
    try:
        url = scale_url(getattr(args, "db", None))
        with tempfile.TemporaryDirectory(prefix="yearchange-scale-") as folder:
            work = args.keep or Path(folder)
            work.mkdir(parents=True, exist_ok=True)
            result = run_scale_bench(url, count, work,
                                     None if args.json else lambda line: err(f"… {line}"))
    except ScaleBenchError as error:
        raise UsageError(error.message) from error
    if args.json:
        print_json(result)
    else:
        for line in scale_lines(result):
            print(line)
    return EXIT_OK


def _cmd_pg_bench(args: argparse.Namespace, url: str) -> int:
    progress = None if args.json else (lambda line: err(f"… {line}"))
    with tempfile.TemporaryDirectory(prefix="yearchange-bench-") as folder:
        if args.linearity:
            result = run_linearity(url, _sizes(args.sizes), Path(folder), progress)
        else:
            count = args.establishments or (3 if args.quick else 20)
            result = run_pg_bench(url, count, Path(folder), progress,
                                  repeats=2 if args.quick else 3, workers=args.workers,
                                  attachments=args.attachments)
    if args.json:
        print_json(result)
        return EXIT_OK
    if args.linearity:
        _print_linearity(result)
        return EXIT_OK
    _print_pg_bench(result)
    return EXIT_OK


def _ratio(value: float | None) -> str:
    return "non mesurable (serveur distant)" if value is None else str(value)


def _print_pg_bench(result: dict[str, Any]) -> None:
    s2, s3 = result["step2"], result["step3"]
    print(f"Banc d'essai PostgreSQL ({result['server']}) — {result['establishments']} "
          f"établissements (académie construite en {result['sample_build_seconds']} s) ; "
          f"{result['cores']} cœurs, charge 1 min relevée après chaque mesure (machine "
          "partagée : comparer les ratios, pas les débits)")
    print(f"  étape 3 : {s3['engine_rows_per_s']} lignes/s, plancher TRUNCATE "
          f"({len(s3['tables_truncated'])} tables vidées entières, DELETE ensembliste pour "
          f"les autres) {s3['floor_rows_per_s']} lignes/s → ratio (horloge) {s3['ratio']}, "
          f"ratio CPU (client + serveur) {_ratio(s3['ratio_cpu'])} {_load(s3['load'])}")
    _print_archive_check(s3)
    parts = s3["floor_parts_seconds"]
    print(f"    plancher : lignes (TRUNCATE + DELETE + COMMIT) {parts['rows']} s, "
          f"{s3['files_removed']} fichiers supprimés {parts['files']} s, VACUUM (ANALYZE) "
          f"{parts['vacuum']} s ; lignes : moteur {s3['rows_engine']}, plancher "
          f"{s3['rows_floor']}")
    print(f"    taille de la base : {s3['database_bytes_before'] / 1e6:.1f} Mo avant, "
          f"{s3['database_bytes_after_engine'] / 1e6:.1f} Mo après l'étape 3, "
          f"{s3['database_bytes_after_floor'] / 1e6:.1f} Mo après le plancher")
    _print_step2(s2)
    aaf = result.get("aaf")
    if aaf:
        print(f"  import AAF (vers PostgreSQL) : {aaf['import_records_per_s']} "
              f"enregistrements/s, plancher {aaf['floor_records_per_s']} "
              f"({_floor_processes(aaf)}) → ratio (horloge) "
              f"{aaf['ratio']}, ratio CPU (client) {aaf['ratio_cpu']}, ratio CPU (client + "
              f"serveur) {_ratio(aaf.get('ratio_cpu_with_server'))} {_load(aaf.get('load'))}")
        print(f"    CPU : importeur {aaf.get('cpu_importer_s')} s, lecteurs "
              f"{aaf.get('cpu_readers_s')} s ({aaf.get('readers')}), serveur "
              f"{aaf.get('cpu_server_s')} s, plancher {aaf.get('cpu_floor_s')} s")


def _floor_processes(aaf: dict[str, Any]) -> str:
    """How many processes the AAF floor parsed with: as many as the import used."""
    return f"iterparse, {aaf.get('floor_processes', 1)} processus comme l'import"


def _print_linearity(result: dict[str, Any]) -> None:
    print(f"Linéarité de la simulation sur PostgreSQL ({result['server']}), académies "
          f"fraîchement importées ; {result['cores']} cœurs")
    for point in result["points"]:
        cpu = point["cpu_seconds_per_establishment"]
        cpu_text = ("" if cpu is None else
                    f", CPU client + serveur {cpu} s par établissement")
        print(f"  {point['establishments']:>4} établissements : {point['seconds']} s, "
              f"{point['seconds_per_establishment']} s par établissement, CPU du client "
              f"{round(point['client_cpu_seconds'] / point['establishments'], 2)} s par "
              f"établissement{cpu_text} {_load(point['load'])}")
    print(f"  écart des temps par établissement : {result['spread']} "
          f"(cible ≤ {result['target_spread']})")
    if result["spread_cpu"] is not None:
        print(f"  écart du CPU par établissement (insensible à la charge) : "
              f"{result['spread_cpu']}")
