"""Fixtures for the project's cogs on the fake Discord: the real RemovalDeskBot, Desk and store.

* ``sample_index`` - a real index of three sample photographs (coffee, astronaut, chelsea), built
  once per session.
* ``desk_settings`` - the default settings with the ``[discord]`` section pointing at the fake
  world's guild, channels and maintainer role, and the sample index.
* ``desk`` - a :class:`bot.desk.Desk` over a fresh ticket store (tmp file) and the sample index;
  hashing runs in a one-thread executor here (``test_hashing_off_loop`` uses a real process pool).
* ``desk_harness`` - :func:`running_bot` with ``RemovalDeskBot`` (cogs, dynamic buttons, command
  sync, ``on_ready`` start-up work), failing the test if handlers logged errors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.desk import Desk
from bot.index.build import build_index
from bot.index.search import HashIndex
from bot.tickets.store import TicketStore
from cogs.app import RemovalDeskBot
from cogs.bookkeeping import DiscordBookkeeping
from tests.discord.fake_discord import BotHarness, FakeDiscord, World, running_bot

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
INDEXED = ("coffee.jpg", "astronaut.jpg", "chelsea.jpg")


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bot.config import load_settings

    source = tmp_path_factory.mktemp("dataset")
    for name in INDEXED:
        (source / name).write_bytes((SAMPLES / "dataset" / name).read_bytes())
    out = tmp_path_factory.mktemp("index") / "index"
    build_index([source], out, load_settings(), workers=1, show_progress=False)
    return out


@pytest.fixture
def desk_settings(settings: Settings, world: World, sample_index: Path, tmp_path: Path) -> Settings:
    return world.bot_settings(settings, sample_index, tmp_path / "tickets.sqlite3")


@pytest.fixture
def hash_executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=1) as executor:
        yield executor


@pytest.fixture
async def desk(desk_settings: Settings, hash_executor: ThreadPoolExecutor) -> AsyncIterator[Desk]:
    store = await TicketStore.open(desk_settings.tickets.database_path, desk_settings.tickets)
    try:
        yield Desk(desk_settings, HashIndex(Path(desk_settings.discord.index)), store, hash_executor)
    finally:
        await store.close()


@pytest.fixture
async def desk_harness(fake: FakeDiscord, world: World, desk: Desk) -> AsyncIterator[BotHarness]:
    async with running_bot(fake, world=world, bot_factory=bot_of(desk)) as harness:
        await harness.idle()
        yield harness
        harness.assert_no_errors()


def bot_of(desk: Desk) -> Callable[[Any], RemovalDeskBot]:
    """A ``running_bot`` factory for the project's bot over ``desk`` (the harness's intents are unused:
    the bot chooses its own from the settings)."""
    return lambda _intents: RemovalDeskBot(desk.settings, desk)


def bookkeeping(desk: Desk) -> DiscordBookkeeping:
    """The bot's own rows in the desk's database (its tables exist once a bot has started)."""
    return DiscordBookkeeping(desk.store.database)


def query_bytes(name: str) -> bytes:
    return (SAMPLES / "queries" / name).read_bytes()


async def settle(harness: BotHarness, timeout: float = 5.0) -> None:
    """Every handler task discord.py started has finished, button (DynamicItem) callbacks included."""
    await harness.idle(timeout)
