"""The lifecycle table is exactly the documented one, and ticket ids read the way people type them.

Every (state, action) pair is checked against an independent copy of the table in the module
docstring: legal steps lead where the diagram says, every other step is refused with a sentence
that names the ticket. ``allowed_actions`` offers exactly the legal steps.
"""

from __future__ import annotations

import itertools

import pytest

from bot.tickets.ids import ALPHABET, LENGTH, looks_like_ticket_id, new_ticket_id, normalise_ticket_id
from bot.tickets.lifecycle import (
    CLOSED_STATES,
    PENDING_STATES,
    IllegalTransitionError,
    TicketAction,
    TicketError,
    TicketState,
    allowed_actions,
    check_action,
    next_state,
)
from bot.tickets.models import Ticket
from tests.bot.tickets.conftest import entry

S, A = TicketState, TicketAction

# Written from the diagram, not from the module's table.
LEGAL: dict[tuple[TicketState, TicketAction], TicketState] = {
    (S.OPEN, A.CLAIM): S.CLAIMED,
    (S.CLAIMED, A.RELEASE): S.OPEN,
    (S.OPEN, A.APPROVE): S.APPROVED,
    (S.CLAIMED, A.APPROVE): S.APPROVED,
    (S.OPEN, A.REJECT): S.REJECTED,
    (S.CLAIMED, A.REJECT): S.REJECTED,
    (S.APPROVED, A.REOPEN): S.OPEN,
    (S.REJECTED, A.REOPEN): S.OPEN,
    (S.OPEN, A.WITHDRAW): S.WITHDRAWN,
    (S.CLAIMED, A.WITHDRAW): S.WITHDRAWN,
    (S.LINKED, A.WITHDRAW): S.WITHDRAWN,
}

ACTIONS = [action for action in TicketAction if action is not TicketAction.CREATE]
PAIRS = list(itertools.product(TicketState, ACTIONS))
PAST = {
    A.CLAIM: "claimed",
    A.RELEASE: "released",
    A.APPROVE: "approved",
    A.REJECT: "rejected",
    A.REOPEN: "reopened",
    A.WITHDRAW: "withdrawn",
}


def test_the_table_covers_every_pair() -> None:
    assert len(PAIRS) == 6 * 6
    assert set(LEGAL) <= set(PAIRS)


@pytest.mark.parametrize(("state", "action"), PAIRS, ids=[f"{s}-{a}" for s, a in PAIRS])
def test_every_state_action_pair(state: TicketState, action: TicketAction) -> None:
    if (state, action) in LEGAL:
        assert next_state("K7M2QX", state, action) is LEGAL[(state, action)]
        return
    with pytest.raises(IllegalTransitionError) as caught:
        next_state("K7M2QX", state, action)
    error = caught.value
    assert isinstance(error, TicketError)
    assert (error.ticket_id, error.action, error.state) == ("K7M2QX", action, state)
    message = str(error)
    assert "K7M2QX" in message
    assert f"cannot be {PAST[action]}" in message
    assert message.endswith(".")


@pytest.mark.parametrize("state", list(TicketState))
def test_create_is_not_a_transition(state: TicketState) -> None:
    with pytest.raises(IllegalTransitionError, match="cannot be created"):
        next_state("K7M2QX", state, TicketAction.CREATE)


@pytest.mark.parametrize("state", list(TicketState))
def test_allowed_actions_are_exactly_the_legal_ones(state: TicketState) -> None:
    offered = allowed_actions(state)
    assert len(offered) == len(set(offered))
    assert set(offered) == {action for (from_state, action) in LEGAL if from_state is state}


def test_terminal_and_waiting_states() -> None:
    assert allowed_actions(TicketState.WITHDRAWN) == []
    assert allowed_actions(TicketState.LINKED) == [TicketAction.WITHDRAW]
    assert {S.OPEN, S.CLAIMED, S.LINKED} == PENDING_STATES
    assert {S.APPROVED, S.REJECTED, S.WITHDRAWN} == CLOSED_STATES
    assert set(TicketState) == PENDING_STATES | CLOSED_STATES


# -- ids -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("#k7m-2qx", "K7M2QX"),
        ("K7M2QX", "K7M2QX"),
        ("  k7m 2qx ", "K7M2QX"),
        ("ab0-o1i", "AB0011"),  # o -> 0, i -> 1
        ("l0Ol1I", "100111"),  # l -> 1, O -> 0, I -> 1
    ],
)
def test_normalise_ticket_id(typed: str, canonical: str) -> None:
    assert normalise_ticket_id(typed) == canonical


def test_looks_like_ticket_id() -> None:
    assert looks_like_ticket_id("#k7m-2qx")
    assert looks_like_ticket_id("ol1-iox")  # every look-alike maps into the alphabet
    assert not looks_like_ticket_id("K7M2Q")  # too short
    assert not looks_like_ticket_id("K7M2QXZ")  # too long
    assert not looks_like_ticket_id("K7M2QU")  # U is not in the alphabet
    assert not looks_like_ticket_id("")


def test_alphabet_has_no_look_alikes() -> None:
    assert len(ALPHABET) == 32 == len(set(ALPHABET))
    assert not set("ILOU") & set(ALPHABET)


def test_new_ids_are_six_alphabet_characters_and_differ() -> None:
    ids = [new_ticket_id() for _ in range(200)]
    for ticket_id in ids:
        assert len(ticket_id) == LENGTH == 6
        assert set(ticket_id) <= set(ALPHABET)
        assert normalise_ticket_id(ticket_id) == ticket_id
        assert looks_like_ticket_id(ticket_id)
    assert len(set(ids)) == len(ids)
    # Random, not sequential: the ids use many different characters in every position.
    for position in range(LENGTH):
        assert len({ticket_id[position] for ticket_id in ids}) > 10


def held(state: TicketState, assignee: str | None) -> Ticket:
    """A ticket in ``state`` held by ``assignee``, decided (if it is) by m2."""
    return Ticket(
        id="T1", state=state, source="cli", requester="r", note=None, query=None, entries=(entry("k"),),
        assignee=assignee, decided_by="m2", decision_reason=None, flagged=False, flag_reason=None,
        linked_to=None, created_at="", updated_at="", closed_at="2026-01-01", erased_at=None,
    )  # fmt: skip


@pytest.mark.parametrize(("state", "action"), list(itertools.product(TicketState, TicketAction)))
def test_check_action_follows_the_table_for_the_assignee(state, action):
    """By the ticket's own assignee (or on a ticket nobody holds), only the table decides, except
    that a decision is never taken over: deciding, claiming or releasing a decided ticket names who
    decided it, and when."""
    ticket = held(state, "m1" if state is S.CLAIMED else None)
    if state in {S.APPROVED, S.REJECTED} and action in {A.CLAIM, A.APPROVE, A.REJECT, A.RELEASE}:
        with pytest.raises(TicketError, match=rf"already {state} by m2 at 2026-01-01"):
            check_action(ticket, action, "m1")
    elif (state, action) in LEGAL:
        assert check_action(ticket, action, "m1") is LEGAL[state, action]
    else:
        with pytest.raises(IllegalTransitionError):
            check_action(ticket, action, "m1")


@pytest.mark.parametrize("action", [A.CLAIM, A.RELEASE, A.APPROVE, A.REJECT])
def test_check_action_names_the_assignee_to_anyone_else(action):
    with pytest.raises(TicketError, match="claimed by m1"):
        check_action(held(S.CLAIMED, "m1"), action, "m2")
