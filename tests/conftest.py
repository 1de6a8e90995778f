"""Shared fixtures for the whole test suite."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import ENV_PREFIX, Settings, load_settings
from bot.tickets.store import TicketStore

# Settings the environment could change (bot.config.load_settings): a developer's shell that
# exports one must not change what the tests check. A test that means to set one uses monkeypatch.
# Removed before any test module is imported (some read the settings then).
for _name in [name for name in os.environ if name.startswith(ENV_PREFIX) or name == "DISCORD_TOKEN"]:
    os.environ.pop(_name)


@pytest.fixture
def settings() -> Settings:
    """The settings from bot/default.toml (no deployment files, no override file)."""
    return load_settings(with_deployment_files=False)


@pytest.fixture
async def store(tmp_path: Path, settings: Settings) -> AsyncIterator[TicketStore]:
    """A fresh ticket database in a temporary file."""
    opened = await TicketStore.open(tmp_path / "tickets.sqlite3", settings.tickets)
    try:
        yield opened
    finally:
        await opened.close()
