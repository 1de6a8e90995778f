"""``removal-desk hash-lists import``, driven through ``bot.cli.main`` against a small real index and
a throw-away ticket database: what is stored, what a bad line does (nothing stored, unless
``--skip-bad``), a re-import, a list stored whole or not at all, and the schema upgrade that adds
the tables.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.config import Settings, load_settings
from bot.hashlists.reading import ListEntry, ReadList
from bot.hashlists.storage import source_hashes, store_list
from bot.index.build import build_index
from bot.tickets.migrations import LATEST_VERSION
from bot.tickets.store import TicketStore
from tests.bot.hashlists.test_reading import MD5, PDQ1, PDQ2, PHASH1, hexes
from tests.bot.index.test_file_md5 import without_md5
from tests.bot.tickets.conftest import entry, query
from tests.bot.tickets.old_schemas import take_back

DATASET = Path(__file__).resolve().parents[3] / "samples" / "dataset"


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hash-lists")
    source = root / "source"
    source.mkdir()
    for name in ("coffee.jpg", "astronaut.jpg"):
        shutil.copy(DATASET / name, source / name)
    out = root / "index"
    assert build_index([source], out, load_settings(), workers=1, show_progress=False).entries == 2
    return out


@pytest.fixture(scope="module")
def index_without_md5(index_dir, tmp_path_factory) -> Path:
    """The index as one built before file MD5s were kept: no MD5 line can be matched to it."""
    return without_md5(index_dir, tmp_path_factory.mktemp("hash-lists-old") / "index")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "db" / "tickets.sqlite3"


def run(capsys, *argv: object) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def imported(capsys, index: Path, db: Path, path: Path, *extra: object) -> tuple[int, dict[str, Any]]:
    code, out, _ = run(capsys, "hash-lists", "import", path, "--index", index, "--db", db, *extra, "--json")
    return code, json.loads(out)


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db)) as connection:
        return [tuple(row) for row in connection.execute(sql)]


def stored_entries(db: Path) -> list[tuple[Any, ...]]:
    return rows(
        db,
        "SELECT l.source, e.line, e.signal_type, e.hash, e.entry_id, e.category, e.list_source "
        "FROM hash_list_entries e JOIN hash_lists l ON l.id = e.list_id ORDER BY l.id, e.line",
    )


def test_a_te_list_is_stored_with_its_line_numbers(capsys, index_dir, db, tmp_path) -> None:
    path = tmp_path / "list.txt"
    path.write_text(f"pdq {PDQ1}\n\nphash {PHASH1}\n{PDQ2}\n")
    code, report = imported(capsys, index_dir, db, path, "--source", "iwf")
    assert code == 0
    assert report["status"] == "imported"
    assert report["stored"] is True
    assert report["counts"] == {"pdq": 2, "phash": 1}
    assert report["format"] == "te"
    assert report["bad"] == {}
    assert stored_entries(db) == [
        ("iwf", 1, "pdq", PDQ1, None, None, None),
        ("iwf", 3, "phash", PHASH1, None, None, None),
        ("iwf", 4, "pdq", PDQ2, None, None, None),
    ]
    assert rows(db, "SELECT source, format, entries, bad_lines, counts FROM hash_lists") == [
        ("iwf", "te", 3, 0, json.dumps({"pdq": 2, "phash": 1}))
    ]


def test_a_csv_list_keeps_its_ids_categories_and_sources(capsys, index_dir, db, tmp_path) -> None:
    path = tmp_path / "list.csv"
    path.write_text(f"hash,id,category,source\n{PDQ1},t-1,csam,ncmec\n{PHASH1},t-2,,\n")
    code, out, _ = run(
        capsys, "hash-lists", "import", path, "--index", index_dir, "--db", db, "--source", "c3p"
    )
    assert code == 0
    assert out.splitlines() == ["imported hash list 1 from c3p (csv): 2 entries (pdq 1, phash 1)"]
    assert stored_entries(db) == [
        ("c3p", 2, "pdq", PDQ1, "t-1", "csam", "ncmec"),
        ("c3p", 3, "phash", PHASH1, "t-2", None, None),
    ]


def test_with_a_bad_line_nothing_is_stored(capsys, index_without_md5, db, tmp_path) -> None:
    path = tmp_path / "list.txt"
    path.write_text(f"pdq {PDQ1}\npdq {PDQ1[:-1]}x\nmd5 {MD5}\npdq\nphash {PHASH1}\n")
    code, out, err = run(
        capsys, "hash-lists", "import", path, "--index", index_without_md5, "--db", db, "--source", "s"
    )
    assert code == 1
    assert out == ""
    assert err.splitlines() == [
        f"error: 3 bad line(s) in {path}; nothing imported (--skip-bad imports the good lines):",
        "  empty hash: 1 (line 4)",
        "  not hex: 1 (line 2)",
        "  signal type the index cannot match: 1 (line 3)",
    ]
    assert rows(db, "SELECT count(*) FROM hash_lists") == [(0,)]
    assert rows(db, "SELECT count(*) FROM hash_list_entries") == [(0,)]
    code, report = imported(capsys, index_without_md5, db, path, "--source", "s")
    assert code == 1
    assert report["status"] == "refused"
    assert report["stored"] is False
    assert report["bad"]["not hex"] == {"count": 1, "lines": [2]}


def test_md5_lines_are_imported_when_the_index_keeps_file_md5s(capsys, index_dir, db, tmp_path) -> None:
    path = tmp_path / "list.txt"
    path.write_text(f"md5 {MD5}\nvideo_md5 {MD5.upper()}\n{MD5}\n")
    code, report = imported(capsys, index_dir, db, path, "--source", "s")
    assert (code, report["status"], report["counts"], report["bad"]) == (0, "imported", {"md5": 3}, {})
    assert [row[1:4] for row in stored_entries(db)] == [(n, "md5", MD5) for n in (1, 2, 3)]


def test_skip_bad_stores_the_good_lines_and_reports_the_first_ten_of_each_reason(
    capsys, index_dir, db, tmp_path
) -> None:
    good = [f"pdq {hexes(f'good-{n}', 64)}" for n in range(3)]
    bad = [f"pdq {hexes(f'bad-{n}', 63)}" for n in range(25)]  # lines 4..28
    path = tmp_path / "list.txt"
    path.write_text("\n".join(good + bad) + "\n")
    code, out, _ = run(
        capsys, "hash-lists", "import", path, "--index", index_dir, "--db", db, "--source", "s", "--skip-bad"
    )
    assert code == 0
    assert out.splitlines() == [
        "imported hash list 1 from s (te): 3 entries (pdq 3)",
        "25 bad line(s) skipped:",
        "  wrong length: 25 (lines 4, 5, 6, 7, 8, 9, 10, 11, 12, 13 and 15 more)",
    ]
    assert [row[1] for row in stored_entries(db)] == [1, 2, 3]
    assert rows(db, "SELECT entries, bad_lines FROM hash_lists") == [(3, 25)]


def test_a_list_with_no_good_line_is_refused_even_with_skip_bad(
    capsys, index_without_md5, db, tmp_path
) -> None:
    path = tmp_path / "list.txt"
    path.write_text(f"md5 {MD5}\n")
    code, report = imported(capsys, index_without_md5, db, path, "--source", "s", "--skip-bad")
    assert code == 1
    assert report["status"] == "refused"
    assert rows(db, "SELECT count(*) FROM hash_lists") == [(0,)]


def test_the_same_file_again_stores_nothing_a_newer_one_is_stored(capsys, index_dir, db, tmp_path) -> None:
    path = tmp_path / "list.txt"
    path.write_text(f"pdq {PDQ1}\n")
    assert imported(capsys, index_dir, db, path, "--source", "ncmec")[1]["status"] == "imported"
    code, out, _ = run(
        capsys, "hash-lists", "import", path, "--index", index_dir, "--db", db, "--source", "ncmec"
    )
    assert code == 0
    assert "imported from ncmec before (list 1" in out
    assert "nothing stored" in out
    assert rows(db, "SELECT count(*) FROM hash_list_entries") == [(1,)]
    # The same file from another source is that source's list; a newer version is a list of its own.
    assert imported(capsys, index_dir, db, path, "--source", "other")[1]["id"] == 2
    path.write_text(f"pdq {PDQ1}\npdq {PDQ2}\n")
    code, report = imported(capsys, index_dir, db, path, "--source", "ncmec")
    assert (code, report["id"], report["entries"]) == (0, 3, 2)
    assert rows(db, "SELECT id, source FROM hash_lists ORDER BY id") == [
        (1, "ncmec"),
        (2, "other"),
        (3, "ncmec"),
    ]


async def test_the_hashes_per_source_are_kept_for_a_later_version(tmp_path: Path, settings: Settings) -> None:
    async with await TicketStore.open(tmp_path / "t.sqlite3", settings.tickets) as store:
        first = ReadList("te", "a" * 64, [ListEntry(1, "pdq", PDQ1), ListEntry(2, "phash", PHASH1)])
        second = ReadList("te", "b" * 64, [ListEntry(1, "pdq", PDQ1), ListEntry(2, "pdq", PDQ2)])
        await store_list(store, "ncmec", first)
        await store_list(store, "ncmec", second)
        await store_list(store, "other", ReadList("te", "c" * 64, [ListEntry(1, "md5", MD5)]))
        assert await source_hashes(store, "ncmec") == {("pdq", PDQ1), ("phash", PHASH1), ("pdq", PDQ2)}
        assert await source_hashes(store, "other") == {("md5", MD5)}


async def test_a_list_is_stored_whole_or_not_at_all(tmp_path: Path, settings: Settings) -> None:
    """A failure at the last entry (a type the table refuses) leaves neither the list nor its entries."""
    path = tmp_path / "t.sqlite3"
    async with await TicketStore.open(path, settings.tickets) as store:
        broken = ReadList("te", "d" * 64, [ListEntry(n, "pdq", f"{n:064x}") for n in range(1, 1000)])
        broken.entries.append(ListEntry(1000, "sha1", "0" * 40))
        with pytest.raises(sqlite3.IntegrityError):
            await store_list(store, "s", broken)
    assert rows(path, "SELECT count(*) FROM hash_lists") == [(0,)]
    assert rows(path, "SELECT count(*) FROM hash_list_entries") == [(0,)]


def test_list_contents_never_reach_the_log(capsys, caplog, index_dir, db, tmp_path) -> None:
    path = tmp_path / "list.csv"
    path.write_text(f"hash,id,category\n{PDQ1},entry-77,csam\n")
    with caplog.at_level(logging.DEBUG):
        assert imported(capsys, index_dir, db, path, "--source", "s")[0] == 0
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "imported hash list 1 from s: 1 entries" in logged
    assert PDQ1 not in logged
    assert "entry-77" not in logged
    assert "csam" not in logged


def test_a_missing_list_file_exits_with_2(capsys, index_dir, db, tmp_path) -> None:
    code, _, err = run(
        capsys,
        "hash-lists",
        "import",
        tmp_path / "nope.txt",
        "--index",
        index_dir,
        "--db",
        db,
        "--source",
        "s",
    )
    assert code == 2
    assert "nope.txt" in err


async def test_a_version_3_database_gains_the_hash_list_tables(tmp_path: Path, settings: Settings) -> None:
    """A database from before migration 4 keeps its tickets and can take a list."""
    path = tmp_path / "old.sqlite3"
    async with await TicketStore.open(path, settings.tickets) as first:
        ticket = await first.create_ticket("req-a", query(), [entry("a")])
    take_back(path, 3)
    async with await TicketStore.open(path, settings.tickets) as upgraded:
        assert await upgraded.get(ticket.id) == ticket
        stored, new = await store_list(upgraded, "s", ReadList("te", "e" * 64, [ListEntry(1, "pdq", PDQ1)]))
        assert new
        assert stored.entries == 1
    assert rows(path, "PRAGMA user_version") == [(LATEST_VERSION,)]


def test_a_large_list_is_stored_whole(capsys, index_dir, db, tmp_path) -> None:
    """100,000 lines through the command (no timing asserted; 23-25 s for 1e6 on the 2-core build machine)."""
    count = 100_000
    path = tmp_path / "big.csv"
    path.write_text("hash,id\n" + "".join(f"{n:064x},e{n}\n" for n in range(count)))
    code, report = imported(capsys, index_dir, db, path, "--source", "big")
    assert code == 0
    assert report["counts"] == {"pdq": count}
    assert rows(db, "SELECT count(*), min(line), max(line) FROM hash_list_entries") == [(count, 2, count + 1)]
    assert rows(db, "SELECT hash, entry_id FROM hash_list_entries WHERE line = 12345") == [
        (f"{12343:064x}", "e12343")
    ]
