"""What ``index info`` (and the bot's ``/index info``) says about an index: bot.index.describe."""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import Settings
from bot.index.build import build_index
from bot.index.describe import describe_index, describe_served, phash_radii
from bot.index.parts import PartedIndex, write_parts
from bot.index.search import HashIndex
from bot.index.storage import FORMAT_VERSION, HISTORY_NAME, IndexHistory
from bot.signals import signal_kinds
from bot.tickets.store import TicketStore
from tests.bot.tickets.conftest import entry, query

DATASET = Path(__file__).resolve().parents[3] / "samples" / "dataset"


def folder_of(path: Path, *names: str, broken: bool = False) -> Path:
    path.mkdir(parents=True)
    for name in names:
        shutil.copy(DATASET / name, path / name)
    if broken:
        (path / "broken.jpg").write_bytes(b"not a picture")
    return path


def stamp_of(text: str) -> datetime:
    return datetime.fromisoformat(text)


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def two_builds(tmp_path: Path, settings: Settings) -> tuple[Path, Path, Path]:
    """An index of two sources, the second appended: (index, first source, second source)."""
    first = folder_of(tmp_path / "first", "coffee.jpg", "chelsea.jpg")
    second = folder_of(tmp_path / "second", "rocket.jpg", broken=True)
    out = tmp_path / "index"
    build_index([first], out, settings, workers=1, show_progress=False)
    build_index([second], out, settings, workers=1, append=True, show_progress=False)
    return out, first, second


def test_description_counts_entries_and_sources_as_built(two_builds, settings: Settings):
    out, first, second = two_builds
    index = HashIndex(out)

    described = describe_index(index, settings, removed=2)

    assert (described.entries, described.rows, described.removed) == (3, index.rows, 2)
    assert described.rows >= described.entries  # every entry has its central region, some a core
    assert [(s.source, s.shards, s.entries, s.failures) for s in described.sources] == [
        (str(first.absolute()), 1, 2, 0),
        (str(second.absolute()), 1, 1, 1),
    ]
    assert described.failures == {"not_an_image": 1}
    assert [shard["name"] for shard in described.shards] == ["00000", "00001"]
    assert described.format_version == FORMAT_VERSION
    on_disk = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    assert described.size_bytes == on_disk
    assert described.search_tables["covered_shards"] == 2


def test_build_date_is_the_first_build_and_an_append_moves_only_the_last_addition(
    tmp_path: Path, settings: Settings
):
    out = tmp_path / "index"
    before = now()
    build_index([folder_of(tmp_path / "a", "coffee.jpg")], out, settings, workers=1, show_progress=False)
    built = IndexHistory.read(out)
    after = now()
    assert built.built_at is not None
    assert built.last_added_at is not None
    assert before <= stamp_of(built.built_at) <= stamp_of(built.last_added_at) <= after
    # the history of the first build, as if written long ago: an append keeps built_at
    IndexHistory(built_at="2026-01-02T03:04:05Z", last_added_at="2026-01-02T03:04:05Z").write(out)

    source = folder_of(tmp_path / "b", "rocket.jpg")
    build_index([source], out, settings, workers=1, append=True, show_progress=False)

    described = describe_index(HashIndex(out), settings)
    assert described.built_at == "2026-01-02T03:04:05Z"
    assert described.last_added_at is not None
    assert stamp_of(described.last_added_at) >= after
    # a run that adds nothing (every unit already in) leaves manifest and history alone
    manifest, history = (out / "manifest.json").read_bytes(), (out / HISTORY_NAME).read_bytes()
    build_index([source], out, settings, workers=1, append=True, show_progress=False)
    assert (out / "manifest.json").read_bytes() == manifest
    assert (out / HISTORY_NAME).read_bytes() == history


def test_the_dates_stay_out_of_the_manifest(two_builds):
    """The manifest is a function of the sources (two builds of them are the same bytes)."""
    manifest = (two_builds[0] / "manifest.json").read_text()
    assert "built_at" not in manifest
    assert "last_added_at" not in manifest


@pytest.mark.parametrize("history", [None, b"{not json", b"[1, 2]", b'{"built_at": 5}'])
def test_an_index_built_before_dates_were_recorded_says_unknown(
    two_builds, settings: Settings, capsys, history: bytes | None
):
    out = two_builds[0]
    if history is None:
        (out / HISTORY_NAME).unlink()
    else:
        (out / HISTORY_NAME).write_bytes(history)

    described = describe_index(HashIndex(out), settings)

    assert described.built_at is None
    assert main(["index", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "built unknown" in text
    assert main(["index", "info", str(out), "--json"]) == 0
    parsed = json.loads(capsys.readouterr().out)
    assert parsed["built_at"] is None
    assert parsed["entries"] == 3
    if history is None:
        assert (described.last_added_at, parsed["last_added_at"]) == (None, None)
        assert "last shard added unknown" in text


def test_signal_kinds_and_thresholds_are_those_of_the_registry_and_the_settings(
    two_builds, settings: Settings
):
    rule = replace(
        settings.matching,
        phash_max_distance=7,
        pdq_max_distance=70,
        turn_phash_max_distance=5,
        core_phash_max_distance=3,
        grid_phash_max_distance=2,
        verify_min_shape=0.91,
        pdq_min_quality=44,
    )

    described = describe_index(HashIndex(two_builds[0]), replace(settings, matching=rule))

    assert [(k.name, k.bits, k.in_index) for k in described.signal_kinds] == [
        (kind.name, kind.bits, True) for kind in signal_kinds()
    ]
    assert [k.name for k in described.signal_kinds if k.searched] == ["phash"]  # what the tables key on
    assert {k.name: k.max_distance for k in described.signal_kinds} == {"phash": 7, "pdq": 70}
    rules = described.thresholds
    assert rules["max_distance"] == {"phash": 7, "pdq": 70}
    assert rules["pdq_min_quality"] == 44
    assert rules["phash_radii"] == {"picture": 7, "turned": 5, "core": 3, "core_guess": 3, "core_grid": 2}
    assert rules["verification"]["min_shape"] == 0.91
    assert rules["verify_near"] == {"phash": rule.verify_near_phash, "pdq": rule.verify_near_pdq}


def test_unset_guess_radii_fall_back_as_the_match_rule_does(settings: Settings):
    rule = replace(
        settings.matching,
        phash_max_distance=9,
        turn_phash_max_distance=-1,
        core_phash_max_distance=-1,
        grid_phash_max_distance=-1,
    )
    assert phash_radii(rule) == {"picture": 9, "turned": 9, "core": 9, "core_guess": 9, "core_grid": 9}
    # a guess radius wider than the rule's is held to the rule's
    assert phash_radii(replace(rule, turn_phash_max_distance=12))["turned"] == 9


def test_cli_info_json_keeps_its_keys_and_counts_approved_removals(
    two_builds, settings: Settings, tmp_path: Path, capsys, monkeypatch
):
    out = two_builds[0]
    database = tmp_path / "tickets.sqlite3"

    async def approve_one() -> None:
        async with await TicketStore.open(database, settings.tickets) as store:
            ticket = await store.create_ticket("req", query(), [entry("coffee.jpg", None)])
            await store.approve(ticket.id, "maint", "ok")

    asyncio.run(approve_one())
    monkeypatch.setenv("REMOVAL_DESK_TICKETS_DATABASE", str(database))

    assert main(["index", "info", str(out), "--json"]) == 0
    parsed = json.loads(capsys.readouterr().out)

    for key in ("folder", "entries", "rows", "hashing", "shards", "search_tables"):
        assert key in parsed
    assert parsed["removed"] == 1
    assert parsed["entries"] == 3
    assert [source["entries"] for source in parsed["sources"]] == [2, 1]
    assert main(["index", "info", str(out)]) == 0
    assert "1 removal(s) approved" in capsys.readouterr().out


def test_a_folder_of_parts_is_described_as_the_sum_of_its_parts_and_a_plain_one_as_before(
    two_builds, settings: Settings, tmp_path: Path, capsys
):
    out, _first, _second = two_builds
    served = tmp_path / "served"
    shutil.copytree(out, served / "parts" / "a")
    build_index([folder_of(tmp_path / "third", "astronaut.jpg")], served / "parts" / "b", settings, workers=1)
    write_parts(served, ["parts/a", "parts/b"])
    a, b = (describe_index(HashIndex(served / "parts" / name), settings) for name in ("a", "b"))

    described = describe_served(PartedIndex(served), settings, removed=1)

    assert (described.entries, described.rows, described.removed) == (4, a.rows + b.rows, 1)
    names = [shard["name"] for shard in described.shards]
    assert names == ["parts/a/00000", "parts/a/00001", "parts/b/00000"]
    assert [(s.shards, s.entries, s.failures) for s in described.sources] == [(1, 2, 0), (1, 1, 1), (1, 1, 0)]
    assert described.failures == {"not_an_image": 1}
    assert described.built_at == min(a.built_at, b.built_at)  # type: ignore[type-var]
    assert described.last_added_at == max(a.last_added_at, b.last_added_at)  # type: ignore[type-var]
    assert described.size_bytes == a.size_bytes + b.size_bytes
    assert described.search_tables["covered_shards"] == 3
    assert described.folder == str(served)
    assert main(["index", "info", str(served)]) == 0
    assert f"index {served}: 4 entries in 3 shard(s)" in capsys.readouterr().out

    plain = describe_served(PartedIndex(out), settings, removed=2)
    assert plain == describe_index(HashIndex(out), settings, removed=2)
