"""Search latency over a large index: the multi-index search against a chunked linear scan.

Usage: python -m bench.search [--entries 100000000] [--queries 200] [--scan-queries 8] [--json]
                              [--dask local:2 | tcp://host:8786] [--parts K]

The index is synthetic but shaped like a web-scale dataset, and the queries are real:

* entries come in clusters of near-duplicates (one picture re-posted, resized, re-encoded): a
  centre and 0-7 copies 0-6 bits away, so many buckets hold runs of close hashes;
* centres draw each pHash bit with the frequency measured on real photographs (the DC bit of
  pHash is nearly always 1, low frequencies lean one way), not uniformly;
* the real dataset pictures (the dev set's originals when ``/tmp/devset`` exists, else
  ``samples/dataset``) are planted with near-duplicates of their own, and the queries are real
  pictures (the dev set's copies, else ``samples/queries``) hashed with every variant the matcher
  looks up, so each query has true matches to find and the variant count is the configured one.

It prints the search's p50/p99 per query (all variants, the whole rule: pHash radius through the
tables, then PDQ and quality), the same for a chunked numpy scan of the same index (the baseline:
``HashIndex.scan``), whether every answer was identical, the bytes per entry of every array the
search reads, the resident memory after the queries, and the time to open the index.

The generated index is kept in ``--data`` (default /tmp/removal-desk-bench/search-N) and reused.

With ``--dask ADDRESS`` (``local:W``: a cluster of W worker processes on this machine) the same
entries are also served as K parts (``--parts``, default one per worker; hard links to the
generated shards, search tables of their own, kept in ``DATA-partsK``) and the run adds, from
whole look-ups of the same queries: one process over the one index (``single_process_*``), the
parts one after another in one process (``parted_*``), the cluster (``dask_*``), the scatter/gather
overhead (each query's cluster time minus its slowest part's time in one process), an empty
task per part's round trip and one of ``--fanout`` empty tasks (default 59: LAION-5B in parts of
1e8), and whether all three answered alike.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from bench import DEVSET, REPO
from bench.serving import (
    cluster_client,
    identities,
    percentile,
    round_trips,
    rss_mb,
    split_index,
    summary,
    time_look_ups,
    time_parts,
)
from bot.config import Settings, load_settings
from bot.decoding import decode_picture
from bot.hashing import QueryHashes, hash_entry, hash_query
from bot.index.mih import refresh_search_tables
from bot.index.parts import PartedIndex, read_parts
from bot.index.search import HashIndex
from bot.index.served import DaskIndex
from bot.index.serving import warm
from bot.index.storage import ROW_COLUMNS, WHOLE_PICTURE, Manifest

SHARD_ENTRIES = 10_000_000
DATA_VERSION = 4  # bump when the generator changes, so cached data is rebuilt
KEY_WIDTH = 12


def _pictures() -> tuple[list[Path], list[Path]]:
    """(dataset pictures to plant, query pictures)."""
    if (DEVSET / "index").is_dir():
        queries = sorted((DEVSET / "pos").glob("*")) + sorted((DEVSET / "neg").glob("*"))
        return sorted((DEVSET / "index").glob("*")), queries
    return sorted((REPO / "samples" / "dataset").glob("*.jpg")), sorted(
        (REPO / "samples" / "queries").glob("*.jpg")
    )


def _entry_hashes(path: Path) -> list[tuple[int, np.ndarray, int]]:
    """Every row the index keeps for the picture: its central region, its core, its panels."""
    settings = load_settings(with_deployment_files=False)
    hashes = hash_entry(decode_picture(path.read_bytes(), settings.decoding).image, settings.hashing)
    rows = [hashes, *(part.hashes for part in hashes.parts)]
    return [(row.phash, row.pdq, row.quality) for row in rows]


def _query_hashes(path: Path) -> QueryHashes:
    settings = load_settings(with_deployment_files=False)
    return hash_query(decode_picture(path.read_bytes(), settings.decoding).image, settings.hashing)


def _bits(values: np.ndarray) -> np.ndarray:
    """(N, 64) bits, column 0 the most significant."""
    return np.unpackbits(values.astype(">u8").view(np.uint8).reshape(-1, 8), axis=1)


def _from_bits(bits: np.ndarray) -> np.ndarray:
    return np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64)


def _flip_random_bits(rng: np.random.Generator, values: np.ndarray, max_bits: int) -> np.ndarray:
    """Each value with 0..max_bits random bits flipped (positions may repeat: at most max_bits)."""
    flips = rng.integers(0, max_bits + 1, size=values.size)
    out = values.copy()
    for step in range(max_bits):
        chosen = flips > step
        positions = rng.integers(0, 64, size=int(chosen.sum()), dtype=np.uint64)
        out[chosen] ^= np.left_shift(np.uint64(1), positions)
    return out


def _write_shard(
    folder: Path, name: str, phash: np.ndarray, pdq: np.ndarray, *, first_key: int, rows_per_entry: int
) -> None:
    """A shard in the index format, written with numpy (ShardWriter goes entry by entry): each
    entry has ``rows_per_entry`` consecutive rows (its central region and its core)."""
    path = folder / "shards" / name
    path.mkdir(parents=True, exist_ok=True)
    np.save(path / "phash.npy", phash)
    np.save(path / "pdq.npy", pdq)
    np.save(path / "quality.npy", np.full(len(phash), 100, dtype=np.uint8))
    count = len(phash) // rows_per_entry
    if rows_per_entry > 1:  # the central region's row, then the core's
        rows = np.zeros((len(phash), ROW_COLUMNS), dtype=np.uint32)
        rows[:, 0] = np.arange(len(phash)) // rows_per_entry
        rows[:, 1:5] = WHOLE_PICTURE
        rows[:, 5] = np.arange(len(phash)) % rows_per_entry != 0
        np.save(path / "rows.npy", rows)
    # Fixed-width JSON lines {"key":"000000000123"} so offsets are arithmetic.
    prefix, suffix = b'{"key":"', b'"}\n'
    width = len(prefix) + KEY_WIDTH + len(suffix)
    lines = np.empty((count, width), dtype=np.uint8)
    lines[:, : len(prefix)] = np.frombuffer(prefix, dtype=np.uint8)
    lines[:, width - len(suffix) :] = np.frombuffer(suffix, dtype=np.uint8)
    numbers = np.arange(first_key, first_key + count, dtype=np.int64)
    for digit in range(KEY_WIDTH):
        lines[:, len(prefix) + KEY_WIDTH - 1 - digit] = ord("0") + (numbers // 10**digit) % 10
    lines.tofile(path / "meta.jsonl")
    np.save(path / "meta.offsets.npy", np.arange(count + 1, dtype=np.uint64) * width)
    summary = {"entries": count, "failures": {}, "failure_examples": [], "sources": ["bench/search.py"]}
    (path / "shard.json").write_text(json.dumps(summary), encoding="utf-8")


def generate(
    folder: Path,
    entries: int,
    seed: int,
    planted: list[list[tuple[int, np.ndarray, int]]],
    rows_per_entry: int,
    *,
    plant: bool = True,
) -> None:
    """Write a clustered synthetic index of ``entries`` entries (``rows_per_entry`` rows each,
    from the same clustered distribution) with the real pictures' rows planted (unless not
    ``plant``: the pictures' bit frequencies are still those of the centres)."""
    rng = np.random.default_rng(seed)
    real = np.array([phash for rows in planted for phash, _, _ in rows], dtype=np.uint64)
    bit_frequency = _bits(real).mean(axis=0).clip(0.05, 0.95)
    folder.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    written = 0
    while written < entries:
        shard_entries = min(SHARD_ENTRIES // rows_per_entry, entries - written)
        count = shard_entries * rows_per_entry  # rows
        sizes = rng.integers(1, 9, size=count)  # cluster sizes 1-8, mean 4.5
        sizes = sizes[: np.searchsorted(np.cumsum(sizes), count) + 1]
        centres = np.concatenate(
            [
                _from_bits((rng.random((chunk, 64)) < bit_frequency).astype(np.uint8))
                for chunk in np.diff(np.r_[0 : len(sizes) : 1_000_000, len(sizes)])
            ]
        )
        phash = _flip_random_bits(rng, np.repeat(centres, sizes)[:count], 6)
        pdq = rng.integers(0, 2**64, size=(count, 4), dtype=np.uint64)
        if written == 0 and plant:  # the real pictures, each with up to 7 near-duplicates: their rows in
            # order (central region, core); a generated row stands where a picture has no core
            entry = 0
            for picture_rows in planted:
                for _ in range(int(rng.integers(1, 9))):
                    for offset, (phash_value, pdq_value, _quality) in enumerate(
                        picture_rows[:rows_per_entry]
                    ):
                        row = entry * rows_per_entry + offset
                        phash[row] = _flip_random_bits(rng, np.array([phash_value], dtype=np.uint64), 4)[0]
                        pdq[row] = pdq_value
                    entry += 1
        name = f"{len(names):05d}"
        _write_shard(folder, name, phash, pdq, first_key=written, rows_per_entry=rows_per_entry)
        names.append(name)
        written += shard_entries
        print(f"  generated {written:,} / {entries:,} entries", file=sys.stderr)
    Manifest(hashing={"bench": DATA_VERSION, "seed": seed}, shards=names).write(folder)
    started = time.perf_counter()
    refresh_search_tables(folder)
    print(f"  search tables built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    (folder / "bench-ready").write_text(str(DATA_VERSION), encoding="utf-8")


def measure(args: argparse.Namespace, settings: Settings, queries: list[QueryHashes]) -> dict[str, Any]:
    rss_before = rss_mb()
    started = time.perf_counter()
    index = HashIndex(args.data)
    open_s = time.perf_counter() - started
    assert index.tables is not None, "the bench index has search tables"
    assert not index.scanned, "the search tables cover every shard"
    started = time.perf_counter()
    index.warm()  # as the bot does in the background after opening (see MultiIndex.warm)
    warm_s = time.perf_counter() - started
    rule = settings.matching
    for query in queries[:3]:  # compile the kernel, touch the offsets
        index.search(query, rule)
    timings, found = [], []
    for number in range(args.queries):
        query = queries[number % len(queries)]
        started = time.perf_counter()
        matches = index.search(query, rule)
        timings.append((time.perf_counter() - started) * 1000)
        found.append(len(matches))
    rss_after = rss_mb()
    print(  # before the scans, which take minutes a query at 1e8
        f"search p50 {statistics.median(timings):.2f} ms, p99 {percentile(timings, 0.99):.2f} ms",
        file=sys.stderr,
        flush=True,
    )
    scan_timings, identical = [], True
    for query in queries[: args.scan_queries]:
        started = time.perf_counter()
        expected = index.scan(query, rule)
        scan_timings.append((time.perf_counter() - started) * 1000)
        identical &= index.search(query, rule) == expected
    tables = index.tables
    searched_bytes = tables.nbytes + sum(shard.pdq.nbytes + shard.quality.nbytes for shard in index.shards)
    return {
        "entries": len(index),
        "rows": index.rows,
        "queries": args.queries,
        "variants_per_query": statistics.median(len(q.variants) for q in queries),
        "guesses_per_query": statistics.median(
            int(np.count_nonzero(q.guesses)) if q.guesses is not None else 0 for q in queries
        ),
        "phash_max_distance": rule.phash_max_distance,
        "turn_phash_max_distance": rule.turn_phash_max_distance,
        "core_phash_max_distance": rule.core_phash_max_distance,
        "pdq_max_distance": rule.pdq_max_distance,
        "p50_ms": round(statistics.median(timings), 2),
        "p99_ms": round(percentile(timings, 0.99), 2),
        "max_ms": round(max(timings), 2),
        "matches_per_query_median": statistics.median(found),
        "linear_scan_p50_ms": round(statistics.median(scan_timings), 1) if scan_timings else None,
        "linear_scan_queries": len(scan_timings),
        "identical": identical,
        "bytes_per_entry": round(searched_bytes / len(index), 2),
        "table_bytes_per_entry": round(tables.nbytes / len(index), 2),
        "rss_growth_mb": round(rss_after - rss_before, 1),
        "open_s": round(open_s, 4),
        "warm_s": round(warm_s, 2),
    }


def measure_served(
    args: argparse.Namespace, settings: Settings, queries: list[QueryHashes]
) -> dict[str, Any]:
    """The same entries served one process, in parts here and in parts on the cluster at
    ``args.dask``: whole look-ups (search and each match's description) of the same queries."""
    rule, count = settings.matching, args.queries
    one = HashIndex(args.data)
    one.warm()
    time_look_ups(one, queries, rule, 3)  # compile the kernel, touch the offsets
    single, single_answers = time_look_ups(one, queries, rule, count)
    del one
    with cluster_client(args.dask) as client:
        workers = len(client.nthreads())
        parts = args.parts or workers
        folder = Path(f"{args.data}-parts{parts}")
        split_index(args.data, folder, parts, f"{DATA_VERSION}:{args.data}:{parts}")
        warm(PartedIndex(folder))
        time_parts(folder, queries, rule, 3)
        parted, slowest, parted_answers = time_parts(folder, queries, rule, count)
        served = DaskIndex(client, folder)
        served.open()
        assigned = served._assignment(read_parts(folder))
        warm(served)  # on each part's worker, as the bot warms at start
        time_look_ups(served, queries, rule, 3)
        on_cluster, cluster_answers = time_look_ups(served, queries, rule, count)
        empty = round_trips(client, folder, assigned, count)
        fanned = round_trips(client, folder, assigned, count, args.fanout) if args.fanout else []
    overhead = [total - part for total, part in zip(on_cluster, slowest, strict=True)]
    expected = [identities(answer) for answer in single_answers]
    return {
        "workers": workers,
        "parts": parts,
        **{f"single_process_{key}": value for key, value in summary(single).items()},
        **{f"parted_{key}": value for key, value in summary(parted).items()},
        **{f"slowest_part_{key}": value for key, value in summary(slowest).items()},
        **{f"dask_{key}": value for key, value in summary(on_cluster).items()},
        "scatter_gather_overhead_p50_ms": round(statistics.median(overhead), 2),
        "scatter_gather_overhead_p99_ms": round(percentile(overhead, 0.99), 2),
        "empty_round_trip_p50_ms": round(statistics.median(empty), 2),
        "fanout_tasks": args.fanout,
        "fanout_round_trip_p50_ms": round(statistics.median(fanned), 2) if fanned else None,
        "fanout_round_trip_p99_ms": round(percentile(fanned, 0.99), 2) if fanned else None,
        "served_identical": all(
            [identities(answer, drop_part=True) for answer in answers] == expected
            for answers in (parted_answers, cluster_answers)
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=float, default=1e8)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--scan-queries", type=int, default=3, help="queries also answered by the scan")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument(
        "--rows-per-entry", type=int, default=None, help="default: 2 with a core row (core_margin), else 1"
    )
    parser.add_argument(
        "--dask",
        metavar="ADDRESS",
        default=None,
        help="also serve the index in parts on this Dask cluster (local:W: W local worker processes)",
    )
    parser.add_argument("--parts", type=int, default=None, help="parts with --dask (default: one per worker)")
    parser.add_argument(
        "--fanout",
        type=int,
        default=59,
        help="with --dask, also an empty round trip of this many tasks (59: LAION-5B in parts of 1e8)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.entries = int(args.entries)
    settings = load_settings(with_deployment_files=False)
    if args.rows_per_entry is None:
        args.rows_per_entry = 2 if settings.hashing.core_margin else 1
    args.data = args.data or Path(f"/tmp/removal-desk-bench/search-{args.entries}-r{args.rows_per_entry}")
    dataset, query_pictures = _pictures()
    with ProcessPoolExecutor(os.cpu_count(), mp_context=multiprocessing.get_context("forkserver")) as pool:
        planted = list(pool.map(_entry_hashes, dataset))
        rng = np.random.default_rng(args.seed)
        chosen = sorted(
            rng.choice(len(query_pictures), min(args.queries, len(query_pictures)), replace=False)
        )
        queries = list(pool.map(_query_hashes, [query_pictures[i] for i in chosen]))
    ready = args.data / "bench-ready"
    if not ready.exists() or ready.read_text() != str(DATA_VERSION):
        print(f"generating {args.entries:,} entries in {args.data} ...", file=sys.stderr)
        # In a child process: the generator's working memory must not count as the search's.
        child = multiprocessing.get_context("spawn").Process(
            target=generate, args=(args.data, args.entries, args.seed, planted, args.rows_per_entry)
        )
        child.start()
        child.join()
        if child.exitcode:
            sys.exit("generating the bench index failed")
    result = measure(args, settings, queries)
    if args.dask:
        result |= measure_served(args, settings, queries)
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{result['entries']:,} entries ({result['rows']:,} rows), {result['queries']} real queries of "
        f"{result['variants_per_query']} variants ({result['guesses_per_query']} guesses at pHash <= "
        f"{result['turn_phash_max_distance']} turned, {result['core_phash_max_distance']} core), "
        f"rule pHash <= {result['phash_max_distance']} "
        f"and PDQ <= {result['pdq_max_distance']}"
    )
    print(f"  search p50 {result['p50_ms']} ms  p99 {result['p99_ms']} ms  max {result['max_ms']} ms")
    print(
        f"  baseline: chunked numpy scan p50 {result['linear_scan_p50_ms']} ms "
        f"({result['linear_scan_queries']} queries)"
    )
    print(f"  identical answers: {result['identical']}")
    print(
        f"  bytes per entry read by the search: {result['bytes_per_entry']} "
        f"(tables {result['table_bytes_per_entry']}); resident growth {result['rss_growth_mb']} MB"
    )
    print(
        f"  open: {result['open_s'] * 1000:.1f} ms; tables mapped in the background in {result['warm_s']} s"
    )
    if args.dask:
        print(
            f"served in {result['parts']} parts on {result['workers']} Dask workers ({args.dask}), whole "
            f"look-ups: p50 {result['dask_p50_ms']} ms  p99 {result['dask_p99_ms']} ms\n"
            f"  one process, one index: p50 {result['single_process_p50_ms']} ms  "
            f"p99 {result['single_process_p99_ms']} ms\n"
            f"  one process, the parts in turn: p50 {result['parted_p50_ms']} ms  "
            f"p99 {result['parted_p99_ms']} ms (slowest part p50 {result['slowest_part_p50_ms']} ms)\n"
            f"  scatter/gather overhead p50 {result['scatter_gather_overhead_p50_ms']} ms  "
            f"p99 {result['scatter_gather_overhead_p99_ms']} ms "
            f"(an empty task per part: p50 {result['empty_round_trip_p50_ms']} ms; "
            f"{result['fanout_tasks']} empty tasks: p50 {result['fanout_round_trip_p50_ms']} ms)\n"
            f"  identical answers: {result['served_identical']}"
        )


if __name__ == "__main__":
    main()
