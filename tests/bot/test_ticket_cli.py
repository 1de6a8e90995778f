"""``python -m bot tickets ...`` and ``python -m bot removals ...``, driven through ``bot.cli.main``.

Proves, against a small index of sample photos and a throw-away ticket database, that a person can
file a removal request from a shell and that only hashes reach the database (never the picture's
name or path); that refused requests (nothing matched, not a picture, asked twice) exit with 1 and
a sentence; that a second requester is linked to the first ticket and follows its decision; that
every review step (claim, approve, reject, reopen, release, withdraw) works and refuses what it
must, naming who holds a ticket; that forget, export, purge and the audit log's filters do what
they say; that ``check`` stops reporting an entry once its removal is approved; and that the
removal list is exported in every format and applied to LAION-style metadata with the right
counts. Configuration errors exit with 2.
"""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import bot.tickets.database as database_module
import bot.tickets.filing as filing_module
from bot.cli import main
from bot.config import load_settings
from bot.index.build import build_index
from bot.tickets.ids import ALPHABET

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
DATASET = SAMPLES / "dataset"
QUERIES = SAMPLES / "queries"

COFFEE = "coffee__mirrored.jpg"  # finds coffee.jpg (a plain folder entry: no URL)
CHELSEA = "chelsea__gray.jpg"  # finds 1002 (an img2dataset-style entry with a URL)
ASTRONAUT = "astronaut__cropped.jpg"  # finds astronaut.jpg
UNRELATED = "unrelated_gravel.jpg"  # finds nothing
CHELSEA_URL = "https://example.org/pictures/chelsea.jpg"


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory) -> Path:
    """coffee, astronaut and grass as plain files; chelsea as img2dataset's ``1002`` with a URL."""
    root = tmp_path_factory.mktemp("ticket-cli")
    source = root / "source"
    source.mkdir()
    for name in ("coffee.jpg", "astronaut.jpg", "grass.jpg"):
        shutil.copy(DATASET / name, source / name)
    shutil.copy(DATASET / "chelsea.jpg", source / "1002.jpg")
    (source / "1002.json").write_text(json.dumps({"key": "1002", "url": CHELSEA_URL, "caption": "a cat"}))
    out = root / "index"
    report = build_index([source], out, load_settings(), workers=1, show_progress=False)
    assert report.entries == 4
    return out


@pytest.fixture(autouse=True)
def database(tmp_path, monkeypatch) -> Path:
    """Every command in this module uses a database of its own (never ./data)."""
    path = tmp_path / "db" / "t.db"
    monkeypatch.setenv("REMOVAL_DESK_TICKETS_DATABASE", str(path))
    return path


class Clock:
    """The ticket store's idea of now, set by the test."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)

    def set(self, text: str) -> None:
        self.now = datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    frozen = Clock()

    class FrozenDatetime(datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[override]
            return frozen.now.astimezone(tz) if tz is not None else frozen.now

    monkeypatch.setattr(database_module, "datetime", FrozenDatetime)
    return frozen


def run(capsys, *argv: object) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys, *argv: object) -> Any:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def file_request(capsys, index: Path, requester: str, query: str = COFFEE, *extra: object) -> str:
    code, out, err = run(
        capsys, "tickets", "open", "--index", index, "--requester", requester, *extra, QUERIES / query
    )
    assert code == 0, err
    return out.strip()


def show(capsys, ticket_id: str) -> dict[str, Any]:
    return run_json(capsys, "tickets", "show", ticket_id)


def check_keys(capsys, index: Path, query: str) -> list[str]:
    record = run_json(capsys, "check", "--index", index, QUERIES / query)
    assert record["error"] is None
    return [match["key"] for match in record["matches"]]


def database_text(path: Path) -> str:
    """Every value in every table of the database, as one string."""
    with sqlite3.connect(path) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert {"tickets", "ticket_entries", "audit_events", "counters"} <= set(tables)
        values = [
            str(value) for table in tables for row in db.execute(f'SELECT * FROM "{table}"') for value in row
        ]
    return "\n".join(values)


def database_bytes(path: Path) -> bytes:
    """The database file and its WAL and shared-memory files, as they are on disk."""
    return b"".join(p.read_bytes() for p in sorted(path.parent.iterdir()) if p.name.startswith(path.name))


# --- filing a request ---------------------------------------------------------------------------


def test_open_prints_only_the_new_ticket_id(index_dir, capsys):
    code, out, err = run(
        capsys, "tickets", "open", "--index", index_dir, "--requester", "u1", "--note", "me", QUERIES / COFFEE
    )

    assert code == 0
    ticket_id = out.strip()
    assert out == f"{ticket_id}\n"
    assert len(ticket_id) == 6
    assert set(ticket_id) <= set(ALPHABET)
    assert f"ticket {ticket_id}: open" in err  # the description goes to standard error
    assert "coffee.jpg" in err
    ticket = show(capsys, ticket_id)
    assert ticket["state"] == "open"
    assert ticket["requester"] == "u1"


def test_open_json_prints_the_ticket_with_hashes_and_note(index_dir, capsys):
    ticket = run_json(
        capsys, "tickets", "open", "--index", index_dir, "--requester", "u1", "--note", "from a clinic",
        QUERIES / COFFEE,
    )  # fmt: skip

    assert ticket["state"] == "open"
    assert ticket["source"] == "cli"
    assert ticket["requester"] == "u1"
    assert ticket["note"] == "from a clinic"
    assert ticket["linked_to"] is None
    assert [(entry["key"], entry["url"]) for entry in ticket["entries"]] == [("coffee.jpg", None)]
    entry = ticket["entries"][0]
    assert len(entry["phash"]) == 16
    assert len(entry["pdq"]) == 64
    assert entry["pdq_distance"] <= load_settings().matching.pdq_max_distance
    query = ticket["query"]
    assert query["variants"]
    assert len(query["phash"]) == len(query["pdq"]) == len(query["variants"])
    assert all(len(value) == 16 and int(value, 16) >= 0 for value in query["phash"])
    assert all(len(value) == 64 and int(value, 16) >= 0 for value in query["pdq"])
    assert show(capsys, ticket["id"])["query"] == query


def test_open_with_db_flag_uses_that_database(index_dir, capsys, database, tmp_path):
    other = tmp_path / "elsewhere.sqlite3"

    ticket_id = file_request(capsys, index_dir, "u1", COFFEE, "--db", other)

    assert other.exists()
    assert not database.exists()
    assert [t["id"] for t in run_json(capsys, "tickets", "list", "--db", other)] == [ticket_id]


def test_database_holds_hashes_never_the_pictures_name_or_path(index_dir, capsys, database):
    ticket = run_json(
        capsys, "tickets", "open", "--index", index_dir, "--requester", "u1", "--note", "n", QUERIES / COFFEE
    )

    text = database_text(database)
    assert ticket["query"]["pdq"][0] in text  # the scan does see what was stored
    assert "coffee.jpg" in text  # the dataset's own key, which a decision needs
    for forbidden in ("coffee__mirrored", str(QUERIES), "queries/", str(SAMPLES)):
        assert forbidden not in text
    raw = database_bytes(database)
    assert b"coffee__mirrored" not in raw
    assert str(QUERIES).encode() not in raw


def test_open_for_an_unrelated_picture_creates_no_ticket(index_dir, capsys):
    code, out, err = run(
        capsys, "tickets", "open", "--index", index_dir, "--requester", "u1", QUERIES / UNRELATED
    )

    assert code == 1
    assert out == ""
    assert err.startswith("error: ")
    assert "No dataset entry matched" in err
    assert run_json(capsys, "tickets", "list") == []
    assert run_json(capsys, "tickets", "log") == []


def test_open_for_a_file_that_is_not_a_picture_is_refused(index_dir, capsys, tmp_path):
    not_a_picture = tmp_path / "holiday.jpg"
    not_a_picture.write_text("these are words, not pixels")

    code, out, err = run(capsys, "tickets", "open", "--index", index_dir, "--requester", "u1", not_a_picture)

    assert code == 1
    assert out == ""
    assert "not a picture I can read" in err
    assert "JPEG" in err
    assert "Traceback" not in err
    code, out, err = run(
        capsys, "tickets", "open", "--index", index_dir, "--requester", "u1", tmp_path / "missing.jpg"
    )
    assert code == 1
    assert out == ""
    assert "error: cannot read" in err
    assert run_json(capsys, "tickets", "list") == []


def test_the_same_requester_cannot_ask_twice(index_dir, capsys):
    first = file_request(capsys, index_dir, "u1")

    code, out, err = run(
        capsys, "tickets", "open", "--index", index_dir, "--requester", "u1", QUERIES / COFFEE
    )

    assert code == 1
    assert out == ""
    assert f"You already asked for these entries to be removed: ticket {first} is open." in err
    assert [t["id"] for t in run_json(capsys, "tickets", "list")] == [first]


def test_open_refuses_over_the_limit_and_an_overlong_note(index_dir, capsys, monkeypatch):
    monkeypatch.setenv("REMOVAL_DESK_TICKETS_MAX_OPEN_PER_REQUESTER", "1")
    monkeypatch.setenv("REMOVAL_DESK_TICKETS_MAX_NOTE_CHARS", "10")
    first = file_request(capsys, index_dir, "u1", COFFEE)

    code, out, err = run(
        capsys, "tickets", "open", "--index", index_dir, "--requester", "u1", QUERIES / CHELSEA
    )
    assert code == 1
    assert out == ""
    assert "You already have 1 requests waiting for a decision" in err

    code, out, err = run(
        capsys, "tickets", "open", "--index", index_dir, "--requester", "u2", "--note", "x" * 11,
        QUERIES / CHELSEA,
    )  # fmt: skip
    assert code == 1
    assert out == ""
    assert "The note is 11 characters long; at most 10 fit." in err
    assert [t["id"] for t in run_json(capsys, "tickets", "list")] == [first]


def test_open_against_a_missing_index_exits_with_2(capsys, tmp_path):
    code, out, err = run(
        capsys, "tickets", "open", "--index", tmp_path / "no-index", "--requester", "u1", QUERIES / COFFEE
    )

    assert code == 2
    assert out == ""
    assert err.strip() == f"error: {tmp_path / 'no-index'} is not an index (no manifest.json)"


def test_a_second_requester_is_linked_to_the_first_ticket(index_dir, capsys):
    first = file_request(capsys, index_dir, "u1")

    second = file_request(capsys, index_dir, "u2")

    assert second != first
    linked = show(capsys, second)
    assert linked["state"] == "linked"
    assert linked["linked_to"] == first
    assert linked["requester"] == "u2"
    assert linked["overlapping"] == [first]
    assert show(capsys, first)["state"] == "open"
    code, out, _ = run(capsys, "tickets", "show", second)
    assert code == 0
    assert f"ticket {second}: linked (linked to {first})" in out
    code, out, err = run(capsys, "tickets", "approve", second, "--by", "alice", "--reason", "ok")
    assert code == 1
    assert "act on that one" in err
    assert show(capsys, second)["state"] == "linked"
    code, out, err = run(
        capsys, "tickets", "open", "--index", index_dir, "--requester", "u2", QUERIES / COFFEE
    )
    assert code == 1
    assert f"You already asked for these entries to be removed: ticket {second} is linked." in err


# --- reading tickets ----------------------------------------------------------------------------


def test_list_filters_by_state_oldest_first(index_dir, capsys):
    coffee = file_request(capsys, index_dir, "u1", COFFEE)
    chelsea = file_request(capsys, index_dir, "u1", CHELSEA)
    linked = file_request(capsys, index_dir, "u2", COFFEE)
    run_json(capsys, "tickets", "claim", chelsea, "--by", "alice")

    assert [t["id"] for t in run_json(capsys, "tickets", "list")] == [coffee, chelsea, linked]
    assert [t["id"] for t in run_json(capsys, "tickets", "list", "--state", "open")] == [coffee]
    assert [t["id"] for t in run_json(capsys, "tickets", "list", "--state", "claimed")] == [chelsea]
    assert [t["id"] for t in run_json(capsys, "tickets", "list", "--state", "linked")] == [linked]
    assert run_json(capsys, "tickets", "list", "--state", "approved") == []
    assert [t["id"] for t in run_json(capsys, "tickets", "list", "--requester", "u2")] == [linked]
    assert [t["id"] for t in run_json(capsys, "tickets", "list", "--assignee", "alice")] == [chelsea]
    code, out, _ = run(capsys, "tickets", "list", "--state", "claimed")
    assert code == 0
    assert chelsea in out
    assert "alice" in out
    assert coffee not in out
    assert run(capsys, "tickets", "list", "--state", "rejected")[1].strip() == "no tickets"


def test_show_describes_the_ticket(index_dir, capsys):
    ticket_id = file_request(capsys, index_dir, "u1", CHELSEA, "--note", "taken at home")

    code, out, err = run(capsys, "tickets", "show", ticket_id.lower())

    assert code == 0, err
    assert f"ticket {ticket_id}: open" in out
    assert "1002" in out
    assert CHELSEA_URL in out
    assert "note: taken at home" in out
    assert "1 entry:" in out


def test_show_an_unknown_ticket(capsys):
    code, out, err = run(capsys, "tickets", "show", "NOPE12")

    assert code == 1
    assert out == ""
    assert "There is no ticket NOPE12" in err


def test_a_configuration_error_exits_with_2(capsys, monkeypatch):
    monkeypatch.setenv("REMOVAL_DESK_TICKETS_MAX_OPEN_PER_REQUESTER", "abc")

    code, out, err = run(capsys, "tickets", "list")

    assert code == 2
    assert out == ""
    assert "tickets.max_open_per_requester" in err
    assert "Traceback" not in err


# --- deciding -----------------------------------------------------------------------------------


def test_claim_then_only_the_claimant_can_approve_and_the_linked_ticket_follows(index_dir, capsys):
    primary = file_request(capsys, index_dir, "u1")
    follower = file_request(capsys, index_dir, "u2")

    code, out, _ = run(capsys, "tickets", "claim", primary, "--by", "alice")
    assert code == 0
    assert out.strip() == f"ticket {primary} is now claimed"

    code, out, err = run(capsys, "tickets", "approve", primary, "--by", "bob", "--reason", "it is them")
    assert code == 1
    assert out == ""
    assert "claimed by alice" in err
    after_refusal = show(capsys, primary)
    assert after_refusal["state"] == "claimed"
    assert after_refusal["decided_by"] is None

    approved = run_json(capsys, "tickets", "approve", primary, "--by", "alice", "--reason", "it is them")
    assert approved["state"] == "approved"
    assert approved["decided_by"] == "alice"
    assert approved["decision_reason"] == "it is them"
    assert approved["also_changed"] == [follower]
    followed = show(capsys, follower)
    assert followed["state"] == "approved"
    assert followed["decided_by"] == "alice"
    assert primary in followed["decision_reason"]

    code, _, err = run(capsys, "tickets", "approve", primary, "--by", "alice", "--reason", "again")
    assert code == 1
    assert "already approved by alice" in err


def test_approve_text_names_the_linked_tickets(index_dir, capsys):
    primary = file_request(capsys, index_dir, "u1")
    follower = file_request(capsys, index_dir, "u2")

    code, out, _ = run(capsys, "tickets", "approve", primary, "--by", "alice", "--reason", "ok")

    assert code == 0
    assert out.strip() == f"ticket {primary} is now approved (with linked ticket(s) {follower})"


def test_reject_reopen_and_release(index_dir, capsys):
    ticket_id = file_request(capsys, index_dir, "u1")

    rejected = run_json(capsys, "tickets", "reject", ticket_id, "--by", "bob", "--reason", "not a person")
    assert rejected["state"] == "rejected"
    assert rejected["decided_by"] == "bob"
    assert rejected["decision_reason"] == "not a person"
    code, _, err = run(capsys, "tickets", "claim", ticket_id, "--by", "alice")
    assert code == 1
    assert "already rejected by bob" in err

    reopened = run_json(capsys, "tickets", "reopen", ticket_id, "--by", "carol", "--reason", "new evidence")
    assert reopened["state"] == "open"
    assert reopened["decided_by"] is None
    assert reopened["closed_at"] is None

    assert run_json(capsys, "tickets", "claim", ticket_id, "--by", "bob")["assignee"] == "bob"
    code, _, err = run(capsys, "tickets", "release", ticket_id, "--by", "alice")
    assert code == 1
    assert "claimed by bob" in err
    released = run_json(capsys, "tickets", "release", ticket_id, "--by", "bob")
    assert released["state"] == "open"
    assert released["assignee"] is None
    code, _, err = run(capsys, "tickets", "release", ticket_id, "--by", "bob")
    assert code == 1
    assert "cannot be released" in err

    code, _, err = run(capsys, "tickets", "approve", ticket_id, "--by", "bob", "--reason", "  ")
    assert code == 1
    assert "needs a reason" in err
    assert show(capsys, ticket_id)["state"] == "open"


def test_withdraw_only_by_the_requester_and_the_linked_ticket_takes_over(index_dir, capsys):
    primary = file_request(capsys, index_dir, "u1")
    follower = file_request(capsys, index_dir, "u2")

    code, out, err = run(capsys, "tickets", "withdraw", primary, "--requester", "u2")
    assert code == 1
    assert out == ""
    assert "not filed by you" in err
    assert show(capsys, primary)["state"] == "open"

    withdrawn = run_json(capsys, "tickets", "withdraw", primary, "--requester", "u1")
    assert withdrawn["state"] == "withdrawn"
    assert withdrawn["also_changed"] == [follower]
    promoted = show(capsys, follower)
    assert promoted["state"] == "open"
    assert promoted["linked_to"] is None


# --- privacy: forget, export, purge -------------------------------------------------------------


def test_forget_erases_the_requester_from_every_ticket(index_dir, capsys, database):
    person = "person-Q7xv"
    note = "from-a-hospital-record"
    coffee = file_request(capsys, index_dir, person, COFFEE, "--note", note)
    chelsea = file_request(capsys, index_dir, person, CHELSEA, "--note", note)
    other = file_request(capsys, index_dir, "someone-else", ASTRONAUT)
    run_json(capsys, "tickets", "approve", coffee, "--by", "alice", "--reason", "ok")
    stored = [show(capsys, ticket_id) for ticket_id in (coffee, chelsea)]
    entry_hashes = {
        entry[kind] for ticket in stored for entry in ticket["entries"] for kind in ("phash", "pdq")
    }
    query_hashes = {
        value for ticket in stored for kind in ("phash", "pdq") for value in ticket["query"][kind]
    }
    only_the_query = query_hashes - entry_hashes  # the person's picture, not a dataset entry
    # SQLite stores a long query across overflow pages, each starting with a page pointer: a
    # value that straddles two pages is not one run of bytes. Most are, and those must go.
    raw = database_bytes(database)
    readable = {value for value in only_the_query if value.encode() in raw}
    assert len(readable) >= 0.9 * len(only_the_query)

    assert run_json(capsys, "tickets", "forget", "--requester", person) == {"tickets": 2}

    for ticket_id, state in ((coffee, "approved"), (chelsea, "open")):
        ticket = show(capsys, ticket_id)
        assert ticket["state"] == state
        assert ticket["requester"] is None
        assert ticket["note"] is None
        assert ticket["query"] is None
        assert ticket["erased_at"] is not None
        assert len(ticket["entries"]) == 1  # the decision still knows what to remove
    assert show(capsys, other)["requester"] == "someone-else"
    assert run_json(capsys, "tickets", "list", "--requester", person) == []
    forget_events = run_json(capsys, "tickets", "log", "--action", "forget")
    assert [(e["actor_kind"], e["actor"], e["detail"]) for e in forget_events] == [
        ("requester", None, {"tickets": 2})
    ]
    assert person not in json.dumps(run_json(capsys, "tickets", "log"))
    assert person not in database_text(database)
    assert note not in database_text(database)
    raw = database_bytes(database)
    assert person.encode() not in raw  # not in free pages or the write-ahead log either
    assert note.encode() not in raw
    assert [value for value in readable if value.encode() in raw] == []
    assert run_json(capsys, "tickets", "forget", "--requester", person) == {"tickets": 0}
    code, out, _ = run(capsys, "tickets", "forget", "--requester", "nobody")
    assert code == 0
    assert "erased the requester's data from 0 ticket(s)" in out


def test_export_holds_only_that_requesters_tickets(index_dir, capsys):
    mine_elsewhere = file_request(capsys, index_dir, "u1", COFFEE)
    first = file_request(capsys, index_dir, "u2", CHELSEA, "--note", "u2 note")
    second = file_request(capsys, index_dir, "u2", ASTRONAUT)
    run_json(capsys, "tickets", "claim", first, "--by", "alice")

    code, out, err = run(capsys, "tickets", "export", "--requester", "u2")

    assert code == 0, err
    document = json.loads(out)
    assert document["requester"] == "u2"
    assert [t["id"] for t in document["tickets"]] == [first, second]
    assert {t["requester"] for t in document["tickets"]} == {"u2"}
    assert document["tickets"][0]["note"] == "u2 note"
    assert [(e["ticket_id"], e["action"]) for e in document["events"]] == [
        (first, "create"),
        (first, "claim"),
        (second, "create"),
    ]
    assert mine_elsewhere not in out
    assert "coffee.jpg" not in out
    empty = json.loads(run(capsys, "tickets", "export", "--requester", "nobody")[1])
    assert empty["tickets"] == []
    assert empty["events"] == []


def test_purge_erases_requester_data_of_tickets_closed_long_ago(index_dir, capsys, clock):
    approved = file_request(capsys, index_dir, "u1", COFFEE, "--note", "n1")
    rejected = file_request(capsys, index_dir, "u2", CHELSEA)
    pending = file_request(capsys, index_dir, "u3", ASTRONAUT)
    clock.set("2026-01-02T09:00:00")
    run_json(capsys, "tickets", "approve", approved, "--by", "alice", "--reason", "ok")
    run_json(capsys, "tickets", "reject", rejected, "--by", "alice", "--reason", "no")

    clock.set("2026-03-01T09:00:00")
    assert run_json(capsys, "tickets", "purge") == {"tickets": 0}
    assert show(capsys, approved)["requester"] == "u1"

    clock.set("2026-04-03T09:00:00")  # 91 days after the decisions
    assert run_json(capsys, "tickets", "purge") == {"tickets": 2}
    for ticket_id, state in ((approved, "approved"), (rejected, "rejected")):
        ticket = show(capsys, ticket_id)
        assert ticket["state"] == state
        assert (ticket["requester"], ticket["note"], ticket["query"]) == (None, None, None)
        assert ticket["erased_at"] == "2026-04-03T09:00:00.000000Z"
        assert ticket["entries"]
    still = show(capsys, pending)
    assert still["requester"] == "u3"
    assert still["erased_at"] is None
    assert run_json(capsys, "tickets", "purge") == {"tickets": 0}
    purges = run_json(capsys, "tickets", "log", "--action", "purge")
    assert [e["detail"]["tickets"] for e in purges] == [0, 2, 0]
    assert {e["actor_kind"] for e in purges} == {"system"}
    code, out, _ = run(capsys, "tickets", "purge")
    assert code == 0
    assert "erased requester data from 0 ticket(s) closed > 90 days" in out


# --- the audit log ------------------------------------------------------------------------------


@pytest.fixture
def logged(index_dir, capsys, clock) -> dict[str, str]:
    """Five events on three days: A created (1st), A claimed by alice and B created (2nd), A approved
    by alice and B claimed by bob (3rd)."""
    clock.set("2026-01-01T09:00:00")
    a = file_request(capsys, index_dir, "u1", COFFEE)
    clock.set("2026-01-02T09:00:00")
    run_json(capsys, "tickets", "claim", a, "--by", "alice")
    clock.set("2026-01-02T15:00:00")
    b = file_request(capsys, index_dir, "u2", CHELSEA)
    clock.set("2026-01-03T09:00:00")
    run_json(capsys, "tickets", "approve", a, "--by", "alice", "--reason", "ok")
    clock.set("2026-01-03T10:00:00")
    run_json(capsys, "tickets", "claim", b, "--by", "bob")
    return {"a": a, "b": b}


def events(capsys, *filters: object) -> list[tuple[str, str, str | None]]:
    return [(e["ticket_id"], e["action"], e["actor"]) for e in run_json(capsys, "tickets", "log", *filters)]


def test_log_filters(capsys, logged):
    a, b = logged["a"], logged["b"]

    assert events(capsys) == [
        (a, "create", None),
        (a, "claim", "alice"),
        (b, "create", None),
        (a, "approve", "alice"),
        (b, "claim", "bob"),
    ]
    assert events(capsys, "--ticket", a) == [
        (a, "create", None),
        (a, "claim", "alice"),
        (a, "approve", "alice"),
    ]
    assert events(capsys, "--ticket", a.lower()) == events(capsys, "--ticket", a)
    assert events(capsys, "--by", "alice") == [(a, "claim", "alice"), (a, "approve", "alice")]
    assert events(capsys, "--by", "bob") == [(b, "claim", "bob")]
    assert events(capsys, "--by", "carol") == []
    assert events(capsys, "--since", "2026-01-02") == [
        (a, "claim", "alice"),
        (b, "create", None),
        (a, "approve", "alice"),
        (b, "claim", "bob"),
    ]
    assert events(capsys, "--until", "2026-01-02") == [(a, "create", None)]
    assert events(capsys, "--since", "2026-01-02", "--until", "2026-01-03") == [
        (a, "claim", "alice"),
        (b, "create", None),
    ]
    assert events(capsys, "--since", "2026-01-02T12:00:00", "--until", "2026-01-03T09:30:00") == [
        (b, "create", None),
        (a, "approve", "alice"),
    ]
    assert events(capsys, "--by", "alice", "--since", "2026-01-03") == [(a, "approve", "alice")]
    assert events(capsys, "--action", "create") == [(a, "create", None), (b, "create", None)]
    assert events(capsys, "--limit", "2") == [(a, "approve", "alice"), (b, "claim", "bob")]


def test_log_text_lists_states_and_reasons(capsys, logged):
    code, out, _ = run(capsys, "tickets", "log", "--ticket", logged["a"])

    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("2026-01-01T09:00:00.000000Z")
    assert "(requester) create - -> open" in lines[0]
    assert "alice claim open -> claimed" in lines[1]
    assert "alice approve claimed -> approved: ok" in lines[2]
    assert run(capsys, "tickets", "log", "--by", "nobody")[1].strip() == "no events"


def test_log_bounds_are_instants_whatever_their_spelling(capsys, logged):
    claim = (logged["a"], "claim", "alice")  # at 2026-01-02T09:00:00Z exactly

    for spelling in (
        "2026-01-02T09:00:00Z",
        "2026-01-02T09:00Z",
        "2026-01-02T10:00:00+01:00",
        "2026-01-02 09:00",
    ):
        assert claim in events(capsys, "--since", spelling), spelling
        assert claim not in events(capsys, "--until", spelling), spelling
    code, out, err = run(capsys, "tickets", "log", "--since", "yesterday")
    assert code == 1
    assert out == ""
    assert "'yesterday' is not a date or timestamp" in err


# --- check honours approvals --------------------------------------------------------------------


def test_check_stops_reporting_an_entry_once_its_removal_is_approved(index_dir, capsys, database):
    assert check_keys(capsys, index_dir, COFFEE) == ["coffee.jpg"]
    assert not database.exists()  # check does not create a database
    ticket_id = file_request(capsys, index_dir, "u1", COFFEE)
    run_json(capsys, "tickets", "claim", ticket_id, "--by", "alice")
    assert check_keys(capsys, index_dir, COFFEE) == ["coffee.jpg"]  # claimed is not decided

    run_json(capsys, "tickets", "approve", ticket_id, "--by", "alice", "--reason", "ok")

    assert check_keys(capsys, index_dir, COFFEE) == []
    assert check_keys(capsys, index_dir, CHELSEA) == ["1002"]  # other entries still match
    code, out, _ = run(capsys, "check", "--index", index_dir, QUERIES / COFFEE)
    assert code == 0
    assert "no match" in out
    run_json(capsys, "tickets", "reopen", ticket_id, "--by", "alice", "--reason", "mistake")
    assert check_keys(capsys, index_dir, COFFEE) == ["coffee.jpg"]


# --- the removal list ---------------------------------------------------------------------------


@pytest.fixture
def approved(index_dir, capsys) -> dict[str, str]:
    """coffee.jpg approved (with a linked ticket) and 1002 approved: removal list version 2."""
    coffee = file_request(capsys, index_dir, "u1", COFFEE)
    file_request(capsys, index_dir, "u2", COFFEE)
    chelsea = file_request(capsys, index_dir, "u3", CHELSEA)
    file_request(capsys, index_dir, "u4", ASTRONAUT)  # stays open: not on the list
    run_json(capsys, "tickets", "approve", coffee, "--by", "alice", "--reason", "ok")
    run_json(capsys, "tickets", "approve", chelsea, "--by", "bob", "--reason", "ok")
    return {"coffee": coffee, "chelsea": chelsea}


def test_export_an_empty_list(capsys, tmp_path):
    report = run_json(capsys, "removals", "export", "--out", tmp_path / "list.parquet")

    assert (report["version"], report["entries"], report["pictures"]) == (0, 0, 0)
    assert pq.read_table(tmp_path / "list.parquet").num_rows == 0


def test_export_parquet_writes_the_list_and_the_blocklist(capsys, tmp_path, approved):
    out = tmp_path / "out" / "list.parquet"

    report = run_json(capsys, "removals", "export", "--out", out)

    assert report == {
        "version": 2,
        "entries": 2,
        "pictures": 2,
        "list": str(out),
        "blocklist": str(tmp_path / "out" / "list.blocklist.parquet"),
    }
    rows = pq.read_table(out).to_pylist()
    assert [(r["key"], r["url"], r["added_in"]) for r in rows] == [
        ("1002", CHELSEA_URL, 2),
        ("coffee.jpg", None, 1),
    ]
    assert rows[0]["ticket_id"] == approved["chelsea"]
    assert all(len(r["phash"]) == 16 and len(r["pdq"]) == 64 for r in rows)
    assert json.loads((tmp_path / "out" / "list.parquet.meta.json").read_text())["version"] == 2
    blocklist = pq.read_table(tmp_path / "out" / "list.blocklist.parquet").to_pylist()
    assert sorted(r["key"] for r in blocklist) == ["1002", "coffee.jpg"]
    assert {(r["phash"], r["pdq"]) for r in blocklist} == {(r["phash"], r["pdq"]) for r in rows}


def test_export_credits_the_ticket_that_was_decided(index_dir, capsys, tmp_path, monkeypatch):
    ids = iter(["ZZZZZ1", "000001"])  # the linked ticket's id sorts before its primary's
    monkeypatch.setattr(filing_module, "new_ticket_id", lambda: next(ids))
    primary = file_request(capsys, index_dir, "u1", COFFEE)
    assert file_request(capsys, index_dir, "u2", COFFEE) == "000001"
    run_json(capsys, "tickets", "approve", primary, "--by", "alice", "--reason", "ok")

    run_json(capsys, "removals", "export", "--out", tmp_path / "list.parquet")

    assert [r["ticket_id"] for r in pq.read_table(tmp_path / "list.parquet").to_pylist()] == [primary]


def test_export_csv_and_jsonl(capsys, tmp_path, approved):
    report = run_json(capsys, "removals", "export", "--out", tmp_path / "list.csv")
    assert (report["version"], report["entries"], report["pictures"]) == (2, 2, 2)
    with (tmp_path / "list.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["key"], r["url"], r["added_in"]) for r in rows] == [
        ("1002", CHELSEA_URL, "2"),
        ("coffee.jpg", "", "1"),
    ]
    assert (tmp_path / "list.blocklist.csv").exists()

    report = run_json(capsys, "removals", "export", "--out", tmp_path / "list.out", "--format", "jsonl")
    assert report["blocklist"] == str(tmp_path / "list.blocklist.out")
    lines = (tmp_path / "list.out").read_text().splitlines()
    assert [(json.loads(line)["key"], json.loads(line)["url"]) for line in lines] == [
        ("1002", CHELSEA_URL),
        ("coffee.jpg", None),
    ]
    assert len((tmp_path / "list.blocklist.out").read_text().splitlines()) == 2

    code, out, _ = run(capsys, "removals", "export", "--out", tmp_path / "again.jsonl")
    assert code == 0
    assert out.startswith("removal list version 2: 2 entries -> ")
    assert "2 picture hashes -> " in out


def test_export_after_reopening_drops_the_entry_and_bumps_the_version(capsys, tmp_path, approved):
    run_json(capsys, "tickets", "reopen", approved["coffee"], "--by", "alice", "--reason", "mistake")

    report = run_json(capsys, "removals", "export", "--out", tmp_path / "list.parquet")

    assert (report["version"], report["entries"]) == (3, 1)
    assert [r["key"] for r in pq.read_table(tmp_path / "list.parquet").to_pylist()] == ["1002"]


def write_metadata(path: Path) -> None:
    """LAION-style metadata: 1002 is the listed entry (by key and URL); 1003 is its URL again."""
    table = pa.table(
        {
            "SAMPLE_ID": pa.array([1001, 1002, 1003, 1004], pa.int64()),
            "URL": ["https://example.org/a.jpg", CHELSEA_URL, CHELSEA_URL, "https://example.org/d.jpg"],
            "TEXT": ["a", "a cat", "the cat again", "d"],
        }
    )
    pq.write_table(table, path)


def test_apply_drops_listed_rows_from_laion_metadata(capsys, tmp_path, approved):
    listed = tmp_path / "list.parquet"
    run_json(capsys, "removals", "export", "--out", listed)
    metadata = tmp_path / "part-00000.parquet"
    write_metadata(metadata)
    out = tmp_path / "clean"

    summary = run_json(capsys, "removals", "apply", "--list", listed, metadata, "--out", out)

    assert summary["list_version"] == 2
    assert (summary["rows"], summary["kept"], summary["dropped"]) == (4, 2, 2)
    assert "dropped_rows" not in summary
    assert summary["files"][0]["dropped_by_reason"] == {"url": 1, "url+key": 1}
    cleaned = pq.read_table(out / "part-00000.parquet")
    assert cleaned.schema == pq.read_table(metadata).schema
    assert cleaned.column("SAMPLE_ID").to_pylist() == [1001, 1004]
    applied = json.loads((out / "removals-applied.json").read_text())
    assert [(r["key"], r["reason"], r["ticket_id"]) for r in applied["dropped_rows"]] == [
        ("1002", "url+key", approved["chelsea"]),
        ("1003", "url", approved["chelsea"]),
    ]

    by_key = run_json(
        capsys, "removals", "apply", "--list", listed, metadata, "--out", tmp_path / "k", "--match", "key"
    )
    assert (by_key["rows"], by_key["kept"], by_key["dropped"]) == (4, 3, 1)
    assert by_key["files"][0]["dropped_by_reason"] == {"key": 1}
    by_url = run_json(
        capsys, "removals", "apply", "--list", listed, metadata, "--out", tmp_path / "u", "--match", "url"
    )
    assert by_url["dropped"] == 2

    code, out_text, _ = run(capsys, "removals", "apply", "--list", listed, metadata, "--out", tmp_path / "t")
    assert code == 0
    assert "2 of 4 rows dropped" in out_text


def test_apply_refuses_an_unknown_match(capsys, tmp_path, approved):
    listed = tmp_path / "list.parquet"
    run_json(capsys, "removals", "export", "--out", listed)
    metadata = tmp_path / "part-00000.parquet"
    write_metadata(metadata)

    clean = tmp_path / "clean"
    code, out, err = run(
        capsys, "removals", "apply", "--list", listed, metadata, "--out", clean, "--match", "bogus"
    )

    assert code == 2
    assert out == ""
    assert "--match takes url, key or url,key" in err
    assert not clean.exists()
