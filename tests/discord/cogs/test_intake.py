"""The person's side of the removal desk (``cogs/intake.py``), driven through real discord.py objects.

Every test feeds gateway events (slash commands, button clicks, modal submits, messages) into the real
``RemovalDeskBot`` on :class:`~tests.discord.fake_discord.FakeDiscord` and asserts on what reached
Discord's REST API (``fake.requests``) and on the ticket store. Covered:

* ``/check``: an ephemeral defer sent before the download, the match with a **Request removal** button,
  "no match", and refused files (too big or not a picture: never downloaded; garbage, truncated, a
  decompression bomb, empty: one sentence each) that store nothing;
* the request: button -> modal (warns against names) -> ticket (requester id and note only, no trace of
  the picture in the database) -> review card; a stranger's click, an expired check, a restart;
* the privacy channel (deleted before anything else, answered by DM; DMs closed: a one-minute notice
  that pings only the author), direct messages, the offline backlog and the pinned panel;
* per-person limits; ``/mytickets``, ``/withdraw``, ``/forget-me``;
* hashing in a real process pool: the event loop keeps ticking, and refusals cross the process boundary.

No test sends the picture's bytes, name or URL anywhere but the one download (``assert_picture_private``).
Time is a :class:`FakeClock` given to the :class:`~bot.desk.Desk` (pending checks and cooldowns).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import io
import json
import multiprocessing
import os
import re
import struct
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import discord.message
import pytest
from PIL import Image

import cogs.intake as intake_cog
from bot import messages
from bot.checking import hash_submitted_picture
from bot.config import Settings
from bot.desk import Desk
from bot.index.search import HashIndex
from bot.tickets.intake import file_removal_request
from bot.tickets.lifecycle import TicketState
from bot.tickets.store import TicketStore
from tests.discord.cogs.conftest import bookkeeping, bot_of, query_bytes, settle
from tests.discord.fake_discord import (
    BOT_PERMISSIONS,
    CANNOT_DM,
    EPHEMERAL,
    JSON,
    MISSING_PERMISSIONS,
    PIN_MESSAGES,
    BotHarness,
    FakeDiscord,
    Person,
    RecordedRequest,
    World,
    running_bot,
    thread_channel_payload,
)

CALLBACK = r"/interactions/\d+/[^/]+/callback"
FOLLOWUP = r"/webhooks/\d+/[^/]+"
DOWNLOAD = r"/attachments/.+"
# A name that could identify someone: it must never travel back to Discord or into the database.
FILENAME = "mo_at_st_marys_clinic.jpg"
TICKET_ID = re.compile(r"\*\*([0-9A-Z]{6})\*\*")
MIB = 2**20


class FakeClock:
    """The desk's monotonic clock (pending checks, cooldowns), moved by hand."""

    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def desk(
    desk_settings: Settings, hash_executor: ThreadPoolExecutor, clock: FakeClock
) -> AsyncIterator[Desk]:
    """conftest's ``desk`` with a :class:`FakeClock` (``desk_harness`` picks this one up)."""
    store = await TicketStore.open(desk_settings.tickets.database_path, desk_settings.tickets)
    try:
        yield make_desk(desk_settings, store, hash_executor, clock)
    finally:
        await store.close()


def make_desk(settings: Settings, store: TicketStore, executor: Executor, clock: FakeClock) -> Desk:
    return Desk(settings, HashIndex(Path(settings.discord.index)), store, executor, clock=clock)


# --------------------------------------------------------------------------------------------------
# Driving the bot
# --------------------------------------------------------------------------------------------------


async def slash(harness: BotHarness, name: str, *, invoker: Person | None = None, **options: Any) -> int:
    """Run a slash command; return the request mark from before it."""
    since = harness.fake.mark()
    dm = invoker is not None and not invoker.in_guild
    harness.dispatch_interaction(
        harness.world.command_interaction(name, options=options or None, invoker=invoker, dm=dm)
    )
    await settle(harness)
    return since


async def check(
    harness: BotHarness,
    data: bytes,
    content_type: str | None = "image/jpeg",
    *,
    invoker: Person | None = None,
    size: int | None = None,
) -> tuple[int, JSON]:
    """``/check`` with ``data`` as the attachment (``size``: what Discord declares, if not the truth)."""
    attachment = harness.fake.add_attachment(data, FILENAME, content_type)
    if size is not None:
        attachment["size"] = size
    since = await slash(harness, "check", invoker=invoker, image=attachment)
    return since, attachment


async def click(harness: BotHarness, custom_id: str, message: JSON, *, invoker: Person | None = None) -> int:
    since = harness.fake.mark()
    harness.dispatch_interaction(
        harness.world.component_interaction(custom_id, message=message, invoker=invoker)
    )
    await settle(harness)
    return since


def callbacks(fake: FakeDiscord, since: int) -> list[RecordedRequest]:
    return fake.find("POST", CALLBACK, since=since)


def only_callback(fake: FakeDiscord, since: int) -> JSON:
    found = callbacks(fake, since)
    assert len(found) == 1, fake.describe()
    return found[0].json


def edited(fake: FakeDiscord, since: int) -> tuple[str, list[JSON]]:
    """(content, components) of the message a click edited (callback type 7)."""
    answer = only_callback(fake, since)
    assert answer["type"] == 7, answer
    return answer["data"]["content"], answer["data"]["components"]


def followup(fake: FakeDiscord, since: int) -> RecordedRequest:
    found = fake.find("POST", FOLLOWUP, since=since)
    assert len(found) == 1, fake.describe()
    return found[0]


def buttons(message: JSON) -> list[JSON]:
    return [item for row in message.get("components") or [] for item in row["components"]]


def request_button(message: JSON) -> str:
    (button,) = buttons(message)
    assert button["label"] == "Request removal"
    assert button["custom_id"].startswith("rd:request:")
    return button["custom_id"]


def text_input(modal: JSON) -> JSON:
    """The modal's one text input, whether sent in an action row or a label."""
    found = []
    for row in modal["components"]:
        for child in row.get("components") or [row.get("component")]:
            if child and child["type"] == 4:
                found.append(child)
    assert len(found) == 1, modal
    return found[0]


async def checked_result(harness: BotHarness, picture: str, *, invoker: Person | None = None) -> JSON:
    """``/check`` a sample query; return the follow-up message (with its Request removal button)."""
    since, _ = await check(harness, query_bytes(picture), invoker=invoker)
    message = followup(harness.fake, since).response
    request_button(message)
    return message


async def open_modal(harness: BotHarness, result: JSON, *, invoker: Person | None = None) -> RecordedRequest:
    since = await click(harness, request_button(result), result, invoker=invoker)
    (shown,) = callbacks(harness.fake, since)
    assert shown.json["type"] == 9, shown.json
    return shown


async def submit(
    harness: BotHarness, modal: RecordedRequest, note: str, *, invoker: Person | None = None
) -> int:
    since = harness.fake.mark()
    values = {text_input(modal.json["data"])["custom_id"]: note}
    harness.dispatch_interaction(harness.world.modal_submit_from_callback(modal, values, invoker=invoker))
    await settle(harness)
    return since


async def file_request(
    harness: BotHarness, picture: str, note: str = "", *, invoker: Person | None = None
) -> str:
    """The whole path: /check, Request removal, submit the modal; return the new ticket's id."""
    result = await checked_result(harness, picture, invoker=invoker)
    modal = await open_modal(harness, result, invoker=invoker)
    since = await submit(harness, modal, note, invoker=invoker)
    answer = followup(harness.fake, since).json["content"]
    found = TICKET_ID.search(answer)
    assert found, answer
    return found[1]


def post_message(harness: BotHarness, payload: JSON) -> int:
    since = harness.fake.mark()
    harness.dispatch_message(payload)
    return since


def picture_in(harness: BotHarness, data: bytes, channel_id: int) -> JSON:
    return harness.fake.add_attachment(data, FILENAME, "image/jpeg", channel_id=channel_id)


# --------------------------------------------------------------------------------------------------
# What must (not) have happened
# --------------------------------------------------------------------------------------------------


def assert_picture_private(fake: FakeDiscord, attachment: JSON) -> None:
    """The picture left Discord once (its download); no request carried its bytes, name or URL back."""
    url_path = urlsplit(attachment["url"]).path
    downloads = [r for r in fake.requests if not r.api]
    assert [r.path for r in downloads] in ([], [url_path])
    for request in fake.requests:
        if not request.api:
            continue
        text = json.dumps([request.path, request.query, request.json])
        assert FILENAME not in text, request
        assert url_path not in text, request
        assert attachment["id"] not in text, request
        assert not request.files, request  # the person's side never uploads a file


async def assert_nothing_stored(desk: Desk) -> None:
    assert await desk.store.list_tickets() == []
    assert [event.action for event in await desk.store.audit_log() if event.action != "purge"] == []
    assert desk._pending == {}


def database_bytes(desk: Desk) -> bytes:
    path = desk.settings.tickets.database_path
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-journal")]
    return b"".join(file.read_bytes() for file in files if file.exists())


def bomb_png() -> bytes:
    """A valid 32x32 PNG whose header claims 20000x20000 pixels (400 megapixels)."""
    buffer = io.BytesIO()
    Image.new("L", (32, 32), 128).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", 20_000, 20_000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def truncated_jpeg() -> bytes:
    data = query_bytes("coffee__mirrored.jpg")
    return data[: len(data) // 3]


# --------------------------------------------------------------------------------------------------
# /check
# --------------------------------------------------------------------------------------------------


async def test_check_defers_privately_before_downloading_and_lists_the_match(
    desk_harness: BotHarness, desk: Desk
) -> None:
    fake, member = desk_harness.fake, desk_harness.world.member
    data = query_bytes("coffee__mirrored.jpg")
    since, attachment = await check(desk_harness, data)

    sent = fake.requests[since:]
    kinds = [(r.method, r.path if r.api else "download") for r in sent]
    assert kinds[0][1].endswith("/callback")
    assert kinds[1] == ("GET", "download")  # the defer went out before the picture was fetched
    assert sent[0].json == {"type": 5, "data": {"flags": EPHEMERAL}}
    answer = followup(fake, since)
    assert answer.json["content"] == messages.matches_found(1)
    assert answer.response["flags"] & EPHEMERAL
    (embed,) = answer.json["embeds"]
    assert [field["name"] for field in embed["fields"]] == ["coffee.jpg"]
    assert request_button(answer.json) == request_button(answer.response)

    # Only hashes are kept, in memory, for the button; nothing is in the database yet.
    (pending,) = desk._pending.values()
    assert pending.owner == member.id
    assert await desk.store.list_tickets() == []
    assert_picture_private(fake, attachment)


async def test_no_match_says_what_was_checked_and_offers_a_maintainer_without_a_button(
    desk_harness: BotHarness, desk: Desk
) -> None:
    data = query_bytes("unrelated_gravel.jpg")
    since, attachment = await check(desk_harness, data)

    answer = followup(desk_harness.fake, since)
    content = answer.json["content"]
    assert content == messages.no_match(3)
    assert "compared it with all 3 pictures in the dataset" in content
    assert "no copy" in content
    assert "a maintainer can still look into it" in content
    assert not answer.json.get("components")
    assert not answer.json.get("embeds")
    assert answer.response["flags"] & EPHEMERAL
    await assert_nothing_stored(desk)
    assert_picture_private(desk_harness.fake, attachment)


@dataclass(frozen=True)
class BadFile:
    data: bytes
    content_type: str
    sentence: str  # what the person is told
    downloaded: bool  # False: refused on what Discord declares, before fetching a byte
    declared_size: int | None = None


BAD_FILES = {
    "declared-over-10-MiB": BadFile(
        b"\xff\xd8\xff" + b"\0" * 64,
        "image/jpeg",
        "20.0 MiB; I can check files up to 10 MiB",
        False,
        20 * MIB,
    ),
    "pdf": BadFile(
        b"%PDF-1.7\n" + b"\0" * 64, "application/pdf", "This file (application/pdf) is not a picture", False
    ),
    "not-an-image": BadFile(
        b"this is not a picture at all" * 8,
        "image/png",
        "I could not check this file. This file is not a picture I can read.",
        True,
    ),
    "truncated-jpeg": BadFile(
        truncated_jpeg(), "image/jpeg", "I could not check this file. This picture seems damaged", True
    ),
    "decompression-bomb": BadFile(bomb_png(), "image/png", "pixels, more than can be checked safely", True),
    "zero-bytes": BadFile(
        b"", "image/png", "I could not check this file. The file is empty (0 bytes).", True
    ),
}


@pytest.mark.parametrize("bad", BAD_FILES.values(), ids=BAD_FILES.keys())
async def test_a_file_that_cannot_be_checked_gets_one_private_sentence_and_nothing_is_stored(
    desk_harness: BotHarness, desk: Desk, bad: BadFile
) -> None:
    fake = desk_harness.fake
    since, attachment = await check(desk_harness, bad.data, bad.content_type, size=bad.declared_size)

    assert only_callback(fake, since) == {"type": 5, "data": {"flags": EPHEMERAL}}
    answer = followup(fake, since)
    assert bad.sentence in answer.json["content"]
    assert answer.response["flags"] & EPHEMERAL
    assert not answer.json.get("components")
    assert not answer.json.get("embeds")
    assert len(fake.find("GET", DOWNLOAD, since=since)) == (1 if bad.downloaded else 0)
    await assert_nothing_stored(desk)
    assert_picture_private(fake, attachment)


# --------------------------------------------------------------------------------------------------
# Request removal
# --------------------------------------------------------------------------------------------------


async def test_request_removal_files_a_ticket_with_only_the_note_and_posts_a_review_card(
    desk_harness: BotHarness, desk: Desk
) -> None:
    fake, world = desk_harness.fake, desk_harness.world
    data = query_bytes("coffee__mirrored.jpg")
    since, attachment = await check(desk_harness, data)
    result = followup(fake, since).response

    modal = await open_modal(desk_harness, result)
    text = text_input(modal.json["data"])
    assert "do not write names" in (text.get("placeholder") or "") + text.get("label", "")
    assert not text.get("required")
    note = "It was taken in a hospital; please remove it."
    since = await submit(desk_harness, modal, note)

    assert only_callback(fake, since) == {"type": 5, "data": {"flags": EPHEMERAL}}
    answer = fake.find("POST", FOLLOWUP, since=since)[0]
    ticket_id = TICKET_ID.search(answer.json["content"])[1]  # type: ignore[index]
    assert answer.json["content"] == messages.ticket_created(await desk.store.get(ticket_id))
    assert answer.response["flags"] & EPHEMERAL

    ticket = await desk.store.get(ticket_id)
    assert ticket.state is TicketState.OPEN
    assert ticket.requester == str(world.member.id)
    assert ticket.note == note
    assert ticket.source == "discord"
    assert [entry.key for entry in ticket.entries] == ["coffee.jpg"]
    assert desk._pending == {}  # the check is used up
    stored = database_bytes(desk)
    assert note.encode() in stored  # the scan does see text in the database
    for trace in (FILENAME, urlsplit(attachment["url"]).path, str(attachment["id"]), "attachments"):
        assert trace.encode() not in stored, trace
    assert data[1000:1064] not in stored

    card = fake.last("POST", rf"/channels/{world.review_channel_id}/messages")
    assert {button["custom_id"] for button in buttons(card.json)} == {
        f"rd:ticket:{action}:{ticket_id}" for action in ("claim", "approve", "reject")
    }
    assert FILENAME not in json.dumps(card.json)
    assert_picture_private(fake, attachment)


async def test_pressing_request_removal_again_names_the_request_already_filed(
    desk_harness: BotHarness, desk: Desk
) -> None:
    """Not "this result has expired, check again" (which then says "you already asked")."""
    fake = desk_harness.fake
    result = await checked_result(desk_harness, "coffee__mirrored.jpg")
    assert "I found 1 copy of it" in result["content"]
    assert "If you want it removed" in result["content"]  # one copy: "it", not "them"
    modal = await open_modal(desk_harness, result)
    since = await submit(desk_harness, modal, "")
    filed = followup(fake, since).json["content"]
    (ticket,) = await desk.store.list_tickets()
    assert ticket.id in filed

    since = await click(desk_harness, request_button(result), result)
    answer = only_callback(fake, since)
    assert answer["type"] == 4
    assert answer["data"]["flags"] == EPHEMERAL
    assert answer["data"]["content"] == messages.already_requested(ticket.id)
    assert "expired" not in answer["data"]["content"]

    since = await submit(desk_harness, modal, "")  # the same form sent twice
    assert followup(fake, since).json["content"] == messages.already_requested(ticket.id)
    assert len(await desk.store.list_tickets()) == 1


async def test_a_request_filed_in_a_dm_says_the_commands_are_used_in_the_server(
    desk_harness: BotHarness, desk: Desk
) -> None:
    """The commands are registered in the server only: a DM does not offer ``/mytickets``."""
    fake, world = desk_harness.fake, desk_harness.world
    dm = world.member.dm_channel_id
    attachment = picture_in(desk_harness, query_bytes("coffee__mirrored.jpg"), dm)
    since = post_message(desk_harness, world.message_create(attachments=[attachment], dm=True))
    await settle(desk_harness)
    (answer,) = fake.find("POST", rf"/channels/{dm}/messages", since=since)
    modal = await open_modal(desk_harness, answer.response)
    since = await submit(desk_harness, modal, "")
    filed = followup(fake, since).json["content"]
    assert "In the server, `/mytickets` shows your requests" in filed
    assert "message here" not in filed  # the decision comes by DM, wherever the request was made
    assert set(fake.commands) == {world.guild_id}  # registered for the server only


async def test_someone_elses_click_on_the_button_files_nothing(desk_harness: BotHarness, desk: Desk) -> None:
    fake, world = desk_harness.fake, desk_harness.world
    result = await checked_result(desk_harness, "coffee__mirrored.jpg")

    since = await click(desk_harness, request_button(result), result, invoker=world.maintainer)

    answer = only_callback(fake, since)
    assert answer["type"] == 4  # no modal
    assert answer["data"]["content"] == messages.check_expired()
    assert answer["data"]["flags"] == EPHEMERAL
    assert await desk.store.list_tickets() == []
    (pending,) = desk._pending.values()  # still there for the person who checked
    assert pending.owner == world.member.id


async def test_the_button_after_the_check_expired_asks_to_check_again(
    desk_harness: BotHarness, desk: Desk, clock: FakeClock
) -> None:
    fake = desk_harness.fake
    result = await checked_result(desk_harness, "coffee__mirrored.jpg")
    clock.advance(desk.settings.discord.pending_check_seconds)

    since = await click(desk_harness, request_button(result), result)

    answer = only_callback(fake, since)
    assert answer["type"] == 4
    assert answer["data"]["content"] == messages.check_expired()
    assert answer["data"]["flags"] == EPHEMERAL
    await assert_nothing_stored(desk)


async def test_a_check_that_expires_while_the_modal_is_open_files_nothing(
    desk_harness: BotHarness, desk: Desk, clock: FakeClock
) -> None:
    result = await checked_result(desk_harness, "coffee__mirrored.jpg")
    modal = await open_modal(desk_harness, result)
    clock.advance(desk.settings.discord.pending_check_seconds + 1)

    since = await submit(desk_harness, modal, "please")

    assert followup(desk_harness.fake, since).json["content"] == messages.check_expired()
    await assert_nothing_stored(desk)


async def test_the_button_answers_after_a_restart(
    fake: FakeDiscord, world: World, desk: Desk, hash_executor: ThreadPoolExecutor, clock: FakeClock
) -> None:
    async with running_bot(fake, world=world, bot_factory=bot_of(desk)) as first:
        await settle(first)
        result = await checked_result(first, "coffee__mirrored.jpg")
        first.assert_no_errors()

    restarted = make_desk(desk.settings, desk.store, hash_executor, clock)  # a new process: nothing pending
    async with running_bot(fake, world=world, bot_factory=bot_of(restarted)) as second:
        await settle(second)
        since = await click(second, request_button(result), result)
        answer = only_callback(fake, since)
        second.assert_no_errors()

    assert answer["type"] == 4
    assert answer["data"]["content"] == messages.check_expired()
    assert answer["data"]["flags"] == EPHEMERAL
    assert await desk.store.list_tickets() == []


# --------------------------------------------------------------------------------------------------
# The privacy channel and direct messages
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_reply", [False, True], ids=["message", "reply"])
async def test_a_picture_in_the_privacy_channel_is_deleted_first_then_answered_by_dm(
    desk_harness: BotHarness, desk: Desk, as_reply: bool
) -> None:
    fake, world = desk_harness.fake, desk_harness.world
    privacy, dm = world.privacy_channel_id, world.member.dm_channel_id
    data = query_bytes("coffee__mirrored.jpg")
    attachment = picture_in(desk_harness, data, privacy)
    extra: dict[str, Any] = {}
    if as_reply:  # a reply to the pinned panel, say: a type 19 message, just as visible
        (panel,) = fake.channel_messages(privacy)
        extra = {
            "message_type": 19,
            "message_reference": {"message_id": panel["id"], "channel_id": str(privacy)},
        }
    posted = world.message_create("is this me?", attachments=[attachment], **extra)
    since = post_message(desk_harness, posted)
    await settle(desk_harness)

    sent = [f"{r.method} {r.path if r.api else 'download'}" for r in fake.requests[since:]]
    assert sent == [
        "GET download",  # read first: a deleted message's attachment may stop being served
        f"DELETE /channels/{privacy}/messages/{posted['id']}",  # then at once, before any hashing
        "POST /users/@me/channels",
        f"POST /channels/{dm}/messages",
    ]
    assert int(posted["id"]) not in fake.messages[privacy]
    answer = fake.last("POST", rf"/channels/{dm}/messages")
    assert answer.json["content"] == f"{messages.PICTURE_DELETED}\n{messages.matches_found(1)}"
    assert [field["name"] for field in answer.json["embeds"][0]["fields"]] == ["coffee.jpg"]

    modal = await open_modal(desk_harness, answer.response)  # the button works in the DM
    assert modal.json["data"]["title"] == "Request removal"
    assert_picture_private(fake, attachment)


class HeldSleeps:
    """Stands in for ``asyncio`` inside ``discord.message``: ``Message.delete(delay=...)`` (what
    ``send(delete_after=...)`` calls) sleeps here, until the test lets it go."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, delay: float, result: Any = None) -> Any:
        self.delays.append(delay)
        await self.release.wait()
        return result


@pytest.fixture
def held_sleeps(monkeypatch: pytest.MonkeyPatch) -> HeldSleeps:
    held = HeldSleeps()
    monkeypatch.setattr(discord.message, "asyncio", held)
    return held


@pytest.mark.parametrize("outage", [1, None])
async def test_a_failing_answer_dm_is_tried_again_and_never_leaves_the_person_with_nothing(
    desk_harness: BotHarness,
    desk: Desk,
    held_sleeps: HeldSleeps,
    monkeypatch: pytest.MonkeyPatch,
    outage: int | None,
) -> None:
    """Only a 403 used to be caught: a 5xx on the answer DM left the person with their picture
    deleted and no answer, and no notice either."""
    monkeypatch.setattr(intake_cog, "DM_RETRY_PAUSES", (0, 0))
    fake, world = desk_harness.fake, desk_harness.world
    privacy, member = world.privacy_channel_id, world.member
    failing = fake.fail("POST", rf"/channels/{member.dm_channel_id}/messages", 503, times=outage)
    attachment = picture_in(desk_harness, query_bytes("coffee__mirrored.jpg"), privacy)
    since = post_message(desk_harness, world.message_create("me?", attachments=[attachment]))
    await settle(desk_harness)

    assert fake.find("DELETE", rf"/channels/{privacy}/messages/\d+", since=since)
    if outage == 1:  # Discord recovered: the second try delivers the answer, nobody else hears
        assert failing.hits == 1
        tries = fake.find("POST", rf"/channels/{member.dm_channel_id}/messages", since=since)
        assert [attempt.status for attempt in tries] == [503, 200]
        assert fake.find("POST", rf"/channels/{privacy}/messages", since=since) == []
    else:  # it did not: three tries, then a notice in the channel, for the author only
        assert failing.hits == 3
        notice = fake.last("POST", rf"/channels/{privacy}/messages")
        assert notice.json["content"] == messages.dm_failed_notice(member.mention)
        assert [int(user) for user in notice.json["allowed_mentions"]["users"]] == [member.id]


@pytest.mark.parametrize("content", ["picture", "text"])
async def test_with_dms_closed_a_one_minute_notice_pings_only_the_author(
    desk_harness: BotHarness, desk: Desk, held_sleeps: HeldSleeps, content: str
) -> None:
    fake, world = desk_harness.fake, desk_harness.world
    privacy, member = world.privacy_channel_id, world.member
    refused = fake.fail("POST", rf"/channels/{member.dm_channel_id}/messages", 403, CANNOT_DM)
    data = query_bytes("coffee__mirrored.jpg")
    attachment = picture_in(desk_harness, data, privacy)
    attachments = [attachment] if content == "picture" else []
    posted = world.message_create("hello?", attachments=attachments)
    since = post_message(desk_harness, posted)
    await settle(desk_harness)

    assert next(r for r in fake.requests[since:] if r.api).method == "DELETE"  # after the download only
    assert refused.hits == 1
    assert desk._pending == {}  # the answer could not be delivered: its check is not kept
    notice = fake.last("POST", rf"/channels/{privacy}/messages")
    assert notice.json["content"] == messages.dm_closed_notice(member.mention)
    assert notice.json["content"].startswith(member.mention)
    if content == "text":  # nothing was checked: the notice must not claim a picture was
        assert "picture" not in notice.json["content"].split("/check")[0]
    mentions = notice.json["allowed_mentions"]
    assert [int(user) for user in mentions["users"]] == [member.id]
    assert not {"everyone", "roles", "users"} & set(mentions["parse"])
    notice_id = int(notice.response["id"])

    assert held_sleeps.delays == [60]
    assert notice_id in fake.messages[privacy]  # still up while the minute runs
    held_sleeps.release.set()
    await fake.wait_for("DELETE", rf"/channels/{privacy}/messages/{notice_id}")
    assert fake.channel_messages(privacy) == [m for m in fake.channel_messages(privacy) if m["pinned"]]
    assert_picture_private(fake, attachment)


async def test_text_in_the_privacy_channel_is_deleted_and_the_person_gets_a_hint(
    desk_harness: BotHarness, desk: Desk
) -> None:
    fake, world = desk_harness.fake, desk_harness.world
    posted = world.message_create("how does this work?")
    since = post_message(desk_harness, posted)
    await settle(desk_harness)

    assert fake.requests[since].path == f"/channels/{world.privacy_channel_id}/messages/{posted['id']}"
    assert fake.requests[since].method == "DELETE"
    hint = fake.last("POST", rf"/channels/{world.member.dm_channel_id}/messages")
    assert hint.json["content"] == "Send me a picture to check it (as an attachment)."
    assert fake.find("GET", DOWNLOAD) == []
    await assert_nothing_stored(desk)


@pytest.mark.parametrize("where", ["review-channel", "log-channel", "bot-in-privacy", "bot-in-dm"])
async def test_messages_elsewhere_and_from_bots_are_left_alone(
    desk_harness: BotHarness, desk: Desk, where: str
) -> None:
    fake, world = desk_harness.fake, desk_harness.world
    other_bot = Person(
        1_300_000_000_000_000_077, "helper-bot", bot=True, dm_channel_id=1_400_000_000_000_000_077
    )
    fake.add_user(other_bot.user_payload())
    fake.add_channel(world.dm_channel_payload(other_bot))
    channel = {"review-channel": world.review_channel_id, "log-channel": world.log_channel_id}
    attachment = picture_in(desk_harness, query_bytes("coffee__mirrored.jpg"), world.privacy_channel_id)
    if where in channel:
        posted = world.message_create("look", author=world.maintainer, channel_id=channel[where],
                                      attachments=[attachment])  # fmt: skip
    else:
        posted = world.message_create(
            "look", author=other_bot, dm=where == "bot-in-dm", attachments=[attachment]
        )
    since = post_message(desk_harness, posted)
    await settle(desk_harness)

    assert fake.requests[since:] == []
    assert int(posted["id"]) in fake.messages[int(posted["channel_id"])]
    await assert_nothing_stored(desk)


async def test_a_picture_sent_by_dm_is_answered_there_without_a_delete(
    desk_harness: BotHarness, desk: Desk
) -> None:
    fake, world = desk_harness.fake, desk_harness.world
    dm = world.member.dm_channel_id
    data = query_bytes("coffee__mirrored.jpg")
    attachment = picture_in(desk_harness, data, dm)
    since = post_message(desk_harness, world.message_create(attachments=[attachment], dm=True))
    await settle(desk_harness)

    assert fake.find("DELETE", r".*", since=since) == []
    assert len(fake.find("GET", DOWNLOAD, since=since)) == 1
    (answer,) = fake.find("POST", r"/channels/\d+/messages", since=since)
    assert answer.path == f"/channels/{dm}/messages"
    assert answer.json["content"] == messages.matches_found(1)  # no claim that anything was deleted
    modal = await open_modal(desk_harness, answer.response)
    assert modal.json["type"] == 9
    assert_picture_private(fake, attachment)


FIVE_PICTURES = (
    "coffee__mirrored.jpg",
    "unrelated_gravel.jpg",
    "astronaut__cropped.jpg",
    "unrelated_retina.jpg",
    "chelsea__gray.jpg",
)


async def test_every_picture_of_a_message_is_answered_and_each_answer_says_which_picture(
    desk_harness: BotHarness, desk: Desk
) -> None:
    """Five pictures in one message (Discord allows ten): five answers, the deletion said once, and
    each answer names the picture by its place in the message (never by its file name)."""
    fake, world = desk_harness.fake, desk_harness.world
    privacy, dm = world.privacy_channel_id, world.member.dm_channel_id
    attachments = [picture_in(desk_harness, query_bytes(name), privacy) for name in FIVE_PICTURES]
    posted = world.message_create("are these me?", attachments=attachments)
    since = post_message(desk_harness, posted)
    await settle(desk_harness)

    assert len(fake.find("GET", DOWNLOAD, since=since)) == 5
    answers = [r.json["content"] for r in fake.find("POST", rf"/channels/{dm}/messages", since=since)]
    assert len(answers) == 5, answers
    assert [answer.count(messages.PICTURE_DELETED) for answer in answers] == [1, 0, 0, 0, 0]
    for position, answer in enumerate(answers, 1):
        assert messages.which_picture(position, 5) in answer, answer
        assert FILENAME not in answer
    assert "Your 2nd picture (of 5)" in answers[1]
    assert messages.matches_found(1) in answers[0]
    assert messages.matches_found(1) not in answers[1]  # gravel: no copy


async def test_pictures_in_the_privacy_channel_take_their_place_in_the_desk_before_download(
    desk_harness: BotHarness, desk: Desk
) -> None:
    """Posted pictures used to be downloaded with no place taken in the desk, so a crowd in the
    privacy channel was not bounded; past the bound a picture is not downloaded and the person is
    told the desk is busy, as with /check."""
    fake, world = desk_harness.fake, desk_harness.world
    privacy, dm = world.privacy_channel_id, world.member.dm_channel_id
    with contextlib.ExitStack() as taken:  # everyone else's checks, all but one place
        for _ in range(desk.settings.discord.max_checks_in_memory - 1):
            taken.enter_context(desk.admit(another=True))
        attachments = [picture_in(desk_harness, query_bytes(name), privacy) for name in FIVE_PICTURES[:2]]
        since = post_message(desk_harness, world.message_create(attachments=attachments))
        await settle(desk_harness)

    assert len(fake.find("GET", DOWNLOAD, since=since)) == 1  # the second was never read
    first, second = [r.json["content"] for r in fake.find("POST", rf"/channels/{dm}/messages", since=since)]
    assert messages.matches_found(1) in first
    assert "Many people are checking pictures right now" in second
    assert desk.admitted == 0  # every place given back


async def test_pictures_past_the_check_limit_are_named_and_the_person_is_told_when_to_resend(
    desk_harness: BotHarness, desk: Desk
) -> None:
    fake, world = desk_harness.fake, desk_harness.world
    privacy, dm = world.privacy_channel_id, world.member.dm_channel_id
    uses = desk.settings.discord.check_uses
    names = [FIVE_PICTURES[i % len(FIVE_PICTURES)] for i in range(uses + 2)]
    attachments = [picture_in(desk_harness, query_bytes(name), privacy) for name in names]
    since = post_message(desk_harness, world.message_create(attachments=attachments))
    await settle(desk_harness)

    assert len(fake.find("GET", DOWNLOAD, since=since)) == uses  # the others are not even downloaded
    answers = [r.json["content"] for r in fake.find("POST", rf"/channels/{dm}/messages", since=since)]
    assert len(answers) == uses + 1
    last = answers[-1]
    assert last == messages.pictures_not_checked(
        [uses + 1, uses + 2], uses + 2, desk.settings.discord.check_per_seconds
    )
    assert f"{uses + 1}th and {uses + 2}th pictures (of {uses + 2})" in last
    assert "again in" in last


@pytest.mark.parametrize("cached", [True, False], ids=["thread-cached", "thread-fetched"])
async def test_a_picture_in_a_thread_of_the_privacy_channel_is_deleted_and_answered_by_dm(
    desk_harness: BotHarness, desk: Desk, cached: bool
) -> None:
    fake, world = desk_harness.fake, desk_harness.world
    privacy, dm = world.privacy_channel_id, world.member.dm_channel_id
    thread = thread_channel_payload(
        1_200_000_000_000_000_555,
        "help",
        guild_id=world.guild_id,
        parent_id=privacy,
        owner_id=world.member.id,
    )
    fake.add_channel(thread)
    if cached:  # what the gateway sends when a thread the bot can see is created
        desk_harness.state.parse_thread_create({**thread, "newly_created": True})
    attachment = picture_in(desk_harness, query_bytes("coffee__mirrored.jpg"), int(thread["id"]))
    posted = world.message_create("me?", channel_id=int(thread["id"]), attachments=[attachment])
    since = post_message(desk_harness, posted)
    await settle(desk_harness)

    assert fake.find("DELETE", rf"/channels/{thread['id']}/messages/{posted['id']}", since=since)
    assert int(posted["id"]) not in fake.messages[int(thread["id"])]
    answer = fake.last("POST", rf"/channels/{dm}/messages")
    assert answer.json["content"] == f"{messages.PICTURE_DELETED}\n{messages.matches_found(1)}"
    assert fake.find("POST", rf"/channels/{thread['id']}/messages", since=since) == []
    assert_picture_private(fake, attachment)


async def test_a_thread_elsewhere_is_left_alone(desk_harness: BotHarness, desk: Desk) -> None:
    fake, world = desk_harness.fake, desk_harness.world
    thread = thread_channel_payload(
        1_200_000_000_000_000_556,
        "chat",
        guild_id=world.guild_id,
        parent_id=world.review_channel_id,
        owner_id=world.maintainer.id,
    )
    fake.add_channel(thread)
    desk_harness.state.parse_thread_create(thread)
    attachment = picture_in(desk_harness, query_bytes("coffee__mirrored.jpg"), int(thread["id"]))
    posted = world.message_create(
        "look", author=world.maintainer, channel_id=int(thread["id"]), attachments=[attachment]
    )
    since = post_message(desk_harness, posted)
    await settle(desk_harness)
    assert fake.requests[since:] == []
    await assert_nothing_stored(desk)


# --------------------------------------------------------------------------------------------------
# The offline backlog and the pinned panel
# --------------------------------------------------------------------------------------------------


async def test_pictures_posted_while_offline_are_handled_at_start_and_the_panel_is_pinned_once(
    fake: FakeDiscord, world: World, desk: Desk
) -> None:
    privacy = world.privacy_channel_id
    data = query_bytes("coffee__mirrored.jpg")
    attachment = fake.add_attachment(data, FILENAME, "image/jpeg", channel_id=privacy)
    picture = world.message_create("me?", author=world.member, attachments=[attachment])
    question = world.message_create("anyone here?", author=world.maintainer)
    fake.add_history(privacy, [picture, question])

    async with running_bot(fake, world=world, bot_factory=bot_of(desk)) as harness:
        await settle(harness)
        harness.assert_no_errors()

    deleted = [r.path for r in fake.find("DELETE", rf"/channels/{privacy}/messages/\d+")]
    assert deleted == [
        f"/channels/{privacy}/messages/{picture['id']}",
        f"/channels/{privacy}/messages/{question['id']}",
    ]
    answer = fake.last("POST", rf"/channels/{world.member.dm_channel_id}/messages")
    assert answer.json["content"] == f"{messages.PICTURE_DELETED}\n{messages.matches_found(1)}"
    request_button(answer.json)
    hint = fake.last("POST", rf"/channels/{world.maintainer.dm_channel_id}/messages")
    assert "Send me a picture" in hint.json["content"]
    (posted_panel,) = fake.find("POST", rf"/channels/{privacy}/messages")
    assert posted_panel.json["content"] == messages.PANEL
    assert [(b["custom_id"], b["label"]) for b in buttons(posted_panel.json)] == [
        ("rd:panel:dm", "Check privately")
    ]
    panel_id = posted_panel.response["id"]
    assert fake.find("PUT", rf"/channels/{privacy}/(messages/)?pins/{panel_id}")
    (panel,) = fake.channel_messages(privacy)
    assert panel["id"] == panel_id
    assert panel["pinned"]
    assert_picture_private(fake, attachment)

    since = fake.mark()
    async with running_bot(fake, world=world, bot_factory=bot_of(desk)) as again:
        await settle(again)
        again.assert_no_errors()
    assert fake.find("POST", rf"/channels/{privacy}/messages", since=since) == []
    assert fake.find("PUT", r".*/pins/.*", since=since) == []
    assert fake.find("DELETE", rf"/channels/{privacy}/messages/\d+", since=since) == []
    assert fake.channel_messages(privacy) == [panel]


async def test_without_manage_messages_in_the_privacy_channel_start_up_still_relays(
    fake: FakeDiscord, world: World, desk: Desk
) -> None:
    """Deleting and pinning in the privacy channel fail (403): the rest of the start-up work must run."""
    privacy = world.privacy_channel_id
    fake.fail("DELETE", rf"/channels/{privacy}/messages/\d+", 403, MISSING_PERMISSIONS)
    fake.fail("PUT", rf"/channels/{privacy}/(messages/)?pins/\d+", 403, MISSING_PERMISSIONS)
    attachment = fake.add_attachment(query_bytes("coffee__mirrored.jpg"), FILENAME, channel_id=privacy)
    fake.add_history(privacy, [world.message_create(attachments=[attachment])])
    # Filed from the command line while the bot was offline: its review card is owed.
    result = await desk.check(query_bytes("astronaut__cropped.jpg"))
    offline = await file_removal_request(desk.store, desk.index, result, "by-email", source="cli")

    async with running_bot(fake, world=world, bot_factory=bot_of(desk)) as harness:
        await settle(harness)
        harness.assert_no_errors()

    card = fake.last("POST", rf"/channels/{world.review_channel_id}/messages")
    assert f"rd:ticket:claim:{offline.id}" in {button["custom_id"] for button in buttons(card.json)}
    assert await bookkeeping(desk).review_card(offline.id) is not None


async def test_without_pin_messages_restarts_reuse_one_panel_and_the_warning_names_pin_messages(
    fake: FakeDiscord, world: World, desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    """Since 2026-02-23 pinning needs Pin Messages (1 << 51): with only the old invite's permissions
    (Manage Messages) the pin fails, the log says which permission is missing, and each start finds
    the panel it posted before (unpinned, in the channel's history) instead of posting another."""
    privacy = world.privacy_channel_id
    old_invite = dataclasses.replace(world, bot_permissions=BOT_PERMISSIONS & ~PIN_MESSAGES)
    assert (
        old_invite.permissions_in(old_invite.bot, privacy) & discord.Permissions(manage_messages=True).value
    )
    for _start in range(3):
        async with running_bot(fake, world=old_invite, bot_factory=bot_of(desk)) as harness:
            await settle(harness)
            harness.assert_no_errors()

    posted = fake.find("POST", rf"/channels/{privacy}/messages")
    assert len(posted) == 1, fake.describe()
    (panel,) = fake.channel_messages(privacy)
    assert not panel["pinned"]
    pins = fake.find("PUT", rf"/channels/{privacy}/(messages/)?pins/{panel['id']}")
    assert [pin.status for pin in pins] == [403, 403, 403]  # tried again at each start
    warnings = [
        r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "pin" in r.getMessage()
    ]
    assert len(warnings) == 3
    assert all("needs the Pin Messages permission" in warning for warning in warnings), warnings

    since = fake.mark()  # the permission granted: the same panel is pinned, once
    for _start in range(2):
        async with running_bot(fake, world=world, bot_factory=bot_of(desk)) as harness:
            await settle(harness)
            harness.assert_no_errors()
    assert fake.find("POST", rf"/channels/{privacy}/messages", since=since) == []
    (pinned,) = fake.find("PUT", r".*/pins/.*", since=since)
    assert pinned.status == 204
    assert fake.channel_messages(privacy) == [panel]
    assert panel["pinned"]


@pytest.mark.parametrize("dms_open", [True, False], ids=["dms-open", "dms-closed"])
async def test_the_panel_button_opens_a_dm_or_points_to_check(
    desk_harness: BotHarness, dms_open: bool
) -> None:
    fake, world = desk_harness.fake, desk_harness.world
    (panel,) = fake.channel_messages(world.privacy_channel_id)
    dm = rf"/channels/{world.member.dm_channel_id}/messages"
    if not dms_open:
        fake.fail("POST", dm, 403, CANNOT_DM)

    since = await click(desk_harness, "rd:panel:dm", panel)

    deferred = only_callback(fake, since)  # answered at once: the DM may take longer than 3 s
    assert deferred["type"] == 5
    assert deferred["data"]["flags"] == EPHEMERAL
    (attempt,) = fake.find("POST", dm, since=since)
    answer = followup(fake, since).json["content"]
    if dms_open:
        assert attempt.json["content"].startswith("Send me the picture here")
        assert answer == "I sent you a private message."
    else:
        assert attempt.status == 403
        assert "`/check`" in answer


# --------------------------------------------------------------------------------------------------
# Per-person limits
# --------------------------------------------------------------------------------------------------


async def test_checks_over_the_limit_wait_without_a_download_even_in_the_privacy_channel(
    desk_harness: BotHarness, desk: Desk, clock: FakeClock
) -> None:
    fake, world = desk_harness.fake, desk_harness.world
    limits = desk.settings.discord
    data = query_bytes("unrelated_gravel.jpg")
    for _ in range(limits.check_uses):
        since, _ = await check(desk_harness, data)
        assert only_callback(fake, since)["type"] == 5
    clock.advance(limits.check_per_seconds / 2)

    since, _ = await check(desk_harness, data)
    answer = only_callback(fake, since)
    assert answer["type"] == 4  # answered at once: no defer
    assert answer["data"]["flags"] == EPHEMERAL
    assert answer["data"]["content"] == messages.slow_down(limits.check_per_seconds / 2)
    assert "try again in 30 seconds" in answer["data"]["content"]
    assert fake.find("GET", DOWNLOAD, since=since) == []

    posted = world.message_create(attachments=[picture_in(desk_harness, data, world.privacy_channel_id)])
    since = post_message(desk_harness, posted)
    await settle(desk_harness)
    assert fake.requests[since].method == "DELETE"  # the picture still goes at once
    assert fake.find("GET", DOWNLOAD, since=since) == []
    told = fake.last("POST", rf"/channels/{world.member.dm_channel_id}/messages")
    assert told.json["content"] == messages.slow_down(limits.check_per_seconds / 2)

    since, _ = await check(desk_harness, data, invoker=world.maintainer)  # per person
    assert only_callback(fake, since)["type"] == 5
    clock.advance(limits.check_per_seconds / 2)
    since, _ = await check(desk_harness, data)
    assert only_callback(fake, since)["type"] == 5
    assert followup(fake, since).json["content"] == messages.no_match(3)


async def test_requests_over_the_limit_are_refused_at_the_modal(desk_harness: BotHarness, desk: Desk) -> None:
    fake = desk_harness.fake
    limits = desk.settings.discord
    pictures = ["coffee__mirrored.jpg", "astronaut__cropped.jpg", "chelsea__gray.jpg"]
    assert limits.request_uses == len(pictures)
    for picture in pictures:
        await file_request(desk_harness, picture)

    result = await checked_result(desk_harness, "coffee__mirrored.jpg")
    modal = await open_modal(desk_harness, result)
    since = await submit(desk_harness, modal, "one more")

    answer = only_callback(fake, since)
    assert answer["type"] == 4
    assert answer["data"]["flags"] == EPHEMERAL
    assert answer["data"]["content"] == messages.requests_slow_down(limits.request_per_seconds)
    assert fake.find("POST", FOLLOWUP, since=since) == []
    assert len(await desk.store.list_tickets()) == len(pictures)


# --------------------------------------------------------------------------------------------------
# One's own requests and data
# --------------------------------------------------------------------------------------------------


async def test_mytickets_lists_only_the_callers_requests(desk_harness: BotHarness) -> None:
    fake, world = desk_harness.fake, desk_harness.world
    mine = await file_request(desk_harness, "coffee__mirrored.jpg")
    theirs = await file_request(desk_harness, "astronaut__cropped.jpg", invoker=world.maintainer)

    since = await slash(desk_harness, "mytickets")
    answer = only_callback(fake, since)
    assert answer["type"] == 4
    assert answer["data"]["flags"] == EPHEMERAL
    assert f"`{mine}` open" in answer["data"]["content"]
    assert theirs not in answer["data"]["content"]

    since = await slash(desk_harness, "mytickets", invoker=world.outsider)  # from a DM, with none
    assert only_callback(fake, since)["data"]["content"] == "You have no removal requests."


async def test_withdraw_takes_back_ones_own_request_only(desk_harness: BotHarness, desk: Desk) -> None:
    fake, world = desk_harness.fake, desk_harness.world
    mine = await file_request(desk_harness, "coffee__mirrored.jpg")
    theirs = await file_request(desk_harness, "astronaut__cropped.jpg", invoker=world.maintainer)

    since = await slash(desk_harness, "withdraw", ticket=theirs)
    refusal = only_callback(fake, since)["data"]
    assert refusal["flags"] == EPHEMERAL
    assert refusal["content"] == f"Ticket {theirs} was not filed by you, so you cannot withdraw it."
    assert (await desk.store.get(theirs)).state is TicketState.OPEN

    since = await slash(desk_harness, "withdraw", ticket=mine.lower())
    done = only_callback(fake, since)["data"]
    assert done["flags"] == EPHEMERAL
    assert done["content"] == f"Request {mine} is withdrawn."
    assert (await desk.store.get(mine)).state is TicketState.WITHDRAWN

    since = await slash(desk_harness, "withdraw", ticket="nonsense")
    assert only_callback(fake, since)["data"]["content"] == "There is no ticket nonsense."


async def test_forget_me_asks_first_and_erase_removes_every_trace_of_the_person(
    desk_harness: BotHarness, desk: Desk
) -> None:
    fake, world = desk_harness.fake, desk_harness.world
    note = "NOTE-7731 from my old school"
    ticket_id = await file_request(desk_harness, "coffee__mirrored.jpg", note)
    theirs = await file_request(desk_harness, "astronaut__cropped.jpg", invoker=world.maintainer)
    member_id = str(world.member.id).encode()
    assert member_id in database_bytes(desk)

    async def ask() -> JSON:
        since = await slash(desk_harness, "forget-me")
        (shown,) = callbacks(fake, since)
        assert shown.json["type"] == 4
        assert shown.json["data"]["flags"] == EPHEMERAL
        assert shown.json["data"]["content"] == messages.forget_confirm()
        return shown.response["resource"]["message"]

    prompt = await ask()
    labels = {button["label"]: button["custom_id"] for button in buttons(prompt)}
    assert set(labels) == {"Erase my data", "Cancel"}
    since = await click(desk_harness, labels["Cancel"], prompt)
    assert edited(fake, since) == ("Nothing was erased.", [])
    assert (await desk.store.get(ticket_id)).requester == str(world.member.id)

    prompt = await ask()
    erase = next(button["custom_id"] for button in buttons(prompt) if button["label"] == "Erase my data")
    since = await click(desk_harness, erase, prompt)
    assert edited(fake, since) == (messages.forgotten(1), [])

    ticket = await desk.store.get(ticket_id)
    assert (ticket.requester, ticket.note, ticket.query) == (None, None, None)
    assert ticket.state is TicketState.OPEN  # still decided, by nobody's name
    assert (await desk.store.get(theirs)).requester == str(world.maintainer.id)
    stored = database_bytes(desk)
    assert member_id not in stored
    assert b"NOTE-7731" not in stored


async def ask_to_forget(harness: BotHarness) -> JSON:
    """Run /forget-me; return the ephemeral prompt with its two buttons."""
    since = await slash(harness, "forget-me")
    (shown,) = callbacks(harness.fake, since)
    assert shown.json["data"]["content"] == messages.forget_confirm()
    message: JSON = copy.deepcopy(shown.response["resource"]["message"])  # as the person's client shows it
    return message


def erase_button(prompt: JSON) -> str:
    return next(b["custom_id"] for b in buttons(prompt) if b["label"] == messages.ERASE_MY_DATA_LABEL)


async def test_the_forget_me_confirmation_says_it_expired_when_its_time_runs_out(
    desk_harness: BotHarness, desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, world = desk_harness.fake, desk_harness.world
    ticket_id = await file_request(desk_harness, "coffee__mirrored.jpg")
    monkeypatch.setattr("cogs.intake.FORGET_CONFIRM_SECONDS", 0.2)
    since = fake.mark()
    prompt = await ask_to_forget(desk_harness)

    expired = await fake.wait_for("PATCH", r"/webhooks/\d+/[^/]+/messages/@original", since=since)
    assert expired.json["content"] == messages.FORGET_EXPIRED
    assert expired.json["components"] == []
    assert "/forget-me" in messages.FORGET_EXPIRED

    since = await click(desk_harness, erase_button(prompt), prompt)  # a stale client still shows it
    assert edited(fake, since) == (messages.FORGET_EXPIRED, [])
    assert (await desk.store.get(ticket_id)).requester == str(world.member.id)


async def test_the_forget_me_buttons_after_a_restart_say_expired_and_erase_nothing(
    fake: FakeDiscord, world: World, desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_bot(fake, world=world, bot_factory=bot_of(desk)) as first:
        await settle(first)
        ticket_id = await file_request(first, "coffee__mirrored.jpg")
        prompt = await ask_to_forget(first)
        first.assert_no_errors()

    later = time.time() + 3600  # the bot was down for an hour
    monkeypatch.setattr("cogs.intake_views.wall_clock", lambda: later)
    async with running_bot(fake, world=world, bot_factory=bot_of(desk)) as second:
        await settle(second)
        since = await click(second, erase_button(prompt), prompt)
        assert edited(fake, since) == (messages.FORGET_EXPIRED, [])
        cancel = next(b["custom_id"] for b in buttons(prompt) if b["label"] == "Cancel")
        since = await click(second, cancel, prompt)
        assert edited(fake, since) == (messages.FORGET_EXPIRED, [])
        second.assert_no_errors()
    assert (await desk.store.get(ticket_id)).requester == str(world.member.id)


@pytest.mark.parametrize("check_kept", [True, False], ids=["check-still-fresh", "check-lost"])
async def test_a_request_form_submitted_after_a_restart_is_answered(  # noqa: PLR0917
    fake: FakeDiscord,
    world: World,
    desk: Desk,
    hash_executor: ThreadPoolExecutor,
    clock: FakeClock,
    check_kept: bool,
) -> None:
    """The bot restarted while the person typed their note: discord.py no longer knows the form, so
    the submit would fall on the floor ("interaction failed"). It is filed if the check is still
    known, and otherwise answered with what to do and the note to paste again."""
    async with running_bot(fake, world=world, bot_factory=bot_of(desk)) as first:
        await settle(first)
        result = await checked_result(first, "coffee__mirrored.jpg")
        modal = await open_modal(first, result)
        first.assert_no_errors()

    restarted = desk if check_kept else make_desk(desk.settings, desk.store, hash_executor, clock)
    async with running_bot(fake, world=world, bot_factory=bot_of(restarted)) as second:
        await settle(second)
        since = await submit(second, modal, "NOTE-4410 taken at a party")
        second.assert_no_errors()

    (answer,) = callbacks(fake, since)
    assert answer.json == {"type": 5, "data": {"flags": EPHEMERAL}}  # within the 3 s, privately
    content = followup(fake, since).json["content"]
    if check_kept:  # filed as by the form itself
        (ticket,) = await desk.store.list_tickets()
        assert ticket.id in content
        assert ticket.note == "NOTE-4410 taken at a party"
    else:
        assert content == messages.request_form_expired("NOTE-4410 taken at a party")
        assert "> NOTE-4410 taken at a party" in content
        assert await desk.store.list_tickets() == []


# --------------------------------------------------------------------------------------------------
# Hashing in a real process pool
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def process_pool() -> Iterator[ProcessPoolExecutor]:
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


async def test_hashing_runs_in_a_worker_process_and_the_event_loop_keeps_ticking(
    fake: FakeDiscord, world: World, desk: Desk, clock: FakeClock, process_pool: ProcessPoolExecutor
) -> None:
    data = query_bytes("coffee__mirrored.jpg")
    loop = asyncio.get_running_loop()
    # Start the worker (spawn imports the hashing code) before measuring anything.
    await loop.run_in_executor(process_pool, hash_submitted_picture, data, desk.settings)
    started = time.perf_counter()
    hash_submitted_picture(data, desk.settings)  # what the loop would be blocked for without the pool
    hashing_takes = time.perf_counter() - started

    pooled = make_desk(desk.settings, desk.store, process_pool, clock)
    async with running_bot(fake, world=world, bot_factory=bot_of(pooled)) as harness:
        await settle(harness)
        gaps: list[float] = []
        done = asyncio.Event()

        async def ticker() -> None:
            last = loop.time()
            while not done.is_set():
                await asyncio.sleep(0.002)
                now = loop.time()
                gaps.append(now - last)
                last = now

        ticking = asyncio.create_task(ticker())
        await asyncio.sleep(0.01)
        began = loop.time()
        since, _ = await check(harness, data)
        took = loop.time() - began
        done.set()
        await ticking

        assert followup(fake, since).json["content"] == messages.matches_found(1)
        workers = {process.pid for process in process_pool._processes.values()}  # type: ignore[union-attr]
        assert workers
        assert os.getpid() not in workers
        assert took >= hashing_takes * 0.5
        assert len(gaps) >= 10
        assert max(gaps) < max(0.05, hashing_takes / 2), (max(gaps), hashing_takes)

        # A refusal raised in the worker comes back as the same ImageRejectedError, sentence intact.
        for bad, sentence in [
            (truncated_jpeg(), "This picture seems damaged or incomplete"),
            (bomb_png(), "more than can be checked safely"),
        ]:
            since, _ = await check(harness, bad, "image/png")
            content = followup(fake, since).json["content"]
            assert content.startswith("I could not check this file.")
            assert sentence in content
        harness.assert_no_errors()
    assert await pooled.store.list_tickets() == []


async def test_when_discord_refuses_the_delete_the_person_is_still_answered(desk_harness: BotHarness) -> None:
    """A lost Manage Messages permission must not leave the person without an answer (or crash)."""
    fake, world = desk_harness.fake, desk_harness.world
    privacy = world.privacy_channel_id
    refused = fake.fail("DELETE", rf"/channels/{privacy}/messages/\d+", 403, MISSING_PERMISSIONS)
    posted = world.message_create(
        attachments=[picture_in(desk_harness, query_bytes("coffee__mirrored.jpg"), privacy)]
    )
    post_message(desk_harness, posted)
    await settle(desk_harness)

    assert refused.hits == 1
    answer = fake.last("POST", rf"/channels/{world.member.dm_channel_id}/messages")
    assert answer.json["content"].startswith(messages.PICTURE_NOT_DELETED)  # no false "deleted"
    assert [field["name"] for field in answer.json["embeds"][0]["fields"]] == ["coffee.jpg"]


async def test_no_match_says_how_to_reach_a_maintainer_on_this_server(
    fake: FakeDiscord, world: World, desk: Desk
) -> None:
    """With ``[discord] contact`` set, the person is told where to write, not just "write to them"."""
    settings = dataclasses.replace(
        desk.settings, discord=dataclasses.replace(desk.settings.discord, contact="ask in #dataset-help.")
    )
    configured = Desk(settings, desk.index, desk.store, None)
    async with running_bot(fake, world=world, bot_factory=bot_of(configured)) as harness:
        await settle(harness)
        since, _ = await check(harness, query_bytes("unrelated_gravel.jpg"))
        content = followup(fake, since).json["content"]
        harness.assert_no_errors()
    assert content.endswith("a maintainer can still look into it; ask in #dataset-help.")
