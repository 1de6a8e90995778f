"""The ticket store: SQLite through aiosqlite, durable, one writer, every action audited.

Durability and concurrency choices, and why:

* WAL journal with ``synchronous=FULL``: a write acknowledged to a person survives a crash of the
  process or of the machine; readers never block the writer.
* One writer connection, and inside this process one write at a time (an ``asyncio.Lock``):
  aiosqlite runs a connection's statements on one thread, so two coroutines sharing it would mix
  their transactions. Reads use a second, read-only connection and see only committed data.
* Every read-modify-write runs in ``BEGIN IMMEDIATE``: the write lock is taken before the state is
  read, so of two maintainers (or two processes: the bot and the command line) deciding the same
  ticket at once exactly one wins and the other sees the decision and is told.
* ``secure_delete`` and a WAL checkpoint after erasure: an erased requester id does not linger in
  free pages or in the write-ahead log.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite

from bot.config import TicketSettings
from bot.hashing import QueryHashes
from bot.tickets.ids import looks_like_ticket_id, new_ticket_id, normalise_ticket_id
from bot.tickets.lifecycle import (
    CLOSED_STATES,
    MAINTAINER_ACTIONS,
    NEEDS_REASON,
    PENDING_STATES,
    NotYoursError,
    TicketAction,
    TicketError,
    TicketState,
    check_action,
    next_state,
)
from bot.tickets.migrations import migrate
from bot.tickets.models import AuditEvent, MatchedEntry, RemovalRow, StoredQuery, Ticket, TransitionResult

Clock = Callable[[], datetime]


class TicketNotFoundError(TicketError):
    def __init__(self, ticket_id: str) -> None:
        super().__init__(f"There is no ticket {ticket_id}.")


class RequestRefusedError(TicketError):
    """A new ticket was not created: over the limit, nothing to remove, or already requested."""


class StoreBusyError(TicketError):
    def __init__(self) -> None:
        super().__init__("The ticket database is busy right now; please try again in a moment.")


def _timestamp(moment: datetime) -> str:
    """UTC, fixed width: timestamps sort and compare as strings."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
    return _timestamp(moment)


def _clean_reason(reason: str | None, what: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise TicketError(f"A {what} needs a reason: it goes into the audit log and to the requester.")
    return text


_TICKET_COLUMNS = (
    "id, state, source, requester, note, query, assignee, decided_by, decision_reason, flagged, "
    "flag_reason, linked_to, created_at, updated_at, closed_at, erased_at"
)
_ENTRY_COLUMNS = "key, url, caption, entry_id, phash, pdq, quality, pdq_distance, phash_distance, variant"


class TicketStore:
    """Open with :meth:`open` (or ``async with await TicketStore.open(...)``); close when done."""

    def __init__(
        self,
        writer: aiosqlite.Connection,
        reader: aiosqlite.Connection,
        settings: TicketSettings,
        clock: Clock,
    ) -> None:
        self._writer = writer
        self._reader = reader
        self._settings = settings
        self._clock = clock
        self._write_lock = asyncio.Lock()

    # -- opening and closing -------------------------------------------------------------------

    @classmethod
    async def open(cls, path: Path, settings: TicketSettings, clock: Clock | None = None) -> TicketStore:
        """Open (creating if needed) the database at ``path`` and bring its schema up to date."""
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = await aiosqlite.connect(path, isolation_level=None)
        try:
            await cls._configure(writer, settings)
            await writer.execute("PRAGMA journal_mode = WAL")
            await migrate(writer)
            reader = await aiosqlite.connect(path, isolation_level=None)
            await cls._configure(reader, settings)
            await reader.execute("PRAGMA query_only = ON")
        except BaseException:
            await writer.close()
            raise
        return cls(writer, reader, settings, clock or (lambda: datetime.now(UTC)))

    @staticmethod
    async def _configure(db: aiosqlite.Connection, settings: TicketSettings) -> None:
        db.row_factory = sqlite3.Row
        await db.execute(f"PRAGMA busy_timeout = {int(settings.busy_timeout_ms):d}")
        await db.execute("PRAGMA synchronous = FULL")
        await db.execute("PRAGMA foreign_keys = ON")
        await db.execute("PRAGMA secure_delete = ON")

    async def close(self) -> None:
        await self._reader.close()
        await self._writer.close()

    async def __aenter__(self) -> TicketStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- transactions --------------------------------------------------------------------------

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One read-modify-write transaction holding SQLite's write lock from its first read."""
        async with self._write_lock:
            try:
                await self._writer.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise StoreBusyError() from exc
                raise
            try:
                yield self._writer
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            await self._writer.execute("COMMIT")

    def _now(self) -> str:
        return _timestamp(self._clock())

    @staticmethod
    async def _log(
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

    # -- reading -------------------------------------------------------------------------------

    @staticmethod
    async def _entries(db: aiosqlite.Connection, ticket_ids: Sequence[str]) -> dict[str, list[MatchedEntry]]:
        found: dict[str, list[MatchedEntry]] = {ticket_id: [] for ticket_id in ticket_ids}
        if not ticket_ids:
            return found
        marks = ",".join("?" * len(ticket_ids))
        async with db.execute(
            f"SELECT ticket_id, {_ENTRY_COLUMNS} FROM ticket_entries WHERE ticket_id IN ({marks})"
            " ORDER BY ticket_id, position",
            tuple(ticket_ids),
        ) as cursor:
            async for row in cursor:
                values = dict(row)
                ticket_id = values.pop("ticket_id")
                found[ticket_id].append(MatchedEntry(**values))
        return found

    async def _tickets(self, db: aiosqlite.Connection, where: str, params: Iterable[Any]) -> list[Ticket]:
        async with db.execute(f"SELECT {_TICKET_COLUMNS} FROM tickets {where}", tuple(params)) as cursor:
            rows = [dict(row) for row in await cursor.fetchall()]
        entries = await self._entries(db, [row["id"] for row in rows])
        return [self._ticket(row, entries[row["id"]]) for row in rows]

    @staticmethod
    def _ticket(row: dict[str, Any], entries: list[MatchedEntry]) -> Ticket:
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
        )

    async def _get(self, db: aiosqlite.Connection, ticket_id: str) -> Ticket:
        canonical = normalise_ticket_id(ticket_id)
        tickets = []
        if looks_like_ticket_id(ticket_id):
            tickets = await self._tickets(db, "WHERE id = ?", (canonical,))
        if not tickets:
            raise TicketNotFoundError(ticket_id.strip())
        return tickets[0]

    async def get(self, ticket_id: str) -> Ticket:
        """The ticket with this id (typed by a person: case, dashes and look-alikes forgiven)."""
        return await self._get(self._reader, ticket_id)

    async def list_tickets(
        self,
        state: TicketState | None = None,
        requester: str | None = None,
        assignee: str | None = None,
        limit: int = 100,
    ) -> list[Ticket]:
        """Tickets, oldest first (the review queue's order), filtered by any of the arguments."""
        clauses, params = [], []
        for column, value in (("state", state), ("requester", requester), ("assignee", assignee)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(str(value))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return await self._tickets(
            self._reader, f"{where} ORDER BY created_at, id LIMIT ?", [*params, int(limit)]
        )

    async def review_queue(self, limit: int = 100) -> list[Ticket]:
        """The tickets waiting for a maintainer (open, or claimed and not decided), oldest first."""
        return await self._tickets(
            self._reader,
            "WHERE state IN (?, ?) ORDER BY created_at, id LIMIT ?",
            [str(TicketState.OPEN), str(TicketState.CLAIMED), int(limit)],
        )

    async def overlapping(self, ticket: Ticket) -> list[str]:
        """Other pending or approved tickets that share an entry with this one (for reviewers)."""
        ids: set[str] = set()
        for entry in ticket.entries:
            ids.update(await self._covering(self._reader, entry, exclude=ticket.id))
        return sorted(ids)

    @staticmethod
    async def _covering(
        db: aiosqlite.Connection, entry: MatchedEntry, exclude: str | None = None
    ) -> list[str]:
        """Tickets in open, claimed or approved state that cover ``entry``, oldest first."""
        async with db.execute(
            "SELECT t.id FROM ticket_entries e JOIN tickets t ON t.id = e.ticket_id"
            " WHERE e.key = ? AND COALESCE(e.url, '') = ? AND t.state IN ('open', 'claimed', 'approved')"
            " AND t.id != ? ORDER BY t.created_at, t.id",
            (entry.key, entry.url or "", exclude or ""),
        ) as cursor:
            return [row[0] for row in await cursor.fetchall()]

    # -- creating ------------------------------------------------------------------------------

    async def create_ticket(
        self,
        requester: str,
        query: QueryHashes | StoredQuery,
        entries: Sequence[MatchedEntry],
        note: str | None = None,
        source: str = "cli",
    ) -> Ticket:
        """File a removal request for ``entries``; it may come back linked to an existing ticket.

        Refused (:class:`RequestRefusedError`) when nothing matched, when the requester already
        has too many pending tickets, or already asked for exactly these entries.
        """
        requester = requester.strip()
        if not requester:
            raise RequestRefusedError("A ticket needs a requester id, so the requester can follow it.")
        if not entries:
            raise RequestRefusedError("No dataset entry matched, so there is nothing to remove.")
        note = (note or "").strip() or None
        if note is not None and len(note) > self._settings.max_note_chars:
            raise RequestRefusedError(
                f"The note is {len(note)} characters long; at most {self._settings.max_note_chars} fit."
            )
        stored = (
            query
            if isinstance(query, StoredQuery)
            else StoredQuery.from_hashes(query, {entry.variant for entry in entries})
        )
        unique = list({entry.identity: entry for entry in entries}.values())
        async with self._write() as db:
            await self._check_limit(db, requester)
            primary = await self._primary_for(db, unique, requester)
            now = self._now()
            ticket_id = await self._unused_id(db)
            state, decided_by, reason, closed_at = TicketState.OPEN, None, None, None
            if primary is not None and primary.state is TicketState.APPROVED:
                state, decided_by, closed_at = TicketState.APPROVED, primary.decided_by, now
                reason = f"Already removed with ticket {primary.id}: {primary.decision_reason}"
            elif primary is not None:
                state = TicketState.LINKED
            flagged = len(unique) > self._settings.flag_matches_over
            flag_reason = (
                f"matches {len(unique)} entries (more than {self._settings.flag_matches_over}):"
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
                    await self._removal_version(db) if state is TicketState.APPROVED else None,
                    now,
                    now,
                    closed_at,
                ),
            )
            await db.executemany(
                f"INSERT INTO ticket_entries (ticket_id, position, {_ENTRY_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        ticket_id,
                        position,
                        entry.key,
                        entry.url,
                        entry.caption,
                        entry.entry_id,
                        entry.phash,
                        entry.pdq,
                        entry.quality,
                        entry.pdq_distance,
                        entry.phash_distance,
                        entry.variant,
                    )
                    for position, entry in enumerate(unique)
                ],
            )
            detail: dict[str, Any] = {"entries": len(unique), "source": source}
            if primary is not None:
                detail["linked_to"] = primary.id
            if flagged:
                detail["flagged"] = flag_reason
            await self._log(
                db, now, ticket_id, "create", actor_kind="requester", to_state=str(state), detail=detail
            )
            return await self._get(db, ticket_id)

    async def _check_limit(self, db: aiosqlite.Connection, requester: str) -> None:
        limit = self._settings.max_open_per_requester
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
            )

    async def _primary_for(
        self, db: aiosqlite.Connection, entries: Sequence[MatchedEntry], requester: str
    ) -> Ticket | None:
        """The oldest open, claimed or approved ticket covering every one of ``entries``, if any."""
        await self._refuse_repeat(db, entries, requester)
        common: set[str] | None = None
        order: dict[str, int] = {}
        for entry in entries:
            covering = await self._covering(db, entry)
            for position, ticket_id in enumerate(covering):
                order.setdefault(ticket_id, position)
            common = set(covering) if common is None else common & set(covering)
            if not common:
                return None
        assert common is not None
        candidates = await self._tickets(
            db, f"WHERE id IN ({','.join('?' * len(common))}) ORDER BY created_at, id", sorted(common)
        )
        return candidates[0] if candidates else None

    async def _refuse_repeat(
        self, db: aiosqlite.Connection, entries: Sequence[MatchedEntry], requester: str
    ) -> None:
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
            ticket = (await self._tickets(db, "WHERE id = ?", (min(mine),)))[0]
            raise RequestRefusedError(
                f"You already asked for these entries to be removed: ticket {ticket.id} is {ticket.state}."
            )

    async def _unused_id(self, db: aiosqlite.Connection) -> str:
        while True:
            candidate = new_ticket_id()
            async with db.execute("SELECT 1 FROM tickets WHERE id = ?", (candidate,)) as cursor:
                if await cursor.fetchone() is None:
                    return candidate

    @staticmethod
    async def _removal_version(db: aiosqlite.Connection) -> int:
        async with db.execute("SELECT value FROM counters WHERE name = 'removal_list_version'") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    async def _bump_removal_version(db: aiosqlite.Connection) -> int:
        await db.execute("UPDATE counters SET value = value + 1 WHERE name = 'removal_list_version'")
        return await TicketStore._removal_version(db)

    # -- the lifecycle -------------------------------------------------------------------------

    async def act(
        self, ticket_id: str, action: TicketAction, by: str, reason: str | None = None
    ) -> TransitionResult:
        """A maintainer's action on a ticket: the one way every front end performs one. Claim and
        release take no reason; approve, reject and reopen need one (the audit log keeps it, the
        requester is told a decision's)."""
        if action not in MAINTAINER_ACTIONS:
            raise TicketError(f"{action} is not something a maintainer does to a ticket.")
        if action in NEEDS_REASON:
            what = "reopening" if action is TicketAction.REOPEN else "decision"
            return await self._transition(ticket_id, action, by, _clean_reason(reason, what))
        return await self._transition(ticket_id, action, by, None)

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
        async with self._write() as db:
            ticket = await self._get(db, ticket_id)
            if ticket.requester is None or ticket.requester != requester.strip():
                raise NotYoursError(f"Ticket {ticket.id} was not filed by you, so you cannot withdraw it.")
            new_state = next_state(ticket.id, ticket.state, TicketAction.WITHDRAW)
            now = self._now()
            await db.execute(
                "UPDATE tickets SET state = ?, assignee = NULL, linked_to = NULL, updated_at = ?,"
                " closed_at = ? WHERE id = ?",
                (str(new_state), now, now, ticket.id),
            )
            await self._log(
                db, now, ticket.id, "withdraw",
                actor_kind="requester", from_state=str(ticket.state), to_state=str(new_state),
            )  # fmt: skip
            also = [] if ticket.state is TicketState.LINKED else await self._promote_linked(db, ticket, now)
            return TransitionResult(await self._get(db, ticket.id), tuple(also))

    async def _transition(
        self, ticket_id: str, action: TicketAction, by: str, reason: str | None
    ) -> TransitionResult:
        by = by.strip()
        if not by:
            raise TicketError("Say which maintainer is acting (their id or name).")
        async with self._write() as db:
            ticket = await self._get(db, ticket_id)
            new_state = check_action(ticket, action, by)
            now = self._now()
            also: list[Ticket] = []
            await self._log(
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
                version = await self._bump_removal_version(db) if action is TicketAction.APPROVE else None
                await db.execute(
                    "UPDATE tickets SET state = ?, assignee = ?, decided_by = ?, decision_reason = ?,"
                    " removal_version = ?, updated_at = ?, closed_at = ? WHERE id = ?",
                    (str(new_state), by, by, reason, version, now, now, ticket.id),
                )
                also = await self._decide_linked(
                    db, ticket, new_state, by=by, reason=reason, version=version, now=now
                )
            else:  # reopen
                if ticket.state is TicketState.APPROVED:
                    await self._bump_removal_version(db)
                await db.execute(
                    # A reopened follower becomes a ticket of its own: it is reviewed on its own.
                    "UPDATE tickets SET state = ?, assignee = NULL, decided_by = NULL,"
                    " decision_reason = NULL, removal_version = NULL, linked_to = NULL, updated_at = ?,"
                    " closed_at = NULL WHERE id = ?",
                    (str(new_state), now, ticket.id),
                )
                also = await self._relink(db, ticket, now, by)
            return TransitionResult(await self._get(db, ticket.id), tuple(also))

    async def _linked_to(self, db: aiosqlite.Connection, primary_id: str, state: TicketState) -> list[Ticket]:
        return await self._tickets(
            db, "WHERE linked_to = ? AND state = ? ORDER BY created_at, id", (primary_id, str(state))
        )

    async def _decide_linked(
        self,
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
        linked = await self._linked_to(db, primary.id, TicketState.LINKED)
        linked_reason = f"Decided with ticket {primary.id}: {reason}"
        for ticket in linked:
            await db.execute(
                "UPDATE tickets SET state = ?, decided_by = ?, decision_reason = ?, removal_version = ?,"
                " updated_at = ?, closed_at = ? WHERE id = ?",
                (str(state), by, linked_reason, version, now, now, ticket.id),
            )
            action = "approve" if state is TicketState.APPROVED else "reject"
            await self._log(
                db, now, ticket.id, action,
                actor_kind="maintainer", actor=by, from_state="linked", to_state=str(state),
                reason=linked_reason, detail={"with": primary.id},
            )  # fmt: skip
        return [await self._get(db, ticket.id) for ticket in linked]

    async def _relink(self, db: aiosqlite.Connection, primary: Ticket, now: str, by: str) -> list[Ticket]:
        """When a decision is undone, the tickets that took it wait with their primary again."""
        followers = await self._linked_to(db, primary.id, primary.state)
        for ticket in followers:
            await db.execute(
                "UPDATE tickets SET state = 'linked', decided_by = NULL, decision_reason = NULL,"
                " removal_version = NULL, updated_at = ?, closed_at = NULL WHERE id = ?",
                (now, ticket.id),
            )
            await self._log(
                db, now, ticket.id, "reopen",
                actor_kind="maintainer", actor=by, from_state=str(primary.state), to_state="linked",
                detail={"with": primary.id},
            )  # fmt: skip
        return [await self._get(db, ticket.id) for ticket in followers]

    async def _promote_linked(self, db: aiosqlite.Connection, primary: Ticket, now: str) -> list[Ticket]:
        """A withdrawn primary hands its work to the oldest ticket linked to it."""
        waiting = await self._linked_to(db, primary.id, TicketState.LINKED)
        if not waiting:
            return []
        heir, *rest = waiting
        await db.execute(
            "UPDATE tickets SET state = 'open', linked_to = NULL, updated_at = ? WHERE id = ?", (now, heir.id)
        )
        await self._log(
            db, now, heir.id, "promote",
            actor_kind="system", from_state="linked", to_state="open", detail={"was_linked_to": primary.id},
        )  # fmt: skip
        for ticket in rest:
            await db.execute(
                "UPDATE tickets SET linked_to = ?, updated_at = ? WHERE id = ?", (heir.id, now, ticket.id)
            )
            await self._log(
                db, now, ticket.id, "relink",
                actor_kind="system", from_state="linked", to_state="linked",
                detail={"from": primary.id, "to": heir.id},
            )  # fmt: skip
        return [await self._get(db, ticket.id) for ticket in waiting]

    # -- privacy -------------------------------------------------------------------------------

    async def forget(self, requester: str) -> int:
        """Erase a requester's id, notes and query hashes from every ticket; return how many.

        Decisions and matched dataset entries stay (they are about the dataset, not the person),
        so a pending request still gets decided; nobody can tell who filed it any more. The log
        records that an erasure happened and how many tickets it touched, never whose.
        """
        requester = requester.strip()
        async with self._write() as db:
            now = self._now()
            cursor = await db.execute(
                "UPDATE tickets SET requester = NULL, note = NULL, query = NULL, erased_at = ?"
                " WHERE requester = ?",
                (now, requester),
            )
            count = cursor.rowcount
            await self._log(db, now, None, "forget", actor_kind="requester", detail={"tickets": count})
        await self._checkpoint()
        return count

    async def purge_expired(self) -> int:
        """Retention: erase requester data from tickets closed more than ``retention_days`` ago."""
        cutoff = _timestamp(self._clock() - timedelta(days=self._settings.retention_days))
        marks = ",".join("?" * len(CLOSED_STATES))
        async with self._write() as db:
            now = self._now()
            cursor = await db.execute(
                "UPDATE tickets SET requester = NULL, note = NULL, query = NULL, erased_at = ?"
                f" WHERE erased_at IS NULL AND state IN ({marks}) AND closed_at < ?",
                (now, *sorted(CLOSED_STATES), cutoff),
            )
            count = cursor.rowcount
            await self._log(
                db, now, None, "purge", actor_kind="system",
                detail={"tickets": count, "closed_before": cutoff, "days": self._settings.retention_days},
            )  # fmt: skip
        await self._checkpoint()
        return count

    async def _checkpoint(self) -> None:
        """Fold the WAL into the database and truncate it, so erased values leave the disk."""
        async with self._write_lock:
            await self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def export_requester(self, requester: str) -> dict[str, Any]:
        """Everything stored about a requester, for them to read (their right of access)."""
        tickets = await self._tickets(
            self._reader, "WHERE requester = ? ORDER BY created_at, id", (requester.strip(),)
        )
        events = [
            event.to_dict() for ticket in tickets for event in await self.audit_log(ticket_id=ticket.id)
        ]
        return {
            "requester": requester.strip(),
            "exported_at": self._now(),
            "tickets": [ticket.to_dict() for ticket in tickets],
            "events": events,
            "note": "Pictures are never stored: a ticket holds the picture's hashes and the dataset "
            "entries it matched.",
        }

    # -- the audit log -------------------------------------------------------------------------

    async def audit_log(
        self,
        *,
        ticket_id: str | None = None,
        actor: str | None = None,
        since: str | None = None,
        until: str | None = None,
        action: str | None = None,
        limit: int | None = None,
    ) -> list[AuditEvent]:
        """Events in the order they happened, filtered by ticket, maintainer, time or action.

        ``since``/``until`` are ISO dates or timestamps (UTC); ``until`` is exclusive, and a bare
        date means the start of that day.
        """
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
        order = "ORDER BY id"
        if limit is not None:  # the most recent ``limit`` events, still oldest first
            where = f"WHERE id IN (SELECT id FROM audit_events {where} ORDER BY id DESC LIMIT ?)"
            params.append(int(limit))
        async with self._reader.execute(f"SELECT * FROM audit_events {where} {order}", params) as cursor:
            rows = [dict(row) for row in await cursor.fetchall()]
        return [AuditEvent(**{**row, "detail": json.loads(row["detail"])}) for row in rows]

    # -- for front ends that relay the log (the Discord bot) ------------------------------------

    async def events_after(self, event_id: int, limit: int = 100) -> list[AuditEvent]:
        """Audit events with an id above ``event_id``, oldest first."""
        async with self._reader.execute(
            "SELECT * FROM audit_events WHERE id > ? ORDER BY id LIMIT ?", (int(event_id), int(limit))
        ) as cursor:
            rows = [dict(row) for row in await cursor.fetchall()]
        return [AuditEvent(**{**row, "detail": json.loads(row["detail"])}) for row in rows]

    async def relayed_up_to(self) -> int:
        """The last audit event a front end has relayed (posted, told the requester about)."""
        async with self._reader.execute("SELECT value FROM counters WHERE name = 'relayed_event'") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def mark_relayed(self, event_id: int) -> None:
        async with self._write() as db:
            await db.execute(
                "UPDATE counters SET value = MAX(value, ?) WHERE name = 'relayed_event'", (int(event_id),)
            )

    async def set_review_message(self, ticket_id: str, channel_id: int, message_id: int) -> None:
        async with self._write() as db:
            await db.execute(
                "INSERT OR REPLACE INTO review_messages (ticket_id, channel_id, message_id) VALUES (?, ?, ?)",
                (normalise_ticket_id(ticket_id), int(channel_id), int(message_id)),
            )

    async def review_message(self, ticket_id: str) -> tuple[int, int] | None:
        """(channel id, message id) of the ticket's review message, if one was posted."""
        async with self._reader.execute(
            "SELECT channel_id, message_id FROM review_messages WHERE ticket_id = ?",
            (normalise_ticket_id(ticket_id),),
        ) as cursor:
            row = await cursor.fetchone()
        return (int(row[0]), int(row[1])) if row else None

    # -- the removal list ----------------------------------------------------------------------

    async def removal_list(self) -> tuple[int, list[RemovalRow]]:
        """The list version and every approved entry once, credited to its first approval (the
        decided ticket before the linked ones approved with it), sorted by key, url."""
        # One statement, one snapshot: the version always belongs to exactly these rows.
        async with self._reader.execute(
            "SELECT (SELECT value FROM counters WHERE name = 'removal_list_version') AS version,"
            " e.key, e.url, e.phash, e.pdq, e.quality, t.id AS ticket_id, t.closed_at AS decided_at,"
            " t.removal_version AS added_in FROM counters c"
            " LEFT JOIN (ticket_entries e JOIN tickets t ON t.id = e.ticket_id AND t.state = 'approved')"
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

    async def removed_entries(self) -> frozenset[tuple[str, str]]:
        """(key, url or "") of every approved entry: what the index must no longer match."""
        async with self._reader.execute(
            "SELECT DISTINCT e.key, COALESCE(e.url, '') FROM ticket_entries e"
            " JOIN tickets t ON t.id = e.ticket_id WHERE t.state = 'approved'"
        ) as cursor:
            return frozenset((row[0], row[1]) for row in await cursor.fetchall())
