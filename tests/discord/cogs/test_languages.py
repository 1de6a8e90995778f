"""Languages on Discord: a requester is answered in their own language (an interaction's ``locale``),
or for what is not an interaction (a picture posted in the privacy channel) in the server's
(``preferred_locale``); the slash commands carry German names and descriptions when synced.

Driven through the real ``RemovalDeskBot`` on the fake Discord, as in ``test_intake.py``.
"""

from __future__ import annotations

import dataclasses

import discord
import pytest
from discord import app_commands

from bot import i18n, messages
from bot.checking import check_picture
from bot.desk import Desk
from bot.tickets.intake import file_removal_request
from cogs.locales import Translator
from tests.discord.cogs.conftest import query_bytes, settle
from tests.discord.fake_discord import JSON, BotHarness, World

FOLLOWUP = r"/webhooks/\d+/[^/]+"


async def check_in(harness: BotHarness, locale: str, data: bytes) -> JSON:
    """``/check`` with ``data`` from a client in ``locale``; the followup that answered it."""
    attachment = harness.fake.add_attachment(data, "holiday.jpg", "image/jpeg")
    since = harness.fake.mark()
    speaker = dataclasses.replace(harness.world, locale=locale)
    harness.dispatch_interaction(speaker.command_interaction("check", options={"image": attachment}))
    await settle(harness)
    (answer,) = harness.fake.find("POST", FOLLOWUP, since=since)
    return answer.json


def button_labels(message: JSON) -> list[str]:
    return [item["label"] for row in message.get("components") or [] for item in row["components"]]


@pytest.mark.parametrize(("locale", "language"), [("de", "de"), ("en-US", "en"), ("pt-BR", "en")])
async def test_check_is_answered_in_the_language_of_the_persons_discord(
    desk_harness: BotHarness, locale: str, language: str
) -> None:
    found = await check_in(desk_harness, locale, query_bytes("coffee__mirrored.jpg"))
    assert found["content"] == messages.matches_found(1, locale=language)
    assert button_labels(found) == [i18n.text("label.request_removal", language)]
    (embed,) = found["embeds"]
    closeness = embed["fields"][0]["value"].splitlines()[0]
    assert closeness in {i18n.text(f"closeness.{kind}", language) for kind in ("same", "very_close", "close")}

    nothing = await check_in(desk_harness, locale, query_bytes("unrelated_gravel.jpg"))
    contact = desk_harness.bot.settings.discord.contact
    assert nothing["content"] == messages.no_match(3, contact, locale=language)
    if language == "de":
        assert "Ich habe es mit allen 3 Bildern im Datensatz verglichen" in nothing["content"]


async def test_a_refused_picture_is_explained_in_the_persons_language(desk_harness: BotHarness) -> None:
    answer = await check_in(desk_harness, "de", b"\x89PNG\r\n\x1a\n not really")
    assert answer["content"] == messages.refused_picture(
        i18n.text("decoding.not_an_image", "de"), locale="de"
    )
    assert "Es wurde nichts gespeichert." in answer["content"]


async def test_the_request_form_comes_in_the_language_of_who_pressed_the_button(
    desk_harness: BotHarness,
) -> None:
    await check_in(desk_harness, "de", query_bytes("coffee__mirrored.jpg"))
    answer = desk_harness.fake.find("POST", FOLLOWUP)[-1].response  # the message as Discord keeps it
    (button,) = [item for row in answer["components"] for item in row["components"]]
    since = desk_harness.fake.mark()
    german = dataclasses.replace(desk_harness.world, locale="de")
    desk_harness.dispatch_interaction(german.component_interaction(button["custom_id"], message=answer))
    await settle(desk_harness)
    (shown,) = desk_harness.fake.find("POST", r"/interactions/\d+/[^/]+/callback", since=since)
    assert shown.json["type"] == 9, shown.json
    modal = shown.json["data"]
    assert modal["title"] == "Entfernung beantragen"
    assert i18n.text("label.note", "de") in str(modal["components"])


@pytest.fixture
def world() -> World:
    """A German server: its ``preferred_locale`` is what a message (not an interaction) is answered in."""
    return World(preferred_locale="de")


async def test_a_picture_posted_in_a_german_server_is_answered_by_dm_in_german(
    desk_harness: BotHarness,
) -> None:
    fake, world = desk_harness.fake, desk_harness.world
    attachment = fake.add_attachment(
        query_bytes("coffee__mirrored.jpg"), "holiday.jpg", "image/jpeg", channel_id=world.privacy_channel_id
    )
    since = fake.mark()
    desk_harness.dispatch_message(world.message_create("bin ich das?", attachments=[attachment]))
    await settle(desk_harness)
    (answer,) = fake.find("POST", rf"/channels/{world.member.dm_channel_id}/messages", since=since)
    assert answer.json["content"] == (
        f"{i18n.text('picture.deleted', 'de')}\n{messages.matches_found(1, locale='de')}"
    )
    assert button_labels(answer.json) == ["Entfernung beantragen"]
    # The panel pinned in the channel at start-up speaks the server's language too.
    (panel,) = fake.channel_messages(world.privacy_channel_id)
    assert panel["content"] == i18n.text("panel", "de")
    assert button_labels(panel) == ["Privat prüfen"]


async def test_a_picture_sent_by_dm_is_answered_in_the_language_of_the_bots_server(
    desk_harness: BotHarness,
) -> None:
    """A DM has no server of its own: the configured server's language, not the person's (unknown)."""
    fake, world = desk_harness.fake, desk_harness.world
    dm = world.member.dm_channel_id
    attachment = fake.add_attachment(
        query_bytes("unrelated_gravel.jpg"), "x.jpg", "image/jpeg", channel_id=dm
    )
    since = fake.mark()
    desk_harness.dispatch_message(world.message_create(attachments=[attachment], dm=True))
    await settle(desk_harness)
    (answer,) = fake.find("POST", rf"/channels/{dm}/messages", since=since)
    contact = desk_harness.bot.settings.discord.contact
    assert answer.json["content"] == messages.no_match(3, contact, locale="de")


async def test_the_synced_commands_carry_german_names_and_descriptions(desk_harness: BotHarness) -> None:
    world = desk_harness.world
    synced = {command["name"]: command for command in desk_harness.fake.commands[world.guild_id]}
    check = synced["check"]
    assert check["name_localizations"] == {"de": "prüfen"}
    assert check["description_localizations"] == {"de": i18n.text("command.check.description", "de")}
    (image,) = check["options"]
    assert image["name"] == "image"
    assert image["name_localizations"] == {"de": "bild"}
    for english, german in [
        ("mytickets", "meine-anfragen"),
        ("withdraw", "zurückziehen"),
        ("forget-me", "vergiss-mich"),
    ]:
        assert synced[english]["name_localizations"] == {"de": german}


async def test_the_translator_gives_german_for_german_and_nothing_for_english() -> None:
    translator = Translator()
    name = app_commands.locale_str("check", key="command.check")
    context = app_commands.TranslationContext(app_commands.TranslationContextLocation.command_name, None)
    assert await translator.translate(name, discord.Locale.german, context) == "prüfen"
    assert await translator.translate(name, discord.Locale.american_english, context) is None
    assert await translator.translate(name, discord.Locale.japanese, context) is None  # Discord shows English
    untagged = app_commands.locale_str("check")
    assert await translator.translate(untagged, discord.Locale.german, context) is None


async def test_a_decision_is_told_by_dm_in_the_servers_language(desk_harness: BotHarness, desk: Desk) -> None:
    """The relay's DM answers no interaction: the server's language, nothing kept about the requester's."""
    fake, member = desk_harness.fake, desk_harness.world.member
    result = check_picture(query_bytes("coffee__mirrored.jpg"), desk.index, desk.settings)
    ticket = await file_removal_request(desk.store, desk.index, result, str(member.id))
    await desk.store.reject(ticket.id, "maintainer-1", "Das ist nicht dein Bild.")
    since = fake.mark()
    await desk_harness.bot.relay.run_once()
    (dm,) = fake.find("POST", rf"/channels/{member.dm_channel_id}/messages", since=since)
    decided = await desk.store.get(ticket.id)
    assert dm.json["content"] == messages.decision(decided, desk.settings.discord.contact, locale="de")
    assert dm.json["content"].startswith(f"Zu deiner Anfrage **{ticket.id}**: Das Team hat entschieden")
