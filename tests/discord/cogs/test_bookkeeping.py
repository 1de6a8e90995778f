"""The Discord bot's own tables: migrated beside the core's, adopting what older releases kept in
the core tables (review cards, the relay cursor), so an upgraded bot neither re-posts cards nor
repeats or skips a decision's message."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from bot.config import Settings
from bot.tickets.migrations import SchemaTooNewError
from bot.tickets.store import TicketStore
from cogs.bookkeeping import DISCORD_SCHEMA, DiscordBookkeeping
from tests.bot.tickets.conftest import entry, query


def _tables(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


async def test_a_new_database_gets_the_bots_tables_and_the_core_keeps_none(
    tmp_path: Path, settings: Settings
) -> None:
    path = tmp_path / "tickets.sqlite3"
    async with await TicketStore.open(path, settings.tickets) as store:
        ticket = await store.create_ticket("req", query(), [entry("a")])
        books = DiscordBookkeeping(store.database)
        await books.migrate()
        await books.migrate()  # a second start-up changes nothing
        assert await books.relayed_up_to() == 0
        await books.mark_relayed(7)
        await books.mark_relayed(3)  # the cursor never moves back
        assert await books.relayed_up_to() == 7
        assert await books.review_card(ticket.id) is None
        await books.set_review_card(ticket.id, 11, 22)
        await books.set_review_card(ticket.id.lower(), 11, 23)  # a re-posted card replaces the old one
        assert await books.review_card(ticket.id) == (11, 23)
    tables = _tables(path)
    assert {"discord_review_cards", "discord_relay_cursor"} <= tables
    assert "review_messages" not in tables
    with closing(sqlite3.connect(path)) as db:
        schemas = db.execute("SELECT * FROM front_end_schemas").fetchall()
        assert schemas == [("discord", DISCORD_SCHEMA.latest)]
        assert db.execute("SELECT name FROM counters").fetchall() == [("removal_list_version",)]


async def test_an_upgraded_bot_adopts_the_cards_and_cursor_the_core_tables_held(
    tmp_path: Path, settings: Settings
) -> None:
    path = tmp_path / "tickets.sqlite3"
    async with await TicketStore.open(path, settings.tickets) as store:
        ticket = await store.create_ticket("req", query(), [entry("a")])
    with closing(sqlite3.connect(path)) as db:  # what the release before the move had written
        db.execute("INSERT INTO review_messages VALUES (?, 11, 22)", (ticket.id,))
        db.execute("UPDATE counters SET value = 42 WHERE name = 'relayed_event'")
        db.commit()
    async with await TicketStore.open(path, settings.tickets) as store:
        books = DiscordBookkeeping(store.database)
        await books.migrate()
        assert await books.review_card(ticket.id) == (11, 22)
        assert await books.relayed_up_to() == 42


async def test_tables_from_a_newer_bot_are_refused(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "tickets.sqlite3"
    async with await TicketStore.open(path, settings.tickets) as store:
        await DiscordBookkeeping(store.database).migrate()
    with closing(sqlite3.connect(path)) as db:
        db.execute("UPDATE front_end_schemas SET version = version + 1 WHERE owner = 'discord'")
        db.commit()
    async with await TicketStore.open(path, settings.tickets) as store:
        with pytest.raises(SchemaTooNewError, match="Discord bot's tables"):
            await DiscordBookkeeping(store.database).migrate()
