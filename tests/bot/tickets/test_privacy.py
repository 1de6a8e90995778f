"""Erasure (:mod:`bot.tickets.privacy`): ``forget`` and retention remove the requester's data from
every table and from the bytes on disk while decisions stay; export shows a requester only their
own data."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from bot.config import Settings
from bot.tickets.store import TicketStore
from tests.bot.tickets.conftest import FakeClock, OpenStore, entry, query, stamp
from tests.bot.tickets.helpers import ALICE, BOB, CAROL, M1, M2, REASON, S, every_value, file

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


async def test_retention_counts_no_hash_list_hit_as_erased(
    store: TicketStore, clock: FakeClock, settings: Settings
) -> None:
    """A list's hit has no requester data: retention leaves it as it is and does not count it."""
    from bot.hashlists.reading import ListEntry, ReadList
    from bot.hashlists.storage import store_list
    from bot.tickets.list_filing import ListHitRequest
    from bot.tickets.models import ListOrigin

    stored, _ = await store_list(store, "iwf", ReadList("te", "f" * 64, [ListEntry(1, "pdq", "ab" * 32)]))
    origin = ListOrigin("iwf", stored.id, 1, None, None, "pdq", "ab" * 32)
    [hit] = (await store.file_list_hits([ListHitRequest(origin, (entry("h"),))], auto_approve={"iwf"})).filed
    person = await file(store, ALICE, "p")
    await store.approve(person.id, M1, REASON)
    clock.advance(days=settings.tickets.retention_days + 1)
    assert await store.purge_expired() == 1  # the person's ticket only
    assert (await store.get(hit.id)).erased_at is None
    assert (await store.get(person.id)).erased_at is not None
