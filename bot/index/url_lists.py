"""Read the rows of a URL list (LAION-style metadata): which picture to download for each entry, under
which key, with which caption. Nothing here touches the network; :mod:`bot.index.download_thread`
downloads what these rows name.

A URL list is a Parquet or CSV/TSV file with a URL column and, optionally, an id and a caption column
(LAION's ``URL``, ``SAMPLE_ID``, ``TEXT``; img2dataset's ``url``, ``key``, ``caption``; any case: see
:mod:`bot.columns`). A build reads a long list range after range (:mod:`bot.index.units`): Parquet by
the row groups that hold the range, CSV from where the previous range stopped.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pyarrow.parquet as pq

from bot.columns import CAPTION_COLUMNS, KEY_COLUMNS, URL_COLUMNS, pick_column
from bot.index.sources import SourceError, parquet_row_batches
from bot.index.storage import DatasetEntry

CSV_DELIMITERS = {".csv": ",", ".tsv": "\t"}

_PARQUET_BATCH_ROWS = 65_536
# A CSV written from a float column (pandas does this to LAION's SAMPLE_ID) says "123.0".
_INTEGRAL_FLOAT_TEXT = re.compile(r"^-?\d+\.0*$")


@dataclass(frozen=True)
class UrlListColumns:
    """The columns of a URL list that were found (their names as the file spells them)."""

    url: str
    key: str | None
    caption: str | None


def find_url_columns(names: Sequence[str], path: Path) -> UrlListColumns:
    """Which of ``names`` hold the URL, the id and the caption; no URL column is an error."""
    url = pick_column(names, URL_COLUMNS)
    if url is None:
        raise SourceError(f"{path} has no URL column (columns: {', '.join(names) or 'none'})")
    return UrlListColumns(
        url=url, key=pick_column(names, KEY_COLUMNS), caption=pick_column(names, CAPTION_COLUMNS)
    )


def is_url_list(path: Path) -> bool:
    """A CSV/TSV file, or a Parquet file with a URL column and no ``phash`` column (a Parquet file
    with hashes is a precomputed-hash file, read by :func:`bot.index.sources.iter_hash_parquet`)."""
    if not path.is_file():
        return False
    suffix = path.suffix.lower()
    if suffix in CSV_DELIMITERS:
        return True
    if suffix != ".parquet":
        return False
    try:
        names = {name.lower() for name in pq.read_schema(path).names}
    except (OSError, ValueError):  # not Parquet at all: the hash-file reader says so clearly
        return False
    return "url" in names and "phash" not in names


def count_url_rows(path: Path) -> int:
    """Rows in a URL list: from the footer for Parquet, by reading the file through for CSV (a
    quoted caption may span lines, so lines are not rows)."""
    if path.suffix.lower() == ".parquet":
        return _open_parquet(path).metadata.num_rows
    return _count_csv_rows(path)


def iter_url_rows(path: Path, start: int = 0, stop: int | None = None) -> Iterator[DatasetEntry]:
    """Rows ``[start, stop)`` of a URL list, streamed: Parquet by batches of the row groups that hold
    them, CSV record by record. Without an id column an entry's key is its row number."""
    if start < 0 or (stop is not None and stop < start):
        raise ValueError(f"bad row range [{start}, {stop})")
    if path.suffix.lower() == ".parquet":
        return _iter_parquet_rows(path, start, stop)
    return _iter_csv_rows(path, start, stop)


def _key_text(value: object, row_number: int) -> str:
    """An id as text, the same whether the list stores it as int64, float64 or CSV text."""
    if value is None or value == "":
        return str(row_number)
    if isinstance(value, float):
        if math.isnan(value):
            return str(row_number)
        if value.is_integer():
            return str(int(value))
    if isinstance(value, str) and _INTEGRAL_FLOAT_TEXT.match(value):
        return value.split(".", 1)[0]
    return str(value)


def _entry(row_number: int, url: object, key: object, caption: object) -> DatasetEntry:
    return DatasetEntry(
        key=_key_text(key, row_number),
        url=None if url is None else str(url),
        caption=None if caption is None else str(caption),
    )


def _open_parquet(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (OSError, ValueError) as exc:
        raise SourceError(f"cannot read Parquet file {path}: {exc}") from exc


def _iter_parquet_rows(path: Path, start: int, stop: int | None) -> Iterator[DatasetEntry]:
    parquet = _open_parquet(path)
    columns = find_url_columns(parquet.schema_arrow.names, path)
    wanted = [name for name in (columns.url, columns.key, columns.caption) if name is not None]
    row = start
    for data in parquet_row_batches(parquet, wanted, _PARQUET_BATCH_ROWS, start, stop):
        urls = data[columns.url]
        keys = data[columns.key] if columns.key else [None] * len(urls)
        captions = data[columns.caption] if columns.caption else [None] * len(urls)
        for offset, url in enumerate(urls):
            yield _entry(row + offset, url, keys[offset], captions[offset])
        row += len(urls)


class _CountedLines:
    """Decoded lines of a binary file that remember the byte offset after the last line handed out:
    the csv module reads a record's lines only as it needs them, so after each record this is where
    the next one starts."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self.offset = handle.tell()

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = self._handle.readline()
        if not line:
            raise StopIteration
        self.offset += len(line)
        return line.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class _CsvBookmark:
    """Where a CSV read stopped, so that reading the next range does not parse the file from the
    top again (a build reads a long list range after range)."""

    size: int
    mtime_ns: int
    row: int
    offset: int


_csv_bookmarks: dict[Path, _CsvBookmark] = {}
_MAX_CSV_BOOKMARKS = 64


def _csv_reader(lines: _CountedLines, path: Path) -> Iterator[list[str]]:
    return csv.reader(lines, delimiter=CSV_DELIMITERS.get(path.suffix.lower(), ","))


def _read_header(reader: Iterator[list[str]], path: Path) -> list[str]:
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise SourceError(f"cannot read the header of {path}: {exc}") from exc
    if not header:
        raise SourceError(f"{path} is empty: a URL list needs a header row naming its URL column")
    header[0] = header[0].removeprefix("\ufeff")  # a byte-order mark written by spreadsheet programs
    return header


def _count_csv_rows(path: Path) -> int:
    with path.open("rb") as handle:
        reader = _csv_reader(_CountedLines(handle), path)
        _read_header(reader, path)
        try:
            return sum(1 for record in reader if record)
        except csv.Error as exc:
            raise SourceError(f"{path}: {exc}") from exc


def _iter_csv_rows(path: Path, start: int, stop: int | None) -> Iterator[DatasetEntry]:
    status = path.stat()
    with path.open("rb") as handle:
        lines = _CountedLines(handle)
        reader = _csv_reader(lines, path)
        header = _read_header(reader, path)
        columns = find_url_columns(header, path)
        positions = (
            header.index(columns.url),
            header.index(columns.key) if columns.key else None,
            header.index(columns.caption) if columns.caption else None,
        )
        row = 0
        bookmark = _csv_bookmarks.get(path.resolve())
        same_file = bookmark is not None and (bookmark.size, bookmark.mtime_ns) == (
            status.st_size,
            status.st_mtime_ns,
        )
        if bookmark is not None and same_file and bookmark.row <= start:
            handle.seek(bookmark.offset)
            lines = _CountedLines(handle)
            reader = _csv_reader(lines, path)
            row = bookmark.row
        readable = True
        try:
            while stop is None or row < stop:
                try:
                    record = next(reader, None)
                except csv.Error as exc:
                    readable = False
                    raise SourceError(f"{path}: cannot read the row after row {row}: {exc}") from exc
                if record is None:
                    break
                if not record:  # a blank line is no row
                    continue
                number, row = row, row + 1
                if number >= start:
                    yield _entry(number, *(_field(record, position) for position in positions))
        finally:
            if readable:  # also when the reader of these rows stopped early: `row` counts what was read
                if len(_csv_bookmarks) >= _MAX_CSV_BOOKMARKS:
                    _csv_bookmarks.clear()
                _csv_bookmarks[path.resolve()] = _CsvBookmark(
                    status.st_size, status.st_mtime_ns, row, lines.offset
                )


def _field(record: list[str], position: int | None) -> str | None:
    return record[position] if position is not None and position < len(record) else None
