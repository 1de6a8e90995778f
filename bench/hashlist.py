"""A partner list's PDQ hashes against N entries' whole-picture PDQ, and its MD5s against their
file MD5s: list hashes per second.

Usage: python -m bench.hashlist [--entries 100000000] [--list-hashes 512] [--baseline-hashes 6]
                                [--md5-list-hashes 10000] [--md5-only] [--threads 1] [--data DIR]
                                [--json]

The column is synthetic, as the scan reads it from a shard (``whole_pdq.npy``, (N, 4) uint64,
memory-mapped): random PDQ words, 32 bytes an entry (3.2 GB at 1e8), generated once into ``--data``
(default /tmp/removal-desk-bench/hashlist-N) and reused. The list holds hashes planted at distances
0-40 from random entries (those within 31 must be found, the others not) and random hashes.

Two searches of the same column run in the same process, on ``--threads`` cores (default 1):

* the scan's (:mod:`bot.hashlists.scan`): the list in a faiss binary index, the column streamed
  through ``range_search`` a chunk at a time;
* the naive baseline: one list hash at a time against the whole column (numpy XOR and popcount),
  for the first ``--baseline-hashes`` list hashes (it is too slow for the whole list), which are
  planted ones.

It prints list hashes per second for both, and checks that both found the same pairs for the
hashes both searched and that every planted hash within 31 bits was found, none beyond. The column
is read once before timing (the page cache then holds it: the figure is the comparison's, not the
disk's).

Beside them, the scan's MD5 search (``md5.npy``, (N, 16) uint8, 1.6 GB at 1e8, random; the list's
``--md5-list-hashes`` MD5s sorted once, each chunk looked up by ``np.searchsorted``): its list
hashes per second, and that exactly the 16 entries whose MD5s were planted in the list were found.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bot.hashlists.scan import CHUNK, PDQ_MAX_DISTANCE, ListMatcher, MD5Matcher, column_pairs, numpy_pairs

PLANTED_DISTANCES = (*range(0, 41, 2), 31, 32)  # around the threshold on both sides


def data_folder(entries: int) -> Path:
    return Path("/tmp/removal-desk-bench") / f"hashlist-{entries}"


def make_column(
    path: Path, entries: int, seed: int = 0, dtype: type = np.uint64, width: int = 4
) -> np.ndarray:
    """The synthetic whole_pdq column (or md5.npy: uint8, 16) at ``path``, written once (chunk by
    chunk) and memory-mapped."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        free, size = shutil.disk_usage(path.parent).free, entries * width * np.dtype(dtype).itemsize
        if free < size * 1.2:
            raise SystemExit(f"{size / 1e9:.1f} GB needed in {path.parent}, {free / 1e9:.1f} GB free")
        temporary = path.with_suffix(".tmp.npy")
        column = np.lib.format.open_memmap(temporary, mode="w+", dtype=dtype, shape=(entries, width))
        rng = np.random.default_rng(seed)
        for start in range(0, entries, 1 << 22):
            stop = min(entries, start + (1 << 22))
            column[start:stop] = rng.integers(
                0, np.iinfo(dtype).max, (stop - start, width), dtype, endpoint=True
            )
        column.flush()
        del column
        temporary.rename(path)
    return np.load(path, mmap_mode="r")


def flip(words: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    flat = np.unpackbits(words.astype(">u8").view(np.uint8))
    flat[rng.choice(len(flat), bits, replace=False)] ^= 1
    return np.frombuffer(np.packbits(flat).tobytes(), dtype=">u8").astype(np.uint64)


def make_list(column: np.ndarray, size: int, seed: int = 1) -> tuple[np.ndarray, dict[int, tuple[int, int]]]:
    """(L, 4) list hashes: planted ones first, then random; planted: position -> (entry, distance)."""
    rng = np.random.default_rng(seed)
    planted: dict[int, tuple[int, int]] = {}
    words = rng.integers(0, 2**64, size=(size, 4), dtype=np.uint64)
    for position, distance in enumerate(PLANTED_DISTANCES[:size]):
        entry = int(rng.integers(len(column)))
        words[position] = flip(np.asarray(column[entry]), distance, rng)
        planted[position] = (entry, distance)
    return words, planted


def warm(column: np.ndarray) -> float:
    started = time.perf_counter()
    for start in range(0, len(column), CHUNK * 16):
        np.asarray(column[start : start + CHUNK * 16]).sum()
    return time.perf_counter() - started


def baseline(words: np.ndarray, column: np.ndarray) -> set[tuple[int, int, int]]:
    """One list hash at a time against the whole column: (entry, list position, distance)."""
    found: set[tuple[int, int, int]] = set()
    for position in range(len(words)):
        for start in range(0, len(column), CHUNK * 16):
            chunk = np.asarray(column[start : start + CHUNK * 16])
            entries, _, distances = numpy_pairs(words[position : position + 1], chunk, PDQ_MAX_DISTANCE)
            found.update((int(e) + start, position, int(d)) for e, d in zip(entries, distances, strict=True))
    return found


def run_md5(entries: int, list_size: int, data: Path) -> dict[str, Any]:
    """The MD5 search: a list of ``list_size`` MD5s, 16 of them (the last ones) entries' own."""
    column = make_column(data / "md5.npy", entries, seed=2, dtype=np.uint8, width=16)
    rng = np.random.default_rng(3)
    digests = rng.integers(0, 256, (list_size, 16), dtype=np.uint8)
    planted = {
        list_size - 1 - n: int(entry) for n, entry in enumerate(rng.choice(entries, 16, replace=False))
    }
    for position, entry in planted.items():
        digests[position] = column[entry]
    warm(column)
    started = time.perf_counter()
    found = set(column_pairs(MD5Matcher(digests), column))
    seconds = time.perf_counter() - started
    return {
        "md5_list_hashes": list_size,
        "md5_bytes_per_entry": 16,
        "md5_scan_seconds": round(seconds, 2),
        "md5_scan_hashes_per_second": round(list_size / seconds, 1),
        "md5_planted_found_exactly": found == {(entry, p, 0) for p, entry in planted.items()},
    }


def run(entries: int, list_size: int, baseline_size: int, threads: int, data: Path) -> dict[str, Any]:
    import faiss

    faiss.omp_set_num_threads(threads)
    column = make_column(data / "whole_pdq.npy", entries)
    words, planted = make_list(column, list_size)
    warm_seconds = warm(column)

    started = time.perf_counter()
    matcher = ListMatcher(words, PDQ_MAX_DISTANCE)
    scanned = set(column_pairs(matcher, column))
    scan_seconds = time.perf_counter() - started

    baseline_size = min(baseline_size, list_size)
    started = time.perf_counter()
    naive = baseline(words[:baseline_size], column)
    baseline_seconds = time.perf_counter() - started

    expected = {(entry, p, d) for p, (entry, d) in planted.items() if d <= PDQ_MAX_DISTANCE}
    return {
        "entries": entries,
        "list_hashes": list_size,
        "threads": threads,
        "bytes_per_entry": 32,
        "warm_read_seconds": round(warm_seconds, 1),
        "scan_seconds": round(scan_seconds, 2),
        "scan_hashes_per_second": round(list_size / scan_seconds, 2),
        "baseline_hashes": baseline_size,
        "baseline_seconds": round(baseline_seconds, 2),
        "baseline_hashes_per_second": round(baseline_size / baseline_seconds, 3),
        "speed_up": round((list_size / scan_seconds) / (baseline_size / baseline_seconds), 1),
        "hits": len(scanned),
        "same_hits_as_baseline": {hit for hit in scanned if hit[1] < baseline_size} == naive,
        "planted_found_exactly": scanned == expected,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=float, default=1e8)
    parser.add_argument("--list-hashes", type=int, default=512)
    parser.add_argument("--baseline-hashes", type=int, default=6)
    parser.add_argument("--md5-list-hashes", type=int, default=10_000, help="0: no MD5 search")
    parser.add_argument("--md5-only", action="store_true", help="only the MD5 search")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    entries = int(args.entries)
    data = args.data or data_folder(entries)
    result: dict[str, Any] = {"entries": entries}
    if not args.md5_only:
        result = run(entries, args.list_hashes, args.baseline_hashes, args.threads, data)
    if args.md5_list_hashes or args.md5_only:
        result |= run_md5(entries, args.md5_list_hashes, data)
    if args.json:
        print(json.dumps(result))
    else:
        for name, value in result.items():
            print(f"{name:28} {value}")
    checks = ("same_hits_as_baseline", "planted_found_exactly", "md5_planted_found_exactly")
    ok = all(result.get(name, True) for name in checks)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
