"""An index larger than this machine's memory, served from memory-mapped files: cold start to first
answer, and whole queries with the page cache holding the search tables and emptied before each.

Usage: python -m bench.beyond_memory [--entries 2.5e8] [--part-entries 1e8] [--queries 200]
                                     [--cold-queries 40] [--cache-share 0.4] [--links 0] [--json]

The index is ``bench/search.py``'s synthetic one (clustered pHashes, real pictures planted, real
queries), made of parts of ``--part-entries`` each (``parts.json``, as a build over slices of the
sources leaves it): part 000 is the cached ``bench/search.py`` index of that size (hard links)
with the real pictures planted, every other part generated with its own seed. It is kept in
``/tmp/removal-desk-bench/beyond-N`` and reused.

It prints, for the whole index (every part, searched in this process one after another):

* **cold start**: a new process, with every file of the index dropped from the page cache, from
  start to its first answer (imports, opening every part, the query);
* **cold queries**: before each, the index closed and its files dropped from the page cache
  (``POSIX_FADV_DONTNEED``), then opened and asked: every page a query reads comes from below the
  page cache. On this virtual machine that is the host's cache, not the disk itself: the random
  4 KiB read (``O_DIRECT``) it costs is printed beside, to scale the figure to another disk;
* **warm queries**: the search tables read into memory first (as the bot warms at start), the
  other arrays (PDQ, descriptions) left to the queries;
* **queries with a share of the tables cached**: memory taken by another process (anonymous,
  so it cannot be dropped: there is no swap) until the page cache holds only ``--cache-share`` of
  the search tables' bytes, then queries in a row, the first ``--queries``/4 not counted (the
  cache settles): the state of an index whose tables are larger than memory, as 1e9 entries (54
  GB of tables) on this 24 GiB machine (share ~0.4);
* the bytes on disk, the search tables' (the pages every query's probes land on), and memory.

``--links L`` serves the index's parts L times over (folders linked to the same parts, so the
same pages): the compute of an index L times larger, with its tables cached, measured where the
disk cannot hold one. Its cold figures are not those of a larger index, and are not printed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from bench.search import DATA_VERSION, _entry_hashes, _pictures, _query_hashes, generate
from bench.serving import (
    evict,
    forget_opened_parts,
    index_files,
    percentile,
    rss_mb,
    summary,
    time_look_ups,
)
from bot.config import load_settings
from bot.hashing import QueryHashes
from bot.index.parts import PartedIndex, read_parts, write_parts
from bot.index.search import HashIndex
from bot.index.serving import warm
from bot.index.storage import Manifest

ROOT = Path("/tmp/removal-desk-bench")
# Page cache left beyond the tables' share when memory is pressed: what a query reads besides the
# tables (PDQ rows, descriptions) and the page cache's own slack.
_PRESSED_MARGIN = 1_500_000_000
SEED = 7  # bench/search.py's: part 000 is its index


def _link_tree(source: Path, target: Path) -> None:
    """``target`` holds ``source``'s files as hard links (no copy)."""
    for root, _, names in os.walk(source):
        folder = target / Path(root).relative_to(source)
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            if not (folder / name).exists():
                os.link(Path(root) / name, folder / name)


def _generate_part(path: Path, entries: int, seed: int, planted: list[Any], *, plant: bool) -> None:
    """One part, written by a child process (the generator's memory must not stay in this one)."""
    child = multiprocessing.get_context("spawn").Process(
        target=generate, args=(path, entries, seed, planted, 2), kwargs={"plant": plant}
    )
    child.start()
    child.join()
    if child.exitcode:
        sys.exit(f"generating {path} failed")
    (path / "bench-ready").write_text(str(DATA_VERSION), encoding="utf-8")


def make_index(entries: int, part_entries: int, planted: list[Any]) -> Path:
    """The parted bench index of ``entries`` entries, made or found."""
    folder = ROOT / f"beyond-{entries}-{part_entries}"
    sizes = [min(part_entries, entries - start) for start in range(0, entries, part_entries)]
    names = [f"parts/{number:03d}" for number in range(len(sizes))]
    for number, (name, size) in enumerate(zip(names, sizes, strict=True)):
        path = folder / name
        if (path / "bench-ready").exists():
            continue
        cached = ROOT / f"search-{size}-r2"
        if number == 0 and (cached / "bench-ready").exists():
            _link_tree(cached, path)  # bench/search.py's index: same seed, the pictures planted
            continue
        print(f"generating {name} ({size:,} entries) ...", file=sys.stderr, flush=True)
        _generate_part(path, size, SEED + number, planted, plant=number == 0)
    write_parts(folder, names)
    return folder


def linked(folder: Path, links: int) -> Path:
    """A served index listing ``folder``'s parts ``links`` times (symbolic links to them)."""
    target = folder.with_name(f"{folder.name}-links{links}")
    names = []
    for copy in range(links):
        for part in read_parts(folder):
            name = f"parts/{copy:02d}-{Path(part.name).name}"
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            if not (target / name).exists():
                (target / name).symlink_to(part.path.resolve(), target_is_directory=True)
            names.append(name)
    write_parts(target, names)
    return target


def _table_files(folder: Path) -> list[Path]:
    return [path for path in index_files(folder) if path.parent.name.startswith("search")]


def _meminfo(field: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    return 0


def random_read_ms(folder: Path, reads: int = 400) -> float:
    """p50 of a random 4 KiB read below the page cache (O_DIRECT) from the index's largest file."""
    largest = max(index_files(folder), key=lambda path: path.stat().st_size)
    size = largest.stat().st_size
    descriptor = os.open(largest, os.O_RDONLY | os.O_DIRECT)
    buffer = __import__("mmap").mmap(-1, 4096)
    timings = []
    try:
        for _ in range(reads):
            offset = random.randrange(0, size // 4096) * 4096
            started = time.perf_counter()
            os.preadv(descriptor, [buffer], offset)
            timings.append((time.perf_counter() - started) * 1000)
    finally:
        os.close(descriptor)
    return round(percentile(timings, 0.5), 3)


_FIRST_ANSWER = """
import pickle, sys, time
started = time.perf_counter()
from bot.config import load_settings
from bot.index.parts import PartedIndex
imported = time.perf_counter()
index = PartedIndex(__import__("pathlib").Path(sys.argv[1]))
opened = time.perf_counter()
query = pickle.load(sys.stdin.buffer)
answer = index.look_up(query, load_settings(with_deployment_files=False).matching, views=None)
done = time.perf_counter()
print(imported - started, opened - imported, done - opened, len(answer.found))
"""


def cold_start(folder: Path, query: QueryHashes) -> dict[str, float]:
    """A new process's way from start to its first answer with the index out of the page cache."""
    import pickle

    evict(folder)
    started = time.perf_counter()
    finished = subprocess.run(
        [sys.executable, "-c", _FIRST_ANSWER, str(folder)],
        input=pickle.dumps(query),
        capture_output=True,
        check=True,
    )
    wall = time.perf_counter() - started
    imports, opening, answering, _found = (float(v) for v in finished.stdout.split())
    return {
        "cold_start_s": round(wall, 2),
        "cold_start_imports_s": round(imports, 2),
        "cold_start_open_s": round(opening, 3),
        "cold_start_first_query_s": round(answering, 3),
    }


def cold_queries(folder: Path, queries: list[QueryHashes], count: int) -> dict[str, Any]:
    """Each query asked of a freshly opened index whose files were dropped from the page cache."""
    rule = load_settings(with_deployment_files=False).matching
    opening, timings = [], []
    for number in range(count):
        forget_opened_parts()
        evict(folder)
        started = time.perf_counter()
        index = PartedIndex(folder)
        opening.append((time.perf_counter() - started) * 1000)
        timings.extend(time_look_ups(index, [queries[number % len(queries)]], rule, 1)[0])
        del index
    forget_opened_parts()
    return {
        **{f"cold_{key}": value for key, value in summary(timings).items()},
        "cold_open_p50_ms": round(percentile(opening, 0.5), 1),
        "cold_queries": count,
    }


def warm_queries(folder: Path, queries: list[QueryHashes], count: int) -> dict[str, Any]:
    """Queries with every part's search tables read into memory first, as the bot warms."""
    rule = load_settings(with_deployment_files=False).matching
    forget_opened_parts()
    index = PartedIndex(folder)
    started = time.perf_counter()
    warm(index)
    warm_s = time.perf_counter() - started
    time_look_ups(index, queries, rule, 3)
    timings, _ = time_look_ups(index, queries, rule, count)
    return {
        **{f"warm_{key}": value for key, value in summary(timings).items()},
        "warm_queries": count,
        "warm_tables_s": round(warm_s, 1),
        "resident_mb": round(rss_mb()),
        "page_cache_gb": round(_meminfo("Cached") / 1e9, 1),
    }


_BALLOON = """
import sys, time
import numpy as np
held = np.ones(int(sys.argv[1]), dtype=np.uint8)  # written, so resident
print("held", flush=True)
sys.stdin.read()
"""


def pressed_queries(folder: Path, queries: list[QueryHashes], count: int, share: float) -> dict[str, Any]:
    """Queries in a row while another process holds memory, leaving the page cache room for about
    ``share`` of the search tables (and a margin for the rest of what a query reads)."""
    rule = load_settings(with_deployment_files=False).matching
    tables = sum(path.stat().st_size for path in _table_files(folder))
    forget_opened_parts()
    evict(folder)
    held = max(0, _meminfo("MemAvailable") - int(share * tables) - _PRESSED_MARGIN)
    balloon = subprocess.Popen(
        [sys.executable, "-c", _BALLOON, str(held)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert balloon.stdout is not None
        assert balloon.stdout.readline().strip() == b"held", "the memory could not be held"
        index = PartedIndex(folder)
        settle = max(1, count // 4)
        timings, _ = time_look_ups(index, queries, rule, settle + count)
        cached = _meminfo("Cached")
    finally:
        balloon.communicate(b"")
        forget_opened_parts()
    return {
        **{f"pressed_{key}": value for key, value in summary(timings[settle:]).items()},
        "pressed_queries": count,
        "pressed_cache_share": share,
        "pressed_held_gb": round(held / 1e9, 1),
        "pressed_page_cache_gb": round(cached / 1e9, 1),
    }


def describe(folder: Path) -> dict[str, Any]:
    parts = read_parts(folder)
    entries = sum(len(HashIndex(part.path)) for part in parts)
    disk = sum(path.stat().st_size for path in index_files(folder))
    tables = sum(path.stat().st_size for path in _table_files(folder))
    unique_disk = sum(os.stat(path).st_size for path in {os.path.realpath(p) for p in index_files(folder)})
    return {
        "entries": entries,
        "parts": len(parts),
        "shards": sum(len(Manifest.read(part.path).shards) for part in parts),
        "disk_gb": round(disk / 1e9, 1),
        "distinct_disk_gb": round(unique_disk / 1e9, 1),
        "search_tables_gb": round(tables / 1e9, 1),
        "memory_gb": round(_meminfo("MemTotal") / 1e9, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=float, default=2.5e8)
    parser.add_argument("--part-entries", type=float, default=1e8)
    parser.add_argument("--queries", type=int, default=200, help="warm queries")
    parser.add_argument("--cold-queries", type=int, default=40)
    parser.add_argument(
        "--cache-share", type=float, default=0.4, help="share of the tables the page cache may hold (0: skip)"
    )
    parser.add_argument("--links", type=int, default=0, help="also serve the parts this many times over")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    dataset, query_pictures = _pictures()
    with ProcessPoolExecutor(os.cpu_count(), mp_context=multiprocessing.get_context("forkserver")) as pool:
        planted = list(pool.map(_entry_hashes, dataset))
        chosen = random.Random(args.seed).sample(
            range(len(query_pictures)), min(args.queries, len(query_pictures))
        )
        queries = list(pool.map(_query_hashes, [query_pictures[i] for i in sorted(chosen)]))
    folder = make_index(int(args.entries), int(args.part_entries), planted)
    result: dict[str, Any] = {**describe(folder), "random_4k_read_ms": random_read_ms(folder)}
    result |= cold_start(folder, queries[0])
    result |= cold_queries(folder, queries, args.cold_queries)
    result |= warm_queries(folder, queries, args.queries)
    if args.cache_share:
        result |= pressed_queries(folder, queries, args.queries, args.cache_share)
    if args.links:
        served = linked(folder, args.links)
        result["linked"] = {**describe(served), **warm_queries(served, queries, args.queries)}
    if args.json:
        print(json.dumps(result))
        return
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
