"""Filing a request (:mod:`bot.tickets.filing`): duplicate requests link to the first ticket and
follow its decisions, withdrawal promotes, an already approved entry is answered at once, limits,
notes and flags apply."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings
from bot.tickets.lifecycle import (
    TicketState,
)
from bot.tickets.store import RequestRefusedError, TicketNotFoundError, TicketStore
from tests.bot.tickets.conftest import FakeClock, OpenStore, entry, query, stamp
from tests.bot.tickets.helpers import ALICE, BOB, CAROL, M1, M2, REASON, S, _conn, file, snapshot

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
