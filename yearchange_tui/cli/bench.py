"""``yearchange bench``: the engine's parts against the machine's floor, measured in one run."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from yearchange_tui.bench.changeover import run_bench
from yearchange_tui.bench.scale import ScaleBenchError, run_scale_bench, scale_lines, scale_url
from yearchange_tui.cli.util import EXIT_OK, JSON_HELP, UsageError, err, print_json


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``yearchange bench``."""
    bench = commands.add_parser(
        "bench", parents=[common], help="mesurer les débits face au plancher de la machine",
        description="Construit une académie d'exemple (20 établissements, 3 avec --quick) dans "
                    "un dossier temporaire et mesure les étapes 2 et 3 (et l'import AAF) face "
                    "au plancher mesuré dans la même exécution.")
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
    bench.add_argument("--json", action="store_true", help=JSON_HELP)
    bench.set_defaults(handler=cmd_bench)


def _load(value: float | None) -> str:
    return "" if value is None else f"[charge {value:.2f}]"


def cmd_bench(args: argparse.Namespace) -> int:
    """``yearchange bench``."""
    if args.scale:
        return cmd_bench_scale(args)
    count = args.establishments or (3 if args.quick else 20)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        work = args.keep
        result = run_bench(count, work, None if args.json else lambda line: err(f"… {line}"),
                           repeats=2 if args.quick else 3, workers=args.workers)
    else:
        with tempfile.TemporaryDirectory(prefix="yearchange-bench-") as folder:
            result = run_bench(count, Path(folder),
                               None if args.json else lambda line: err(f"… {line}"),
                               repeats=2 if args.quick else 3, workers=args.workers)
    if args.json:
        print_json(result)
        return EXIT_OK
    s2, s3 = result["step2"], result["step3"]
    print(f"Banc d'essai — {count} établissements (académie construite en "
          f"{result['sample_build_seconds']} s) ; {result['cores']} cœurs, charge 1 min "
          "relevée après chaque mesure (machine partagée : comparer les ratios, pas les débits)")
    print(f"  étape 3 : {s3['engine_rows_per_s']} lignes/s, plancher DELETE SQL brut "
          f"{s3['raw_sql_rows_per_s']} lignes/s → ratio {s3['ratio']} {_load(s3['load'])}")
    print(f"  étape 2 : {s2['engine_mb_per_s']} Mo/s (non compressés, {s2['archives']} archives, "
          f"{s2['workers']} processus, niveau {s2['archive_level']}) {_load(s2['load'])}")
    print(f"    plancher zlib + écriture (mêmes processus, membres distincts une fois) : "
          f"{s2['zlib_mb_per_s']} Mo/s {_load(s2['floor_load'])}")
    print(f"    par cœur : {s2['engine_mb_per_s_per_core']} Mo/s contre "
          f"{s2['zlib_mb_per_s_per_core']} Mo/s → ratio {s2['ratio']}")
    dry = result["dry_run"]
    print(f"  passage à blanc contre l'ancien (archives construites en entier, 1 processus) : "
          f"{dry['speedup_same_process']}× plus rapide en 1 processus (CPU ÷ "
          f"{dry['cpu_ratio_same_process']}), {dry['speedup']}× en {dry['workers']} (CPU ÷ "
          f"{dry['cpu_ratio']}) ; rapports identiques : "
          f"{'oui' if dry['same_report'] else 'NON'} {_load(dry['load'])}")
    aaf = result.get("aaf")
    if aaf:
        print(f"  import AAF : {aaf['import_records_per_s']} enregistrements/s, plancher "
              f"{aaf['floor_records_per_s']} → ratio (horloge) {aaf['ratio']}, "
              f"ratio CPU {aaf['ratio_cpu']} {_load(aaf.get('load'))}")
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
