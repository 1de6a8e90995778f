"""Hashing batches of source items, in whichever process runs them: this one, a local process
pool, or (through :mod:`bot.index.cluster`) a Dask worker.

A batch is a slice of one work unit (:mod:`bot.index.units`); the process that runs it reads the
slice itself, so only file names go out and compact arrays (:class:`BatchResult`) come back. A
picture that cannot be hashed becomes a failure reason, never an exception that loses the batch.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from bot.config import Settings
from bot.decoding import ImageRejectedError, decode_picture
from bot.errors import RemovalDeskError
from bot.hashing import EntryHashes, EntryPart, hash_entry
from bot.index.sources import SourceError, SourceItem
from bot.index.storage import DatasetEntry, stack_md5
from bot.index.units import ReadTask, read_task
from bot.signals import SignalValues, pdq_fast, signal_keywords, signal_kinds
from bot.verification import CHROMA_SIDE, THUMBNAIL_SIDE
from bot.whole_picture import WholeColumns, hash_whole_picture

_worker_settings: Settings | None = None


def hash_item(
    item: SourceItem, settings: Settings | None = None
) -> tuple[DatasetEntry, EntryHashes | None, str | None]:
    """Hash one source item; a picture that cannot be hashed gives a failure reason instead.

    This is ``hash_entry(decode_picture(...))``, exactly what a query's original would give, so an
    entry of the index and a copy checked later are hashed the same way; and the whole picture's
    hashes as a partner hash list computes them (:mod:`bot.whole_picture`), unless ``[index]
    whole_picture_hashes`` is off, and the MD5 of the file's bytes (what img2dataset's
    ``compute_hash="md5"`` writes; ~0.7 ms for a 500 KB file at ~700 MB/s a core), for hash-list
    scans.
    """
    settings = settings or _worker_settings
    assert settings is not None, "hash_item needs settings (the pool initializer sets them)"
    if item.hashes is not None or item.problem is not None:
        return item.entry, item.hashes, item.problem
    assert item.picture is not None
    try:
        keep = settings.index.whole_picture_hashes
        picture = decode_picture(item.picture, settings.decoding, keep_full=keep)
    except ImageRejectedError as rejected:
        return item.entry, None, rejected.reason
    hashes = hash_entry(picture.image, settings.hashing)
    whole = hash_whole_picture(item.picture, picture.image, picture.full) if keep else None
    md5 = hashlib.md5(item.picture, usedforsecurity=False).digest()
    return item.entry, replace(hashes, whole=whole, md5=md5), None


@signal_keywords
@dataclass
class BatchResult(SignalValues):
    """A hashed batch, compact enough to send back from a worker: arrays, entries and failures."""

    entries: list[DatasetEntry]
    signals: dict[str, np.ndarray]  # by kind name: (N, *kind.value_shape()) uint64 (``batch.pdq``)
    quality: np.ndarray  # (N,) uint8
    thumbnail: np.ndarray  # (N, 16, 16) uint8, all zero where none (bot.verification)
    chroma: np.ndarray  # (N, 2, 8, 8) int8, all zero where none
    failures: list[tuple[DatasetEntry, str]]
    source_error: str | None = None  # the slice could not be read at all (e.g. a broken .tar)
    # The photographs inside composites, by entry row (few: only composites have any).
    parts: dict[int, tuple[EntryPart, ...]] = field(default_factory=dict)
    # The entries' whole-picture hashes (bot.whole_picture); None where the batch's entries came
    # without them (a hash Parquet file without the whole_* columns).
    whole: WholeColumns | None = None
    # (N, 16) uint8: the entries' MD5s of their file bytes; None where the batch's entries came
    # without them (a hash Parquet file without an md5 column).
    md5: np.ndarray | None = None

    @property
    def seen(self) -> int:
        return len(self.entries) + len(self.failures)

    def hashes(self) -> Iterator[tuple[DatasetEntry, EntryHashes]]:
        columns = [(kind.name, kind.entry_values(self.signals[kind.name])) for kind in signal_kinds()]
        for row, entry in enumerate(self.entries):
            yield (
                entry,
                EntryHashes(
                    signals={name: values[row] for name, values in columns},
                    quality=int(self.quality[row]),
                    thumbnail=self.thumbnail[row],
                    chroma=self.chroma[row],
                    parts=self.parts.get(row, ()),
                    whole=None if self.whole is None else self.whole.row(row),
                    md5=None if self.md5 is None else self.md5[row].tobytes(),
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
        signals={
            kind.name: kind.column([hashes.signals[kind.name] for _, hashes in entries])
            for kind in signal_kinds()
        },
        quality=np.array([hashes.quality for _, hashes in entries], dtype=np.uint8),
        thumbnail=_stacked(
            [hashes.thumbnail for _, hashes in entries], (THUMBNAIL_SIDE, THUMBNAIL_SIDE), np.uint8
        ),
        chroma=_stacked([hashes.chroma for _, hashes in entries], (2, CHROMA_SIDE, CHROMA_SIDE), np.int8),
        failures=[(entry, problem or "unknown") for entry, hashes, problem in hashed if hashes is None],
        source_error=source_error,
        parts={row: hashes.parts for row, (_, hashes) in enumerate(entries) if hashes.parts},
        whole=WholeColumns.stack([hashes.whole for _, hashes in entries]),
        md5=stack_md5([hashes.md5 for _, hashes in entries]),
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
        pdq_fast.load()  # compiled PDQ kernel (numba) loaded once here, inherited by every worker
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
