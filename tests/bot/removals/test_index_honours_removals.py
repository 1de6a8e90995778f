"""An approved removal stops matching: HashIndex.find and check_picture with ``removed``.

Proves, on a real index of sample photos (coffee at two URLs, astronaut and chelsea without a
URL): ``removed`` drops exactly the entries whose (key, url or "") is listed and keeps the others,
including the same picture at another URL; and end to end, through a real ticket store, a ticket
filed from check_picture's result hides its entries once approved, not before (open, claimed),
and they match again once the decision is reopened.
"""

from __future__ import annotations

from bot.checking import CheckResult, check_picture, hash_submitted_picture
from bot.config import Settings
from bot.index.search import HashIndex
from bot.tickets.intake import file_removal_request
from bot.tickets.lifecycle import TicketState
from bot.tickets.store import TicketStore

from .conftest import ASTRONAUT_KEY, CHELSEA_KEY, COFFEE_A, COFFEE_B, DATASET, QUERIES


def identities(found: list) -> set[tuple[str, str | None]]:
    return {(item.entry.key, item.entry.url) for item in found}


def test_find_without_removals_finds_every_copy(index: HashIndex, settings: Settings):
    query, views = hash_submitted_picture((DATASET / "coffee.jpg").read_bytes(), settings)

    assert identities(index.find(query, settings.matching, views=views)) == {COFFEE_A, COFFEE_B}


def test_a_removed_entry_is_gone_and_the_others_stay(index: HashIndex, settings: Settings):
    query, views = hash_submitted_picture((DATASET / "coffee.jpg").read_bytes(), settings)

    found = index.find(query, settings.matching, removed={COFFEE_A}, views=views)

    assert identities(found) == {COFFEE_B}
    assert index.find(query, settings.matching, removed={COFFEE_A, COFFEE_B}, views=views) == []
    # an unrelated removal changes nothing
    assert identities(index.find(query, settings.matching, removed={(ASTRONAUT_KEY, "")}, views=views)) == {
        COFFEE_A,
        COFFEE_B,
    }


def test_removal_needs_both_key_and_url(index: HashIndex, settings: Settings):
    query, views = hash_submitted_picture((DATASET / "coffee.jpg").read_bytes(), settings)

    for removed in ({(COFFEE_A[0], "")}, {(COFFEE_A[0], COFFEE_B[1])}, {("other-key", COFFEE_A[1])}):
        found = index.find(query, settings.matching, removed=removed, views=views)
        assert identities(found) == {COFFEE_A, COFFEE_B}


def test_an_entry_without_url_is_removed_by_key_and_empty_url(index: HashIndex, settings: Settings):
    data = (DATASET / "astronaut.jpg").read_bytes()
    assert identities(check_picture(data, index, settings).found) == {(ASTRONAUT_KEY, None)}

    assert check_picture(data, index, settings, removed=frozenset({(ASTRONAUT_KEY, "")})).found == []
    chelsea = (DATASET / "chelsea.jpg").read_bytes()
    assert identities(check_picture(chelsea, index, settings, {(ASTRONAUT_KEY, "")}).found) == {
        (CHELSEA_KEY, None)
    }


async def test_an_approved_ticket_hides_its_entries_from_check(
    store: TicketStore, index: HashIndex, settings: Settings
):
    data = (DATASET / "coffee.jpg").read_bytes()
    result = check_picture(data, index, settings, await store.removed_entries())
    assert identities(result.found) == {COFFEE_A, COFFEE_B}

    ticket = await file_removal_request(store, index, result, "requester-1")
    assert {(entry.key, entry.url) for entry in ticket.entries} == {COFFEE_A, COFFEE_B}
    assert ticket.state is TicketState.OPEN
    assert await store.removed_entries() == frozenset()
    assert identities(check_picture(data, index, settings, await store.removed_entries()).found) == {
        COFFEE_A,
        COFFEE_B,
    }

    await store.claim(ticket.id, "maintainer-1")
    assert identities(check_picture(data, index, settings, await store.removed_entries()).found) == {
        COFFEE_A,
        COFFEE_B,
    }

    await store.approve(ticket.id, "maintainer-1", "a private photo")
    removed = await store.removed_entries()
    assert removed == {COFFEE_A, COFFEE_B}
    assert check_picture(data, index, settings, removed).found == []
    mirrored = (QUERIES / "coffee__mirrored.jpg").read_bytes()
    assert check_picture(mirrored, index, settings, removed).found == []  # copies of it as well
    astronaut = (DATASET / "astronaut.jpg").read_bytes()
    assert identities(check_picture(astronaut, index, settings, removed).found) == {(ASTRONAUT_KEY, None)}

    await store.reopen(ticket.id, "maintainer-2", "appeal")
    assert identities(check_picture(data, index, settings, await store.removed_entries()).found) == {
        COFFEE_A,
        COFFEE_B,
    }


async def test_approving_one_copy_leaves_the_other_copy_findable(
    store: TicketStore, index: HashIndex, settings: Settings
):
    data = (DATASET / "coffee.jpg").read_bytes()
    result = check_picture(data, index, settings)
    only_a = CheckResult(result.query, [item for item in result.found if item.entry.key == COFFEE_A[0]])
    ticket = await file_removal_request(store, index, only_a, "requester-1")

    await store.approve(ticket.id, "maintainer-1", "the requester's own upload")

    removed = await store.removed_entries()
    assert removed == {COFFEE_A}
    assert identities(check_picture(data, index, settings, removed).found) == {COFFEE_B}


async def test_a_rejected_ticket_hides_nothing(store: TicketStore, index: HashIndex, settings: Settings):
    data = (DATASET / "astronaut.jpg").read_bytes()
    ticket = await file_removal_request(store, index, check_picture(data, index, settings), "requester-1")

    await store.reject(ticket.id, "maintainer-1", "a public press photo")

    assert await store.removed_entries() == frozenset()
    assert identities(check_picture(data, index, settings, await store.removed_entries()).found) == {
        (ASTRONAUT_KEY, None)
    }
