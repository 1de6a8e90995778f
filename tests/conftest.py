"""Shared fixtures for the whole test suite."""

from __future__ import annotations

import pytest

from bot.config import Settings, load_settings


@pytest.fixture
def settings() -> Settings:
    """The settings from config/default.toml (no deployment files, no override file)."""
    return load_settings(with_deployment_files=False)
