"""The Discord bot put together: its cogs, persistent buttons, start-up work, and running it.

``python -m bot run`` calls :func:`run_bot`. Buttons are ``DynamicItem``s with stable
``custom_id``s: they keep working after a restart. What the cogs rely on is in :mod:`cogs.host`.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import discord

from bot.config import Settings
from bot.desk import Desk
from bot.health_server import serving_health
from bot.index.search import Searchable
from bot.index.serving import serving_off_loop, warm
from bot.tickets.store import TicketStore
from cogs.doctor_checks import check_discord
from cogs.host import DeskBot, intents_for, point_at
from cogs.intake import Intake
from cogs.intake_views import ForgetButton, PanelButton, RequestRemovalButton
from cogs.locales import Translator
from cogs.relay import Relay
from cogs.review import Review, TicketButton

__all__ = ["RemovalDeskBot", "check_discord", "intents_for", "point_at", "run", "run_bot"]

log = logging.getLogger(__name__)

RELAY_EVERY_SECONDS = 5
PURGE_EVERY_SECONDS = 24 * 3600


class RemovalDeskBot(DeskBot):
    relay: Relay

    def __init__(self, settings: Settings, desk: Desk, *, sync_on_start: bool = True, **options: Any) -> None:
        super().__init__(settings, desk, sync_on_start=sync_on_start, **options)
        self.relay = Relay(self)
        desk.metrics.delivery_queue = self.relay.bookkeeping.queue_depth

    async def setup_hook(self) -> None:
        await self.relay.bookkeeping.migrate()
        await self.add_cog(Intake(self))
        await self.add_cog(Review(self))
        self.add_dynamic_items(RequestRemovalButton, PanelButton, ForgetButton, TicketButton)
        await self.tree.set_translator(Translator())  # the commands' names in German too
        if self.sync_on_start:
            await self.sync_commands()

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


async def run_bot(settings: Settings, *, sync_on_start: bool = True) -> None:
    point_at(settings.discord.api_base_url)
    # One index folder, a folder of parts, or those parts on a Dask cluster ([discord] dask):
    # opened (and a Dask client closed) in a thread, as every search of a check runs in one.
    async with serving_off_loop(Path(settings.discord.index).expanduser(), settings.discord.dask) as index:
        await _serve(settings, index, sync_on_start=sync_on_start)


async def _serve(settings: Settings, index: Searchable, *, sync_on_start: bool) -> None:
    # Map the search tables while the bot logs in, so the first queries do not pay page faults.
    warming = asyncio.create_task(asyncio.to_thread(warm, index))
    store = await TicketStore.open(settings.tickets.database_path, settings.tickets)
    context = multiprocessing.get_context("forkserver")

    def hashing_pool() -> ProcessPoolExecutor:  # the desk makes a new one if a worker dies
        return ProcessPoolExecutor(max_workers=settings.discord.hash_workers, mp_context=context)

    desk = Desk(settings, index, store, None, executor_factory=hashing_pool)
    try:
        async with (
            RemovalDeskBot(settings, desk, sync_on_start=sync_on_start) as bot,
            serving_health(settings.health, desk, lambda: bot.is_ready() and not bot.is_closed()),
        ):
            await bot.start(settings.discord.token)
    finally:
        try:
            await warming
        except Exception as failed:  # a part unreachable while warming: its checks say so too
            log.warning("the index was not warmed: %s", failed)
        desk.close()
        await store.close()


def run(settings: Settings, *, sync_on_start: bool = True) -> int:
    """Run the bot until it is stopped; the exit code for ``python -m bot run``, with what to do
    about the two refusals Discord gives at login."""
    # bot.start() (unlike bot.run()) installs no log handler: the command line has installed ours
    # (bot.logs: [logging] level and format, discord.py's payload logging held back, the token
    # scrubbed), or nothing below WARNING would show, neither connection news nor relay retries.
    try:
        asyncio.run(run_bot(settings, sync_on_start=sync_on_start))
    except discord.LoginFailure:
        print("error: Discord refused the token (discord.token / DISCORD_TOKEN); reset it", file=sys.stderr)
        return 2
    except discord.PrivilegedIntentsRequired:
        print(
            "error: a privacy channel is set, so the bot needs the Message Content intent: turn it on "
            "in the Developer Portal (Bot > Privileged Gateway Intents)",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 0
    return 0
