"""Build an index from dataset sources: hash work units in parallel, write one shard per unit.

The sources are cut into work units (:mod:`bot.index.units`), each a fixed slice of one source that
becomes one shard. Each unit is hashed as a few batches by a runner — this process, a local process
pool, or a Dask cluster (:mod:`bot.index.cluster`) — and the process that runs a batch reads its
slice itself, so only file names go out and compact arrays come back. This process writes the
shards in unit order as results arrive, so the same sources give the same index whatever the
number of workers; units whose shard is already in the index are skipped, which makes a re-run
after a crash a resume and ``--append`` with old and new sources an increment.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm import tqdm

from bot.config import Settings
from bot.decoding import ImageRejectedError, decode_picture
from bot.errors import RemovalDeskError
from bot.hashing import HASH_KINDS, EntryHashes, EntryPart, hash_entry
from bot.index.mih import refresh_search_tables
from bot.index.sources import SourceError, SourceItem
from bot.index.storage import DatasetEntry, IndexFormatError, Manifest, ShardWriter
from bot.index.units import ReadTask, UnitLedger, WorkUnit, plan_units, read_task
from bot.verification import CHROMA_SIDE, THUMBNAIL_SIDE

_worker_settings: Settings | None = None


def hashing_parameters(settings: Settings) -> dict[str, object]:
    """What must be equal for two sets of entry hashes to be comparable; pinned in the manifest."""
    return {
        "kinds": {kind.name: kind.bits for kind in HASH_KINDS},
        "entry_margin": settings.hashing.entry_margin,
        "work_side": settings.decoding.work_side,
    }


# --- hashing one batch (in whichever process runs it) --------------------------------------------


def hash_item(
    item: SourceItem, settings: Settings | None = None
) -> tuple[DatasetEntry, EntryHashes | None, str | None]:
    """Hash one source item; a picture that cannot be hashed gives a failure reason instead.

    This is ``hash_entry(decode_picture(...))``, exactly what a query's original would give, so an
    entry of the index and a copy checked later are hashed the same way.
    """
    settings = settings or _worker_settings
    assert settings is not None, "hash_item needs settings (the pool initializer sets them)"
    if item.hashes is not None or item.problem is not None:
        return item.entry, item.hashes, item.problem
    assert item.picture is not None
    try:
        picture = decode_picture(item.picture, settings.decoding)
    except ImageRejectedError as rejected:
        return item.entry, None, rejected.reason
    return item.entry, hash_entry(picture.image, settings.hashing), None


@dataclass
class BatchResult:
    """A hashed batch, compact enough to send back from a worker: arrays, entries and failures."""

    entries: list[DatasetEntry]
    phash: np.ndarray  # (N,) uint64
    pdq: np.ndarray  # (N, 4) uint64
    quality: np.ndarray  # (N,) uint8
    thumbnail: np.ndarray  # (N, 16, 16) uint8, all zero where none (bot.verification)
    chroma: np.ndarray  # (N, 2, 8, 8) int8, all zero where none
    failures: list[tuple[DatasetEntry, str]]
    source_error: str | None = None  # the slice could not be read at all (e.g. a broken .tar)
    # The photographs inside composites, by entry row (few: only composites have any).
    parts: dict[int, tuple[EntryPart, ...]] = field(default_factory=dict)

    @property
    def seen(self) -> int:
        return len(self.entries) + len(self.failures)

    def hashes(self) -> Iterator[tuple[DatasetEntry, EntryHashes]]:
        for row, entry in enumerate(self.entries):
            yield (
                entry,
                EntryHashes(
                    int(self.phash[row]),
                    self.pdq[row],
                    int(self.quality[row]),
                    self.thumbnail[row],
                    self.chroma[row],
                    self.parts.get(row, ()),
                ),
            )


# glibc's mallopt parameters (malloc.h), and the values a hashing process uses.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD = 32 << 20  # glibc's ceiling for it on 64-bit systems
_TRIM_THRESHOLD = 128 << 20
_allocator_tuned = False


def keep_freed_memory_for_reuse() -> None:
    """Let this process reuse the memory it frees instead of handing it back to the system.

    Each picture allocates ~10 MB of short-lived buffers (the decoded picture, its copies, the work
    picture, PDQ's arrays). glibc serves blocks over its mmap threshold (128 KB at first) with
    fresh mappings and unmaps them on free, so every picture paid ~2,400 page faults; in a virtual
    machine that was a third of the time to hash a 1024 px photo (bench/build.py). With higher
    thresholds the buffers come back from the heap. Hash values cannot change: only where memory
    comes from does. Up to ``_TRIM_THRESHOLD`` stays with the process; elsewhere than glibc this
    does nothing.
    """
    global _allocator_tuned  # noqa: PLW0603 - once per process
    if _allocator_tuned:
        return
    _allocator_tuned = True
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
        mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)


def hash_batch(task: ReadTask, settings: Settings) -> BatchResult:
    """Read one task's slice and hash it; a bad picture is a failure, a bad source an error."""
    keep_freed_memory_for_reuse()
    hashed: list[tuple[DatasetEntry, EntryHashes | None, str | None]] = []
    try:
        for item in read_task(task, settings):
            hashed.append(hash_item(item, settings))
    except SourceError as exc:
        return _batch_result(hashed, source_error=str(exc))
    return _batch_result(hashed)


def _batch_result(
    hashed: list[tuple[DatasetEntry, EntryHashes | None, str | None]], source_error: str | None = None
) -> BatchResult:
    entries = [(entry, hashes) for entry, hashes, _ in hashed if hashes is not None]
    return BatchResult(
        entries=[entry for entry, _ in entries],
        phash=np.array([hashes.phash for _, hashes in entries], dtype=np.uint64),
        pdq=(
            np.stack([hashes.pdq for _, hashes in entries]).astype(np.uint64)
            if entries
            else np.zeros((0, 4), dtype=np.uint64)
        ),
        quality=np.array([hashes.quality for _, hashes in entries], dtype=np.uint8),
        thumbnail=_stacked(
            [hashes.thumbnail for _, hashes in entries], (THUMBNAIL_SIDE, THUMBNAIL_SIDE), np.uint8
        ),
        chroma=_stacked([hashes.chroma for _, hashes in entries], (2, CHROMA_SIDE, CHROMA_SIDE), np.int8),
        failures=[(entry, problem or "unknown") for entry, hashes, problem in hashed if hashes is None],
        source_error=source_error,
        parts={row: hashes.parts for row, (_, hashes) in enumerate(entries) if hashes.parts},
    )


def _stacked(arrays: list[np.ndarray | None], shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """(N, *shape); all zero for an entry without one (see :mod:`bot.verification`)."""
    stacked: np.ndarray = np.zeros((len(arrays), *shape), dtype=dtype)
    for row, array in enumerate(arrays):
        if array is not None:
            stacked[row] = array
    return stacked


def _init_worker(settings: Settings) -> None:
    global _worker_settings  # noqa: PLW0603 - one read-only copy per worker process
    _worker_settings = settings


def _hash_batch_in_worker(task: ReadTask) -> BatchResult:
    assert _worker_settings is not None
    return hash_batch(task, _worker_settings)


def _hash_item_in_worker(item: SourceItem) -> tuple[DatasetEntry, EntryHashes | None, str | None]:
    keep_freed_memory_for_reuse()
    return hash_item(item)


# --- runners: where batches are hashed ----------------------------------------------------------


class HashingProcessDiedError(RemovalDeskError, RuntimeError):
    """Cluster workers kept dying on a batch; the shards finished so far are kept."""


class BatchRunner(Protocol):
    """Runs batches somewhere; ``submit`` returns a call that waits for the batch's result."""

    max_in_flight: int  # batches submitted and not yet taken
    task_scale: int  # batch size, in multiples of the usual (see WorkUnit.tasks)

    def submit(self, task: ReadTask) -> Callable[[], BatchResult]: ...


class InlineRunner:
    """Hash in this process: one worker, no pool to start (tests, tiny sources)."""

    max_in_flight = 1
    task_scale = 1

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def submit(self, task: ReadTask) -> Callable[[], BatchResult]:
        result = hash_batch(task, self._settings)
        return lambda: result


class ProcessRunner:
    """A local process pool: hashing is CPU-bound, so one process per core.

    A picture that kills the process hashing it (a decoder crash, the system out of memory) must
    not stop a build for good: a re-run would die on it again. When the pool breaks, its batches
    go to a new pool; a batch that breaks a pool twice is hashed one picture per process, and the
    picture whose process dies is one failure, ``hashing_process_died``.
    """

    def __init__(self, settings: Settings, workers: int) -> None:
        # fork: workers start in milliseconds and inherit the imported modules. The pool is started
        # here, before this process has any other thread (a progress bar's monitor) to fork with.
        methods = multiprocessing.get_all_start_methods()
        self._context = multiprocessing.get_context("fork") if "fork" in methods else None
        self._settings = settings
        self._workers = workers
        self._pool = self._new_pool(workers)
        self._pool.submit(int).result()
        # Enough queued batches that no worker waits for the next one, few enough that a slow
        # batch at the head of the queue holds back only a little finished work.
        self.max_in_flight = 4 * workers
        self.task_scale = 1

    def _new_pool(self, workers: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            workers, mp_context=self._context, initializer=_init_worker, initargs=(self._settings,)
        )

    def submit(self, task: ReadTask) -> Callable[[], BatchResult]:
        pool = self._pool
        try:
            future = pool.submit(_hash_batch_in_worker, task)
        except BrokenProcessPool:  # broke before anyone waited on it
            return lambda: self._retry(task, pool)

        def wait() -> BatchResult:
            try:
                return future.result()
            except BrokenProcessPool:
                return self._retry(task, pool)

        return wait

    def _retry(self, task: ReadTask, broken: ProcessPoolExecutor) -> BatchResult:
        self._replace(broken)
        pool = self._pool
        try:
            return pool.submit(_hash_batch_in_worker, task).result()
        except BrokenProcessPool:
            self._replace(pool)
            return self._one_picture_per_process(task)

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        """A new pool for every batch still to come, unless another batch already made one."""
        if broken is self._pool:
            broken.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool(self._workers)

    def _one_picture_per_process(self, task: ReadTask) -> BatchResult:
        hashed: list[tuple[DatasetEntry, EntryHashes | None, str | None]] = []
        try:
            items = list(read_task(task, self._settings))
        except SourceError as exc:
            return _batch_result(hashed, source_error=str(exc))
        for item in items:
            with self._new_pool(1) as alone:
                try:
                    hashed.append(alone.submit(_hash_item_in_worker, item).result())
                except BrokenProcessPool:
                    hashed.append((item.entry, None, "hashing_process_died"))
        return _batch_result(hashed)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def local_runner(settings: Settings, workers: int) -> Iterator[BatchRunner]:
    if workers <= 1:
        yield InlineRunner(settings)
        return
    runner = ProcessRunner(settings, workers)
    try:
        yield runner
    finally:
        runner.close()


def _ordered_results(
    runner: BatchRunner, tagged_tasks: Iterable[tuple[tuple[int, bool], ReadTask]]
) -> Iterator[tuple[tuple[int, bool], BatchResult]]:
    """Results in task order, with at most ``max_in_flight`` batches submitted and not yet taken."""
    pending: deque[tuple[tuple[int, bool], Callable[[], BatchResult]]] = deque()
    for tag, task in tagged_tasks:
        pending.append((tag, runner.submit(task)))
        if len(pending) >= runner.max_in_flight:
            first_tag, wait = pending.popleft()
            yield first_tag, wait()
    while pending:
        first_tag, wait = pending.popleft()
        yield first_tag, wait()


# --- the build ----------------------------------------------------------------------------------


@dataclass
class BuildReport:
    """What a build did, for the summary a maintainer reads at the end."""

    entries: int = 0
    shards: list[str] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    units: int = 0  # units of the sources, done before or now
    skipped_units: int = 0  # already in the index: not redone
    already_indexed: list[str] = field(default_factory=list)  # sources whose every unit was skipped
    unreadable: list[str] = field(default_factory=list)  # "unit: why", units to retry
    pictures: int = 0  # entries read in this run (hashed or failed)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Entries read per second of this run."""
        return self.pictures / self.seconds if self.seconds > 0 else 0.0


def _open_index(out: Path, settings: Settings) -> tuple[Manifest, bool]:
    """The index's manifest (a new, empty one written if there is none) and whether it existed."""
    parameters = hashing_parameters(settings)
    if not (out / "manifest.json").exists():
        out.mkdir(parents=True, exist_ok=True)
        manifest = Manifest(hashing=parameters)
        manifest.write(out)
        return manifest, False
    manifest = Manifest.read(out)
    if manifest.hashing != parameters:
        raise IndexFormatError(
            f"{out} was hashed with {manifest.hashing}, the current settings give {parameters}: "
            "build a new index instead of mixing incomparable hashes"
        )
    return manifest, True


def _units_to_do(
    out: Path,
    units: list[WorkUnit],
    roots: set[str],
    manifest: Manifest,
    ledger: UnitLedger,
    *,
    append: bool,
) -> list[WorkUnit]:
    """The units not in the index yet. Refuses to mix another build's sources in without
    ``append``, and to resume a source that changed since part of it was indexed."""
    done = ledger.done(manifest.shards)
    if not append:
        foreign = [identity for identity in done.values() if identity["root"] not in roots]
        if foreign or ledger.unrecorded(manifest.shards):
            raise IndexFormatError(
                f"{out} already holds an index of other sources; pass --append to add shards to it"
            )
    planned = {unit.id for unit in units}
    for unit_id, identity in done.items():
        if identity["root"] in roots and unit_id not in planned:
            raise IndexFormatError(
                f"{identity['root']} has changed since part of it was indexed into {out} "
                f"({identity['path']} is not what it was, or shard_size changed): build a new index "
                "for it, or give the changed copy another path"
            )
    return [unit for unit in units if unit.id not in done]


class _Progress:
    """A bar in pictures with rate and ETA when every unit's size is known up front; in units
    otherwise (a .tar's entries are only known once read), with the pictures in the postfix."""

    def __init__(self, units: list[WorkUnit], *, enabled: bool) -> None:
        sizes = [unit.size for unit in units]
        self.by_pictures = all(size is not None for size in sizes)
        total = sum(size or 0 for size in sizes) if self.by_pictures else len(units)
        self.bar = tqdm(
            total=total,
            desc="hashing",
            unit=" pictures" if self.by_pictures else " units",
            disable=not enabled,
            smoothing=0.05,
            dynamic_ncols=True,
        )
        self.pictures = 0
        self.failed = 0

    def batch_done(self, result: BatchResult) -> None:
        self.pictures += result.seen
        self.failed += len(result.failures)
        if self.by_pictures:
            self.bar.update(result.seen)
        self._postfix()

    def unit_done(self) -> None:
        if not self.by_pictures:
            self.bar.update(1)

    def _postfix(self) -> None:
        parts = [] if self.by_pictures else [f"{self.pictures:,} pictures"]
        parts.append(f"{self.failed:,} failed")
        self.bar.set_postfix_str(", ".join(parts), refresh=False)

    def close(self) -> None:
        self.bar.close()


def _next_shard_number(out: Path, manifest: Manifest) -> int:
    """The next free shard number: past every listed shard and every folder on disk (a build killed
    between renaming its shard into place and updating the manifest leaves an unlisted one)."""
    on_disk = [path.name for path in (out / "shards").glob("[0-9]*")] if (out / "shards").exists() else []
    numbers = [int(name) for name in [*manifest.shards, *on_disk] if name.isdigit()]
    return max(numbers, default=-1) + 1


def build_index(
    sources: list[Path],
    out: Path,
    settings: Settings,
    *,
    workers: int | None = None,
    append: bool = False,
    show_progress: bool = True,
    dask_address: str | None = None,
) -> BuildReport:
    """Hash every entry of ``sources`` that the index at ``out`` lacks into new shards.

    ``workers`` local processes (default: every core) hash the batches, or the Dask cluster at
    ``dask_address``. Re-running after an interruption resumes; ``append`` adds to an index that
    holds other sources. A picture that cannot be hashed is counted, a source slice that cannot be
    read is reported in ``unreadable`` and left for the next run: neither stops the build.
    """
    started = time.monotonic()
    units = plan_units(sources, settings.index.shard_size)  # refuses a missing source before any write
    manifest, existed = _open_index(out, settings)
    ledger = UnitLedger(out)
    roots = {str(source.absolute()) for source in sources}
    todo = _units_to_do(out, units, roots, manifest, ledger, append=append) if existed else units
    todo_ids = {unit.id for unit in todo}
    report = BuildReport(units=len(units), skipped_units=len(units) - len(todo))
    report.already_indexed = sorted(
        {unit.root for unit in units} - {unit.root for unit in units if unit.id in todo_ids}
    )
    if todo:
        with _runner(settings, workers, dask_address) as runner:
            _hash_units(
                todo,
                runner,
                out=out,
                manifest=manifest,
                ledger=ledger,
                report=report,
                show_progress=show_progress,
            )
    if show_progress:
        print("updating the search tables ...", file=sys.stderr)
    refresh_search_tables(out)  # nothing to do when they already cover every shard
    report.seconds = time.monotonic() - started
    return report


def _runner(
    settings: Settings, workers: int | None, dask_address: str | None
) -> AbstractContextManager[BatchRunner]:
    if dask_address is not None:
        from bot.index.cluster import dask_runner  # distributed is imported only when asked for

        return dask_runner(dask_address, settings)
    return local_runner(settings, workers or usable_cores())


def usable_cores() -> int:
    """The cores this process may run on (a container or taskset may allow fewer than exist)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _hash_units(
    todo: list[WorkUnit],
    runner: BatchRunner,
    *,
    out: Path,
    manifest: Manifest,
    ledger: UnitLedger,
    report: BuildReport,
    show_progress: bool,
) -> None:
    """Hash the units' batches with ``runner`` and commit each unit's shard once its last batch
    is in: shard, then ledger line, then manifest (see :mod:`bot.index.units` for why)."""
    number = _next_shard_number(out, manifest)
    tasks = _tagged_tasks(todo, runner.task_scale)
    progress = _Progress(todo, enabled=show_progress)
    writer: ShardWriter | None = None
    source_error: str | None = None
    try:
        for (index, last), result in _ordered_results(runner, tasks):
            unit = todo[index]
            if writer is None:
                writer = ShardWriter(out, f"{number:05d}")
                writer.sources = [unit.root]
            source_error = source_error or result.source_error
            if source_error is None:
                for entry, hashes in result.hashes():
                    writer.add(entry, hashes)
                for entry, reason in result.failures:
                    writer.add_failure(entry, reason)
            progress.batch_done(result)
            report.pictures += result.seen
            if not last:
                continue
            if source_error is None:
                writer.commit()
                ledger.record(unit, writer.name)
                manifest.shards.append(writer.name)
                manifest.write(out)
                report.shards.append(writer.name)
                report.entries += len(writer)
                report.failures.update(writer.failures)
                number += 1
            else:
                report.unreadable.append(f"{unit.describe()}: {source_error}")
            progress.unit_done()
            writer, source_error = None, None
    finally:
        progress.close()


def _tagged_tasks(todo: list[WorkUnit], scale: int) -> Iterator[tuple[tuple[int, bool], ReadTask]]:
    """Every unit's tasks in order, each tagged with its unit's index and whether it is the last."""
    for index, unit in enumerate(todo):
        tasks = unit.tasks(scale)
        for position, task in enumerate(tasks):
            yield (index, position == len(tasks) - 1), task
