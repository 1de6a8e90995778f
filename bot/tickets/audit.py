"""The audit log: every action appended as it happens, read back filtered; never changed.

Requester ids never enter the log (a CHECK in the schema makes that a database rule), so erasing
a requester never needs to touch it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, TypedDict, Unpack

import aiosqlite

from bot.tickets.database import timestamp
from bot.tickets.ids import normalise_ticket_id
from bot.tickets.lifecycle import TicketError
from bot.tickets.models import AuditEvent


async def append_event(
    db: aiosqlite.Connection,
    at: str,
    ticket_id: str | None,
    action: str,
    *,
    actor_kind: str,
    actor: str | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Log one action inside the transaction that performs it: both land, or neither."""
    await db.execute(
        "INSERT INTO audit_events (at, ticket_id, actor_kind, actor, action, from_state, to_state,"
        " reason, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            at,
            ticket_id,
            actor_kind,
            actor,
            action,
            from_state,
            to_state,
            reason,
            json.dumps(detail or {}, sort_keys=True),
        ),
    )


def _bound(typed: str) -> str:
    """A date or timestamp as typed (``2026-11-01``, ``...T12:00Z``, ``+02:00``) in the stored
    form, so that comparing strings compares instants. No zone means UTC."""
    try:
        moment = datetime.fromisoformat(typed.strip())
    except ValueError as exc:
        raise TicketError(
            f"{typed!r} is not a date or timestamp (like 2026-11-01 or 2026-11-01T12:00Z)"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return timestamp(moment)


class AuditFilters(TypedDict, total=False):
    """What :func:`audit_log` can filter by; every front end passes these on unchanged."""

    ticket_id: str | None
    actor: str | None
    since: str | None
    until: str | None
    action: str | None
    limit: int | None


async def audit_log(db: aiosqlite.Connection, **filters: Unpack[AuditFilters]) -> list[AuditEvent]:
    """Events in the order they happened, filtered by ticket, maintainer, time or action.

    ``since``/``until`` are ISO dates or timestamps (UTC); ``until`` is exclusive, and a bare
    date means the start of that day; ``limit`` keeps the most recent events.
    """
    ticket_id, actor, action = filters.get("ticket_id"), filters.get("actor"), filters.get("action")
    since, until, limit = filters.get("since"), filters.get("until"), filters.get("limit")
    clauses: list[str] = []
    params: list[str | int] = []
    if ticket_id is not None:
        clauses.append("ticket_id = ?")
        params.append(normalise_ticket_id(ticket_id))
    if actor is not None:
        clauses.append("actor = ?")
        params.append(actor.strip())
    if since is not None:
        clauses.append("at >= ?")
        params.append(_bound(since))
    if until is not None:
        clauses.append("at < ?")
        params.append(_bound(until))
    if action is not None:
        clauses.append("action = ?")
        params.append(action)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    if limit is not None:  # the most recent ``limit`` events, still oldest first
        where = f"WHERE id IN (SELECT id FROM audit_events {where} ORDER BY id DESC LIMIT ?)"
        params.append(int(limit))
    return await _events(db, f"{where} ORDER BY id", params)


async def events_after(db: aiosqlite.Connection, event_id: int, limit: int = 100) -> list[AuditEvent]:
    """Audit events with an id above ``event_id``, oldest first: what a relaying front end has
    not seen yet."""
    return await _events(db, "WHERE id > ? ORDER BY id LIMIT ?", [int(event_id), int(limit)])


async def _events(db: aiosqlite.Connection, where: str, params: list[str | int]) -> list[AuditEvent]:
    async with db.execute(f"SELECT * FROM audit_events {where}", params) as cursor:
        rows = [dict(row) for row in await cursor.fetchall()]
    return [AuditEvent(**{**row, "detail": json.loads(row["detail"])}) for row in rows]
