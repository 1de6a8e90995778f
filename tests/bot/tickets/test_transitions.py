"""Every lifecycle step through the store (:mod:`bot.tickets.transitions`): each legal step changes
exactly the fields it should and writes exactly one audit event; each refused one raises, changes
nothing and logs nothing; who may act: a claimed ticket belongs to its assignee, a decided one names
its decider, only the requester withdraws, reasons and actors are required."""

from __future__ import annotations

import pytest

from bot.tickets.lifecycle import (
    DecisionConflictError,
    IllegalTransitionError,
    NotYoursError,
    TicketAction,
    TicketError,
    TicketState,
)
from bot.tickets.store import TicketStore
from tests.bot.tickets.conftest import FakeClock, stamp
from tests.bot.tickets.helpers import (
    ALICE,
    BOB,
    M1,
    M2,
    REASON,
    STORE_PAIRS,
    A,
    S,
    act,
    by_maintainer,
    file,
    snapshot,
    ticket_in,
)

# -- every transition through the store ------------------------------------------------------------

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
