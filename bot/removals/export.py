"""Write the removal list and the hash blocklist: Parquet, CSV or JSON Lines, versioned, diffable.

*Versioned*: the store counts every change to the set of approved entries; each row carries the
version that added it (``added_in``) and the list's version goes into a ``FILE.meta.json`` beside
it (and into the Parquet file's own metadata). *Diffable*: rows are sorted by key and URL, a row
never changes once written, and nothing in a row depends on when the file was exported, so two
exports differ exactly by the decisions made between them.

The blocklist holds the approved pictures' own hashes, one row per distinct picture, with the
columns an index source needs (``key``, ``phash``, ``pdq``, ``quality``): a crawler can build an
index from it (``python -m bot index build blocklist.parquet --out blocklist-index``) and check
every new picture against it, so the same picture found later at another URL is dropped too.
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bot.durable import write_text_durably, written_aside
from bot.tickets.models import RemovalRow

FORMATS = ("parquet", "csv", "jsonl")
LIST_FORMAT_NAME = "removal-desk-removal-list"
BLOCKLIST_FORMAT_NAME = "removal-desk-hash-blocklist"

REMOVAL_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("url", pa.string()),
        ("phash", pa.string()),
        ("pdq", pa.string()),
        ("quality", pa.int32()),
        ("ticket_id", pa.string()),
        ("decided_at", pa.string()),
        ("added_in", pa.int64()),
        # the entry's whole-picture PDQ (what a platform's PDQ of the picture is near); may be empty
        ("whole_pdq", pa.string()),
        # set when a partner hash list's hit removed the entry: the list's source and its own id
        ("removed_by_list", pa.string()),
        ("list_entry_id", pa.string()),
    ]
)


@dataclass(frozen=True)
class BlocklistRow:
    """One approved picture's hashes; ``key`` is the dataset entry it was first approved for."""

    key: str
    phash: str
    pdq: str
    quality: int
    ticket_id: str
    added_in: int


# The blocklist's columns are the list's, less what names a place (URL) or a moment (decided_at).
BLOCKLIST_SCHEMA = pa.schema(
    [REMOVAL_SCHEMA.field(name) for name in ("key", "phash", "pdq", "quality", "ticket_id", "added_in")]
)


@dataclass(frozen=True)
class ExportReport:
    version: int
    entries: int
    pictures: int
    list_path: Path
    blocklist_path: Path


def format_for(path: Path, requested: str | None = None) -> str:
    """The output format: as requested, else from the file's suffix, else Parquet."""
    if requested is not None:
        if requested not in FORMATS:
            raise ValueError(f"unknown format {requested!r}; choose one of {', '.join(FORMATS)}")
        return requested
    suffix = path.suffix.lower().lstrip(".")
    return {"parquet": "parquet", "csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl"}.get(suffix, "parquet")


def blocklist_rows(rows: Sequence[RemovalRow]) -> list[BlocklistRow]:
    """Distinct pictures among the removal rows (the same picture at two URLs is one row)."""
    seen: dict[tuple[str, str], BlocklistRow] = {}
    for row in sorted(rows, key=lambda r: (r.added_in, r.decided_at, r.key)):
        seen.setdefault(
            (row.phash, row.pdq),
            BlocklistRow(row.key, row.phash, row.pdq, row.quality, row.ticket_id, row.added_in),
        )
    return sorted(seen.values(), key=lambda r: (r.phash, r.pdq))


def _write_table(
    path: Path, kind: str, schema: pa.Schema, records: list[dict[str, Any]], meta: dict[str, Any]
) -> None:
    """Write ``records`` to ``path`` atomically (temporary file, fsync, rename)."""
    with written_aside(path) as temporary:
        _write_records(temporary, kind, schema, records, meta)
    write_text_durably(
        path.with_name(path.name + ".meta.json"), json.dumps(meta, indent=1, sort_keys=True) + "\n"
    )


def _write_records(
    temporary: Path, kind: str, schema: pa.Schema, records: list[dict[str, Any]], meta: dict[str, Any]
) -> None:
    if kind == "parquet":
        table = pa.Table.from_pylist(records, schema=schema).replace_schema_metadata(
            {"removal_desk": json.dumps(meta, sort_keys=True)}
        )
        pq.write_table(table, temporary)
    else:
        with temporary.open("w", encoding="utf-8", newline="") as handle:
            if kind == "csv":
                writer = csv.DictWriter(handle, fieldnames=schema.names, lineterminator="\n")
                writer.writeheader()
                writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in records)
            else:
                for record in records:
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def default_blocklist_path(list_path: Path) -> Path:
    """``removals.parquet`` -> ``removals.blocklist.parquet``."""
    return list_path.with_name(f"{list_path.stem}.blocklist{list_path.suffix or '.parquet'}")


def export_removal_list(
    version: int,
    rows: Sequence[RemovalRow],
    out: Path,
    kind: str,
    *,
    hashing: dict[str, Any],
    blocklist: Path | None = None,
) -> ExportReport:
    """Write the removal list to ``out`` and the hash blocklist beside it (same format)."""
    blocklist = blocklist or default_blocklist_path(out)
    ordered = sorted(rows, key=lambda r: (r.key, r.url or "", r.ticket_id))
    pictures = blocklist_rows(ordered)
    common = {"version": version, "hashing": hashing}
    _write_table(
        out,
        kind,
        REMOVAL_SCHEMA,
        [asdict(row) for row in ordered],
        {"format": LIST_FORMAT_NAME, "entries": len(ordered), "columns": _columns(RemovalRow), **common},
    )
    _write_table(
        blocklist,
        kind,
        BLOCKLIST_SCHEMA,
        [asdict(row) for row in pictures],
        {
            "format": BLOCKLIST_FORMAT_NAME,
            "pictures": len(pictures),
            "columns": _columns(BlocklistRow),
            **common,
        },
    )
    return ExportReport(version, len(ordered), len(pictures), out, blocklist)


def export_as_files(
    version: int, rows: Sequence[RemovalRow], kind: str, *, hashing: dict[str, Any]
) -> tuple[ExportReport, list[tuple[str, bytes]]]:
    """The removal list and the blocklist as (file name, bytes), for a front end that sends them
    rather than keeping them (the Discord bot): written in a temporary folder, gone afterwards.
    Blocking file work: run it off the event loop."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / f"removals-v{version}.{kind}"
        report = export_removal_list(version, rows, out, kind, hashing=hashing)
        return report, [(path.name, path.read_bytes()) for path in (report.list_path, report.blocklist_path)]


def _columns(cls: type) -> list[str]:
    return [field.name for field in fields(cls)]
