"""Schema migrations: a new database is at the latest schema, an old one upgrades in place keeping
its rows, a newer one is refused untouched, and migrating again changes nothing."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import aiosqlite
import pytest

from bot.config import Settings
from bot.tickets.migrations import LATEST_VERSION, SchemaTooNewError, migrate
from bot.tickets.store import TicketStore
from tests.bot.tickets.conftest import FakeClock, OpenStore, entry, query
from tests.bot.tickets.old_schemas import take_back

ALICE, M1, REASON = "req-alice", "maint-one", "the reason given"


def _conn(path: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(path))


async def test_a_new_database_is_at_the_latest_schema_in_wal_mode(store: TicketStore, db_path: Path) -> None:
    with _conn(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"tickets", "ticket_entries", "audit_events", "counters"} <= tables


async def test_reopening_keeps_the_data(db_path: Path, settings: Settings, clock: FakeClock) -> None:
    first = await TicketStore.open(db_path, settings.tickets, clock=clock)
    ticket = await first.create_ticket(ALICE, query(), [entry("a")], note="kept")
    await first.approve(ticket.id, M1, REASON)
    events = await first.audit_log()
    removal = await first.removal_list()
    await first.close()

    async with await TicketStore.open(db_path, settings.tickets, clock=clock) as again:
        assert (await again.get(ticket.id)).note == "kept"
        assert await again.audit_log() == events
        assert await again.removal_list() == removal


async def test_a_newer_schema_is_refused_untouched(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "newer.sqlite3"
    with _conn(path) as db:
        db.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
        db.execute("CREATE TABLE from_the_future (x)")
        db.commit()
    with pytest.raises(SchemaTooNewError, match=str(LATEST_VERSION + 1)):
        await TicketStore.open(path, settings.tickets)
    with _conn(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION + 1
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"from_the_future"}


async def test_migrating_twice_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "migrated.sqlite3"
    async with aiosqlite.connect(path, isolation_level=None) as db:
        assert await migrate(db) == 0
        async with db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name") as cursor:
            schema = await cursor.fetchall()
        assert await migrate(db) == LATEST_VERSION
        async with db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name") as cursor:
            assert await cursor.fetchall() == schema
        async with db.execute("SELECT name, value FROM counters ORDER BY name") as cursor:
            assert [tuple(row) for row in await cursor.fetchall()] == [
                ("relayed_event", 0),
                ("removal_list_version", 0),
            ]
        async with db.execute("PRAGMA user_version") as cursor:
            assert (await cursor.fetchone())[0] == LATEST_VERSION


async def test_opening_an_existing_store_again_migrates_nothing(
    store: TicketStore, open_store: OpenStore, db_path: Path
) -> None:
    ticket = await store.create_ticket(ALICE, query(), [entry("a")])
    second = await open_store()
    assert await second.get(ticket.id) == ticket
    with _conn(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
        version = db.execute("SELECT value FROM counters WHERE name = 'removal_list_version'")
        assert version.fetchall() == [(0,)]


async def test_a_version_1_database_upgrades_in_place_keeping_its_tickets(
    tmp_path: Path, settings: Settings
) -> None:
    """A database written before migrations 2 to 5 existed gains their tables and columns and keeps
    every ticket."""
    path = tmp_path / "old.sqlite3"
    first = await TicketStore.open(path, settings.tickets)
    ticket = await first.create_ticket(ALICE, query(), [entry("a")])
    await first.close()
    take_back(path, 1)
    upgraded = await TicketStore.open(path, settings.tickets)
    try:
        assert await upgraded.get(ticket.id) == ticket
    finally:
        await upgraded.close()
    with _conn(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        relayed = db.execute("SELECT value FROM counters WHERE name = 'relayed_event'").fetchall()
    added = {"review_messages", "front_end_schemas", "hash_lists", "hash_list_entries", "ticket_list_hits"}
    assert added <= tables
    assert relayed == [(0,)]
