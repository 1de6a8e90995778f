"""Crash safety of the ticket store: a process killed with SIGKILL in the middle of a burst of writes.

A child process writes tickets (or decisions) as fast as it can and prints each ticket id only
after the store call returned: that line is the acknowledgement a person would have been shown.
The parent kills the child with SIGKILL while it is still writing, at several points, then reads
the database with plain ``sqlite3`` and proves that:

* the database passes ``PRAGMA integrity_check``;
* every acknowledged ticket is there, whole: its matched entries and its ``create`` audit event;
* nothing is half-written: every ticket row has all its entries and its audit event, and at most
  the one write in flight when the kill landed is there without an acknowledgement;
* every acknowledged approval is approved, with its audit event, and the removal list version
  equals the number of approved tickets (each approval took exactly one version);
* the store opens again and takes new writes.
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
import textwrap
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

CHILD = textwrap.dedent(
    """
    import asyncio
    import sys
    from pathlib import Path

    from bot.config import load_settings
    from bot.tickets.lifecycle import TicketState
    from bot.tickets.models import MatchedEntry, StoredQuery
    from bot.tickets.store import TicketStore

    ENTRIES = {entries}
    QUERY = StoredQuery(("as-sent@0,0,0,0",), ("0123456789abcdef",), ("ab" * 32,), 100)


    def entries(n):
        return [
            MatchedEntry(
                key=f"burst-{{n}}-{{j}}", url=f"https://example.org/{{n}}/{{j}}.jpg", caption=None,
                entry_id=f"00000/{{n}}", phash=f"{{n:016x}}", pdq=f"{{n:064x}}", quality=90,
                pdq_distance=4, phash_distance=2, variant="as-sent@0,0,0,0",
            )
            for j in range(ENTRIES)
        ]


    async def main(mode, path, count):
        async with await TicketStore.open(path, load_settings().tickets) as store:
            if mode == "approve":
                waiting = await store.list_tickets(TicketState.OPEN, limit=count)
                for ticket in waiting:
                    await store.approve(ticket.id, "maintainer-1", "burst")
                    print(ticket.id, flush=True)  # acknowledged: approve() returned
                return
            for n in range(count):
                ticket = await store.create_ticket(f"requester-{{n}}", QUERY, entries(n), source=mode)
                if mode == "create":
                    print(ticket.id, flush=True)  # acknowledged: create_ticket() returned


    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])))
    """
).format(entries=ENTRIES_PER_TICKET)


def child_command(tmp_path: Path, mode: str, database: Path, count: int) -> list[str]:
    script = tmp_path / "child.py"
    if not script.exists():
        script.write_text(CHILD)
    return [sys.executable, str(script), mode, str(database), str(count)]


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def kill_mid_burst(command: list[str], kill_after: int, log: Path) -> list[str]:
    """Run ``command``, SIGKILL it once it has acknowledged ``kill_after`` writes; every id it printed."""
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
    deadline = time.monotonic() + 20
    try:
        while len(acknowledged) < kill_after:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, f"the child stopped early: {log.read_text()}"
            acknowledged.append(line)
        assert child.poll() is None, "the child finished its burst before it could be killed"
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    reader.join(timeout=10)
    while (line := lines.get(timeout=5)) is not None:  # printed before the kill, read after it
        acknowledged.append(line)
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
    query = StoredQuery(("as-sent@0,0,0,0",), ("fedcba9876543210",), ("cd" * 32,), 100)
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


@pytest.mark.parametrize("kill_after", [1, 60, 250])
def test_sigkill_during_ticket_creation_keeps_every_acknowledged_ticket(tmp_path, kill_after):
    database = tmp_path / "tickets.sqlite3"

    acknowledged = kill_mid_burst(
        child_command(tmp_path, "create", database, 1_000_000), kill_after, tmp_path / "child.err"
    )

    assert len(acknowledged) >= kill_after
    assert len(set(acknowledged)) == len(acknowledged)
    assert integrity(database) == "ok"
    with sqlite3.connect(database) as db:
        tickets = dict(db.execute("SELECT id, state FROM tickets").fetchall())
        entries = dict(db.execute("SELECT ticket_id, COUNT(*) FROM ticket_entries GROUP BY ticket_id").fetchall())
        created = [row[0] for row in db.execute("SELECT ticket_id FROM audit_events WHERE action = 'create'")]
        other_events = db.execute("SELECT COUNT(*) FROM audit_events WHERE action != 'create'").fetchone()[0]
    missing = [ticket_id for ticket_id in acknowledged if ticket_id not in tickets]
    assert missing == []
    # At most the one write in flight was committed without being acknowledged, and never in part.
    assert len(acknowledged) <= len(tickets) <= len(acknowledged) + 1
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


@pytest.mark.parametrize("kill_after", [1, 40, 150])
def test_sigkill_during_approvals_keeps_every_acknowledged_decision(tmp_path, prepared, kill_after):
    database = tmp_path / "tickets.sqlite3"
    shutil.copy(prepared, database)
    with sqlite3.connect(database) as db:
        order = [row[0] for row in db.execute("SELECT id FROM tickets ORDER BY created_at, id")]

    acknowledged = kill_mid_burst(
        child_command(tmp_path, "approve", database, PREPARED_TICKETS), kill_after, tmp_path / "child.err"
    )

    assert len(acknowledged) >= kill_after
    assert acknowledged == order[: len(acknowledged)]  # approved oldest first, one at a time
    assert integrity(database) == "ok"
    with sqlite3.connect(database) as db:
        db.row_factory = sqlite3.Row
        tickets = {row["id"]: dict(row) for row in db.execute("SELECT * FROM tickets")}
        approvals = [
            dict(row) for row in db.execute("SELECT * FROM audit_events WHERE action = 'approve' ORDER BY id")
        ]
        version = db.execute("SELECT value FROM counters WHERE name = 'removal_list_version'").fetchone()[0]
        entries = dict(db.execute("SELECT ticket_id, COUNT(*) FROM ticket_entries GROUP BY ticket_id").fetchall())
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
