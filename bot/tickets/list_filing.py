"""Filing a partner hash list's hits as tickets: no requester, the list named instead.

A hit ticket goes through the same review, audit log and removal list as a person's request. It
differs where a person's would make no sense:

* it has no requester, note or query (a list carries a hash, never a picture): the ticket names
  the list, the line and the hash that matched instead (``ticket_list_hits``);
* a list's hits are filed once: an entry already filed for the same hash of the same source (in
  any state, a rejection included) is not filed again, so importing and scanning a newer version
  of a list files only what it adds, and a maintainer's rejection stands;
* a configured policy (``[hash_lists] auto_approve``) may approve the hits of a named source at
  once: the approval is still an audit event, by the system, naming the policy and the source.

Like a person's request, a hit whose entries an earlier ticket already covers is linked to it (an
approved one decides it at once). All of a scan's hits are filed in one transaction: a scan is
filed whole or not at all.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import aiosqlite

from bot.tickets.audit import append_event
from bot.tickets.database import TicketDatabase
from bot.tickets.filing import covering_primary, insert_entries, unused_ticket_id
from bot.tickets.lifecycle import TicketState
from bot.tickets.models import ListOrigin, MatchedEntry, Ticket
from bot.tickets.removal_list import bump_removal_version, removal_version
from bot.tickets.rows import LIST_HIT_COLUMNS, load_ticket

LIST_SOURCE = "hash-list"  # tickets.source of a hit ticket
AUTO_APPROVE_POLICY = "hash_lists.auto_approve"  # the setting that approves a source's hits


@dataclass(frozen=True)
class ListHitRequest:
    """One list hash and the dataset entries it matched: one ticket, if any entry is new."""

    origin: ListOrigin
    entries: tuple[MatchedEntry, ...]


@dataclass
class ListFilingReport:
    """What filing a scan's hits did."""

    filed: list[Ticket] = field(default_factory=list)
    already_filed: int = 0  # (hash, entry) pairs a ticket of the same source already holds

    def count(self, state: TicketState) -> int:
        return sum(ticket.state is state for ticket in self.filed)

    @property
    def auto_approved(self) -> int:
        return sum(
            ticket.list_hit is not None and ticket.list_hit.policy is not None for ticket in self.filed
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "filed": len(self.filed),
            "open": self.count(TicketState.OPEN),
            "linked": self.count(TicketState.LINKED),
            "approved": self.count(TicketState.APPROVED),
            "auto_approved": self.auto_approved,
            "already_filed": self.already_filed,
            "tickets": [ticket.id for ticket in self.filed],
        }


async def file_list_hits(
    database: TicketDatabase, requests: Sequence[ListHitRequest], auto_approve: Collection[str] = ()
) -> ListFilingReport:
    """A ticket for each request with an entry not filed before for its hash; approved at once
    when its source is in ``auto_approve`` (or an approved ticket already covers its entries)."""
    report = ListFilingReport()
    async with database.write() as db:
        now = database.now()
        approval_version: int | None = None
        for request in requests:
            origin = request.origin
            unique = list({entry.identity: entry for entry in request.entries}.values())
            filed_before = await _filed_for_hash(db, origin)
            new = [entry for entry in unique if entry.identity not in filed_before]
            report.already_filed += len(unique) - len(new)
            if not new:
                continue
            primary = await covering_primary(db, new)
            policy = AUTO_APPROVE_POLICY if origin.source in auto_approve else None
            if primary is not None and primary.state is TicketState.APPROVED:
                policy = None  # decided already: the earlier approval answers it, no policy needed
            if policy is not None and approval_version is None:
                approval_version = await bump_removal_version(db)
            ticket_id = await unused_ticket_id(db)
            await _insert(
                db, database, ticket_id,
                origin=replace(origin, policy=policy), entries=new, primary=primary, now=now,
                approval_version=approval_version,
            )  # fmt: skip
            report.filed.append(await load_ticket(db, ticket_id))
    return report


async def _filed_for_hash(db: aiosqlite.Connection, origin: ListOrigin) -> set[tuple[str, str]]:
    """(key, url) of every entry a ticket of ``origin``'s source already holds for its hash."""
    async with db.execute(
        "SELECT e.key, COALESCE(e.url, '') FROM ticket_list_hits h"
        " JOIN ticket_entries e ON e.ticket_id = h.ticket_id"
        " WHERE h.source = ? AND h.signal_type = ? AND h.hash = ?",
        (origin.source, origin.signal_type, origin.hash),
    ) as cursor:
        return {(row[0], row[1]) for row in await cursor.fetchall()}


async def _insert(
    db: aiosqlite.Connection,
    database: TicketDatabase,
    ticket_id: str,
    *,
    origin: ListOrigin,
    entries: Sequence[MatchedEntry],
    primary: Ticket | None,
    now: str,
    approval_version: int | None,
) -> None:
    state, reason, closed_at, version = TicketState.OPEN, None, None, None
    decided_by = None
    if primary is not None and primary.state is TicketState.APPROVED:
        state, closed_at, version = TicketState.APPROVED, now, await removal_version(db)
        decided_by = primary.decided_by
        reason = f"Already removed with ticket {primary.id}: {primary.decision_reason}"
    elif origin.policy is not None:
        state, closed_at, version = TicketState.APPROVED, now, approval_version
        reason = (
            f"Approved automatically: the policy {origin.policy} approves every hit of the "
            f"{origin.source} list."
        )
    elif primary is not None:
        state = TicketState.LINKED
    linked_to = primary.id if primary is not None and origin.policy is None else None
    limit = database.settings.flag_matches_over
    flag_reason = (
        f"the list's hash matches {len(entries)} entries (more than {limit}): a widely copied picture,"
        " or a hash too general to trust; check before deciding"
        if len(entries) > limit
        else None
    )
    await db.execute(
        "INSERT INTO tickets (id, state, source, requester, note, query, decided_by, decision_reason,"
        " flagged, flag_reason, linked_to, removal_version, created_at, updated_at, closed_at)"
        " VALUES (?, ?, ?, NULL, NULL, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (ticket_id, str(state), LIST_SOURCE, decided_by, reason, int(flag_reason is not None),
         flag_reason, linked_to, version, now, now, closed_at),
    )  # fmt: skip
    await db.execute(
        f"INSERT INTO ticket_list_hits (ticket_id, {LIST_HIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (ticket_id, origin.source, origin.list_id, origin.line, origin.list_entry_id, origin.category,
         origin.signal_type, origin.hash, origin.policy),
    )  # fmt: skip
    await insert_entries(db, ticket_id, entries)
    detail: dict[str, Any] = {
        "entries": len(entries), "source": LIST_SOURCE, "list_source": origin.source,
        "list": origin.list_id, "line": origin.line,
    }  # fmt: skip
    if linked_to is not None:
        detail["linked_to"] = linked_to
    if flag_reason is not None:
        detail["flagged"] = flag_reason
    created_as = TicketState.OPEN if origin.policy is not None else state
    await append_event(
        db, now, ticket_id, "create", actor_kind="system", to_state=str(created_as), detail=detail
    )
    if origin.policy is not None:
        await append_event(
            db, now, ticket_id, "approve",
            actor_kind="system", from_state=str(TicketState.OPEN), to_state=str(TicketState.APPROVED),
            reason=reason, detail={"policy": origin.policy, "list_source": origin.source},
        )  # fmt: skip
