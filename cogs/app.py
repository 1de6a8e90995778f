"""The Discord bot: intents, mentions, cogs, persistent buttons, command sync, start-up work.

``python -m bot run`` calls :func:`run`. Choices:

* minimal intents: guilds and direct messages; guild messages and the privileged Message Content
  intent only when a privacy channel is configured (without it, guild messages arrive with empty
  attachments);
* ``AllowedMentions`` never pings everyone, here or roles; only the person a notice is for;
* the REST base URL (and so interaction callbacks, which discord.py sends through the same
  ``Route``) and the gateway URL come from the settings, so the bot can run behind a proxy;
* buttons are ``DynamicItem``s with stable ``custom_id``s: they keep working after a restart.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import discord
import discord.gateway
import discord.http
import yarl
from discord import app_commands
from discord.ext import commands

from bot import messages
from bot.config import Settings
from bot.desk import Desk
from bot.index.search import HashIndex
from bot.tickets.store import TicketStore
from cogs.intake import Intake, PanelButton, RequestRemovalButton
from cogs.relay import Relay
from cogs.review import Review, TicketButton

log = logging.getLogger(__name__)

RELAY_EVERY_SECONDS = 5
PURGE_EVERY_SECONDS = 24 * 3600


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


class RemovalDeskBot(commands.Bot):
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
        self.settings = settings
        self.desk = desk
        self.relay = Relay(self)
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
        text = messages.SOMETHING_WENT_WRONG
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True)
        else:
            await interaction.response.send_message(text, ephemeral=True)

    async def setup_hook(self) -> None:
        await self.relay.bookkeeping.migrate()
        await self.add_cog(Intake(self))
        await self.add_cog(Review(self))
        self.add_dynamic_items(RequestRemovalButton, PanelButton, TicketButton)
        if self.sync_on_start:
            await self.sync_commands()

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

    async def on_ready(self) -> None:
        if self._started:
            return  # on_ready fires again after reconnects
        self._started = True
        await self.start_up()

    async def start_up(self) -> None:
        """Work owed since the last run: the privacy channel's backlog and unrelayed events."""
        intake = self.get_cog("Intake")
        if isinstance(intake, Intake):
            handled = await intake.process_backlog()
            log.info("handled %d message(s) posted while the bot was offline", handled)
        await self.relay.run_once()
        self._background.append(asyncio.create_task(self._every(RELAY_EVERY_SECONDS, self.relay.run_once)))
        self._background.append(
            asyncio.create_task(self._every(PURGE_EVERY_SECONDS, self.desk.store.purge_expired))
        )

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


async def run_bot(settings: Settings, *, sync_on_start: bool = True) -> None:
    point_at(settings.discord.api_base_url)
    index = HashIndex(Path(settings.discord.index).expanduser())
    # Map the search tables while the bot logs in, so the first queries do not pay page faults.
    warming = asyncio.create_task(asyncio.to_thread(index.warm))
    store = await TicketStore.open(settings.tickets.database_path, settings.tickets)
    context = multiprocessing.get_context("forkserver")
    executor = ProcessPoolExecutor(max_workers=settings.discord.hash_workers, mp_context=context)
    try:
        desk = Desk(settings, index, store, executor)
        async with RemovalDeskBot(settings, desk, sync_on_start=sync_on_start) as bot:
            await bot.start(settings.discord.token)
    finally:
        await warming
        executor.shutdown(cancel_futures=True)
        await store.close()
