"""Numbered schema migrations, applied in order at start-up; ``PRAGMA user_version`` says how far.

A migration is never edited once released: a change to the schema is a new, higher-numbered
migration, so a database made by any earlier release upgrades in place. Each statement is
executed separately inside one ``BEGIN IMMEDIATE`` transaction (``executescript`` would commit
half-way), so a migration applies entirely or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from bot.errors import RemovalDeskError


@dataclass(frozen=True)
class Migration:
    number: int
    purpose: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "tickets, their matched entries, the append-only audit log, the removal list version",
        (
            """
            CREATE TABLE tickets (
                id TEXT PRIMARY KEY,
                state TEXT NOT NULL
                    CHECK (state IN ('open', 'claimed', 'approved', 'rejected', 'withdrawn', 'linked')),
                source TEXT NOT NULL,
                requester TEXT,
                note TEXT,
                query TEXT,
                assignee TEXT,
                decided_by TEXT,
                decision_reason TEXT,
                flagged INTEGER NOT NULL DEFAULT 0,
                flag_reason TEXT,
                linked_to TEXT REFERENCES tickets (id),
                removal_version INTEGER,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                closed_at TEXT,
                erased_at TEXT
            )
            """,
            "CREATE INDEX tickets_by_requester ON tickets (requester) WHERE requester IS NOT NULL",
            "CREATE INDEX tickets_by_state ON tickets (state, created_at)",
            "CREATE INDEX tickets_by_link ON tickets (linked_to) WHERE linked_to IS NOT NULL",
            """
            CREATE TABLE ticket_entries (
                ticket_id TEXT NOT NULL REFERENCES tickets (id),
                position INTEGER NOT NULL,
                key TEXT NOT NULL,
                url TEXT,
                caption TEXT,
                entry_id TEXT NOT NULL,
                phash TEXT NOT NULL,
                pdq TEXT NOT NULL,
                quality INTEGER NOT NULL,
                pdq_distance INTEGER NOT NULL,
                phash_distance INTEGER NOT NULL,
                variant TEXT NOT NULL,
                PRIMARY KEY (ticket_id, position)
            )
            """,
            "CREATE INDEX ticket_entries_by_entry ON ticket_entries (key, url)",
            # Requester ids never enter the log (the CHECK makes that a database rule), so erasing
            # a requester never needs to touch it, and it can stay strictly append-only.
            """
            CREATE TABLE audit_events (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                at TEXT NOT NULL,
                ticket_id TEXT,
                actor_kind TEXT NOT NULL CHECK (actor_kind IN ('maintainer', 'requester', 'system')),
                actor TEXT,
                action TEXT NOT NULL,
                from_state TEXT,
                to_state TEXT,
                reason TEXT,
                detail TEXT NOT NULL DEFAULT '{}',
                CHECK (actor_kind = 'maintainer' OR actor IS NULL)
            )
            """,
            "CREATE INDEX audit_by_ticket ON audit_events (ticket_id, id)",
            "CREATE INDEX audit_by_actor ON audit_events (actor, id)",
            "CREATE INDEX audit_by_time ON audit_events (at)",
            """
            CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END
            """,
            """
            CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END
            """,
            "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
            "INSERT INTO counters (name, value) VALUES ('removal_list_version', 0)",
        ),
    ),
)

MIGRATIONS += (
    Migration(
        2,
        "where each ticket's review message lives; how far the bot has relayed the audit log",
        (
            """
            CREATE TABLE review_messages (
                ticket_id TEXT PRIMARY KEY REFERENCES tickets (id),
                channel_id INTEGER NOT NULL,
                message_id INTEGER NOT NULL
            )
            """,
            "INSERT INTO counters (name, value) VALUES ('relayed_event', 0)",
        ),
    ),
)

MIGRATIONS += (
    Migration(
        3,
        "a schema version for each front end that keeps tables of its own beside the tickets",
        ("CREATE TABLE front_end_schemas (owner TEXT PRIMARY KEY, version INTEGER NOT NULL)",),
    ),
)

MIGRATIONS += (
    Migration(
        4,
        "partner hash lists: each imported list file and its entries (bot.hashlists)",
        (
            # One row per list file imported: (source, sha256) is unique, so the same file
            # imported again is recognised and stores nothing.
            """
            CREATE TABLE hash_lists (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                source TEXT NOT NULL,
                format TEXT NOT NULL,
                sha256 TEXT NOT NULL,
                imported_at TEXT NOT NULL,
                entries INTEGER NOT NULL,
                bad_lines INTEGER NOT NULL,
                counts TEXT NOT NULL DEFAULT '{}',
                UNIQUE (source, sha256)
            )
            """,
            # The hashes per source: what a newer version of a list adds is what is not here yet.
            """
            CREATE TABLE hash_list_entries (
                list_id INTEGER NOT NULL REFERENCES hash_lists (id),
                line INTEGER NOT NULL,
                signal_type TEXT NOT NULL CHECK (signal_type IN ('pdq', 'phash', 'md5')),
                hash TEXT NOT NULL,
                entry_id TEXT,
                category TEXT,
                list_source TEXT,
                PRIMARY KEY (list_id, line)
            )
            """,
            "CREATE INDEX hash_list_entries_by_hash ON hash_list_entries (signal_type, hash)",
        ),
    ),
)

MIGRATIONS += (
    Migration(
        5,
        "tickets filed for partner hash-list hits; each matched entry's whole-picture PDQ",
        (
            # A hit ticket has no requester: this row says which list, line and hash filed it, so
            # maintainers see where it came from, the removal list can say which list removed an
            # entry, and a newer version of the list files only the hits not filed before.
            """
            CREATE TABLE ticket_list_hits (
                ticket_id TEXT PRIMARY KEY REFERENCES tickets (id),
                source TEXT NOT NULL,
                list_id INTEGER NOT NULL REFERENCES hash_lists (id),
                line INTEGER NOT NULL,
                list_entry_id TEXT,
                category TEXT,
                signal_type TEXT NOT NULL CHECK (signal_type IN ('pdq', 'phash', 'md5')),
                hash TEXT NOT NULL,
                policy TEXT
            )
            """,
            "CREATE INDEX ticket_list_hits_by_hash ON ticket_list_hits (source, signal_type, hash)",
            # The entry's whole-picture PDQ (bot.whole_picture), what a platform's PDQ of the
            # picture is compared with: exported to ThreatExchange-readable lists. NULL for entries
            # filed before, or from a shard that does not keep it.
            "ALTER TABLE ticket_entries ADD COLUMN whole_pdq TEXT",
            "ALTER TABLE ticket_entries ADD COLUMN whole_quality INTEGER",
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].number


class SchemaTooNewError(RemovalDeskError, RuntimeError):
    """The database was written by a newer release; this one must not touch it."""


@dataclass(frozen=True)
class Schema:
    """A set of tables with one owner and their numbered migrations.

    The core's version is SQLite's ``user_version``; a front end's (``owner`` set) is its row in
    ``front_end_schemas``, so the Discord bot can add, move and drop tables of its own without a
    core release, and the command line never needs to know they exist.
    """

    name: str
    migrations: tuple[Migration, ...]
    owner: str | None = None

    @property
    def latest(self) -> int:
        return self.migrations[-1].number

    async def version(self, db: aiosqlite.Connection) -> int:
        if self.owner is None:
            async with db.execute("PRAGMA user_version") as cursor:
                row = await cursor.fetchone()
        else:
            async with db.execute(
                "SELECT version FROM front_end_schemas WHERE owner = ?", (self.owner,)
            ) as cursor:
                row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def set_version(self, db: aiosqlite.Connection, number: int) -> None:
        if self.owner is None:
            await db.execute(f"PRAGMA user_version = {number:d}")
        else:
            await db.execute(
                "INSERT OR REPLACE INTO front_end_schemas (owner, version) VALUES (?, ?)",
                (self.owner, number),
            )


CORE_SCHEMA = Schema("ticket database", MIGRATIONS)


async def migrate(db: aiosqlite.Connection, schema: Schema = CORE_SCHEMA) -> int:
    """Bring ``schema``'s tables in ``db`` to their latest version; return the version before."""
    await db.execute("BEGIN IMMEDIATE")
    try:
        before = await schema.version(db)
        if before > schema.latest:
            raise SchemaTooNewError(
                f"the {schema.name} is at schema version {before}, newer than this release "
                f"understands ({schema.latest}); upgrade removal-desk"
            )
        for migration in schema.migrations:
            if migration.number <= before:
                continue
            for statement in migration.statements:
                await db.execute(statement)
            await schema.set_version(db, migration.number)
    except BaseException:
        await db.execute("ROLLBACK")
        raise
    await db.execute("COMMIT")
    return before
