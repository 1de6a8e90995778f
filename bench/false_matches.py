"""False matches between different real photographs, counted end to end through the matcher.

Usage: python bench/false_matches.py [--pictures N] [--cache DIR] [--workers N] [--json]

bench/precision.py estimates how often the hash rule and the verification accept an unrelated
pair, from distance histograms and a tail fit; it models one row per entry and one radius per
query variant. This bench counts instead, through exactly the code a check runs, whatever rows
an entry keeps (central region, core, panels) and whatever radius each variant has:

* the corpus is bench/photo_corpus.py's (~8,000 distinct pictures from Debian packages: everyday
  photographs, telescope pictures, objects cut out on white; tiles of one photograph share it);
* it is split in two halves by photograph (a hash of its name, so a photograph's tiles stay
  together): A and B, reported apart. Neither half took part in choosing this design's new
  parameters (the core's margin and guesses, the turned variants and their radii, chosen on the
  dev sets); the verification minimums were fitted on the whole corpus by bench/precision.py;
* each half is an index, built with ``hash_entry`` as ``index build`` does, searched through its
  tables; every picture of the half is then a query (decode_picture, hash_query_with_views, the
  search with the configured rule and verification), and every entry it is matched with that is
  not of its own photograph is a false match. The hash rule's nominations (the same search
  without verification) are counted too.

Printed per half and population: pictures, pairs of different photographs, pairs the hash rule
nominates, false matches after verification, and the expected false matches per query at 1e8
entries (pairs counted: false matches / pairs x 1e8; with none, the 95 % upper bound 3 / pairs x
1e8, all that counting can say).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from photo_corpus import DEFAULT_CACHE, Picture, gather, picture_bytes  # noqa: E402

from bot.config import Settings, load_settings  # noqa: E402
from bot.decoding import ImageRejectedError, decode_picture  # noqa: E402
from bot.hashing import hash_entry  # noqa: E402
from bot.index.build import hashing_parameters  # noqa: E402
from bot.index.mih import refresh_search_tables  # noqa: E402
from bot.index.search import HashIndex  # noqa: E402
from bot.index.storage import DatasetEntry, Manifest, ShardWriter  # noqa: E402

SCALE = 1e8
GENRE_OF_PACKAGE = {"stellarium-data": "telescope", "tuxpaint-stamps-default": "cut-out"}
_worker: dict[str, object] = {}


def half_of(photo: str) -> str:
    return "AB"[hashlib.md5(photo.encode()).digest()[0] & 1]


def genre_of(picture: Picture) -> str:
    return GENRE_OF_PACKAGE.get(picture.package, "everyday")


def _by_photo(pictures: list[Picture]) -> list[list[Picture]]:
    groups: dict[str, list[Picture]] = defaultdict(list)
    for picture in pictures:
        groups[picture.photo].append(picture)
    return list(groups.values())


def _init(index: str | None) -> None:
    _worker["settings"] = load_settings(with_deployment_files=False)
    _worker["index"] = HashIndex(Path(index)) if index else None


def _entries_task(group: list[Picture]):  # type: ignore[no-untyped-def]
    settings: Settings = _worker["settings"]  # type: ignore[assignment]
    hashed = []
    for picture, data in picture_bytes(group):
        try:
            image = decode_picture(data, settings.decoding).image
        except ImageRejectedError:
            continue
        hashed.append((picture.name, hash_entry(image, settings.hashing)))
    return hashed


def _query_task(group: list[Picture]) -> list[tuple[str, str, list[str], list[str]]]:
    """(picture, outcome, keys matched after verification, keys the hash rule nominated)."""
    from bot.checking import hash_submitted_picture

    settings: Settings = _worker["settings"]  # type: ignore[assignment]
    index: HashIndex = _worker["index"]  # type: ignore[assignment]
    results = []
    for picture, data in picture_bytes(group):
        try:
            query, views = hash_submitted_picture(data, settings)
        except ImageRejectedError as error:
            results.append((picture.name, error.reason, [], []))
            continue
        verified = index.search(query, settings.matching, views)
        nominated = index.search(query, settings.matching)
        keys = [index.describe(match).key for match in verified]
        results.append((picture.name, "checked", keys, [index.describe(match).key for match in nominated]))
    return results


def build(folder: Path, groups: list[list[Picture]], settings: Settings, workers: int) -> None:
    writer = ShardWriter(folder, "00000")
    with multiprocessing.get_context("fork").Pool(workers, _init, (None,)) as pool:
        for hashed in pool.imap(_entries_task, groups, chunksize=4):
            for name, hashes in hashed:
                writer.add(DatasetEntry(key=name), hashes)
    writer.commit()
    Manifest(hashing=hashing_parameters(settings), shards=[writer.name]).write(folder)
    refresh_search_tables(folder)


def measure_half(
    label: str, groups: list[list[Picture]], settings: Settings, workers: int
) -> dict[str, object]:
    photo_of = {picture.name: picture.photo for group in groups for picture in group}
    genre = {picture.name: genre_of(picture) for group in groups for picture in group}
    with tempfile.TemporaryDirectory(prefix=f"false-matches-{label}-") as temporary:
        folder = Path(temporary) / "index"
        started = time.perf_counter()
        build(folder, groups, settings, workers)
        indexed = [DatasetEntry(key=key) for key in _keys(folder)]
        print(
            f"  half {label}: {len(indexed):,} entries indexed in {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
        started = time.perf_counter()
        with multiprocessing.get_context("fork").Pool(workers, _init, (str(folder),)) as pool:
            outcomes = [row for rows in pool.imap_unordered(_query_task, groups, chunksize=2) for row in rows]
        print(
            f"  half {label}: {len(outcomes):,} queries in {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
    return {
        population: _tally(population, outcomes, [entry.key for entry in indexed], photo_of, genre)
        for population in ("everyday", "all")
    }


def _tally(
    population: str,
    outcomes: list[tuple[str, str, list[str], list[str]]],
    keys: list[str],
    photo_of: dict[str, str],
    genre: dict[str, str],
) -> dict[str, object]:
    """One population's counts: its queries against its entries of other photographs."""

    def counted(key: str) -> bool:
        return population in ("all", genre[key])

    entries = [key for key in keys if counted(key)]
    per_photo: dict[str, int] = defaultdict(int)
    for key in entries:
        per_photo[photo_of[key]] += 1
    pairs = nominated = false = refused = queries = 0
    examples: list[tuple[str, str]] = []
    for name, outcome, matched, candidates in outcomes:
        if not counted(name):
            continue
        queries += 1
        if outcome != "checked":
            refused += 1
            continue
        pairs += len(entries) - per_photo[photo_of[name]]
        others = {key for key in entries if photo_of[key] != photo_of[name]}
        nominated += sum(key in others for key in candidates)
        wrong = [key for key in matched if key in others]
        false += len(wrong)
        examples += [(name, key) for key in wrong[:2]]
    share = false / pairs if pairs else float("nan")
    bound = (false or 3) / pairs if pairs else float("nan")
    return {
        "queries": queries,
        "refused": refused,
        "pairs": pairs,
        "nominated_by_hashes": nominated,
        "false_matches": false,
        "per_query_at_1e8": share * SCALE,
        "per_query_at_1e8_upper_95": bound * SCALE,
        "examples": examples[:10],
    }


def _keys(folder: Path) -> list[str]:
    index = HashIndex(folder)
    shard = index.shards[0]
    return [shard.record(number).key for number in range(shard.entries)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pictures", type=int, default=0, help="a random sample of photographs (quick run)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    settings = load_settings(with_deployment_files=False)
    groups = _by_photo(gather(args.cache))
    if args.pictures:
        chosen = np.random.default_rng(5).choice(len(groups), min(args.pictures, len(groups)), replace=False)
        groups = [groups[i] for i in sorted(chosen)]
    started = time.perf_counter()
    report = {
        half: measure_half(half, [g for g in groups if half_of(g[0].photo) == half], settings, args.workers)
        for half in "AB"
    }
    if args.json:
        print(json.dumps(report))
        return
    print(f"false matches between different photographs, end to end ({time.perf_counter() - started:.0f} s)")
    print("half  population  queries  refused       pairs  nominated  false  per query at 1e8 (95 % bound)")
    for half, populations in report.items():
        for population, row in populations.items():
            print(
                f"{half:4s}  {population:10s}  {row['queries']:7,}  {row['refused']:7,}  {row['pairs']:10,}  "
                f"{row['nominated_by_hashes']:9,}  {row['false_matches']:5,}  "
                f"{row['per_query_at_1e8']:.3g} ({row['per_query_at_1e8_upper_95']:.3g})"
            )
            for query, entry in row["examples"]:
                print(f"      {query}  ->  {entry}")


if __name__ == "__main__":
    main()
