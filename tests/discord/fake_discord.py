"""A fake Discord for cog tests: real discord.py objects, a local HTTP server at the REST edge.

Why this works
--------------
discord.py builds every REST URL, including interaction callbacks and follow-ups (``discord/webhook/
async_.py`` imports ``Route`` from ``discord/http.py``), as ``discord.http.Route.BASE + path``, and
``Route.url`` is computed when a ``Route`` is constructed. :func:`running_bot` therefore sets
``Route.BASE`` to ``http://127.0.0.1:<port>/api/v10`` (restored afterwards) and :class:`FakeDiscord`, an
aiohttp server on that port, plays Discord's REST API. Attachments are served from the same server at
``/attachments/...``, so ``discord.Attachment.read()`` goes through ``HTTPClient.get_from_cdn`` over HTTP.
Nothing talks to the gateway: events are fed straight into the real parsers of
``discord.state.ConnectionState`` (``parse_message_create``, ``parse_interaction_create``), which build
the real ``discord.Message`` / ``discord.Interaction`` and dispatch them to listeners, the command tree,
views and modals exactly as a gateway event would.

Quick start (fixtures ``fake``, ``world`` and ``harness`` come from ``tests/discord/conftest.py``)::

    async def test_echo(harness: BotHarness) -> None:
        await harness.bot.add_cog(MyCog(harness.bot))
        image = harness.fake.add_attachment(b"...", "cat.png", "image/png")
        harness.dispatch_interaction(harness.world.command_interaction("echo", options={"image": image}))
        await harness.idle()                                  # every handler task has finished
        callback = harness.fake.last("POST", r"/interactions/\\d+/[^/]+/callback")
        assert callback.json == {"type": 5, "data": {"flags": 64}}
        followup = harness.fake.last("POST", r"/webhooks/\\d+/[^/]+")
        assert followup.json["content"] == "3 bytes"

What is where
-------------
* :class:`World` - the fixed cast: ids of the application/bot, one guild (roles ``@everyone``,
  ``Maintainer``, the bot's role), three text channels (``privacy`` open to everyone, ``review`` and
  ``log`` visible only to maintainers and the bot) and people (:class:`Person`: ``maintainer``,
  ``member``, ``outsider`` - not in the guild - each with a fixed DM channel id). Its methods build gateway
  payloads: :meth:`World.message_create`, :meth:`World.command_interaction`,
  :meth:`World.component_interaction`, :meth:`World.modal_submit_interaction`,
  :meth:`World.modal_submit_from_callback`.
* Low-level builders for anything else: :func:`user_payload`, :func:`member_payload`, :func:`role_payload`,
  :func:`text_channel_payload`, :func:`thread_channel_payload`, :func:`dm_channel_payload`,
  :func:`message_payload`,
  :func:`command_data`, :func:`interaction_payload`, :class:`RawOption`.
* :class:`FakeDiscord` - the server. Records every request (:class:`RecordedRequest`: method, path without
  ``/api/v10``, query, headers, parsed JSON or multipart ``payload_json``, attached files), answers the
  routes a moderation bot uses with plausible Discord JSON (messages get new snowflakes and are kept per
  channel, so ``channel.history()`` and ``fetch_message`` see them), and lets tests inject failures
  (:meth:`FakeDiscord.fail`) or add routes (:meth:`FakeDiscord.route`). Await
  :meth:`FakeDiscord.wait_for` to block until a request arrives.
* :func:`running_bot` / :class:`BotHarness` - a logged-in ``commands.Bot`` (no gateway) with the world's
  guild in its cache, ``dispatch_message`` / ``dispatch_interaction`` and :meth:`BotHarness.idle`.

Waiting
-------
Gateway events are handled in asyncio tasks. :meth:`BotHarness.idle` waits until every task discord.py
created for them has finished: event listeners (task names ``discord.py: on_*``), the command tree
(``CommandTree-invoker``), view items and modals (``discord-ui-*-dispatch-*``). Tasks a cog creates itself
are not tracked: wait for their HTTP effect with ``await fake.wait_for(method, path_regex)``. A handler
that blocks in ``bot.wait_for`` keeps ``idle()`` waiting (it raises ``TimeoutError`` naming the tasks).

Errors
------
discord.py swallows exceptions raised by listeners, app commands, views and modals and logs them at ERROR
on the ``discord.*`` loggers. The harness collects those records (``harness.errors``; the exceptions,
unwrapped from ``CommandInvokeError``, in ``harness.exceptions``) and the ``harness`` fixture fails the
test at teardown if any are left: a test that expects one asserts on it and then calls
``harness.errors.clear()``. Requests the fake has no route for are answered 404 and collected in
``fake.unhandled``; the ``fake`` fixture fails the test if any are left. Add the route with
:meth:`FakeDiscord.route`.

Fidelity notes (what Discord does that the fake copies, so cogs meet it in tests)
---------------------------------------------------------------------------------
* Interaction callbacks: discord.py 2.7 always sends ``?with_response=1`` and reads the
  ``{"interaction": ..., "resource": ...}`` callback object; a second callback for the same interaction
  is answered 400 ``40060`` (already acknowledged); a callback or follow-up for an interaction the fake
  has not seen (dispatch it with ``harness.dispatch_interaction``) is 404 ``10062`` / ``10015``.
* After ``defer()`` the FIRST follow-up edits the deferred "thinking" message and keeps the defer's
  visibility (Discord ignores the follow-up's own ``ephemeral``); later follow-ups are new messages.
  The recorded request still shows what discord.py sent (e.g. ``flags: 64``); ``request.response`` shows
  what Discord made of it.
* With ``fake.interaction_deadline = 3.0`` an interaction not answered within 3 s of its dispatch is
  gone, as on Discord: its callback is 404 ``10062`` (the person sees "This interaction failed").
* Without the message_content intent (``running_bot(intents=...)``), ``dispatch_message`` strips
  content, embeds, attachments and components from guild messages that neither come from nor mention the
  bot, as Discord does.
* Pinning a message in a guild channel needs ``PIN_MESSAGES`` (``1 << 51``) in the bot's permissions
  there (``World.bot_permissions``, through ``World.permissions_in``), as on Discord since 2026-02-23
  (Manage Messages no longer suffices): without it 403 ``50013``.
* Ephemeral messages never appear in channel history. Empty messages are 400 ``50006``; content over
  2000 characters is 400 ``50035``; editing someone else's message is 403 ``50005``; unknown channels
  and messages are 404 ``10003`` / ``10008``.
* The fake does not echo gateway events for what the bot did (no MESSAGE_CREATE for its own messages, no
  MESSAGE_DELETE): dispatch them yourself if a cog reacts to them.
* :meth:`FakeDiscord.fail` refuses 500/502/504/524: discord.py retries those five times sleeping
  1, 3, 5, 7 s. Use 503 (raised at once as ``DiscordServerError``). A 429 is sent with ``Via`` and
  ``retry_after`` headers/body, so discord.py treats it as a real rate limit, sleeps ``retry_after``
  (default 0) and retries.
* discord.py only parses a body as JSON when ``Content-Type`` is exactly ``application/json`` (no
  ``charset``), so the fake never uses ``web.json_response``.

discord.py facts the harness relies on (2.7.1)
-----------------------------------------------
* ``Client.login(token)`` = ``HTTPClient.static_login`` (creates the aiohttp session, then
  ``GET /users/@me``) + ``GET /oauth2/applications/@me`` (``application_info``; sets
  ``application_id``) + ``setup_hook()``. No gateway is needed for REST.
* Without a READY event the state has no ``_ready_state`` queue, so ``parse_guild_create`` would dispatch
  ``guild_join``. The harness instead adds the guild with ``state._add_guild_from_data(payload)`` (what
  ``parse_guild_create`` calls, minus the event) and then emulates the end of start-up:
  ``state.call_handlers("ready")`` (sets ``bot.is_ready()``, releases ``wait_until_ready()``) and
  ``state.dispatch("ready")`` (``on_ready`` listeners).
* With the requested intents (guilds, guild_messages, dm_messages, message_content; no ``members``)
  ``Guild._from_data`` caches only the bot's own member. ``running_bot(cache_members=True)`` (default)
  adds the world's members with ``guild._add_member`` so ``guild.get_member`` works. In production,
  without the members intent, ``get_member`` returns ``None`` for anyone not cached: cogs should rely on
  ``interaction.user`` / ``message.author`` (full ``Member`` objects built from the event payload) or
  ``guild.fetch_member`` (served by the fake). Pass ``cache_members=False`` to test that path.
* Discord, not discord.py, enforces ``allowed_contexts`` / ``guild_only``: the harness delivers a DM
  interaction to a guild-only command just as discord.py would if Discord sent it.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import json
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, unquote

import discord
import discord.http
from aiohttp import BodyPartReader, web
from aiohttp.test_utils import TestServer
from discord.ext import commands
from multidict import CIMultiDict

from bot.config import Settings

JSON = dict[str, Any]

API_PREFIX: Final = "/api/v10"
EPHEMERAL: Final = 64  # MessageFlags.ephemeral
LOADING: Final = 128  # MessageFlags.loading: the "thinking..." message of a deferred response

# Discord's JSON errors (https://discord.com/developers/docs/topics/opcodes-and-status-codes#json).
CANNOT_DM: Final[JSON] = {"code": 50007, "message": "Cannot send messages to this user"}
MISSING_PERMISSIONS: Final[JSON] = {"code": 50013, "message": "Missing Permissions"}
MISSING_ACCESS: Final[JSON] = {"code": 50001, "message": "Missing Access"}
UNKNOWN_CHANNEL: Final[JSON] = {"code": 10003, "message": "Unknown Channel"}
UNKNOWN_MESSAGE: Final[JSON] = {"code": 10008, "message": "Unknown Message"}
UNKNOWN_MEMBER: Final[JSON] = {"code": 10007, "message": "Unknown Member"}
UNKNOWN_USER: Final[JSON] = {"code": 10013, "message": "Unknown User"}
UNKNOWN_WEBHOOK: Final[JSON] = {"code": 10015, "message": "Unknown Webhook"}
UNKNOWN_INTERACTION: Final[JSON] = {"code": 10062, "message": "Unknown interaction"}
ALREADY_ACKNOWLEDGED: Final[JSON] = {"code": 40060, "message": "Interaction has already been acknowledged."}
EMPTY_MESSAGE: Final[JSON] = {"code": 50006, "message": "Cannot send an empty message"}
NOT_AUTHOR: Final[JSON] = {"code": 50005, "message": "Cannot edit a message authored by another user"}
CONTENT_TOO_LONG: Final[JSON] = {
    "code": 50035,
    "message": "Invalid Form Body",
    "errors": {
        "content": {
            "_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]
        }
    },
}

# discord.py retries these with sleeps of 1, 3, 5, 7 s (HTTPClient.request), far too slow for a test.
_RETRIED_STATUSES: Final = frozenset({500, 502, 504, 524})

# Names of the tasks discord.py creates to handle an event (see BotHarness.idle).
_HANDLER_TASK_PREFIXES: Final = (
    "discord.py: ",
    "CommandTree-invoker",
    "discord-ui-view-dispatch-",
    "discord-ui-modal-dispatch-",
    "discord-ui-dynamic-item-",
)


# --------------------------------------------------------------------------------------------------
# Snowflakes
# --------------------------------------------------------------------------------------------------


class SnowflakeFactory:
    """Strictly increasing, time-based snowflakes: ``created_at`` is "now" and ids sort by creation."""

    def __init__(self) -> None:
        self._last = 0

    def __call__(self) -> int:
        value = discord.utils.time_snowflake(datetime.now(UTC))
        self._last = max(value, self._last + 1)
        return self._last


new_snowflake = SnowflakeFactory()


def snowflake_iso(snowflake: int) -> str:
    """The ISO timestamp Discord would give an object with this id."""
    return discord.utils.snowflake_time(snowflake).isoformat()


# --------------------------------------------------------------------------------------------------
# Low-level payload builders (Discord API object shapes)
# --------------------------------------------------------------------------------------------------


def user_payload(user_id: int, username: str, *, bot: bool = False, global_name: str | None = None) -> JSON:
    """A Discord user object."""
    return {
        "id": str(user_id),
        "username": username,
        "discriminator": "0",
        "global_name": global_name,
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
    }


def member_payload(
    user: Mapping[str, Any] | None,
    *,
    roles: Iterable[int] = (),
    permissions: int | None = None,
    nick: str | None = None,
    joined_at: str = "2024-01-01T00:00:00+00:00",
) -> JSON:
    """A guild member object. ``user=None`` gives the MESSAGE_CREATE ``member`` shape (no ``user`` key);
    ``permissions`` (channel-level, as a string) is what interaction payloads carry."""
    data: JSON = {
        "roles": [str(role) for role in roles],
        "joined_at": joined_at,
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "nick": nick,
        "avatar": None,
        "communication_disabled_until": None,
    }
    if user is not None:
        data["user"] = dict(user)
    if permissions is not None:
        data["permissions"] = str(permissions)
    return data


def role_payload(role_id: int, name: str, *, permissions: int, position: int, color: int = 0) -> JSON:
    """A role object."""
    return {
        "id": str(role_id),
        "name": name,
        "color": color,
        "colors": {"primary_color": color, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "position": position,
        "permissions": str(permissions),
        "managed": False,
        "mentionable": False,
        "flags": 0,
    }


def overwrite_payload(target_id: int, *, allow: int = 0, deny: int = 0, member: bool = False) -> JSON:
    """A permission overwrite (``type`` 0 = role, 1 = member)."""
    return {"id": str(target_id), "type": 1 if member else 0, "allow": str(allow), "deny": str(deny)}


def text_channel_payload(
    channel_id: int,
    name: str,
    *,
    guild_id: int,
    position: int = 0,
    overwrites: Sequence[Mapping[str, Any]] = (),
    topic: str | None = None,
) -> JSON:
    """A guild text channel (type 0)."""
    return {
        "id": str(channel_id),
        "type": 0,
        "guild_id": str(guild_id),
        "name": name,
        "position": position,
        "permission_overwrites": [dict(o) for o in overwrites],
        "topic": topic,
        "nsfw": False,
        "parent_id": None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "flags": 0,
    }


def thread_channel_payload(
    thread_id: int, name: str, *, guild_id: int, parent_id: int, owner_id: int, private: bool = False
) -> JSON:
    """A thread (type 11 public, 12 private) under the text channel ``parent_id``: what THREAD_CREATE
    carries (feed it to ``harness.state.parse_thread_create``) and ``GET /channels/{id}`` answers
    (register it with :meth:`FakeDiscord.add_channel`)."""
    return {
        "id": str(thread_id),
        "type": 12 if private else 11,
        "guild_id": str(guild_id),
        "parent_id": str(parent_id),
        "owner_id": str(owner_id),
        "name": name,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "message_count": 0,
        "member_count": 1,
        "total_message_sent": 0,
        "flags": 0,
        "thread_metadata": {
            "archived": False,
            "auto_archive_duration": 1440,
            "archive_timestamp": "2026-01-01T00:00:00+00:00",
            "locked": False,
        },
    }


def dm_channel_payload(channel_id: int, recipient: Mapping[str, Any]) -> JSON:
    """A DM channel (type 1) with one recipient."""
    return {
        "id": str(channel_id),
        "type": 1,
        "last_message_id": None,
        "flags": 0,
        "recipients": [dict(recipient)],
    }


def attachment_payload(
    attachment_id: int,
    filename: str,
    *,
    url: str,
    size: int,
    content_type: str | None,
    width: int | None = None,
    height: int | None = None,
) -> JSON:
    """An attachment object (use :meth:`FakeDiscord.add_attachment` to get one the fake serves)."""
    data: JSON = {
        "id": str(attachment_id),
        "filename": filename,
        "size": size,
        "url": url,
        "proxy_url": url,
        "content_type": content_type,
    }
    if width is not None and height is not None:
        data["width"] = width
        data["height"] = height
    return data


def message_payload(
    *,
    channel_id: int,
    author: Mapping[str, Any],
    content: str = "",
    message_id: int | None = None,
    guild_id: int | None = None,
    member: Mapping[str, Any] | None = None,
    attachments: Sequence[Mapping[str, Any]] = (),
    embeds: Sequence[Mapping[str, Any]] = (),
    components: Sequence[Mapping[str, Any]] = (),
    flags: int = 0,
    message_type: int = 0,
    **extra: Any,
) -> JSON:
    """A message object. For a MESSAGE_CREATE in a guild pass ``guild_id`` and ``member`` (a
    :func:`member_payload` with ``user=None``); REST answers and DMs have neither."""
    mid = message_id if message_id is not None else new_snowflake()
    data: JSON = {
        "id": str(mid),
        "channel_id": str(channel_id),
        "author": dict(author),
        "content": content,
        "timestamp": snowflake_iso(mid),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [dict(a) for a in attachments],
        "embeds": [dict(e) for e in embeds],
        "components": [dict(c) for c in components],
        "reactions": [],
        "pinned": False,
        "type": message_type,
        "flags": flags,
    }
    if guild_id is not None:
        data["guild_id"] = str(guild_id)
    if member is not None:
        data["member"] = dict(member)
    data.update(extra)
    return data


@dataclass(frozen=True)
class RawOption:
    """An application command option given explicitly: ``type`` is Discord's option type (3 string,
    4 integer, 5 boolean, 6 user, 7 channel, 8 role, 9 mentionable, 10 number, 11 attachment) and
    ``value`` goes in as is (ids as strings). Put the matching objects in ``command_data(resolved=...)``."""

    type: int
    value: Any


OptionValue = str | int | float | bool | Mapping[str, Any] | RawOption


def _option(name: str, value: OptionValue, resolved: JSON) -> JSON:
    if isinstance(value, RawOption):
        return {"name": name, "type": value.type, "value": value.value}
    if isinstance(value, bool):  # before int: bool is an int
        return {"name": name, "type": 5, "value": value}
    if isinstance(value, int):
        return {"name": name, "type": 4, "value": value}
    if isinstance(value, float):
        return {"name": name, "type": 10, "value": value}
    if isinstance(value, str):
        return {"name": name, "type": 3, "value": value}
    if "filename" in value and "url" in value:  # an attachment payload
        resolved.setdefault("attachments", {})[str(value["id"])] = dict(value)
        return {"name": name, "type": 11, "value": str(value["id"])}
    raise TypeError(f"option {name!r}: cannot infer the type of {value!r}; use RawOption")


def command_data(
    name: str,
    options: Mapping[str, OptionValue] | None = None,
    *,
    command_id: int | None = None,
    command_type: int = 1,
    guild_id: int | None = None,
    resolved: Mapping[str, Any] | None = None,
) -> JSON:
    """``data`` of an application command interaction. ``name`` may hold a subcommand path
    (``"ticket approve"`` or ``"admin ticket approve"``); ``options`` are the leaf's options, their types
    inferred (bool 5, int 4, float 10, str 3, an attachment payload 11 with ``resolved.attachments``) or
    given as :class:`RawOption`. ``guild_id`` marks a guild-registered command."""
    resolved_data: JSON = {key: dict(value) for key, value in (resolved or {}).items()}
    leaf = [_option(key, value, resolved_data) for key, value in (options or {}).items()]
    root, *path = name.split()
    if len(path) > 2:
        raise ValueError("Discord allows at most a group and a subcommand below a command")
    for depth, part in enumerate(reversed(path)):
        option_type = 1 if depth == 0 else 2  # subcommand, then subcommand group
        leaf = [{"name": part, "type": option_type, "options": leaf}]
    data: JSON = {
        "id": str(command_id if command_id is not None else new_snowflake()),
        "name": root,
        "type": command_type,
        "options": leaf,
    }
    if resolved_data:
        data["resolved"] = resolved_data
    if guild_id is not None:
        data["guild_id"] = str(guild_id)
    return data


def interaction_payload(
    type_: int,
    *,
    application_id: int,
    channel: Mapping[str, Any],
    data: Mapping[str, Any] | None = None,
    guild_id: int | None = None,
    member: Mapping[str, Any] | None = None,
    user: Mapping[str, Any] | None = None,
    message: Mapping[str, Any] | None = None,
    app_permissions: int = 0,
    locale: str = "en-US",
    interaction_id: int | None = None,
    token: str | None = None,
    guild_locale: str | None = None,
) -> JSON:
    """An INTERACTION_CREATE payload. In a guild pass ``guild_id`` and ``member`` (with ``user`` and
    ``permissions``); in a DM pass ``user``. Types: 2 application command, 3 message component, 4
    autocomplete, 5 modal submit."""
    if (member is None) == (user is None):
        raise ValueError("pass exactly one of member (guild) or user (DM)")
    if (guild_id is None) != (member is None):
        raise ValueError("guild_id goes with member, and a DM interaction has neither")
    payload: JSON = {
        "id": str(interaction_id if interaction_id is not None else new_snowflake()),
        "application_id": str(application_id),
        "type": type_,
        "token": token or f"fake-token-{secrets.token_hex(16)}",
        "version": 1,
        "channel": dict(channel),
        "channel_id": str(channel["id"]),
        "app_permissions": str(app_permissions),
        "locale": locale,
        "entitlements": [],
        "attachment_size_limit": 10 * 1024 * 1024,
    }
    if data is not None:
        payload["data"] = dict(data)
    if message is not None:
        payload["message"] = dict(message)
    if guild_id is not None and member is not None:
        payload["guild_id"] = str(guild_id)
        payload["guild"] = {"id": str(guild_id), "locale": guild_locale or locale, "features": []}
        payload["guild_locale"] = guild_locale or locale
        payload["member"] = dict(member)
        payload["context"] = 0
        payload["authorizing_integration_owners"] = {"0": str(guild_id)}
    else:
        payload["user"] = dict(user or {})
        payload["context"] = 1  # BOT_DM
        payload["authorizing_integration_owners"] = {"0": "0"}
    return payload


def _submitted_component(
    component: Mapping[str, Any], values: Mapping[str, Any], used: set[str], resolved: JSON
) -> JSON:
    """What Discord sends back for one component of a submitted modal (same nesting as sent)."""
    kind = component["type"]
    if kind == 1:  # action row
        return {
            "type": 1,
            "id": component.get("id", 0),
            "components": [_submitted_component(c, values, used, resolved) for c in component["components"]],
        }
    if kind == 18:  # label
        return {
            "type": 18,
            "id": component.get("id", 0),
            "component": _submitted_component(component["component"], values, used, resolved),
        }
    custom_id = component.get("custom_id")
    submitted: JSON = {"type": kind, "id": component.get("id", 0)}
    if custom_id is None:  # text display and other read-only parts
        return submitted
    submitted["custom_id"] = custom_id
    given = custom_id in values
    if given:
        used.add(custom_id)
    elif component.get("required", kind in (4, 19)) and component.get("value") is None:
        raise ValueError(f"the modal's input {custom_id!r} is required: give it a value")
    value = values.get(custom_id)
    if kind == 4:  # text input
        submitted["value"] = value if given else component.get("value") or ""
    elif kind == 19:  # file upload: attachment payloads (FakeDiscord.add_attachment), resolved by id
        attachments = [dict(a) for a in value or []]
        resolved.setdefault("attachments", {}).update({str(a["id"]): a for a in attachments})
        submitted["values"] = [str(a["id"]) for a in attachments]
    elif kind in (21, 23):  # radio group (option value), checkbox (bool)
        submitted["value"] = value if given else (None if kind == 21 else False)
    else:  # selects 3, 5-8 and checkbox group 22: a list of values
        submitted["values"] = list(value or [])
    return submitted


# --------------------------------------------------------------------------------------------------
# The world: one guild, its roles, channels and people
# --------------------------------------------------------------------------------------------------

APPLICATION_ID: Final = 1_100_000_000_000_000_001  # also the bot user's id, as for real bots
GUILD_ID: Final = 1_200_000_000_000_000_001  # also the @everyone role's id, as on Discord
MAINTAINER_ROLE_ID: Final = 1_200_000_000_000_000_010
BOT_ROLE_ID: Final = 1_200_000_000_000_000_011
PRIVACY_CHANNEL_ID: Final = 1_200_000_000_000_000_100
REVIEW_CHANNEL_ID: Final = 1_200_000_000_000_000_101
LOG_CHANNEL_ID: Final = 1_200_000_000_000_000_102
# The guild owner is nobody in the cast: owners bypass every permission check.
OWNER_ID: Final = 1_300_000_000_000_000_009

EVERYONE_PERMISSIONS: Final = discord.Permissions(
    view_channel=True,
    send_messages=True,
    read_message_history=True,
    attach_files=True,
    embed_links=True,
    add_reactions=True,
    use_application_commands=True,
    send_messages_in_threads=True,
).value
MAINTAINER_PERMISSIONS: Final = discord.Permissions(manage_messages=True, manage_threads=True).value
# Since 2026-02-23 pinning needs its own permission; Manage Messages no longer allows it.
PIN_MESSAGES: Final = 1 << 51
# What the README's invite link grants: 125952 | PIN_MESSAGES = 2251799813811200.
BOT_PERMISSIONS: Final = (
    discord.Permissions(
        view_channel=True,
        send_messages=True,
        embed_links=True,
        attach_files=True,
        read_message_history=True,
        manage_messages=True,
    ).value
    | PIN_MESSAGES
)
assert BOT_PERMISSIONS == 2251799813811200
VIEW_CHANNEL: Final = discord.Permissions(view_channel=True).value


@dataclass(frozen=True)
class Person:
    """Someone in the world. ``dm_channel_id`` is the id of their DM channel with the bot (the fake returns
    it from ``POST /users/@me/channels``, as Discord always returns the same DM channel)."""

    id: int
    name: str
    role_ids: tuple[int, ...] = ()
    in_guild: bool = True
    dm_channel_id: int = 0
    bot: bool = False

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"

    def user_payload(self) -> JSON:
        return user_payload(self.id, self.name, bot=self.bot)

    def member_payload(self, *, with_user: bool = True, permissions: int | None = None) -> JSON:
        user = self.user_payload() if with_user else None
        return member_payload(user, roles=self.role_ids, permissions=permissions)


BOT: Final = Person(APPLICATION_ID, "Removal Desk", role_ids=(BOT_ROLE_ID,), bot=True)
MAINTAINER: Final = Person(
    1_300_000_000_000_000_001,
    "maria",
    role_ids=(MAINTAINER_ROLE_ID,),
    dm_channel_id=1_400_000_000_000_000_001,
)
MEMBER: Final = Person(1_300_000_000_000_000_002, "mo", dm_channel_id=1_400_000_000_000_000_002)
OUTSIDER: Final = Person(
    1_300_000_000_000_000_003, "olga", in_guild=False, dm_channel_id=1_400_000_000_000_000_003
)


@dataclass(frozen=True)
class World:
    """The fixed cast every test starts from, and builders for gateway payloads set in it.

    Defaults: invoker/author ``member`` (no roles), channel ``privacy``. ``dm=True`` puts an event in the
    person's DM with the bot instead (no guild, ``user`` instead of ``member``). For another cast use
    ``dataclasses.replace(World(), member=Person(...))`` and override the ``world`` fixture."""

    application_id: int = APPLICATION_ID
    guild_id: int = GUILD_ID
    guild_name: str = "Dataset Commons"
    maintainer_role_id: int = MAINTAINER_ROLE_ID
    bot_role_id: int = BOT_ROLE_ID
    privacy_channel_id: int = PRIVACY_CHANNEL_ID
    review_channel_id: int = REVIEW_CHANNEL_ID
    log_channel_id: int = LOG_CHANNEL_ID
    owner_id: int = OWNER_ID
    bot_permissions: int = BOT_PERMISSIONS  # the bot role's: what the invite link granted
    # The language of the person's Discord client (every interaction's ``locale``), and the
    # server's (``preferred_locale``, and an interaction's ``guild_locale``): Discord locale values.
    locale: str = "en-US"
    preferred_locale: str = "en-US"
    bot: Person = BOT
    maintainer: Person = MAINTAINER
    member: Person = MEMBER
    outsider: Person = OUTSIDER

    @property
    def people(self) -> tuple[Person, ...]:
        return (self.bot, self.maintainer, self.member, self.outsider)

    def person(self, user_id: int) -> Person:
        for person in self.people:
            if person.id == user_id:
                return person
        raise KeyError(user_id)

    # --- guild state ----------------------------------------------------------------------------

    def bot_settings(self, base: Settings, index: Path, database: Path, **discord: Any) -> Settings:
        """``base`` with the bot pointed at this world (guild, channels, role), ``index`` and the
        ticket ``database``; ``discord`` overrides more ``[discord]`` settings."""
        discord_settings = dataclasses.replace(
            base.discord,
            token="fake-token",
            guild_ids=(self.guild_id,),
            privacy_channel_id=self.privacy_channel_id,
            review_channel_id=self.review_channel_id,
            log_channel_id=self.log_channel_id,
            maintainer_role_id=self.maintainer_role_id,
            index=str(index),
            **discord,
        )
        tickets = dataclasses.replace(base.tickets, database=str(database))
        return dataclasses.replace(base, discord=discord_settings, tickets=tickets)

    def role_payloads(self) -> list[JSON]:
        return [
            role_payload(self.guild_id, "@everyone", permissions=EVERYONE_PERMISSIONS, position=0),
            role_payload(
                self.maintainer_role_id, "Maintainer", permissions=MAINTAINER_PERMISSIONS, position=1
            ),
            role_payload(self.bot_role_id, "Removal Desk", permissions=self.bot_permissions, position=2),
        ]

    def _overwrites(self, channel_id: int) -> list[JSON]:
        if channel_id == self.privacy_channel_id:
            return []
        return [  # review and log: maintainers and the bot only
            overwrite_payload(self.guild_id, deny=VIEW_CHANNEL),
            overwrite_payload(self.maintainer_role_id, allow=VIEW_CHANNEL),
            overwrite_payload(self.bot_role_id, allow=VIEW_CHANNEL),
        ]

    def channel_payloads(self) -> list[JSON]:
        names = {
            self.privacy_channel_id: "privacy",
            self.review_channel_id: "review",
            self.log_channel_id: "log",
        }
        return [
            text_channel_payload(
                channel_id,
                name,
                guild_id=self.guild_id,
                position=position,
                overwrites=self._overwrites(channel_id),
            )
            for position, (channel_id, name) in enumerate(names.items())
        ]

    def channel_payload(self, channel_id: int) -> JSON:
        for channel in self.channel_payloads():
            if int(channel["id"]) == channel_id:
                return channel
        raise KeyError(channel_id)

    def is_guild_channel(self, channel_id: int) -> bool:
        return channel_id in (self.privacy_channel_id, self.review_channel_id, self.log_channel_id)

    def dm_channel_payload(self, person: Person) -> JSON:
        return dm_channel_payload(person.dm_channel_id, person.user_payload())

    def member_payloads(self) -> list[JSON]:
        return [person.member_payload() for person in self.people if person.in_guild]

    def guild_payload(self) -> JSON:
        """A GUILD_CREATE payload (what ``ConnectionState._add_guild_from_data`` takes)."""
        members = self.member_payloads()
        return {
            "id": str(self.guild_id),
            "name": self.guild_name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 1,
            "default_message_notifications": 1,
            "explicit_content_filter": 2,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": self.preferred_locale,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "features": [],
            "roles": self.role_payloads(),
            "emojis": [],
            "stickers": [],
            "channels": self.channel_payloads(),
            "threads": [],
            "members": members,
            "member_count": len(members),
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "large": False,
            "unavailable": False,
            "joined_at": "2024-01-01T00:00:00+00:00",
        }

    def permissions_in(self, person: Person, channel_id: int) -> int:
        """``person``'s permissions in a guild channel, as Discord computes them for the cast: roles, then
        the channel's ``@everyone`` and role overwrites; nothing at all without ``view_channel``. (No
        owner, administrator, member overwrites or timeouts: the world has none.)"""
        by_id = {int(role["id"]): int(role["permissions"]) for role in self.role_payloads()}
        value = by_id[self.guild_id]
        for role_id in person.role_ids:
            value |= by_id.get(role_id, 0)
        allow = deny = 0
        for overwrite in self._overwrites(channel_id):
            target = int(overwrite["id"])
            if target == self.guild_id:
                value = (value & ~int(overwrite["deny"])) | int(overwrite["allow"])
            elif target in person.role_ids:
                allow |= int(overwrite["allow"])
                deny |= int(overwrite["deny"])
        value = (value & ~deny) | allow
        return value if value & VIEW_CHANNEL else 0

    # --- gateway payloads ---------------------------------------------------------------------

    def message_create(
        self,
        content: str = "",
        *,
        author: Person | None = None,
        channel_id: int | None = None,
        dm: bool = False,
        attachments: Sequence[Mapping[str, Any]] = (),
        **extra: Any,
    ) -> JSON:
        """A MESSAGE_CREATE payload by ``author`` (default ``member``) in ``channel_id`` (default
        ``privacy``) or, with ``dm=True``, in the author's DM with the bot."""
        author = author or self.member
        if dm:
            return message_payload(
                channel_id=author.dm_channel_id,
                author=author.user_payload(),
                content=content,
                attachments=attachments,
                **extra,
            )
        return message_payload(
            channel_id=channel_id or self.privacy_channel_id,
            author=author.user_payload(),
            content=content,
            guild_id=self.guild_id,
            member=author.member_payload(with_user=False),
            attachments=attachments,
            **extra,
        )

    def _interaction(
        self,
        type_: int,
        data: JSON,
        *,
        invoker: Person | None,
        dm: bool,
        channel_id: int | None,
        message: Mapping[str, Any] | None = None,
    ) -> JSON:
        invoker = invoker or self.member
        if dm:
            return interaction_payload(
                type_,
                application_id=self.application_id,
                channel=self.dm_channel_payload(invoker),
                data=data,
                user=invoker.user_payload(),
                message=message,
                app_permissions=EVERYONE_PERMISSIONS,
                locale=self.locale,
            )
        if not invoker.in_guild:
            raise ValueError(f"{invoker.name} is not in the guild; use dm=True")
        channel_id = channel_id or self.privacy_channel_id
        return interaction_payload(
            type_,
            application_id=self.application_id,
            channel=self.channel_payload(channel_id),
            data=data,
            guild_id=self.guild_id,
            member=invoker.member_payload(permissions=self.permissions_in(invoker, channel_id)),
            message=message,
            app_permissions=self.permissions_in(self.bot, channel_id),
            locale=self.locale,
            guild_locale=self.preferred_locale,
        )

    def command_interaction(
        self,
        name: str,
        *,
        options: Mapping[str, OptionValue] | None = None,
        invoker: Person | None = None,
        dm: bool = False,
        channel_id: int | None = None,
        resolved: Mapping[str, Any] | None = None,
        guild_command: bool = False,
        command_id: int | None = None,
    ) -> JSON:
        """A slash command (type 2) interaction; see :func:`command_data` for ``name`` and ``options``.
        ``guild_command=True`` marks a command registered for the guild (``data.guild_id``)."""
        data = command_data(
            name,
            options,
            command_id=command_id,
            guild_id=self.guild_id if guild_command else None,
            resolved=resolved,
        )
        return self._interaction(2, data, invoker=invoker, dm=dm, channel_id=channel_id)

    def component_interaction(
        self,
        custom_id: str,
        *,
        message: Mapping[str, Any],
        invoker: Person | None = None,
        component_type: int = 2,
        values: Sequence[str] | None = None,
    ) -> JSON:
        """A message component (type 3) interaction: a click on a button (``component_type`` 2) or a
        choice in a select (3 string, 5 user, 6 role, 7 mentionable, 8 channel; pass ``values``) of
        ``message`` (a message payload, e.g. ``fake.find_message(sent.id)`` after the bot sent it). The
        interaction happens in the message's channel: a guild channel of the world, else the invoker's DM."""
        data: JSON = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = list(values)
        channel_id = int(message["channel_id"])
        dm = not self.is_guild_channel(channel_id)
        return self._interaction(
            3, data, invoker=invoker, dm=dm, channel_id=None if dm else channel_id, message=message
        )

    def modal_submit_interaction(
        self,
        custom_id: str,
        fields: Mapping[str, str],
        *,
        invoker: Person | None = None,
        dm: bool = False,
        channel_id: int | None = None,
        message: Mapping[str, Any] | None = None,
    ) -> JSON:
        """A modal submit (type 5): one action row per text input ``custom_id -> value``. Prefer
        :meth:`modal_submit_from_callback`, which mirrors the modal the bot actually sent."""
        components = [
            {"type": 1, "components": [{"type": 4, "custom_id": key, "value": value}]}
            for key, value in fields.items()
        ]
        data: JSON = {"custom_id": custom_id, "components": components}
        return self._interaction(5, data, invoker=invoker, dm=dm, channel_id=channel_id, message=message)

    def modal_submit_from_callback(
        self,
        callback: RecordedRequest | Mapping[str, Any],
        values: Mapping[str, Any],
        *,
        invoker: Person | None = None,
        dm: bool = False,
        channel_id: int | None = None,
    ) -> JSON:
        """The modal submit for the modal in a recorded type 9 callback (``interaction.response.send_modal``):
        same ``custom_id``, same layout (action rows or labels), ``values`` by input ``custom_id``: a string
        for a text input or radio group, a list of strings for a select or checkbox group, a bool for a
        checkbox, a list of attachment payloads (:meth:`FakeDiscord.add_attachment`) for a file upload
        (they go in ``data.resolved.attachments``). Raises if a required input has no value or a key in
        ``values`` is not in the modal."""
        body = callback.json if isinstance(callback, RecordedRequest) else callback
        if not body or body.get("type") != 9:
            raise ValueError(f"not a modal callback (type 9): {body!r}")
        modal = body["data"]
        used: set[str] = set()
        resolved: JSON = {}
        components = [_submitted_component(c, values, used, resolved) for c in modal["components"]]
        if unknown := set(values) - used:
            raise ValueError(f"no input with custom_id {sorted(unknown)} in modal {modal['custom_id']!r}")
        data: JSON = {"custom_id": modal["custom_id"], "components": components}
        if resolved:
            data["resolved"] = resolved
        return self._interaction(5, data, invoker=invoker, dm=dm, channel_id=channel_id)


# --------------------------------------------------------------------------------------------------
# The fake server
# --------------------------------------------------------------------------------------------------


@dataclass
class RecordedFile:
    """A file of a multipart request (``files[n]`` field)."""

    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class RecordedRequest:
    """One request the fake received, with what it answered.

    ``path`` has the ``/api/v10`` prefix removed for API calls (``api=True``); CDN fetches keep theirs
    (``/attachments/...``). ``json`` is the parsed JSON body, or the parsed ``payload_json`` part of a
    multipart body (whose files are in ``files``); ``None`` without a body."""

    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    json: Any = None
    files: list[RecordedFile] = field(default_factory=list)
    api: bool = True
    status: int = 0
    response: Any = None
    received: float = field(default_factory=time.monotonic)  # when it arrived: for deadlines, load

    @property
    def reason(self) -> str | None:
        """The audit log reason (``X-Audit-Log-Reason``), decoded."""
        value = self.headers.get("X-Audit-Log-Reason")
        return None if value is None else unquote(value)

    def match(self, pattern: str | re.Pattern[str]) -> re.Match[str] | None:
        """``re.fullmatch`` of ``pattern`` against the path."""
        return re.fullmatch(pattern, self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}"


Reply = tuple[int, Any]
"""A route's answer: (status, JSON body). ``None`` gives an empty body; ``bytes`` a raw one."""

Handler = Callable[[RecordedRequest, re.Match[str]], Reply | Awaitable[Reply]]


@dataclass
class FailureRule:
    """An injected failure (see :meth:`FakeDiscord.fail`); ``hits`` counts the requests it answered."""

    method: str
    pattern: re.Pattern[str]
    status: int
    body: Any
    times: int | None = None
    hits: int = 0

    def applies(self, request: RecordedRequest) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        return _method_matches(self.method, request.method) and bool(request.match(self.pattern))


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    api: bool = True


@dataclass
class _Blob:
    data: bytes
    content_type: str


def _method_matches(wanted: str | None, actual: str) -> bool:
    return wanted in (None, "*") or wanted.upper() == actual


def _compile(pattern: str | re.Pattern[str]) -> re.Pattern[str]:
    return pattern if isinstance(pattern, re.Pattern) else re.compile(pattern)


def _json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    # Exactly "application/json": discord.py's json_or_text compares the header verbatim.
    return web.Response(
        status=status, body=json.dumps(body).encode(), content_type="application/json", headers=headers
    )


class FakeDiscord:
    """Discord's REST API (and attachment CDN) on ``127.0.0.1``, for one test.

    Use as ``async with FakeDiscord() as fake:`` (or the ``fake`` fixture), then :func:`running_bot`.

    State it keeps, all plain payload dicts a test may read or seed:
    ``channels`` (id -> channel payload; the harness registers the world's guild channels and DMs),
    ``messages`` (channel id -> message id -> payload; what history/fetch/edit/delete/pin see),
    ``users`` (id -> user), ``members`` ((guild id, user id) -> member), ``commands`` (guild id or ``None``
    for global -> synced command list), ``interactions`` (id -> INTERACTION_CREATE payload, registered by
    ``BotHarness.dispatch_interaction``), ``original_responses`` (interaction token -> message).
    """

    def __init__(
        self, *, application_id: int = APPLICATION_ID, bot_user: Mapping[str, Any] | None = None
    ) -> None:
        self.application_id = application_id
        self.bot_user: JSON = dict(bot_user or user_payload(application_id, "Removal Desk", bot=True))
        self.requests: list[RecordedRequest] = []
        self.unhandled: list[RecordedRequest] = []
        self.channels: dict[int, JSON] = {}
        self.messages: dict[int, dict[int, JSON]] = {}
        self.users: dict[int, JSON] = {int(self.bot_user["id"]): self.bot_user}
        self.members: dict[tuple[int, int], JSON] = {}
        self.commands: dict[int | None, list[JSON]] = {}
        self.interactions: dict[int, JSON] = {}
        self.original_responses: dict[str, JSON] = {}
        self.ephemeral_messages: dict[int, JSON] = {}
        self._dm_by_user: dict[int, int] = {}
        self._acknowledged: set[int] = set()
        # Discord forgets an interaction not answered within 3 s (its callback is then 404 10062).
        # Off unless a test sets it: a slow test machine is not a slow bot.
        self.interaction_deadline: float | None = None
        self.dispatched_at: dict[int, float] = {}
        self._blobs: dict[str, _Blob] = {}
        self._failures: list[FailureRule] = []
        self._custom_routes: list[_Route] = []
        self._routes: list[_Route] = self._builtin_routes()
        self._waiters: list[asyncio.Future[None]] = []
        self._server: TestServer | None = None
        self.bot_permissions_in: Callable[[int], int | None] = lambda _channel_id: None
        """The bot's permissions in a channel (``None``: not a guild channel, nothing enforced);
        :func:`running_bot` sets it from the world. Pinning checks it."""

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()
            self._server = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``; the CDN lives here."""
        if self._server is None or self._server.port is None:
            raise RuntimeError("FakeDiscord is not started")
        return f"http://127.0.0.1:{self._server.port}"

    @property
    def api_base(self) -> str:
        """What ``discord.http.Route.BASE`` must be set to."""
        return self.base_url + API_PREFIX

    # --- seeding --------------------------------------------------------------------------------

    def add_channel(self, channel: Mapping[str, Any]) -> None:
        """Make a channel known (``GET /channels/{id}``, and sending to it)."""
        channel_id = int(channel["id"])
        self.channels[channel_id] = dict(channel)
        self.messages.setdefault(channel_id, {})
        if channel.get("type") == 1:
            for recipient in channel.get("recipients", []):
                self._dm_by_user[int(recipient["id"])] = channel_id
                self.add_user(recipient)

    def add_user(self, user: Mapping[str, Any]) -> None:
        self.users[int(user["id"])] = dict(user)

    def add_member(self, guild_id: int, member: Mapping[str, Any]) -> None:
        """Serve ``GET /guilds/{guild}/members/{user}`` for ``member`` (a payload with ``user``)."""
        self.members[(guild_id, int(member["user"]["id"]))] = dict(member)
        self.add_user(member["user"])

    def add_message(self, message: Mapping[str, Any]) -> JSON:
        """Put a message payload in its channel (as if it had been posted); returns the stored dict."""
        stored = copy.deepcopy(dict(message))
        stored.pop("member", None)  # REST message objects carry neither
        stored.pop("guild_id", None)
        self.messages.setdefault(int(stored["channel_id"]), {})[int(stored["id"])] = stored
        return stored

    def add_history(self, channel_id: int, messages: Iterable[Mapping[str, Any]]) -> None:
        """Seed a channel's backlog (``GET /channels/{id}/messages`` returns it, newest first)."""
        for message in messages:
            if int(message["channel_id"]) != channel_id:
                raise ValueError(f"message {message['id']} belongs to channel {message['channel_id']}")
            self.add_message(message)

    def add_attachment(
        self,
        data: bytes,
        filename: str = "image.png",
        content_type: str | None = "image/png",
        *,
        channel_id: int = 0,
        width: int | None = None,
        height: int | None = None,
    ) -> JSON:
        """Serve ``data`` from the fake CDN; returns the attachment payload (``url`` and ``proxy_url``
        point at the fake) to put in a message or a command's ``options``."""
        attachment_id = new_snowflake()
        path = f"/attachments/{channel_id}/{attachment_id}/{quote(filename)}"
        self._blobs[path] = _Blob(bytes(data), content_type or "application/octet-stream")
        return attachment_payload(
            attachment_id,
            filename,
            url=f"{self.base_url}{path}?ex=0&is=0&hm=fake",
            size=len(data),
            content_type=content_type,
            width=width,
            height=height,
        )

    def channel_messages(self, channel_id: int) -> list[JSON]:
        """The channel's stored messages, oldest first."""
        stored = self.messages.get(channel_id, {})
        return [stored[key] for key in sorted(stored)]

    def find_message(self, message_id: int) -> JSON | None:
        """A stored message by id, in any channel (also ephemeral interaction responses)."""
        for stored in self.messages.values():
            if message_id in stored:
                return stored[message_id]
        return self.ephemeral_messages.get(message_id)

    # --- behaviour hooks ------------------------------------------------------------------------

    def fail(
        self,
        method: str | None,
        path_regex: str | re.Pattern[str],
        status: int,
        json: Any = None,
        *,
        times: int | None = None,
    ) -> FailureRule:
        """Answer matching requests (``method``, ``None``/``"*"`` for any; ``re.fullmatch`` on the path
        without ``/api/v10``) with ``status`` and the JSON error ``json`` (a generic one if omitted), the
        next ``times`` times or always. Checked before every route. Example::

            fake.fail("POST", rf"/channels/{world.member.dm_channel_id}/messages", 403, CANNOT_DM)
        """
        if status in _RETRIED_STATUSES:
            raise ValueError(f"discord.py retries {status} with sleeps of 1-7 s; use 503 to fail at once")
        if json is None:
            json = {"code": 0, "message": f"{status}: injected by FakeDiscord.fail"}
            if status == 429:
                json = {"message": "You are being rate limited.", "retry_after": 0.0, "global": False}
        rule = FailureRule((method or "*").upper(), _compile(path_regex), status, json, times)
        self._failures.append(rule)
        return rule

    def clear_failures(self) -> None:
        self._failures.clear()

    def route(self, method: str | None, path_regex: str | re.Pattern[str], handler: Handler | Reply) -> None:
        """Add (or override: custom routes win) a route. ``handler(request, match)`` returns (or
        awaits to) ``(status, json)``; a plain ``(status, json)`` tuple is a fixed answer."""
        if isinstance(handler, tuple):
            fixed = handler

            def answer(_request: RecordedRequest, _match: re.Match[str]) -> Reply:
                return fixed

            handler = answer
        self._custom_routes.insert(0, _Route((method or "*").upper(), _compile(path_regex), handler))

    # --- inspecting -----------------------------------------------------------------------------

    def find(
        self, method: str | None = None, path_regex: str | re.Pattern[str] = r".*", *, since: int = 0
    ) -> list[RecordedRequest]:
        """Recorded requests (from index ``since``) with ``method`` (``None``/``"*"``: any) whose path
        fully matches ``path_regex``."""
        pattern = _compile(path_regex)
        return [r for r in self.requests[since:] if _method_matches(method, r.method) and r.match(pattern)]

    def last(self, method: str | None = None, path_regex: str | re.Pattern[str] = r".*") -> RecordedRequest:
        """The latest matching request; ``AssertionError`` listing all requests if there is none."""
        found = self.find(method, path_regex)
        if not found:
            raise AssertionError(f"no {method or '*'} {path_regex} among:\n{self.describe()}")
        return found[-1]

    def mark(self) -> int:
        """The number of requests so far, to pass as ``since`` to :meth:`find` / :meth:`wait_for`."""
        return len(self.requests)

    async def wait_for(
        self,
        method: str | None,
        path_regex: str | re.Pattern[str],
        *,
        timeout: float = 5.0,
        count: int = 1,
        since: int = 0,
    ) -> RecordedRequest:
        """Wait until ``count`` matching requests (from index ``since``) have been answered and return
        the ``count``-th. Already-recorded requests count, so there is no race with the bot.
        Raises ``AssertionError`` (listing what arrived) after ``timeout`` seconds."""
        pattern = _compile(path_regex)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = self.find(method, pattern, since=since)
            if len(found) >= count:
                return found[count - 1]
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {count}x {method or '*'} {pattern.pattern};"
                    f" got:\n{self.describe()}"
                )
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, remaining)

    def describe(self) -> str:
        return "\n".join(f"  {r}" for r in self.requests) or "  (no requests)"

    def assert_all_handled(self) -> None:
        """Fail if the bot made requests the fake has no route for."""
        if self.unhandled:
            lines = "\n".join(f"  {r.method} {r.path} {r.json!r}" for r in self.unhandled)
            raise AssertionError(f"FakeDiscord has no route for (add one with fake.route):\n{lines}")

    # --- request handling -----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._read(request)
        status, body, headers = await self._answer(recorded)
        recorded.status, recorded.response = status, body
        self.requests.append(recorded)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        if body is None:
            return web.Response(status=status, headers=headers)
        if isinstance(body, _Blob):
            recorded.response = body.data
            return web.Response(status=status, body=body.data, content_type=body.content_type)
        return _json_response(status, body, headers)

    @staticmethod
    async def _read(request: web.Request) -> RecordedRequest:
        path = request.path
        api = path.startswith(API_PREFIX + "/")
        recorded = RecordedRequest(
            method=request.method,
            path=path[len(API_PREFIX) :] if api else path,
            query=dict(request.query),
            headers=CIMultiDict(request.headers),
            api=api,
        )
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    continue
                data = await part.read(decode=True)
                if part.filename is not None:
                    content_type = part.headers.get("Content-Type", "application/octet-stream")
                    recorded.files.append(
                        RecordedFile(part.name or "", part.filename, content_type, bytes(data))
                    )
                elif part.name == "payload_json":
                    recorded.json = json.loads(data)
        else:
            raw = await request.read()
            if raw:
                try:
                    recorded.json = json.loads(raw)
                except ValueError:
                    recorded.json = raw.decode(errors="replace")
        return recorded

    async def _answer(self, request: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        for rule in self._failures:
            if rule.applies(request):
                rule.hits += 1
                headers = {}
                if rule.status == 429:  # what makes discord.py treat it as a rate limit, not Cloudflare
                    retry_after = rule.body.get("retry_after", 0) if isinstance(rule.body, dict) else 0
                    headers = {"Via": "1.1 google", "Retry-After": str(retry_after)}
                return rule.status, copy.deepcopy(rule.body), headers
        for route in (*self._custom_routes, *self._routes):
            if route.api != request.api or not _method_matches(route.method, request.method):
                continue
            if match := request.match(route.pattern):
                reply = route.handler(request, match)
                if isinstance(reply, Awaitable):
                    reply = await reply
                status, body = reply
                return status, body, {}
        self.unhandled.append(request)
        return 404, {"code": 0, "message": "404: Not Found"}, {}

    def _builtin_routes(self) -> list[_Route]:
        channel, message = r"(?P<channel>\d+)", r"(?P<message>\d+)"
        webhook = r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)"
        table: list[tuple[str, str, Handler]] = [
            ("GET", r"/users/@me", self._get_me),
            ("GET", r"/users/(?P<user>\d+)", self._get_user),
            ("GET", r"/(?:oauth2/)?applications/@me", self._get_application),
            ("GET", r"/gateway(?:/bot)?", self._get_gateway),
            ("POST", r"/users/@me/channels", self._create_dm),
            ("GET", rf"/channels/{channel}", self._get_channel),
            ("GET", rf"/channels/{channel}/messages", self._list_messages),
            ("POST", rf"/channels/{channel}/messages", self._create_message),
            ("POST", rf"/channels/{channel}/messages/bulk-delete", self._bulk_delete),
            ("GET", rf"/channels/{channel}/messages/pins", self._list_pins),
            ("PUT", rf"/channels/{channel}/(?:messages/)?pins/{message}", self._pin),
            ("DELETE", rf"/channels/{channel}/(?:messages/)?pins/{message}", self._pin),
            ("GET", rf"/channels/{channel}/messages/{message}", self._get_message),
            ("PATCH", rf"/channels/{channel}/messages/{message}", self._edit_message),
            ("DELETE", rf"/channels/{channel}/messages/{message}", self._delete_message),
            ("PUT", rf"/channels/{channel}/messages/{message}/reactions/[^/]+/@me", self._react),
            ("DELETE", rf"/channels/{channel}/messages/{message}/reactions/[^/]+/@me", self._react),
            ("POST", rf"/channels/{channel}/typing", self._no_content),
            ("GET", r"/guilds/(?P<guild>\d+)/members/(?P<user>\d+)", self._get_member),
            ("POST", r"/interactions/(?P<interaction>\d+)/(?P<token>[^/]+)/callback", self._callback),
            ("POST", webhook, self._followup),
            ("GET", rf"{webhook}/messages/(?P<message>@original|\d+)", self._webhook_message),
            ("PATCH", rf"{webhook}/messages/(?P<message>@original|\d+)", self._webhook_message),
            ("DELETE", rf"{webhook}/messages/(?P<message>@original|\d+)", self._webhook_message),
            ("GET", r"/applications/(?P<app>\d+)(?:/guilds/(?P<guild>\d+))?/commands", self._commands),
            ("PUT", r"/applications/(?P<app>\d+)(?:/guilds/(?P<guild>\d+))?/commands", self._commands),
            ("POST", r"/applications/(?P<app>\d+)(?:/guilds/(?P<guild>\d+))?/commands", self._commands),
        ]
        routes = [_Route(method, re.compile(pattern), handler) for method, pattern, handler in table]
        routes.append(_Route("GET", re.compile(r"/attachments/.+"), self._cdn, api=False))
        return routes

    # --- users, application, gateway ------------------------------------------------------------

    def _get_me(self, _request: RecordedRequest, _match: re.Match[str]) -> Reply:
        return 200, {**self.bot_user, "verified": True, "mfa_enabled": False, "flags": 0, "locale": "en-US"}

    def _get_user(self, _request: RecordedRequest, match: re.Match[str]) -> Reply:
        user = self.users.get(int(match["user"]))
        return (200, user) if user else (404, UNKNOWN_USER)

    def _get_member(self, _request: RecordedRequest, match: re.Match[str]) -> Reply:
        member = self.members.get((int(match["guild"]), int(match["user"])))
        return (200, member) if member else (404, UNKNOWN_MEMBER)

    def _get_application(self, _request: RecordedRequest, _match: re.Match[str]) -> Reply:
        return 200, {
            "id": str(self.application_id),
            "name": self.bot_user["username"],
            "icon": None,
            "description": "",
            "summary": "",
            "rpc_origins": [],
            "bot_public": False,
            "bot_require_code_grant": False,
            "bot": self.bot_user,
            "owner": user_payload(OWNER_ID, "owner"),
            "team": None,
            "verify_key": "0" * 64,
            "flags": 0,
            "interactions_endpoint_url": None,  # set, discord.py warns that no interactions will arrive
        }

    def _get_gateway(self, _request: RecordedRequest, _match: re.Match[str]) -> Reply:
        session = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
        return 200, {"url": "wss://gateway.invalid", "shards": 1, "session_start_limit": session}

    def _no_content(self, _request: RecordedRequest, _match: re.Match[str]) -> Reply:
        return 204, None

    def _cdn(self, request: RecordedRequest, _match: re.Match[str]) -> Reply:
        blob = self._blobs.get(request.path)
        return (200, blob) if blob else (404, {"code": 0, "message": "404: Not Found"})

    # --- channels and messages ------------------------------------------------------------------

    def _create_dm(self, request: RecordedRequest, _match: re.Match[str]) -> Reply:
        recipient_id = int((request.json or {})["recipient_id"])
        channel_id = self._dm_by_user.get(recipient_id)
        if channel_id is None:
            channel_id = new_snowflake()
            recipient = self.users.get(recipient_id) or user_payload(recipient_id, f"user{recipient_id}")
            self.add_channel(dm_channel_payload(channel_id, recipient))
        return 200, self.channels[channel_id]

    def _get_channel(self, _request: RecordedRequest, match: re.Match[str]) -> Reply:
        channel = self.channels.get(int(match["channel"]))
        return (200, channel) if channel else (404, UNKNOWN_CHANNEL)

    def _list_messages(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        channel_id = int(match["channel"])
        if channel_id not in self.channels:
            return 404, UNKNOWN_CHANNEL
        ordered = self.channel_messages(channel_id)  # oldest first
        limit = max(1, min(100, int(request.query.get("limit", 50))))
        query = request.query
        if "around" in query:
            around = int(query["around"])
            older = [m for m in ordered if int(m["id"]) < around][-(limit // 2) :] if limit > 1 else []
            rest = [m for m in ordered if int(m["id"]) >= around][: limit - len(older)]
            chosen = older + rest
        elif "after" in query:
            chosen = [m for m in ordered if int(m["id"]) > int(query["after"])][:limit]
        elif "before" in query:
            chosen = [m for m in ordered if int(m["id"]) < int(query["before"])][-limit:]
        else:
            chosen = ordered[-limit:]
        return 200, list(reversed(chosen))  # Discord answers newest first, whatever the direction

    def _list_pins(self, _request: RecordedRequest, match: re.Match[str]) -> Reply:
        channel_id = int(match["channel"])
        if channel_id not in self.channels:
            return 404, UNKNOWN_CHANNEL
        pinned = [m for m in reversed(self.channel_messages(channel_id)) if m.get("pinned")]
        items = [{"pinned_at": m["timestamp"], "message": m} for m in pinned]
        return 200, {"items": items, "has_more": False}

    def _check_body(
        self, body: Mapping[str, Any], files: Sequence[RecordedFile], *, new: bool
    ) -> JSON | None:
        content = body.get("content") or ""
        if len(content) > 2000:
            return CONTENT_TOO_LONG
        has_any = content or body.get("embeds") or body.get("components") or files or body.get("sticker_ids")
        if new and not has_any and not body.get("poll"):
            return EMPTY_MESSAGE
        return None

    def _new_message(
        self,
        channel_id: int,
        body: Mapping[str, Any],
        files: Sequence[RecordedFile],
        *,
        interaction: Mapping[str, Any] | None = None,
        flags: int | None = None,
    ) -> JSON:
        attachments = [
            self.add_attachment(f.data, f.filename, f.content_type, channel_id=channel_id) for f in files
        ]
        extra: JSON = {}
        if body.get("nonce") is not None:
            extra["nonce"] = body["nonce"]
        if reference := body.get("message_reference"):
            extra["message_reference"] = {
                "type": reference.get("type", 0),
                "message_id": str(reference["message_id"]),
                "channel_id": str(reference.get("channel_id") or channel_id),
            }
        if interaction is not None:
            invoker = interaction.get("member", {}).get("user") or interaction.get("user")
            extra["webhook_id"] = str(self.application_id)
            extra["application_id"] = str(self.application_id)
            extra["interaction_metadata"] = {
                "id": interaction["id"],
                "type": interaction["type"],
                "user": invoker,
                "authorizing_integration_owners": interaction.get("authorizing_integration_owners", {}),
            }
        return message_payload(
            channel_id=channel_id,
            author=self.bot_user,
            content=body.get("content") or "",
            attachments=attachments,
            embeds=body.get("embeds") or [],
            components=body.get("components") or [],
            flags=int(body.get("flags") or 0) if flags is None else flags,
            message_type=19 if reference else 0,
            tts=bool(body.get("tts")),
            **extra,
        )

    def _apply_edit(self, message: JSON, body: Mapping[str, Any], files: Sequence[RecordedFile]) -> None:
        for key in ("content", "embeds", "components"):
            if key in body:
                message[key] = body[key] if body[key] is not None else ("" if key == "content" else [])
        if "flags" in body and body["flags"] is not None:
            message["flags"] = (int(message.get("flags", 0)) & (EPHEMERAL | LOADING)) | int(body["flags"])
        if "attachments" in body:
            keep = {str(a.get("id")) for a in body["attachments"] or []}
            message["attachments"] = [a for a in message.get("attachments", []) if a["id"] in keep]
        channel_id = int(message["channel_id"])
        message.setdefault("attachments", []).extend(
            self.add_attachment(f.data, f.filename, f.content_type, channel_id=channel_id) for f in files
        )
        message["edited_timestamp"] = datetime.now(UTC).isoformat()

    def _stored(self, match: re.Match[str]) -> JSON | None:
        return self.messages.get(int(match["channel"]), {}).get(int(match["message"]))

    def _create_message(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        channel_id = int(match["channel"])
        if channel_id not in self.channels:
            return 404, UNKNOWN_CHANNEL
        body = request.json or {}
        if error := self._check_body(body, request.files, new=True):
            return 400, error
        message = self._new_message(channel_id, body, request.files)
        self.messages[channel_id][int(message["id"])] = message
        return 200, message

    def _get_message(self, _request: RecordedRequest, match: re.Match[str]) -> Reply:
        message = self._stored(match)
        return (200, message) if message else (404, UNKNOWN_MESSAGE)

    def _edit_message(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        message = self._stored(match)
        if message is None:
            return 404, UNKNOWN_MESSAGE
        body = request.json or {}
        if message["author"]["id"] != self.bot_user["id"] and set(body) - {"flags"}:
            return 403, NOT_AUTHOR
        if error := self._check_body(body, request.files, new=False):
            return 400, error
        self._apply_edit(message, body, request.files)
        return 200, message

    def _delete_message(self, _request: RecordedRequest, match: re.Match[str]) -> Reply:
        if self._stored(match) is None:
            return 404, UNKNOWN_MESSAGE
        del self.messages[int(match["channel"])][int(match["message"])]
        return 204, None

    def _bulk_delete(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        stored = self.messages.get(int(match["channel"]))
        if stored is None:
            return 404, UNKNOWN_CHANNEL
        for message_id in (request.json or {}).get("messages", []):
            stored.pop(int(message_id), None)
        return 204, None

    def _pin(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        message = self._stored(match)
        if message is None:
            return 404, UNKNOWN_MESSAGE
        permissions = self.bot_permissions_in(int(match["channel"]))
        if permissions is not None and not permissions & PIN_MESSAGES:
            return 403, MISSING_PERMISSIONS  # Manage Messages alone no longer pins (2026-02-23)
        message["pinned"] = request.method == "PUT"
        return 204, None

    def _react(self, _request: RecordedRequest, match: re.Match[str]) -> Reply:
        return (204, None) if self._stored(match) else (404, UNKNOWN_MESSAGE)

    # --- interactions ---------------------------------------------------------------------------

    def _keep(self, channel_id: int, message: JSON) -> None:
        if int(message.get("flags", 0)) & EPHEMERAL:  # only its recipient sees it: not in the channel
            self.ephemeral_messages[int(message["id"])] = message
        else:
            self.messages.setdefault(channel_id, {})[int(message["id"])] = message

    def _interaction_by_token(self, token: str) -> JSON | None:
        return next((i for i in self.interactions.values() if i["token"] == token), None)

    def _callback(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        interaction_id, token = int(match["interaction"]), match["token"]
        interaction = self.interactions.get(interaction_id)
        if interaction is None or interaction["token"] != token:
            return 404, UNKNOWN_INTERACTION
        if interaction_id in self._acknowledged:
            return 400, ALREADY_ACKNOWLEDGED
        dispatched = self.dispatched_at.get(interaction_id)
        late = dispatched is not None and self.interaction_deadline is not None
        if late and asyncio.get_running_loop().time() - dispatched > self.interaction_deadline:
            return 404, UNKNOWN_INTERACTION
        body = request.json or {}
        kind, data = body.get("type"), body.get("data") or {}
        if kind in (4, 7) and (error := self._check_body(data, request.files, new=kind == 4)):
            return 400, error
        self._acknowledged.add(interaction_id)
        channel_id = int(interaction["channel_id"])
        flags = int(data.get("flags") or 0)
        message: JSON | None = None
        if kind == 4:  # CHANNEL_MESSAGE_WITH_SOURCE
            message = self._new_message(channel_id, data, request.files, interaction=interaction)
        elif kind == 5:  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE: a "thinking..." message
            message = self._new_message(
                channel_id, {}, [], interaction=interaction, flags=(flags & EPHEMERAL) | LOADING
            )
        elif kind in (6, 7) and "message" in interaction:  # (DEFERRED_)UPDATE_MESSAGE of the clicked message
            clicked = interaction["message"]
            message = self.find_message(int(clicked["id"])) or copy.deepcopy(clicked)
            if kind == 7:
                self._apply_edit(message, data, request.files)
        if message is not None:
            self.original_responses[token] = message
            self._keep(channel_id, message)
        if "with_response" not in request.query:
            return 204, None
        callback: JSON = {
            "interaction": {
                "id": str(interaction_id),
                "type": interaction["type"],
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(flags & EPHEMERAL),
            }
        }
        if message is not None:
            callback["interaction"]["response_message_id"] = message["id"]
            if kind in (4, 5, 7):
                callback["resource"] = {"type": kind, "message": message}
        return 200, callback

    def _followup(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        interaction = self._interaction_by_token(match["token"])
        if interaction is None or int(match["app"]) != self.application_id:
            return 404, UNKNOWN_WEBHOOK
        if int(interaction["id"]) not in self._acknowledged:
            return 404, UNKNOWN_WEBHOOK  # a follow-up before the interaction is answered
        body = request.json or {}
        if error := self._check_body(body, request.files, new=True):
            return 400, error
        channel_id = int(interaction["channel_id"])
        original = self.original_responses.get(match["token"])
        if original is not None and int(original.get("flags", 0)) & LOADING:
            # The first follow-up after a defer edits the "thinking" message and keeps its visibility.
            self._apply_edit(original, {k: v for k, v in body.items() if k != "flags"}, request.files)
            original["flags"] = int(original["flags"]) & ~LOADING
            message = original
        else:
            message = self._new_message(channel_id, body, request.files, interaction=interaction)
        self._keep(channel_id, message)
        if request.query.get("wait", "").lower() not in ("true", "1"):
            return 204, None
        return 200, message

    def _webhook_message(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        token, message_id = match["token"], match["message"]
        if self._interaction_by_token(token) is None or int(match["app"]) != self.application_id:
            return 404, UNKNOWN_WEBHOOK
        if message_id == "@original":
            message = self.original_responses.get(token)
        else:
            message = self.find_message(int(message_id))
        if message is None:
            return 404, UNKNOWN_MESSAGE
        if request.method == "GET":
            return 200, message
        if request.method == "DELETE":
            self.messages.get(int(message["channel_id"]), {}).pop(int(message["id"]), None)
            return 204, None
        body = request.json or {}
        if error := self._check_body(body, request.files, new=False):
            return 400, error
        self._apply_edit(message, body, request.files)
        message["flags"] = int(message.get("flags", 0)) & ~LOADING
        return 200, message

    def _commands(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        if int(match["app"]) != self.application_id:
            return 403, MISSING_ACCESS
        scope = int(match["guild"]) if match["guild"] else None
        if request.method == "GET":
            return 200, self.commands.get(scope, [])
        existing = {c["name"]: c for c in self.commands.get(scope, [])}
        incoming = request.json if request.method == "PUT" else [request.json]
        synced = []
        for command in incoming or []:
            old = existing.get(command["name"])
            synced.append(
                {
                    "id": old["id"] if old else str(new_snowflake()),
                    "application_id": str(self.application_id),
                    "version": str(new_snowflake()),
                    "default_member_permissions": None,
                    "type": 1,
                    "description": "",
                    "options": [],
                    **({"guild_id": str(scope)} if scope else {}),
                    **command,
                }
            )
        if request.method == "PUT":
            self.commands[scope] = synced
        else:
            self.commands[scope] = [
                *(c for c in existing.values() if c["name"] != synced[0]["name"]),
                synced[0],
            ]
        return 200, synced if request.method == "PUT" else synced[0]


# --------------------------------------------------------------------------------------------------
# The bot side
# --------------------------------------------------------------------------------------------------


def default_intents() -> discord.Intents:
    """guilds, guild_messages, dm_messages, message_content (no privileged ``members``)."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.dm_messages = True
    intents.message_content = True
    return intents


class _ErrorCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class BotHarness:
    """A logged-in bot wired to a :class:`FakeDiscord`, with the :class:`World`'s guild cached."""

    def __init__(
        self, bot: commands.Bot, fake: FakeDiscord, world: World, errors: list[logging.LogRecord]
    ) -> None:
        self.bot = bot
        self.fake = fake
        self.world = world
        self.errors = errors
        """ERROR log records from the ``discord`` loggers: exceptions discord.py caught in handlers."""

    @property
    def state(self) -> Any:
        """``bot._connection`` (discord's ConnectionState)."""
        return self.bot._connection

    @property
    def guild(self) -> discord.Guild:
        guild = self.bot.get_guild(self.world.guild_id)
        assert guild is not None
        return guild

    def text_channel(self, channel_id: int) -> discord.TextChannel:
        channel = self.guild.get_channel(channel_id)
        assert isinstance(channel, discord.TextChannel), channel
        return channel

    @property
    def exceptions(self) -> list[BaseException]:
        """The exceptions in :attr:`errors`, unwrapped from ``CommandInvokeError`` (``.original``)."""
        found = [r.exc_info[1] for r in self.errors if r.exc_info and r.exc_info[1] is not None]
        return [getattr(e, "original", None) or e for e in found]

    def assert_no_errors(self) -> None:
        if self.errors:
            details = "\n".join(logging.Formatter().format(r) for r in self.errors)
            raise AssertionError(f"discord.py logged {len(self.errors)} error(s):\n{details}")

    def dispatch_message(self, payload: Mapping[str, Any]) -> None:
        """Deliver a MESSAGE_CREATE (stored in the fake first, so the bot can delete/edit/pin it). Without
        the message_content intent it arrives as Discord would send it (see :meth:`as_delivered`)."""
        self.fake.add_message(payload)
        self.state.parse_message_create(self.as_delivered(payload))

    def as_delivered(self, payload: Mapping[str, Any]) -> JSON:
        """``payload`` as the gateway delivers it to this bot: without the message_content intent, a guild
        message that is neither the bot's own nor mentions it has empty content, embeds, attachments,
        components and poll (Discord strips them; discord.py does not)."""
        delivered = copy.deepcopy(dict(payload))
        bot_id = str(self.world.application_id)
        exempt = (
            "guild_id" not in delivered
            or delivered["author"]["id"] == bot_id
            or any(user["id"] == bot_id for user in delivered.get("mentions", []))
        )
        if not self.bot.intents.message_content and not exempt:
            delivered.update(content="", embeds=[], attachments=[], components=[])
            delivered.pop("poll", None)
        return delivered

    def dispatch_interaction(self, payload: Mapping[str, Any]) -> None:
        """Deliver an INTERACTION_CREATE (registered with the fake first, so it accepts the callbacks)."""
        self.fake.interactions[int(payload["id"])] = copy.deepcopy(dict(payload))
        self.fake.dispatched_at[int(payload["id"])] = asyncio.get_running_loop().time()
        self.state.parse_interaction_create(copy.deepcopy(dict(payload)))

    async def idle(self, timeout: float = 5.0) -> None:
        """Wait until every task discord.py started to handle an event has finished (listeners, app
        commands, view items, modals, including tasks they lead discord.py to start)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        current = asyncio.current_task()
        while True:
            await asyncio.sleep(0)
            pending = [
                task
                for task in asyncio.all_tasks()
                if task is not current
                and not task.done()
                and task.get_name().startswith(_HANDLER_TASK_PREFIXES)
            ]
            if not pending:
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                names = sorted(task.get_name() for task in pending)
                raise TimeoutError(f"handlers still running after {timeout}s: {names}")
            await asyncio.wait(pending, timeout=remaining)


@contextlib.asynccontextmanager
async def running_bot(
    fake: FakeDiscord,
    *,
    world: World | None = None,
    intents: discord.Intents | None = None,
    bot_factory: Callable[[discord.Intents], commands.Bot] | None = None,
    cache_members: bool = True,
    ready: bool = True,
) -> AsyncIterator[BotHarness]:
    """A ``commands.Bot`` logged in against ``fake`` (no gateway), with the world's guild in its cache.

    Points ``discord.http.Route.BASE`` at the fake for the duration; registers the world's channels, DM
    channels, users and members with the fake; logs in (``GET /users/@me``, ``GET
    /oauth2/applications/@me``, then the bot's ``setup_hook``); adds the guild (see the module docstring
    for why not ``parse_guild_create``); with ``cache_members`` adds the world's members to the member
    cache; with ``ready`` marks the bot ready and dispatches ``on_ready``. ``bot_factory(intents)`` builds
    the project's own Bot class instead of a plain ``commands.Bot(command_prefix=when_mentioned)``.
    Use it twice on the same fake to "restart" the bot."""
    world = world or World()
    intents = intents or default_intents()
    for person in world.people:
        fake.add_user(person.user_payload())
        if person.dm_channel_id:
            fake.add_channel(world.dm_channel_payload(person))
    for channel in world.channel_payloads():
        if int(channel["id"]) not in fake.channels:
            fake.add_channel(channel)
    for member in world.member_payloads():
        fake.add_member(world.guild_id, member)
    bot_world = world
    fake.bot_permissions_in = lambda channel_id: (
        bot_world.permissions_in(bot_world.bot, channel_id)
        if bot_world.is_guild_channel(channel_id)
        else None
    )

    collector = _ErrorCollector()
    discord_logger = logging.getLogger("discord")
    discord_logger.addHandler(collector)
    previous_base = discord.http.Route.BASE
    discord.http.Route.BASE = fake.api_base
    if bot_factory is not None:
        bot = bot_factory(intents)
    else:
        bot = commands.Bot(command_prefix=commands.when_mentioned, intents=intents)
    harness = BotHarness(bot, fake, world, collector.records)
    try:
        await bot.login("fake-token")
        state = bot._connection
        guild = state._add_guild_from_data(world.guild_payload())
        if cache_members and not intents.members:
            for member in world.member_payloads():
                if guild.get_member(int(member["user"]["id"])) is None:
                    guild._add_member(discord.Member(data=member, guild=guild, state=state))
        if ready:
            state.call_handlers("ready")
            state.dispatch("ready")
        yield harness
    finally:
        try:
            with contextlib.suppress(TimeoutError):
                await harness.idle(timeout=1.0)
            for task in asyncio.all_tasks():
                if task.get_name().startswith(_HANDLER_TASK_PREFIXES) and not task.done():
                    task.cancel()
            await bot.close()
        finally:
            discord.http.Route.BASE = previous_base
            discord_logger.removeHandler(collector)
