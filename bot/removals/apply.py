"""Apply a removal list to a dataset's metadata: cleaned copies of its Parquet files, and why.

Dataset users do not run this bot; they download the removal list and drop its rows from their
copy of the metadata (LAION-style Parquet: ``SAMPLE_ID``, ``URL``, ``TEXT``, ...). A row is
dropped when its URL is on the list, or its id column (``SAMPLE_ID`` or ``key``) equals a listed
key. Files are streamed batch by batch and written with the same schema, so a 5-billion-row
dataset is cleaned file by file in bounded memory. The summary lists every dropped row with the
reason and the ticket that decided it.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bot.columns import KEY_COLUMNS, URL_COLUMNS, pick_column
from bot.durable import written_aside
from bot.errors import RemovalDeskError

SUMMARY_NAME = "removals-applied.json"
_BATCH_ROWS = 65_536
_READ_BUFFER = 1 << 20


class RemovalApplyError(RemovalDeskError, ValueError):
    """The list or a metadata file cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class LoadedRemovalList:
    """What ``apply`` needs from a list: which URLs and keys to drop, and which ticket said so."""

    path: Path
    version: int | None
    by_url: dict[str, str]
    by_key: dict[str, str]


@dataclass
class FileReport:
    source: str
    output: str
    rows: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "output": self.output,
            "rows": self.rows,
            "kept": self.kept,
            "dropped": sum(self.dropped.values()),
            "dropped_by_reason": dict(sorted(self.dropped.items())),
        }


@dataclass
class ApplyReport:
    list_path: str
    list_version: int | None
    files: list[FileReport] = field(default_factory=list)
    dropped_rows: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "list": self.list_path,
            "list_version": self.list_version,
            "rows": sum(f.rows for f in self.files),
            "kept": sum(f.kept for f in self.files),
            "dropped": sum(sum(f.dropped.values()) for f in self.files),
            "files": [f.to_dict() for f in self.files],
            "dropped_rows": self.dropped_rows,
        }


def _list_records(path: Path) -> Iterator[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        for batch in pq.ParquetFile(path).iter_batches(batch_size=_BATCH_ROWS):
            yield from batch.to_pylist()
    elif suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as handle:
            yield from csv.DictReader(handle)
    elif suffix in {".jsonl", ".ndjson", ".json"}:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        record = json.loads(line)
                    except ValueError as exc:
                        raise RemovalApplyError(f"{path} line {number} is not JSON: {exc}") from exc
                    if not isinstance(record, dict):
                        raise RemovalApplyError(f"{path} line {number} is not a JSON object")
                    yield record
    else:
        raise RemovalApplyError(f"{path}: a removal list is a .parquet, .csv or .jsonl file")


def load_removal_list(path: Path) -> LoadedRemovalList:
    """Read a list written by ``removals export`` (any of its formats)."""
    by_url: dict[str, str] = {}
    by_key: dict[str, str] = {}
    try:
        for record in _list_records(path):
            if "key" not in record or "ticket_id" not in record:
                raise RemovalApplyError(f"{path} is not a removal list (rows need key and ticket_id)")
            ticket = str(record["ticket_id"])
            if record.get("url"):
                by_url.setdefault(str(record["url"]), ticket)
            if record.get("key") not in {None, ""}:
                by_key.setdefault(str(record["key"]), ticket)
    except (OSError, UnicodeDecodeError, csv.Error, pa.ArrowException) as exc:
        raise RemovalApplyError(f"cannot read removal list {path}: {exc}") from exc
    version = None
    meta_path = path.with_name(path.name + ".meta.json")
    if meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            version = meta.get("version") if isinstance(meta, dict) else None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise RemovalApplyError(f"cannot read the list's version file {meta_path}: {exc}") from exc
    return LoadedRemovalList(path, version, by_url, by_key)


def _as_text(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """An id column as strings: integers as digits, whole floats (SAMPLE_ID is float64 in some
    LAION releases) without a trailing ``.0``."""
    if pa.types.is_floating(column.type):
        whole = pc.equal(pc.floor(column), column)
        as_int = pc.cast(pc.if_else(whole, column, None), pa.int64(), safe=False)
        column = pc.if_else(whole, pc.cast(as_int, pa.string()), pc.cast(column, pa.string()))
    return pc.cast(column, pa.string())


def _in(column: pa.Array, values: list[str]) -> pa.Array:
    if not values:
        return pa.array([False] * len(column), pa.bool_())
    return pc.fill_null(pc.is_in(column, value_set=pa.array(values, pa.string())), False)


def apply_removal_list(
    removal_list: LoadedRemovalList,
    metadata: Sequence[Path],
    out_dir: Path,
    match: Sequence[str] = ("url", "key"),
) -> ApplyReport:
    """Write a cleaned copy of every metadata file into ``out_dir`` and a summary beside them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = [out_dir / path.name for path in metadata]
    for source, output in zip(metadata, outputs, strict=True):
        if source.resolve() == output.resolve():
            raise RemovalApplyError(f"{output} would overwrite its input; choose another --out folder")
    if len(set(outputs)) != len(outputs):
        raise RemovalApplyError("two metadata files share a name; clean them into separate folders")
    report = ApplyReport(str(removal_list.path), removal_list.version)
    for source, output in zip(metadata, outputs, strict=True):
        report.files.append(_apply_one(removal_list, source, output, match, report.dropped_rows))
    summary = out_dir / SUMMARY_NAME
    summary.write_text(json.dumps(report.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return report


def _apply_one(
    removal_list: LoadedRemovalList,
    source: Path,
    output: Path,
    match: Sequence[str],
    dropped_rows: list[dict[str, Any]],
) -> FileReport:
    try:
        # Buffered page reads instead of whole column chunks: memory follows the batch, not the
        # row group (a LAION part file may be written as a few huge row groups).
        parquet = pq.ParquetFile(source, buffer_size=_READ_BUFFER, pre_buffer=False)
    except (OSError, pa.ArrowException) as exc:
        raise RemovalApplyError(f"cannot read metadata {source}: {exc}") from exc
    names = parquet.schema_arrow.names
    url_column = pick_column(names, URL_COLUMNS)
    key_column = pick_column(names, KEY_COLUMNS)
    if (url_column is None or "url" not in match) and (key_column is None or "key" not in match):
        raise RemovalApplyError(
            f"{source} has neither a URL column ({', '.join(URL_COLUMNS)}) nor an id column "
            f"({', '.join(KEY_COLUMNS)}); nothing to match the removal list against"
        )
    # Unmatched columns still name the dropped rows in the summary.
    urls = list(removal_list.by_url) if "url" in match else []
    keys = list(removal_list.by_key) if "key" in match else []
    report = FileReport(str(source), str(output))
    with written_aside(output) as temporary:
        try:
            _stream(
                parquet, temporary, url_column=url_column, key_column=key_column, listed=(urls, keys),
                removal_list=removal_list, report=report, dropped_rows=dropped_rows,
            )  # fmt: skip
        except (OSError, pa.ArrowException) as exc:
            raise RemovalApplyError(f"cannot read metadata {source}: {exc}") from exc
    report.kept = report.rows - sum(report.dropped.values())
    return report


def _stream(
    parquet: pq.ParquetFile,
    temporary: Path,
    *,
    url_column: str | None,
    key_column: str | None,
    listed: tuple[list[str], list[str]],
    removal_list: LoadedRemovalList,
    report: FileReport,
    dropped_rows: list[dict[str, Any]],
) -> None:
    urls, keys = listed
    source = Path(report.source)
    with pq.ParquetWriter(temporary, parquet.schema_arrow) as writer:
        for batch in parquet.iter_batches(batch_size=_BATCH_ROWS):
            nothing = pa.array([False] * batch.num_rows, pa.bool_())
            url_hit = _in(batch.column(url_column), urls) if url_column else nothing
            key_text = _as_text(batch.column(key_column)) if key_column else None
            key_hit = _in(key_text, keys) if key_text is not None else nothing
            dropped = pc.or_(url_hit, key_hit)
            writer.write_batch(batch.filter(pc.invert(dropped)))
            for offset in pc.indices_nonzero(dropped).to_pylist():
                url = batch.column(url_column)[offset].as_py() if url_column else None
                key = key_text[offset].as_py() if key_text is not None else None
                reasons = [name for name, hit in (("url", url_hit), ("key", key_hit)) if hit[offset].as_py()]
                reason = "+".join(reasons)
                if "url" in reasons:
                    ticket = removal_list.by_url.get(url or "")
                else:
                    ticket = removal_list.by_key.get(key or "")
                report.dropped[reason] += 1
                dropped_rows.append(
                    {"file": source.name, "row": report.rows + offset, "key": key, "url": url,
                     "reason": reason, "ticket_id": ticket}
                )  # fmt: skip
            report.rows += batch.num_rows
