"""A partner list's PDQ hashes against N entries' whole-picture PDQ: list hashes per second.

Usage: python -m bench.hashlist [--entries 100000000] [--list-hashes 512] [--baseline-hashes 6]
                                [--threads 1] [--data DIR] [--json]

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

from bot.hashlists.scan import CHUNK, PDQ_MAX_DISTANCE, ListMatcher, column_pairs, numpy_pairs

PLANTED_DISTANCES = (*range(0, 41, 2), 31, 32)  # around the threshold on both sides


def data_folder(entries: int) -> Path:
    return Path("/tmp/removal-desk-bench") / f"hashlist-{entries}"


def make_column(path: Path, entries: int, seed: int = 0) -> np.ndarray:
    """The synthetic whole_pdq column at ``path``, written once (chunk by chunk) and memory-mapped."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(path.parent).free
        if free < entries * 32 * 1.2:
            raise SystemExit(f"{entries * 32 / 1e9:.1f} GB needed in {path.parent}, {free / 1e9:.1f} GB free")
        temporary = path.with_suffix(".tmp.npy")
        column = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.uint64, shape=(entries, 4))
        rng = np.random.default_rng(seed)
        for start in range(0, entries, 1 << 22):
            stop = min(entries, start + (1 << 22))
            column[start:stop] = rng.integers(0, 2**64, size=(stop - start, 4), dtype=np.uint64)
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
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    entries = int(args.entries)
    result = run(
        entries, args.list_hashes, args.baseline_hashes, args.threads, args.data or data_folder(entries)
    )
    if args.json:
        print(json.dumps(result))
    else:
        for name, value in result.items():
            print(f"{name:28} {value}")
    ok = result["same_hits_as_baseline"] and result["planted_found_exactly"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
