"""The maintainers' side on the fake Discord: review cards, their buttons, /tickets, /removals, the relay.

Everything runs through the real ``RemovalDeskBot`` (cogs, dynamic buttons, command tree) and real
discord.py objects; assertions are on the HTTP requests the bot made (``fake.requests``) and on the
ticket store. Tickets are filed either from a checked sample picture (``file_from_picture``) or straight
into the store with synthetic dataset entries that carry URLs (``file_entries``), the way the command
line files them, and then relayed with ``bot.relay.run_once()``.

discord.py runs ``DynamicItem`` button callbacks in tasks named ``discord-ui-dynamic-item-*``, which
``BotHarness.idle()`` does not track; :func:`settle` waits for those too.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import csv
import dataclasses
import io
import json
import logging
import sqlite3
import threading
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import discord
import discord.gateway
import discord.http
import pytest
from discord import app_commands

import bot.cli
from bot import messages
from bot.config import Settings
from bot.desk import Desk
from bot.index.search import FoundEntry
from bot.index.storage import DatasetEntry
from bot.matching import EntryMatch, MatchDistance
from bot.tickets.intake import file_removal_request
from bot.tickets.lifecycle import TicketState
from bot.tickets.models import MatchedEntry, StoredQuery, Ticket
from bot.tickets.store import TicketStore
from cogs import relay, render
from cogs.app import RemovalDeskBot, intents_for, point_at
from tests.discord.cogs.conftest import bookkeeping, bot_of, query_bytes, settle
from tests.discord.fake_discord import (
    CANNOT_DM,
    EPHEMERAL,
    MISSING_PERMISSIONS,
    BotHarness,
    FakeDiscord,
    Person,
    RawOption,
    RecordedRequest,
    World,
    running_bot,
)

CALLBACK = r"/interactions/\d+/[^/]+/callback"
FOLLOWUP = r"/webhooks/\d+/[^/]+"
COMMAND_SYNC = r"/applications/\d+/guilds/\d+/commands"
UPDATE_MESSAGE, MODAL, CHANNEL_MESSAGE, DEFERRED, DEFERRED_UPDATE_MESSAGE = 7, 9, 4, 5, 6
# A stored query whose hex strings are easy to look for: they must never reach Discord.
QUERY = StoredQuery(variants=("original",), phash=("feedfacecafebeef",), pdq=("ab" * 32,), quality=90)


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def entry(n: int, *, url_length: int = 0, key_length: int = 0) -> MatchedEntry:
    """A synthetic dataset entry with a URL, as a LAION-style index would hold it."""
    url = f"https://img.example.org/{n:06d}.jpg"
    if url_length:
        url = url[:-4] + "x" * (url_length - len(url)) + ".jpg"
    key = f"laion/{n:09d}"
    if key_length:
        key = key + "k" * (key_length - len(key))
    return MatchedEntry(
        key=key,
        url=url,
        caption=f"caption {n}",
        entry_id=f"0/{n}",
        phash=f"{n:016x}",
        pdq=f"{n:064x}",
        quality=100,
        pdq_distance=6,
        phash_distance=2,
        variant="original",
    )


async def file_entries(
    desk: Desk, requester: str, numbers: tuple[int, ...] = (1, 2), note: str | None = None
) -> Ticket:
    """A ticket filed straight into the store (as ``tickets open`` does), not relayed yet."""
    return await desk.store.create_ticket(
        requester, QUERY, [entry(n) for n in numbers], note=note, source="discord"
    )


async def file_from_picture(desk: Desk, requester: str, note: str | None = None) -> Ticket:
    """A ticket for the sample query picture (a mirrored copy of the indexed coffee.jpg)."""
    result = await desk.check(query_bytes("coffee__mirrored.jpg"))
    return await file_removal_request(desk.store, desk.index, result, requester, note=note, source="discord")


async def card_of(harness: BotHarness, desk: Desk, ticket: Ticket) -> dict[str, Any]:
    """Relay (so the card is posted) and return the card as the fake stores it (live: edits show)."""
    await harness.bot.relay.run_once()  # type: ignore[attr-defined]
    where = await bookkeeping(desk).review_card(ticket.id)
    assert where is not None, f"no review card for {ticket.id}"
    card = harness.fake.find_message(where[1])
    assert card is not None
    return card


def callback_of(fake: FakeDiscord, interaction: Mapping[str, Any]) -> RecordedRequest:
    return fake.last("POST", rf"/interactions/{interaction['id']}/[^/]+/callback")


@dataclasses.dataclass(frozen=True)
class Answer:
    """What the person saw after an interaction: ``kind`` is "card edit", "message" or "modal",
    ``data`` its payload: the callback's own data, or, when the callback only deferred (ticket
    actions answer before writing the database), the edit of the card or the follow-up that
    completed it. ``json`` is the raw callback."""

    json: Any
    kind: str
    data: dict[str, Any]


def answer_of(fake: FakeDiscord, interaction: Mapping[str, Any]) -> Answer:
    callback = callback_of(fake, interaction)
    kind = callback.json["type"]
    if kind in {UPDATE_MESSAGE, CHANNEL_MESSAGE, MODAL}:
        name = {UPDATE_MESSAGE: "card edit", CHANNEL_MESSAGE: "message", MODAL: "modal"}[kind]
        return Answer(callback.json, name, callback.json["data"])
    token = interaction["token"]
    if kind == DEFERRED_UPDATE_MESSAGE and (
        edits := fake.find("PATCH", rf"/webhooks/\d+/{token}/messages/@original")
    ):
        return Answer(callback.json, "card edit", edits[-1].json)
    [follow_up] = fake.find("POST", rf"/webhooks/\d+/{token}") or fake.find(
        "PATCH", rf"/webhooks/\d+/{token}/messages/@original"
    )
    return Answer(
        callback.json,
        "message",
        {
            **follow_up.json,
            "flags": follow_up.json.get("flags", 0) | EPHEMERAL * (kind == DEFERRED_UPDATE_MESSAGE),
        },
    )


async def press(
    harness: BotHarness, action: str, ticket_id: str, invoker: Person, card: Mapping[str, Any]
) -> Answer:
    """Click a card's button as ``invoker``; return the interaction's callback request."""
    payload = harness.world.component_interaction(
        f"rd:ticket:{action}:{ticket_id}", message=copy.deepcopy(dict(card)), invoker=invoker
    )
    harness.dispatch_interaction(payload)
    await settle(harness)
    return answer_of(harness.fake, payload)


async def submit_reason(
    harness: BotHarness, modal: Answer, reason: str, invoker: Person, card: Mapping[str, Any]
) -> Answer:
    """Submit the reason modal sent in ``modal`` (a type 9 callback). Like Discord, the submit of a
    modal opened from a button carries the button's message."""
    text_input = modal.json["data"]["components"][0]["components"][0]["custom_id"]
    payload = harness.world.modal_submit_from_callback(
        modal.json, {text_input: reason}, invoker=invoker, channel_id=int(card["channel_id"])
    )
    payload["message"] = copy.deepcopy(dict(card))
    harness.dispatch_interaction(payload)
    await settle(harness)
    return answer_of(harness.fake, payload)


async def decide(
    harness: BotHarness, action: str, ticket_id: str, invoker: Person, card: Mapping[str, Any], *, reason: str
) -> Answer:
    """Click approve, reject or reopen and submit the modal it opens with ``reason``."""
    modal = await press(harness, action, ticket_id, invoker, card)
    assert modal.json["type"] == MODAL, modal.json
    return await submit_reason(harness, modal, reason, invoker, card)


async def run_command(
    harness: BotHarness,
    name: str,
    invoker: Person,
    options: Mapping[str, Any] | None = None,
    *,
    dm: bool = False,
    resolved: Mapping[str, Any] | None = None,
) -> Answer:
    payload = harness.world.command_interaction(
        name,
        options=options,
        invoker=invoker,
        dm=dm,
        channel_id=None if dm else harness.world.review_channel_id,
        resolved=resolved,
    )
    harness.dispatch_interaction(payload)
    await settle(harness)
    return answer_of(harness.fake, payload)


def buttons(message: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, custom_id) of every button of a message or callback ``data``."""
    return [
        (button["label"], button["custom_id"])
        for row in message.get("components") or []
        for button in row["components"]
    ]


def card_buttons(ticket_id: str, *actions: str) -> list[tuple[str, str]]:
    return [(action.capitalize(), f"rd:ticket:{action}:{ticket_id}") for action in actions]


def fields(embed: Mapping[str, Any]) -> dict[str, str]:
    return {field["name"]: field["value"] for field in embed.get("fields", [])}


def channel_posts(fake: FakeDiscord, channel_id: int, since: int = 0) -> list[RecordedRequest]:
    return fake.find("POST", rf"/channels/{channel_id}/messages", since=since)


def card_edits(fake: FakeDiscord, card: Mapping[str, Any], since: int = 0) -> list[RecordedRequest]:
    return fake.find("PATCH", rf"/channels/{card['channel_id']}/messages/{card['id']}", since=since)


def log_lines(harness: BotHarness, since: int = 0) -> list[str]:
    return [r.json["content"] for r in channel_posts(harness.fake, harness.world.log_channel_id, since)]


def direct_messages(harness: BotHarness, person: Person, since: int = 0) -> list[str]:
    return [r.json["content"] for r in channel_posts(harness.fake, person.dm_channel_id, since)]


def writes(fake: FakeDiscord, since: int) -> list[RecordedRequest]:
    """Everything that would show up somewhere: channel posts, edits, deletes, DMs, command syncs,
    follow-ups (interaction callbacks and ephemeral follow-ups are left out: a refusal is one)."""
    return [
        r
        for r in fake.requests[since:]
        if r.method in {"POST", "PATCH", "PUT", "DELETE"} and not r.match(CALLBACK) and not _refusal(r)
    ]


def _refusal(request: RecordedRequest) -> bool:
    """An ephemeral follow-up: only the person who pressed sees it (a deferred action's refusal)."""
    flags = int((request.json or {}).get("flags") or 0)
    return request.method == "POST" and request.path.startswith("/webhooks/") and bool(flags & EPHEMERAL)


def assert_refused(answer: Answer | RecordedRequest, sentence: str = messages.MAINTAINERS_ONLY) -> None:
    kind, data = (
        (answer.kind, answer.data) if isinstance(answer, Answer) else ("message", answer.json["data"])
    )
    if isinstance(answer, RecordedRequest):
        assert answer.json["type"] == CHANNEL_MESSAGE, answer.json
    assert kind == "message", answer.json
    assert data["flags"] & EPHEMERAL
    assert sentence in data["content"]


def take_check_failures(harness: BotHarness) -> list[BaseException]:
    """CheckFailures discord.py logged for refused slash commands (the bot's tree error handler must
    keep them out of the error log), taken out of ``harness.errors``."""
    failures = [e for e in harness.exceptions if isinstance(e, app_commands.CheckFailure)]
    harness.errors[:] = [
        r for r in harness.errors if not (r.exc_info and isinstance(r.exc_info[1], app_commands.CheckFailure))
    ]
    return failures


async def snapshot(desk: Desk) -> tuple[list[Ticket], int, tuple[int, list[Any]]]:
    """What a refused action must not change: every ticket, the audit log, the removal list."""
    return await desk.store.list_tickets(), len(await desk.store.audit_log()), await desk.store.removal_list()


def second_maintainer(world: World) -> Person:
    """Another member holding the maintainer role."""
    return Person(1_300_000_000_000_000_004, "mika", role_ids=(world.maintainer_role_id,))


@pytest.fixture
async def desk_bot(desk_harness: BotHarness, desk: Desk) -> BotHarness:
    """``desk_harness`` once its start-up work is relayed: the retention purge the bot runs at start
    has logged its event and the relay has posted it, so nothing else happens unless a test acts."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while not await desk.store.audit_log(action="purge"):
        assert loop.time() < deadline, "the bot did not run the retention purge at start"
        await asyncio.sleep(0.01)
    await desk_harness.bot.relay.run_once()  # type: ignore[attr-defined]
    return desk_harness


# --------------------------------------------------------------------------------------------------
# Review cards
# --------------------------------------------------------------------------------------------------


async def test_a_filed_ticket_gets_a_card_listing_the_dataset_entries_and_nothing_about_the_requester(
    desk_bot: BotHarness, desk: Desk
) -> None:
    fake, world = desk_bot.fake, desk_bot.world
    ticket = await file_entries(desk, str(world.member.id), (1, 2), note="It is my old passport photo.")
    mark = fake.mark()

    handled = await desk_bot.bot.relay.run_once()  # type: ignore[attr-defined]

    assert handled == 1  # the "create" event
    [post] = channel_posts(fake, world.review_channel_id, mark)
    body = post.json
    [embed] = body["embeds"]
    assert embed["title"] == f"Removal request {ticket.id}: open"
    listed = fields(embed)
    for n in (1, 2):
        assert listed[entry(n).key].endswith(entry(n).url)
    assert listed["Requester's note"] == "It is my old passport photo."
    assert buttons(body) == card_buttons(ticket.id, "claim", "approve", "reject")
    # Nothing that identifies the requester or their picture: no id, no query hashes, no image.
    text = json.dumps(body)
    assert str(world.member.id) not in text
    assert "feedfacecafebeef" not in text
    assert "ab" * 32 not in text
    assert not post.files
    assert "image" not in embed
    assert "thumbnail" not in embed
    assert body["allowed_mentions"] == {"parse": []}
    card = await bookkeeping(desk).review_card(ticket.id)
    assert card == (world.review_channel_id, int(post.response["id"]))
    # The log channel hears of the request without learning who made it.
    [line] = log_lines(desk_bot, mark)
    assert f"`{ticket.id}` (requester) create" in line
    assert str(world.member.id) not in line


async def test_a_ticket_from_a_checked_picture_gets_a_card_with_the_matched_sample(
    desk_bot: BotHarness, desk: Desk
) -> None:
    ticket = await file_from_picture(desk, str(desk_bot.world.member.id))
    card = await card_of(desk_bot, desk, ticket)
    assert "coffee.jpg" in fields(card["embeds"][0])
    assert card["attachments"] == []


async def test_claim_updates_the_card_in_place(desk_bot: BotHarness, desk: Desk) -> None:
    fake, world = desk_bot.fake, desk_bot.world
    ticket = await file_entries(desk, str(world.member.id))
    card = await card_of(desk_bot, desk, ticket)
    mark = fake.mark()

    callback = await press(desk_bot, "claim", ticket.id, world.maintainer, card)

    assert callback.kind == "card edit"
    [embed] = callback.data["embeds"]
    assert embed["title"] == f"Removal request {ticket.id}: claimed"
    assert fields(embed)["Claimed by"] == world.maintainer.mention
    assert buttons(callback.data) == card_buttons(ticket.id, "release", "approve", "reject")
    assert buttons(card) == card_buttons(ticket.id, "release", "approve", "reject")  # as Discord shows it
    stored = await desk.store.get(ticket.id)
    assert (stored.state, stored.assignee) == (TicketState.CLAIMED, str(world.maintainer.id))
    assert [line for line in log_lines(desk_bot, mark) if "claim open → claimed" in line]
    assert direct_messages(desk_bot, world.member, mark) == []


async def test_a_claim_is_answered_within_discords_3_seconds_while_another_process_holds_the_database(
    desk_bot: BotHarness, desk: Desk
) -> None:
    """A maintainer's shell holding SQLite's write lock for 3.5 s used to make Claim miss Discord's
    deadline: the claim was made, the maintainer saw "This interaction failed"."""
    fake, world = desk_bot.fake, desk_bot.world
    ticket = await file_entries(desk, str(world.member.id))
    card = await card_of(desk_bot, desk, ticket)
    fake.interaction_deadline = 3.0
    locked, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with contextlib.closing(sqlite3.connect(desk.settings.tickets.database_path)) as other:
            other.execute("BEGIN IMMEDIATE")
            locked.set()
            release.wait(3.5)
            other.execute("COMMIT")

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert await asyncio.to_thread(locked.wait, 5)
        answer = await press(desk_bot, "claim", ticket.id, world.maintainer, card)
    finally:
        release.set()
        await asyncio.to_thread(holder.join)

    assert answer.json["type"] == DEFERRED_UPDATE_MESSAGE  # answered before the database was written
    assert answer.kind == "card edit"
    assert answer.data["embeds"][0]["title"] == f"Removal request {ticket.id}: claimed"
    assert (await desk.store.get(ticket.id)).state is TicketState.CLAIMED


async def test_approve_asks_for_a_reason_then_decides_tells_the_requester_and_logs(
    desk_bot: BotHarness, desk: Desk
) -> None:
    fake, world = desk_bot.fake, desk_bot.world
    ticket = await file_entries(desk, str(world.member.id))
    card = await card_of(desk_bot, desk, ticket)
    await press(desk_bot, "claim", ticket.id, world.maintainer, card)

    modal = await press(desk_bot, "approve", ticket.id, world.maintainer, card)

    assert modal.json["type"] == MODAL
    assert modal.json["data"]["custom_id"] == f"rd:reason:approve:{ticket.id}:{world.maintainer.id}"
    assert modal.json["data"]["title"] == f"Approve {ticket.id}"
    [[text_input]] = [row["components"] for row in modal.json["data"]["components"]]
    assert text_input["type"] == 4
    assert text_input["required"]
    assert "Reason" in text_input["label"]
    assert (await desk.store.get(ticket.id)).state is TicketState.CLAIMED  # nothing decided yet

    mark = fake.mark()
    submitted = await submit_reason(desk_bot, modal, "Clearly a private photo.", world.maintainer, card)

    assert submitted.kind == "card edit"
    [embed] = submitted.data["embeds"]
    assert embed["title"] == f"Removal request {ticket.id}: approved"
    assert fields(embed)["Approved by"] == f"{world.maintainer.mention}: Clearly a private photo."
    assert buttons(submitted.data) == card_buttons(ticket.id, "reopen")
    stored = await desk.store.get(ticket.id)
    assert (stored.state, stored.decided_by) == (TicketState.APPROVED, str(world.maintainer.id))
    [dm] = direct_messages(desk_bot, world.member, mark)
    assert ticket.id in dm
    assert "approved" in dm
    assert "Clearly a private photo." in dm
    assert [line for line in log_lines(desk_bot, mark) if "approve claimed → approved" in line]
    assert card["embeds"][0]["title"].endswith(": approved")


async def test_reject_straight_from_open_tells_the_requester_the_reason(
    desk_bot: BotHarness, desk: Desk
) -> None:
    fake, world = desk_bot.fake, desk_bot.world
    ticket = await file_entries(desk, str(world.member.id))
    card = await card_of(desk_bot, desk, ticket)
    mark = fake.mark()

    submitted = await decide(
        desk_bot, "reject", ticket.id, world.maintainer, card, reason="This is a public figure's press photo."
    )

    assert submitted.kind == "card edit"
    assert submitted.data["embeds"][0]["title"] == f"Removal request {ticket.id}: rejected"
    assert buttons(submitted.data) == card_buttons(ticket.id, "reopen")
    assert (await desk.store.get(ticket.id)).state is TicketState.REJECTED
    [dm] = direct_messages(desk_bot, world.member, mark)
    assert "decided not to remove" in dm
    assert "This is a public figure's press photo." in dm
    assert [line for line in log_lines(desk_bot, mark) if "reject open → rejected" in line]
    assert (await desk.store.removal_list())[1] == []


@pytest.mark.parametrize("contact", ["", "ask in #dataset-help."], ids=["no-contact", "contact"])
async def test_a_rejection_says_how_to_reach_a_maintainer_only_when_the_server_says_how(
    fake: FakeDiscord, world: World, desk: Desk, contact: str
) -> None:
    configured = Desk(with_discord(desk.settings, contact=contact), desk.index, desk.store, None)
    async with running_bot(fake, world=world, bot_factory=bot_of(configured)) as harness:
        await harness.idle()
        ticket = await file_entries(desk, str(world.member.id))
        card = await card_of(harness, desk, ticket)
        mark = fake.mark()
        await decide(harness, "reject", ticket.id, world.maintainer, card, reason="A press photo.")
        [dm] = direct_messages(harness, world.member, mark)
        harness.assert_no_errors()
    assert dm == messages.decision(await desk.store.get(ticket.id), contact)
    if contact:
        assert dm.endswith("a maintainer can look at it again: ask in #dataset-help.")
    else:  # "you can write to a maintainer" without saying how would leave the person stuck
        assert "write to" not in dm
        assert dm.endswith("Their reason: A press photo.")


async def test_cards_and_lists_show_times_as_discord_timestamps_and_count_entries_in_words(
    desk_bot: BotHarness, desk: Desk
) -> None:
    world = desk_bot.world
    one = await file_entries(desk, str(world.member.id), (1,))
    card = await card_of(desk_bot, desk, one)
    description = card["embeds"][0]["description"]
    stamp = int(datetime.fromisoformat(one.created_at).timestamp())
    assert description.startswith(f"Filed <t:{stamp}:f> via discord.")
    assert one.created_at[:16] not in description
    assert "without one" in description  # entries from a folder have no URL
    await file_entries(desk, str(world.maintainer.id), (5, 6))

    queue = await run_command(desk_bot, "tickets queue", world.maintainer)
    lines = queue.json["data"]["content"].splitlines()
    assert f"`{one.id}` open · 1 entry · <t:{stamp}:f>" in lines
    assert any("· 2 entries ·" in line for line in lines)

    log = await run_command(desk_bot, "tickets log", world.maintainer)
    assert f"<t:{stamp}:d> <t:{stamp}:T> `{one.id}`" in log.json["data"]["content"]


async def test_reopen_puts_an_approved_ticket_back_in_the_queue_without_telling_the_requester(
    desk_bot: BotHarness, desk: Desk
) -> None:
    fake, world = desk_bot.fake, desk_bot.world
    ticket = await file_entries(desk, str(world.member.id))
    card = await card_of(desk_bot, desk, ticket)
    await decide(desk_bot, "approve", ticket.id, world.maintainer, card, reason="ok")
    assert len((await desk.store.removal_list())[1]) == 2
    mark = fake.mark()

    submitted = await decide(
        desk_bot, "reopen", ticket.id, world.maintainer, card, reason="Appeal: the uploader asked."
    )

    assert submitted.kind == "card edit"
    assert submitted.data["embeds"][0]["title"] == f"Removal request {ticket.id}: open"
    assert buttons(submitted.data) == card_buttons(ticket.id, "claim", "approve", "reject")
    assert (await desk.store.get(ticket.id)).state is TicketState.OPEN
    assert (await desk.store.removal_list())[1] == []
    assert direct_messages(desk_bot, world.member, mark) == []
    assert [line for line in log_lines(desk_bot, mark) if "Appeal: the uploader asked." in line]


async def test_release_gives_a_claimed_ticket_back_to_the_queue(desk_bot: BotHarness, desk: Desk) -> None:
    world = desk_bot.world
    ticket = await file_entries(desk, str(world.member.id))
    card = await card_of(desk_bot, desk, ticket)
    await press(desk_bot, "claim", ticket.id, world.maintainer, card)

    callback = await press(desk_bot, "release", ticket.id, world.maintainer, card)

    assert callback.kind == "card edit"
    [embed] = callback.data["embeds"]
    assert embed["title"] == f"Removal request {ticket.id}: open"
    assert "Claimed by" not in fields(embed)
    assert buttons(callback.data) == card_buttons(ticket.id, "claim", "approve", "reject")
    stored = await desk.store.get(ticket.id)
    assert (stored.state, stored.assignee) == (TicketState.OPEN, None)


async def test_a_card_fits_discords_embed_limits_however_many_long_entries_it_lists(
    desk_bot: BotHarness, desk: Desk
) -> None:
    """Discord refuses (400) an embed over 6,000 characters or with a field value over 1,024; the relay
    would then skip the card and the ticket would never be shown for review."""
    world = desk_bot.world
    entries = [entry(n, url_length=1500, key_length=300) for n in range(30)]
    ticket = await desk.store.create_ticket(str(world.member.id), QUERY, entries, note="n" * 1000)
    for n in range(3):  # overlapping tickets, listed on the card
        await desk.store.create_ticket(f"email:{n}", QUERY, [*entries[:1], entry(100 + n)])
    mark = desk_bot.fake.mark()

    await desk_bot.bot.relay.run_once()  # type: ignore[attr-defined]

    [post] = [
        r
        for r in channel_posts(desk_bot.fake, world.review_channel_id, mark)
        if r.json["embeds"][0]["title"].startswith(f"Removal request {ticket.id}")
    ]
    [embed] = post.json["embeds"]
    assert len(discord.Embed.from_dict(embed)) <= 6000
    assert len(embed["fields"]) <= 25
    assert all(len(f["name"]) <= 256 and len(f["value"]) <= 1024 for f in embed["fields"])
    assert entries[0].key[:200] in json.dumps(embed)  # the entries are still listed, shortened
    assert "more entries" in embed["footer"]["text"]
    # A widely copied picture can share entries with hundreds of tickets: the list is cut short.
    crowded = render.ticket_embed(await desk.store.get(ticket.id), [f"{n:06d}" for n in range(300)])
    assert len(crowded) <= 6000
    assert all(len(field.value or "") <= 1024 for field in crowded.fields)


def test_a_check_result_fits_discords_embed_limits_too() -> None:
    """The /check answer lists up to ten matches with URL and caption: with long ones it must still be
    an embed Discord accepts, or the person gets no answer at all."""
    found = [
        FoundEntry(
            match=EntryMatch("000", n, MatchDistance(pdq=4, phash=1), "original"),
            entry=DatasetEntry(key="k" * 300, url="https://x.example/" + "u" * 1000, caption="c" * 1000),
        )
        for n in range(12)
    ]

    embed = render.check_result(found, "intro")

    assert len(embed) <= 6000
    assert 0 < len(embed.fields) < 12
    assert embed.footer.text == f"and {12 - len(embed.fields)} more; a request covers all of them"


# --------------------------------------------------------------------------------------------------
# Who may act: checked at run time
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["claim", "approve", "reject"])
async def test_a_member_without_the_role_cannot_use_a_cards_buttons(
    desk_bot: BotHarness, desk: Desk, action: str
) -> None:
    fake, world = desk_bot.fake, desk_bot.world
    ticket = await file_entries(desk, str(world.member.id))
    card = await card_of(desk_bot, desk, ticket)
    before, mark = await snapshot(desk), fake.mark()

    callback = await press(desk_bot, action, ticket.id, world.member, card)

    assert_refused(callback)
    assert await snapshot(desk) == before
    assert writes(fake, mark) == []


@pytest.mark.parametrize("action", ["release", "reopen"])
async def test_a_member_cannot_release_or_reopen_either(
    desk_bot: BotHarness, desk: Desk, action: str
) -> None:
    world = desk_bot.world
    ticket = await file_entries(desk, str(world.member.id))
    card = await card_of(desk_bot, desk, ticket)
    if action == "release":
        await press(desk_bot, "claim", ticket.id, world.maintainer, card)
    else:
        await decide(desk_bot, "approve", ticket.id, world.maintainer, card, reason="ok")
    before, mark = await snapshot(desk), desk_bot.fake.mark()

    assert_refused(await press(desk_bot, action, ticket.id, world.member, card))
    assert await snapshot(desk) == before
    assert writes(desk_bot.fake, mark) == []


async def test_a_maintainer_whose_role_was_removed_cannot_submit_the_reason(
    desk_bot: BotHarness, desk: Desk
) -> None:
    fake, world = desk_bot.fake, desk_bot.world
    ticket = await file_entries(desk, str(world.member.id))
    card = await card_of(desk_bot, desk, ticket)
    modal = await press(desk_bot, "approve", ticket.id, world.maintainer, card)
    before, mark = await snapshot(desk), fake.mark()
    demoted = dataclasses.replace(world.maintainer, role_ids=())  # same person, role taken away

    submitted = await submit_reason(desk_bot, modal, "ok", demoted, card)

    assert_refused(submitted)
    assert await snapshot(desk) == before
    assert writes(fake, mark) == []
    assert card["embeds"][0]["title"].endswith(": open")


@pytest.mark.parametrize(
    "name", ["tickets queue", "tickets show", "tickets log", "tickets resync", "removals export"]
)
@pytest.mark.parametrize("where", ["guild", "dm"])
async def test_a_member_cannot_run_maintainer_commands(
    desk_bot: BotHarness, desk: Desk, name: str, where: str
) -> None:
    fake, world = desk_bot.fake, desk_bot.world
    ticket = await file_entries(desk, str(world.member.id))
    await desk.store.approve(ticket.id, "alice", "ok")  # something an export or a log would show
    await desk_bot.bot.relay.run_once()  # type: ignore[attr-defined]
    options = {"ticket": ticket.id} if name == "tickets show" else None
    before, mark = await snapshot(desk), fake.mark()

    callback = await run_command(desk_bot, name, world.member, options, dm=where == "dm")

    assert_refused(callback)
    assert ticket.id not in json.dumps(callback.json)
    assert await snapshot(desk) == before
    assert writes(fake, mark) == []  # no follow-up, no command sync, no post
    assert take_check_failures(desk_bot) == []  # answered, and not logged as an error


@pytest.mark.parametrize("name", ["tickets queue", "removals export"])
async def test_a_maintainer_is_refused_in_a_direct_message(desk_bot: BotHarness, name: str) -> None:
    """The commands are guild-only, but Discord enforces that, not discord.py: the role check, which a
    DM has no member for, must refuse."""
    mark = desk_bot.fake.mark()
    callback = await run_command(desk_bot, name, desk_bot.world.maintainer, dm=True)
    assert_refused(callback)
    assert writes(desk_bot.fake, mark) == []
    assert take_check_failures(desk_bot) == []  # answered, and not logged as an error


async def test_a_refused_command_is_not_logged_as_an_error(desk_bot: BotHarness) -> None:
    callback = await run_command(desk_bot, "tickets queue", desk_bot.world.member)
    assert_refused(callback)
    errors = list(desk_bot.errors)
    desk_bot.errors.clear()  # so the fixture's own check does not turn this into a teardown error
    assert errors == []


# --------------------------------------------------------------------------------------------------
# Races and refusals between maintainers
# --------------------------------------------------------------------------------------------------


async def test_approve_on_a_ticket_someone_else_claimed_is_refused_naming_the_claimer(
    desk_bot: BotHarness, desk: Desk
) -> None:
    fake, world = desk_bot.fake, desk_bot.world
    mika = second_maintainer(world)
    ticket = await file_entries(desk, str(world.member.id))
    card = await card_of(desk_bot, desk, ticket)
    await press(desk_bot, "claim", ticket.id, world.maintainer, card)
    before, mark = await snapshot(desk), fake.mark()

    callback = await press(desk_bot, "approve", ticket.id, mika, card)

    # Refused at the click: no reason is asked for an action that cannot happen.
    assert_refused(callback, f"is claimed by {world.maintainer.mention}")
    assert callback.data["allowed_mentions"] == {"parse": []}
    assert await snapshot(desk) == before
    assert writes(fake, mark) == []


async def test_a_claim_between_opening_the_modal_and_submitting_it_is_refused_naming_the_claimer(
    desk_bot: BotHarness, desk: Desk
) -> None:
    fake, world = desk_bot.fake, desk_bot.world
    mika = second_maintainer(world)
    ticket = await file_entries(desk, str(world.member.id))
    card = await card_of(desk_bot, desk, ticket)
    modal = await press(desk_bot, "approve", ticket.id, mika, card)
    await press(desk_bot, "claim", ticket.id, world.maintainer, card)
    before, mark = await snapshot(desk), fake.mark()

    submitted = await submit_reason(desk_bot, modal, "ok", mika, card)

    assert_refused(submitted, f"is claimed by {world.maintainer.mention}")
    assert await snapshot(desk) == before
    assert writes(fake, mark) == []


@pytest.mark.parametrize(
    ("first", "second"), [("approve", "reject"), ("reject", "approve"), ("approve", "approve")]
)
async def test_the_second_of_two_decisions_is_told_who_decided_first(
    desk_bot: BotHarness, desk: Desk, first: str, second: str
) -> None:
    fake, world = desk_bot.fake, desk_bot.world
    mika = second_maintainer(world)
    ticket = await file_entries(desk, str(world.member.id))
    card = await card_of(desk_bot, desk, ticket)
    modal_maria = await press(desk_bot, first, ticket.id, world.maintainer, card)
    modal_mika = await press(desk_bot, second, ticket.id, mika, card)
    won = await submit_reason(desk_bot, modal_maria, "first", world.maintainer, card)
    assert won.kind == "card edit"
    decided = copy.deepcopy(card)
    before, mark = await snapshot(desk), fake.mark()

    lost = await submit_reason(desk_bot, modal_mika, "second", mika, card)

    past = {"approve": "approved", "reject": "rejected"}[first]
    assert_refused(lost, f"was already {past} by {world.maintainer.mention}")
    assert card == decided  # the loser did not touch the card
    assert await snapshot(desk) == before
    assert writes(fake, mark) == []
    [dm] = direct_messages(desk_bot, world.member)  # the requester heard once, of the winner
    assert "first" in dm
    assert "second" not in dm


async def test_a_stale_card_refuses_a_decision_made_elsewhere_before_asking_a_reason(
    desk_bot: BotHarness, desk: Desk
) -> None:
    fake, world = desk_bot.fake, desk_bot.world
    ticket = await file_entries(desk, str(world.member.id))
    card = await card_of(desk_bot, desk, ticket)
    await desk.store.reject(ticket.id, "alice", "not in the dataset")  # from the command line, not relayed
    mark = fake.mark()

    callback = await press(desk_bot, "approve", ticket.id, world.maintainer, card)

    assert_refused(callback, f"Ticket {ticket.id} was already rejected by alice")
    assert writes(fake, mark) == []


# --------------------------------------------------------------------------------------------------
# /tickets and /removals
# --------------------------------------------------------------------------------------------------


async def test_queue_lists_open_and_claimed_tickets_oldest_first(desk_bot: BotHarness, desk: Desk) -> None:
    world = desk_bot.world
    oldest = await file_entries(desk, "email:a", (1,))
    claimed = await file_entries(desk, "email:b", (2,))
    decided = await file_entries(desk, "email:c", (3,))
    newest = await file_entries(desk, "email:d", (4,))
    await desk.store.claim(claimed.id, str(world.maintainer.id))
    await desk.store.approve(decided.id, "alice", "ok")

    callback = await run_command(desk_bot, "tickets queue", world.maintainer)

    assert callback.json["type"] == CHANNEL_MESSAGE
    data = callback.data
    assert data["flags"] & EPHEMERAL
    assert data["allowed_mentions"] == {"parse": []}
    lines = data["content"].splitlines()
    assert [line.split("`")[1] for line in lines] == [oldest.id, claimed.id, newest.id]
    assert f"claimed by {world.maintainer.mention}" in lines[1]
    assert decided.id not in data["content"]


async def test_queue_says_so_when_nothing_is_waiting(desk_bot: BotHarness) -> None:
    callback = await run_command(desk_bot, "tickets queue", desk_bot.world.maintainer)
    assert callback.data["content"] == "Nothing is waiting for review."


async def test_show_gives_the_card_ephemerally_and_forgives_how_the_id_is_typed(
    desk_bot: BotHarness, desk: Desk
) -> None:
    world = desk_bot.world
    ticket = await file_entries(desk, str(world.member.id), note="my note")
    typed = f"{ticket.id[:3].lower()}-{ticket.id[3:].lower()}"
    mark = desk_bot.fake.mark()

    callback = await run_command(desk_bot, "tickets show", world.maintainer, {"ticket": typed})

    data = callback.data
    assert callback.json["type"] == CHANNEL_MESSAGE
    assert data["flags"] & EPHEMERAL
    [embed] = data["embeds"]
    assert embed["title"] == f"Removal request {ticket.id}: open"
    assert fields(embed)["Requester's note"] == "my note"
    assert buttons(data) == card_buttons(ticket.id, "claim", "approve", "reject")
    assert str(world.member.id) not in json.dumps(data)
    assert writes(desk_bot.fake, mark) == []


async def test_show_of_an_unknown_id_says_there_is_no_such_ticket(desk_bot: BotHarness) -> None:
    callback = await run_command(desk_bot, "tickets show", desk_bot.world.maintainer, {"ticket": "ZZZZZZ"})
    assert_refused(callback, "There is no ticket ZZZZZZ.")


async def test_log_filters_by_ticket_and_by_maintainer(desk_bot: BotHarness, desk: Desk) -> None:
    world = desk_bot.world
    first = await file_entries(desk, "email:a", (1,))
    second = await file_entries(desk, "email:b", (2,))
    await desk.store.claim(first.id, str(world.maintainer.id))
    await desk.store.approve(first.id, str(world.maintainer.id), "private photo")
    await desk.store.reject(second.id, "alice", "press photo")

    by_ticket = await run_command(desk_bot, "tickets log", world.maintainer, {"ticket": second.id})
    maintainer = world.maintainer
    by_maintainer = await run_command(
        desk_bot,
        "tickets log",
        maintainer,
        {"maintainer": RawOption(6, str(maintainer.id))},
        resolved={
            "users": {str(maintainer.id): maintainer.user_payload()},
            "members": {str(maintainer.id): maintainer.member_payload(with_user=False)},
        },
    )
    everything = await run_command(desk_bot, "tickets log", maintainer)

    lines = by_ticket.json["data"]["content"].splitlines()
    assert len(lines) == 2
    assert all(f"`{second.id}`" in line for line in lines)
    assert "(requester) create" in lines[0]
    assert "<@alice> reject open → rejected: press photo" in lines[1]
    mine = by_maintainer.json["data"]["content"].splitlines()
    assert len(mine) == 2
    assert all(f"`{first.id}` {maintainer.mention}" in line for line in mine)
    assert "claim open → claimed" in mine[0]
    assert "approve claimed → approved: private photo" in mine[1]
    assert len(everything.json["data"]["content"].splitlines()) >= 5
    for callback in (by_ticket, by_maintainer, everything):
        assert callback.data["flags"] & EPHEMERAL
        assert callback.data["allowed_mentions"] == {"parse": []}


async def test_resync_syncs_the_commands_to_the_guild_again(desk_bot: BotHarness) -> None:
    fake, world = desk_bot.fake, desk_bot.world
    mark = fake.mark()

    callback = await run_command(desk_bot, "tickets resync", world.maintainer)

    assert callback.json["type"] == DEFERRED
    assert callback.data["flags"] & EPHEMERAL
    [sync] = fake.find("PUT", COMMAND_SYNC, since=mark)
    assert sync.path == f"/applications/{world.application_id}/guilds/{world.guild_id}/commands"
    names = sorted(command["name"] for command in sync.json)
    assert {"check", "tickets", "removals"} <= set(names)
    [followup] = fake.find("POST", FOLLOWUP, since=mark)
    assert followup.json["content"] == f"Synced {len(names)} commands."


async def test_export_sends_the_removal_list_and_the_blocklist_as_files(
    desk_bot: BotHarness, desk: Desk
) -> None:
    fake, world = desk_bot.fake, desk_bot.world
    approved = await file_entries(desk, "email:a", (7, 8))
    pending = await file_entries(desk, "email:b", (9,))
    await desk.store.approve(approved.id, "alice", "ok")
    version, _ = await desk.store.removal_list()
    mark = fake.mark()

    callback = await run_command(desk_bot, "removals export", world.maintainer)

    assert callback.json["type"] == DEFERRED
    assert callback.data["flags"] & EPHEMERAL
    [followup] = fake.find("POST", FOLLOWUP, since=mark)
    assert followup.json["content"].startswith(f"Removal list version {version}: 2 entries")
    files = {f.filename: f.data.decode() for f in followup.files}
    assert set(files) == {f"removals-v{version}.csv", f"removals-v{version}.blocklist.csv"}
    listed = list(csv.DictReader(io.StringIO(files[f"removals-v{version}.csv"])))
    assert [(row["key"], row["url"], row["ticket_id"]) for row in listed] == [
        (entry(n).key, entry(n).url, approved.id) for n in (7, 8)
    ]
    assert pending.id not in files[f"removals-v{version}.csv"]
    blocked = list(csv.DictReader(io.StringIO(files[f"removals-v{version}.blocklist.csv"])))
    assert {(row["phash"], row["ticket_id"]) for row in blocked} == {
        (entry(n).phash, approved.id) for n in (7, 8)
    }


async def test_export_in_another_format(desk_bot: BotHarness, desk: Desk) -> None:
    ticket = await file_entries(desk, "email:a", (5,))
    await desk.store.approve(ticket.id, "alice", "ok")
    mark = desk_bot.fake.mark()

    await run_command(desk_bot, "removals export", desk_bot.world.maintainer, {"file_format": "jsonl"})

    [followup] = desk_bot.fake.find("POST", FOLLOWUP, since=mark)
    by_name = {f.filename: f.data.decode() for f in followup.files}
    [list_name] = [name for name in by_name if not name.endswith(".blocklist.jsonl")]
    assert list_name.endswith(".jsonl")
    assert [json.loads(line)["key"] for line in by_name[list_name].splitlines()] == [entry(5).key]


# --------------------------------------------------------------------------------------------------
# Restarts: persistent buttons and the relay's cursor
# --------------------------------------------------------------------------------------------------


@pytest.fixture
async def second_store(desk_settings: Settings) -> AsyncIterator[TicketStore]:
    """Another TicketStore on the same database file, as a restarted bot process would open it."""
    store = await TicketStore.open(desk_settings.tickets.database_path, desk_settings.tickets)
    try:
        yield store
    finally:
        await store.close()


async def test_buttons_of_a_card_posted_before_a_restart_still_work(
    fake: FakeDiscord,
    world: World,
    desk: Desk,
    second_store: TicketStore,
    hash_executor: ThreadPoolExecutor,
) -> None:
    async with running_bot(fake, world=world, bot_factory=bot_of(desk)) as first:
        await first.idle()
        ticket = await file_entries(desk, str(world.member.id))
        card = await card_of(first, desk, ticket)
        first.assert_no_errors()
    log_before = len(channel_posts(fake, world.log_channel_id))

    restarted_desk = Desk(desk.settings, desk.index, second_store, hash_executor)
    async with running_bot(fake, world=world, bot_factory=bot_of(restarted_desk)) as second:
        await second.idle()
        assert second.bot is not first.bot
        mark = fake.mark()

        claimed = await press(second, "claim", ticket.id, world.maintainer, card)
        approved = await decide(
            second, "approve", ticket.id, world.maintainer, card, reason="after the restart"
        )

        assert claimed.kind == "card edit"
        assert buttons(claimed.data) == card_buttons(ticket.id, "release", "approve", "reject")
        assert approved.kind == "card edit"
        assert card["embeds"][0]["title"] == f"Removal request {ticket.id}: approved"
        assert (await second_store.get(ticket.id)).state is TicketState.APPROVED
        [dm] = direct_messages(second, world.member, mark)
        assert "after the restart" in dm
        # The restarted bot relayed only what happened after the restart: no second card, no
        # repeated "create" line.
        assert channel_posts(fake, world.review_channel_id, mark) == []
        relayed_again = [
            line for line in log_lines(second)[log_before:] if f"`{ticket.id}` (requester) create" in line
        ]
        assert relayed_again == []
        second.assert_no_errors()


async def test_a_reason_typed_across_a_restart_still_decides_the_ticket(
    fake: FakeDiscord,
    world: World,
    desk: Desk,
    second_store: TicketStore,
    hash_executor: ThreadPoolExecutor,
) -> None:
    """The form was opened before a restart and submitted after it: discord.py no longer knows the
    form (it would drop the submit: "interaction failed"), but the submit names the action, the
    ticket and the maintainer, and carries the reason."""
    async with running_bot(fake, world=world, bot_factory=bot_of(desk)) as first:
        await first.idle()
        ticket = await file_entries(desk, str(world.member.id))
        card = await card_of(first, desk, ticket)
        await press(first, "claim", ticket.id, world.maintainer, card)
        modal = await press(first, "approve", ticket.id, world.maintainer, card)
        assert modal.json["type"] == MODAL
        first.assert_no_errors()

    restarted_desk = Desk(desk.settings, desk.index, second_store, hash_executor)
    async with running_bot(fake, world=world, bot_factory=bot_of(restarted_desk)) as second:
        await second.idle()
        mark = fake.mark()
        submitted = await submit_reason(second, modal, "typed across a restart", world.maintainer, card)
        second.assert_no_errors()

    assert submitted.kind == "card edit"
    assert card["embeds"][0]["title"] == f"Removal request {ticket.id}: approved"
    stored = await second_store.get(ticket.id)
    assert (stored.state, stored.decision_reason) == (TicketState.APPROVED, "typed across a restart")
    [dm] = direct_messages(second, world.member, mark)
    assert "typed across a restart" in dm


async def test_events_from_while_the_bot_was_offline_are_relayed_once_after_a_restart(
    fake: FakeDiscord,
    world: World,
    desk: Desk,
    second_store: TicketStore,
    hash_executor: ThreadPoolExecutor,
) -> None:
    async with running_bot(fake, world=world, bot_factory=bot_of(desk)) as first:
        await first.idle()
        ticket = await file_entries(desk, str(world.member.id))
        card = await card_of(first, desk, ticket)
    await desk.store.approve(ticket.id, "alice", "decided from the shell")  # the bot is down
    mark = fake.mark()

    restarted_desk = Desk(desk.settings, desk.index, second_store, hash_executor)
    async with running_bot(fake, world=world, bot_factory=bot_of(restarted_desk)) as second:
        await second.idle()  # on_ready: start-up work relays what it missed
        await second.bot.relay.run_once()  # type: ignore[attr-defined]

        assert card["embeds"][0]["title"] == f"Removal request {ticket.id}: approved"
        assert len(direct_messages(second, world.member, mark)) == 1
        lines = log_lines(second, mark)
        assert len([line for line in lines if "decided from the shell" in line]) == 1
        assert not [line for line in lines if "create" in line]
        assert channel_posts(fake, world.review_channel_id, mark) == []
        second.assert_no_errors()


# --------------------------------------------------------------------------------------------------
# The relay: actions taken outside Discord
# --------------------------------------------------------------------------------------------------


async def test_a_decision_from_the_command_line_is_relayed_once(desk_bot: BotHarness, desk: Desk) -> None:
    fake, world, relay = desk_bot.fake, desk_bot.world, desk_bot.bot.relay  # type: ignore[attr-defined]
    ticket = await file_entries(desk, str(world.member.id))
    card = await card_of(desk_bot, desk, ticket)
    mark = fake.mark()

    await desk.store.approve(ticket.id, "alice", "confirmed by e-mail")
    handled = await relay.run_once()

    assert handled == 1
    [edit] = card_edits(fake, card, mark)
    assert edit.json["embeds"][0]["title"] == f"Removal request {ticket.id}: approved"
    assert buttons(edit.json) == card_buttons(ticket.id, "reopen")
    [dm] = direct_messages(desk_bot, world.member, mark)
    assert ticket.id in dm
    assert "confirmed by e-mail" in dm
    [line] = log_lines(desk_bot, mark)
    assert f"`{ticket.id}` <@alice> approve open → approved: confirmed by e-mail" in line
    for request in [edit, *channel_posts(fake, world.log_channel_id, mark)]:
        assert request.json["allowed_mentions"] == {"parse": []}
    assert await bookkeeping(desk).relayed_up_to() == (await desk.store.audit_log())[-1].id

    again = fake.mark()
    assert await relay.run_once() == 0
    assert writes(fake, again) == []


async def test_review_and_log_posts_never_ping(desk_bot: BotHarness, desk: Desk) -> None:
    fake, world = desk_bot.fake, desk_bot.world
    mark = fake.mark()
    ticket = await file_entries(desk, str(world.member.id), note="@everyone <@&1200000000000000010> look")
    card = await card_of(desk_bot, desk, ticket)
    await decide(desk_bot, "approve", ticket.id, world.maintainer, card, reason="@everyone @here done")

    posted = [
        r
        for r in fake.find(None, r"/channels/\d+/messages(?:/\d+)?", since=mark)
        if int(r.path.split("/")[2]) in {world.review_channel_id, world.log_channel_id}
    ]
    assert {r.method for r in posted} == {"POST", "PATCH"}
    for request in posted:
        assert request.json["allowed_mentions"] == {"parse": []}, request
    interaction_edits = [
        r.json["data"] for r in fake.find("POST", CALLBACK, since=mark) if r.json.get("data")
    ]
    for data in interaction_edits:
        parse = (data.get("allowed_mentions") or {}).get("parse", [])
        assert "everyone" not in parse
        assert "roles" not in parse


async def test_a_requester_outside_discord_is_not_sent_a_message(desk_bot: BotHarness, desk: Desk) -> None:
    fake, world = desk_bot.fake, desk_bot.world
    ticket = await file_entries(desk, "email:abc")
    card = await card_of(desk_bot, desk, ticket)
    mark = fake.mark()

    await desk.store.reject(ticket.id, "alice", "no")
    assert await desk_bot.bot.relay.run_once() == 1  # type: ignore[attr-defined]

    assert fake.find("POST", r"/users/@me/channels", since=mark) == []
    assert fake.find("GET", r"/users/\d+", since=mark) == []
    assert [r.path for r in writes(fake, mark)] == [
        f"/channels/{world.log_channel_id}/messages",
        f"/channels/{world.review_channel_id}/messages/{card['id']}",
    ]


async def test_closed_direct_messages_do_not_stop_the_relay(
    desk_bot: BotHarness, desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    fake, world = desk_bot.fake, desk_bot.world
    ticket = await file_entries(desk, str(world.member.id))
    card = await card_of(desk_bot, desk, ticket)
    refused = fake.fail("POST", rf"/channels/{world.member.dm_channel_id}/messages", 403, CANNOT_DM)
    mark = fake.mark()

    await desk.store.approve(ticket.id, "alice", "ok")
    with caplog.at_level(logging.INFO, logger="cogs.relay"):
        assert await desk_bot.bot.relay.run_once() == 1  # type: ignore[attr-defined]

    assert refused.hits == 1
    assert card["embeds"][0]["title"].endswith(": approved")
    event_line, notice = log_lines(desk_bot, mark)  # the maintainers are told it did not arrive
    assert "approve" in event_line
    assert ticket.id in notice
    assert "DMs are closed" in notice
    assert await bookkeeping(desk).relayed_up_to() == (await desk.store.audit_log())[-1].id
    assert any(ticket.id in record.getMessage() for record in caplog.records)
    again = fake.mark()
    assert await desk_bot.bot.relay.run_once() == 0  # type: ignore[attr-defined]
    assert writes(fake, again) == []


async def test_a_failing_log_channel_does_not_keep_the_card_and_the_requester_in_the_dark(
    desk_bot: BotHarness, desk: Desk
) -> None:
    fake, world = desk_bot.fake, desk_bot.world
    ticket = await file_entries(desk, str(world.member.id))
    card = await card_of(desk_bot, desk, ticket)
    fake.fail("POST", rf"/channels/{world.log_channel_id}/messages", 403, MISSING_PERMISSIONS)
    mark = fake.mark()

    await desk.store.approve(ticket.id, "alice", "ok")
    await desk_bot.bot.relay.run_once()  # type: ignore[attr-defined]

    assert card["embeds"][0]["title"].endswith(": approved")
    assert len(direct_messages(desk_bot, world.member, mark)) == 1


async def test_a_lagging_relay_tells_the_requester_only_the_decision_that_stands(
    desk_bot: BotHarness, desk: Desk
) -> None:
    """Approved, reopened and rejected before the relay ran: one message, saying rejected."""
    fake, world = desk_bot.fake, desk_bot.world
    ticket = await file_entries(desk, str(world.member.id))
    card = await card_of(desk_bot, desk, ticket)
    mark = fake.mark()

    await desk.store.approve(ticket.id, "alice", "approved by mistake")
    await desk.store.reopen(ticket.id, "alice", "wrong ticket")
    await desk.store.reject(ticket.id, "alice", "not a picture of a person")
    assert await desk_bot.bot.relay.run_once() == 3  # type: ignore[attr-defined]

    [dm] = direct_messages(desk_bot, world.member, mark)
    assert "decided not to remove" in dm
    assert "not a picture of a person" in dm
    assert card["embeds"][0]["title"].endswith(": rejected")
    assert len(log_lines(desk_bot, mark)) == 3


class RelayClock:
    """The relay's clock, moved by the test: retries come due only when it says so."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def relay_clock(harness: BotHarness) -> RelayClock:
    clock = RelayClock()
    harness.bot.relay.clock = clock  # type: ignore[attr-defined]
    return clock


async def test_a_card_whose_post_fails_is_posted_when_discord_is_back(
    desk_bot: BotHarness, desk: Desk
) -> None:
    """A 503 on the card's post used to mark the event handled: the ticket was never shown."""
    fake, world = desk_bot.fake, desk_bot.world
    clock = relay_clock(desk_bot)
    outage = fake.fail("POST", rf"/channels/{world.review_channel_id}/messages", 503, times=2)
    ticket = await file_entries(desk, str(world.member.id))

    await desk_bot.bot.relay.run_once()  # type: ignore[attr-defined]
    assert outage.hits == 1
    assert await bookkeeping(desk).review_card(ticket.id) is None
    await desk_bot.bot.relay.run_once()  # type: ignore[attr-defined]
    assert outage.hits == 1  # not due yet: no hammering of a failing Discord
    clock.now += relay.retry_delay(1)
    await desk_bot.bot.relay.run_once()  # type: ignore[attr-defined]
    assert outage.hits == 2
    clock.now += relay.retry_delay(2)
    mark = fake.mark()
    await desk_bot.bot.relay.run_once()  # type: ignore[attr-defined]

    [post] = channel_posts(fake, world.review_channel_id, mark)
    assert post.json["embeds"][0]["title"] == f"Removal request {ticket.id}: open"
    assert await bookkeeping(desk).undelivered() == []


async def test_a_decision_dm_that_keeps_failing_is_retried_then_shown_to_maintainers(
    desk_bot: BotHarness, desk: Desk
) -> None:
    fake, world = desk_bot.fake, desk_bot.world
    clock = relay_clock(desk_bot)
    ticket = await file_entries(desk, str(world.member.id))
    await card_of(desk_bot, desk, ticket)
    outage = fake.fail("POST", rf"/channels/{world.member.dm_channel_id}/messages", 503)
    await desk.store.approve(ticket.id, "alice", "ok")
    mark = fake.mark()

    for attempt in range(1, relay.MAX_ATTEMPTS + 1):
        await desk_bot.bot.relay.run_once()  # type: ignore[attr-defined]
        assert outage.hits == attempt
        clock.now += relay.retry_delay(attempt)
    await desk_bot.bot.relay.run_once()  # type: ignore[attr-defined]
    assert outage.hits == relay.MAX_ATTEMPTS  # given up: no further tries

    notice = log_lines(desk_bot, mark)[-1]
    assert notice.startswith("I could not deliver the message telling the requester")
    assert ticket.id in notice
    assert "503" in notice
    queue = await run_command(desk_bot, "tickets queue", world.maintainer)
    content = queue.json["data"]["content"]
    assert messages.NOT_DELIVERED_HEADING in content
    assert f"`{ticket.id}` ({relay.MAX_ATTEMPTS} tries)" in content
    # Once Discord is back the requester can still be told by hand; nothing repeats on its own.
    fake.clear_failures()
    again = fake.mark()
    await desk_bot.bot.relay.run_once()  # type: ignore[attr-defined]
    assert writes(fake, again) == []


async def test_an_erasure_takes_the_note_off_the_review_card(desk_bot: BotHarness, desk: Desk) -> None:
    """After /forget-me (or `tickets forget`) the card used to keep showing the requester's note."""
    world = desk_bot.world
    ticket = await file_entries(desk, str(world.member.id), note="It is my old passport photo.")
    card = await card_of(desk_bot, desk, ticket)
    assert "Requester's note" in fields(card["embeds"][0])

    assert await desk.store.forget(str(world.member.id)) == 1
    await desk_bot.bot.relay.run_once()  # type: ignore[attr-defined]

    assert "Requester's note" not in fields(card["embeds"][0])
    assert "passport" not in json.dumps(card)


async def test_a_deleted_card_is_posted_again(desk_bot: BotHarness, desk: Desk) -> None:
    fake, world = desk_bot.fake, desk_bot.world
    ticket = await file_entries(desk, str(world.member.id))
    card = await card_of(desk_bot, desk, ticket)
    del fake.messages[world.review_channel_id][int(card["id"])]  # someone deleted it
    mark = fake.mark()

    await desk.store.claim(ticket.id, "alice")
    await desk_bot.bot.relay.run_once()  # type: ignore[attr-defined]

    [post] = channel_posts(fake, world.review_channel_id, mark)
    assert post.json["embeds"][0]["title"] == f"Removal request {ticket.id}: claimed"
    card = await bookkeeping(desk).review_card(ticket.id)
    assert card == (world.review_channel_id, int(post.response["id"]))


# --------------------------------------------------------------------------------------------------
# Settings: intents, mentions, missing settings, where the bot connects
# --------------------------------------------------------------------------------------------------


def with_discord(settings: Settings, **changes: Any) -> Settings:
    return dataclasses.replace(settings, discord=dataclasses.replace(settings.discord, **changes))


def test_intents_without_a_privacy_channel_ask_for_no_message_content(desk_settings: Settings) -> None:
    intents = intents_for(with_discord(desk_settings, privacy_channel_id=0))
    assert intents.guilds
    assert intents.dm_messages
    assert not intents.message_content
    assert not intents.guild_messages
    assert not intents.members
    assert not intents.presences


def test_intents_with_a_privacy_channel_read_guild_messages(desk_settings: Settings) -> None:
    intents = intents_for(desk_settings)
    assert intents.guild_messages
    assert intents.message_content
    assert not intents.members
    assert not intents.presences


async def test_the_bot_never_pings_everyone_or_roles(desk_settings: Settings, desk: Desk) -> None:
    client = RemovalDeskBot(desk_settings, desk)
    try:
        mentions = client.allowed_mentions
        assert mentions is not None
        assert mentions.everyone is False
        assert mentions.roles is False
        assert mentions.replied_user is False
        assert mentions.to_dict()["parse"] == ["users"]
    finally:
        await client.close()


def test_problems_name_each_missing_setting(settings: Settings) -> None:
    problems = with_discord(settings, token="", review_channel_id=0, maintainer_role_id=0).discord.problems()
    assert len(problems) == 3
    assert [p.split()[0] for p in problems] == [
        "discord.token",
        "discord.review_channel_id",
        "discord.maintainer_role_id",
    ]
    assert "DISCORD_TOKEN" in problems[0]
    bad_url = with_discord(
        settings, token="t", review_channel_id=1, maintainer_role_id=2, api_base_url="ftp://x"
    )
    assert [p.split()[0] for p in bad_url.discord.problems()] == ["discord.api_base_url"]
    complete = with_discord(settings, token="t", review_channel_id=1, maintainer_role_id=2)
    assert complete.discord.problems() == []


def test_run_with_missing_settings_exits_2_naming_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("REMOVAL_DESK_") or name == "DISCORD_TOKEN":
            monkeypatch.delenv(name)
    config = tmp_path / "empty.toml"  # wins over any deployment file that might set the ids
    config.write_text('[discord]\ntoken = ""\nreview_channel_id = 0\nmaintainer_role_id = 0\n')

    assert bot.cli.main(["--config", str(config), "run"]) == 2

    err = capsys.readouterr().err
    for name in ("discord.token", "discord.review_channel_id", "discord.maintainer_role_id"):
        assert name in err
    assert "Running the Discord bot" in err


def test_point_at_sends_every_rest_call_to_the_configured_base(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)  # restored afterwards
    point_at("https://discord-proxy.internal/api/v10/")
    assert discord.http.Route.BASE == "https://discord-proxy.internal/api/v10"
    route = discord.http.Route("POST", "/interactions/{id}/{token}/callback", id=1, token="t")
    assert route.url == "https://discord-proxy.internal/api/v10/interactions/1/t/callback"


class _StopConnectingError(Exception):
    pass


async def test_the_gateway_url_setting_is_where_the_bot_connects(
    desk_settings: Settings, desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway_class = discord.gateway.DiscordWebSocket
    monkeypatch.setattr(gateway_class, "DEFAULT_GATEWAY", gateway_class.DEFAULT_GATEWAY)  # restored after
    settings = with_discord(desk_settings, gateway_url="wss://gateway.proxy.internal/")
    client = RemovalDeskBot(settings, desk)
    connected_to: list[str] = []

    async def ws_connect(url: str, *, compress: int = 0) -> Any:
        connected_to.append(url)
        raise _StopConnectingError

    client.http.ws_connect = ws_connect  # type: ignore[method-assign]
    async with client:
        with pytest.raises(_StopConnectingError):
            await client.connect(reconnect=False)
    assert connected_to
    assert connected_to[0].startswith("wss://gateway.proxy.internal/")


async def test_a_linked_ticket_decided_with_its_primary_gets_no_card_but_its_requester_is_told(
    desk_bot: BotHarness, desk: Desk
) -> None:
    """Linked tickets are no review work: no card when filed, none when decided with the primary."""
    fake, world = desk_bot.fake, desk_bot.world
    primary = await file_entries(desk, "email:first")
    card = await card_of(desk_bot, desk, primary)
    follower = await file_entries(desk, str(world.member.id))
    assert follower.state is TicketState.LINKED
    mark = fake.mark()

    await desk.store.approve(primary.id, "alice", "confirmed")
    await desk_bot.bot.relay.run_once()  # type: ignore[attr-defined]

    assert await bookkeeping(desk).review_card(follower.id) is None
    assert channel_posts(fake, world.review_channel_id, mark) == []  # only the primary's card is edited
    assert len(card_edits(fake, card, mark)) == 1
    [dm] = direct_messages(desk_bot, world.member, mark)
    assert follower.id in dm


async def test_a_retention_run_that_erased_nothing_is_not_posted_to_the_log_channel(
    desk_bot: BotHarness, desk: Desk
) -> None:
    fake, world = desk_bot.fake, desk_bot.world
    mark = fake.mark()
    assert await desk.store.purge_expired() == 0
    assert await desk_bot.bot.relay.run_once() == 1  # type: ignore[attr-defined]
    assert channel_posts(fake, world.log_channel_id, mark) == []


async def test_run_logs_in_at_the_configured_api_and_explains_a_refused_token(
    fake: FakeDiscord,
    *,
    world: World,
    sample_index: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`python -m bot run` end to end up to the gateway: the REST calls go to api_base_url (here the
    fake), and a token Discord refuses ends the command with a sentence, not a traceback."""
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)  # restored afterwards
    config = tmp_path / "bot.toml"
    config.write_text(
        f'[discord]\ntoken = "not-a-token"\nreview_channel_id = {world.review_channel_id}\n'
        f"maintainer_role_id = {world.maintainer_role_id}\nguild_ids = [{world.guild_id}]\n"
        f'index = "{sample_index}"\napi_base_url = "{fake.api_base}"\n'
        f'[tickets]\ndatabase = "{tmp_path / "tickets.sqlite3"}"\n'
    )
    for name in ("DISCORD_TOKEN", "REMOVAL_DESK_DISCORD_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    refused = fake.fail("GET", r"/users/@me$", 401, {"code": 0, "message": "401: Unauthorized"})

    # main() runs its own event loop: give it a thread, while this loop serves the fake.
    code = await asyncio.to_thread(bot.cli.main, ["--config", str(config), "run"])

    assert code == 2
    assert refused.hits == 1
    err = capsys.readouterr().err
    assert "Discord refused the token" in err
    assert "INFO" in err  # the bot's own log is shown, not only warnings
    assert "not-a-token" not in err


# --------------------------------------------------------------------------------------------------
# Hash-list hits: a partner's list filed these, there is no requester
# --------------------------------------------------------------------------------------------------


async def file_list_hit(desk: Desk, numbers: tuple[int, ...] = (3, 4)) -> Ticket:
    """A ticket as ``hash-lists scan --file`` files it: the list stored, its hit filed."""
    from bot.hashlists.reading import ListEntry, ReadList
    from bot.hashlists.storage import store_list
    from bot.tickets.list_filing import ListHitRequest
    from bot.tickets.models import ListOrigin

    listed = "9f" * 32
    stored, _ = await store_list(
        desk.store, "iwf", ReadList("csv", "c" * 64, [ListEntry(2, "pdq", listed, "iwf-77")])
    )
    origin = ListOrigin("iwf", stored.id, 2, "iwf-77", None, "pdq", listed)
    hits = [
        dataclasses.replace(entry(n), pdq_distance=12, phash_distance=-1, variant="list:pdq") for n in numbers
    ]
    report = await desk.store.file_list_hits([ListHitRequest(origin, tuple(hits))])
    [ticket] = report.filed
    return ticket


async def test_a_list_hit_gets_a_card_naming_the_list_and_its_decision_tells_nobody(
    desk_bot: BotHarness, desk: Desk
) -> None:
    fake, world = desk_bot.fake, desk_bot.world
    ticket = await file_list_hit(desk)
    mark = fake.mark()
    card = await card_of(desk_bot, desk, ticket)

    [embed] = card["embeds"]
    assert embed["title"] == f"Removal request {ticket.id}: open"
    assert "hash list" in embed["description"]
    listed = fields(embed)
    origin = listed[messages.LIST_HIT_FIELD]
    assert "`iwf`" in origin
    assert "`iwf-77`" in origin
    assert "line 2" in origin
    assert listed[entry(3).key].startswith("pdq 12/256 bits from the entry's whole picture")
    assert "Requester's note" not in listed
    assert buttons(card) == card_buttons(ticket.id, "claim", "approve", "reject")
    [line] = log_lines(desk_bot, mark)
    assert f"`{ticket.id}` (system) create" in line

    await press(desk_bot, "claim", ticket.id, world.maintainer, card)
    modal = await press(desk_bot, "approve", ticket.id, world.maintainer, card)
    mark = fake.mark()
    submitted = await submit_reason(
        desk_bot, modal, "The list's category is in scope.", world.maintainer, card
    )
    await desk_bot.bot.relay.run_once()  # type: ignore[attr-defined]

    assert submitted.data["embeds"][0]["title"] == f"Removal request {ticket.id}: approved"
    stored = await desk.store.get(ticket.id)
    assert (stored.state, stored.decided_by) == (TicketState.APPROVED, str(world.maintainer.id))
    assert fake.find("POST", r"/users/@me/channels", since=mark) == []  # no requester to write to
    assert direct_messages(desk_bot, world.member, mark) == []
    _, rows = await desk.store.removal_list()
    assert {(row.key, row.removed_by_list, row.list_entry_id) for row in rows} == {
        (entry(n).key, "iwf", "iwf-77") for n in (3, 4)
    }


async def test_tickets_lists_a_list_hit_with_its_source(desk_bot: BotHarness, desk: Desk) -> None:
    ticket = await file_list_hit(desk)
    assert render.ticket_line(ticket).endswith(" · list `iwf`")
