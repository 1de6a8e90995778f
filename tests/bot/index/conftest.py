"""Fixtures of the download tests (test_downloading.py, test_download_thread.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.bot.index.picture_server import PictureServer


@pytest.fixture(scope="module")
def server() -> Iterator[PictureServer]:
    running = PictureServer()
    running.start()
    yield running
    running.stop()


@pytest.fixture
def unique() -> str:
    """A fresh path segment, so that one test's hit counts are not another's."""
    return uuid.uuid4().hex[:12]
