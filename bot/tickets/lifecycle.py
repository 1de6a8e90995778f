"""The review lifecycle of a removal ticket, stated once as a table.

::

    open ──claim──> claimed ──approve──> approved ──reopen──> open
     │  <─release──   │     ──reject───> rejected ──reopen──> open
     │                │
     ├──approve/reject (claims it in the same step)
     └──withdraw (the requester) <── claimed
    linked ── follows the ticket it duplicates (approved/rejected with it, open if it is withdrawn)

Every front end (command line, Discord) goes through :func:`check_action` (who may act, then the
table), so an illegal step is refused the same way everywhere, with a sentence that says why.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from bot.errors import RemovalDeskError
from bot.times import human_time


class TicketState(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    LINKED = "linked"  # a duplicate of an open or approved ticket: no separate review work


class TicketAction(StrEnum):
    CREATE = "create"
    CLAIM = "claim"
    RELEASE = "release"
    APPROVE = "approve"
    REJECT = "reject"
    REOPEN = "reopen"
    WITHDRAW = "withdraw"


# States in which a ticket still needs (or awaits) a decision: they count against a requester's
# limit and they cover their entries for duplicate detection.
PENDING_STATES = frozenset({TicketState.OPEN, TicketState.CLAIMED, TicketState.LINKED})
# States after which retention may erase the requester's data.
CLOSED_STATES = frozenset({TicketState.APPROVED, TicketState.REJECTED, TicketState.WITHDRAWN})

_TRANSITIONS: dict[TicketAction, dict[TicketState, TicketState]] = {
    TicketAction.CLAIM: {TicketState.OPEN: TicketState.CLAIMED},
    TicketAction.RELEASE: {TicketState.CLAIMED: TicketState.OPEN},
    TicketAction.APPROVE: {TicketState.OPEN: TicketState.APPROVED, TicketState.CLAIMED: TicketState.APPROVED},
    TicketAction.REJECT: {TicketState.OPEN: TicketState.REJECTED, TicketState.CLAIMED: TicketState.REJECTED},
    TicketAction.REOPEN: {TicketState.APPROVED: TicketState.OPEN, TicketState.REJECTED: TicketState.OPEN},
    TicketAction.WITHDRAW: {
        TicketState.OPEN: TicketState.WITHDRAWN,
        TicketState.CLAIMED: TicketState.WITHDRAWN,
        TicketState.LINKED: TicketState.WITHDRAWN,
    },
}

_WHY_NOT: dict[TicketState, str] = {
    TicketState.OPEN: "it is open and not decided yet",
    TicketState.CLAIMED: "it is already claimed",
    TicketState.APPROVED: "it is already approved",
    TicketState.REJECTED: "it is already rejected",
    TicketState.WITHDRAWN: "its requester withdrew it",
    TicketState.LINKED: "it is linked to another ticket with the same entries; act on that one",
}


class TicketError(RemovalDeskError):
    """A ticket operation was refused; ``str(error)`` is a sentence for the person who asked."""


class IllegalTransitionError(TicketError):
    """The action does not apply to the ticket's current state."""

    def __init__(self, ticket_id: str, action: TicketAction, state: TicketState) -> None:
        self.ticket_id, self.action, self.state = ticket_id, action, state
        super().__init__(f"Ticket {ticket_id} cannot be {_past(action)}: {_WHY_NOT[state]}.")
        if action is TicketAction.WITHDRAW:  # the one refusal a requester reads
            self.translatable("cannot_withdraw", id=ticket_id, state=state)


def _past(action: TicketAction) -> str:
    return {
        TicketAction.CLAIM: "claimed",
        TicketAction.RELEASE: "released",
        TicketAction.APPROVE: "approved",
        TicketAction.REJECT: "rejected",
        TicketAction.REOPEN: "reopened",
        TicketAction.WITHDRAW: "withdrawn",
        TicketAction.CREATE: "created",
    }[action]


def allowed_actions(state: TicketState) -> list[TicketAction]:
    """The actions that apply in ``state`` (what a front end may offer as buttons)."""
    return [action for action, table in _TRANSITIONS.items() if state in table]


def next_state(ticket_id: str, state: TicketState, action: TicketAction) -> TicketState:
    """The state ``action`` leads to from ``state``; raise :class:`IllegalTransitionError` if none."""
    table = _TRANSITIONS.get(action, {})
    if state not in table:
        raise IllegalTransitionError(ticket_id, action, state)
    return table[state]


# What a maintainer does to a ticket (the requester's own action is WITHDRAW), and which of those
# need a reason: it goes into the audit log and, for a decision, to the requester.
MAINTAINER_ACTIONS = frozenset(
    {TicketAction.CLAIM, TicketAction.RELEASE, TicketAction.APPROVE, TicketAction.REJECT, TicketAction.REOPEN}
)
NEEDS_REASON = frozenset({TicketAction.APPROVE, TicketAction.REJECT, TicketAction.REOPEN})


class Held(Protocol):
    """What the who-may-act rule reads of a ticket (:class:`bot.tickets.models.Ticket` has it)."""

    @property
    def id(self) -> str: ...
    @property
    def state(self) -> TicketState: ...
    @property
    def assignee(self) -> str | None: ...
    @property
    def decided_by(self) -> str | None: ...
    @property
    def closed_at(self) -> str | None: ...


class NotYoursError(TicketError):
    """The actor may not do this to this ticket (someone else claimed it, or filed it)."""


class DecisionConflictError(TicketError):
    """Someone else decided the ticket first; the message says who and when."""

    def __init__(self, ticket: Held) -> None:
        self.ticket = ticket
        when = human_time(ticket.closed_at) if ticket.closed_at else "an earlier moment"
        super().__init__(f"Ticket {ticket.id} was already {ticket.state} by {ticket.decided_by} at {when}.")


def check_action(ticket: Held, action: TicketAction, by: str) -> TicketState:
    """The state a maintainer's ``action`` by ``by`` takes ``ticket`` to, or the
    :class:`TicketError` that says why it may not happen: who holds or decided the ticket and when,
    then the table. A front end may ask before it asks for a reason; the store asks again when it
    acts, in the same transaction as the change."""
    if ticket.state in {TicketState.APPROVED, TicketState.REJECTED} and action in {
        TicketAction.CLAIM,
        TicketAction.APPROVE,
        TicketAction.REJECT,
        TicketAction.RELEASE,
    }:
        raise DecisionConflictError(ticket)
    if ticket.state is TicketState.CLAIMED and ticket.assignee != by:
        if action is TicketAction.CLAIM:
            raise NotYoursError(f"Ticket {ticket.id} is already claimed by {ticket.assignee}.")
        if action in {TicketAction.APPROVE, TicketAction.REJECT, TicketAction.RELEASE}:
            raise NotYoursError(
                f"Ticket {ticket.id} is claimed by {ticket.assignee}; only they can "
                f"{action} it (or release it for you to take)."
            )
    return next_state(ticket.id, ticket.state, action)
