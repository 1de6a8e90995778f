"""What the Discord bot remembers beside the tickets: where each review card lives, and how far
it has relayed the audit log.

These tables belong to the Discord side, not to the core: the command line never reads them, and
they have their own numbered migrations (a :class:`~bot.tickets.migrations.Schema` with an owner),
so the bot can change them without a core release. They live in the ticket database all the same,
so that a card and the decision it shows are written by the same durable writer, and a backup of
the database is a backup of both.
"""

from __future__ import annotations

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
    ),
    owner="discord",
)


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
