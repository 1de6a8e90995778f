"""Backing up and restoring the ticket database while it is in use.

A backup goes through SQLite's online backup API: a consistent copy of the database as one
transaction saw it, even while the bot writes (copying the file would race the write-ahead log).
The copy is checked (``PRAGMA integrity_check``) before it replaces anything, and written aside
and renamed, so a backup file is whole or absent. A restore refuses a backup made by a newer
release (its schema would be unknown here) and one that fails its check; stop the bot first.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from bot.durable import written_aside
from bot.errors import RemovalDeskError
from bot.tickets.migrations import LATEST_VERSION, SchemaTooNewError


class BackupError(RemovalDeskError):
    """A backup could not be made, or a file is not one that can be restored."""


def backup_database(database: Path, out: Path) -> int:
    """Copy the live database at ``database`` to ``out``; return the copy's schema version."""
    if not database.is_file():
        raise BackupError(f"there is no ticket database at {database}")
    # Closed in reverse order: the copy is whole and closed before it is renamed into place.
    with (
        written_aside(out) as temporary,
        closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as source,
        closing(sqlite3.connect(temporary)) as copy,
    ):
        source.backup(copy)
        version = _checked(copy, out)
        copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
    return version


def restore_database(backup: Path, database: Path) -> int:
    """Replace the database at ``database`` with ``backup``; return the restored schema version.
    The bot must not be running: a restore under it would be overwritten by its next write."""
    if not backup.is_file():
        raise BackupError(f"there is no backup at {backup}")
    with closing(sqlite3.connect(f"file:{backup}?mode=ro", uri=True)) as source:
        try:
            version = _checked(source, backup)
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{backup} is not a ticket database backup: {exc}") from exc
        if version > LATEST_VERSION:
            raise SchemaTooNewError(
                f"the backup {backup} is at schema version {version}, newer than this release "
                f"understands ({LATEST_VERSION}); restore it with the release that made it"
            )
        with closing(sqlite3.connect(database)) as target:
            source.backup(target)
            target.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return version


def _checked(db: sqlite3.Connection, name: Path) -> int:
    (result,) = db.execute("PRAGMA integrity_check").fetchone()
    if result != "ok":
        raise BackupError(f"{name} fails SQLite's integrity check: {result}")
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "tickets" not in tables:
        raise BackupError(f"{name} holds no tickets table: not a ticket database")
    return int(db.execute("PRAGMA user_version").fetchone()[0])
