"""Read dataset sources into a stream of entries: pictures to hash, or hashes computed elsewhere.

Supported sources (see README, "Building an index"):

* a folder of pictures, searched recursively; an entry's key is its path relative to the folder.
  Sidecar files written by img2dataset's ``files`` output format (``0001.json`` with ``key`` and
  ``url``, ``0001.txt`` with the caption) supply key, URL and caption when present;
  ``.tar`` files found in the folder are read as webdataset shards;
* a webdataset ``.tar`` shard, as written by img2dataset's ``webdataset`` output format: the
  members of one sample share a name before the first dot (``000010.jpg``, ``000010.json``,
  ``000010.txt``) and sit next to each other, so the tar is streamed, never unpacked;
* a Parquet file of precomputed hashes with columns ``key``, one per kind of hash (:mod:`bot.signals`:
  ``phash``, ``pdq``; hex digits or bytes, a 64-bit kind also an integer) and optionally
  ``url``, ``caption`` and ``quality`` (read in batches, never loaded whole); and optionally each
  entry's whole-picture hashes (:mod:`bot.whole_picture`) in ``whole_pdq`` and ``whole_phash``
  (written as ``pdq`` and ``phash`` are; both or neither) with ``whole_quality`` (default 100).
  A file without them gives shards without whole-picture files (a hash-list scan cannot read
  those); a file with them gives every entry its values, a row with a missing or bad one being
  a ``bad_hash_value`` failure, so a shard never holds them for some entries and not others;
  and optionally ``md5``, the MD5 of each entry's file bytes as img2dataset writes it with
  ``compute_hash="md5"`` (32 hex digits, or 16 bytes): a file with the column gives every entry
  its MD5, a row whose value is missing or not an MD5 being a ``bad_md5`` failure, named apart
  so the build's report says which column to fix;
* a URL list (LAION-style metadata), whose pictures are downloaded: see :mod:`bot.index.url_lists`
  (its rows) and :mod:`bot.index.download_thread` (its pictures).

A build reads these in slices (:mod:`bot.index.units`): a folder's sorted pictures by position,
a hash file by row range, each ``.tar`` whole.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pyarrow.parquet as pq

from bot.errors import RemovalDeskError
from bot.hashing import EntryHashes
from bot.index.storage import MD5_BYTES, DatasetEntry
from bot.signals import PDQ, SIGNAL_KINDS, PHash, signal_kinds
from bot.whole_picture import WholeHashes

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"})


class SourceError(RemovalDeskError, ValueError):
    """A source cannot be read at all (as opposed to one bad picture inside it)."""


@dataclass(frozen=True)
class SourceItem:
    """One dataset entry: either raw picture bytes to hash, or hashes computed elsewhere."""

    entry: DatasetEntry
    picture: bytes | None = None
    hashes: EntryHashes | None = None
    problem: str | None = None  # set when the entry cannot be hashed at all (e.g. no picture)


def _sidecar_entry(key: str, sidecar_json: bytes | None, sidecar_txt: bytes | None) -> DatasetEntry:
    """Key, URL and caption from img2dataset's sidecars; ``key`` is the fallback key."""
    record: dict[str, object] = {}
    if sidecar_json:
        try:
            loaded = json.loads(sidecar_json)
            record = loaded if isinstance(loaded, dict) else {}
        except ValueError:
            record = {}
    caption = record.get("caption")
    if caption is None and sidecar_txt is not None:
        caption = sidecar_txt.decode("utf-8", errors="replace")
    url = record.get("url")
    return DatasetEntry(
        key=str(record.get("key") or key),
        url=str(url) if url is not None else None,
        caption=str(caption) if caption is not None else None,
    )


def _read_optional(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def list_folder(folder: Path) -> tuple[list[str], list[Path]]:
    """The pictures under ``folder`` (POSIX paths relative to it) and its tar shards, both sorted.

    Sorted walk order is what makes a build reproducible and lets it be cut into numbered units
    that a resumed build finds again.
    """
    pictures: list[str] = []
    shards: list[Path] = []
    for root, directories, files in os.walk(folder):
        directories.sort()
        for name in sorted(files):
            path = Path(root) / name
            suffix = path.suffix.lower()
            if suffix in IMAGE_SUFFIXES:
                pictures.append(path.relative_to(folder).as_posix())
            elif suffix == ".tar":
                shards.append(path)
    return pictures, shards


def iter_folder_pictures(
    folder: Path, relative_paths: Iterable[str], *, max_bytes: int | None = None
) -> Iterator[SourceItem]:
    """The given pictures of ``folder`` with their sidecars, in the order given.

    A file that vanished or cannot be read is one failed entry (``unreadable_file``), not the end
    of the build; one larger than ``max_bytes`` is refused (``too_many_bytes``, as the decoder
    would) without being read into memory.
    """
    for relative in relative_paths:
        path = folder / relative
        json_sidecar = _read_optional(path.with_name(path.stem + ".json"))
        txt_sidecar = _read_optional(path.with_name(path.stem + ".txt"))
        if json_sidecar is None and txt_sidecar is None:
            entry = DatasetEntry(key=relative)
        else:
            entry = _sidecar_entry(relative, json_sidecar, txt_sidecar)
        try:
            with path.open("rb") as handle:
                if max_bytes is not None and os.fstat(handle.fileno()).st_size > max_bytes:
                    yield SourceItem(entry=entry, problem="too_many_bytes")
                    continue
                picture = handle.read()
        except OSError:
            yield SourceItem(entry=entry, problem="unreadable_file")
            continue
        yield SourceItem(entry=entry, picture=picture)


def iter_webdataset(path: Path) -> Iterator[SourceItem]:
    """Stream a webdataset tar: group adjacent members by sample key, one entry per sample."""
    current_key: str | None = None
    members: dict[str, bytes] = {}

    def flush() -> Iterator[SourceItem]:
        if current_key is None:
            return
        picture_suffix = next((s for s in members if s in IMAGE_SUFFIXES), None)
        entry = _sidecar_entry(current_key, members.get(".json"), members.get(".txt"))
        if picture_suffix is None:
            yield SourceItem(entry=entry, problem="no_picture")
        else:
            yield SourceItem(entry=entry, picture=members[picture_suffix])

    try:
        with tarfile.open(path, mode="r|*") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                name = PurePosixPath(member.name)
                key = str(name.parent / name.name.split(".", 1)[0])
                suffix = "." + name.name.split(".", 1)[1].lower() if "." in name.name else ""
                if key != current_key:
                    yield from flush()
                    current_key, members = key, {}
                handle = archive.extractfile(member)
                if handle is not None:
                    members[suffix] = handle.read()
            yield from flush()
    except (tarfile.TarError, OSError) as exc:
        raise SourceError(f"cannot read tar shard {path}: {exc}") from exc


def _quality_value(value: object) -> int:
    quality = int(value)  # type: ignore[call-overload]
    if not 0 <= quality <= 100:
        raise ValueError(f"quality {value!r} is outside 0-100")
    return quality


def _open_hash_parquet(path: Path) -> tuple[pq.ParquetFile, list[str]]:
    """The Parquet file and the columns to read, or a SourceError naming what is wrong with it."""
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, ValueError) as exc:
        raise SourceError(f"cannot read Parquet file {path}: {exc}") from exc
    names = set(parquet.schema_arrow.names)
    kinds = list(SIGNAL_KINDS)
    missing = {"key", *kinds} - names
    if missing:
        raise SourceError(f"{path} lacks the column(s) {', '.join(sorted(missing))} a hash file needs")
    whole = [name for name in _WHOLE_HASH_COLUMNS if name in names]
    if len(whole) == 1:
        other = next(name for name in _WHOLE_HASH_COLUMNS if name not in names)
        raise SourceError(f"{path} has the column {whole[0]} but not {other}: give both or neither")
    if whole and "whole_quality" in names:
        whole.append("whole_quality")
    wanted = ("key", "url", "caption", *kinds, "quality", *whole, MD5_COLUMN)
    return parquet, [c for c in wanted if c in names]


# The whole-picture hashes' columns of a hash Parquet file, both or neither (whole_quality: optional).
_WHOLE_HASH_COLUMNS = ("whole_pdq", "whole_phash")


def _whole_hashes(columns: dict[str, list], row: int) -> WholeHashes | None:
    """Row ``row``'s whole-picture hashes; None when the file has no such columns. A missing or
    bad value is a TypeError or ValueError (the row is a failure, as a bad hash of its own is)."""
    if "whole_pdq" not in columns:
        return None
    qualities = columns.get("whole_quality")
    return WholeHashes(
        pdq=PDQ.parse(columns["whole_pdq"][row]),
        phash=PHash.parse(columns["whole_phash"][row]),
        quality=100 if qualities is None else _quality_value(qualities[row]),
    )


# img2dataset's name for the column of each file's MD5 (its compute_hash="md5").
MD5_COLUMN = "md5"


class BadMD5Error(RemovalDeskError, ValueError):
    """A hash Parquet row's md5 value is missing or not an MD5."""


def parse_md5(value: object) -> bytes:
    """An MD5 as img2dataset writes it (32 hex digits, any case) or as 16 bytes, as 16 bytes."""
    if isinstance(value, bytes) and len(value) == MD5_BYTES:
        return value
    if isinstance(value, str) and len(value) == 2 * MD5_BYTES:
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    raise BadMD5Error(f"{value!r} is not an MD5 (32 hex digits)")


def _md5(columns: dict[str, list], row: int) -> bytes | None:
    """Row ``row``'s MD5; None when the file has no md5 column."""
    values = columns.get(MD5_COLUMN)
    return None if values is None else parse_md5(values[row])


def count_hash_rows(path: Path) -> int:
    """Rows of a hash Parquet file, from its footer alone; checks the columns on the way."""
    parquet, _ = _open_hash_parquet(path)
    return parquet.metadata.num_rows


def parquet_row_batches(
    parquet: pq.ParquetFile, columns: list[str], batch_rows: int, start: int, stop: int | None
) -> Iterator[dict[str, list]]:
    """Rows [start, stop) as column dicts, in order, reading only the row groups that hold them
    (a work unit of a large metadata file reads its own rows, not the file)."""
    stop = parquet.metadata.num_rows if stop is None else min(stop, parquet.metadata.num_rows)
    groups, first_row, offset = [], None, 0
    for group in range(parquet.metadata.num_row_groups):
        rows = parquet.metadata.row_group(group).num_rows
        if offset < stop and offset + rows > start:
            groups.append(group)
            first_row = offset if first_row is None else first_row
        offset += rows
    if not groups or first_row is None:
        return
    position = first_row
    for batch in parquet.iter_batches(batch_size=batch_rows, row_groups=groups, columns=columns):
        lo, hi = max(start - position, 0), min(stop - position, batch.num_rows)
        position += batch.num_rows
        if lo < hi:
            yield batch.slice(lo, hi - lo).to_pydict()
        if position >= stop:
            return


def iter_hash_parquet(
    path: Path, batch_rows: int = 65_536, *, start: int = 0, stop: int | None = None
) -> Iterator[SourceItem]:
    """Entries from rows [start, stop) of a Parquet file of precomputed hashes (see the module
    docstring for columns); read in batches from the row groups that hold them, never whole."""
    parquet, wanted = _open_hash_parquet(path)
    for columns in parquet_row_batches(parquet, wanted, batch_rows, start, stop):
        rows = len(columns["key"])
        urls = columns.get("url", [None] * rows)
        captions = columns.get("caption", [None] * rows)
        qualities = columns.get("quality", [100] * rows)
        for i, key in enumerate(columns["key"]):
            entry = DatasetEntry(key=str(key), url=urls[i], caption=captions[i])
            try:
                hashes = EntryHashes(
                    signals={kind.name: kind.parse(columns[kind.name][i]) for kind in signal_kinds()},
                    quality=_quality_value(qualities[i]),
                    whole=_whole_hashes(columns, i),
                    md5=_md5(columns, i),
                )
            except BadMD5Error:
                yield SourceItem(entry=entry, problem="bad_md5")
                continue
            except (TypeError, ValueError):
                yield SourceItem(entry=entry, problem="bad_hash_value")
                continue
            yield SourceItem(entry=entry, hashes=hashes)
