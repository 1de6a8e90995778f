"""Shared fixtures for the whole test suite."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.config import ENV_PREFIX, Settings, load_settings
from bot.logs import HANDLER_NAME, PAYLOAD_LOGGERS
from bot.tickets.store import TicketStore

# Settings the environment could change (bot.config.load_settings): a developer's shell that
# exports one must not change what the tests check. A test that means to set one uses monkeypatch.
# Removed before any test module is imported (some read the settings then).
for _name in [name for name in os.environ if name.startswith(ENV_PREFIX) or name == "DISCORD_TOKEN"]:
    os.environ.pop(_name)


# The logging state before any test ran: the command line's main() sets up logging for the process
# (bot.logs), and a test or a module-scoped fixture calling it must not change what later tests log
# (tests/discord/cogs/test_privacy.py reads every DEBUG line).
_PRISTINE_LEVELS = {name: logging.getLogger(name).level for name in ("", *PAYLOAD_LOGGERS)}


def _pristine_logging() -> None:
    root = logging.getLogger()
    for handler in [handler for handler in root.handlers if handler.get_name() == HANDLER_NAME]:
        root.removeHandler(handler)
    for name, level in _PRISTINE_LEVELS.items():
        logging.getLogger(name).setLevel(level)  # setLevel clears the loggers' isEnabledFor caches


@pytest.fixture(autouse=True)
def _logging_as_before_any_test() -> Iterator[None]:
    """Each test starts and ends with the logging the suite started with."""
    _pristine_logging()
    yield
    _pristine_logging()


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
