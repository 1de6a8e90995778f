"""The bot serving a folder of parts, and a plain index that grows while it runs, through the fake
Discord: ``/check`` answers as the one-folder index holding the same pictures (entry ids named
``PART/SHARD/ROW``), a ticket keeps the matched part's entry hashes, a shard appended while the bot
runs is matched by the next check, an approved removal stops matching at once, and a part gone
from disk gives the person "try later" and stores nothing."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot import messages
from bot.config import Settings, load_settings
from bot.desk import Desk
from bot.index.build import build_index
from bot.index.parts import PartedIndex, write_parts
from bot.index.search import HashIndex
from bot.tickets.intake import matched_entries
from bot.tickets.store import TicketStore
from tests.discord.cogs.conftest import SAMPLES, query_bytes
from tests.discord.cogs.test_intake import (
    FILENAME,
    assert_nothing_stored,
    check,
    checked_result,
    file_request,
    followup,
    open_modal,
    submit,
)
from tests.discord.fake_discord import BotHarness, World

QUERY = "coffee__mirrored.jpg"  # a copy of coffee.jpg, mirrored


def dataset(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True)
    for name in names:
        shutil.copy(SAMPLES / "dataset" / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def parts_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """conftest's sample index (coffee, astronaut, chelsea) as two parts, coffee in the second."""
    root = tmp_path_factory.mktemp("parts")
    served, settings = root / "served", load_settings()
    for name, pictures in (("parts/000", ("astronaut.jpg", "chelsea.jpg")), ("parts/001", ("coffee.jpg",))):
        source = dataset(root / "sources" / name, *pictures)
        build_index([source], served / name, settings, workers=1, show_progress=False)
    write_parts(served, ["parts/000", "parts/001"])
    return served


@pytest.fixture
def served(parts_folder: Path, tmp_path: Path) -> Path:
    """A copy of the parts a test may take apart."""
    return Path(shutil.copytree(parts_folder, tmp_path / "served"))


@pytest.fixture
async def desk(
    settings: Settings, world: World, served: Path, tmp_path: Path, hash_executor: ThreadPoolExecutor
) -> AsyncIterator[Desk]:
    """The desk (``desk_harness`` picks this one up) serving the folder of parts, as run_bot does."""
    desk_settings = world.bot_settings(settings, served, tmp_path / "tickets.sqlite3")
    store = await TicketStore.open(desk_settings.tickets.database_path, desk_settings.tickets)
    try:
        yield Desk(desk_settings, PartedIndex(served), store, hash_executor)
    finally:
        await store.close()


async def test_a_check_against_parts_answers_as_the_one_index_and_its_ticket_keeps_the_parts_hashes(
    desk_harness: BotHarness, desk: Desk, sample_index: Path, hash_executor: ThreadPoolExecutor
) -> None:
    one_index = HashIndex(sample_index)
    one = await Desk(desk.settings, one_index, desk.store, hash_executor).check(query_bytes(QUERY))
    assert [item.entry.key for item in one.found] == ["coffee.jpg"]

    result = await checked_result(desk_harness, QUERY)
    assert result["content"] == messages.matches_found(1)
    (embed,) = result["embeds"]
    assert [field["name"] for field in embed["fields"]] == ["coffee.jpg"]
    (pending,) = desk._pending.values()
    assert [(item.entry, item.match.distance, item.match.variant) for item in pending.result.found] == [
        (item.entry, item.match.distance, item.match.variant) for item in one.found
    ]

    ticket = await desk.store.get(await file_request(desk_harness, QUERY))
    (stored,) = ticket.entries
    (expected,) = matched_entries(one_index, one.found)
    assert stored.entry_id == "parts/001/00000/0"
    assert expected.entry_id != stored.entry_id  # the one index names it by its own shard and row
    assert dataclasses.replace(stored, entry_id=expected.entry_id) == expected


async def test_an_approved_removal_stops_matching_at_once_over_parts(
    desk_harness: BotHarness, desk: Desk
) -> None:
    ticket_id = await file_request(desk_harness, QUERY)
    await desk.store.approve(ticket_id, "maintainer", "it is them")

    since, _ = await check(desk_harness, query_bytes(QUERY))

    contact = desk.settings.discord.contact
    assert followup(desk_harness.fake, since).json["content"] == messages.no_match(3, contact, 0, 1)


async def test_a_shard_appended_to_the_bots_plain_index_is_matched_without_a_restart(
    desk_harness: BotHarness, desk: Desk, served: Path, tmp_path: Path
) -> None:
    plain = served / "parts" / "000"  # astronaut and chelsea: an index folder of its own
    desk.index = PartedIndex(plain)  # what run_bot serves for a plain folder
    contact = desk.settings.discord.contact
    since, _ = await check(desk_harness, query_bytes(QUERY))
    assert followup(desk_harness.fake, since).json["content"] == messages.no_match(2, contact)

    source = dataset(tmp_path / "more", "coffee.jpg")
    build_index([source], plain, desk.settings, workers=1, append=True, show_progress=False)

    since, _ = await check(desk_harness, query_bytes(QUERY))
    assert followup(desk_harness.fake, since).json["content"] == messages.matches_found(1)
    (pending,) = desk._pending.values()
    assert [item.match.shard for item in pending.result.found] == ["00001"]


async def test_a_part_gone_gives_the_person_try_later_and_stores_nothing(
    desk_harness: BotHarness, desk: Desk, served: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    result = await checked_result(desk_harness, QUERY)  # found while every part was there
    (served / "parts" / "001").rename(tmp_path / "unmounted")
    caplog.set_level(logging.WARNING, logger="bot.desk")

    modal = await open_modal(desk_harness, result)
    since = await submit(desk_harness, modal, "")
    assert followup(desk_harness.fake, since).json["content"] == messages.INDEX_INCOMPLETE
    assert await desk.store.list_tickets() == []

    desk._pending.clear()
    since, _ = await check(desk_harness, query_bytes(QUERY))
    assert followup(desk_harness.fake, since).json["content"] == messages.INDEX_INCOMPLETE
    await assert_nothing_stored(desk)
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all("parts/001" in record.getMessage() for record in warnings)
    assert FILENAME not in caplog.text
