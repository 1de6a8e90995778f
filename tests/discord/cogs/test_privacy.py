"""Privacy proofs: after a person's whole path through the bot, nothing of their picture is anywhere.

The flow is the end-to-end test's, through the real cogs on the fake Discord: a picture posted in
the privacy channel (deleted, answered by DM), then ``/check`` → Request removal with a note →
ticket → card → Claim → Approve → decision DM, then ``/forget-me``. Every file the bot could have
written is then read as bytes: the ticket database with its WAL and SHM, the index folder, the log
(every logger at DEBUG, written to a file), the temporary directory (pointed at a fresh folder for
the test) and the working directory. None may hold the picture's bytes (whole, or a slice of
them), its file name or its attachment URL; the note may be in the database until the person
erases their data, and nowhere after; after the erasure, neither is the person's id.

And the logs never put the person's id on the same line as a hash of their picture or an entry
it matched: one would tell who asked to remove what.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot import messages
from bot.desk import Desk
from cogs.host import PAYLOAD_LOGGERS
from tests.discord.cogs.conftest import query_bytes, settle
from tests.discord.cogs.test_end_to_end import ask_for_removal, claim_and_approve, send
from tests.discord.fake_discord import BotHarness

NOTE = "Taken at the Hollowbrook clinic in 2019, please remove (note-5f3a9c)"
POSTED_NAME = "DSC_8841_private.jpg"  # the picture posted in the privacy channel
CHECKED_NAME = "IMG_2041.jpg"  # the name test_end_to_end's /check gives its attachment
# The fake Discord is an aiohttp server in the test's process: its access log is Discord's, not the bot's.
FAKE_DISCORDS_LOGGERS = ("aiohttp.access", "aiohttp.server", "aiohttp.web")


@pytest.fixture
def written_places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    """Where the bot could write: tmp_path (the database lives there), a fresh temporary directory
    and working directory, and a log file every logger writes to at DEBUG."""
    temp, cwd, logs = tmp_path / "temp", tmp_path / "cwd", tmp_path / "logs"
    for folder in (temp, cwd, logs):
        folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.chdir(cwd)
    handler = logging.FileHandler(logs / "bot.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    handler.addFilter(lambda record: not record.name.startswith(FAKE_DISCORDS_LOGGERS))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield [tmp_path]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


def files_under(places: list[Path]) -> list[Path]:
    return sorted(path for place in places for path in place.rglob("*") if path.is_file())


def where(needle: bytes, places: list[Path]) -> list[str]:
    """The files holding ``needle``, as text, case-insensitively for what is text."""
    found = []
    for path in files_under(places):
        data = path.read_bytes()
        if needle in data or (needle.isascii() and needle.lower() in data.lower()):
            found.append(str(path))
    return found


def leaks(needles: dict[str, bytes], places: list[Path]) -> dict[str, list[str]]:
    """What was found where: {what: [files]} for every needle found in some file."""
    return {name: found for name, needle in needles.items() if (found := where(needle, places))}


def slices(picture: bytes) -> list[bytes]:
    """Distinctive 32-byte runs of the picture's compressed data (past its headers)."""
    return [picture[at : at + 32] for at in (len(picture) // 4, len(picture) // 2, 3 * len(picture) // 4)]


async def post_in_privacy_channel(harness: BotHarness, picture: bytes) -> dict[str, Any]:
    attachment = harness.fake.add_attachment(picture, POSTED_NAME, "image/jpeg")
    mark = harness.fake.mark()
    harness.dispatch_message(harness.world.message_create(attachments=[attachment]))
    await settle(harness)
    assert harness.fake.find("DELETE", r"/channels/\d+/messages/\d+", since=mark), "the post was not deleted"
    member = harness.world.member
    assert harness.fake.find("POST", rf"/channels/{member.dm_channel_id}/messages", since=mark)
    return attachment


async def forget_me(harness: BotHarness) -> None:
    payload = harness.world.command_interaction("forget-me")
    shown, _ = await send(harness, payload)
    prompt = shown.response["resource"]["message"]
    [erase] = [
        button["custom_id"]
        for row in prompt["components"]
        for button in row["components"]
        if button.get("label") == messages.ERASE_MY_DATA_LABEL
    ]
    await send(harness, harness.world.component_interaction(erase, message=prompt))


async def test_nothing_of_the_picture_is_written_and_erasure_leaves_no_trace(
    written_places: list[Path], desk_harness: BotHarness, desk: Desk, sample_index: Path
) -> None:
    fake, world = desk_harness.fake, desk_harness.world
    places = [*written_places, sample_index]
    posted, checked = query_bytes("astronaut__cropped.jpg"), query_bytes("coffee__mirrored.jpg")

    # The whole path: a post in the privacy channel, then /check -> request -> card -> decision.
    posted_url = (await post_in_privacy_channel(desk_harness, posted))["url"]
    mark = fake.mark()
    ticket_id = await ask_for_removal(desk_harness, checked, NOTE)
    [download] = fake.find("GET", r"/attachments/.*", since=mark)
    checked_url = f"{fake.base_url}{download.path}"
    [card_post] = fake.find("POST", rf"/channels/{world.review_channel_id}/messages", since=mark)
    card = fake.find_message(int(card_post.response["id"]))
    assert card is not None
    await claim_and_approve(desk_harness, card, ticket_id, "A private medical photo; removed.")
    ticket = await desk.store.get(ticket_id)
    assert ticket.query is not None
    await desk.store.database.checkpoint()  # fold the WAL: what it held is in the main file now

    never: dict[str, bytes] = {
        "the posted picture": posted,
        "the checked picture": checked,
        **{f"slice {n} of the posted picture": part for n, part in enumerate(slices(posted))},
        **{f"slice {n} of the checked picture": part for n, part in enumerate(slices(checked))},
        "the posted file name": POSTED_NAME.encode(),
        "the checked file name": CHECKED_NAME.encode(),
        "the posted attachment URL": posted_url.encode(),
        "the checked attachment URL": checked_url.encode(),
        "the checked attachment's path": download.path.encode(),
    }
    assert leaks(never, places) == {}
    # The scan sees what is there: the note is in the database (and only there) until erased.
    assert where(NOTE.encode(), places) == [str(Path(desk.settings.tickets.database_path))]

    await forget_me(desk_harness)

    assert (await desk.store.get(ticket_id)).requester is None
    gone = {**never, "the note": NOTE.encode(), "the person's id": str(world.member.id).encode()}
    assert leaks(gone, places) == {}
    assert files_under([written_places[0] / "temp", written_places[0] / "cwd"]) == []

    # The logs: never the person's id beside a hash of their picture or an entry it matched.
    lines = (written_places[0] / "logs" / "bot.log").read_text(encoding="utf-8").splitlines()
    assert len(lines) > 10, "the log captured nothing: is the handler attached?"
    person = str(world.member.id)
    linking = [*ticket.query.phash, *ticket.query.pdq]
    linking += [
        value for entry in ticket.entries for value in (entry.key, entry.entry_id, entry.url) if value
    ]
    together = [line for line in lines if person in line and any(value in line for value in linking)]
    assert together == []
    # What kept them out: the loggers that write payloads at DEBUG stay at INFO under a DEBUG root
    # (discord.gateway too, which this fake, having no gateway, never feeds).
    for name in (*PAYLOAD_LOGGERS, "aiosqlite"):
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name
