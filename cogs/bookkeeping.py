"""What the Discord bot remembers beside the tickets: where each review card lives, how far it
has relayed the audit log, and what it still has to deliver (or gave up delivering).

These tables belong to the Discord side, not to the core: the command line never reads them, and
they have their own numbered migrations (a :class:`~bot.tickets.migrations.Schema` with an owner),
so the bot can change them without a core release. They live in the ticket database all the same,
so that a card and the decision it shows are written by the same durable writer, and a backup of
the database is a backup of both.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from bot.tickets.database import TicketDatabase
from bot.tickets.ids import normalise_ticket_id
from bot.tickets.migrations import Migration, Schema, migrate

DISCORD_SCHEMA = Schema(
    "Discord bot's tables",
    (
        Migration(
            1,
            "the review cards and the relay cursor, moved out of the core tables (core migration 2)",
            (
                """
                CREATE TABLE discord_review_cards (
                    ticket_id TEXT PRIMARY KEY REFERENCES tickets (id),
                    channel_id INTEGER NOT NULL,
                    message_id INTEGER NOT NULL
                )
                """,
                "INSERT INTO discord_review_cards SELECT ticket_id, channel_id, message_id"
                " FROM review_messages",
                "DROP TABLE review_messages",
                """
                CREATE TABLE discord_relay_cursor (
                    only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
                    last_event INTEGER NOT NULL
                )
                """,
                # A bot upgraded in place neither repeats nor skips a decision's message.
                "INSERT INTO discord_relay_cursor (only_row, last_event) SELECT 1,"
                " COALESCE((SELECT value FROM counters WHERE name = 'relayed_event'), 0)",
                "DELETE FROM counters WHERE name = 'relayed_event'",
            ),
        ),
        Migration(
            2,
            "deliveries to Discord waiting to be made or retried, and those given up on",
            (
                # No requester id: a direct message finds its recipient on the ticket when it is
                # sent, so an erasure in between leaves nobody to write to, and nothing here.
                """
                CREATE TABLE discord_deliveries (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    kind TEXT NOT NULL CHECK (kind IN ('card', 'log', 'dm')),
                    ticket_id TEXT,
                    event_id INTEGER,
                    expected_state TEXT,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    due_at REAL NOT NULL,
                    failed_at REAL,
                    last_error TEXT
                )
                """,
                "CREATE INDEX discord_deliveries_due ON discord_deliveries (failed_at, due_at, id)",
            ),
        ),
    ),
    owner="discord",
)


@dataclass(frozen=True)
class Delivery:
    """Something the relay owes Discord: a card brought up to date, an event posted to the log
    channel, or a decision told to the requester (only while the ticket is still in
    ``expected_state``)."""

    id: int
    kind: str
    ticket_id: str | None
    event_id: int | None
    expected_state: str | None
    attempts: int
    last_error: str | None = None


class DiscordBookkeeping:
    """The bot's own rows, written through the ticket database's one writer."""

    def __init__(self, database: TicketDatabase) -> None:
        self._database = database

    async def migrate(self) -> None:
        """Bring the bot's tables up to date (at start-up, after the core's own migrations)."""
        async with self._database.outside_transactions() as db:
            await migrate(db, DISCORD_SCHEMA)

    async def relayed_up_to(self) -> int:
        """The last audit event the bot has relayed (posted, told the requester about)."""
        async with self._database.reader.execute("SELECT last_event FROM discord_relay_cursor") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def mark_relayed(self, event_id: int) -> None:
        async with self._database.write() as db:
            await db.execute(
                "UPDATE discord_relay_cursor SET last_event = MAX(last_event, ?)", (int(event_id),)
            )

    async def set_review_card(self, ticket_id: str, channel_id: int, message_id: int) -> None:
        async with self._database.write() as db:
            await db.execute(
                "INSERT OR REPLACE INTO discord_review_cards (ticket_id, channel_id, message_id)"
                " VALUES (?, ?, ?)",
                (normalise_ticket_id(ticket_id), int(channel_id), int(message_id)),
            )

    async def review_card(self, ticket_id: str) -> tuple[int, int] | None:
        """(channel id, message id) of the ticket's review card, if one was posted."""
        async with self._database.reader.execute(
            "SELECT channel_id, message_id FROM discord_review_cards WHERE ticket_id = ?",
            (normalise_ticket_id(ticket_id),),
        ) as cursor:
            row = await cursor.fetchone()
        return (int(row[0]), int(row[1])) if row else None

    # -- the delivery queue ----------------------------------------------------------------------

    async def enqueue(
        self, event_id: int, deliveries: list[tuple[str, str | None, str | None]], now: float
    ) -> None:
        """Queue ``(kind, ticket id, expected state)`` deliveries for an event and move the relay
        cursor past it, in one transaction: an event is either queued whole or not relayed yet."""
        async with self._database.write() as db:
            for kind, ticket_id, expected_state in deliveries:
                if kind == "card" and await _pending_card(db, ticket_id):
                    continue  # the card is rendered when it is sent: one pending update is enough
                await db.execute(
                    "INSERT INTO discord_deliveries (kind, ticket_id, event_id, expected_state, due_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (kind, ticket_id, event_id, expected_state, now),
                )
            await db.execute(
                "UPDATE discord_relay_cursor SET last_event = MAX(last_event, ?)", (int(event_id),)
            )

    async def due(self, now: float, limit: int = 100) -> list[Delivery]:
        """Deliveries whose time has come, oldest first."""
        async with self._database.reader.execute(
            "SELECT id, kind, ticket_id, event_id, expected_state, attempts, last_error"
            " FROM discord_deliveries WHERE failed_at IS NULL AND due_at <= ? ORDER BY id LIMIT ?",
            (now, int(limit)),
        ) as cursor:
            return [Delivery(*row) for row in await cursor.fetchall()]

    async def delivered(self, delivery: Delivery) -> None:
        async with self._database.write() as db:
            await db.execute("DELETE FROM discord_deliveries WHERE id = ?", (delivery.id,))

    async def retry_later(self, delivery: Delivery, error: str, due_at: float) -> None:
        await self._failed(delivery, error, "due_at", due_at)

    async def give_up(self, delivery: Delivery, error: str, now: float) -> None:
        await self._failed(delivery, error, "failed_at", now)

    async def _failed(self, delivery: Delivery, error: str, column: str, moment: float) -> None:
        """Count a failed try: due again at ``moment`` (``due_at``) or given up then (``failed_at``)."""
        assert column in {"due_at", "failed_at"}
        async with self._database.write() as db:
            await db.execute(
                f"UPDATE discord_deliveries SET attempts = attempts + 1, last_error = ?, {column} = ?"
                " WHERE id = ?",
                (error, moment, delivery.id),
            )

    async def queue_depth(self) -> tuple[int, int]:
        """(deliveries waiting or to be retried, deliveries given up on): for bot.metrics."""
        async with self._database.reader.execute(
            "SELECT COALESCE(SUM(failed_at IS NULL), 0), COALESCE(SUM(failed_at IS NOT NULL), 0)"
            " FROM discord_deliveries"
        ) as cursor:
            row = await cursor.fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def undelivered(self, limit: int = 50) -> list[Delivery]:
        """What the relay gave up on, newest first: shown to maintainers in ``/tickets queue``."""
        async with self._database.reader.execute(
            "SELECT id, kind, ticket_id, event_id, expected_state, attempts, last_error"
            " FROM discord_deliveries WHERE failed_at IS NOT NULL ORDER BY id DESC LIMIT ?",
            (int(limit),),
        ) as cursor:
            return [Delivery(*row) for row in await cursor.fetchall()]


async def _pending_card(db: aiosqlite.Connection, ticket_id: str | None) -> bool:
    async with db.execute(
        "SELECT 1 FROM discord_deliveries WHERE kind = 'card' AND ticket_id = ? AND failed_at IS NULL",
        (ticket_id,),
    ) as cursor:
        return await cursor.fetchone() is not None
