"""``python -m bench.precision``: see bench/precision/__init__.py."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import bench.precision
from bench import DEVSET
from bench.photo_corpus import DEFAULT_CACHE
from bench.precision.corpus import load_corpus, load_positives
from bench.precision.pairs import PHASH_BITS, scan_pairs
from bench.precision.printing import print_report
from bench.precision.report import PHASH_GRID, build_report, to_json
from bench.precision.verification import measure
from bot.config import load_settings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=bench.precision.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pictures", type=int, default=0, help="a random sample of N pictures (quick run)")
    parser.add_argument(
        "--cache", type=Path, default=DEFAULT_CACHE, help="default ~/.cache/removal-desk/photos"
    )
    parser.add_argument("--tile-side", type=int, default=256)
    parser.add_argument(
        "--tile-from", type=int, default=512, help="tile photographs this large (shorter side)"
    )
    parser.add_argument("--devset", type=Path, default=DEVSET)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    started = time.perf_counter()
    settings = load_settings(with_deployment_files=False)
    rule = (settings.matching.phash_max_distance, settings.matching.pdq_max_distance)
    corpus = load_corpus(
        settings,
        args.cache,
        sample=args.pictures,
        tile_side=args.tile_side,
        tile_from=args.tile_from,
        workers=args.workers,
    )
    positives = load_positives(args.devset, settings, args.cache, workers=args.workers)
    a_values = tuple(sorted({*range(0, 34, 2), *PHASH_GRID, rule[0], PHASH_BITS}))
    stats = scan_pairs(corpus.table, corpus.genre, corpus.photo, a_values, workers=args.workers)
    report = build_report(corpus, positives, stats, rule)
    report |= measure(
        corpus, positives, report, settings, cache=args.cache, devset=args.devset, workers=args.workers
    )
    if args.json:
        print(to_json(report))
    else:
        print_report(report, time.perf_counter() - started)


if __name__ == "__main__":
    main()
