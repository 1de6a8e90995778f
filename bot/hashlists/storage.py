"""Store a read hash list in the ticket database: the whole list in one transaction, or nothing.

A list with a bad line is refused whole unless the caller skips bad lines; the same file (same
sha256) imported again under the same source is recognised and stores nothing. Entries keep
their line numbers, so a later step can say which line of which list a hit came from, and the
hashes per source, so a newer version of a list can file only what it adds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.hashlists.reading import ReadList
from bot.tickets.store import TicketStore

if TYPE_CHECKING:
    from bot.hashlists.scan import ListHash

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredList:
    """An imported list as the database keeps it."""

    id: int
    source: str
    format: str
    sha256: str
    imported_at: str
    entries: int
    bad_lines: int
    counts: dict[str, int]

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id, "source": self.source, "format": self.format, "sha256": self.sha256,
            "imported_at": self.imported_at, "entries": self.entries, "bad_lines": self.bad_lines,
            "counts": self.counts,
        }  # fmt: skip


_LIST_COLUMNS = "id, source, format, sha256, imported_at, entries, bad_lines, counts"


def _stored(row: Sequence[Any]) -> StoredList:
    return StoredList(
        int(row[0]), str(row[1]), str(row[2]), str(row[3]), str(row[4]), int(row[5]), int(row[6]),
        json.loads(row[7]),
    )  # fmt: skip


async def imported_before(store: TicketStore, source: str, sha256: str) -> StoredList | None:
    """The list already imported from this file under this source, if it was."""
    async with store.database.reader.execute(
        f"SELECT {_LIST_COLUMNS} FROM hash_lists WHERE source = ? AND sha256 = ?", (source, sha256)
    ) as cursor:
        row = await cursor.fetchone()
    return None if row is None else _stored(row)


async def store_list(store: TicketStore, source: str, read: ReadList) -> tuple[StoredList, bool]:
    """Store ``read``'s good entries under ``source``; (the list, True) when stored now,
    (the earlier import, False) when this file was imported under this source before."""
    async with store.database.write() as db:
        async with db.execute(
            f"SELECT {_LIST_COLUMNS} FROM hash_lists WHERE source = ? AND sha256 = ?",
            (source, read.sha256),
        ) as cursor:
            earlier = await cursor.fetchone()
        if earlier is not None:
            return _stored(earlier), False
        counts = read.counts()
        now = store.database.now()
        cursor = await db.execute(
            "INSERT INTO hash_lists (source, format, sha256, imported_at, entries, bad_lines, counts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (source, read.format, read.sha256, now, len(read.entries), read.bad_lines,
             json.dumps(counts, sort_keys=True)),
        )  # fmt: skip
        list_id = cursor.lastrowid
        assert list_id is not None
        await db.executemany(
            "INSERT INTO hash_list_entries (list_id, line, signal_type, hash, entry_id, category, "
            "list_source) VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((list_id, e.line, e.signal, e.hash, e.entry_id, e.category, e.source) for e in read.entries),
        )
    # Counts only: a list's hashes are never logged.
    log.info("imported hash list %d from %s: %d entries", list_id, source, len(read.entries))
    stored = StoredList(
        list_id, source, read.format, read.sha256, now, len(read.entries), read.bad_lines, counts
    )
    return stored, True


async def source_hashes(store: TicketStore, source: str) -> set[tuple[str, str]]:
    """(signal type, hash) of every entry imported under ``source``, from any of its files: what
    a newer version of the list would not file again."""
    async with store.database.reader.execute(
        "SELECT DISTINCT e.signal_type, e.hash FROM hash_list_entries e "
        "JOIN hash_lists l ON l.id = e.list_id WHERE l.source = ?",
        (source,),
    ) as cursor:
        return {(row[0], row[1]) for row in await cursor.fetchall()}


async def stored_lists(
    store: TicketStore, source: str | None = None, list_id: int | None = None
) -> list[StoredList]:
    """The lists imported under ``source``, or the list ``list_id`` (every list when neither)."""
    where: list[str] = []
    values: list[object] = []
    if source is not None:
        where.append("source = ?")
        values.append(source)
    if list_id is not None:
        where.append("id = ?")
        values.append(list_id)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    async with store.database.reader.execute(
        f"SELECT {_LIST_COLUMNS} FROM hash_lists{clause} ORDER BY id", values
    ) as cursor:
        return [_stored(row) for row in await cursor.fetchall()]


async def list_hashes(store: TicketStore, list_ids: Sequence[int]) -> list[ListHash]:
    """Every entry of the lists ``list_ids``, in list and line order: what a scan searches."""
    from bot.hashlists.scan import ListHash

    found: list[ListHash] = []
    for list_id in list_ids:
        async with store.database.reader.execute(
            "SELECT list_id, line, signal_type, hash, entry_id, category FROM hash_list_entries "
            "WHERE list_id = ? ORDER BY line",
            (list_id,),
        ) as cursor:
            found.extend(
                ListHash(int(r[0]), int(r[1]), str(r[2]), str(r[3]), r[4], r[5])
                for r in await cursor.fetchall()
            )
    return found


def _checkpoint_name(source: str, feed: str) -> str:
    # In the counters table, beside the bot's own cursor over the audit log ('relayed_event').
    return f"hash-list checkpoint: {feed}: {source}"


async def fetch_checkpoint(store: TicketStore, source: str, feed: str) -> int | None:
    """Where the last complete fetch of ``feed`` under ``source`` stopped (None: never fetched)."""
    async with store.database.reader.execute(
        "SELECT value FROM counters WHERE name = ?", (_checkpoint_name(source, feed),)
    ) as cursor:
        row = await cursor.fetchone()
    return None if row is None else int(row[0])


async def save_fetch_checkpoint(store: TicketStore, source: str, feed: str, value: int) -> None:
    """Record where the next fetch of ``feed`` under ``source`` starts. Called only after the
    fetch's list is stored (or known stored): a crash between the two fetches that range again,
    whose list is then stored again or recognised, never a range skipped."""
    async with store.database.write() as db:
        await db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (_checkpoint_name(source, feed), value),
        )
