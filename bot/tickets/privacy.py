"""What a requester may ask of their own data, and what retention does without being asked.

Erasure keeps decisions and matched dataset entries (they are about the dataset, not the
person) and removes everything that could say who asked: the requester id, the note, the query
hashes. A checkpoint after each erasure folds the write-ahead log, so the values leave the disk.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.tickets.audit import append_event, audit_log
from bot.tickets.database import TicketDatabase, timestamp
from bot.tickets.lifecycle import CLOSED_STATES
from bot.tickets.rows import load_tickets


async def forget(database: TicketDatabase, requester: str) -> int:
    """Erase a requester's id, notes and query hashes from every ticket; return how many.

    Decisions and matched dataset entries stay (they are about the dataset, not the person),
    so a pending request still gets decided; nobody can tell who filed it any more. The log
    records that an erasure happened and how many tickets it touched, never whose.
    """
    requester = requester.strip()
    async with database.write() as db:
        now = database.now()
        cursor = await db.execute(
            "UPDATE tickets SET requester = NULL, note = NULL, query = NULL, erased_at = ?"
            " WHERE requester = ?",
            (now, requester),
        )
        count = cursor.rowcount
        await append_event(db, now, None, "forget", actor_kind="requester", detail={"tickets": count})
    await database.checkpoint()
    return count


async def purge_expired(database: TicketDatabase) -> int:
    """Retention: erase requester data from tickets closed more than ``retention_days`` ago."""
    cutoff = timestamp(database.clock() - timedelta(days=database.settings.retention_days))
    marks = ",".join("?" * len(CLOSED_STATES))
    async with database.write() as db:
        now = database.now()
        cursor = await db.execute(
            "UPDATE tickets SET requester = NULL, note = NULL, query = NULL, erased_at = ?"
            f" WHERE erased_at IS NULL AND state IN ({marks}) AND closed_at < ?"
            # a hash-list hit has no requester data to erase: not counted as erased
            " AND id NOT IN (SELECT ticket_id FROM ticket_list_hits)",
            (now, *sorted(CLOSED_STATES), cutoff),
        )
        count = cursor.rowcount
        await append_event(
            db, now, None, "purge", actor_kind="system",
            detail={"tickets": count, "closed_before": cutoff, "days": database.settings.retention_days},
        )  # fmt: skip
    await database.checkpoint()
    return count


async def export_requester(database: TicketDatabase, requester: str) -> dict[str, Any]:
    """Everything stored about a requester, for them to read (their right of access)."""
    tickets = await load_tickets(
        database.reader, "WHERE requester = ? ORDER BY created_at, id", (requester.strip(),)
    )
    events = [
        event.to_dict()
        for ticket in tickets
        for event in await audit_log(database.reader, ticket_id=ticket.id)
    ]
    return {
        "requester": requester.strip(),
        "exported_at": database.now(),
        "tickets": [ticket.to_dict() for ticket in tickets],
        "events": events,
        "note": "Pictures are never stored: a ticket holds the picture's hashes and the dataset "
        "entries it matched.",
    }
