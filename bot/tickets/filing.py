"""Filing a removal request: refusals, duplicate linking, flagging, in one transaction.

A request for entries that an older pending or approved ticket already covers is linked to it
(one review decides both; an approved one is answered at once), so maintainers never judge the
same picture twice and a requester is never asked to wait for what is already decided.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict, Unpack

import aiosqlite

from bot.hashing import QueryHashes
from bot.tickets.audit import append_event
from bot.tickets.database import TicketDatabase
from bot.tickets.ids import new_ticket_id
from bot.tickets.lifecycle import PENDING_STATES, TicketError, TicketState
from bot.tickets.models import MatchedEntry, StoredQuery, Ticket
from bot.tickets.removal_list import removal_version
from bot.tickets.rows import ENTRY_COLUMNS, covering, load_ticket, load_tickets


class RequestRefusedError(TicketError):
    """A new ticket was not created: over the limit, nothing to remove, or already requested."""


# A fresh check's hashes, or those a ticket already stored (a request filed again elsewhere).
AnyQuery = QueryHashes | StoredQuery


class RequestDetails(TypedDict, total=False):
    """What a request may carry besides its entries: the requester's note (optional, never
    required) and where it came from (``discord``, ``cli``)."""

    note: str | None
    source: str


async def create_ticket(
    database: TicketDatabase,
    requester: str,
    query: AnyQuery,
    entries: Sequence[MatchedEntry],
    **details: Unpack[RequestDetails],
) -> Ticket:
    """File a removal request for ``entries``; it may come back linked to an existing ticket.

    Refused (:class:`RequestRefusedError`) when nothing matched, when the requester already
    has too many pending tickets, or already asked for exactly these entries.
    """
    requester = requester.strip()
    note, source = details.get("note"), details.get("source", "cli")
    if not requester:
        raise RequestRefusedError("A ticket needs a requester id, so the requester can follow it.")
    if not entries:
        raise RequestRefusedError("No dataset entry matched, so there is nothing to remove.")
    note = (note or "").strip() or None
    if note is not None and len(note) > database.settings.max_note_chars:
        raise RequestRefusedError(
            f"The note is {len(note)} characters long; at most {database.settings.max_note_chars} fit."
        ).translatable("note_too_long", length=len(note), limit=database.settings.max_note_chars)
    stored = (
        query
        if isinstance(query, StoredQuery)
        else StoredQuery.from_hashes(query, {entry.variant for entry in entries})
    )
    unique = list({entry.identity: entry for entry in entries}.values())
    async with database.write() as db:
        await _check_limit(db, requester, database.settings.max_open_per_requester)
        primary = await _primary_for(db, unique, requester)
        now = database.now()
        ticket_id = await unused_ticket_id(db)
        state, decided_by, reason, closed_at = TicketState.OPEN, None, None, None
        if primary is not None and primary.state is TicketState.APPROVED:
            state, decided_by, closed_at = TicketState.APPROVED, primary.decided_by, now
            reason = f"Already removed with ticket {primary.id}: {primary.decision_reason}"
        elif primary is not None:
            state = TicketState.LINKED
        flagged = len(unique) > database.settings.flag_matches_over
        flag_reason = (
            f"matches {len(unique)} entries (more than {database.settings.flag_matches_over}):"
            " a widely copied picture; check that the request is genuine"
            if flagged
            else None
        )
        await db.execute(
            "INSERT INTO tickets (id, state, source, requester, note, query, decided_by,"
            " decision_reason, flagged, flag_reason, linked_to, removal_version, created_at,"
            " updated_at, closed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                ticket_id,
                str(state),
                source,
                requester,
                note,
                stored.to_json(),
                decided_by,
                reason,
                int(flagged),
                flag_reason,
                primary.id if primary else None,
                await removal_version(db) if state is TicketState.APPROVED else None,
                now,
                now,
                closed_at,
            ),
        )
        await insert_entries(db, ticket_id, unique)
        detail: dict[str, Any] = {"entries": len(unique), "source": source}
        if primary is not None:
            detail["linked_to"] = primary.id
        if flagged:
            detail["flagged"] = flag_reason
        await append_event(
            db, now, ticket_id, "create", actor_kind="requester", to_state=str(state), detail=detail
        )
        return await load_ticket(db, ticket_id)


async def insert_entries(db: aiosqlite.Connection, ticket_id: str, entries: Sequence[MatchedEntry]) -> None:
    """The ticket's matched entries, in the order given."""
    await db.executemany(
        f"INSERT INTO ticket_entries (ticket_id, position, {ENTRY_COLUMNS})"
        f" VALUES (?, ?, {', '.join('?' * len(ENTRY_COLUMNS.split(',')))})",
        [
            (ticket_id, position, entry.key, entry.url, entry.caption, entry.entry_id, entry.phash,
             entry.pdq, entry.quality, entry.pdq_distance, entry.phash_distance, entry.variant,
             entry.whole_pdq, entry.whole_quality)
            for position, entry in enumerate(entries)
        ],
    )  # fmt: skip


async def _check_limit(db: aiosqlite.Connection, requester: str, limit: int) -> None:
    marks = ",".join("?" * len(PENDING_STATES))
    async with db.execute(
        f"SELECT COUNT(*) FROM tickets WHERE requester = ? AND state IN ({marks})",
        (requester, *sorted(PENDING_STATES)),
    ) as cursor:
        row = await cursor.fetchone()
    if row and row[0] >= limit:
        raise RequestRefusedError(
            f"You already have {row[0]} requests waiting for a decision (the most one person may "
            f"have at once is {limit}). You can file another once one of them is decided."
        ).translatable("too_many_requests", count=row[0], limit=limit)


async def _primary_for(
    db: aiosqlite.Connection, entries: Sequence[MatchedEntry], requester: str
) -> Ticket | None:
    """The oldest open, claimed or approved ticket covering every one of ``entries``, if any;
    refused when the requester asked for them before."""
    await _refuse_repeat(db, entries, requester)
    return await covering_primary(db, entries)


async def covering_primary(db: aiosqlite.Connection, entries: Sequence[MatchedEntry]) -> Ticket | None:
    """The oldest open, claimed or approved ticket covering every one of ``entries``, if any: the
    ticket a new one for the same entries is linked to."""
    common: set[str] | None = None
    for entry in entries:
        tickets = await covering(db, entry)
        common = set(tickets) if common is None else common & set(tickets)
        if not common:
            return None
    assert common is not None
    candidates = await load_tickets(
        db, f"WHERE id IN ({','.join('?' * len(common))}) ORDER BY created_at, id", sorted(common)
    )
    return candidates[0] if candidates else None


async def _refuse_repeat(db: aiosqlite.Connection, entries: Sequence[MatchedEntry], requester: str) -> None:
    """A requester's pending tickets (linked ones too) already cover every entry: refuse."""
    marks = ",".join("?" * len(PENDING_STATES))
    mine: set[str] | None = None
    for entry in entries:
        async with db.execute(
            "SELECT DISTINCT t.id FROM ticket_entries e JOIN tickets t ON t.id = e.ticket_id"
            f" WHERE e.key = ? AND COALESCE(e.url, '') = ? AND t.requester = ? AND t.state IN ({marks})",
            (entry.key, entry.url or "", requester, *sorted(PENDING_STATES)),
        ) as cursor:
            covering = {row[0] for row in await cursor.fetchall()}
        mine = covering if mine is None else mine | covering
        if not covering:
            return
    if mine:
        ticket = (await load_tickets(db, "WHERE id = ?", (min(mine),)))[0]
        raise RequestRefusedError(
            f"You already asked for these entries to be removed: ticket {ticket.id} is {ticket.state}."
        ).translatable("repeated_request", id=ticket.id, state=ticket.state)


async def unused_ticket_id(db: aiosqlite.Connection) -> str:
    while True:
        candidate = new_ticket_id()
        async with db.execute("SELECT 1 FROM tickets WHERE id = ?", (candidate,)) as cursor:
            if await cursor.fetchone() is None:
                return candidate
