"""The audit log (:mod:`bot.tickets.audit`): append-only at the database level, and searchable."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bot.tickets.models import Ticket
from bot.tickets.store import TicketStore
from tests.bot.tickets.conftest import FakeClock
from tests.bot.tickets.helpers import ALICE, BOB, M1, M2, REASON, _conn, file

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
