"""Fixtures for driving discord.py against :class:`~tests.discord.fake_discord.FakeDiscord`.

* ``world`` - the fixed cast (guild, roles, channels, people); see :class:`World`.
* ``fake`` - a started :class:`FakeDiscord`; fails the test at teardown if the bot called a route the fake
  does not know (``fake.unhandled``).
* ``harness`` - a :class:`BotHarness`: a ``commands.Bot`` logged in against ``fake`` with the world's
  guild cached and ``on_ready`` dispatched. Fails the test at teardown if discord.py logged errors from
  handlers (``harness.errors``; clear it after asserting on an expected one).

To test the project's own Bot class, or two bot lifetimes on one fake (a "restart"), use
``running_bot(fake, world=world, bot_factory=...)`` directly::

    async with running_bot(fake, world=world) as first:
        ...
    async with running_bot(fake, world=world) as second:
        ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.discord.fake_discord import BotHarness, FakeDiscord, World, running_bot


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
async def fake(world: World) -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(application_id=world.application_id) as server:
        yield server
        server.assert_all_handled()


@pytest.fixture
async def harness(fake: FakeDiscord, world: World) -> AsyncIterator[BotHarness]:
    async with running_bot(fake, world=world) as bot_harness:
        yield bot_harness
        bot_harness.assert_no_errors()
