"""The desk the bot works through (bot.desk): checks hashed in the executor it is given, their results
kept briefly under a token only their owner can use, tickets filed from them once, and the per-person
limits running on the desk's clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from bot.checking import CheckResult, check_picture
from bot.config import Settings, load_settings
from bot.desk import Desk
from bot.index.search import HashIndex
from bot.tickets.store import TicketStore
from tests.made_up import index_of_photos, jpeg, photo

SIZE = (320, 240)
SEEDS = range(600, 602)


class FakeClock:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CountingExecutor(ThreadPoolExecutor):
    """A one-thread executor that counts what it was given."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.submitted: list[str] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted.append(fn.__name__)
        return super().submit(fn, *args, **kwargs)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> HashIndex:
    return index_of_photos(tmp_path_factory.mktemp("desk"), SEEDS, SIZE)


@pytest.fixture(scope="module")
def checked(index: HashIndex) -> CheckResult:
    """A check of a copy of photo1, made once: what the tests of remembering and filing start from."""
    settings = load_settings(with_deployment_files=False)
    return check_picture(jpeg(photo(SEEDS[1], SIZE), quality=80), index, settings)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def executor() -> Iterator[CountingExecutor]:
    with CountingExecutor() as running:
        yield running


@pytest.fixture
def desk(settings: Settings, index: HashIndex, store: TicketStore, executor, clock) -> Desk:
    return Desk(settings, index, store, executor, clock=clock)


def found_keys(result: CheckResult) -> list[str]:
    return [Path(item.entry.key).stem for item in result.found]


async def test_a_check_is_hashed_in_the_given_executor_and_finds_the_copy(desk: Desk, executor):
    result = await desk.check(jpeg(photo(SEEDS[1], SIZE), quality=80))

    assert found_keys(result) == ["photo1"]
    assert executor.submitted == ["hash_submitted_picture_timed"]


async def test_a_check_leaves_out_entries_whose_removal_was_approved(desk: Desk, store: TicketStore):
    copy = jpeg(photo(SEEDS[0], SIZE), quality=80)
    first = await desk.check(copy)
    assert found_keys(first) == ["photo0"]
    token = desk.remember(owner=5, result=first)
    ticket = await desk.request_removal(token, owner=5, note=None)
    assert ticket is not None
    await store.claim(ticket.id, by="maintainer")
    await store.approve(ticket.id, by="maintainer", reason="the requester's own photo")

    assert found_keys(await desk.check(copy)) == []


def test_a_remembered_check_is_its_owners_until_it_expires(desk: Desk, settings: Settings, clock, checked):
    result = checked
    token = desk.remember(owner=1, result=result)

    assert desk.recall(token, owner=1) is result
    assert desk.recall(token, owner=2) is None  # another person's click
    assert desk.recall("not-a-token", owner=1) is None
    clock.advance(settings.discord.pending_check_seconds - 1)
    assert desk.recall(token, owner=1) is result
    clock.advance(1)
    assert desk.recall(token, owner=1) is None


def test_tokens_are_unguessable_and_expired_checks_are_not_kept(
    desk: Desk, settings: Settings, clock, checked
):
    result = checked
    old = [desk.remember(owner=n, result=result) for n in range(5)]
    assert len(set(old)) == 5
    assert all(len(token) >= 16 for token in old)

    clock.advance(settings.discord.pending_check_seconds)
    new = desk.remember(owner=9, result=result)

    assert list(desk._pending) == [new]  # only hashes were ever kept, and now not even those


async def test_a_dropped_check_is_gone_at_once(desk: Desk, checked):
    result = checked
    token = desk.remember(owner=1, result=result)

    desk.drop(token)
    desk.drop(token)  # twice: nothing left to drop, no error

    assert desk.recall(token, owner=1) is None
    assert await desk.request_removal(token, owner=1, note=None) is None


async def test_a_request_files_one_ticket_for_what_the_check_found(desk: Desk, store: TicketStore, checked):
    result = checked
    token = desk.remember(owner=42, result=result)

    ticket = await desk.request_removal(token, owner=42, note="a photo of me")
    again = await desk.request_removal(token, owner=42, note="a photo of me")

    assert ticket is not None
    assert (ticket.requester, ticket.note, ticket.source) == ("42", "a photo of me", "discord")
    assert [Path(entry.key).stem for entry in ticket.entries] == found_keys(result) == ["photo1"]
    assert again is None  # the check was used up
    assert [filed.id for filed in await store.list_tickets(requester="42")] == [ticket.id]


async def test_a_request_after_expiry_or_by_someone_else_files_nothing(
    desk: Desk, store: TicketStore, settings: Settings, clock, checked
):
    result = checked
    token = desk.remember(owner=1, result=result)

    assert await desk.request_removal(token, owner=2, note=None) is None
    assert desk.recall(token, owner=1) is result  # someone else's click does not use it up
    clock.advance(settings.discord.pending_check_seconds)
    assert await desk.request_removal(token, owner=1, note=None) is None
    assert await store.list_tickets() == []


def test_the_limits_follow_the_settings_and_the_desks_clock(desk: Desk, settings: Settings, clock):
    discord = settings.discord
    for _ in range(discord.check_uses):
        assert desk.check_cooldown.try_acquire(7) == 0
    assert desk.check_cooldown.try_acquire(7) == pytest.approx(discord.check_per_seconds)
    assert desk.check_cooldown.try_acquire(8) == 0  # per person
    clock.advance(discord.check_per_seconds)
    assert desk.check_cooldown.try_acquire(7) == 0

    for _ in range(discord.request_uses):
        assert desk.request_cooldown.try_acquire(7) == 0
    assert desk.request_cooldown.try_acquire(7) == pytest.approx(discord.request_per_seconds)
