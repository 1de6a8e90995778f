"""``removal-desk doctor``'s Discord side (:mod:`cogs.doctor_checks`) against the fake Discord: one
test per kind of finding, the permission resolution against the fake's own, and the command line
end to end (exit 0 for a ready desk)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import socket
from pathlib import Path
from typing import Any

import discord.http

from bot.cli import main
from bot.config import Settings
from bot.doctor import Finding, Status
from cogs.doctor_checks import CHANNEL_NEEDS, INVITE_PERMISSIONS, channel_permissions, check_discord
from tests.discord.fake_discord import (
    BOT_PERMISSIONS,
    PIN_MESSAGES,
    VIEW_CHANNEL,
    FakeDiscord,
    RecordedRequest,
    World,
    overwrite_payload,
)

UNKNOWN_GUILD = {"code": 10004, "message": "Unknown Guild"}
MESSAGE_CONTENT_LIMITED = 1 << 19


def seed(fake: FakeDiscord, world: World, *, message_content: bool = True) -> None:
    """What Discord knows of the world, plus the guild and application routes doctor reads."""
    for person in world.people:
        fake.add_user(person.user_payload())
    for channel in world.channel_payloads():
        fake.add_channel(channel)
    for member in world.member_payloads():
        fake.add_member(world.guild_id, member)
    guild = world.guild_payload()

    def get_guild(_request: RecordedRequest, match: re.Match[str]) -> tuple[int, Any]:
        return (200, guild) if int(match["guild"]) == world.guild_id else (404, UNKNOWN_GUILD)

    fake.route("GET", r"/guilds/(?P<guild>\d+)", get_guild)
    flags = MESSAGE_CONTENT_LIMITED if message_content else 0
    application = {"id": str(world.application_id), "name": "Removal Desk", "flags": flags}
    fake.route("GET", r"/(?:oauth2/)?applications/@me", (200, application))


def desk_settings(
    settings: Settings, world: World, fake: FakeDiscord, tmp_path: Path, **discord: Any
) -> Settings:
    """The world's settings pointed at ``fake``, with ``discord`` overriding more of [discord]."""
    pointed = world.bot_settings(settings, tmp_path / "index", tmp_path / "tickets.sqlite3")
    changed = dataclasses.replace(pointed.discord, **{"api_base_url": fake.api_base, **discord})
    return dataclasses.replace(pointed, discord=changed)


def by_check(findings: list[Finding]) -> dict[str, Finding]:
    return {finding.check: finding for finding in findings}


def problems(findings: list[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings if f.status is Status.PROBLEM}


def test_the_needs_of_every_channel_are_what_the_invite_grants():
    needed = 0
    for permissions in CHANNEL_NEEDS.values():
        needed |= permissions.value
    assert needed & ~INVITE_PERMISSIONS == 0
    assert CHANNEL_NEEDS["privacy"].value & PIN_MESSAGES
    assert INVITE_PERMISSIONS == BOT_PERMISSIONS  # the README's link, as the fake models it


def test_permissions_resolve_as_discord_resolves_them(world: World):
    """The fake's own resolution (roles, @everyone and role overwrites) for every person and channel,
    then a member overwrite, Administrator and the owner, which the cast does not have."""
    guild = world.guild_payload()
    for person in (world.bot, world.maintainer, world.member):
        member = {"user": person.user_payload(), "roles": [str(r) for r in person.role_ids]}
        for channel in world.channel_payloads():
            assert channel_permissions(guild, member, channel) == world.permissions_in(
                person, int(channel["id"])
            ), (person.name, channel["name"])
    bot = {"user": world.bot.user_payload(), "roles": [str(world.bot_role_id)]}
    review = world.channel_payload(world.review_channel_id)
    denied = {**review, "permission_overwrites": [*review["permission_overwrites"]]}
    denied["permission_overwrites"].append(overwrite_payload(world.bot.id, deny=VIEW_CHANNEL, member=True))
    assert channel_permissions(guild, bot, denied) == 0
    no_send = {**review, "permission_overwrites": [overwrite_payload(world.bot_role_id, deny=1 << 11)]}
    assert not channel_permissions(guild, bot, no_send) & discord.Permissions(embed_links=True).value
    administrator = {**guild, "roles": [*guild["roles"]]}
    administrator["roles"][2] = {**guild["roles"][2], "permissions": str(1 << 3)}
    assert channel_permissions(administrator, bot, denied) == discord.Permissions.all().value
    assert channel_permissions({**guild, "owner_id": str(world.bot.id)}, bot, denied) == (
        discord.Permissions.all().value
    )


async def test_a_ready_world_has_no_problem(settings, world, fake, tmp_path):
    seed(fake, world)
    before = discord.http.Route.BASE

    findings = await check_discord(desk_settings(settings, world, fake, tmp_path))

    assert problems(findings) == {}
    assert {f.check for f in findings} >= {
        "discord.login",
        "discord.guild",
        "discord.role",
        "discord.permissions.privacy",
        "discord.permissions.review",
        "discord.permissions.log",
    }
    assert before == discord.http.Route.BASE  # pointed at the settings' API only while checking
    assert not [r for r in fake.requests if r.method != "GET"]  # read-only


async def test_a_guild_the_bot_is_not_in_is_a_problem(settings, world, fake, tmp_path):
    seed(fake, world)

    findings = await check_discord(desk_settings(settings, world, fake, tmp_path, guild_ids=(42,)))

    assert "guild 42 does not exist or the bot is not in it" in problems(findings)["discord.guild"].message
    assert "discord.guild_ids" in (problems(findings)["discord.guild"].fix or "")
    # the review channel's guild is still checked, and said to be missing from guild_ids
    warning = [f for f in findings if f.check == "discord.guild" and f.status is Status.WARNING]
    assert [f.fix for f in warning] == [f"add {world.guild_id} to discord.guild_ids"]
    assert by_check(findings)["discord.role"].status is Status.OK


async def test_a_missing_channel_is_a_problem_naming_its_setting(settings, world, fake, tmp_path):
    seed(fake, world)

    findings = await check_discord(desk_settings(settings, world, fake, tmp_path, log_channel_id=4242))

    missing = problems(findings)
    assert set(missing) == {"discord.channel.log"}
    assert "the log channel 4242 does not exist" in missing["discord.channel.log"].message
    assert "discord.log_channel_id" in (missing["discord.channel.log"].fix or "")


async def test_a_missing_maintainer_role_is_a_problem(settings, world, fake, tmp_path):
    seed(fake, world)

    findings = await check_discord(desk_settings(settings, world, fake, tmp_path, maintainer_role_id=777))

    assert set(problems(findings)) == {"discord.role"}
    assert "maintainer role 777 does not exist" in problems(findings)["discord.role"].message
    assert "discord.maintainer_role_id" in (problems(findings)["discord.role"].fix or "")


async def test_without_pin_messages_the_privacy_channel_is_a_problem_naming_it(
    settings, world, fake, tmp_path
):
    old_invite = dataclasses.replace(world, bot_permissions=BOT_PERMISSIONS & ~PIN_MESSAGES)
    seed(fake, old_invite)

    findings = await check_discord(desk_settings(settings, old_invite, fake, tmp_path))

    assert set(problems(findings)) == {"discord.permissions.privacy"}
    finding = problems(findings)["discord.permissions.privacy"]
    assert "lacks Pin Messages in #privacy" in finding.message
    assert str(INVITE_PERMISSIONS) in (finding.fix or "")
    assert by_check(findings)["discord.permissions.review"].status is Status.OK


async def test_a_channel_overwrite_that_hides_a_channel_from_the_bot_is_a_problem(
    settings, world, fake, tmp_path
):
    seed(fake, world)
    log = fake.channels[world.log_channel_id]
    log["permission_overwrites"] = [
        *log["permission_overwrites"],
        overwrite_payload(world.bot.id, deny=VIEW_CHANNEL, member=True),
    ]

    findings = await check_discord(desk_settings(settings, world, fake, tmp_path))

    assert set(problems(findings)) == {"discord.permissions.log"}
    assert "View Channel, Send Messages, Embed Links" in problems(findings)["discord.permissions.log"].message


async def test_a_refused_token_is_a_problem(settings, world, fake, tmp_path):
    seed(fake, world)
    fake.route("GET", r"/users/@me", (401, {"code": 0, "message": "401: Unauthorized"}))

    findings = await check_discord(desk_settings(settings, world, fake, tmp_path))

    assert [(f.check, f.status) for f in findings] == [("discord.login", Status.PROBLEM)]
    assert "DISCORD_TOKEN" in (findings[0].fix or "")


async def test_the_message_content_intent_off_with_a_privacy_channel_is_a_problem(
    settings, world, fake, tmp_path
):
    seed(fake, world, message_content=False)

    with_privacy = await check_discord(desk_settings(settings, world, fake, tmp_path))
    without = await check_discord(desk_settings(settings, world, fake, tmp_path, privacy_channel_id=0))

    assert set(problems(with_privacy)) == {"discord.intents"}
    assert "Message Content" in (problems(with_privacy)["discord.intents"].fix or "")
    assert problems(without) == {}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_unreachable_discord_is_a_problem_saying_nothing_was_checked(settings, world, fake, tmp_path):
    seed(fake, world)
    unreachable = f"http://127.0.0.1:{_closed_port()}/api/v10"
    ready = desk_settings(settings, world, fake, tmp_path)
    findings = await check_discord(
        dataclasses.replace(ready, discord=dataclasses.replace(ready.discord, api_base_url=unreachable))
    )
    slow = await check_discord(ready, timeout=0.001)

    assert [(f.check, f.status) for f in findings] == [("discord", Status.PROBLEM)]
    assert "could not be reached" in findings[0].message
    assert "not checked" in findings[0].message
    assert "--offline" in (findings[0].fix or "")
    assert "no answer in time" in slow[0].message


def _config(path: Path, settings: Settings) -> Path:
    """``settings``' [discord] and [tickets] as a TOML file (the token stays in the environment)."""
    discord_settings = settings.discord
    keys = ("guild_ids", "privacy_channel_id", "review_channel_id", "log_channel_id", "maintainer_role_id")
    lines = ["[discord]", *(f"{key} = {json.dumps(getattr(discord_settings, key))}" for key in keys)]
    lines += [
        f"index = {json.dumps(discord_settings.index)}",
        f'api_base_url = "{discord_settings.api_base_url}"',
    ]
    lines += ["[tickets]", f"database = {json.dumps(settings.tickets.database)}"]
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_the_command_exits_0_for_a_ready_desk_and_1_when_discord_says_otherwise(  # noqa: PLR0917
    settings, world, fake, tmp_path, sample_index, monkeypatch, capsys
):
    """The whole command in a thread (it runs its own event loop), the fake served on this one."""
    seed(fake, world)
    token = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.Zx9y8w.doctor-end-to-end-secret"
    monkeypatch.setenv("DISCORD_TOKEN", token)
    monkeypatch.chdir(tmp_path)
    ready = world.bot_settings(
        settings, sample_index, tmp_path / "tickets.sqlite3", api_base_url=fake.api_base
    )
    config = _config(tmp_path / "desk.toml", ready)

    code = await asyncio.to_thread(main, ["--config", str(config), "doctor", "--json"])
    document = json.loads(capsys.readouterr().out)
    role_gone = _config(
        tmp_path / "other.toml",
        dataclasses.replace(ready, discord=dataclasses.replace(ready.discord, maintainer_role_id=777)),
    )
    not_ready = await asyncio.to_thread(main, ["--config", str(role_gone), "doctor"])
    text = capsys.readouterr().out

    assert code == 0, document
    assert document["ready"] is True
    assert {f["check"] for f in document["findings"]} >= {"index", "database", "discord.permissions.privacy"}
    assert not_ready == 1
    assert "FAIL  discord.role: the maintainer role 777 does not exist" in text
    assert "Zx9y8w" not in json.dumps(document) + text
