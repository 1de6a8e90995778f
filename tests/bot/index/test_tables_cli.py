"""`index tables` builds an index's search tables; `index info` reports them; answers stay the same."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bot.cli import main

SAMPLES = Path(__file__).resolve().parents[3] / "samples"


def _info(folder: Path, capsys) -> dict:
    assert main(["index", "info", str(folder), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _check(folder: Path, capsys) -> list[dict]:
    queries = sorted(str(path) for path in (SAMPLES / "queries").glob("*.jpg"))
    assert main(["check", "--index", str(folder), "--json", *queries]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_tables_are_built_reported_and_change_no_answer(tmp_path, capsys):
    folder = tmp_path / "index"
    assert (
        main(["index", "build", str(SAMPLES / "dataset"), "--out", str(folder), "--quiet", "--workers", "1"])
        == 0
    )
    capsys.readouterr()
    assert _info(folder, capsys)["search_tables"]["covered_shards"] == 1  # the build made them
    shutil.rmtree(folder / "search")
    assert _info(folder, capsys)["search_tables"]["covered_shards"] == 0
    scanned = _check(folder, capsys)

    assert main(["index", "tables", str(folder)]) == 0
    output = capsys.readouterr().out
    info = _info(folder, capsys)
    assert f"search tables over {info['rows']} rows" in output
    assert info["entries"] == 9
    assert info["search_tables"]["covered_shards"] == len(info["shards"])
    assert info["search_tables"]["scanned_shards"] == 0
    assert info["search_tables"]["bytes"] > 0
    assert _check(folder, capsys) == scanned
    assert any(record["matches"] for record in scanned)
