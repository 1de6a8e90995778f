"""``hash-lists scan --dask``: every part scanned at once by a Dask worker, the answer the same as
one process's, hits filed from it without reading the parts again.

One LocalCluster of two single-threaded worker processes: the scan's tasks and their reports are
pickled and sent as to other machines.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import LocalCluster

from bot.errors import RemovalDeskError
from bot.hashlists.scan import ListHash, scan_index
from bot.index.parts import write_parts
from tests.bot.hashlists import test_scan
from tests.bot.hashlists.test_review import read_back, write_list
from tests.bot.hashlists.test_scan import DATASET, INDEXED, UNRELATED, copies, partner_pdq, run

built = test_scan.built  # the index of six sample pictures, with their whole-picture hashes


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


@pytest.fixture
def served(built, tmp_path) -> Path:
    """The index as two parts (the same entries in each, named apart by their part)."""
    folder = tmp_path / "served"
    for part in ("parts/a", "parts/b"):
        shutil.copytree(built.index, folder / part)
    write_parts(folder, ["parts/a", "parts/b"])
    return folder


def partner_list(tmp_path: Path) -> Path:
    listed = [
        (partner_pdq(copies((DATASET / INDEXED[0]).read_bytes())[2]), "c-1"),
        (partner_pdq((DATASET / INDEXED[4]).read_bytes()), "c-2"),
        (partner_pdq((DATASET / UNRELATED[2]).read_bytes()), "c-3"),
    ]
    return write_list(tmp_path / "list.csv", listed)


def test_the_cluster_scan_answers_as_one_process_and_files_its_hits(
    built, served, scheduler, tmp_path, capsys
) -> None:
    db = tmp_path / "t.sqlite3"
    code, _, err = run(
        capsys, "hash-lists", "import", partner_list(tmp_path), "--index", served, "--db", db, "--source", "x"
    )
    assert code == 0, err
    common = ("hash-lists", "scan", "--index", served, "--db", db, "--source", "x", "--json")
    code, out, err = run(capsys, *common)
    assert code == 0, err
    alone = json.loads(out)
    code, out, err = run(capsys, *common, "--dask", scheduler, "--file")
    assert code == 0, err
    clustered = json.loads(out)
    assert clustered["hits"] == alone["hits"]
    assert (clustered["entries"], clustered["complete"]) == (alone["entries"], True)
    assert {hit["entry"] for hit in clustered["hits"]} == {
        f"parts/{part}/{built.entries[name]}" for part in "ab" for name in (INDEXED[0], INDEXED[4])
    }
    assert clustered["filed"]["filed"] == 2  # one ticket per list hash
    tickets, _, _ = asyncio.run(read_back(db))
    by_case = {ticket.list_hit.list_entry_id: ticket for ticket in tickets if ticket.list_hit}
    assert sorted(by_case) == ["c-1", "c-2"]
    for case, name in (("c-1", INDEXED[0]), ("c-2", INDEXED[4])):
        # the two parts hold copies of the same dataset entries (same key and URL): one entry each
        [entry] = by_case[case].entries
        assert entry.entry_id in {f"parts/{part}/{built.entries[name]}" for part in "ab"}
        assert entry.key.endswith(name)
        assert entry.whole_pdq  # read on the worker, with the hit


def test_a_part_no_worker_can_read_refuses_the_scan_naming_it(
    built, served, scheduler, tmp_path, capsys
) -> None:
    shutil.rmtree(served / "parts/b")
    hashes = [ListHash(1, 1, "pdq", partner_pdq((DATASET / INDEXED[0]).read_bytes()))]
    with pytest.raises(RemovalDeskError, match="parts/b"):  # in one process: the part cannot open
        scan_index(served, hashes)
    db = tmp_path / "t.sqlite3"
    shutil.copytree(built.index, tmp_path / "whole")  # import checks the signal types on an index
    run(
        capsys,
        "hash-lists",
        "import",
        partner_list(tmp_path),
        "--index",
        tmp_path / "whole",
        "--db",
        db,
        "--source",
        "x",
    )
    code, out, err = run(
        capsys, "hash-lists", "scan", "--index", served, "--db", db, "--source", "x", "--dask", scheduler
    )
    assert code == 2
    assert "parts/b" in err
    assert out == ""
