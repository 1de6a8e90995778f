"""The removal list: every approved entry once, and the version that changes with each decision.

The version is a counter in the database, bumped inside the transaction that approves (or
reopens an approved ticket), so a list exported with version N always holds exactly the
approvals up to N.
"""

from __future__ import annotations

import aiosqlite

from bot.tickets.models import RemovalRow


async def removal_version(db: aiosqlite.Connection) -> int:
    async with db.execute("SELECT value FROM counters WHERE name = 'removal_list_version'") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def bump_removal_version(db: aiosqlite.Connection) -> int:
    await db.execute("UPDATE counters SET value = value + 1 WHERE name = 'removal_list_version'")
    return await removal_version(db)


async def removal_list(db: aiosqlite.Connection) -> tuple[int, list[RemovalRow]]:
    """The list version and every approved entry once, credited to its first approval (the
    decided ticket before the linked ones approved with it), sorted by key, url. A row credited
    to a hash-list hit names the list's source and its id for the hash."""
    # One statement, one snapshot: the version always belongs to exactly these rows.
    async with db.execute(
        "SELECT (SELECT value FROM counters WHERE name = 'removal_list_version') AS version,"
        " e.key, e.url, e.phash, e.pdq, e.quality, t.id AS ticket_id, t.closed_at AS decided_at,"
        " t.removal_version AS added_in, e.whole_pdq, h.source AS removed_by_list,"
        " h.list_entry_id FROM counters c"
        " LEFT JOIN (ticket_entries e JOIN tickets t ON t.id = e.ticket_id AND t.state = 'approved'"
        " LEFT JOIN ticket_list_hits h ON h.ticket_id = t.id)"
        " WHERE c.name = 'removal_list_version'"
        " ORDER BY e.key, COALESCE(e.url, ''), t.closed_at, t.linked_to IS NOT NULL, t.id"
    ) as cursor:
        records = [dict(row) for row in await cursor.fetchall()]
    version = int(records[0]["version"]) if records else 0
    rows = [RemovalRow(**{k: v for k, v in r.items() if k != "version"}) for r in records if r["key"]]
    unique: dict[tuple[str, str], RemovalRow] = {}
    for row in rows:
        unique.setdefault((row.key, row.url or ""), row)
    return version, list(unique.values())


async def removed_entries(db: aiosqlite.Connection) -> frozenset[tuple[str, str]]:
    """(key, url or "") of every approved entry: what the index must no longer match."""
    async with db.execute(
        "SELECT DISTINCT e.key, COALESCE(e.url, '') FROM ticket_entries e"
        " JOIN tickets t ON t.id = e.ticket_id WHERE t.state = 'approved'"
    ) as cursor:
        return frozenset((row[0], row[1]) for row in await cursor.fetchall())
