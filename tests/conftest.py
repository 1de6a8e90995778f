"""Shared fixtures for the whole test suite."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import ENV_PREFIX, Settings, load_settings
from bot.logs import PAYLOAD_LOGGERS
from bot.tickets.store import TicketStore

# Settings the environment could change (bot.config.load_settings): a developer's shell that
# exports one must not change what the tests check. A test that means to set one uses monkeypatch.
# Removed before any test module is imported (some read the settings then).
for _name in [name for name in os.environ if name.startswith(ENV_PREFIX) or name == "DISCORD_TOKEN"]:
    os.environ.pop(_name)


@pytest.fixture(autouse=True)
def _logging_put_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line's main() sets up logging (bot.logs) for the process: a test calling it must
    not change what later tests log (tests/discord/cogs/test_privacy.py reads every DEBUG line)."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    for name in PAYLOAD_LOGGERS:
        monkeypatch.setattr(logging.getLogger(name), "level", logging.getLogger(name).level)


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
