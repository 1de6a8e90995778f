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

import os
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from bot.config import Settings
from bot.index.batches import BatchResult, BatchRunner, local_runner
from bot.index.mih import refresh_search_tables
from bot.index.storage import IndexFormatError, IndexHistory, Manifest, ShardWriter, hashing_parameters
from bot.index.units import ReadTask, UnitLedger, WorkUnit, plan_units


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
        IndexHistory(built_at=IndexHistory.now()).write(out)
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
                manifest.files[writer.name] = writer.files
                manifest.write(out)
                built = IndexHistory.read(out).built_at
                IndexHistory(built_at=built, last_added_at=IndexHistory.now()).write(out)
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
