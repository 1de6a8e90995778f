"""Concurrency (:mod:`bot.tickets.database`): two maintainers deciding at once (two connections,
one connection, two processes) give exactly one decision, never two."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import queue
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings, TicketSettings
from bot.tickets.lifecycle import (
    DecisionConflictError,
    NotYoursError,
    TicketError,
)
from bot.tickets.models import Ticket, TransitionResult
from bot.tickets.store import RequestRefusedError, TicketStore
from tests.bot.tickets.conftest import FakeClock, OpenStore, entry, query
from tests.bot.tickets.helpers import ALICE, BOB, CAROL, M1, M2, S, _conn, file

# -- concurrency -----------------------------------------------------------------------------------


async def test_two_connections_deciding_at_once_give_one_decision(
    store: TicketStore, open_store: OpenStore, clock: FakeClock
) -> None:
    other = await open_store()
    tickets = [await file(store, f"req-{n}", f"k{n}") for n in range(20)]
    for n, ticket in enumerate(tickets):
        approve = store.approve(ticket.id, M1, "approve it")
        reject = other.reject(ticket.id, M2, "reject it")
        pair = (approve, reject) if n % 2 == 0 else (reject, approve)
        outcomes = await asyncio.gather(*pair, return_exceptions=True)
        if n % 2:
            outcomes.reverse()  # back to (approve, reject)
        won = [outcome for outcome in outcomes if isinstance(outcome, TransitionResult)]
        lost = [outcome for outcome in outcomes if not isinstance(outcome, TransitionResult)]
        assert len(won) == 1, outcomes
        assert len(lost) == 1, outcomes
        assert isinstance(lost[0], DecisionConflictError), outcomes
        winner = won[0].ticket
        assert winner.decided_by in {M1, M2}
        assert winner.state is (S.APPROVED if winner.decided_by == M1 else S.REJECTED)
        assert lost[0].ticket.decided_by == winner.decided_by
        for reader in (store, other):
            final = await reader.get(ticket.id)
            assert (final.state, final.decided_by, final.decision_reason) == (
                winner.state,
                winner.decided_by,
                winner.decision_reason,
            )
        decisions = [
            e for e in await store.audit_log(ticket_id=ticket.id) if e.action in {"approve", "reject"}
        ]
        assert len(decisions) == 1
        assert decisions[0].actor == winner.decided_by


async def test_concurrent_claims_on_one_store_have_one_winner(store: TicketStore, clock: FakeClock) -> None:
    maintainers = [f"maint-{n}" for n in range(6)]
    for round_number in range(5):
        ticket = await file(store, f"req-{round_number}", f"k{round_number}")
        outcomes = await asyncio.gather(
            *(store.claim(ticket.id, by) for by in maintainers), return_exceptions=True
        )
        won = [o for o in outcomes if isinstance(o, TransitionResult)]
        assert len(won) == 1, outcomes
        winner = won[0].ticket.assignee
        assert winner in maintainers
        lost = [o for o in outcomes if not isinstance(o, TransitionResult)]
        assert len(lost) == len(maintainers) - 1
        for error in lost:
            assert isinstance(error, NotYoursError)
            assert f"already claimed by {winner}" in str(error)
        assert (await store.get(ticket.id)).assignee == winner
        assert len(await store.audit_log(ticket_id=ticket.id, action="claim")) == 1


async def test_concurrent_claims_on_two_connections_have_one_winner(
    store: TicketStore, open_store: OpenStore
) -> None:
    other = await open_store()
    for n in range(10):
        ticket = await file(store, f"req-{n}", f"k{n}")
        outcomes = await asyncio.gather(
            store.claim(ticket.id, M1), other.claim(ticket.id, M2), return_exceptions=True
        )
        assert sum(isinstance(o, TransitionResult) for o in outcomes) == 1, outcomes
        assert sum(isinstance(o, NotYoursError) for o in outcomes) == 1, outcomes
        assert len(await store.audit_log(ticket_id=ticket.id, action="claim")) == 1


async def test_the_limit_holds_under_concurrent_requests(store: TicketStore, open_store: OpenStore) -> None:
    limited = await open_store(max_open_per_requester=2)
    also_limited = await open_store(max_open_per_requester=2)
    outcomes = await asyncio.gather(
        *(
            (limited if n % 2 else also_limited).create_ticket(ALICE, query(), [entry(f"k{n}")])
            for n in range(6)
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(o, Ticket) for o in outcomes) == 2, outcomes
    assert sum(isinstance(o, RequestRefusedError) for o in outcomes) == 4, outcomes
    assert len(await store.list_tickets(requester=ALICE)) == 2


async def test_concurrent_duplicate_requests_never_make_two_open_tickets(
    store: TicketStore, open_store: OpenStore
) -> None:
    other = await open_store()
    same = [entry("a"), entry("b")]
    outcomes = await asyncio.gather(
        store.create_ticket(BOB, query(), same), other.create_ticket(CAROL, query(), same)
    )
    assert sorted(str(t.state) for t in outcomes) == ["linked", "open"]
    opened = next(t for t in outcomes if t.state is S.OPEN)
    linked = next(t for t in outcomes if t.state is S.LINKED)
    assert linked.linked_to == opened.id

    fresh = [entry("x"), entry("y")]
    again = await asyncio.gather(
        store.create_ticket(ALICE, query(), fresh),
        other.create_ticket(ALICE, query(), fresh),
        return_exceptions=True,
    )
    assert [o.state for o in again if isinstance(o, Ticket)] == [S.OPEN], again
    assert sum(isinstance(o, RequestRefusedError) for o in again) == 1, again


def _decide_in_process(
    *,
    path: str,
    ticket_settings: TicketSettings,
    ticket_ids: list[str],
    decision: str,
    by: str,
    barrier: Any,
    results: Any,
) -> None:
    """A separate process: open its own store and, in step with the other one, try to decide each ticket."""

    async def run() -> dict[str, str]:
        store = await TicketStore.open(Path(path), ticket_settings)
        try:
            outcome: dict[str, str] = {}
            for ticket_id in ticket_ids:
                barrier.wait(timeout=60)  # both processes go for each ticket at the same moment
                try:
                    await getattr(store, decision)(ticket_id, by, f"{by} decided")
                    outcome[ticket_id] = "won"
                except TicketError as exc:
                    outcome[ticket_id] = type(exc).__name__
            return outcome
        finally:
            await store.close()

    try:
        results.put((by, asyncio.run(run())))
    except BaseException as exc:  # report, so the parent fails with the reason instead of timing out
        results.put((by, repr(exc)))
        raise


async def test_two_processes_deciding_the_same_tickets(
    store: TicketStore, db_path: Path, settings: Settings
) -> None:
    tickets = [await file(store, f"req-{n}", f"k{n}") for n in range(30)]
    ids = [ticket.id for ticket in tickets]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results = context.Queue()
    workers = [
        context.Process(
            target=_decide_in_process,
            kwargs={
                "path": str(db_path),
                "ticket_settings": settings.tickets,
                "ticket_ids": ids,
                "decision": decision,
                "by": by,
                "barrier": barrier,
                "results": results,
            },
        )
        for decision, by in (("approve", M1), ("reject", M2))
    ]
    for worker in workers:
        worker.start()
    try:
        reports = dict(await asyncio.to_thread(lambda: [results.get(timeout=90) for _ in workers]))
    except queue.Empty:
        pytest.fail("a worker process did not report")
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
    assert all(isinstance(report, dict) for report in reports.values()), reports
    assert [worker.exitcode for worker in workers] == [0, 0]

    for ticket_id in ids:
        outcomes = {by: reports[by][ticket_id] for by in (M1, M2)}
        winners = [by for by, outcome in outcomes.items() if outcome == "won"]
        assert len(winners) == 1, outcomes
        (loser,) = {M1, M2} - set(winners)
        assert outcomes[loser] == "DecisionConflictError"
        final = await store.get(ticket_id)
        assert final.decided_by == winners[0]
        assert final.state is (S.APPROVED if winners[0] == M1 else S.REJECTED)
    with _conn(db_path) as db:
        counts = dict(
            db.execute(
                "SELECT ticket_id, COUNT(*) FROM audit_events WHERE action IN ('approve', 'reject')"
                " GROUP BY ticket_id"
            ).fetchall()
        )
    assert counts == dict.fromkeys(ids, 1)


async def test_a_transaction_abandoned_by_a_cancelled_task_does_not_block_later_writes(
    store: TicketStore,
) -> None:
    """A task cancelled while awaiting its BEGIN (background work at shutdown) leaves the writer
    inside a transaction; the next write rolls it back instead of failing for ever."""
    ticket = await file(store, ALICE, "a")
    async with store.database.outside_transactions() as writer:
        await writer.execute("BEGIN IMMEDIATE")  # what the cancelled task's BEGIN left behind
        await writer.execute("UPDATE tickets SET note = 'half-written' WHERE id = ?", (ticket.id,))
    claimed = await store.claim(ticket.id, M1)
    assert claimed.ticket.state is S.CLAIMED
    assert claimed.ticket.note is None  # the abandoned change was rolled back, not committed
    async with store.database.outside_transactions() as writer:
        await writer.execute("BEGIN IMMEDIATE")
    await store.database.checkpoint()  # the pragma path recovers too


async def test_a_write_cancelled_while_waiting_for_its_begin_leaves_no_transaction_behind(
    store: TicketStore, db_path: Path
) -> None:
    """Cancelled while its BEGIN waits on aiosqlite's thread (the bot's background work at
    shutdown), a write must still end the transaction that BEGIN opens: otherwise the database
    stays locked for every other process, and this one's next write finds a transaction open."""
    ticket = await file(store, ALICE, "a")
    for _ in range(20):  # cancel at different points of the BEGIN's round trip
        task = asyncio.create_task(store.claim(ticket.id, M1))
        await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TicketError):
            await task
        await asyncio.sleep(0.02)  # an orphaned BEGIN would have run by now
        with _conn(db_path) as other:  # another process can take the write lock at once
            other.execute("PRAGMA busy_timeout = 0")
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
        with contextlib.suppress(TicketError):
            await store.release(ticket.id, M1)
