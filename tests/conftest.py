"""Shared fixtures for the whole test suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import Settings, load_settings
from bot.tickets.store import TicketStore


@pytest.fixture
def settings() -> Settings:
    """The settings from config/default.toml (no deployment files, no override file)."""
    return load_settings(with_deployment_files=False)


@pytest.fixture
async def store(tmp_path: Path, settings: Settings) -> AsyncIterator[TicketStore]:
    """A fresh ticket database in a temporary file."""
    opened = await TicketStore.open(tmp_path / "tickets.sqlite3", settings.tickets)
    try:
        yield opened
    finally:
        await opened.close()
