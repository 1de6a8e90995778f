"""The ticket database's connections: SQLite through aiosqlite, durable, one writer at a time.

Durability and concurrency choices, and why:

* WAL journal with ``synchronous=FULL``: a write acknowledged to a person survives a crash of the
  process or of the machine; readers never block the writer.
* One writer connection, and inside this process one write at a time (an ``asyncio.Lock``):
  aiosqlite runs a connection's statements on one thread, so two coroutines sharing it would mix
  their transactions. Reads use a second, read-only connection and see only committed data.
* Every read-modify-write runs in ``BEGIN IMMEDIATE``: the write lock is taken before the state is
  read, so of two maintainers (or two processes: the bot and the command line) deciding the same
  ticket at once exactly one wins and the other sees the decision and is told.
* ``secure_delete`` and a WAL checkpoint after erasure: an erased requester id does not linger in
  free pages or in the write-ahead log.

Front ends that keep bookkeeping of their own (the Discord bot's review messages) borrow these
connections for tables they own; see :mod:`bot.tickets.migrations`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite

from bot.config import TicketSettings
from bot.tickets.lifecycle import TicketError
from bot.tickets.migrations import CORE_SCHEMA, migrate

Clock = Callable[[], datetime]


class StoreBusyError(TicketError):
    def __init__(self) -> None:
        super().__init__("The ticket database is busy right now; please try again in a moment.")


def timestamp(moment: datetime) -> str:
    """UTC, fixed width: timestamps sort and compare as strings."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _system_clock() -> datetime:
    return datetime.now(UTC)


class TicketDatabase:
    """The writer and reader connections of one ticket database, and the clock its rows are
    stamped with. Open with :meth:`open`; close when done."""

    def __init__(
        self,
        writer: aiosqlite.Connection,
        reader: aiosqlite.Connection,
        settings: TicketSettings,
        clock: Clock,
    ) -> None:
        self._writer = writer
        self.reader = reader
        self.settings = settings
        self.clock = clock
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path, settings: TicketSettings, clock: Clock | None = None) -> TicketDatabase:
        """Open (creating if needed) the database at ``path`` and bring its schema up to date."""
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = await aiosqlite.connect(path, isolation_level=None)
        try:
            await _configure(writer, settings)
            await writer.execute("PRAGMA journal_mode = WAL")
            await migrate(writer, CORE_SCHEMA)
            reader = await aiosqlite.connect(path, isolation_level=None)
            await _configure(reader, settings)
            await reader.execute("PRAGMA query_only = ON")
        except BaseException:
            await writer.close()
            raise
        return cls(writer, reader, settings, clock or _system_clock)

    async def close(self) -> None:
        await self.reader.close()
        await self._writer.close()

    def now(self) -> str:
        return timestamp(self.clock())

    @asynccontextmanager
    async def write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One read-modify-write transaction holding SQLite's write lock from its first read."""
        async with self._write_lock:
            await self._end_abandoned_transaction()
            try:
                await self._writer.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise StoreBusyError() from exc
                raise
            try:
                yield self._writer
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            await self._writer.execute("COMMIT")

    @asynccontextmanager
    async def outside_transactions(self) -> AsyncIterator[aiosqlite.Connection]:
        """The writer between transactions: for schema upgrades (which open their own) and
        pragmas such as a checkpoint."""
        async with self._write_lock:
            await self._end_abandoned_transaction()
            yield self._writer

    async def _end_abandoned_transaction(self) -> None:
        """Roll back a transaction nobody owns any more. A task cancelled while awaiting its
        ``BEGIN`` (the bot's background work, at shutdown) leaves it open: aiosqlite runs the
        statement on its thread all the same. Under the write lock no one else can be inside one,
        so without this the connection would refuse every later write."""
        # The abandoned BEGIN may still be queued for aiosqlite's thread: a statement queued
        # behind it returns only once it has run, so ``in_transaction`` is then up to date.
        await self._writer.execute("SELECT 1")
        if self._writer.in_transaction:
            await self._writer.execute("ROLLBACK")

    async def checkpoint(self) -> None:
        """Fold the WAL into the database and truncate it, so erased values leave the disk."""
        async with self.outside_transactions() as db:
            await db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


async def _configure(db: aiosqlite.Connection, settings: TicketSettings) -> None:
    db.row_factory = sqlite3.Row
    await db.execute(f"PRAGMA busy_timeout = {int(settings.busy_timeout_ms):d}")
    await db.execute("PRAGMA synchronous = FULL")
    await db.execute("PRAGMA foreign_keys = ON")
    await db.execute("PRAGMA secure_delete = ON")
