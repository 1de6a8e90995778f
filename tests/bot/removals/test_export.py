"""Exporting the removal list and the hash blocklist (bot.removals.export).

Proves: every format (Parquet, CSV, JSON Lines) carries the same columns and rows, sorted by key
then URL; the blocklist beside the list has one row per distinct picture; the ``.meta.json``
sidecar and the Parquet metadata carry the format name, the version and the hashing; files are
replaced atomically. With a real ticket store: exports are diffable (same decisions, same bytes; a
new approval only adds lines; reopening only removes that ticket's lines; each change bumps the
version). And the blocklist is a working index source that catches the approved pictures again.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bot import durable
from bot.checking import check_picture
from bot.config import Settings
from bot.index.build import build_index
from bot.index.search import HashIndex
from bot.index.storage import hashing_parameters
from bot.removals.export import (
    BLOCKLIST_FORMAT_NAME,
    LIST_FORMAT_NAME,
    default_blocklist_path,
    export_removal_list,
    format_for,
)
from bot.tickets.intake import file_removal_request
from bot.tickets.models import MatchedEntry, RemovalRow, StoredQuery
from bot.tickets.store import TicketStore

from .conftest import ASTRONAUT_KEY, COFFEE_A, DATASET, QUERIES

HASHING = {"kinds": {"phash": 64, "pdq": 256}, "entry_margin": 0.1, "work_side": 512}
LIST_COLUMNS = [
    "key", "url", "phash", "pdq", "quality", "ticket_id", "decided_at", "added_in", "whole_pdq",
    "removed_by_list", "list_entry_id",
]  # fmt: skip
BLOCKLIST_COLUMNS = ["key", "phash", "pdq", "quality", "ticket_id", "added_in"]
FORMATS = ["parquet", "csv", "jsonl"]
QUERY = StoredQuery(variants=("full",), phash=("0" * 16,), pdq=("0" * 64,), quality=90)


def removal_row(key: str, url: str | None, picture: int, ticket: str, added_in: int) -> RemovalRow:
    return RemovalRow(
        key=key,
        url=url,
        phash=f"{picture:016x}",
        pdq=f"{picture:064x}",
        quality=50 + picture,
        ticket_id=ticket,
        decided_at=f"2024-05-0{added_in}T10:00:00.000000Z",
        added_in=added_in,
    )


def matched(key: str, url: str | None, picture: int) -> MatchedEntry:
    return MatchedEntry(
        key=key,
        url=url,
        caption=None,
        entry_id=f"00000/{picture}",
        phash=f"{picture:016x}",
        pdq=f"{picture:064x}",
        quality=50 + picture,
        pdq_distance=0,
        phash_distance=0,
        variant="full",
    )


def blocklist_record(key: str, picture: int, ticket: str, added_in: int) -> dict[str, Any]:
    return {
        "key": key,
        "phash": f"{picture:016x}",
        "pdq": f"{picture:064x}",
        "quality": 50 + picture,
        "ticket_id": ticket,
        "added_in": added_in,
    }


def read_rows(path: Path, kind: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Column names and rows of an exported file, CSV values turned back into their types."""
    if kind == "parquet":
        table = pq.read_table(path)
        return table.column_names, table.to_pylist()
    if kind == "csv":
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            rows: list[dict[str, Any]] = list(reader)
            columns = list(reader.fieldnames or [])
        for row in rows:
            for name in ("quality", "added_in"):
                row[name] = int(row[name])
            for name in ("url", "whole_pdq", "removed_by_list", "list_entry_id"):
                if name in row:  # CSV writes None as an empty cell
                    row[name] = row[name] or None
        return columns, rows
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    columns = list(records[0]) if records else []
    assert all(list(record) == columns for record in records)
    return columns, records


def read_meta(path: Path) -> dict[str, Any]:
    return json.loads(path.with_name(path.name + ".meta.json").read_text(encoding="utf-8"))


# Deliberately out of order; picture 1 sits at two entries, first approved for "b-key" (added_in 1)
# although "a0-key" sorts before it.
ROWS = [
    removal_row("c-key", "https://y.example/9.jpg", 4, "TKT003", 3),
    removal_row("b-key", "https://x.example/2.jpg", 1, "TKT001", 1),
    removal_row("a-key", "https://x.example/1.jpg", 3, "TKT002", 2),
    removal_row("a0-key", "https://z.example/copy.jpg", 1, "TKT004", 4),
    removal_row("a-key", None, 2, "TKT002", 2),
]
SORTED_KEYS = [
    ("a-key", None),
    ("a-key", "https://x.example/1.jpg"),
    ("a0-key", "https://z.example/copy.jpg"),
    ("b-key", "https://x.example/2.jpg"),
    ("c-key", "https://y.example/9.jpg"),
]


# --- each format --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", FORMATS)
def test_export_writes_sorted_list_blocklist_and_sidecars(tmp_path: Path, kind: str):
    out = tmp_path / f"removals.{kind}"

    report = export_removal_list(4, ROWS, out, kind, hashing=HASHING)

    blocklist = tmp_path / f"removals.blocklist.{kind}"
    assert report.version == 4
    assert (report.entries, report.pictures) == (5, 4)
    assert (report.list_path, report.blocklist_path) == (out, blocklist)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [out.name, f"{out.name}.meta.json", blocklist.name, f"{blocklist.name}.meta.json"]
    )  # nothing else: no temporary file left behind

    columns, rows = read_rows(out, kind)
    assert columns == LIST_COLUMNS
    assert [(row["key"], row["url"]) for row in rows] == SORTED_KEYS
    by_identity = {(row.key, row.url): asdict(row) for row in ROWS}
    assert rows == [by_identity[(row["key"], row["url"])] for row in rows]

    columns, pictures = read_rows(blocklist, kind)
    assert columns == BLOCKLIST_COLUMNS
    assert pictures == [
        blocklist_record("b-key", 1, "TKT001", 1),  # first approved, although "a0-key" sorts first
        blocklist_record("a-key", 2, "TKT002", 2),
        blocklist_record("a-key", 3, "TKT002", 2),
        blocklist_record("c-key", 4, "TKT003", 3),
    ]

    list_meta, blocklist_meta = read_meta(out), read_meta(blocklist)
    assert list_meta["format"] == LIST_FORMAT_NAME == "removal-desk-removal-list"
    assert blocklist_meta["format"] == BLOCKLIST_FORMAT_NAME == "removal-desk-hash-blocklist"
    for meta in (list_meta, blocklist_meta):
        assert meta["version"] == 4
        assert meta["hashing"] == HASHING
    assert list_meta["entries"] == 5
    assert list_meta["columns"] == LIST_COLUMNS
    assert blocklist_meta["pictures"] == 4
    assert blocklist_meta["columns"] == BLOCKLIST_COLUMNS


def test_csv_writes_a_missing_url_as_empty_and_jsonl_as_null(tmp_path: Path):
    row = [removal_row("k", None, 7, "TKT009", 1)]
    export_removal_list(1, row, tmp_path / "r.csv", "csv", hashing=HASHING)
    export_removal_list(1, row, tmp_path / "r.jsonl", "jsonl", hashing=HASHING)

    assert (tmp_path / "r.csv").read_text().splitlines() == [
        ",".join(LIST_COLUMNS),
        f"k,,{7:016x},{7:064x},57,TKT009,2024-05-01T10:00:00.000000Z,1,,,",
    ]
    assert json.loads((tmp_path / "r.jsonl").read_text())["url"] is None


def test_parquet_files_carry_typed_columns_and_the_version_in_their_metadata(tmp_path: Path):
    report = export_removal_list(9, ROWS, tmp_path / "removals.parquet", "parquet", hashing=HASHING)

    for path, kind, columns in (
        (report.list_path, LIST_FORMAT_NAME, LIST_COLUMNS),
        (report.blocklist_path, BLOCKLIST_FORMAT_NAME, BLOCKLIST_COLUMNS),
    ):
        schema = pq.read_schema(path)
        assert schema.names == columns
        assert schema.field("quality").type == pa.int32()
        assert schema.field("added_in").type == pa.int64()
        assert schema.field("key").type == pa.string()
        meta = json.loads(schema.metadata[b"removal_desk"])
        assert meta["version"] == 9
        assert meta["format"] == kind
        assert meta["hashing"] == HASHING
        assert meta == read_meta(path)


@pytest.mark.parametrize("kind", FORMATS)
def test_an_empty_list_still_has_its_columns_and_version(tmp_path: Path, kind: str):
    report = export_removal_list(0, [], tmp_path / f"removals.{kind}", kind, hashing=HASHING)

    assert (report.entries, report.pictures) == (0, 0)
    assert read_meta(report.list_path)["version"] == 0
    if kind == "parquet":
        assert pq.read_table(report.list_path).num_rows == 0
        assert pq.read_schema(report.list_path).names == LIST_COLUMNS
    elif kind == "csv":
        assert report.list_path.read_text().splitlines() == [",".join(LIST_COLUMNS)]
        assert report.blocklist_path.read_text().splitlines() == [",".join(BLOCKLIST_COLUMNS)]
    else:
        assert report.list_path.read_text() == ""


@pytest.mark.parametrize(
    ("name", "blocklist"),
    [
        ("removals.parquet", "removals.blocklist.parquet"),
        ("removals.csv", "removals.blocklist.csv"),
        ("v3.removals.jsonl", "v3.removals.blocklist.jsonl"),
        ("removals", "removals.blocklist.parquet"),
    ],
)
def test_default_blocklist_path_sits_beside_the_list(tmp_path: Path, name: str, blocklist: str):
    assert default_blocklist_path(tmp_path / "out" / name) == tmp_path / "out" / blocklist


def test_an_explicit_blocklist_path_is_used(tmp_path: Path):
    target = tmp_path / "elsewhere" / "hashes.csv"

    report = export_removal_list(2, ROWS, tmp_path / "removals.csv", "csv", hashing=HASHING, blocklist=target)

    assert report.blocklist_path == target
    assert read_rows(target, "csv")[0] == BLOCKLIST_COLUMNS
    assert not default_blocklist_path(tmp_path / "removals.csv").exists()


def test_a_failed_write_leaves_the_previous_export_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    out = tmp_path / "removals.csv"
    export_removal_list(1, ROWS[:2], out, "csv", hashing=HASHING)
    before = out.read_bytes()

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(durable, "os", SimpleNamespace(fsync=broken_fsync, replace=os.replace, open=os.open))
    with pytest.raises(OSError, match="disk full"):
        export_removal_list(2, ROWS, out, "csv", hashing=HASHING)
    assert out.read_bytes() == before
    assert read_meta(out)["version"] == 1
    assert not [path.name for path in tmp_path.iterdir() if path.name.endswith(".tmp")]

    monkeypatch.undo()
    export_removal_list(2, ROWS, out, "csv", hashing=HASHING)
    assert read_meta(out)["version"] == 2
    assert len(read_rows(out, "csv")[1]) == len(ROWS)
    assert not [path.name for path in tmp_path.iterdir() if path.name.endswith(".tmp")]


# --- format_for ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("removals.parquet", "parquet"),
        ("REMOVALS.PARQUET", "parquet"),
        ("removals.csv", "csv"),
        ("removals.CSV", "csv"),
        ("removals.jsonl", "jsonl"),
        ("removals.ndjson", "jsonl"),
        ("removals.txt", "parquet"),
        ("removals", "parquet"),
    ],
)
def test_format_for_reads_the_suffix(name: str, kind: str):
    assert format_for(Path(name)) == kind


def test_format_for_prefers_the_requested_format():
    assert format_for(Path("removals.parquet"), "csv") == "csv"
    assert format_for(Path("removals.csv"), "jsonl") == "jsonl"
    assert format_for(Path("removals"), "parquet") == "parquet"


@pytest.mark.parametrize("requested", ["xlsx", "json", "CSV", ""])
def test_format_for_refuses_an_unknown_format(requested: str):
    with pytest.raises(ValueError, match="unknown format"):
        format_for(Path("removals.csv"), requested)


# --- diffable, with a real ticket store ---------------------------------------------------------


async def approve_new(store: TicketStore, requester: str, *entries: MatchedEntry) -> str:
    ticket = await store.create_ticket(requester, QUERY, list(entries))
    await store.approve(ticket.id, "maintainer-1", "the requester's own photo")
    return ticket.id


async def export_store(store: TicketStore, out: Path, kind: str) -> int:
    version, rows = await store.removal_list()
    export_removal_list(version, rows, out, kind, hashing=HASHING)
    return version


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("kind", FORMATS)
async def test_exporting_the_same_decisions_twice_gives_identical_bytes(
    store: TicketStore, tmp_path: Path, kind: str
):
    await approve_new(store, "req-1", matched("k1", "https://a.example/1", 1), matched("k2", None, 2))
    await approve_new(store, "req-2", matched("k0", "https://a.example/0", 3))

    first = await export_store(store, tmp_path / "one" / f"removals.{kind}", kind)
    second = await export_store(store, tmp_path / "two" / f"removals.{kind}", kind)

    assert first == second == 2
    for name in (f"removals.{kind}", f"removals.blocklist.{kind}", f"removals.{kind}.meta.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    keys = [row["key"] for row in read_rows(tmp_path / "one" / f"removals.{kind}", kind)[1]]
    assert keys == ["k0", "k1", "k2"]


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
async def test_a_new_approval_only_adds_lines(store: TicketStore, tmp_path: Path, kind: str):
    first = await approve_new(
        store, "req-1", matched("k10", "https://a.example/10", 1), matched("k30", "https://a.example/30", 2)
    )
    await approve_new(store, "req-2", matched("k50", None, 3))
    await store.create_ticket("req-3", QUERY, [matched("k40", "https://a.example/40", 9)])  # stays open
    old_version = await export_store(store, tmp_path / "old" / f"removals.{kind}", kind)
    old = lines(tmp_path / "old" / f"removals.{kind}")
    old_blocklist = lines(tmp_path / "old" / f"removals.blocklist.{kind}")

    third = await approve_new(
        store,
        "req-4",
        matched("k20", "https://a.example/20", 4),
        matched("k60", "https://b.example/60", 1),  # picture 1 again, at another URL
    )
    new_version = await export_store(store, tmp_path / "new" / f"removals.{kind}", kind)
    new = lines(tmp_path / "new" / f"removals.{kind}")
    new_blocklist = lines(tmp_path / "new" / f"removals.blocklist.{kind}")

    assert new_version == old_version + 1
    assert read_meta(tmp_path / "new" / f"removals.{kind}")["version"] == new_version
    assert [line for line in new if line in old] == old  # every old line, unchanged, in order
    added = [line for line in new if line not in old]
    assert len(new) == len(old) + 2
    _, rows = read_rows(tmp_path / "new" / f"removals.{kind}", kind)
    assert [row["key"] for row in rows] == ["k10", "k20", "k30", "k50", "k60"]  # k40 is not approved
    added_rows = [row for row in rows if row["key"] in {"k20", "k60"}]
    assert {row["ticket_id"] for row in added_rows} == {third}
    assert {row["added_in"] for row in added_rows} == {new_version}
    assert all(row["key"] in line for row, line in zip(added_rows, added, strict=True))
    assert {row["ticket_id"] for row in rows if row["key"] == "k10"} == {first}
    # the blocklist gains picture 4 only: picture 1 was already on it
    assert [line for line in new_blocklist if line in old_blocklist] == old_blocklist
    assert len(new_blocklist) == len(old_blocklist) + 1
    _, pictures = read_rows(tmp_path / "new" / f"removals.blocklist.{kind}", kind)
    assert {p["phash"]: p["key"] for p in pictures}[f"{1:016x}"] == "k10"


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
async def test_reopening_an_approved_ticket_drops_its_lines_and_bumps_the_version(
    store: TicketStore, tmp_path: Path, kind: str
):
    first = await approve_new(
        store, "req-1", matched("k1", "https://a.example/1", 1), matched("k3", "https://a.example/3", 2)
    )
    await approve_new(store, "req-2", matched("k2", None, 3))
    old_version = await export_store(store, tmp_path / "old" / f"removals.{kind}", kind)
    old = lines(tmp_path / "old" / f"removals.{kind}")
    _, old_rows = read_rows(tmp_path / "old" / f"removals.{kind}", kind)

    await store.reopen(first, "maintainer-2", "appeal: the photo is a public press picture")
    version = await export_store(store, tmp_path / "reopened" / f"removals.{kind}", kind)
    reopened = lines(tmp_path / "reopened" / f"removals.{kind}")

    assert version == old_version + 1
    assert read_meta(tmp_path / "reopened" / f"removals.{kind}")["version"] == version
    header = 1 if kind == "csv" else 0
    kept = [line for line, row in zip(old[header:], old_rows, strict=True) if row["ticket_id"] != first]
    assert len(kept) == 1
    assert reopened[:header] == old[:header]
    assert reopened[header:] == kept  # the other ticket's line, byte for byte
    assert [row["key"] for row in read_rows(tmp_path / "reopened" / f"removals.{kind}", kind)[1]] == ["k2"]
    _, pictures = read_rows(tmp_path / "reopened" / f"removals.blocklist.{kind}", kind)
    assert [p["phash"] for p in pictures] == [f"{3:016x}"]

    # approved again: back on the list, as added by the newest version
    await store.approve(first, "maintainer-2", "appeal rejected after all")
    again = await export_store(store, tmp_path / "again" / f"removals.{kind}", kind)
    _, rows = read_rows(tmp_path / "again" / f"removals.{kind}", kind)
    assert again == version + 1
    assert [(row["key"], row["added_in"]) for row in rows] == [("k1", again), ("k2", 2), ("k3", again)]


# --- the blocklist is an index source -----------------------------------------------------------


async def test_an_index_built_from_the_blocklist_catches_the_approved_pictures(
    store: TicketStore, index: HashIndex, tmp_path: Path, settings: Settings
):
    coffee = (DATASET / "coffee.jpg").read_bytes()
    astronaut = (DATASET / "astronaut.jpg").read_bytes()
    found_coffee = check_picture(coffee, index, settings)
    assert len(found_coffee.found) == 2  # the same picture at two URLs
    for requester, result in (("req-1", found_coffee), ("req-2", check_picture(astronaut, index, settings))):
        ticket = await file_removal_request(store, index, result, requester)
        await store.approve(ticket.id, "maintainer-1", "private photo")
    version, rows = await store.removal_list()
    assert len(rows) == 3

    report = export_removal_list(
        version, rows, tmp_path / "removals.parquet", "parquet", hashing=hashing_parameters(settings)
    )
    assert (report.entries, report.pictures) == (3, 2)
    built = build_index(
        [report.blocklist_path], tmp_path / "blocklist-index", settings, workers=1, show_progress=False
    )

    assert built.entries == 2
    assert not built.failures
    blocklist_index = HashIndex(tmp_path / "blocklist-index")
    assert blocklist_index.manifest.hashing == read_meta(report.blocklist_path)["hashing"]
    hits = check_picture(coffee, blocklist_index, settings).found
    assert [hit.entry.key for hit in hits] == [COFFEE_A[0]]
    original = index.entry_hashes(found_coffee.found[0].match)
    stored = blocklist_index.entry_hashes(hits[0].match)
    assert (stored.phash, stored.pdq.tolist(), stored.quality) == (
        original.phash,
        original.pdq.tolist(),
        original.quality,
    )
    assert [hit.entry.key for hit in check_picture(astronaut, blocklist_index, settings).found] == [
        ASTRONAUT_KEY
    ]
    # a copy found later elsewhere is caught too; a picture never approved is not
    mirrored = (QUERIES / "coffee__mirrored.jpg").read_bytes()
    assert [hit.entry.key for hit in check_picture(mirrored, blocklist_index, settings).found] == [
        COFFEE_A[0]
    ]
    chelsea = (DATASET / "chelsea.jpg").read_bytes()
    assert check_picture(chelsea, blocklist_index, settings).found == []
