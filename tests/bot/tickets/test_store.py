"""The ticket store, exercised through a real SQLite database on a temporary file.

What these tests prove:

* every legal lifecycle step changes exactly the fields it should and writes exactly one audit
  event; every refused step raises a ``TicketError`` subclass, changes nothing and logs nothing;
* who may act: a claimed ticket belongs to its assignee, a decided one names its decider, only the
  requester withdraws, reasons and actors are required;
* concurrency: two maintainers deciding at once (two connections, one connection, two processes)
  give exactly one decision, never two;
* duplicate requests link to the first ticket and follow its decisions, withdrawal promotes, an
  already approved entry is answered at once, limits and flags apply;
* the audit log is append-only at the database level and searchable;
* erasure (``forget``, retention) removes the requester's data from every table and from the
  bytes on disk, while decisions stay; export shows a requester only their own data;
* the removal list is versioned and exact; migrations create, keep and refuse as documented.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import queue
import sqlite3
from collections.abc import Coroutine, Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from bot.config import Settings, TicketSettings
from bot.tickets.lifecycle import (
    DecisionConflictError,
    IllegalTransitionError,
    NotYoursError,
    TicketAction,
    TicketError,
    TicketState,
)
from bot.tickets.migrations import LATEST_VERSION, SchemaTooNewError, migrate
from bot.tickets.models import Ticket, TransitionResult
from bot.tickets.store import RequestRefusedError, TicketNotFoundError, TicketStore
from tests.bot.tickets.conftest import FakeClock, OpenStore, entry, query, stamp

S, A = TicketState, TicketAction
M1, M2 = "maint-one", "maint-two"
ALICE, BOB, CAROL = "req-alice", "req-bob", "req-carol"
REASON = "the reason given"


# -- helpers ---------------------------------------------------------------------------------------


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


# (state, assignee, decided_by, decision_reason, closed) after each legal step.
EXPECTED: dict[
    tuple[TicketState, TicketAction], tuple[TicketState, str | None, str | None, str | None, bool]
] = {
    (S.OPEN, A.CLAIM): (S.CLAIMED, M1, None, None, False),
    (S.CLAIMED, A.RELEASE): (S.OPEN, None, None, None, False),
    (S.OPEN, A.APPROVE): (S.APPROVED, M1, M1, REASON, True),
    (S.CLAIMED, A.APPROVE): (S.APPROVED, M1, M1, REASON, True),
    (S.OPEN, A.REJECT): (S.REJECTED, M1, M1, REASON, True),
    (S.CLAIMED, A.REJECT): (S.REJECTED, M1, M1, REASON, True),
    (S.APPROVED, A.REOPEN): (S.OPEN, None, None, None, False),
    (S.REJECTED, A.REOPEN): (S.OPEN, None, None, None, False),
    (S.OPEN, A.WITHDRAW): (S.WITHDRAWN, None, None, None, True),
    (S.CLAIMED, A.WITHDRAW): (S.WITHDRAWN, None, None, None, True),
    (S.LINKED, A.WITHDRAW): (S.WITHDRAWN, None, None, None, True),
}
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


# -- every transition through the store ------------------------------------------------------------


@pytest.mark.parametrize(("state", "action"), STORE_PAIRS, ids=[f"{s}-{a}" for s, a in STORE_PAIRS])
async def test_every_transition_through_the_store(
    store: TicketStore, clock: FakeClock, state: TicketState, action: TicketAction
) -> None:
    ticket_id = await ticket_in(store, clock, state)
    before_ticket = await store.get(ticket_id)
    before = await snapshot(store)

    if (state, action) not in EXPECTED:
        expected_error = (
            DecisionConflictError
            if state in {S.APPROVED, S.REJECTED} and action in {A.CLAIM, A.APPROVE, A.REJECT, A.RELEASE}
            else IllegalTransitionError
        )
        with pytest.raises(expected_error) as caught:
            await act(store, action, ticket_id)
        assert isinstance(caught.value, TicketError)
        assert ticket_id in str(caught.value)
        assert await snapshot(store) == before
        return

    result = await act(store, action, ticket_id)
    new_state, assignee, decided_by, reason, closed = EXPECTED[(state, action)]
    ticket = await store.get(ticket_id)
    assert result.ticket == ticket
    assert result.also_changed == ()
    assert ticket.state is new_state
    assert ticket.assignee == assignee
    assert ticket.decided_by == decided_by
    assert ticket.decision_reason == reason
    assert ticket.closed_at == (stamp(clock()) if closed else None)
    assert ticket.updated_at == stamp(clock())
    assert ticket.linked_to is None
    # What the step does not touch stays as it was.
    assert (ticket.requester, ticket.entries, ticket.query, ticket.created_at) == (
        before_ticket.requester,
        before_ticket.entries,
        before_ticket.query,
        before_ticket.created_at,
    )

    events_before = before[1]
    events_after = await store.audit_log()
    assert events_after[: len(events_before)] == events_before
    (event,) = events_after[len(events_before) :]
    assert event.ticket_id == ticket_id
    assert event.action == str(action)
    assert (event.from_state, event.to_state) == (str(state), str(new_state))
    assert event.at == stamp(clock())
    if action is A.WITHDRAW:
        assert (event.actor_kind, event.actor, event.reason) == ("requester", None, None)
    else:
        assert (event.actor_kind, event.actor) == ("maintainer", M1)
        assert event.reason == (REASON if action in {A.APPROVE, A.REJECT, A.REOPEN} else None)


# -- who may act -----------------------------------------------------------------------------------


@pytest.mark.parametrize("action", [A.APPROVE, A.REJECT, A.RELEASE])
async def test_a_claimed_ticket_belongs_to_its_assignee(
    store: TicketStore, clock: FakeClock, action: TicketAction
) -> None:
    ticket_id = await ticket_in(store, clock, S.CLAIMED)
    before = await snapshot(store)
    with pytest.raises(NotYoursError) as caught:
        await by_maintainer(store, action, ticket_id, M2)
    assert M1 in str(caught.value)
    assert ticket_id in str(caught.value)
    assert await snapshot(store) == before


async def test_claiming_a_claimed_ticket_names_the_assignee(store: TicketStore, clock: FakeClock) -> None:
    ticket_id = await ticket_in(store, clock, S.CLAIMED)
    before = await snapshot(store)
    with pytest.raises(NotYoursError, match=f"already claimed by {M1}"):
        await store.claim(ticket_id, M2)
    assert await snapshot(store) == before


@pytest.mark.parametrize("decided", [S.APPROVED, S.REJECTED])
@pytest.mark.parametrize("action", [A.APPROVE, A.REJECT, A.CLAIM])
async def test_deciding_a_decided_ticket_names_who_decided(
    store: TicketStore, clock: FakeClock, decided: TicketState, action: TicketAction
) -> None:
    ticket_id = await ticket_in(store, clock, decided)
    before = await snapshot(store)
    with pytest.raises(DecisionConflictError) as caught:
        await by_maintainer(store, action, ticket_id, M2)
    message = str(caught.value)
    assert f"already {decided} by {M1}" in message
    assert ticket_id in message
    assert caught.value.ticket.decided_by == M1
    assert await snapshot(store) == before


@pytest.mark.parametrize("action", [A.APPROVE, A.REJECT, A.REOPEN])
@pytest.mark.parametrize("reason", ["", "   ", "\n\t"])
async def test_decisions_and_reopening_need_a_reason(
    store: TicketStore, clock: FakeClock, action: TicketAction, reason: str
) -> None:
    ticket_id = await ticket_in(store, clock, S.APPROVED if action is A.REOPEN else S.OPEN)
    before = await snapshot(store)
    with pytest.raises(TicketError, match="needs a reason"):
        await getattr(store, str(action))(ticket_id, M1, reason)
    assert await snapshot(store) == before


@pytest.mark.parametrize("action", [A.APPROVE, A.REJECT, A.REOPEN])
async def test_act_without_a_reason_is_refused_for_decisions_and_reopening(
    store: TicketStore, clock: FakeClock, action: TicketAction
) -> None:
    ticket_id = await ticket_in(store, clock, S.APPROVED if action is A.REOPEN else S.OPEN)
    before = await snapshot(store)
    with pytest.raises(TicketError, match="needs a reason"):
        await store.act(ticket_id, action, M1)
    assert await snapshot(store) == before


@pytest.mark.parametrize("action", [A.WITHDRAW, A.CREATE])
async def test_act_refuses_what_is_not_a_maintainers_action(
    store: TicketStore, clock: FakeClock, action: TicketAction
) -> None:
    ticket_id = await ticket_in(store, clock, S.OPEN)
    before = await snapshot(store)
    with pytest.raises(TicketError, match="not something a maintainer does"):
        await store.act(ticket_id, action, M1, "a reason")
    assert await snapshot(store) == before


async def test_act_claims_and_decides_as_the_named_methods_do(store: TicketStore, clock: FakeClock) -> None:
    ticket_id = await ticket_in(store, clock, S.OPEN)
    assert (await store.act(ticket_id, A.CLAIM, M1, "ignored")).ticket.state is S.CLAIMED
    decided = await store.act(ticket_id, A.REJECT, M1, " not a copy ")
    assert (decided.ticket.state, decided.ticket.decision_reason) == (S.REJECTED, "not a copy")


async def test_the_review_queue_is_the_open_and_claimed_tickets_oldest_first(
    store: TicketStore, clock: FakeClock
) -> None:
    first = await file(store, ALICE, "a", clock=clock)
    decided = await file(store, ALICE, "b", clock=clock)
    claimed = await file(store, BOB, "c", clock=clock)
    last = await file(store, BOB, "d", clock=clock)
    rejected = await file(store, BOB, "e", clock=clock)
    linked = await file(store, ALICE, "d", clock=clock)  # the same entry as ``last``
    await store.approve(decided.id, M1, REASON)
    await store.claim(claimed.id, M2)
    await store.reject(rejected.id, M1, REASON)
    assert linked.state is S.LINKED

    assert [ticket.id for ticket in await store.review_queue()] == [first.id, claimed.id, last.id]
    assert [ticket.id for ticket in await store.review_queue(limit=2)] == [first.id, claimed.id]


async def test_reasons_are_stored_trimmed(store: TicketStore, clock: FakeClock) -> None:
    ticket_id = await ticket_in(store, clock, S.OPEN)
    result = await store.approve(ticket_id, M1, "  consent withdrawn \n")
    assert result.ticket.decision_reason == "consent withdrawn"
    assert (await store.audit_log(ticket_id=ticket_id))[-1].reason == "consent withdrawn"


@pytest.mark.parametrize("action", [A.CLAIM, A.RELEASE, A.APPROVE, A.REJECT, A.REOPEN])
@pytest.mark.parametrize("by", ["", "  "])
async def test_the_acting_maintainer_must_be_named(
    store: TicketStore, clock: FakeClock, action: TicketAction, by: str
) -> None:
    start = {A.RELEASE: S.CLAIMED, A.REOPEN: S.APPROVED}.get(action, S.OPEN)
    ticket_id = await ticket_in(store, clock, start)
    before = await snapshot(store)
    with pytest.raises(TicketError, match="which maintainer"):
        await by_maintainer(store, action, ticket_id, by)
    assert await snapshot(store) == before


@pytest.mark.parametrize("who", [BOB, M1, "", "  "])
async def test_only_the_requester_withdraws(store: TicketStore, clock: FakeClock, who: str) -> None:
    ticket_id = await ticket_in(store, clock, S.OPEN)
    before = await snapshot(store)
    with pytest.raises(NotYoursError, match=ticket_id):
        await store.withdraw(ticket_id, who)
    assert await snapshot(store) == before


async def test_requester_id_is_compared_trimmed(store: TicketStore, clock: FakeClock) -> None:
    ticket = await file(store, f"  {ALICE} ", "a", clock=clock)
    assert ticket.requester == ALICE
    assert (await store.withdraw(ticket.id, f"{ALICE}  ")).ticket.state is S.WITHDRAWN


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


# -- duplicates and linking ------------------------------------------------------------------------


async def test_a_second_requester_for_the_same_entries_is_linked(
    store: TicketStore, clock: FakeClock
) -> None:
    first = await file(store, ALICE, "a", "b", clock=clock)
    second = await file(store, BOB, "b", "a", clock=clock)  # order does not matter
    assert (first.state, first.linked_to) == (S.OPEN, None)
    assert second.state is S.LINKED
    assert second.linked_to == first.id
    (created,) = await store.audit_log(ticket_id=second.id)
    assert (created.action, created.to_state, created.detail["linked_to"]) == ("create", "linked", first.id)
    assert await store.overlapping(second) == [first.id]
    # A subset of an open ticket's entries is covered by it too.
    subset = await file(store, CAROL, "a", clock=clock)
    assert (subset.state, subset.linked_to) == (S.LINKED, first.id)


@pytest.mark.parametrize(("decide", "decided"), [("approve", S.APPROVED), ("reject", S.REJECTED)])
async def test_deciding_the_primary_decides_the_linked_ones(
    store: TicketStore, clock: FakeClock, decide: str, decided: TicketState
) -> None:
    primary = await file(store, ALICE, "a", "b", clock=clock)
    bob = await file(store, BOB, "a", "b", clock=clock)
    carol = await file(store, CAROL, "a", "b", clock=clock)
    result = await getattr(store, decide)(primary.id, M1, REASON)

    assert result.ticket.state is decided
    assert [t.id for t in result.also_changed] == [bob.id, carol.id]
    for follower in result.also_changed:
        assert follower == await store.get(follower.id)
        assert follower.state is decided
        assert follower.decided_by == M1
        assert follower.closed_at == stamp(clock())
        assert follower.linked_to == primary.id
        assert primary.id in (follower.decision_reason or "")
        assert REASON in (follower.decision_reason or "")
        (event,) = (await store.audit_log(ticket_id=follower.id))[1:]
        assert (event.action, event.from_state, event.to_state) == (decide, "linked", str(decided))
        assert (event.actor_kind, event.actor) == ("maintainer", M1)
        assert event.detail == {"with": primary.id}
        assert event.reason == follower.decision_reason
    assert result.requesters_to_tell == [(ALICE, primary.id), (BOB, bob.id), (CAROL, carol.id)]
    version, rows = await store.removal_list()
    if decided is S.APPROVED:
        assert (version, {row.key for row in rows}) == (1, {"a", "b"})
    else:
        assert (version, rows) == (0, [])


@pytest.mark.parametrize(("decide", "decided"), [("approve", S.APPROVED), ("reject", S.REJECTED)])
async def test_reopening_the_primary_puts_followers_back_to_linked(
    store: TicketStore, clock: FakeClock, decide: str, decided: TicketState
) -> None:
    primary = await file(store, ALICE, "a", clock=clock)
    bob = await file(store, BOB, "a", clock=clock)
    await getattr(store, decide)(primary.id, M1, REASON)
    clock.advance(hours=1)
    result = await store.reopen(primary.id, M2, "appeal")
    assert result.ticket.state is S.OPEN
    (follower,) = result.also_changed
    assert follower == await store.get(bob.id)
    assert (follower.state, follower.linked_to) == (S.LINKED, primary.id)
    assert (follower.decided_by, follower.decision_reason, follower.closed_at) == (None, None, None)
    event = (await store.audit_log(ticket_id=bob.id))[-1]
    assert (event.action, event.from_state, event.to_state, event.actor) == (
        "reopen",
        str(decided),
        "linked",
        M2,
    )
    assert event.detail == {"with": primary.id}
    assert result.requesters_to_tell == [(ALICE, primary.id), (BOB, bob.id)]
    assert await store.removed_entries() == frozenset()
    # And the next decision takes the follower along again.
    again = await store.approve(primary.id, M2, "on appeal")
    assert [(t.id, t.state) for t in again.also_changed] == [(bob.id, S.APPROVED)]


async def test_a_reopened_follower_stands_on_its_own(store: TicketStore, clock: FakeClock) -> None:
    primary = await file(store, ALICE, "a", clock=clock)
    bob = await file(store, BOB, "a", clock=clock)
    await store.approve(primary.id, M1, REASON)
    result = await store.reopen(bob.id, M2, "appeal by this requester")
    assert result.also_changed == ()
    assert (result.ticket.state, result.ticket.linked_to) == (S.OPEN, None)
    # Undoing the primary's decision no longer moves it, and it is decided on its own.
    assert (await store.reopen(primary.id, M2, "appeal")).also_changed == ()
    assert (await store.approve(primary.id, M1, REASON)).also_changed == ()
    assert (await store.get(bob.id)).state is S.OPEN
    assert (await store.reject(bob.id, M1, "not them")).ticket.state is S.REJECTED


@pytest.mark.parametrize("primary_state", [S.OPEN, S.CLAIMED])
async def test_withdrawing_the_primary_promotes_the_oldest_linked_ticket(
    store: TicketStore, clock: FakeClock, primary_state: TicketState
) -> None:
    primary = await file(store, ALICE, "a", clock=clock)
    bob = await file(store, BOB, "a", clock=clock)
    carol = await file(store, CAROL, "a", clock=clock)
    dave = await file(store, "req-dave", "a", clock=clock)
    if primary_state is S.CLAIMED:
        await store.claim(primary.id, M1)
    result = await store.withdraw(primary.id, ALICE)

    assert (result.ticket.state, result.ticket.linked_to) == (S.WITHDRAWN, None)
    assert [t.id for t in result.also_changed] == [bob.id, carol.id, dave.id]
    heir = await store.get(bob.id)
    assert (heir.state, heir.linked_to) == (S.OPEN, None)
    for other in (carol, dave):
        moved = await store.get(other.id)
        assert (moved.state, moved.linked_to) == (S.LINKED, bob.id)
        relink = (await store.audit_log(ticket_id=other.id))[-1]
        assert (relink.action, relink.actor_kind, relink.actor) == ("relink", "system", None)
        assert relink.detail == {"from": primary.id, "to": bob.id}
    promote = (await store.audit_log(ticket_id=bob.id))[-1]
    assert (promote.action, promote.from_state, promote.to_state) == ("promote", "linked", "open")
    assert promote.detail == {"was_linked_to": primary.id}
    # The heir now carries the work: deciding it decides the rest.
    decided = await store.approve(bob.id, M1, REASON)
    assert [t.id for t in decided.also_changed] == [carol.id, dave.id]


async def test_withdrawing_a_linked_ticket_leaves_the_primary_alone(
    store: TicketStore, clock: FakeClock
) -> None:
    primary = await file(store, ALICE, "a", clock=clock)
    bob = await file(store, BOB, "a", clock=clock)
    result = await store.withdraw(bob.id, BOB)
    assert (result.ticket.state, result.ticket.linked_to, result.also_changed) == (S.WITHDRAWN, None, ())
    assert await store.get(primary.id) == primary
    assert (await store.approve(primary.id, M1, REASON)).also_changed == ()


async def test_the_same_requester_asking_again_is_refused(store: TicketStore, clock: FakeClock) -> None:
    first = await file(store, ALICE, "a", "b", clock=clock)
    before = await snapshot(store)
    with pytest.raises(RequestRefusedError, match=first.id):
        await file(store, ALICE, "b", "a")
    await store.claim(first.id, M1)
    with pytest.raises(RequestRefusedError, match=first.id):
        await file(store, ALICE, "a", "b")
    assert len((await snapshot(store))[0]) == len(before[0])


async def test_a_linked_requester_asking_again_is_refused(store: TicketStore, clock: FakeClock) -> None:
    await file(store, ALICE, "a", clock=clock)
    bob = await file(store, BOB, "a", clock=clock)
    assert bob.state is S.LINKED
    with pytest.raises(RequestRefusedError, match=bob.id):
        await file(store, BOB, "a", clock=clock)


async def test_a_request_for_approved_entries_is_answered_at_once(
    store: TicketStore, clock: FakeClock
) -> None:
    primary = await file(store, ALICE, "a", "b", clock=clock)
    await store.approve(primary.id, M1, "consent withdrawn")
    clock.advance(days=3)
    late = await file(store, BOB, "b", "a")
    assert late.state is S.APPROVED
    assert late.decided_by == M1
    assert late.decision_reason == f"Already removed with ticket {primary.id}: consent withdrawn"
    assert late.closed_at == late.created_at == stamp(clock())
    assert late.linked_to == primary.id
    (created,) = await store.audit_log(ticket_id=late.id)
    assert (created.action, created.to_state) == ("create", "approved")
    _, rows = await store.removal_list()
    assert {(row.key, row.ticket_id) for row in rows} == {("a", primary.id), ("b", primary.id)}
    # It does not count against the requester's pending limit.
    assert await store.list_tickets(requester=BOB, state=S.APPROVED) == [late]
    # Reopening the primary sends it back to waiting with the primary.
    result = await store.reopen(primary.id, M2, "appeal")
    assert [(t.id, t.state) for t in result.also_changed] == [(late.id, S.LINKED)]


async def test_partial_overlap_makes_a_normal_ticket(store: TicketStore, clock: FakeClock) -> None:
    first = await file(store, ALICE, "a", "b", clock=clock)
    second = await file(store, BOB, "b", "c", clock=clock)
    assert (second.state, second.linked_to) == (S.OPEN, None)
    assert await store.overlapping(second) == [first.id]
    assert await store.overlapping(first) == [second.id]
    unrelated = await file(store, CAROL, "z", clock=clock)
    assert await store.overlapping(unrelated) == []
    # An approved ticket still counts as overlapping; a partial overlap with it is not approved.
    await store.approve(first.id, M1, REASON)
    third = await file(store, CAROL, "a", "d", clock=clock)
    assert third.state is S.OPEN
    assert await store.overlapping(third) == [first.id]


async def test_entries_are_the_same_by_key_and_url(store: TicketStore, clock: FakeClock) -> None:
    first = await store.create_ticket(ALICE, query(), [entry("a"), entry("n", url=None)])
    clock.advance(minutes=1)
    other_url = await store.create_ticket(BOB, query(), [entry("a", url="https://mirror.example.net/a.jpg")])
    assert other_url.state is S.OPEN
    other_hashes = await store.create_ticket(
        CAROL,
        query(),
        [
            entry("a", entry_id="9/99", phash="f" * 16, pdq="e" * 64, pdq_distance=30, variant="center"),
            entry("n", url=None, caption="another caption"),
        ],
    )
    assert (other_hashes.state, other_hashes.linked_to) == (S.LINKED, first.id)


# -- limits, notes, flags --------------------------------------------------------------------------


async def test_pending_requests_per_requester_are_limited(open_store: OpenStore, clock: FakeClock) -> None:
    store = await open_store(max_open_per_requester=2)
    first = await file(store, ALICE, "a", clock=clock)
    await file(store, BOB, "b", clock=clock)
    await file(store, ALICE, "b", clock=clock)  # linked: still waiting, so it counts
    before = await snapshot(store)
    with pytest.raises(RequestRefusedError, match="at once is 2"):
        await file(store, ALICE, "c")
    assert await snapshot(store) == before
    await file(store, BOB, "c", clock=clock)  # another requester is not affected

    await store.reject(first.id, M1, REASON)
    third = await file(store, ALICE, "c", clock=clock)
    assert third.state is S.LINKED  # BOB's c ticket is open
    with pytest.raises(RequestRefusedError):
        await file(store, ALICE, "d")


async def test_withdrawing_frees_a_place(open_store: OpenStore, clock: FakeClock) -> None:
    store = await open_store(max_open_per_requester=1)
    first = await file(store, ALICE, "a", clock=clock)
    with pytest.raises(RequestRefusedError):
        await file(store, ALICE, "b")
    await store.withdraw(first.id, ALICE)
    assert (await file(store, ALICE, "b")).state is S.OPEN


async def test_a_request_needs_entries_and_a_requester(store: TicketStore) -> None:
    with pytest.raises(RequestRefusedError, match="nothing to remove"):
        await store.create_ticket(ALICE, query(), [])
    with pytest.raises(RequestRefusedError, match="requester"):
        await store.create_ticket("  ", query(), [entry("a")])
    assert await snapshot(store) == ([], [], (0, []))


async def test_notes_are_limited_and_trimmed(store: TicketStore, settings: Settings) -> None:
    longest = settings.tickets.max_note_chars
    with pytest.raises(RequestRefusedError, match=f"at most {longest}"):
        await store.create_ticket(ALICE, query(), [entry("a")], note="x" * (longest + 1))
    assert await snapshot(store) == ([], [], (0, []))
    fits = await store.create_ticket(ALICE, query(), [entry("a")], note="y" * longest)
    assert fits.note == "y" * longest
    trimmed = await store.create_ticket(BOB, query(), [entry("b")], note="  from a clinic  ")
    assert trimmed.note == "from a clinic"
    blank = await store.create_ticket(CAROL, query(), [entry("c")], note="   ")
    assert blank.note is None


async def test_widely_matched_requests_are_flagged(open_store: OpenStore) -> None:
    store = await open_store(flag_matches_over=3)
    flagged = await store.create_ticket(ALICE, query(), [entry(f"k{n}") for n in range(4)])
    assert flagged.flagged
    assert flagged.flag_reason is not None
    assert "matches 4 entries" in flagged.flag_reason
    assert "more than 3" in flagged.flag_reason
    (created,) = await store.audit_log(ticket_id=flagged.id)
    assert created.detail["flagged"] == flagged.flag_reason

    plain = await store.create_ticket(BOB, query(), [entry(f"j{n}") for n in range(3)])
    assert (plain.flagged, plain.flag_reason) == (False, None)
    assert "flagged" not in (await store.audit_log(ticket_id=plain.id))[0].detail
    # Repeats of one entry are one entry, for the flag as for storage.
    repeats = await store.create_ticket(CAROL, query(), [entry("r")] * 5)
    assert not repeats.flagged


async def test_default_flag_threshold(store: TicketStore, settings: Settings) -> None:
    over = settings.tickets.flag_matches_over
    assert (await store.create_ticket(ALICE, query(), [entry(f"k{n}") for n in range(over + 1)])).flagged
    assert not (await store.create_ticket(BOB, query(), [entry(f"j{n}") for n in range(over)])).flagged


async def test_duplicate_entries_in_one_request_are_stored_once(store: TicketStore, db_path: Path) -> None:
    ticket = await store.create_ticket(
        ALICE, query(), [entry("a"), entry("b"), entry("a"), entry("a", entry_id="7/7"), entry("b")]
    )
    assert [e.identity for e in ticket.entries] == [entry("a").identity, entry("b").identity]
    with _conn(db_path) as db:
        assert db.execute("SELECT COUNT(*) FROM ticket_entries").fetchone()[0] == 2
    (created,) = await store.audit_log(ticket_id=ticket.id)
    assert created.detail["entries"] == 2


async def test_unknown_or_malformed_ids_are_not_found(store: TicketStore) -> None:
    ticket = await file(store, ALICE, "a")
    typed = "#" + ticket.id[:3].lower() + "-" + ticket.id[3:].lower().replace("0", "o").replace("1", "l")
    assert await store.get(typed) == ticket
    unknown = "ZZZZZZ" if ticket.id != "ZZZZZZ" else "YYYYYY"
    for bad in (unknown, "not-a-ticket", "", "K7M2Q", "#", "K7M2QU"):
        with pytest.raises(TicketNotFoundError):
            await store.get(bad)
    with pytest.raises(TicketNotFoundError):
        await store.approve(unknown, M1, REASON)
    with pytest.raises(TicketNotFoundError):
        await store.withdraw(unknown, ALICE)


# -- the audit log ---------------------------------------------------------------------------------


async def test_the_audit_log_is_append_only(store: TicketStore, db_path: Path) -> None:
    ticket = await file(store, ALICE, "a")
    await store.approve(ticket.id, M1, REASON)
    before = await store.audit_log()
    with _conn(db_path) as db:
        for statement in (
            "UPDATE audit_events SET actor = 'someone else'",
            "UPDATE audit_events SET reason = NULL WHERE action = 'approve'",
            "DELETE FROM audit_events",
            "DELETE FROM audit_events WHERE action = 'create'",
        ):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                db.execute(statement)
            db.rollback()
        with pytest.raises(sqlite3.IntegrityError):
            db.execute(
                "INSERT INTO audit_events (at, ticket_id, actor_kind, actor, action)"
                " VALUES ('2026-01-01', ?, 'requester', 'req-alice', 'withdraw')",
                (ticket.id,),
            )
        with pytest.raises(sqlite3.IntegrityError):
            db.execute(
                "INSERT INTO audit_events (at, actor_kind, actor, action)"
                " VALUES ('2026-01-01', 'system', 'x', 'y')"
            )
        db.rollback()
    assert await store.audit_log() == before


async def test_the_store_never_names_a_requester_in_the_log(store: TicketStore, clock: FakeClock) -> None:
    ticket = await file(store, ALICE, "a", clock=clock)
    await file(store, BOB, "a", clock=clock)
    await store.withdraw(ticket.id, ALICE)
    await store.forget(BOB)
    for event in await store.audit_log():
        if event.actor_kind != "maintainer":
            assert event.actor is None
        assert ALICE not in json.dumps(event.to_dict())
        assert BOB not in json.dumps(event.to_dict())


async def _three_days(store: TicketStore, clock: FakeClock) -> tuple[Ticket, Ticket]:
    """Day 1: T1 filed and claimed by M1. Day 2: T1 approved, T2 filed. Day 3: T2 claimed and
    rejected by M2, T1 reopened by M2."""
    first = await file(store, ALICE, "a", clock=clock)
    await store.claim(first.id, M1)
    clock.advance(days=1)
    await store.approve(first.id, M1, REASON)
    clock.advance(minutes=1)
    second = await file(store, BOB, "b", clock=clock)
    clock.advance(days=1)
    await store.claim(second.id, M2)
    clock.advance(minutes=1)
    await store.reject(second.id, M2, "not a match")
    clock.advance(minutes=1)
    await store.reopen(first.id, M2, "appeal")
    return first, second


def _brief(events: list[Any]) -> list[tuple[str, str]]:
    return [(event.ticket_id, event.action) for event in events]


async def test_searching_the_audit_log(store: TicketStore, clock: FakeClock) -> None:
    first, second = await _three_days(store, clock)
    t1, t2 = first.id, second.id
    everything = await store.audit_log()
    assert _brief(everything) == [
        (t1, "create"),
        (t1, "claim"),
        (t1, "approve"),
        (t2, "create"),
        (t2, "claim"),
        (t2, "reject"),
        (t1, "reopen"),
    ]
    assert [e.id for e in everything] == sorted(e.id for e in everything)
    assert [e.at for e in everything] == sorted(e.at for e in everything)

    assert _brief(await store.audit_log(ticket_id=t1.lower())) == [
        (t1, "create"),
        (t1, "claim"),
        (t1, "approve"),
        (t1, "reopen"),
    ]
    assert _brief(await store.audit_log(ticket_id=f"#{t2[:3].lower()}-{t2[3:]}")) == [
        (t2, "create"),
        (t2, "claim"),
        (t2, "reject"),
    ]
    assert _brief(await store.audit_log(actor=M1)) == [(t1, "claim"), (t1, "approve")]
    assert _brief(await store.audit_log(actor=M2)) == [(t2, "claim"), (t2, "reject"), (t1, "reopen")]
    assert _brief(await store.audit_log(since="2026-03-02", until="2026-03-03")) == [
        (t1, "approve"),
        (t2, "create"),
    ]
    assert _brief(await store.audit_log(until="2026-03-02")) == [(t1, "create"), (t1, "claim")]
    assert _brief(await store.audit_log(since="2026-03-03")) == [
        (t2, "claim"),
        (t2, "reject"),
        (t1, "reopen"),
    ]
    approve_at = everything[2].at
    assert _brief(await store.audit_log(until=approve_at)) == _brief(everything[:2])  # until is exclusive
    assert _brief(await store.audit_log(since=approve_at)) == _brief(everything[2:])  # since is inclusive
    assert _brief(await store.audit_log(action="claim")) == [(t1, "claim"), (t2, "claim")]
    assert _brief(await store.audit_log(action="reject", actor=M1)) == []
    assert await store.audit_log(limit=2) == everything[-2:]
    assert await store.audit_log(limit=100) == everything
    assert _brief(await store.audit_log(actor=M2, limit=2)) == [(t2, "reject"), (t1, "reopen")]
    assert _brief(await store.audit_log(ticket_id=t1, since="2026-03-02", limit=1)) == [(t1, "reopen")]
    assert await store.audit_log(ticket_id="ZZZZZZ" if "ZZZZZZ" not in {t1, t2} else "YYYYYY") == []


async def test_audit_log_bounds_accept_timestamps_ending_in_z(store: TicketStore, clock: FakeClock) -> None:
    await file(store, ALICE, "a")  # exactly 12:00:00
    clock.advance(milliseconds=500)
    await file(store, BOB, "b")  # 12:00:00.5
    assert await store.audit_log(until="2026-03-01T12:00:00Z") == []
    assert len(await store.audit_log(since="2026-03-01T12:00:00Z")) == 2


# -- erasure ---------------------------------------------------------------------------------------

UNIQUE_REQUESTER = "requester-7f3a9c-unique"
UNIQUE_NOTE = "note-4b8e21-unique: this photo was taken at a clinic"


async def test_forget_erases_the_requester_everywhere(
    store: TicketStore, clock: FakeClock, db_path: Path
) -> None:
    secret_query = query(UNIQUE_REQUESTER)
    decided = await store.create_ticket(UNIQUE_REQUESTER, secret_query, [entry("a")], note=UNIQUE_NOTE)
    clock.advance(minutes=1)
    pending = await store.create_ticket(
        UNIQUE_REQUESTER, secret_query, [entry("b"), entry("c")], note=UNIQUE_NOTE
    )
    clock.advance(minutes=1)
    bystander = await store.create_ticket(BOB, query(BOB), [entry("z")], note="bob's note")
    await store.approve(decided.id, M1, REASON)
    clock.advance(minutes=1)
    before_decided = await store.get(decided.id)

    assert await store.forget(f" {UNIQUE_REQUESTER} ") == 2

    secrets = [UNIQUE_REQUESTER, UNIQUE_NOTE, *secret_query.phash, *secret_query.pdq]
    for table, column, value in every_value(db_path):
        for secret in secrets:
            assert secret not in str(value), (table, column)
    for suffix in ("", "-wal", "-journal"):
        disk_file = Path(f"{db_path}{suffix}")
        if disk_file.exists():
            raw = disk_file.read_bytes()
            for secret in secrets:
                assert secret.encode() not in raw, (disk_file.name, secret)

    for ticket_id in (decided.id, pending.id):
        erased = await store.get(ticket_id)
        assert (erased.requester, erased.note, erased.query) == (None, None, None)
        assert erased.erased_at == stamp(clock())
    after_decided = await store.get(decided.id)
    assert (after_decided.state, after_decided.decided_by, after_decided.decision_reason) == (
        S.APPROVED,
        M1,
        REASON,
    )
    assert after_decided.entries == before_decided.entries
    assert {row.key for row in (await store.removal_list())[1]} == {"a"}
    assert await store.get(bystander.id) == bystander
    assert await store.list_tickets(requester=UNIQUE_REQUESTER) == []

    (event,) = await store.audit_log(action="forget")
    assert (event.ticket_id, event.actor, event.actor_kind) == (None, None, "requester")
    assert event.detail == {"tickets": 2}

    # The forgotten request is still decided; there is nobody left to tell.
    result = await store.approve(pending.id, M2, REASON)
    assert result.ticket.state is S.APPROVED
    assert result.requesters_to_tell == []
    assert await store.forget("nobody-by-this-id") == 0
    assert await store.forget(UNIQUE_REQUESTER) == 0


async def test_forget_works_while_another_store_is_open(
    store: TicketStore, open_store: OpenStore, db_path: Path
) -> None:
    """The bot and the command line each hold a store; erasure through one still leaves the disk."""
    other = await open_store()
    ticket = await store.create_ticket(UNIQUE_REQUESTER, query(), [entry("a")], note=UNIQUE_NOTE)
    assert (await other.get(ticket.id)).requester == UNIQUE_REQUESTER
    await other.approve(ticket.id, M1, REASON)
    for n in range(30):
        await store.create_ticket(f"req-{n}", query(), [entry(f"k{n}")])
    assert await other.forget(UNIQUE_REQUESTER) == 1
    assert (await store.get(ticket.id)).requester is None
    for suffix in ("", "-wal"):
        disk_file = Path(f"{db_path}{suffix}")
        if disk_file.exists():
            raw = disk_file.read_bytes()
            assert UNIQUE_REQUESTER.encode() not in raw, disk_file.name
            assert UNIQUE_NOTE.encode() not in raw, disk_file.name


async def test_retention_erases_only_tickets_closed_long_enough_ago(
    store: TicketStore, clock: FakeClock, settings: Settings, db_path: Path
) -> None:
    days = settings.tickets.retention_days
    start = clock()
    old = await file(store, ALICE, "a", note="old note")
    withdrawn = await file(store, ALICE, "w", note="withdrawn note")
    recent = await file(store, BOB, "b", note="recent note")
    waiting = await file(store, CAROL, "c", note="waiting note")
    reopened = await file(store, "req-dave", "d", note="reopened note")
    boundary = await file(store, "req-erin", "e", note="boundary note")
    await store.approve(old.id, M1, REASON)
    await store.withdraw(withdrawn.id, ALICE)
    await store.reject(reopened.id, M1, REASON)
    clock.advance(days=1)
    await store.reopen(reopened.id, M1, "appeal")
    clock.set(start + timedelta(days=2))
    await store.reject(recent.id, M1, REASON)
    clock.set(start + timedelta(days=3))
    await store.reject(boundary.id, M1, REASON)

    clock.set(start + timedelta(days=days + 1))  # old: days+1 ago; recent: days-1 ago
    assert await store.purge_expired() == 2
    for ticket_id in (old.id, withdrawn.id):
        purged = await store.get(ticket_id)
        assert (purged.requester, purged.note, purged.query) == (None, None, None)
        assert purged.erased_at == stamp(clock())
    purged_old = await store.get(old.id)  # the decision and the entries stay
    assert (purged_old.state, purged_old.decided_by, purged_old.decision_reason) == (S.APPROVED, M1, REASON)
    assert purged_old.entries == old.entries
    raw = db_path.read_bytes() + (
        Path(f"{db_path}-wal").read_bytes() if Path(f"{db_path}-wal").exists() else b""
    )
    assert ALICE.encode() not in raw  # both of ALICE's tickets were purged
    assert b"withdrawn note" not in raw
    for kept in (recent, waiting, reopened, boundary):
        ticket = await store.get(kept.id)
        assert ticket.requester == kept.requester
        assert ticket.note == kept.note
        assert ticket.query == kept.query
        assert ticket.erased_at is None
    (event,) = await store.audit_log(action="purge")
    assert (event.actor_kind, event.actor, event.ticket_id) == ("system", None, None)
    assert event.detail["tickets"] == 2
    assert event.detail["days"] == days
    assert event.detail["closed_before"] == stamp(clock() - timedelta(days=days))

    assert await store.purge_expired() == 0
    assert [e.detail["tickets"] for e in await store.audit_log(action="purge")] == [2, 0]

    clock.set(start + timedelta(days=days + 3))  # now the recent one is old enough too
    assert await store.purge_expired() == 1
    assert (await store.get(recent.id)).requester is None
    assert (await store.get(waiting.id)).requester == CAROL  # open tickets are never purged
    assert (await store.get(boundary.id)).requester == "req-erin"  # closed exactly `days` ago: not yet


async def test_export_shows_a_requester_only_their_own_data(store: TicketStore, clock: FakeClock) -> None:
    first = await file(store, ALICE, "a", clock=clock, note="alice's note")
    second = await file(store, ALICE, "b", clock=clock)
    await file(store, BOB, "c", clock=clock, note="bob's note")
    await file(store, CAROL, "a", clock=clock, note="carol's note")  # linked to ALICE's ticket
    await store.approve(first.id, M1, REASON)

    exported = await store.export_requester(f" {ALICE} ")
    assert exported["requester"] == ALICE
    assert [t["id"] for t in exported["tickets"]] == [first.id, second.id]
    for ticket in exported["tickets"]:
        assert ticket["requester"] == ALICE
        assert ticket["query"] == query(ALICE).to_document()
    assert exported["tickets"][0]["note"] == "alice's note"
    assert exported["tickets"][0]["state"] == "approved"
    expected_events = [
        event.to_dict()
        for ticket_id in (first.id, second.id)
        for event in await store.audit_log(ticket_id=ticket_id)
    ]
    assert exported["events"] == expected_events
    assert {e["action"] for e in exported["events"]} == {"create", "approve"}
    text = json.dumps(exported)
    for foreign in (BOB, CAROL, "bob's note", "carol's note", *query(BOB).phash, *query(CAROL).pdq):
        assert foreign not in text

    assert (await store.export_requester("nobody"))["tickets"] == []
    await store.forget(ALICE)
    assert (await store.export_requester(ALICE))["tickets"] == []


# -- the removal list ------------------------------------------------------------------------------


async def test_the_removal_list_is_versioned_and_exact(store: TicketStore, clock: FakeClock) -> None:
    assert await store.removal_list() == (0, [])
    assert await store.removed_entries() == frozenset()

    first = await store.create_ticket(
        ALICE, query(), [entry("b"), entry("a", url="https://z.example/a.jpg"), entry("a")]
    )
    clock.advance(minutes=1)
    second = await store.create_ticket(BOB, query(), [entry("b"), entry("c"), entry("n", url=None)])
    clock.advance(minutes=1)
    rejected = await store.create_ticket(CAROL, query(), [entry("q")])
    clock.advance(minutes=1)

    approved = (await store.approve(first.id, M1, REASON)).ticket
    version, rows = await store.removal_list()
    assert version == 1
    assert [(r.key, r.url) for r in rows] == [
        ("a", "https://images.example.org/a.jpg"),
        ("a", "https://z.example/a.jpg"),
        ("b", "https://images.example.org/b.jpg"),
    ]
    for row in rows:
        source = next(e for e in first.entries if (e.key, e.url) == (row.key, row.url))
        assert (row.phash, row.pdq, row.quality) == (source.phash, source.pdq, source.quality)
        assert (row.ticket_id, row.decided_at, row.added_in) == (first.id, approved.closed_at, 1)

    clock.advance(minutes=1)
    await store.approve(second.id, M2, REASON)
    version, rows = await store.removal_list()
    assert version == 2
    assert [(r.key, r.ticket_id, r.added_in) for r in rows] == [
        ("a", first.id, 1),
        ("a", first.id, 1),
        ("b", first.id, 1),  # approved twice, listed once: its first approval
        ("c", second.id, 2),
        ("n", second.id, 2),
    ]
    assert rows[-1].url is None
    assert await store.removed_entries() == {(r.key, r.url or "") for r in rows}

    await store.reject(rejected.id, M1, REASON)
    assert (await store.removal_list())[0] == 2  # a rejection changes nothing on the list
    await store.reopen(rejected.id, M1, "appeal")
    assert (await store.removal_list())[0] == 2

    await store.reopen(first.id, M1, "appeal")
    version, rows = await store.removal_list()
    assert version == 3
    assert [(r.key, r.ticket_id, r.added_in) for r in rows] == [
        ("b", second.id, 2),
        ("c", second.id, 2),
        ("n", second.id, 2),
    ]
    assert await store.removed_entries() == {
        ("b", "https://images.example.org/b.jpg"),
        ("c", entry("c").url),
        ("n", ""),
    }

    await store.reopen(second.id, M1, "appeal")
    assert await store.removal_list() == (4, [])
    assert await store.removed_entries() == frozenset()


# -- migrations and opening ------------------------------------------------------------------------


async def test_a_new_database_is_at_the_latest_schema_in_wal_mode(store: TicketStore, db_path: Path) -> None:
    with _conn(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"tickets", "ticket_entries", "audit_events", "counters"} <= tables


async def test_reopening_keeps_the_data(db_path: Path, settings: Settings, clock: FakeClock) -> None:
    first = await TicketStore.open(db_path, settings.tickets, clock=clock)
    ticket = await first.create_ticket(ALICE, query(), [entry("a")], note="kept")
    await first.approve(ticket.id, M1, REASON)
    events = await first.audit_log()
    removal = await first.removal_list()
    await first.close()

    async with await TicketStore.open(db_path, settings.tickets, clock=clock) as again:
        assert (await again.get(ticket.id)).note == "kept"
        assert await again.audit_log() == events
        assert await again.removal_list() == removal


async def test_a_newer_schema_is_refused_untouched(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "newer.sqlite3"
    with _conn(path) as db:
        db.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
        db.execute("CREATE TABLE from_the_future (x)")
        db.commit()
    with pytest.raises(SchemaTooNewError, match=str(LATEST_VERSION + 1)):
        await TicketStore.open(path, settings.tickets)
    with _conn(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION + 1
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"from_the_future"}


async def test_migrating_twice_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "migrated.sqlite3"
    async with aiosqlite.connect(path, isolation_level=None) as db:
        assert await migrate(db) == 0
        async with db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name") as cursor:
            schema = await cursor.fetchall()
        assert await migrate(db) == LATEST_VERSION
        async with db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name") as cursor:
            assert await cursor.fetchall() == schema
        async with db.execute("SELECT name, value FROM counters ORDER BY name") as cursor:
            assert [tuple(row) for row in await cursor.fetchall()] == [
                ("relayed_event", 0),
                ("removal_list_version", 0),
            ]
        async with db.execute("PRAGMA user_version") as cursor:
            assert (await cursor.fetchone())[0] == LATEST_VERSION


async def test_opening_an_existing_store_again_migrates_nothing(
    store: TicketStore, open_store: OpenStore, db_path: Path
) -> None:
    ticket = await file(store, ALICE, "a")
    second = await open_store()
    assert await second.get(ticket.id) == ticket
    with _conn(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
        version = db.execute("SELECT value FROM counters WHERE name = 'removal_list_version'")
        assert version.fetchall() == [(0,)]


async def test_a_version_1_database_upgrades_in_place_keeping_its_tickets(
    tmp_path: Path, settings: Settings
) -> None:
    """A database written before migration 2 existed gains its tables and keeps every ticket."""
    path = tmp_path / "old.sqlite3"
    first = await TicketStore.open(path, settings.tickets)
    ticket = await file(first, ALICE, "a")
    await first.close()
    with _conn(path) as db:  # take it back to what release 1 wrote
        db.execute("DROP TABLE review_messages")
        db.execute("DELETE FROM counters WHERE name = 'relayed_event'")
        db.execute("PRAGMA user_version = 1")
        db.commit()
    upgraded = await TicketStore.open(path, settings.tickets)
    try:
        assert await upgraded.get(ticket.id) == ticket
        assert await upgraded.relayed_up_to() == 0
        await upgraded.set_review_message(ticket.id, 11, 22)
        assert await upgraded.review_message(ticket.id.lower()) == (11, 22)
    finally:
        await upgraded.close()
