"""False matches between different real photographs, counted end to end through the matcher.

Usage: python -m bench.false_matches [--pictures N] [--cache DIR] [--workers N] [--json]

bench/precision estimates how often the hash rule and the verification accept an unrelated
pair, from distance histograms and a tail fit; it models one row per entry and one radius per
query variant. This bench counts instead, through exactly the code a check runs, whatever rows
an entry keeps (central region, core, panels) and whatever radius each variant has:

* the corpus is bench/photo_corpus.py's (~8,000 distinct pictures from Debian packages: everyday
  photographs, telescope pictures, objects cut out on white; tiles of one photograph share it);
* it is split in two halves by photograph (a hash of its name, so a photograph's tiles stay
  together): A and B, reported apart. Neither half took part in choosing this design's new
  parameters (the core's margin and guesses, the turned variants and their radii, chosen on the
  dev sets); the verification minimums were fitted on the whole corpus by bench/precision;
* each half is an index, built with ``hash_entry`` as ``index build`` does, searched through its
  tables; every picture of the half is then a query (decode_picture, hash_query_with_views, the
  search with the configured rule and verification), and every entry it is matched with that is
  not of its own photograph is a false match. The hash rule's nominations (the same search
  without verification) are counted too.

Printed per half and population: pictures, pairs of different photographs, pairs the hash rule
nominates, false matches after verification, and the expected false matches per query at 1e8
entries (pairs counted: false matches / pairs x 1e8; with none, the 95 % upper bound 3 / pairs x
1e8, all that counting can say).

Counting cannot reach the goal's scale (0.01 per query at 1e8 is 1e-10 a pair), so the
verification's share is also estimated below what can be counted, by bench/verification_tail.py's
tail fit carried over to this design (:func:`near_pair_tail`): every (query variant, row) triple
of different photographs near enough for the bot to verify (``verify_near_*``, among the variants
that look for that kind of row, each with its own radius for "within the rule") is verified
through ``QueryViews.correlate``; the share of the rule's candidates the verification would accept
is fitted from their margins; the estimate per query is the rule's candidates per pair x that
share x 1e8. Each half is fitted on its own pairs only.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.photo_corpus import DEFAULT_CACHE, Picture, gather, genre_of, picture_bytes
from bench.verification_tail import SCORE_COLUMNS, margins, tail_fit
from bot.checking import hash_submitted_picture
from bot.config import MatchingSettings, Settings, load_settings
from bot.decoding import ImageRejectedError, decode_picture
from bot.hashing import EntryHashes, QueryHashes, hash_entry
from bot.index.mih import refresh_search_tables
from bot.index.search import HashIndex
from bot.index.storage import DatasetEntry, Manifest, ShardWriter, hashing_parameters
from bot.matching import phash_limits
from bot.verification import QueryViews, has_thumbnail

SCALE = 1e8


@dataclass(frozen=True)
class NearTriple:
    """A (query variant, index row) pair near enough that the bot would verify the row through
    the variant, and what the verification's correlation says of it."""

    entry: str  # the row's entry key
    variant: int
    phash: int
    pdq: int
    within_rule: bool  # within the variant's own pHash radius and the PDQ radius
    scores: tuple[float, ...]  # verification_tail.SCORE_COLUMNS, colour NaN where either is grey


@dataclass(frozen=True)
class Outcome:
    """One picture checked against the index of its half."""

    picture: str
    outcome: str  # "checked", or the reason decode_picture refused it
    matched: list[str]  # entry keys, after verification
    nominated: list[str]  # entry keys the hash rule nominated (the same search, no verification)
    near: list[NearTriple]


# Each worker process's own settings and index (None while building the index).
_settings: Settings | None = None
_index: HashIndex | None = None


def half_of(photo: str) -> str:
    return "AB"[hashlib.md5(photo.encode()).digest()[0] & 1]


def _by_photo(pictures: list[Picture]) -> list[list[Picture]]:
    groups: dict[str, list[Picture]] = defaultdict(list)
    for picture in pictures:
        groups[picture.photo].append(picture)
    return list(groups.values())


def _init(index: str | None) -> None:
    global _settings, _index  # noqa: PLW0603 - one settings object and index per worker process
    _settings = load_settings(with_deployment_files=False)
    _index = HashIndex(Path(index)) if index else None


def _entries_task(group: list[Picture]) -> list[tuple[str, EntryHashes]]:
    assert _settings is not None
    hashed = []
    for picture, data in picture_bytes(group):
        try:
            image = decode_picture(data, _settings.decoding).image
        except ImageRejectedError:
            continue
        hashed.append((picture.name, hash_entry(image, _settings.hashing)))
    return hashed


def _query_task(group: list[Picture]) -> list[Outcome]:
    assert _settings is not None
    assert _index is not None
    rule = _settings.matching
    results = []
    for picture, data in picture_bytes(group):
        try:
            query, views = hash_submitted_picture(data, _settings)
        except ImageRejectedError as error:
            results.append(Outcome(picture.name, error.reason, [], [], []))
            continue
        verified = _index.search(query, rule, views)
        nominated = _index.search(query, rule)
        results.append(
            Outcome(
                picture.name,
                "checked",
                [_index.describe(match).key for match in verified],
                [_index.describe(match).key for match in nominated],
                near_triples(_index, query, views, rule),
            )
        )
    return results


def near_triples(
    index: HashIndex, query: QueryHashes, views: QueryViews, rule: MatchingSettings
) -> list[NearTriple]:
    """Every (row, variant) near enough that the bot would verify the row through the variant
    (``verify_near_*``, among the variants that look for that kind of row), with its scores. Rows
    too plain for PDQ are left out (never matched), and so are rows without a thumbnail (nothing
    to verify with)."""
    shard = index.shards[0]
    limits = phash_limits(query, rule)  # (kinds, V)
    kinds = shard.kinds.astype(np.int64)
    phash = np.bitwise_count(query.phash[:, None] ^ shard.phash[None, :]).astype(np.int64)  # (V, R)
    variant_limits = limits[kinds].T  # (V, R): each variant's radius for each row's kind
    usable = np.asarray(shard.quality) >= rule.pdq_min_quality
    variants, rows = np.nonzero((phash <= rule.verify_near_phash) & (variant_limits >= 0) & usable[None, :])
    if not rows.size:
        return []
    pdq = np.bitwise_count(query.pdq[variants] ^ shard.pdq[rows]).sum(axis=1, dtype=np.int64)
    keep = pdq <= rule.verify_near_pdq
    variants, rows, pdq = variants[keep], rows[keep], pdq[keep]
    triples = []
    for variant, row, pdq_distance in zip(variants.tolist(), rows.tolist(), pdq.tolist(), strict=True):
        assert shard.thumbnail is not None, "the index is built here with thumbnails"
        thumbnail = np.asarray(shard.thumbnail[row])
        if not has_thumbnail(thumbnail):
            continue
        chroma = None if shard.chroma is None else np.asarray(shard.chroma[row])
        scores = views.correlate(query.variants[variant], thumbnail, chroma)
        phash_distance = int(phash[variant, row])
        within_rule = phash_distance <= variant_limits[variant, row] and pdq_distance <= rule.pdq_max_distance
        values = (getattr(scores, column) for column in SCORE_COLUMNS)
        triples.append(
            NearTriple(
                shard.entry(row).key,
                variant,
                phash_distance,
                pdq_distance,
                bool(within_rule),
                tuple(np.nan if value is None else value for value in values),
            )
        )
    return triples


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
) -> dict[str, dict[str, Any]]:
    photo_of = {picture.name: picture.photo for group in groups for picture in group}
    genre = {picture.name: genre_of(picture.package) for group in groups for picture in group}
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
            outcomes = [one for ones in pool.imap_unordered(_query_task, groups, chunksize=2) for one in ones]
        print(
            f"  half {label}: {len(outcomes):,} queries in {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
    return {
        population: _tally(
            population, outcomes, [entry.key for entry in indexed], photo_of, genre, rule=settings.matching
        )
        for population in ("everyday", "all")
    }


def _tally(
    population: str,
    outcomes: list[Outcome],
    keys: list[str],
    photo_of: dict[str, str],
    genre: dict[str, str],
    *,
    rule: MatchingSettings,
) -> dict[str, Any]:
    """One population's counts: its queries against its entries of other photographs."""

    def counted(key: str) -> bool:
        return population in ("all", genre[key])

    entries = [key for key in keys if counted(key)]
    per_photo: dict[str, int] = defaultdict(int)
    for key in entries:
        per_photo[photo_of[key]] += 1
    pairs = nominated = false = refused = queries = 0
    examples: list[tuple[str, str]] = []
    near: list[tuple[str, NearTriple]] = []
    for one in outcomes:
        name = one.picture
        if not counted(name):
            continue
        queries += 1
        if one.outcome != "checked":
            refused += 1
            continue
        pairs += len(entries) - per_photo[photo_of[name]]
        others = {key for key in entries if photo_of[key] != photo_of[name]}
        nominated += sum(key in others for key in one.nominated)
        wrong = [key for key in one.matched if key in others]
        false += len(wrong)
        examples += [(name, key) for key in wrong[:2]]
        near += [(name, triple) for triple in one.near if triple.entry in others]
    share = false / pairs if pairs else float("nan")
    bound = (false or 3) / pairs if pairs else float("nan")
    fit = near_pair_tail(near, photo_of, rule)
    return {
        "queries": queries,
        "refused": refused,
        "pairs": pairs,
        "nominated_by_hashes": nominated,
        "false_matches": false,
        "per_query_at_1e8": share * SCALE,
        "per_query_at_1e8_upper_95": bound * SCALE,
        "verification_tail": fit,
        # the rule's candidates per pair (3, the 95 % bound, where none was counted) times the
        # share of them the verification would accept
        "per_query_at_1e8_tail_fit": ((nominated or 3) / pairs * fit["share"] * SCALE)
        if pairs
        else float("nan"),
        "examples": examples[:10],
    }


def near_pair_tail(
    near: list[tuple[str, NearTriple]], photo_of: dict[str, str], rule: MatchingSettings
) -> dict[str, Any]:
    """The share of the hash rule's unrelated candidates that the verification would accept,
    estimated from every near (query variant, row) triple of different photographs by
    bench/verification_tail.py's method: each triple's margin (the smallest of atanh(score) -
    atanh(minimum) over the checks that apply; >= 0 exactly when it passes), a pair's margin the
    best of its triples, regressed on closeness, the residuals' upper tail fitted with an
    exponential, evaluated where the rule's own pairs sit, calibrated by a split-half check.

    Entries too sparse to judge (``verify_unjudgeable_below``) are never confirmed, so they are
    counted apart, not fitted."""
    if not near:
        return {"pairs": 0, "share": float("nan"), "method": "no near pairs"}
    spread = np.array([triple.scores[SCORE_COLUMNS.index("entry_spread")] for _, triple in near])
    judgeable = spread >= rule.verify_unjudgeable_below
    rows = [row for row, keep in zip(near, judgeable.tolist(), strict=True) if keep]
    queries = {name: number for number, name in enumerate(sorted({name for name, _ in rows}))}
    entries = {key: number for number, key in enumerate(sorted({t.entry for _, t in rows}))}
    triples = np.array(
        [(queries[name], entries[t.entry], t.variant, t.phash, t.pdq) for name, t in rows], dtype=np.int64
    )
    in_rule = np.array([t.within_rule for _, t in rows])
    scores = np.array([t.scores for _, t in rows], dtype=np.float64)
    photo = np.zeros(len(queries), np.int64)
    for name, number in queries.items():
        photo[number] = hashlib.md5(photo_of[name].encode()).digest()[1]  # byte 0 chose the half
    margin = margins(scores, rule)
    fit = tail_fit(triples, margin, photo=photo, rule=(0, 0), in_rule_triples=in_rule)
    fit["near_triples"] = len(rows)
    fit["passing_triples"] = int((margin >= 0).sum())
    fit["unjudgeable_triples"] = int((~judgeable).sum())
    return fit


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
            fit = row["verification_tail"]
            if fit.get("pairs"):
                checks = ", ".join(
                    f"#{check['rank']}: {check['predicted']:.1f} predicted / {check['observed']} counted"
                    for check in fit.get("split_half_check", [])
                )
                print(
                    f"      verification tail: {fit.get('near_triples', 0):,} near triples of "
                    f"{fit['pairs']:,} pairs ({fit.get('rule_pairs', 0)} within the hash rule), "
                    f"{fit.get('passing_triples', 0)} passing, "
                    f"{fit.get('unjudgeable_triples', 0):,} on entries too sparse to judge; "
                    f"highest margin {max(fit.get('highest_margins', [float('nan')])):.3f}; share "
                    f"{fit['share']:.3g} (fitted {fit.get('share_fitted', float('nan')):.3g} x "
                    f"{fit.get('calibration', float('nan')):.2f}); split-half {checks}"
                )
                print(
                    "      expected false matches per query at 1e8 by the tail fit: "
                    f"{row['per_query_at_1e8_tail_fit']:.3g}"
                )
            for query, entry in row["examples"]:
                print(f"      {query}  ->  {entry}")


if __name__ == "__main__":
    main()
