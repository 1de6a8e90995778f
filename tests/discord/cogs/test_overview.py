"""The maintainers' overview on the fake Discord: /index info and /tickets stats.

Driven through the real ``RemovalDeskBot`` like the other maintainer commands (see test_review.py):
a maintainer sees each privately, with the figures of the desk's own index and ticket store; a
member without the role, and a maintainer in a DM, are refused by the server-side role check.
"""

from __future__ import annotations

import json

import pytest

from bot import messages
from bot.desk import Desk
from bot.index.storage import IndexHistory
from bot.signals import signal_kinds
from cogs import render
from tests.discord.cogs.conftest import INDEXED
from tests.discord.cogs.test_review import (
    CHANNEL_MESSAGE,
    DEFERRED,
    assert_refused,
    desk_bot,
    fields,
    file_entries,
    run_command,
    take_check_failures,
    writes,
)
from tests.discord.fake_discord import EPHEMERAL, BotHarness

__all__ = ["desk_bot"]  # the fixture, imported so this module can use it


async def test_a_maintainer_sees_the_desks_index_described(desk_bot: BotHarness, desk: Desk) -> None:
    world = desk_bot.world
    ticket = await file_entries(desk, str(world.member.id), (1, 2))
    await desk.store.approve(ticket.id, "alice", "ok")  # two approved removals: never matched again
    mark = desk_bot.fake.mark()

    answer = await run_command(desk_bot, "index info", world.maintainer)

    assert answer.json["type"] == DEFERRED
    assert answer.data["flags"] & EPHEMERAL
    [embed] = answer.data["embeds"]
    assert embed["title"] == messages.INDEX_INFO_LABEL
    shown = fields(embed)
    index = desk.index
    assert shown[messages.INDEX_ENTRIES_FIELD].startswith(
        f"{len(INDEXED)} entries in 1 shard ({index.rows} rows"
    )
    assert "2 approved removals, never matched" in shown[messages.INDEX_ENTRIES_FIELD]
    built = IndexHistory.read(index.folder).built_at
    assert built is not None
    assert shown[messages.INDEX_BUILT_FIELD].startswith(render.when(built))  # Discord's time markup
    [source] = index.shards[0].summary()["sources"]
    assert (
        shown[messages.INDEX_SOURCES_FIELD]
        == f"`{source}`: {len(INDEXED)} entries in 1 shard, 0 could not be hashed"
    )
    for kind in signal_kinds():
        assert f"{kind.name} ({kind.bits} bits" in shown[messages.INDEX_KINDS_FIELD]
    rule = desk.settings.matching
    assert (
        f"phash ≤ {rule.phash_max_distance}, pdq ≤ {rule.pdq_max_distance}"
        in (shown[messages.INDEX_THRESHOLDS_FIELD])
    )
    assert f"min shape {rule.verify_min_shape}" in shown[messages.INDEX_THRESHOLDS_FIELD]
    assert shown[messages.INDEX_FORMAT_FIELD].startswith("removal-desk-index version 1 · ")
    assert writes(desk_bot.fake, mark) == []  # nothing posted anywhere: only the private follow-up


async def test_a_maintainer_sees_ticket_stats(desk_bot: BotHarness, desk: Desk) -> None:
    world = desk_bot.world
    waiting = await file_entries(desk, "email:a", (1,))
    claimed = await file_entries(desk, "email:b", (2,))
    decided = await file_entries(desk, "email:c", (3,))
    await desk.store.claim(claimed.id, str(world.maintainer.id))
    await desk.store.reject(decided.id, str(world.maintainer.id), "a press photo")

    answer = await run_command(desk_bot, "tickets stats", world.maintainer)

    assert answer.json["type"] == CHANNEL_MESSAGE
    assert answer.data["flags"] & EPHEMERAL
    [embed] = answer.data["embeds"]
    assert embed["title"] == messages.STATS_LABEL
    shown = fields(embed)
    assert shown[messages.STATS_WAITING_FIELD].startswith("2 (open 1, claimed 1)")
    assert shown[messages.STATS_AGES_FIELD].splitlines()[0] == "under 1 day: open 1, claimed 1"
    assert shown[messages.STATS_OLDEST_FIELD].startswith(f"{waiting.id}, filed ")
    recent = shown[messages.decided_heading(90)]
    assert recent.startswith("1 (approved 0, rejected 1); median time from filing to decision ")
    assert shown[messages.STATS_WITHDRAWN_FIELD] == "0"
    assert "a press photo" not in json.dumps(answer.data)  # figures only


async def test_ticket_stats_with_nothing_filed_says_there_is_no_median_yet(desk_bot: BotHarness) -> None:
    answer = await run_command(desk_bot, "tickets stats", desk_bot.world.maintainer)
    shown = fields(answer.data["embeds"][0])
    assert shown[messages.STATS_OLDEST_FIELD] == messages.NOTHING_WAITING_LABEL
    assert "no decision to take a median of yet" in shown[messages.decided_heading(None)]


@pytest.mark.parametrize("name", ["index info", "tickets stats"])
@pytest.mark.parametrize("where", ["guild", "dm"])
async def test_a_member_is_refused_the_overview(
    desk_bot: BotHarness, desk: Desk, name: str, where: str
) -> None:
    world = desk_bot.world
    await file_entries(desk, str(world.member.id))
    mark = desk_bot.fake.mark()

    answer = await run_command(desk_bot, name, world.member, dm=where == "dm")

    assert_refused(answer)
    assert "embeds" not in answer.data or not answer.data["embeds"]
    assert writes(desk_bot.fake, mark) == []
    assert take_check_failures(desk_bot) == []


@pytest.mark.parametrize("name", ["index info", "tickets stats"])
async def test_a_maintainer_is_refused_the_overview_in_a_direct_message(
    desk_bot: BotHarness, name: str
) -> None:
    answer = await run_command(desk_bot, name, desk_bot.world.maintainer, dm=True)
    assert_refused(answer)
    assert take_check_failures(desk_bot) == []
