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
* aiosqlite's logger is held at INFO: at DEBUG it logs every statement with its values (requester
  ids, notes, hashes, entries on one line), which would outlive an erasure in a log file.

Front ends that keep bookkeeping of their own (the Discord bot's review messages) borrow these
connections for tables they own; see :mod:`bot.tickets.migrations`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite

from bot.config import TicketSettings
from bot.tickets.lifecycle import TicketError
from bot.tickets.migrations import CORE_SCHEMA, migrate

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def quiet_statement_log() -> None:
    """Keep aiosqlite's DEBUG lines (each statement with its parameters) out of any log, whatever the
    root level; a level someone set above INFO is kept."""
    logger = logging.getLogger("aiosqlite")
    if logger.level < logging.INFO:
        logger.setLevel(logging.INFO)


class StoreBusyError(TicketError):
    """Another connection (a maintainer's shell, a second bot) held the write lock past
    ``busy_timeout_ms``; nothing was written."""

    def __init__(self) -> None:
        from bot import messages  # bot.messages imports the ticket models, which import this module

        super().__init__(messages.STORE_BUSY)
        self.translatable("store_busy")


class StoreFullError(TicketError):
    """The disk (or the database's ``max_page_count``) is full: SQLITE_FULL. The transaction was
    rolled back, so nothing is half-written."""

    def __init__(self) -> None:
        from bot import messages

        super().__init__(messages.STORE_FULL)
        self.translatable("store_full")


def _refusal(exc: sqlite3.OperationalError) -> TicketError | None:
    """The error a person is told for SQLite's "try again later" failures; None for the others."""
    text = str(exc)
    if "database or disk is full" in text or getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return StoreFullError()
    if "locked" in text or "busy" in text:
        return StoreBusyError()
    return None


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
        quiet_statement_log()
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
                await self._begin()
            except sqlite3.OperationalError as exc:
                raise (_refusal(exc) or exc) from exc
            try:
                yield self._writer
                await self._writer.execute("COMMIT")
            except BaseException as exc:
                if self._writer.in_transaction:  # a failed COMMIT (disk full) leaves it open too
                    await self._writer.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError) and (refusal := _refusal(exc)) is not None:
                    log.warning("the ticket database refused a write, rolled back: %s", exc)
                    raise refusal from exc
                raise

    @asynccontextmanager
    async def outside_transactions(self) -> AsyncIterator[aiosqlite.Connection]:
        """The writer between transactions: for schema upgrades (which open their own) and
        pragmas such as a checkpoint."""
        async with self._write_lock:
            await self._end_abandoned_transaction()
            yield self._writer

    async def _begin(self) -> None:
        """``BEGIN IMMEDIATE``, undone if the caller is cancelled while it waits: the statement
        runs on aiosqlite's thread whatever happens to the caller, so without this a transaction
        would be left open with nobody to end it, after the write lock was released."""
        begin = asyncio.ensure_future(self._writer.execute("BEGIN IMMEDIATE"))
        try:
            await asyncio.shield(begin)
        except asyncio.CancelledError:
            with contextlib.suppress(sqlite3.Error):
                await begin
                await self._writer.execute("ROLLBACK")
            raise

    async def _end_abandoned_transaction(self) -> None:
        """Roll back a transaction nobody owns any more. A task cancelled while awaiting its
        ``BEGIN`` (the bot's background work, at shutdown) leaves it open: aiosqlite runs the
        statement on its thread all the same. Under the write lock no one else can be inside one,
        so without this the connection would refuse every later write. :meth:`_begin` undoes its
        own; this catches any other statement left behind (a migration's, a cancelled COMMIT)."""
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
