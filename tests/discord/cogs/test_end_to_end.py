"""One request from start to finish on the fake Discord, through the real bot and its real cogs.

A member checks a picture with /check, asks for its removal in the modal, and gets a ticket id; the
ticket's card appears in the review channel; a maintainer claims it and approves it with a reason; the
member gets a direct message with the decision; /removals export lists the entry under the ticket; and
checking the same picture again finds nothing, because the index honours approved removals. Every step
is asserted on the HTTP requests the bot made.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from bot import messages
from bot.desk import Desk
from bot.tickets.lifecycle import TicketState
from tests.discord.cogs.conftest import bookkeeping, query_bytes, settle
from tests.discord.fake_discord import EPHEMERAL, BotHarness, RecordedRequest

CALLBACK = r"/interactions/{id}/[^/]+/callback"
FOLLOWUP = r"/webhooks/\d+/[^/]+"
MODAL, DEFERRED, DEFERRED_UPDATE_MESSAGE = 9, 5, 6


async def send(harness: BotHarness, payload: dict[str, Any]) -> tuple[RecordedRequest, list[RecordedRequest]]:
    """Deliver an interaction; return its callback and the follow-ups sent for it."""
    mark = harness.fake.mark()
    harness.dispatch_interaction(payload)
    await settle(harness)
    callback = harness.fake.last("POST", CALLBACK.format(id=payload["id"]))
    token = payload["token"]
    followups = [r for r in harness.fake.find("POST", FOLLOWUP, since=mark) if r.path.endswith(token)]
    return callback, followups


def card_edit(harness: BotHarness, payload: dict[str, Any]) -> dict[str, Any]:
    """The edit of the pressed card that completes a deferred button press."""
    edits = harness.fake.find("PATCH", rf"/webhooks/\d+/{payload['token']}/messages/@original")
    return edits[-1].json


async def ask_for_removal(harness: BotHarness, picture: bytes, note: str) -> str:
    """Steps 1-3: /check, Request removal, the note; return the ticket id the member was given."""
    fake, world, member = harness.fake, harness.world, harness.world.member
    # 1. /check: an ephemeral answer listing the match, with a Request removal button.
    image = fake.add_attachment(picture, "IMG_2041.jpg", "image/jpeg")
    callback, [answer] = await send(harness, world.command_interaction("check", options={"image": image}))
    assert callback.json["type"] == DEFERRED
    assert callback.json["data"]["flags"] & EPHEMERAL
    assert "coffee.jpg" in str(answer.json["embeds"])
    [[request_button]] = [row["components"] for row in answer.json["components"]]
    assert request_button["label"] == "Request removal"
    assert request_button["custom_id"].startswith("rd:request:")
    assert answer.response["flags"] & EPHEMERAL  # only the member sees it
    answer_message = fake.find_message(int(answer.response["id"]))
    assert answer_message is not None

    # 2. Request removal: a modal asking for an optional note.
    modal, _ = await send(
        harness,
        world.component_interaction(request_button["custom_id"], message=answer_message, invoker=member),
    )
    assert modal.json["type"] == MODAL
    [[note_input]] = [row["components"] for row in modal.json["data"]["components"]]
    assert note_input["required"] is False

    # 3. The note submitted: the member is given the ticket id, privately.
    submitted, [receipt] = await send(
        harness,
        world.modal_submit_from_callback(modal, {note_input["custom_id"]: note}, invoker=member),
    )
    assert submitted.json["type"] == DEFERRED
    assert submitted.json["data"]["flags"] & EPHEMERAL
    found = re.search(r"\*\*([0-9A-Z]{6})\*\*", receipt.json["content"])
    assert found, receipt.json["content"]
    return found.group(1)


async def claim_and_approve(harness: BotHarness, card: dict[str, Any], ticket_id: str, reason: str) -> None:
    """Steps 5-6: the maintainer claims the card, then approves it with ``reason`` in the modal."""
    world, maintainer = harness.world, harness.world.maintainer
    claimed_payload = world.component_interaction(
        f"rd:ticket:claim:{ticket_id}", message=card, invoker=maintainer
    )
    claimed, _ = await send(harness, claimed_payload)
    # 5. A maintainer claims it: answered at once (deferred), then the card is updated in place.
    assert claimed.json["type"] == DEFERRED_UPDATE_MESSAGE
    assert (
        card_edit(harness, claimed_payload)["embeds"][0]["title"] == f"Removal request {ticket_id}: claimed"
    )

    # 6. ... and approves it with a reason given in a modal.
    reason_modal, _ = await send(
        harness,
        world.component_interaction(f"rd:ticket:approve:{ticket_id}", message=card, invoker=maintainer),
    )
    assert reason_modal.json["type"] == MODAL
    [[reason_input]] = [row["components"] for row in reason_modal.json["data"]["components"]]
    submit = world.modal_submit_from_callback(
        reason_modal,
        {reason_input["custom_id"]: reason},
        invoker=maintainer,
        channel_id=world.review_channel_id,
    )
    submit["message"] = dict(card)  # Discord sends the button's message with the modal's submit
    approved, _ = await send(harness, submit)
    assert approved.json["type"] == DEFERRED_UPDATE_MESSAGE
    assert card_edit(harness, submit)["embeds"][0]["title"] == f"Removal request {ticket_id}: approved"


async def test_a_removal_request_from_check_to_removal_list(desk_harness: BotHarness, desk: Desk) -> None:
    fake, world = desk_harness.fake, desk_harness.world
    member, maintainer = world.member, world.maintainer
    picture = query_bytes("coffee__mirrored.jpg")  # a mirrored copy of the dataset's coffee.jpg

    # 1-3. /check -> Request removal -> note -> a ticket id, all private to the member.
    mark = fake.mark()
    ticket_id = await ask_for_removal(desk_harness, picture, "This is me, taken at a clinic.")
    ticket = await desk.store.get(ticket_id)
    assert (ticket.state, ticket.requester, ticket.source) == (TicketState.OPEN, str(member.id), "discord")

    # 4. The review card: the dataset entry, the note, the buttons; nothing that identifies the member.
    [card_post] = fake.find("POST", rf"/channels/{world.review_channel_id}/messages", since=mark)
    [embed] = card_post.json["embeds"]
    assert embed["title"] == f"Removal request {ticket_id}: open"
    assert "coffee.jpg" in [field["name"] for field in embed["fields"]]
    assert "This is me, taken at a clinic." in str(embed)
    assert str(member.id) not in str(card_post.json)
    assert not card_post.files
    assert [b["custom_id"] for row in card_post.json["components"] for b in row["components"]] == [
        f"rd:ticket:{action}:{ticket_id}" for action in ("claim", "approve", "reject")
    ]
    card_id = int(card_post.response["id"])
    assert await bookkeeping(desk).review_card(ticket_id) == (world.review_channel_id, card_id)
    card = fake.find_message(card_id)
    assert card is not None

    # 5-6. A maintainer claims it (the card is updated in place), then approves it with a reason.
    mark = fake.mark()
    await claim_and_approve(desk_harness, card, ticket_id, "A private medical photo; removed.")
    assert (await desk.store.get(ticket_id)).state is TicketState.APPROVED

    # 7. The member is told, by direct message, with the maintainer's reason.
    [decision] = fake.find("POST", rf"/channels/{member.dm_channel_id}/messages", since=mark)
    assert ticket_id in decision.json["content"]
    assert "approved" in decision.json["content"]
    assert "A private medical photo; removed." in decision.json["content"]
    log_lines = [r.json["content"] for r in fake.find("POST", rf"/channels/{world.log_channel_id}/messages")]
    assert any(f"`{ticket_id}`" in line and "approve claimed → approved" in line for line in log_lines)

    # 8. /removals export: the removal list names coffee.jpg under this ticket.
    exported, [files] = await send(
        desk_harness,
        world.command_interaction("removals export", invoker=maintainer, channel_id=world.review_channel_id),
    )
    assert exported.json["type"] == DEFERRED
    by_name = {f.filename: f.data.decode() for f in files.files}
    assert len(by_name) == 2
    [removal_list] = [text for name, text in by_name.items() if ".blocklist." not in name]
    rows = list(csv.DictReader(io.StringIO(removal_list)))
    assert [(row["key"], row["ticket_id"]) for row in rows] == [("coffee.jpg", ticket_id)]

    # 9. The same picture checked again: no match to request any more, and the person is told the
    # copy was removed (not that there was "no copy").
    image = fake.add_attachment(picture, "IMG_2041.jpg", "image/jpeg")
    _, [again] = await send(desk_harness, world.command_interaction("check", options={"image": image}))
    assert again.json["content"] == messages.no_match(len(desk.index), removed=1)
    assert "already removed" in again.json["content"]
    assert "no copy" not in again.json["content"]
    assert not again.json.get("embeds")
    assert not again.json.get("components")
