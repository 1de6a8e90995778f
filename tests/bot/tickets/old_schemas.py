"""Taking a database back to what an earlier release wrote, to test that it upgrades in place.

Each migration's undo, newest first: a test makes a database with today's code (so it holds real
tickets), then takes it back to version N as a release of that version would have left it.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from bot.tickets.migrations import LATEST_VERSION

UNDO: dict[int, tuple[str, ...]] = {
    5: (
        "DROP TABLE ticket_list_hits",
        "ALTER TABLE ticket_entries DROP COLUMN whole_pdq",
        "ALTER TABLE ticket_entries DROP COLUMN whole_quality",
    ),
    4: ("DROP TABLE hash_list_entries", "DROP TABLE hash_lists"),
    3: ("DROP TABLE front_end_schemas",),
    2: ("DROP TABLE review_messages", "DELETE FROM counters WHERE name = 'relayed_event'"),
}


def take_back(path: Path, version: int) -> None:
    """Undo every migration after ``version`` in the database at ``path`` (made at the latest)."""
    assert set(UNDO) == set(range(2, LATEST_VERSION + 1)), "a new migration needs its undo here"
    with closing(sqlite3.connect(path)) as db:
        for number in range(LATEST_VERSION, version, -1):
            for statement in UNDO[number]:
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {version:d}")
        db.commit()
