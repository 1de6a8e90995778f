"""Reading tickets back from their rows: the one place the columns are named."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import aiosqlite

from bot.tickets.ids import looks_like_ticket_id, normalise_ticket_id
from bot.tickets.lifecycle import TicketError, TicketState
from bot.tickets.models import ListOrigin, MatchedEntry, StoredQuery, Ticket

TICKET_COLUMNS = (
    "id, state, source, requester, note, query, assignee, decided_by, decision_reason, flagged, "
    "flag_reason, linked_to, created_at, updated_at, closed_at, erased_at"
)
ENTRY_COLUMNS = (
    "key, url, caption, entry_id, phash, pdq, quality, pdq_distance, phash_distance, variant, "
    "whole_pdq, whole_quality"
)
LIST_HIT_COLUMNS = "source, list_id, line, list_entry_id, category, signal_type, hash, policy"


class TicketNotFoundError(TicketError):
    def __init__(self, ticket_id: str) -> None:
        super().__init__(f"There is no ticket {ticket_id}.")
        self.translatable("no_such_ticket", id=ticket_id)


async def load_tickets(db: aiosqlite.Connection, where: str, params: Iterable[Any]) -> list[Ticket]:
    """The tickets ``SELECT ... FROM tickets {where}`` finds, each with its matched entries."""
    async with db.execute(f"SELECT {TICKET_COLUMNS} FROM tickets {where}", tuple(params)) as cursor:
        rows = [dict(row) for row in await cursor.fetchall()]
    entries = await _entries(db, [row["id"] for row in rows])
    origins = await _list_hits(db, [row["id"] for row in rows])
    return [_ticket(row, entries[row["id"]], origins.get(row["id"])) for row in rows]


async def load_ticket(db: aiosqlite.Connection, ticket_id: str) -> Ticket:
    """The ticket with this id (typed by a person: case, dashes and look-alikes forgiven)."""
    tickets = []
    if looks_like_ticket_id(ticket_id):
        tickets = await load_tickets(db, "WHERE id = ?", (normalise_ticket_id(ticket_id),))
    if not tickets:
        raise TicketNotFoundError(ticket_id.strip())
    return tickets[0]


async def _entries(db: aiosqlite.Connection, ticket_ids: Sequence[str]) -> dict[str, list[MatchedEntry]]:
    found: dict[str, list[MatchedEntry]] = {ticket_id: [] for ticket_id in ticket_ids}
    if not ticket_ids:
        return found
    marks = ",".join("?" * len(ticket_ids))
    async with db.execute(
        f"SELECT ticket_id, {ENTRY_COLUMNS} FROM ticket_entries WHERE ticket_id IN ({marks})"
        " ORDER BY ticket_id, position",
        tuple(ticket_ids),
    ) as cursor:
        async for row in cursor:
            values = dict(row)
            ticket_id = values.pop("ticket_id")
            found[ticket_id].append(MatchedEntry(**values))
    return found


async def _list_hits(db: aiosqlite.Connection, ticket_ids: Sequence[str]) -> dict[str, ListOrigin]:
    """Which hash list filed each of ``ticket_ids``, for those a list filed."""
    if not ticket_ids:
        return {}
    marks = ",".join("?" * len(ticket_ids))
    async with db.execute(
        f"SELECT ticket_id, {LIST_HIT_COLUMNS} FROM ticket_list_hits WHERE ticket_id IN ({marks})",
        tuple(ticket_ids),
    ) as cursor:
        rows = [dict(row) for row in await cursor.fetchall()]
    return {row.pop("ticket_id"): ListOrigin(**row) for row in rows}


def _ticket(row: dict[str, Any], entries: list[MatchedEntry], origin: ListOrigin | None = None) -> Ticket:
    return Ticket(
        id=row["id"],
        state=TicketState(row["state"]),
        source=row["source"],
        requester=row["requester"],
        note=row["note"],
        query=StoredQuery.from_json(row["query"]) if row["query"] else None,
        entries=tuple(entries),
        assignee=row["assignee"],
        decided_by=row["decided_by"],
        decision_reason=row["decision_reason"],
        flagged=bool(row["flagged"]),
        flag_reason=row["flag_reason"],
        linked_to=row["linked_to"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        closed_at=row["closed_at"],
        erased_at=row["erased_at"],
        list_hit=origin,
    )


async def covering(db: aiosqlite.Connection, entry: MatchedEntry, exclude: str | None = None) -> list[str]:
    """Tickets in open, claimed or approved state that cover ``entry``, oldest first."""
    async with db.execute(
        "SELECT t.id FROM ticket_entries e JOIN tickets t ON t.id = e.ticket_id"
        " WHERE e.key = ? AND COALESCE(e.url, '') = ? AND t.state IN ('open', 'claimed', 'approved')"
        " AND t.id != ? ORDER BY t.created_at, t.id",
        (entry.key, entry.url or "", exclude or ""),
    ) as cursor:
        return [row[0] for row in await cursor.fetchall()]
