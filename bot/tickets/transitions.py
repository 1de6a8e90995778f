"""Moving tickets through the lifecycle: the table in :mod:`bot.tickets.lifecycle` says what may
happen and who may do it; this module does it, in one transaction with its audit event, and
carries the decision to the tickets linked to the one decided."""

from __future__ import annotations

import aiosqlite

from bot.tickets.audit import append_event
from bot.tickets.database import TicketDatabase
from bot.tickets.lifecycle import (
    MAINTAINER_ACTIONS,
    NEEDS_REASON,
    NotYoursError,
    TicketAction,
    TicketError,
    TicketState,
    check_action,
    next_state,
)
from bot.tickets.models import Ticket, TransitionResult
from bot.tickets.removal_list import bump_removal_version
from bot.tickets.rows import load_ticket, load_tickets


async def act(
    database: TicketDatabase, ticket_id: str, action: TicketAction, by: str, reason: str | None = None
) -> TransitionResult:
    """A maintainer's action on a ticket: the one way every front end performs one. Claim and
    release take no reason; approve, reject and reopen need one (the audit log keeps it, the
    requester is told a decision's)."""
    if action not in MAINTAINER_ACTIONS:
        raise TicketError(f"{action} is not something a maintainer does to a ticket.")
    if action in NEEDS_REASON:
        what = "reopening" if action is TicketAction.REOPEN else "decision"
        return await _transition(database, ticket_id, action, by, _clean_reason(reason, what))
    return await _transition(database, ticket_id, action, by, None)


def _clean_reason(reason: str | None, what: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise TicketError(f"A {what} needs a reason: it goes into the audit log and to the requester.")
    return text


async def withdraw(database: TicketDatabase, ticket_id: str, requester: str) -> TransitionResult:
    """The requester takes back a request that is not decided yet."""
    async with database.write() as db:
        ticket = await load_ticket(db, ticket_id)
        if ticket.requester is None or ticket.requester != requester.strip():
            raise NotYoursError(
                f"Ticket {ticket.id} was not filed by you, so you cannot withdraw it."
            ).translatable("not_yours", id=ticket.id)
        new_state = next_state(ticket.id, ticket.state, TicketAction.WITHDRAW)
        now = database.now()
        await db.execute(
            "UPDATE tickets SET state = ?, assignee = NULL, linked_to = NULL, updated_at = ?,"
            " closed_at = ? WHERE id = ?",
            (str(new_state), now, now, ticket.id),
        )
        await append_event(
            db, now, ticket.id, "withdraw",
            actor_kind="requester", from_state=str(ticket.state), to_state=str(new_state),
        )  # fmt: skip
        also = [] if ticket.state is TicketState.LINKED else await _promote_linked(db, ticket, now)
        return TransitionResult(await load_ticket(db, ticket.id), tuple(also))


async def _transition(
    database: TicketDatabase, ticket_id: str, action: TicketAction, by: str, reason: str | None
) -> TransitionResult:
    by = by.strip()
    if not by:
        raise TicketError("Say which maintainer is acting (their id or name).")
    async with database.write() as db:
        ticket = await load_ticket(db, ticket_id)
        new_state = check_action(ticket, action, by)
        now = database.now()
        also: list[Ticket] = []
        await append_event(
            db, now, ticket.id, str(action),
            actor_kind="maintainer", actor=by, from_state=str(ticket.state), to_state=str(new_state),
            reason=reason,
        )  # fmt: skip
        if action is TicketAction.CLAIM:
            await db.execute(
                "UPDATE tickets SET state = ?, assignee = ?, updated_at = ? WHERE id = ?",
                (str(new_state), by, now, ticket.id),
            )
        elif action is TicketAction.RELEASE:
            await db.execute(
                "UPDATE tickets SET state = ?, assignee = NULL, updated_at = ? WHERE id = ?",
                (str(new_state), now, ticket.id),
            )
        elif action in {TicketAction.APPROVE, TicketAction.REJECT}:
            version = await bump_removal_version(db) if action is TicketAction.APPROVE else None
            await db.execute(
                "UPDATE tickets SET state = ?, assignee = ?, decided_by = ?, decision_reason = ?,"
                " removal_version = ?, updated_at = ?, closed_at = ? WHERE id = ?",
                (str(new_state), by, by, reason, version, now, now, ticket.id),
            )
            also = await _decide_linked(db, ticket, new_state, by=by, reason=reason, version=version, now=now)
        else:  # reopen
            if ticket.state is TicketState.APPROVED:
                await bump_removal_version(db)
            await db.execute(
                # A reopened follower becomes a ticket of its own: it is reviewed on its own.
                "UPDATE tickets SET state = ?, assignee = NULL, decided_by = NULL,"
                " decision_reason = NULL, removal_version = NULL, linked_to = NULL, updated_at = ?,"
                " closed_at = NULL WHERE id = ?",
                (str(new_state), now, ticket.id),
            )
            also = await _relink(db, ticket, now, by)
        return TransitionResult(await load_ticket(db, ticket.id), tuple(also))


async def _linked_to(db: aiosqlite.Connection, primary_id: str, state: TicketState) -> list[Ticket]:
    return await load_tickets(
        db, "WHERE linked_to = ? AND state = ? ORDER BY created_at, id", (primary_id, str(state))
    )


async def _decide_linked(
    db: aiosqlite.Connection,
    primary: Ticket,
    state: TicketState,
    *,
    by: str,
    reason: str | None,
    version: int | None,
    now: str,
) -> list[Ticket]:
    """Tickets linked to ``primary`` take its decision, each logged as such."""
    linked = await _linked_to(db, primary.id, TicketState.LINKED)
    linked_reason = f"Decided with ticket {primary.id}: {reason}"
    for ticket in linked:
        await db.execute(
            "UPDATE tickets SET state = ?, decided_by = ?, decision_reason = ?, removal_version = ?,"
            " updated_at = ?, closed_at = ? WHERE id = ?",
            (str(state), by, linked_reason, version, now, now, ticket.id),
        )
        action = "approve" if state is TicketState.APPROVED else "reject"
        await append_event(
            db, now, ticket.id, action,
            actor_kind="maintainer", actor=by, from_state="linked", to_state=str(state),
            reason=linked_reason, detail={"with": primary.id},
        )  # fmt: skip
    return [await load_ticket(db, ticket.id) for ticket in linked]


async def _relink(db: aiosqlite.Connection, primary: Ticket, now: str, by: str) -> list[Ticket]:
    """When a decision is undone, the tickets that took it wait with their primary again."""
    followers = await _linked_to(db, primary.id, primary.state)
    for ticket in followers:
        await db.execute(
            "UPDATE tickets SET state = 'linked', decided_by = NULL, decision_reason = NULL,"
            " removal_version = NULL, updated_at = ?, closed_at = NULL WHERE id = ?",
            (now, ticket.id),
        )
        await append_event(
            db, now, ticket.id, "reopen",
            actor_kind="maintainer", actor=by, from_state=str(primary.state), to_state="linked",
            detail={"with": primary.id},
        )  # fmt: skip
    return [await load_ticket(db, ticket.id) for ticket in followers]


async def _promote_linked(db: aiosqlite.Connection, primary: Ticket, now: str) -> list[Ticket]:
    """A withdrawn primary hands its work to the oldest ticket linked to it."""
    waiting = await _linked_to(db, primary.id, TicketState.LINKED)
    if not waiting:
        return []
    heir, *rest = waiting
    await db.execute(
        "UPDATE tickets SET state = 'open', linked_to = NULL, updated_at = ? WHERE id = ?", (now, heir.id)
    )
    await append_event(
        db, now, heir.id, "promote",
        actor_kind="system", from_state="linked", to_state="open", detail={"was_linked_to": primary.id},
    )  # fmt: skip
    for ticket in rest:
        await db.execute(
            "UPDATE tickets SET linked_to = ?, updated_at = ? WHERE id = ?", (heir.id, now, ticket.id)
        )
        await append_event(
            db, now, ticket.id, "relink",
            actor_kind="system", from_state="linked", to_state="linked",
            detail={"from": primary.id, "to": heir.id},
        )  # fmt: skip
    return [await load_ticket(db, ticket.id) for ticket in waiting]
