"""``tickets stats`` (and the bot's ``/tickets stats``): bot.tickets.stats through the store."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import bot.tickets.database as database_module
from bot.cli import main
from bot.tickets.store import TicketStore
from tests.bot.tickets.conftest import START, FakeClock, entry, query
from tests.bot.tickets.helpers import M1

DAY = 86_400.0
NOW = START + timedelta(days=200)


async def filed(store: TicketStore, clock: FakeClock, key: str, ago: timedelta, requester: str = "") -> str:
    """A ticket for entry ``key`` filed ``ago`` before NOW (each by its own requester)."""
    clock.set(NOW - ago)
    ticket = await store.create_ticket(requester or f"req-{key}", query(key), [entry(key)])
    return ticket.id


async def decided(
    store: TicketStore, clock: FakeClock, key: str, filed_ago: timedelta, waited: timedelta, *, approve: bool
) -> str:
    ticket_id = await filed(store, clock, key, filed_ago)
    clock.set(NOW - filed_ago + waited)
    if approve:
        await store.approve(ticket_id, M1, "ok")
    else:
        await store.reject(ticket_id, M1, "no")
    return ticket_id


async def test_no_tickets_gives_zeros_and_no_median(store: TicketStore, clock: FakeClock):
    stats = await store.stats()

    assert stats.waiting_total == 0
    assert stats.waiting == {
        state: {"under_1_day": 0, "1_to_7_days": 0, "7_to_30_days": 0, "over_30_days": 0}
        for state in ("open", "claimed")
    }
    assert (stats.oldest_waiting_id, stats.oldest_waiting_seconds) == (None, None)
    assert stats.recent.median_seconds is None
    assert stats.overall.median_seconds is None
    assert stats.overall.by_outcome == {"approved": 0, "rejected": 0}
    assert stats.to_dict()["waiting_total"] == 0


async def test_waiting_tickets_are_counted_by_state_and_age(store: TicketStore, clock: FakeClock):
    oldest = await filed(store, clock, "a", timedelta(days=40))
    await filed(store, clock, "b", timedelta(days=3))
    await filed(store, clock, "c", timedelta(days=1))  # exactly a day: no longer "under a day"
    await filed(store, clock, "d", timedelta(hours=2))
    await filed(store, clock, "e", timedelta(days=30, seconds=1))
    claimed = await filed(store, clock, "f", timedelta(days=10))
    await store.claim(claimed, M1)
    await filed(store, clock, "g", timedelta(days=8), requester="someone")
    await filed(store, clock, "g", timedelta(days=6), requester="another")  # a duplicate: linked
    clock.set(NOW)

    stats = await store.stats()

    assert stats.waiting == {
        "open": {"under_1_day": 1, "1_to_7_days": 2, "7_to_30_days": 1, "over_30_days": 2},
        "claimed": {"under_1_day": 0, "1_to_7_days": 0, "7_to_30_days": 1, "over_30_days": 0},
    }
    assert stats.waiting_total == 7
    assert stats.linked == 1
    assert stats.oldest_waiting_id == oldest
    assert stats.oldest_waiting_seconds == 40 * DAY
    # an hour later, the ticket filed 23 h before moves up a bucket
    clock.set(NOW + timedelta(hours=23))
    later = await store.stats()
    assert later.waiting["open"]["under_1_day"] == 0
    assert later.waiting["open"]["1_to_7_days"] == 3


async def test_median_time_to_decision_over_odd_and_even_counts(store: TicketStore, clock: FakeClock):
    # decided 120 days ago (outside the recent 90 days): one day's wait
    await decided(store, clock, "a", timedelta(days=121), timedelta(days=1), approve=True)
    # recent: two days, and six hours
    await decided(store, clock, "b", timedelta(days=20), timedelta(days=2), approve=True)
    await decided(store, clock, "c", timedelta(days=5), timedelta(hours=6), approve=False)
    withdrawn = await filed(store, clock, "d", timedelta(days=4))
    await store.withdraw(withdrawn, "req-d")
    clock.set(NOW)

    stats = await store.stats()

    assert stats.recent_days == 90
    assert stats.recent.count == 2
    assert stats.recent.median_seconds == (2 * DAY + 0.25 * DAY) / 2  # even: the mean of the middle two
    assert stats.recent.by_outcome == {"approved": 1, "rejected": 1}
    assert stats.overall.count == 3
    assert stats.overall.median_seconds == DAY  # odd: the middle one
    assert stats.overall.by_outcome == {"approved": 2, "rejected": 1}
    assert stats.withdrawn == 1
    assert stats.waiting_total == 0
    # a wider window takes in the old decision
    assert (await store.stats(recent_days=200)).recent.count == 3


async def test_a_reopened_ticket_waits_again_and_counts_from_filing_to_its_latest_decision(
    store: TicketStore, clock: FakeClock
):
    ticket_id = await decided(store, clock, "a", timedelta(days=10), timedelta(days=1), approve=True)
    clock.set(NOW - timedelta(days=8))
    await store.reopen(ticket_id, M1, "appeal")
    clock.set(NOW)

    reopened = await store.stats()
    assert reopened.overall.count == 0
    assert reopened.waiting["open"]["7_to_30_days"] == 1  # its age is from filing

    clock.set(NOW - timedelta(days=7))
    await store.reject(ticket_id, M1, "after all")
    clock.set(NOW)
    stats = await store.stats()
    assert stats.overall.count == 1
    assert stats.overall.median_seconds == 3 * DAY
    assert stats.overall.by_outcome == {"approved": 0, "rejected": 1}


async def test_linked_tickets_decided_with_their_primary_count_as_decided(
    store: TicketStore, clock: FakeClock
):
    primary = await filed(store, clock, "a", timedelta(days=4), requester="first")
    await filed(store, clock, "a", timedelta(days=2), requester="second")
    clock.set(NOW)
    await store.approve(primary, M1, "ok")

    stats = await store.stats()

    assert stats.linked == 0
    assert stats.overall.by_outcome == {"approved": 2, "rejected": 0}
    assert stats.overall.median_seconds == 3 * DAY  # 4 days and 2 days


async def test_cli_stats_prints_the_same_figures_as_text_and_as_json(
    store: TicketStore, clock: FakeClock, db_path, capsys, monkeypatch
):
    oldest = await filed(store, clock, "a", timedelta(days=12))
    await filed(store, clock, "b", timedelta(hours=3))
    await decided(store, clock, "c", timedelta(days=5), timedelta(hours=30), approve=True)
    monkeypatch.setattr(database_module, "_system_clock", lambda: NOW)  # the CLI's store reads the time

    # the CLI runs its own event loop (asyncio.run): in a thread of its own here
    code = await asyncio.to_thread(main, ["tickets", "stats", "--db", str(db_path), "--json"])
    assert code == 0
    parsed = json.loads(capsys.readouterr().out)
    assert parsed["waiting"]["open"] == {
        "under_1_day": 1,
        "1_to_7_days": 0,
        "7_to_30_days": 1,
        "over_30_days": 0,
    }
    assert parsed["waiting_total"] == 2
    assert parsed["oldest_waiting_id"] == oldest
    assert parsed["oldest_waiting_seconds"] == 12 * DAY
    assert parsed["recent"] == {
        "count": 1,
        "by_outcome": {"approved": 1, "rejected": 0},
        "median_seconds": 30 * 3600,
    }

    assert await asyncio.to_thread(main, ["tickets", "stats", "--db", str(db_path)]) == 0
    text = capsys.readouterr().out
    assert "waiting for a maintainer: 2 (open 2, claimed 0)" in text
    assert f"oldest waiting: {oldest}, filed 12 d 0 h ago" in text
    assert "median time from filing to decision 1 d 6 h" in text
