"""Backups of the ticket database: consistent while another process writes, whole or absent,
checked before they replace anything, and refused when made by a newer release."""

from __future__ import annotations

import multiprocessing
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import Settings
from bot.tickets.backup import BackupError, backup_database, restore_database
from bot.tickets.migrations import LATEST_VERSION, SchemaTooNewError
from bot.tickets.store import TicketStore
from tests.bot.tickets.conftest import entry, query


def _burst(path: str, count: int, ready: multiprocessing.synchronize.Event) -> None:
    """Another process writing tickets as fast as it can (a bot at work)."""
    import asyncio

    from bot.config import load_settings

    async def write() -> None:
        settings = load_settings(with_deployment_files=False).tickets
        async with await TicketStore.open(Path(path), settings) as store:
            ready.set()
            for number in range(count):
                await store.create_ticket(f"req-{number}", query(), [entry(f"k{number}")])

    asyncio.run(write())


def _count(path: Path) -> int:
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return int(db.execute("SELECT COUNT(*) FROM tickets").fetchone()[0])


async def test_a_backup_taken_during_a_burst_of_writes_opens_and_passes_its_check(
    tmp_path: Path, settings: Settings
) -> None:
    path = tmp_path / "tickets.sqlite3"
    async with await TicketStore.open(path, settings.tickets) as store:
        await store.create_ticket("first", query(), [entry("a")])
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    writer = context.Process(target=_burst, args=(str(path), 300, ready))
    writer.start()
    try:
        assert ready.wait(60)
        copies = [backup_database(path, tmp_path / f"backup-{n}.sqlite3") for n in range(3)]
    finally:
        writer.join(120)
    assert copies == [LATEST_VERSION] * 3
    counts = [_count(tmp_path / f"backup-{n}.sqlite3") for n in range(3)]
    assert counts == sorted(counts)  # each a consistent moment, later ones later
    assert 1 <= counts[0] <= counts[-1] <= 301
    assert not list(tmp_path.glob("*.tmp"))
    async with await TicketStore.open(tmp_path / "backup-2.sqlite3", settings.tickets) as restored:
        assert len(await restored.list_tickets(limit=1000)) == counts[-1]


async def test_restore_brings_the_backup_back_and_refuses_a_newer_schema_or_a_stranger(
    tmp_path: Path, settings: Settings
) -> None:
    path, copy = tmp_path / "tickets.sqlite3", tmp_path / "copy.sqlite3"
    async with await TicketStore.open(path, settings.tickets) as store:
        kept = await store.create_ticket("req", query(), [entry("a")])
    backup_database(path, copy)
    async with await TicketStore.open(path, settings.tickets) as store:
        await store.forget("req")  # a change made after the backup
    assert restore_database(copy, path) == LATEST_VERSION
    async with await TicketStore.open(path, settings.tickets) as store:
        assert (await store.get(kept.id)).requester == "req"

    with closing(sqlite3.connect(copy)) as db:
        db.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    with pytest.raises(SchemaTooNewError, match=str(LATEST_VERSION + 1)):
        restore_database(copy, path)
    stranger = tmp_path / "stranger.sqlite3"
    with closing(sqlite3.connect(stranger)) as db:
        db.execute("CREATE TABLE notes (x)")
    with pytest.raises(BackupError, match="not a ticket database"):
        restore_database(stranger, path)
    async with await TicketStore.open(path, settings.tickets) as store:  # left as it was
        assert (await store.get(kept.id)).requester == "req"


def test_the_command_line_backs_up_and_restores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, copy = tmp_path / "tickets.sqlite3", tmp_path / "out" / "copy.sqlite3"
    assert main(["db", "backup", "--db", str(path), str(copy)]) == 2
    assert "there is no ticket database" in capsys.readouterr().err
    assert main(["tickets", "list", "--db", str(path)]) == 0  # creates it
    capsys.readouterr()
    assert main(["db", "backup", "--db", str(path), str(copy)]) == 0
    assert f"backed up {path} to {copy}" in capsys.readouterr().out
    assert main(["db", "restore", "--db", str(path), str(copy)]) == 0
    assert "restored" in capsys.readouterr().out
