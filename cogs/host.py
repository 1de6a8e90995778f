"""The bot as the cogs see it: intents, mentions, the desk, command sync, background work.

Choices:

* minimal intents: guilds and direct messages; guild messages and the privileged Message Content
  intent only when a privacy channel is configured (without it, guild messages arrive with empty
  attachments);
* ``AllowedMentions`` never pings everyone, here or roles; only the person a notice is for;
* discord.py's loggers that write payloads at DEBUG (``discord.http``: every request body and
  answer, so notes, ticket cards and DMs; ``discord.gateway``: every event, so people's ids beside
  their attachments' URLs and file names) are held at INFO, so a DEBUG log keeps none of it;
* the REST base URL (and so interaction callbacks, which discord.py sends through the same
  ``Route``) and the gateway URL come from the settings, so the bot can run behind a proxy.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Protocol

import discord
import discord.gateway
import discord.http
import yarl
from discord import app_commands
from discord.ext import commands

from bot import messages
from bot.config import Settings
from bot.desk import Desk

log = logging.getLogger(__name__)

# discord.py loggers whose DEBUG lines carry what people send (see the module docstring).
PAYLOAD_LOGGERS = ("discord.http", "discord.gateway")


def quiet_payload_loggers() -> None:
    """Hold :data:`PAYLOAD_LOGGERS` at INFO whatever the root level (a level set above INFO is kept).
    To debug Discord traffic, lower them by hand, knowing the log then holds people's data."""
    for name in PAYLOAD_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.INFO:
            logger.setLevel(logging.INFO)


class Relaying(Protocol):
    async def run_once(self) -> int:
        """Relay every audit event not relayed yet; return how many."""
        ...


def intents_for(settings: Settings) -> discord.Intents:
    intents = discord.Intents.none()
    intents.guilds = True
    intents.dm_messages = True  # pictures sent to the bot privately (DM content needs no privilege)
    if settings.discord.privacy_channel_id:
        intents.guild_messages = True
        intents.message_content = True
    return intents


def point_at(api_base_url: str) -> None:
    """Send every REST call (interaction callbacks included) to ``api_base_url``."""
    discord.http.Route.BASE = api_base_url.rstrip("/")


class DeskBot(commands.Bot):
    """What every cog may rely on: the desk (the core), the relay, command sync, background work.

    The cogs are typed against this class, and :class:`cogs.app.RemovalDeskBot` adds the cogs to
    it, so no cog imports the module that imports it."""

    relay: Relaying

    def __init__(self, settings: Settings, desk: Desk, *, sync_on_start: bool = True, **options: Any) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents_for(settings),
            allowed_mentions=discord.AllowedMentions(
                everyone=False, roles=False, users=True, replied_user=False
            ),
            help_command=None,
            **options,
        )
        quiet_payload_loggers()
        self.settings = settings
        self.desk = desk
        self.sync_on_start = sync_on_start
        self._background: list[asyncio.Task[None]] = []
        self._started = False
        if settings.discord.gateway_url:
            # discord.py connects a non-sharded client to this class attribute (and falls back to
            # it after an invalidated session); like Route.BASE it is process-wide.
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord.gateway_url)
        self.tree.on_error = self._on_app_command_error  # type: ignore[method-assign]

    async def _on_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """A refused check was already answered; anything else is a bug: log it, tell the person."""
        if isinstance(error, app_commands.CheckFailure):
            return
        log.error("app command %s failed", interaction.command and interaction.command.qualified_name,
                  exc_info=error)  # fmt: skip
        text = messages.text("something_went_wrong", interaction.locale.value)
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True)
        else:
            await interaction.response.send_message(text, ephemeral=True)

    async def sync_commands(self) -> int:
        """Sync slash commands to the configured guilds (at once), or globally if none."""
        guild_ids = self.settings.discord.guild_ids
        if not guild_ids:
            return len(await self.tree.sync())
        count = 0
        for guild_id in guild_ids:
            guild = discord.Object(id=int(guild_id))
            self.tree.copy_global_to(guild=guild)
            count = len(await self.tree.sync(guild=guild))
        return count

    async def _every(self, seconds: float, work: Any) -> None:
        while not self.is_closed():
            try:
                await work()
            except Exception:
                log.exception("background work %s failed; trying again later", work)
            await asyncio.sleep(seconds)

    async def close(self) -> None:
        for task in self._background:
            task.cancel()
        await super().close()


_LIVE_MODAL = "removal-desk: a live modal answers this submit"


class DeskModal(discord.ui.Modal):
    """A form the running bot knows. It marks the submit it receives, so :func:`lost_form` can tell
    a submit nobody will answer: discord.py drops a submit whose modal it does not know (one shown
    before a restart, or after the modal's timeout), and the person sees "interaction failed"."""

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        # discord.py starts the modal's task before the ``on_interaction`` listeners' (both from
        # the same INTERACTION_CREATE, in that order), and this runs in its first step.
        interaction.extras[_LIVE_MODAL] = True
        return True


async def lost_form(interaction: discord.Interaction, pattern: re.Pattern[str]) -> re.Match[str] | None:
    """For an ``on_interaction`` listener: the match of ``pattern`` on a modal submit's custom_id if
    no live :class:`DeskModal` took it (the bot restarted while the person was typing), else None."""
    if interaction.type is not discord.InteractionType.modal_submit:
        return None
    data: Any = interaction.data or {}
    custom_id = str(data.get("custom_id", ""))
    match = pattern.fullmatch(custom_id)
    if match is None:
        return None
    await asyncio.sleep(0)  # let a live modal's task take its first step
    if interaction.extras.get(_LIVE_MODAL) or interaction.response.is_done():
        return None
    return match


def submitted_texts(interaction: discord.Interaction) -> list[str]:
    """The values of a submitted form's text inputs, in order (what the payload itself carries)."""
    found: list[str] = []

    def walk(components: Any) -> None:
        for component in components or ():
            if component.get("type") == 4:
                found.append(str(component.get("value") or ""))
            walk(component.get("components"))
            if isinstance(component.get("component"), dict):
                walk([component["component"]])

    data: Any = interaction.data or {}
    walk(data.get("components"))
    return found


def desk_bot(interaction: discord.Interaction) -> DeskBot:
    """The bot an interaction arrived at (discord.py types it as any client)."""
    client = interaction.client
    assert isinstance(client, DeskBot), client
    return client
