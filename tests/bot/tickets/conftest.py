"""Fixtures for the ticket tests: a fake clock, a real store on a temporary file, entry/query helpers.

The helpers ``entry`` and ``query`` are plain functions (import them from this module) so that
tests can build requests inline; the store fixtures open real SQLite databases under ``tmp_path``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import Settings
from bot.tickets.models import MatchedEntry, StoredQuery
from bot.tickets.store import TicketStore

START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


class FakeClock:
    """A clock that only moves when told: ``clock()`` is the current UTC time, ``advance`` moves it."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment


def stamp(moment: datetime) -> str:
    """The store's timestamp format (UTC, fixed width), for comparing with stored values."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _hex(seed: str, digits: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:digits]


_DEFAULT_URL = object()


def entry(key: str, url: str | object | None = _DEFAULT_URL, **overrides: object) -> MatchedEntry:
    """A matched dataset entry; its hashes derive from key and url, so equal inputs are equal entries."""
    resolved = f"https://images.example.org/{key}.jpg" if url is _DEFAULT_URL else url
    assert resolved is None or isinstance(resolved, str)
    values: dict[str, object] = {
        "key": key,
        "url": resolved,
        "caption": f"caption of {key}",
        "entry_id": f"0/{int(_hex(key, 4), 16)}",
        "phash": _hex(f"phash:{key}:{resolved}", 16),
        "pdq": _hex(f"pdq:{key}:{resolved}", 64),
        "quality": 90,
        "pdq_distance": 3,
        "phash_distance": 2,
        "variant": "full",
    }
    values.update(overrides)
    return MatchedEntry(**values)  # type: ignore[arg-type]


def query(seed: str = "query") -> StoredQuery:
    """A query's hashes in two variants, derived from ``seed`` (distinct seeds, distinct hashes)."""
    return StoredQuery(
        variants=("full", "center"),
        phash=(_hex(f"qp1:{seed}", 16), _hex(f"qp2:{seed}", 16)),
        pdq=(_hex(f"qd1:{seed}", 64), _hex(f"qd2:{seed}", 64)),
        quality=77,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "tickets.sqlite3"


@pytest.fixture
async def store(db_path: Path, settings: Settings, clock: FakeClock) -> AsyncIterator[TicketStore]:
    opened = await TicketStore.open(db_path, settings.tickets, clock=clock)
    try:
        yield opened
    finally:
        await opened.close()


OpenStore = Callable[..., Awaitable[TicketStore]]


@pytest.fixture
async def open_store(db_path: Path, settings: Settings, clock: FakeClock) -> AsyncIterator[OpenStore]:
    """Open more stores (another connection, as another process would): ``await open_store(**overrides)``.

    Keyword arguments replace fields of ``settings.tickets``; ``path=`` picks another file. Every
    store opened here is closed after the test.
    """
    opened: list[TicketStore] = []

    async def _open(path: Path | None = None, **overrides: object) -> TicketStore:
        ticket_settings = dataclasses.replace(settings.tickets, **overrides)  # type: ignore[arg-type]
        new = await TicketStore.open(path or db_path, ticket_settings, clock=clock)
        opened.append(new)
        return new

    yield _open
    for each in reversed(opened):
        await each.close()
