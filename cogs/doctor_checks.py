"""The Discord side of ``removal-desk doctor``: does the token log in, do the guild, channels and
maintainer role exist, and may the bot do in each channel what the desk does there.

REST only: ``HTTPClient.static_login`` and a handful of GETs, no gateway, so doctor runs beside a
running bot without taking its session. Read-only, like the rest of doctor.

The bot's permissions in a channel are resolved as Discord does (the guild owner and Administrator
have everything; then the @everyone role, the member's roles, the channel's @everyone overwrite,
its role overwrites together, the member's own overwrite; nothing without View Channel; no
embeds or files without Send Messages) from the REST payloads, since a ``discord.Guild`` needs the
gateway's cache. Unreachable Discord is a problem, not a pass: run ``doctor --offline`` to skip
these checks on purpose.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

import aiohttp
import discord
import discord.http

from bot.config import Settings
from bot.doctor import Finding, Status
from cogs.host import point_at

# What the bot does in each channel, and so what it needs there.
CHANNEL_NEEDS: Mapping[str, discord.Permissions] = {
    # Post the panel, read the backlog at start, delete every picture posted, pin the panel (since
    # 2026-02-23 pinning needs Pin Messages, 1 << 51; Manage Messages no longer allows it).
    "privacy": discord.Permissions(
        view_channel=True,
        send_messages=True,
        embed_links=True,
        read_message_history=True,
        manage_messages=True,
        pin_messages=True,
    ),
    # Post a card per ticket and keep it up to date.
    "review": discord.Permissions(
        view_channel=True, send_messages=True, embed_links=True, read_message_history=True
    ),
    # Post every audit event.
    "log": discord.Permissions(view_channel=True, send_messages=True, embed_links=True),
}
# The README's invite link grants all of it (and Attach Files): 125952 | 1 << 51.
INVITE_PERMISSIONS = 2251799813811200
# Application flags: the Message Content intent, on (verified bots) or on (under 100 guilds).
MESSAGE_CONTENT_FLAGS = (1 << 18) | (1 << 19)

_ALL = discord.Permissions.all().value
_ADMINISTRATOR = discord.Permissions(administrator=True).value
_VIEW = discord.Permissions(view_channel=True).value
_SEND = discord.Permissions(send_messages=True).value
# What Discord withholds in a text channel where the member may not send messages.
_NEEDS_SEND = discord.Permissions(
    embed_links=True, attach_files=True, mention_everyone=True, send_tts_messages=True
).value
_CHANNEL_SETTING = {name: f"discord.{name}_channel_id" for name in CHANNEL_NEEDS}

_T = TypeVar("_T")


def channel_permissions(
    guild: Mapping[str, Any], member: Mapping[str, Any], channel: Mapping[str, Any]
) -> int:
    """The permissions the member has in the channel (REST payloads of each), as Discord resolves them."""
    user_id = int(member["user"]["id"])
    guild_id = int(guild["id"])
    if int(guild.get("owner_id") or 0) == user_id:
        return _ALL
    roles = {int(role["id"]): int(role["permissions"]) for role in guild.get("roles", [])}
    member_roles = {int(role) for role in member.get("roles", [])}
    value = roles.get(guild_id, 0)
    for role in member_roles:
        value |= roles.get(role, 0)
    if value & _ADMINISTRATOR:
        return _ALL
    overwrites = channel.get("permission_overwrites") or []
    role_allow = role_deny = 0
    own: Mapping[str, Any] | None = None
    for overwrite in overwrites:
        target, allow, deny = int(overwrite["id"]), int(overwrite["allow"]), int(overwrite["deny"])
        if int(overwrite.get("type", 0)) == 1:
            own = overwrite if target == user_id else own
        elif target == guild_id:
            value = (value & ~deny) | allow
        elif target in member_roles:
            role_allow, role_deny = role_allow | allow, role_deny | deny
    value = (value & ~role_deny) | role_allow
    if own is not None:
        value = (value & ~int(own["deny"])) | int(own["allow"])
    if not value & _VIEW:
        return 0
    if not value & _SEND:
        value &= ~_NEEDS_SEND
    return value


def permission_names(value: int) -> list[str]:
    """``Pin Messages``, ``View Channel``: as Discord's settings name them."""
    renamed = {"read_messages": "view_channel"}
    return [
        renamed.get(name, name).replace("_", " ").title() for name, held in discord.Permissions(value) if held
    ]


async def check_discord(settings: Settings, *, timeout: float = 30.0) -> list[Finding]:
    """Log in over REST and check the guild, channels, role and permissions the settings name.

    Discord unreachable (no connection, a timeout, a 5xx) is one problem saying nothing was checked."""
    previous = discord.http.Route.BASE
    point_at(settings.discord.api_base_url)
    http = discord.http.HTTPClient(asyncio.get_running_loop())
    try:
        return await asyncio.wait_for(_checks(http, settings), timeout)
    except discord.LoginFailure:
        return [
            Finding(
                "discord.login",
                Status.PROBLEM,
                "Discord refused the token (discord.token / DISCORD_TOKEN)",
                "reset the token (Developer Portal > your application > Bot > Reset Token) and export "
                "it as DISCORD_TOKEN",
            )
        ]
    except (aiohttp.ClientError, OSError, TimeoutError, discord.DiscordServerError) as exc:
        reason = "no answer in time" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
        return [
            Finding(
                "discord",
                Status.PROBLEM,
                f"Discord could not be reached at {settings.discord.api_base_url} ({reason}): the guild, "
                "channels, role and permissions were not checked",
                "check the network (or discord.api_base_url) and run doctor again; doctor --offline "
                "skips these checks on purpose",
            )
        ]
    finally:
        await http.close()
        discord.http.Route.BASE = previous


async def _found(request: Awaitable[_T]) -> _T | None:
    """The payload, or None when Discord says there is no such thing or the bot may not see it."""
    try:
        return await request
    except (discord.NotFound, discord.Forbidden):
        return None


async def _checks(http: discord.http.HTTPClient, settings: Settings) -> list[Finding]:
    config = settings.discord
    me: Mapping[str, Any] = await http.static_login(config.token)  # type: ignore[assignment]
    bot_id = int(me["id"])
    found = [Finding("discord.login", Status.OK, f"logged in as {me['username']} (id {bot_id})")]
    if config.privacy_channel_id:
        application: Mapping[str, Any] = await http.application_info()  # type: ignore[assignment]
        if not int(application.get("flags") or 0) & MESSAGE_CONTENT_FLAGS:
            found.append(
                Finding(
                    "discord.intents",
                    Status.PROBLEM,
                    "a privacy channel is set but the Message Content intent is off: the bot cannot "
                    "start (and could not see the pictures posted there)",
                    "turn it on: Developer Portal > your application > Bot > Privileged Gateway Intents "
                    "> Message Content Intent (or set discord.privacy_channel_id = 0)",
                )
            )
    guilds: dict[int, Mapping[str, Any]] = {}
    for guild_id in config.guild_ids:
        guild = await _found(http.get_guild(guild_id, with_counts=False))
        if guild is None:
            found.append(
                Finding(
                    "discord.guild",
                    Status.PROBLEM,
                    f"guild {guild_id} does not exist or the bot is not in it",
                    "invite the bot with the README's link (Running the Discord bot, step 2), or correct "
                    "discord.guild_ids",
                )
            )
        else:
            guilds[guild_id] = guild
            found.append(Finding("discord.guild", Status.OK, f"guild {guild['name']!r} ({guild_id})"))
    channels: dict[str, Mapping[str, Any]] = {}
    for name in CHANNEL_NEEDS:
        channel_id = getattr(config, f"{name}_channel_id")
        if not channel_id:
            continue
        channel = await _found(http.get_channel(channel_id))
        if channel is None:
            found.append(
                Finding(
                    f"discord.channel.{name}",
                    Status.PROBLEM,
                    f"the {name} channel {channel_id} does not exist or the bot cannot see it",
                    f"set {_CHANNEL_SETTING[name]} to the channel's id ({name} channel > Copy ID), and let "
                    "the bot's role View Channel there",
                )
            )
        else:
            channels[name] = channel
    found += await _in_desk_guild(http, settings, bot_id, guilds, channels)
    return found


async def _in_desk_guild(
    http: discord.http.HTTPClient,
    settings: Settings,
    bot_id: int,
    guilds: dict[int, Mapping[str, Any]],
    channels: dict[str, Mapping[str, Any]],
) -> list[Finding]:
    """The role and the bot's permissions in the desk's guild: the review channel's (else the
    first configured guild)."""
    config = settings.discord
    if "review" in channels:
        guild_id = int(channels["review"]["guild_id"])
    elif config.guild_ids:
        guild_id = config.guild_ids[0]
    else:
        return [Finding("discord.role", Status.SKIPPED, "not checked: no guild to look in")]
    guild = guilds.get(guild_id) or await _found(http.get_guild(guild_id, with_counts=False))
    if guild is None:
        return [Finding("discord.role", Status.SKIPPED, f"not checked: guild {guild_id} cannot be read")]
    found = []
    if config.guild_ids and guild_id not in config.guild_ids:
        found.append(
            Finding(
                "discord.guild",
                Status.WARNING,
                f"the review channel is in guild {guild_id}, which is not in discord.guild_ids: slash "
                "commands are not synced there",
                f"add {guild_id} to discord.guild_ids",
            )
        )
    roles = {int(role["id"]) for role in guild.get("roles", [])}
    if config.maintainer_role_id and config.maintainer_role_id not in roles:
        found.append(
            Finding(
                "discord.role",
                Status.PROBLEM,
                f"the maintainer role {config.maintainer_role_id} does not exist in {guild['name']!r}",
                "set discord.maintainer_role_id to the role's id (Server Settings > Roles > right-click > "
                "Copy ID)",
            )
        )
    elif config.maintainer_role_id:
        exists = f"maintainer role {config.maintainer_role_id} exists"
        found.append(Finding("discord.role", Status.OK, exists))
    member = await _found(http.get_member(guild_id, bot_id))
    if member is None:
        found.append(
            Finding(
                "discord.member",
                Status.PROBLEM,
                f"the bot is not a member of {guild['name']!r}",
                "invite it with the README's link (Running the Discord bot, step 2)",
            )
        )
        return found
    for name, channel in channels.items():
        found.append(_permission_finding(name, guild, member, channel))
    return found


def _permission_finding(
    name: str, guild: Mapping[str, Any], member: Mapping[str, Any], channel: Mapping[str, Any]
) -> Finding:
    check = f"discord.permissions.{name}"
    label = f"#{channel.get('name', channel['id'])}"
    if int(channel.get("guild_id") or 0) != int(guild["id"]):
        return Finding(
            check,
            Status.PROBLEM,
            f"the {name} channel {label} is in another guild than the review channel",
            f"use a channel of {guild['name']!r} for {_CHANNEL_SETTING[name]}",
        )
    missing = CHANNEL_NEEDS[name].value & ~channel_permissions(guild, member, channel)
    if missing:
        names = ", ".join(permission_names(missing))
        return Finding(
            check,
            Status.PROBLEM,
            f"the bot lacks {names} in {label} (the {name} channel)",
            f"grant the bot's role {names} in {label} (Edit Channel > Permissions), or re-invite it with "
            f"permissions integer {INVITE_PERMISSIONS} (README, Running the Discord bot, step 2)",
        )
    return Finding(check, Status.OK, f"the bot has what it needs in {label} (the {name} channel)")
