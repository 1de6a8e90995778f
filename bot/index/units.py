"""Cut dataset sources into numbered work units, one shard each, so a build can resume and append.

A unit is a fixed slice of one source: ``shard_size`` pictures of a folder (its sorted file list),
one webdataset ``.tar``, or ``shard_size`` rows of a hash Parquet file or of a URL list. The same
sources always give the same units, and a unit is recognised again by its identity — which file,
which slice, and a fingerprint that changes when the source does — so a re-run skips what is
already in the index and redoes only the rest.

A unit is hashed as a few :class:`ReadTask` batches, small enough to spread over every core (or a
cluster's workers) and to keep memory bounded. A task names what to read, never the bytes: the
process that runs it reads its slice itself, which is what lets a cluster worker do the reading.

The ledger (``units.jsonl`` in the index folder) says which unit each shard holds. A unit is done
when the ledger names its shard AND the manifest lists that shard; the shard is committed first,
the ledger line next, the manifest last, so a build killed at any point leaves no unit half-done.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.index.download_thread import iter_url_pictures
from bot.index.sources import (
    SourceError,
    SourceItem,
    count_hash_rows,
    iter_folder_pictures,
    iter_hash_parquet,
    iter_webdataset,
    list_folder,
)
from bot.index.url_lists import count_url_rows, is_url_list, iter_url_rows

LEDGER_NAME = "units.jsonl"

# Pictures per task: ~0.3-0.5 s of hashing, so a process pool's per-task overhead (~1 ms) stays
# under 1 %, while even a unit of a few hundred pictures splits into enough tasks to keep every core
# busy (a Dask build scales these up: see bot.index.cluster). Hash rows cost microseconds each: a
# task reads a whole Parquet row batch. URL rows wait on the network: a larger task keeps a
# worker's downloads overlapping with its hashing.
PICTURES_PER_TASK = 32
HASH_ROWS_PER_TASK = 65_536
URL_ROWS_PER_TASK = 512


class UnitKind(StrEnum):
    PICTURES = "pictures"  # picture files of a folder
    WEBDATASET = "webdataset"  # one img2dataset webdataset .tar
    HASHES = "hashes"  # rows of a Parquet file of precomputed hashes
    URLS = "urls"  # rows of a URL list: downloaded, then hashed


@dataclass(frozen=True)
class ReadTask:
    """One batch of a unit: what to read (a path and a slice), so any process can read it."""

    kind: UnitKind
    path: str
    start: int = 0
    stop: int | None = None
    files: tuple[str, ...] = ()  # PICTURES: the folder's files to read, relative to ``path``


@dataclass(frozen=True)
class WorkUnit:
    """A fixed slice of a source that becomes one shard."""

    root: str  # the source as given to the build (made absolute): what "already indexed" names
    kind: UnitKind
    path: str  # what is read: the folder, the .tar, the Parquet file or the URL list
    start: int  # first picture / row of the slice
    stop: int | None  # one past the last; None for a .tar (read to its end)
    fingerprint: str  # changes when the slice's source changes
    files: tuple[str, ...] = field(default=(), repr=False, compare=False)  # PICTURES only

    @property
    def size(self) -> int | None:
        """Entries in the unit, when known without reading it (not for a .tar)."""
        return None if self.stop is None else self.stop - self.start

    def identity(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "kind": str(self.kind),
            "path": self.path,
            "start": self.start,
            "stop": self.stop,
            "fingerprint": self.fingerprint,
        }

    @property
    def id(self) -> str:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:32]

    def describe(self) -> str:
        if self.kind is UnitKind.WEBDATASET:
            return self.path
        noun = "pictures" if self.kind is UnitKind.PICTURES else "rows"
        assert self.stop is not None
        return f"{self.path} ({noun} {self.start:,}-{self.stop - 1:,})"

    def tasks(self, scale: int = 1) -> list[ReadTask]:
        """The unit's batches, ``scale`` times the usual size for picture and URL batches (a
        cluster's scheduler pays more per task than a local pool does)."""
        if self.kind is UnitKind.PICTURES:
            step = PICTURES_PER_TASK * scale
            return [
                ReadTask(self.kind, self.path, files=self.files[i : i + step])
                for i in range(0, len(self.files), step)
            ]
        if self.kind is UnitKind.WEBDATASET:
            return [ReadTask(self.kind, self.path)]
        assert self.stop is not None
        step = HASH_ROWS_PER_TASK if self.kind is UnitKind.HASHES else URL_ROWS_PER_TASK * scale
        return [
            ReadTask(self.kind, self.path, start, min(start + step, self.stop))
            for start in range(self.start, self.stop, step)
        ]


# --- planning -----------------------------------------------------------------------------------


def _file_fingerprint(path: Path) -> str:
    """Size and modification time: changes when a file is rewritten, costs one stat."""
    status = path.stat()
    return f"{status.st_size}:{status.st_mtime_ns}"


def _row_units(root: str, kind: UnitKind, path: Path, rows: int, unit_size: int) -> list[WorkUnit]:
    fingerprint = _file_fingerprint(path)
    return [
        WorkUnit(root, kind, str(path), start, min(start + unit_size, rows), fingerprint)
        for start in range(0, rows, unit_size)
    ]


def _folder_units(root: str, folder: Path, unit_size: int) -> list[WorkUnit]:
    pictures, tars = list_folder(folder)
    units = []
    for start in range(0, len(pictures), unit_size):
        files = tuple(pictures[start : start + unit_size])
        # The file names, not their stats: a folder of millions of files is planned from one walk.
        fingerprint = hashlib.sha256("\n".join(files).encode()).hexdigest()[:32]
        units.append(
            WorkUnit(root, UnitKind.PICTURES, str(folder), start, start + len(files), fingerprint, files)
        )
    for tar in tars:
        units.append(WorkUnit(root, UnitKind.WEBDATASET, str(tar), 0, None, _file_fingerprint(tar)))
    return units


def source_units(source: Path, unit_size: int) -> list[WorkUnit]:
    """The units of one source, in reading order; a source that cannot be read at all is refused
    here, before anything is written."""
    source = source.absolute()
    root = str(source)
    if source.is_dir():
        return _folder_units(root, source, unit_size)
    if not source.exists():
        raise SourceError(f"{source} does not exist")
    suffix = source.suffix.lower()
    if suffix == ".tar":
        return [WorkUnit(root, UnitKind.WEBDATASET, root, 0, None, _file_fingerprint(source))]
    if is_url_list(source):
        rows = count_url_rows(source)
        return _row_units(root, UnitKind.URLS, source, rows, unit_size)
    if suffix == ".parquet":
        return _row_units(root, UnitKind.HASHES, source, count_hash_rows(source), unit_size)
    raise SourceError(
        f"{source} is not a folder, a .tar shard, a .parquet hash file or a URL list (.csv, .tsv, "
        ".parquet with a url column)"
    )


def plan_units(sources: Iterable[Path], unit_size: int) -> list[WorkUnit]:
    """Every unit of every source, in order; a source named twice is read once."""
    seen: set[Path] = set()
    units: list[WorkUnit] = []
    for source in sources:
        if source.absolute() in seen:
            continue
        seen.add(source.absolute())
        units.extend(source_units(source, unit_size))
    return units


# --- reading (in whichever process runs the task) -------------------------------------------------


def read_task(task: ReadTask, settings: Settings) -> Iterator[SourceItem]:
    """The entries of one task's slice: pictures to hash, or hashes read from a file."""
    path = Path(task.path)
    if task.kind is UnitKind.PICTURES:
        return iter_folder_pictures(path, task.files, max_bytes=settings.decoding.max_bytes)
    if task.kind is UnitKind.WEBDATASET:
        return iter_webdataset(path)
    if task.kind is UnitKind.HASHES:
        return iter_hash_parquet(path, start=task.start, stop=task.stop)
    assert task.stop is not None
    return iter_url_pictures(iter_url_rows(path, task.start, task.stop), settings.download)


# --- the ledger of finished units ---------------------------------------------------------------


class UnitLedger:
    """``units.jsonl``: one line per committed shard, naming the unit it holds.

    Append-only, so recording a unit costs the same however large the index grows. A build killed
    mid-line leaves a torn last line: it is cut off before the next line is written, and ignored
    when read (the manifest does not list that shard yet, so the unit is redone either way).
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / LEDGER_NAME
        self.shard_of: dict[str, str] = {}  # unit id -> shard name
        self.units: dict[str, dict[str, Any]] = {}  # unit id -> identity
        if not self.path.exists():
            return
        for line in self.path.read_bytes().splitlines():
            try:
                record = json.loads(line)
                unit_id, shard, identity = record["id"], record["shard"], record["unit"]
            except (ValueError, KeyError, TypeError):
                continue
            self.shard_of[unit_id] = shard
            self.units[unit_id] = identity

    def done(self, listed_shards: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The identities of the units whose shard the manifest lists, by unit id."""
        listed = set(listed_shards)
        return {unit_id: self.units[unit_id] for unit_id, shard in self.shard_of.items() if shard in listed}

    def unrecorded(self, listed_shards: Iterable[str]) -> list[str]:
        """Listed shards that no ledger line explains (written by a build before units existed)."""
        recorded = set(self.shard_of.values())
        return [shard for shard in listed_shards if shard not in recorded]

    def record(self, unit: WorkUnit, shard: str) -> None:
        line = json.dumps({"id": unit.id, "shard": shard, "unit": unit.identity()}, sort_keys=True)
        with self.path.open("ab") as handle:
            if handle.tell() and not self._ends_with_newline():
                handle.truncate(self._last_newline_end())
            handle.write(line.encode() + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.shard_of[unit.id] = shard
        self.units[unit.id] = unit.identity()

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"

    def _last_newline_end(self) -> int:
        data = self.path.read_bytes()
        return data.rfind(b"\n") + 1
