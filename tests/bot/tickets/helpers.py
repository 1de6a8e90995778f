"""What the ticket tests share beyond fixtures: actors, filing and acting shorthands, raw reads."""

from __future__ import annotations

import sqlite3
from collections.abc import Coroutine, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

from bot.tickets.lifecycle import (
    TicketAction,
    TicketState,
)
from bot.tickets.models import Ticket, TransitionResult
from bot.tickets.store import TicketStore
from tests.bot.tickets.conftest import FakeClock, entry, query

S, A = TicketState, TicketAction
M1, M2 = "maint-one", "maint-two"
ALICE, BOB, CAROL = "req-alice", "req-bob", "req-carol"
REASON = "the reason given"


async def file(
    store: TicketStore,
    requester: str,
    *keys: str,
    clock: FakeClock | None = None,
    note: str | None = None,
) -> Ticket:
    """File a request for entries named by ``keys``; move the clock on so creation order is clear."""
    ticket = await store.create_ticket(requester, query(requester), [entry(key) for key in keys], note=note)
    if clock is not None:
        clock.advance(minutes=1)
    return ticket


async def snapshot(store: TicketStore) -> tuple[Any, ...]:
    """Everything a refused action must leave alone."""
    return (
        await store.list_tickets(limit=10_000),
        await store.audit_log(),
        await store.removal_list(),
    )


async def ticket_in(store: TicketStore, clock: FakeClock, state: TicketState) -> str:
    """A ticket filed by ALICE and brought to ``state`` (claimed/decided by M1)."""
    if state is S.LINKED:
        await file(store, BOB, "a", clock=clock)
    ticket = await file(store, ALICE, "a", clock=clock)
    if state is S.CLAIMED:
        await store.claim(ticket.id, M1)
    elif state is S.APPROVED:
        await store.approve(ticket.id, M1, "earlier decision")
    elif state is S.REJECTED:
        await store.reject(ticket.id, M1, "earlier decision")
    elif state is S.WITHDRAWN:
        await store.withdraw(ticket.id, ALICE)
    assert (await store.get(ticket.id)).state is state
    clock.advance(minutes=1)
    return ticket.id


def by_maintainer(
    store: TicketStore, action: TicketAction, ticket_id: str, by: str
) -> Coroutine[Any, Any, TransitionResult]:
    """The store call for a maintainer's ``action`` (a reason is passed where one is needed)."""
    return store.act(ticket_id, action, by, None if action in {A.CLAIM, A.RELEASE} else REASON)


async def act(store: TicketStore, action: TicketAction, ticket_id: str) -> TransitionResult:
    if action is A.CLAIM:
        return await store.claim(ticket_id, M1)
    if action is A.RELEASE:
        return await store.release(ticket_id, M1)
    if action is A.APPROVE:
        return await store.approve(ticket_id, M1, REASON)
    if action is A.REJECT:
        return await store.reject(ticket_id, M1, REASON)
    if action is A.REOPEN:
        return await store.reopen(ticket_id, M1, REASON)
    return await store.withdraw(ticket_id, ALICE)


STORE_PAIRS = [(state, action) for state in TicketState for action in TicketAction if action is not A.CREATE]


def _conn(path: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(path))


def every_value(path: Path) -> Iterator[tuple[str, str, Any]]:
    """(table, column, value) for every cell of every table, read with plain sqlite3."""
    with _conn(path) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            cursor = db.execute(f'SELECT * FROM "{table}"')
            columns = [description[0] for description in cursor.description]
            for row in cursor.fetchall():
                yield from ((table, column, value) for column, value in zip(columns, row, strict=True))
