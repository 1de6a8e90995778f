"""The removal list (:mod:`bot.tickets.removal_list`): versioned and exact."""

from __future__ import annotations

from bot.tickets.store import TicketStore
from tests.bot.tickets.conftest import FakeClock, entry, query
from tests.bot.tickets.helpers import ALICE, BOB, CAROL, M1, M2, REASON

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
