"""Crash safety of the ticket store: a process killed with SIGKILL in the middle of a burst of writes.

A child process writes tickets (or decisions) as fast as it can and prints each ticket id only
after the store call returned: that line is the acknowledgement a person would have been shown.
The parent kills the child with SIGKILL while it is still writing, then reads the database with
plain ``sqlite3``. The kill lands at several points: after different numbers of writes and at
different fractions of one write's time (where it usually falls between two statements), and,
deterministically, inside an open transaction (the child stops just before a chosen statement of
a chosen write and the parent kills it there). The tests prove that:

* the database passes ``PRAGMA integrity_check``;
* every acknowledged ticket is there, whole: its matched entries and its ``create`` audit event;
* nothing is half-written: every ticket row has all its entries and its audit event, at most the
  one write in flight is there without an acknowledgement, and a write killed inside its
  transaction leaves no trace at all;
* every acknowledged approval is approved, with its audit event, and the removal list version
  equals the number of approved tickets (each approval took exactly one version of its own);
* the store opens again and takes new tickets and decisions.
"""

from __future__ import annotations

import asyncio
import os
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.tickets.models import MatchedEntry, StoredQuery
from bot.tickets.store import TicketStore

ROOT = Path(__file__).resolve().parents[3]
ENTRIES_PER_TICKET = 3
PREPARED_TICKETS = 500
MEASURED = 10  # acknowledgements over which the time of one write is measured
PAUSED = "paused"
# Statements the child can stop just before, inside the write's transaction.
PAUSE_BEFORE = {
    "entries": "INSERT INTO ticket_entries",  # create: the ticket row is written, its entries not yet
    "decision": "UPDATE tickets SET state",  # approve: audit event and version bump written, state not
}

CHILD = """
import asyncio
import sys
import time
from pathlib import Path

import aiosqlite

from bot.config import load_settings
from bot.tickets.lifecycle import TicketState
from bot.tickets.models import MatchedEntry, StoredQuery
from bot.tickets.store import TicketStore

ENTRIES = __ENTRIES__
QUERY = StoredQuery(variants=("as-sent@0,0,0,0",), phash=("0123456789abcdef",), pdq=("ab" * 32,), quality=100)


def entries(n):
    return [
        MatchedEntry(
            key=f"burst-{n}-{j}", url=f"https://example.org/{n}/{j}.jpg", caption=None,
            entry_id=f"00000/{n}", phash=f"{n:016x}", pdq=f"{n:064x}", quality=90,
            pdq_distance=4, phash_distance=2, variant="as-sent@0,0,0,0",
        )
        for j in range(ENTRIES)
    ]


def pause_before(prefix, nth):
    # Stop (until killed) just before the nth statement starting with prefix is executed.
    seen = 0
    for name in ("execute", "executemany"):
        original = getattr(aiosqlite.Connection, name)

        def wrapper(self, sql, *args, _original=original, **kwargs):
            nonlocal seen
            if sql.lstrip().startswith(prefix):
                seen += 1
                if seen == nth:
                    print("__PAUSED__", flush=True)
                    time.sleep(60)
            return _original(self, sql, *args, **kwargs)

        setattr(aiosqlite.Connection, name, wrapper)


async def main(mode, path, count):
    async with await TicketStore.open(path, load_settings().tickets) as store:
        if mode == "approve":
            waiting = await store.list_tickets(TicketState.OPEN, limit=count)
            for ticket in waiting:
                await store.approve(ticket.id, "maintainer-1", "burst")
                print(ticket.id, flush=True)  # acknowledged: approve() returned
            return
        for n in range(count):
            ticket = await store.create_ticket(f"requester-{n}", QUERY, entries(n), source=mode)
            if mode == "create":
                print(ticket.id, flush=True)  # acknowledged: create_ticket() returned


if len(sys.argv) > 4:
    pause_before(sys.argv[4], int(sys.argv[5]))
asyncio.run(main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])))
"""


def child_command(
    tmp_path: Path, mode: str, database: Path, count: int, pause: tuple[str, int] | None = None
) -> list[str]:
    script = tmp_path / "child.py"
    if not script.exists():
        script.write_text(CHILD.replace("__ENTRIES__", str(ENTRIES_PER_TICKET)).replace("__PAUSED__", PAUSED))
    command = [sys.executable, str(script), mode, str(database), str(count)]
    if pause is not None:
        command += [PAUSE_BEFORE[pause[0]], str(pause[1])]
    return command


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def kill_mid_burst(command: list[str], log: Path, *, kill_after: int | None, phase: float = 0.0) -> list[str]:
    """Run ``command``; SIGKILL it ``phase`` of one write's time after its ``kill_after``-th
    acknowledgement, or at once when it says it has paused. Return every id it acknowledged."""
    with log.open("w") as stderr:
        child = subprocess.Popen(
            command, cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=stderr, text=True
        )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    acknowledged: list[str] = []
    arrived: list[float] = []
    deadline = time.monotonic() + 20
    try:
        while True:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, f"the child stopped before it was killed: {log.read_text()}"
            if line == f"{PAUSED}\n":
                assert kill_after is None
                break
            acknowledged.append(line)
            arrived.append(time.monotonic())
            if kill_after is not None and len(acknowledged) >= kill_after:
                one_write = (arrived[-1] - arrived[-MEASURED - 1]) / MEASURED
                time.sleep(phase * one_write)
                break
        assert child.poll() is None, "the child finished its burst before it could be killed"
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
        while (line := lines.get(timeout=5)) is not None:  # printed before the kill, read after it
            acknowledged.append(line)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        reader.join(timeout=10)
        assert child.stdout is not None
        child.stdout.close()
    assert f"{PAUSED}\n" not in acknowledged
    complete = [line for line in acknowledged if line.endswith("\n")]
    assert len(complete) >= len(acknowledged) - 1  # only the very last line can be cut short
    return [line.strip() for line in complete]


def integrity(database: Path) -> str:
    with sqlite3.connect(database) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def entry(n: int) -> MatchedEntry:
    return MatchedEntry(
        key=f"after-{n}", url=None, caption=None, entry_id=f"00001/{n}", phash=f"{n:016x}", pdq=f"{n:064x}",
        quality=90, pdq_distance=1, phash_distance=1, variant="as-sent@0,0,0,0",
    )  # fmt: skip


async def reopen_and_write(database: Path) -> tuple[int, int, int]:
    """Open the store after the crash, file one more ticket and approve it: (tickets, version, rows)."""
    query = StoredQuery(
        variants=("as-sent@0,0,0,0",), phash=("fedcba9876543210",), pdq=("cd" * 32,), quality=100
    )
    async with await TicketStore.open(database, load_settings().tickets) as store:
        before, _ = await store.removal_list()
        ticket = await store.create_ticket("after-the-crash", query, [entry(1)])
        assert ticket.state == "open"
        assert (await store.get(ticket.id)).entries == (entry(1),)
        result = await store.approve(ticket.id, "maintainer-2", "after the crash")
        assert result.ticket.state == "approved"
        version, rows = await store.removal_list()
        assert version == before + 1
        count = len(await store.list_tickets(limit=100_000))
    return count, version, len(rows)


# (kill after this many acknowledgements, this fraction of a write later) or (pause before, in write n)
CREATE_KILLS = [
    pytest.param(20, 0.0, None, id="after-20"),
    pytest.param(80, 0.45, None, id="after-80-and-a-half-write"),
    pytest.param(250, 0.9, None, id="after-250-and-most-of-a-write"),
    pytest.param(None, 0.0, ("entries", 40), id="inside-the-40th-transaction"),
]


@pytest.mark.parametrize(("kill_after", "phase", "pause"), CREATE_KILLS)
def test_sigkill_during_ticket_creation_keeps_every_acknowledged_ticket(tmp_path, kill_after, phase, pause):
    database = tmp_path / "tickets.sqlite3"
    command = child_command(tmp_path, "create", database, 1_000_000, pause)

    acknowledged = kill_mid_burst(command, tmp_path / "child.err", kill_after=kill_after, phase=phase)

    assert len(acknowledged) >= (kill_after or pause[1] - 1)
    assert len(set(acknowledged)) == len(acknowledged)
    assert integrity(database) == "ok"
    with sqlite3.connect(database) as db:
        tickets = dict(db.execute("SELECT id, state FROM tickets").fetchall())
        entries = dict(
            db.execute("SELECT ticket_id, COUNT(*) FROM ticket_entries GROUP BY ticket_id").fetchall()
        )
        created = [row[0] for row in db.execute("SELECT ticket_id FROM audit_events WHERE action = 'create'")]
        other_events = db.execute("SELECT COUNT(*) FROM audit_events WHERE action != 'create'").fetchone()[0]
    missing = [ticket_id for ticket_id in acknowledged if ticket_id not in tickets]
    assert missing == []
    # At most the one write in flight was committed without being acknowledged, and never in part.
    assert len(acknowledged) <= len(tickets) <= len(acknowledged) + 1
    if pause is not None:  # killed inside its transaction: the write left nothing behind
        assert len(acknowledged) == pause[1] - 1
        assert sorted(tickets) == sorted(acknowledged)
    assert set(tickets.values()) == {"open"}
    assert entries == dict.fromkeys(tickets, ENTRIES_PER_TICKET)
    assert sorted(created) == sorted(tickets)
    assert other_events == 0

    count, version, rows = asyncio.run(reopen_and_write(database))

    assert count == len(tickets) + 1
    assert (version, rows) == (1, 1)
    assert integrity(database) == "ok"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A closed database of PREPARED_TICKETS open tickets, written by a child process."""
    folder = tmp_path_factory.mktemp("prepared")
    database = folder / "tickets.sqlite3"
    done = subprocess.run(
        child_command(folder, "prepare", database, PREPARED_TICKETS),
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not Path(f"{database}-wal").exists()  # closed cleanly: one file to copy
    return database


APPROVE_KILLS = [
    pytest.param(20, 0.2, None, id="after-20-and-a-fifth-of-a-write"),
    pytest.param(80, 0.6, None, id="after-80-and-more-than-half-a-write"),
    pytest.param(200, 0.95, None, id="after-200-and-almost-a-whole-write"),
    pytest.param(None, 0.0, ("decision", 30), id="inside-the-30th-transaction"),
]


@pytest.mark.parametrize(("kill_after", "phase", "pause"), APPROVE_KILLS)
def test_sigkill_during_approvals_keeps_every_acknowledged_decision(
    tmp_path, prepared, kill_after, phase, pause
):
    database = tmp_path / "tickets.sqlite3"
    shutil.copy(prepared, database)
    with sqlite3.connect(database) as db:
        order = [row[0] for row in db.execute("SELECT id FROM tickets ORDER BY created_at, id")]
    command = child_command(tmp_path, "approve", database, PREPARED_TICKETS, pause)

    acknowledged = kill_mid_burst(command, tmp_path / "child.err", kill_after=kill_after, phase=phase)

    assert len(acknowledged) >= (kill_after or pause[1] - 1)
    assert acknowledged == order[: len(acknowledged)]  # approved oldest first, one at a time
    assert integrity(database) == "ok"
    with sqlite3.connect(database) as db:
        db.row_factory = sqlite3.Row
        tickets = {row["id"]: dict(row) for row in db.execute("SELECT * FROM tickets")}
        approvals = [
            dict(row) for row in db.execute("SELECT * FROM audit_events WHERE action = 'approve' ORDER BY id")
        ]
        version = db.execute("SELECT value FROM counters WHERE name = 'removal_list_version'").fetchone()[0]
        entries = dict(
            db.execute("SELECT ticket_id, COUNT(*) FROM ticket_entries GROUP BY ticket_id").fetchall()
        )
    assert len(tickets) == PREPARED_TICKETS
    assert entries == dict.fromkeys(tickets, ENTRIES_PER_TICKET)
    approved = [ticket_id for ticket_id in order if tickets[ticket_id]["state"] == "approved"]
    for ticket_id in acknowledged:
        ticket = tickets[ticket_id]
        assert ticket["state"] == "approved"
        assert ticket["decided_by"] == "maintainer-1"
        assert ticket["decision_reason"] == "burst"
        assert ticket["closed_at"] is not None
    # At most the one approval in flight landed unacknowledged; the kill came mid-burst.
    assert approved[: len(acknowledged)] == acknowledged
    assert len(acknowledged) <= len(approved) <= len(acknowledged) + 1
    if pause is not None:  # killed inside its transaction: the decision left nothing behind
        assert approved == acknowledged == order[: pause[1] - 1]
    assert len(approved) < PREPARED_TICKETS
    assert {tickets[t]["state"] for t in order[len(approved) :]} == {"open"}
    assert all(tickets[t]["removal_version"] is None for t in order[len(approved) :])
    # Every approval is whole: its audit event and exactly one removal list version of its own.
    assert [(e["ticket_id"], e["from_state"], e["to_state"], e["actor"]) for e in approvals] == [
        (ticket_id, "open", "approved", "maintainer-1") for ticket_id in approved
    ]
    assert version == len(approved)
    assert [tickets[ticket_id]["removal_version"] for ticket_id in approved] == list(range(1, version + 1))

    count, version_after, rows = asyncio.run(reopen_and_write(database))

    assert count == PREPARED_TICKETS + 1
    assert version_after == len(approved) + 1
    assert rows == len(approved) * ENTRIES_PER_TICKET + 1
    assert integrity(database) == "ok"
