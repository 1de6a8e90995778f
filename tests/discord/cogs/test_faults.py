"""The bot under its own faults and under load, through the real cogs on the fake Discord.

* a hashing process that dies: the check that met it is answered "try again", the desk starts a new
  pool, and the next check (by ``/check`` or in the privacy channel) is answered;
* a crowd of ``/check`` at once: every interaction is acknowledged, at most
  ``max_checks_in_memory`` pictures are in the desk, and the rest are told the desk is busy;
* the ticket database locked by another connection past its timeout, or full: the person is told
  to try again and nothing is half-written;
* the gateway connection lost (closed by Discord, or cut): discord.py resumes the session on
  ``tests/discord/fake_gateway.py`` and the bot keeps answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import multiprocessing
import os
import re
import signal
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import discord.http
import pytest
from discord.gateway import DiscordWebSocket

from bench.load import crowd, run_crowd
from bot import messages
from bot.checking import hash_submitted_picture
from bot.desk import Desk
from bot.index.search import HashIndex
from bot.tickets.database import StoreFullError
from bot.tickets.intake import file_removal_request
from cogs.app import RemovalDeskBot
from tests.discord.cogs.conftest import bot_of, query_bytes, settle
from tests.discord.cogs.test_intake import (
    check,
    checked_result,
    followup,
    only_callback,
    open_modal,
    picture_in,
    post_message,
    submit,
)
from tests.discord.fake_discord import JSON, BotHarness, FakeDiscord, RecordedRequest, World, running_bot
from tests.discord.fake_gateway import FakeGateway

DM_MESSAGES = r"/channels/{}/messages"


@pytest.fixture
def pools() -> Iterator[list[ProcessPoolExecutor]]:
    """Every pool the desk's factory made, shut down at the end."""
    made: list[ProcessPoolExecutor] = []
    yield made
    for pool in made:
        pool.shutdown(wait=True, cancel_futures=True)


def posted_picture(harness: BotHarness, data: bytes) -> JSON:
    world = harness.world
    attachment = picture_in(harness, data, world.privacy_channel_id)
    return world.message_create("is this me?", attachments=[attachment])


def kill_worker(pool: ProcessPoolExecutor) -> None:
    """SIGKILL the pool's hashing process, as the OOM killer would, and wait until the pool knows."""
    processes = pool._processes  # type: ignore[attr-defined]
    for pid in list(processes):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not pool._broken:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the pool never noticed its worker died"
        time.sleep(0.01)


async def test_a_dead_hashing_process_is_replaced_and_the_next_check_is_answered(
    fake: FakeDiscord, world: World, desk: Desk, pools: list[ProcessPoolExecutor]
) -> None:
    def factory() -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        pools.append(pool)
        return pool

    pooled = Desk(desk.settings, HashIndex(Path(desk.settings.discord.index)), desk.store, None,
                  executor_factory=factory)  # fmt: skip
    data = query_bytes("coffee__mirrored.jpg")
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(pools[0], hash_submitted_picture, data, desk.settings)  # worker started
    async with running_bot(fake, world=world, bot_factory=bot_of(pooled)) as harness:
        await settle(harness)

        kill_worker(pools[0])
        since, _ = await check(harness, data)
        assert followup(fake, since).json["content"] == messages.HASHING_WORKER_DIED
        assert len(pools) == 2
        assert pooled.executor is pools[1]

        since, _ = await check(harness, data)
        assert followup(fake, since).json["content"] == messages.matches_found(1)

        # In the privacy channel: deleted, and the person is told to send it again, not left with nothing.
        kill_worker(pools[1])
        member = world.member
        since = post_message(harness, posted_picture(harness, data))
        await settle(harness, 15)
        (dm,) = fake.find("POST", DM_MESSAGES.format(member.dm_channel_id), since=since)
        assert messages.HASHING_WORKER_DIED in dm.json["content"]
        assert fake.find("DELETE", rf"/channels/{world.privacy_channel_id}/messages/\d+", since=since)
        since = post_message(harness, posted_picture(harness, data))
        await settle(harness, 15)
        (dm,) = fake.find("POST", DM_MESSAGES.format(member.dm_channel_id), since=since)
        assert messages.matches_found(1) in dm.json["content"]
        harness.assert_no_errors()
    assert len(pools) == 3


async def test_a_crowd_of_checks_is_acknowledged_bounded_and_the_overflow_told_busy(
    fake: FakeDiscord, world: World, desk: Desk
) -> None:
    """40 people at once, at most 4 pictures in the desk (``python -m bench.load`` runs 200)."""
    settings = dataclasses.replace(desk.settings, discord=dataclasses.replace(desk.settings.discord,
                                   max_checks_in_memory=4))  # fmt: skip
    bounded = Desk(settings, desk.index, desk.store, desk.executor)
    async with running_bot(fake, world=world, bot_factory=bot_of(bounded)) as harness:
        await settle(harness)
        figures = await run_crowd(harness, bounded, crowd(40), query_bytes("coffee__mirrored.jpg"))
        harness.assert_no_errors()

    assert len(figures.acks) == 40  # every interaction acknowledged (a defer), in time
    assert max(figures.acks) < 3.0
    assert figures.peak_pictures == 4
    assert figures.other == []  # no error, no silence: each got the match or "busy"
    assert figures.matched >= 4
    assert figures.busy == bounded.refused_busy == 40 - figures.matched
    answers = {r.json["content"] for r in fake.find("POST", r"/webhooks/\d+/[^/]+")}
    busy = answers - {messages.matches_found(1)}
    assert busy
    said = messages.busy(60).removesuffix("1 minutes.")
    assert all(a.startswith(said[: said.index("try again in")]) for a in busy), busy
    assert all(re.search(r"try again in \d+ (seconds|minutes)\.$", a) for a in busy), busy


# --------------------------------------------------------------------------------------------------
# The ticket database locked or full
# --------------------------------------------------------------------------------------------------

TICKET_ID = re.compile(r"\*\*([0-9A-Z]{6})\*\*")


def row_counts(path: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("tickets", "ticket_entries", "audit_events", "counters")}  # fmt: skip


async def request_after_check(harness: BotHarness) -> tuple[JSON, RecordedRequest]:
    result = await checked_result(harness, "coffee__mirrored.jpg")
    return result, await open_modal(harness, result)


async def test_a_request_while_another_process_holds_the_write_lock_says_try_again_and_writes_nothing(
    desk_harness: BotHarness, desk: Desk
) -> None:
    fake = desk_harness.fake
    await desk.store.database._writer.execute("PRAGMA busy_timeout = 200")
    result, modal = await request_after_check(desk_harness)
    before = row_counts(desk.settings.tickets.database_path)

    shell = sqlite3.connect(desk.settings.tickets.database_path, isolation_level=None)
    shell.execute("BEGIN IMMEDIATE")  # a maintainer's shell, writing
    try:
        since = await submit(desk_harness, modal, "please")
    finally:
        shell.execute("ROLLBACK")
        shell.close()
    assert only_callback(fake, since)["type"] == 5  # acknowledged before the write
    assert followup(fake, since).json["content"] == messages.STORE_BUSY
    assert row_counts(desk.settings.tickets.database_path) == before

    modal = await open_modal(desk_harness, result)  # the same check again, once the lock is free
    since = await submit(desk_harness, modal, "please")
    assert TICKET_ID.search(followup(fake, since).json["content"])


async def test_a_request_when_the_disk_is_full_says_try_again_and_writes_nothing(
    desk_harness: BotHarness, desk: Desk
) -> None:
    fake = desk_harness.fake
    result, modal = await request_after_check(desk_harness)
    path = desk.settings.tickets.database_path
    writer = desk.store.database._writer
    (pages,) = await (await writer.execute("PRAGMA page_count")).fetchone()  # type: ignore[misc]
    await writer.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full: no page can be added
    # Fill the room left in the pages there are with other people's requests like this one, until
    # SQLite answers SQLITE_FULL ("database or disk is full"): the same request then meets it too.
    (check_result,) = [pending.result for pending in desk._pending.values()]
    note = "please " * 130
    for requester in range(10_000, 10_500):
        try:
            await file_removal_request(desk.store, desk.index, check_result, str(requester), note=note)
        except StoreFullError:
            break
    else:
        pytest.fail("the database never filled up")
    before = row_counts(path)

    since = await submit(desk_harness, modal, note)
    assert only_callback(fake, since)["type"] == 5
    assert followup(fake, since).json["content"] == messages.STORE_FULL
    assert row_counts(path) == before  # nothing half-written
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    await writer.execute("PRAGMA max_page_count = 1073741823")  # room again
    modal = await open_modal(desk_harness, result)
    since = await submit(desk_harness, modal, note)
    assert TICKET_ID.search(followup(fake, since).json["content"])


# --------------------------------------------------------------------------------------------------
# The gateway connection lost
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [4000, None])  # a close frame; the connection cut
async def test_the_bot_resumes_after_the_gateway_connection_is_lost_and_keeps_answering(
    fake: FakeDiscord, world: World, desk: Desk, code: int | None
) -> None:
    previous_gateway, previous_base = DiscordWebSocket.DEFAULT_GATEWAY, discord.http.Route.BASE
    for person in world.people:
        fake.add_user(person.user_payload())
        if person.dm_channel_id:
            fake.add_channel(world.dm_channel_payload(person))
    for channel in world.channel_payloads():
        fake.add_channel(channel)
    discord.http.Route.BASE = fake.api_base
    try:
        async with FakeGateway(world) as gateway:
            settings = dataclasses.replace(desk.settings, discord=dataclasses.replace(desk.settings.discord,
                                           gateway_url=gateway.url))  # fmt: skip
            bot = RemovalDeskBot(settings, Desk(settings, desk.index, desk.store, desk.executor))
            await bot.login("fake-token")
            running = asyncio.create_task(bot.connect(reconnect=True))
            try:
                await asyncio.wait_for(bot.wait_until_ready(), 10)

                async def check_over_the_gateway() -> str:
                    since = fake.mark()
                    attachment = fake.add_attachment(
                        query_bytes("coffee__mirrored.jpg"), "me.jpg", "image/jpeg"
                    )
                    payload = world.command_interaction("check", options={"image": attachment})
                    fake.interactions[int(payload["id"])] = payload
                    await gateway.dispatch("INTERACTION_CREATE", payload)
                    answer = await fake.wait_for("POST", r"/webhooks/\d+/[^/]+", since=since, timeout=15)
                    return str(answer.json["content"])

                assert await check_over_the_gateway() == messages.matches_found(1)
                await gateway.drop(code)
                await gateway.wait_connected(15)
                assert gateway.identifies == 1  # resumed, not a new session
                (resumed,) = gateway.resumes
                assert resumed["session_id"] == gateway.session_id
                assert not running.done()
                assert await check_over_the_gateway() == messages.matches_found(1)
            finally:
                await bot.close()
                await asyncio.wait_for(running, 10)
    finally:
        DiscordWebSocket.DEFAULT_GATEWAY, discord.http.Route.BASE = previous_gateway, previous_base
