"""What serving an index costs beyond one process's search: the parts of a served index searched
in this process and on a Dask cluster, and the page cache emptied for cold figures.

Used by ``bench/search.py --dask`` (the scatter/gather figures) and ``bench/beyond_memory.py``
(an index larger than this machine's memory).
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from bot.config import MatchingSettings
from bot.hashing import QueryHashes
from bot.index import parts as parts_module
from bot.index.mih import refresh_search_tables
from bot.index.parts import Part, PartQuery, merge, read_parts, search_part, write_parts
from bot.index.search import LookUp, Searchable
from bot.index.storage import Manifest

READY_NAME = "bench-ready"


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def rss_mb() -> float:
    """This process's resident memory, MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def split_index(source: Path, folder: Path, parts: int, stamp: str) -> None:
    """Make ``folder`` a served index of ``parts`` parts holding the shards of the index at
    ``source`` (hard links: no copy of the data), each part with search tables of its own, as
    ``index build --out DIR/parts/NNN`` over a slice of the sources would leave it. Kept while its
    ``bench-ready`` file says ``stamp``."""
    ready = folder / READY_NAME
    if ready.exists() and ready.read_text(encoding="utf-8") == stamp:
        return
    manifest = Manifest.read(source)
    names: list[str] = []
    for number, shards in enumerate(np.array_split(np.array(manifest.shards), parts)):
        name = f"parts/{number:03d}"
        part = folder / name
        for shard in shards:
            (part / "shards" / shard).mkdir(parents=True, exist_ok=True)
            for file in (source / "shards" / shard).iterdir():
                linked = part / "shards" / shard / file.name
                if not linked.exists():
                    os.link(file, linked)
        Manifest(hashing=manifest.hashing, shards=[str(s) for s in shards], files=manifest.files).write(part)
        started = time.perf_counter()
        refresh_search_tables(part)
        print(f"  {name}: search tables built in {time.perf_counter() - started:.0f} s", flush=True)
        names.append(name)
    write_parts(folder, names)
    ready.write_text(stamp, encoding="utf-8")


def index_files(folder: Path) -> list[Path]:
    """Every file a served index at ``folder`` reads (its parts' too, through links)."""
    return [Path(root) / name for root, _, names in os.walk(folder, followlinks=True) for name in names]


def evict(folder: Path) -> int:
    """Drop the index's files from this machine's page cache (``POSIX_FADV_DONTNEED``; pages that
    a process still maps are kept, so close the index first). The bytes asked to be dropped."""
    dropped = 0
    for path in index_files(folder):
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
            dropped += os.fstat(descriptor).st_size
        finally:
            os.close(descriptor)
    return dropped


def forget_opened_parts() -> None:
    """Close every part this process has open (the part cache of :mod:`bot.index.parts`)."""
    parts_module._opened.clear()
    gc.collect()


def time_look_ups(
    index: Searchable, queries: Sequence[QueryHashes], rule: MatchingSettings, count: int
) -> tuple[list[float], list[LookUp]]:
    """Milliseconds of each of ``count`` whole look-ups (queries taken in turn), and the answers."""
    timings, answers = [], []
    for number in range(count):
        started = time.perf_counter()
        answers.append(index.look_up(queries[number % len(queries)], rule, views=None))
        timings.append((time.perf_counter() - started) * 1000)
    return timings, answers


def time_parts(
    folder: Path, queries: Sequence[QueryHashes], rule: MatchingSettings, count: int
) -> tuple[list[float], list[float], list[LookUp]]:
    """The parts searched one after another in this process: per query the whole time, the time
    of its slowest part (what a cluster that searches all parts at once cannot go below), and the
    answers."""
    parts = read_parts(folder)
    totals, slowest, answers = [], [], []
    for number in range(count):
        request = PartQuery(queries[number % len(queries)], rule, None)
        started = time.perf_counter()
        found, each = [], []
        for part in parts:
            part_started = time.perf_counter()
            found.append(search_part(part, request))
            each.append((time.perf_counter() - part_started) * 1000)
        answers.append(merge(found, frozenset()))
        totals.append((time.perf_counter() - started) * 1000)
        slowest.append(max(each))
    return totals, slowest, answers


def identities(look_up: LookUp, *, drop_part: bool = False) -> list[tuple[str, int, str]]:
    """What two answers must share to be the same answer: each match's entry and key, in order."""
    named = []
    for found in look_up.found:
        shard = found.match.shard.rpartition("/")[2] if drop_part else found.match.shard
        named.append((shard, found.match.row, found.entry.key))
    return named


def summary(timings: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(timings), 2),
        "p99_ms": round(percentile(timings, 0.99), 2),
        "max_ms": round(max(timings), 2),
    }


def _nothing(_part: Part) -> None:
    """A worker's task that does nothing: its round trip is the cost of asking a worker at all."""


@contextmanager
def cluster_client(address: str) -> Iterator[Any]:
    """A client of the cluster at ``address``, or of a cluster of W local worker processes for
    ``local:W`` (one thread each, no memory limit: a worker's resident size counts the index's
    mapped pages, which the kernel can drop, and Dask would pause or kill a worker for them)."""
    from distributed import Client, LocalCluster

    if not address.startswith("local:"):
        with Client(address) as client:
            yield client
        return
    workers = int(address.removeprefix("local:"))
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, memory_limit=0, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def round_trips(
    client: Any, folder: Path, assigned: dict[str, str], count: int, tasks: int = 0
) -> list[float]:
    """Milliseconds of ``count`` rounds of one empty task per part on its worker (or ``tasks`` of
    them, dealt over the parts' workers in turn), gathered as a query's tasks are: the
    scatter/gather cost with no search in it."""
    parts = read_parts(folder)
    dealt = [parts[number % len(parts)] for number in range(tasks or len(parts))]
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        client.gather(
            [client.submit(_nothing, part, workers=[assigned[part.name]], pure=False) for part in dealt]
        )
        timings.append((time.perf_counter() - started) * 1000)
    return timings
