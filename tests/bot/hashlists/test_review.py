"""A partner list's hits reviewed like a person's request: ``hash-lists scan --file``.

The index is built from sample pictures by ``index build`` (which keeps each entry's whole-picture
hashes); lists are made as a partner makes them, python-threatexchange's PDQ of the files and of
copies. Tickets are read back through the store, the audit log and the removal list.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from threatexchange.signal_type.pdq.signal import PdqSignal

from bot.checking import check_picture
from bot.cli import main
from bot.config import Settings, load_settings
from bot.index.parts import open_served
from bot.ticket_cli import describe_ticket
from bot.tickets.intake import file_removal_request
from bot.tickets.lifecycle import TicketState
from bot.tickets.list_filing import AUTO_APPROVE_POLICY, LIST_SOURCE
from bot.tickets.models import AuditEvent, RemovalRow, Ticket
from bot.tickets.store import TicketStore
from tests.bot.hashlists import test_scan
from tests.bot.hashlists.test_scan import DATASET, INDEXED, UNRELATED, copies, partner_pdq, run

built = test_scan.built  # the index of six sample pictures, with their whole-picture hashes

MAINTAINER = "maint-1"


def write_list(path: Path, rows: list[tuple[str, str]]) -> Path:
    """A CSV list as a partner sends it: hash and the partner's own id for it."""
    path.write_text("hash,id,category\n" + "".join(f"{value},{ident},ncii\n" for value, ident in rows))
    return path


def import_and_file(capsys, index: Path, db: Path, path: Path, source: str) -> dict:
    code, _, err = run(capsys, "hash-lists", "import", path, "--index", index, "--db", db, "--source", source)
    assert code == 0, err
    code, out, err = run(
        capsys, "hash-lists", "scan", "--index", index, "--db", db, "--source", source, "--file", "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["filed"] is not None
    return report


async def read_back(db: Path) -> tuple[list[Ticket], list[AuditEvent], list[RemovalRow]]:
    settings = load_settings(with_deployment_files=False)
    async with await TicketStore.open(db, settings.tickets) as store:
        tickets = await store.list_tickets(limit=1000)
        events = await store.audit_log()
        _, rows = await store.removal_list()
    return tickets, events, rows


def test_hits_become_tickets_that_name_the_list_and_no_requester(built, tmp_path, capsys) -> None:
    db = tmp_path / "t.sqlite3"
    first, second = INDEXED[0], INDEXED[3]
    listed = [
        (partner_pdq(copies((DATASET / first).read_bytes())[0]), "case-1"),  # a re-encoded copy
        (partner_pdq((DATASET / second).read_bytes()), "case-2"),
        (partner_pdq((DATASET / UNRELATED[1]).read_bytes()), "case-3"),  # in no dataset entry
    ]
    report = import_and_file(capsys, built.index, db, write_list(tmp_path / "l.csv", listed), "stopncii")
    assert report["filed"]["filed"] == 2
    assert report["filed"]["open"] == 2
    assert report["filed"]["auto_approved"] == 0
    tickets, events, rows = asyncio.run(read_back(db))
    assert len(tickets) == 2
    by_case = {ticket.list_hit.list_entry_id: ticket for ticket in tickets if ticket.list_hit}
    assert set(by_case) == {"case-1", "case-2"}
    for case, name, line in (("case-1", first, 2), ("case-2", second, 3)):
        ticket = by_case[case]
        assert ticket.state is TicketState.OPEN
        assert ticket.source == LIST_SOURCE
        assert ticket.requester is None
        assert ticket.query is None
        assert ticket.note is None
        origin = ticket.list_hit
        assert origin is not None
        assert (origin.source, origin.line, origin.category, origin.signal_type) == (
            "stopncii",
            line,
            "ncii",
            "pdq",
        )
        assert origin.policy is None
        [matched] = ticket.entries
        assert matched.entry_id == built.entries[name]
        assert matched.key.endswith(name)
        assert matched.variant == "list:pdq"
        assert 0 <= matched.pdq_distance <= 31
        assert matched.phash_distance == -1
        # the ticket keeps the entry's whole-picture PDQ, near the partner's hash of the same file
        assert matched.whole_pdq is not None
        assert pdq_distance(matched.whole_pdq, origin.hash) == matched.pdq_distance
    created = [event for event in events if event.action == "create"]
    assert {(e.actor_kind, e.actor, e.detail["list_source"]) for e in created} == {
        ("system", None, "stopncii")
    }
    assert rows == []  # nothing approved yet


def pdq_distance(first: str, second: str) -> int:
    return (int(first, 16) ^ int(second, 16)).bit_count()


def test_a_policy_approves_a_named_sources_hits_and_logs_it(built, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("REMOVAL_DESK_HASH_LISTS_AUTO_APPROVE", '["iwf"]')
    db = tmp_path / "t.sqlite3"
    trusted, other = INDEXED[2], INDEXED[4]
    iwf_list = write_list(tmp_path / "iwf.csv", [(partner_pdq((DATASET / trusted).read_bytes()), "iwf-9")])
    import_and_file(capsys, built.index, db, iwf_list, "iwf")
    other_list = write_list(tmp_path / "x.csv", [(partner_pdq((DATASET / other).read_bytes()), "x-1")])
    report = import_and_file(capsys, built.index, db, other_list, "someone-else")
    assert report["filed"]["open"] == 1  # only the named source is trusted
    tickets, events, rows = asyncio.run(read_back(db))
    approved = [ticket for ticket in tickets if ticket.state is TicketState.APPROVED]
    [ticket] = approved
    assert ticket.list_hit is not None
    assert (ticket.list_hit.source, ticket.list_hit.policy) == ("iwf", AUTO_APPROVE_POLICY)
    assert ticket.decided_by is None  # no maintainer decided it
    assert AUTO_APPROVE_POLICY in (ticket.decision_reason or "")
    [approval] = [event for event in events if event.action == "approve"]
    assert approval.ticket_id == ticket.id
    assert (approval.actor_kind, approval.actor) == ("system", None)
    assert approval.detail == {"policy": AUTO_APPROVE_POLICY, "list_source": "iwf"}
    assert (approval.from_state, approval.to_state) == ("open", "approved")
    # the removal list says which list removed the entry, and under which id the list knows it
    [row] = rows
    assert row.key.endswith(trusted)
    assert (row.removed_by_list, row.list_entry_id, row.ticket_id) == ("iwf", "iwf-9", ticket.id)
    assert row.whole_pdq == ticket.entries[0].whole_pdq
    assert ticket.approved_by_policy
    assert "approved by policy: `hash_lists.auto_approve`" in describe_ticket(ticket)
    reopened = asyncio.run(reopen(db, ticket.id))  # a maintainer may still take it back
    assert reopened.state is TicketState.OPEN
    assert not reopened.approved_by_policy
    assert "approved by policy" not in describe_ticket(reopened)


async def reopen(db: Path, ticket_id: str) -> Ticket:
    settings = load_settings(with_deployment_files=False)
    async with await TicketStore.open(db, settings.tickets) as store:
        return (await store.reopen(ticket_id, MAINTAINER, "the list's category is out of our scope")).ticket


def test_a_newer_version_of_a_list_files_only_what_it_adds(built, tmp_path, capsys) -> None:
    db = tmp_path / "t.sqlite3"
    old, added = INDEXED[0], INDEXED[5]
    first_hash = partner_pdq((DATASET / old).read_bytes())
    report = import_and_file(
        capsys, built.index, db, write_list(tmp_path / "v1.csv", [(first_hash, "a")]), "ncmec"
    )
    assert report["filed"]["filed"] == 1
    [ticket] = asyncio.run(read_back(db))[0]
    asyncio.run(reject(db, ticket.id))  # a maintainer's rejection stands against the next version
    newer = [(first_hash, "a"), (partner_pdq((DATASET / added).read_bytes()), "b")]
    report = import_and_file(capsys, built.index, db, write_list(tmp_path / "v2.csv", newer), "ncmec")
    # the source's lists are scanned together: v1's hash, and v2's two (one the same as v1's)
    assert report["hit_count"] == 3
    assert report["filed"]["filed"] == 1  # only the new one is filed
    assert report["filed"]["already_filed"] == 2
    tickets = asyncio.run(read_back(db))[0]
    assert sorted((t.list_hit.list_entry_id, str(t.state)) for t in tickets if t.list_hit) == [
        ("a", "rejected"),
        ("b", "open"),
    ]
    # the same scan once more files nothing
    code, out, _ = run(
        capsys,
        "hash-lists",
        "scan",
        "--index",
        built.index,
        "--db",
        db,
        "--source",
        "ncmec",
        "--file",
        "--json",
    )
    assert code == 0
    assert json.loads(out)["filed"]["filed"] == 0
    assert json.loads(out)["filed"]["already_filed"] == 3


async def reject(db: Path, ticket_id: str) -> None:
    settings = load_settings(with_deployment_files=False)
    async with await TicketStore.open(db, settings.tickets) as store:
        await store.reject(ticket_id, MAINTAINER, "the list's category is out of scope")


async def file_and_approve_a_persons_request(
    db: Path, index: Path, picture: bytes, settings: Settings
) -> Ticket:
    served = open_served(index)
    result = check_picture(picture, served, settings)
    assert result.found
    async with await TicketStore.open(db, settings.tickets) as store:
        ticket = await file_removal_request(store, served, result, "person-1")
        await store.approve(ticket.id, MAINTAINER, "the requester's photo")
        return await store.get(ticket.id)


def test_a_hit_on_an_entry_a_person_had_removed_is_approved_with_it(built, tmp_path, capsys) -> None:
    db = tmp_path / "t.sqlite3"
    settings = load_settings(with_deployment_files=False)
    name = INDEXED[3]
    data = (DATASET / name).read_bytes()
    persons = asyncio.run(file_and_approve_a_persons_request(db, built.index, data, settings))
    report = import_and_file(
        capsys, built.index, db, write_list(tmp_path / "l.csv", [(partner_pdq(data), "z")]), "c3p"
    )
    assert report["filed"]["approved"] == 1
    assert report["filed"]["auto_approved"] == 0
    tickets = asyncio.run(read_back(db))[0]
    [hit] = [ticket for ticket in tickets if ticket.list_hit]
    assert hit.state is TicketState.APPROVED
    assert persons.id in (hit.decision_reason or "")
    assert hit.decided_by == MAINTAINER


def test_the_te_export_carries_the_whole_picture_pdq_a_platform_computes(built, tmp_path, capsys) -> None:
    """A person's approved request, exported with --te-pdq: python-threatexchange's PDQ index,
    given the platform's own hash of the picture (and of a re-encoded copy), finds it."""
    db = tmp_path / "t.sqlite3"
    settings = load_settings(with_deployment_files=False)
    name = INDEXED[5]
    data = (DATASET / name).read_bytes()
    ticket = asyncio.run(file_and_approve_a_persons_request(db, built.index, data, settings))
    assert all(entry.whole_pdq for entry in ticket.entries)
    te_list = tmp_path / "dataset.te.txt"
    code, out, _ = run(
        capsys, "removals", "export", "--db", db, "--out", tmp_path / "l.csv", "--te-pdq", te_list, "--json"
    )
    assert code == 0
    assert json.loads(out)["te_pdq"]["without_whole_pdq"] == 0
    exported = [line.split()[1] for line in te_list.read_text().splitlines()]
    assert exported
    index = PdqSignal.get_index_cls().build((pdq, pdq) for pdq in exported)
    for platform_copy in (data, copies(data)[0]):
        assert index.query(partner_pdq(platform_copy)), "the platform's hash finds the export"
    assert not index.query(partner_pdq((DATASET / UNRELATED[0]).read_bytes()))


def test_filing_is_all_or_nothing(built, tmp_path, capsys, monkeypatch) -> None:
    """A failure while filing a scan's hits leaves no ticket behind (one transaction)."""
    db = tmp_path / "t.sqlite3"
    listed = [(partner_pdq((DATASET / name).read_bytes()), name) for name in (INDEXED[0], INDEXED[3])]
    run(
        capsys,
        "hash-lists",
        "import",
        write_list(tmp_path / "l.csv", listed),
        "--index",
        built.index,
        "--db",
        db,
        "--source",
        "s",
    )
    from bot.tickets import list_filing

    calls = 0
    original = list_filing.insert_entries

    async def failing_second(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("disk full")
        await original(*args, **kwargs)

    monkeypatch.setattr(list_filing, "insert_entries", failing_second)
    with pytest.raises(RuntimeError):
        main(["hash-lists", "scan", "--index", str(built.index), "--db", str(db), "--source", "s", "--file"])
    monkeypatch.undo()
    assert calls == 2
    tickets, events, _ = asyncio.run(read_back(db))
    assert tickets == []
    assert [event.action for event in events] == []


def test_an_md5_hit_becomes_a_ticket_that_says_it_is_the_very_same_file(built, tmp_path, capsys) -> None:
    db = tmp_path / "t.sqlite3"
    name = INDEXED[5]
    data = (DATASET / name).read_bytes()
    listed = [(test_scan.md5_hex(data), "case-md5"), (test_scan.md5_hex(copies(data)[0]), "case-copy")]
    report = import_and_file(capsys, built.index, db, write_list(tmp_path / "l.csv", listed), "iwf")
    assert (report["hashes"], report["filed"]["filed"]) == ({"md5": 2}, 1)
    [ticket], _, _ = asyncio.run(read_back(db))
    assert ticket.list_hit is not None
    assert (ticket.list_hit.signal_type, ticket.list_hit.list_entry_id) == ("md5", "case-md5")
    [matched] = ticket.entries
    assert (matched.entry_id, matched.variant) == (built.entries[name], "list:md5")
    assert (matched.pdq_distance, matched.phash_distance) == (-1, -1)
    assert "the very same file" in describe_ticket(ticket)
