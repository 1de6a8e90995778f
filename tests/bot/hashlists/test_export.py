"""``removals export --te-pdq FILE``: the approved pictures' PDQ hashes as a list python-threatexchange
reads back, through its own file exchange (the code path `threatexchange fetch` and HMA take for a
file collaboration), its validation and its PDQ index, getting exactly the approved pictures."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

from threatexchange.exchanges.impl.file_api import FileCollaborationConfig, LocalFileSignalExchangeAPI
from threatexchange.signal_type.pdq.signal import PdqSignal

from bot.cli import main
from bot.config import Settings
from bot.index.build import build_index
from bot.tickets.models import MatchedEntry
from bot.tickets.store import TicketStore
from tests.bot.hashlists.test_import import DATASET
from tests.bot.tickets.conftest import entry, query

MAINTAINER, REASON = "maint-one", "matches the requester's photo"


async def approved_and_not(db: Path, settings: Settings) -> tuple[set[str], set[str]]:
    """Three approved tickets (one picture at two URLs), one rejected, one still open: the PDQs
    approved, and those that must not be exported."""
    async with await TicketStore.open(db, settings.tickets) as store:
        same = whole_entry("a", url="https://one.example/a.jpg")
        again = whole_entry("a2", url="https://two.example/a.jpg", pdq=same.pdq, whole_pdq=same.whole_pdq)
        approved = [[same], [again, whole_entry("b")], [whole_entry("c"), entry("no-whole")]]
        for number, entries in enumerate(approved):
            ticket = await store.create_ticket(f"req-{number}", query(f"q{number}"), entries)
            await store.approve(ticket.id, MAINTAINER, REASON)
        rejected = await store.create_ticket("req-r", query("r"), [whole_entry("r")])
        await store.reject(rejected.id, MAINTAINER, "not the requester")
        await store.create_ticket("req-o", query("o"), [whole_entry("o")])
    kept = {whole_entry("r").whole_pdq, whole_entry("o").whole_pdq}
    return {e.whole_pdq for entries in approved for e in entries if e.whole_pdq}, kept


def whole_entry(key: str, **overrides: object) -> MatchedEntry:
    """An entry whose ticket keeps a whole-picture PDQ (derived from its key, unlike its row PDQ)."""
    whole = hashlib.sha256(f"whole:{key}".encode()).hexdigest()
    return entry(key, **{"whole_pdq": whole, "whole_quality": 80, **overrides})


def read_back(path: Path) -> dict[str, object]:
    """What python-threatexchange makes of the file: fetched as a file collaboration, converted to
    signals with its own validation (naive_convert_to_signal_type drops what fails it)."""
    api = LocalFileSignalExchangeAPI.for_collab(FileCollaborationConfig(name="dataset", filename=str(path)))
    updates: dict[tuple[str, str], object] = {}
    for delta in api.fetch_iter([PdqSignal], None):
        updates.update(delta.updates)
    collab = api.collab
    by_type = LocalFileSignalExchangeAPI.naive_convert_to_signal_type([PdqSignal], collab, updates)
    assert set(by_type) <= {PdqSignal}
    assert len(by_type.get(PdqSignal, {})) == len(updates)  # nothing dropped as invalid
    return dict(by_type.get(PdqSignal, {}))


def test_the_export_is_read_back_by_python_threatexchange(tmp_path: Path, settings: Settings, capsys) -> None:
    db = tmp_path / "t.sqlite3"
    approved, kept = asyncio.run(approved_and_not(db, settings))
    te_list = tmp_path / "out" / "dataset.pdq.te.txt"
    code = main(
        ["removals", "export", "--db", str(db), "--out", str(tmp_path / "list.csv"), "--te-pdq", str(te_list),
         "--json"]
    )  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["te_pdq"] == {"path": str(te_list), "hashes": len(approved), "without_whole_pdq": 1}
    assert len(approved) == 3  # a, b, c: the same picture at two URLs is one hash; no-whole left out

    signals = read_back(te_list)
    assert set(signals) == approved
    assert not kept & set(signals)
    for pdq in approved:  # each line also passes the library's own check as it stands
        assert PdqSignal.validate_signal_str(pdq) == pdq
    # and its PDQ index, which HMA matches with, finds each approved picture at distance 0
    index = PdqSignal.get_index_cls().build(signals.items())
    for pdq in approved:
        assert [match.similarity_info.distance for match in index.query(pdq)] == [0]


def test_an_empty_removal_list_gives_an_empty_te_list(tmp_path: Path, capsys) -> None:
    te_list = tmp_path / "empty.txt"
    code = main(
        ["removals", "export", "--db", str(tmp_path / "t.sqlite3"), "--out", str(tmp_path / "l.csv"),
         "--te-pdq", str(te_list)]
    )  # fmt: skip
    assert code == 0
    assert "0 whole-picture PDQ hashes (ThreatExchange list)" in capsys.readouterr().out
    assert te_list.read_text() == ""
    assert read_back(te_list) == {}


def test_the_export_imports_again_as_a_te_list(tmp_path: Path, settings: Settings, capsys) -> None:
    """Round trip: our own exported list is a list `hash-lists import` takes, hash for hash."""
    db = tmp_path / "t.sqlite3"
    approved, _ = asyncio.run(approved_and_not(db, settings))
    te_list = tmp_path / "dataset.txt"
    out = tmp_path / "l.csv"
    assert main(["removals", "export", "--db", str(db), "--out", str(out), "--te-pdq", str(te_list)]) == 0
    source = tmp_path / "pictures"
    source.mkdir()
    (source / "coffee.jpg").write_bytes((DATASET / "coffee.jpg").read_bytes())
    build_index([source], tmp_path / "index", settings, workers=1, show_progress=False)
    capsys.readouterr()
    code = main(
        ["hash-lists", "import", str(te_list), "--index", str(tmp_path / "index"), "--db", str(db),
         "--source", "ourselves", "--json"]
    )  # fmt: skip
    assert code == 0
    assert json.loads(capsys.readouterr().out)["counts"] == {"pdq": len(approved)}
