"""The ticket store: the one object every front end (the command line, the Discord bot) holds.

Each job lives in a module of its own, and this class is only their front door, so that every
front end performs an action the same way and none reaches past it:

* :mod:`bot.tickets.database` — connections, durability, one writer at a time;
* :mod:`bot.tickets.filing` — a new request: refusals, duplicate linking, flagging;
* :mod:`bot.tickets.list_filing` — a partner hash list's hits, filed once, approved by policy;
* :mod:`bot.tickets.transitions` — claim, release, decide, reopen, withdraw, under the rules of
  :mod:`bot.tickets.lifecycle`;
* :mod:`bot.tickets.privacy` — erasure, retention, a requester's export;
* :mod:`bot.tickets.audit` — the append-only log;
* :mod:`bot.tickets.removal_list` — what approvals add up to;
* :mod:`bot.tickets.stats` — how the desk keeps up (waiting tickets, time to a decision).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, Unpack

from bot.config import TicketSettings
from bot.tickets import audit, filing, list_filing, privacy, removal_list, transitions
from bot.tickets.audit import AuditFilters
from bot.tickets.database import Clock, StoreBusyError, TicketDatabase
from bot.tickets.filing import AnyQuery, RequestDetails, RequestRefusedError
from bot.tickets.lifecycle import TicketAction, TicketState
from bot.tickets.list_filing import ListFilingReport, ListHitRequest
from bot.tickets.models import AuditEvent, MatchedEntry, RemovalRow, Ticket, TransitionResult
from bot.tickets.rows import TicketNotFoundError, covering, load_ticket, load_tickets
from bot.tickets.stats import RECENT_DAYS, TicketStats, ticket_stats

__all__ = ["RequestRefusedError", "StoreBusyError", "TicketNotFoundError", "TicketStore"]


class TicketStore:
    """Open with :meth:`open` (or ``async with await TicketStore.open(...)``); close when done."""

    def __init__(self, database: TicketDatabase) -> None:
        #: Borrowed by front ends for tables of their own (see :class:`bot.tickets.migrations.Schema`).
        self.database = database

    @classmethod
    async def open(cls, path: Path, settings: TicketSettings, clock: Clock | None = None) -> TicketStore:
        """Open (creating if needed) the database at ``path`` and bring its schema up to date."""
        return cls(await TicketDatabase.open(path, settings, clock))

    async def close(self) -> None:
        await self.database.close()

    async def __aenter__(self) -> TicketStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- reading -------------------------------------------------------------------------------

    async def get(self, ticket_id: str) -> Ticket:
        """The ticket with this id (typed by a person: case, dashes and look-alikes forgiven)."""
        return await load_ticket(self.database.reader, ticket_id)

    async def list_tickets(
        self,
        state: TicketState | None = None,
        requester: str | None = None,
        assignee: str | None = None,
        limit: int = 100,
        *,
        erased_at: str | None = None,
    ) -> list[Ticket]:
        """Tickets, oldest first (the review queue's order), filtered by any of the arguments
        (``erased_at``: the tickets one erasure or retention run touched, its event's ``at``)."""
        clauses, params = [], []
        filters = (
            ("state", state),
            ("requester", requester),
            ("assignee", assignee),
            ("erased_at", erased_at),
        )
        for column, value in filters:
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(str(value))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return await load_tickets(
            self.database.reader, f"{where} ORDER BY created_at, id LIMIT ?", [*params, int(limit)]
        )

    async def review_queue(self, limit: int = 100) -> list[Ticket]:
        """The tickets waiting for a maintainer (open, or claimed and not decided), oldest first."""
        return await load_tickets(
            self.database.reader,
            "WHERE state IN (?, ?) ORDER BY created_at, id LIMIT ?",
            [str(TicketState.OPEN), str(TicketState.CLAIMED), int(limit)],
        )

    async def stats(self, recent_days: int = RECENT_DAYS) -> TicketStats:
        """What waits and for how long, how long decisions take; see :mod:`bot.tickets.stats`."""
        return await ticket_stats(self.database.reader, self.database.clock(), recent_days)

    async def overlapping(self, ticket: Ticket) -> list[str]:
        """Other pending or approved tickets that share an entry with this one (for reviewers)."""
        ids: set[str] = set()
        for entry in ticket.entries:
            ids.update(await covering(self.database.reader, entry, exclude=ticket.id))
        return sorted(ids)

    # -- filing and deciding -------------------------------------------------------------------

    async def create_ticket(
        self,
        requester: str,
        query: AnyQuery,
        entries: Sequence[MatchedEntry],
        **details: Unpack[RequestDetails],
    ) -> Ticket:
        """File a removal request; see :func:`bot.tickets.filing.create_ticket`."""
        return await filing.create_ticket(self.database, requester, query, entries, **details)

    async def file_list_hits(
        self, requests: Sequence[ListHitRequest], auto_approve: Collection[str] = ()
    ) -> ListFilingReport:
        """File a partner hash list's hits; see :func:`bot.tickets.list_filing.file_list_hits`."""
        return await list_filing.file_list_hits(self.database, requests, auto_approve)

    async def act(
        self, ticket_id: str, action: TicketAction, by: str, reason: str | None = None
    ) -> TransitionResult:
        """A maintainer's action; see :func:`bot.tickets.transitions.act`."""
        return await transitions.act(self.database, ticket_id, action, by, reason)

    # The same actions by name (the tests and scripts read better so); front ends use :meth:`act`.
    async def claim(self, ticket_id: str, by: str) -> TransitionResult:
        """Take a ticket for review: the others see it is taken."""
        return await self.act(ticket_id, TicketAction.CLAIM, by)

    async def release(self, ticket_id: str, by: str) -> TransitionResult:
        """Give a claimed ticket back to the queue (only its assignee can)."""
        return await self.act(ticket_id, TicketAction.RELEASE, by)

    async def approve(self, ticket_id: str, by: str, reason: str) -> TransitionResult:
        """Decide to remove the ticket's entries; linked tickets are approved with it."""
        return await self.act(ticket_id, TicketAction.APPROVE, by, reason)

    async def reject(self, ticket_id: str, by: str, reason: str) -> TransitionResult:
        """Decide not to remove; the reason is told to the requester."""
        return await self.act(ticket_id, TicketAction.REJECT, by, reason)

    async def reopen(self, ticket_id: str, by: str, reason: str) -> TransitionResult:
        """Undo a decision (an appeal, a mistake): the ticket goes back to the queue."""
        return await self.act(ticket_id, TicketAction.REOPEN, by, reason)

    async def withdraw(self, ticket_id: str, requester: str) -> TransitionResult:
        """The requester takes back a request that is not decided yet."""
        return await transitions.withdraw(self.database, ticket_id, requester)

    # -- privacy -------------------------------------------------------------------------------

    async def forget(self, requester: str) -> int:
        """Erase a requester's data from every ticket; see :func:`bot.tickets.privacy.forget`."""
        return await privacy.forget(self.database, requester)

    async def purge_expired(self) -> int:
        """Retention: erase requester data from tickets closed more than ``retention_days`` ago."""
        return await privacy.purge_expired(self.database)

    async def export_requester(self, requester: str) -> dict[str, Any]:
        """Everything stored about a requester, for them to read (their right of access)."""
        return await privacy.export_requester(self.database, requester)

    # -- the audit log and the removal list ----------------------------------------------------

    async def audit_log(self, **filters: Unpack[AuditFilters]) -> list[AuditEvent]:
        """Events in the order they happened; see :func:`bot.tickets.audit.audit_log`."""
        return await audit.audit_log(self.database.reader, **filters)

    async def events_after(self, event_id: int, limit: int = 100) -> list[AuditEvent]:
        """Audit events with an id above ``event_id``, oldest first (for a relaying front end)."""
        return await audit.events_after(self.database.reader, event_id, limit)

    async def removal_list(self) -> tuple[int, list[RemovalRow]]:
        """The list version and every approved entry once; see :mod:`bot.tickets.removal_list`."""
        return await removal_list.removal_list(self.database.reader)

    async def removed_entries(self) -> frozenset[tuple[str, str]]:
        """(key, url or "") of every approved entry: what the index must no longer match."""
        return await removal_list.removed_entries(self.database.reader)
