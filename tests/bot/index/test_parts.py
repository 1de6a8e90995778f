"""A served index made of parts answers exactly as one index holding the same shards.

The same synthetic entries are written twice: as one index with shards 00000-00002, and as a
served index whose part ``parts/000`` holds the first two shards and ``parts/001`` the third. A
look-up of either must give the same matches, distances, variants, order and counts; only the
shard names differ (``parts/001/00000`` is the one index's ``00002``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from bot.config import MatchingSettings
from bot.hashing import EntryHashes, QueryHashes
from bot.index.mih import refresh_search_tables
from bot.index.parts import PARTS_NAME, IncompleteSearchError, PartedIndex, read_parts, write_parts
from bot.index.search import HashIndex, LookUp
from bot.index.storage import DatasetEntry, IndexFormatError, Manifest, ShardWriter
from tests.bot.index.test_search import WORDS_PDQ, clustered_entries, make_query, query_near, random_words

RULES = [
    MatchingSettings(phash_max_distance=16, pdq_max_distance=80, pdq_min_quality=50),  # the defaults
    MatchingSettings(phash_max_distance=24, pdq_max_distance=128, pdq_min_quality=50),  # random hits
]


def write_shard(folder: Path, name: str, entries: list[tuple[str, EntryHashes]]) -> ShardWriter:
    writer = ShardWriter(folder, name)
    for key, hashes in entries:
        writer.add(DatasetEntry(key=key, url=f"https://example.org/{key}"), hashes)
    writer.commit()
    return writer


def write_index(folder: Path, shards: list[list[tuple[str, EntryHashes]]], *, tables: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    writers = [write_shard(folder, f"{number:05d}", entries) for number, entries in enumerate(shards)]
    files = {writer.name: writer.files for writer in writers}
    Manifest(hashing={"synthetic": True}, shards=[w.name for w in writers], files=files).write(folder)
    if tables:
        refresh_search_tables(folder)


def append_shard(folder: Path, entries: list[tuple[str, EntryHashes]]) -> None:
    """What ``index build --append`` does to a part: a new shard, then a new manifest."""
    manifest = Manifest.read(folder)
    writer = write_shard(folder, f"{len(manifest.shards):05d}", entries)
    manifest.shards.append(writer.name)
    manifest.files[writer.name] = writer.files
    manifest.write(folder)


@dataclass
class Served:
    one: Path  # one index with every shard
    served: Path  # the same shards as two parts
    entries: list[EntryHashes]
    renamed: dict[str, str]  # a part's qualified shard name -> the one index's shard name


def make_served(root: Path) -> Served:
    """Clusters of near-duplicates (some too plain to judge), spread over three shards."""
    rng = np.random.default_rng(20)
    _, entries = clustered_entries(
        rng, 120, copies=6, phash_bits=18, pdq_bits=90, qualities=[100, 80, 49, 10]
    )
    order = rng.permutation(len(entries))
    keyed = [(f"entry{i}", entries[i]) for i in order]
    third = len(keyed) // 3
    shards = [keyed[:third], keyed[third : 2 * third], keyed[2 * third :]]
    write_index(root / "one", shards, tables=True)
    write_index(root / "served" / "parts" / "000", shards[:2], tables=True)
    write_index(root / "served" / "parts" / "001", shards[2:], tables=False)  # scanned
    write_parts(root / "served", ["parts/000", "parts/001"])
    renamed = {"parts/000/00000": "00000", "parts/000/00001": "00001", "parts/001/00000": "00002"}
    return Served(root / "one", root / "served", [entries[i] for i in order], renamed)


def queries(data: Served, count: int, seed: int) -> list[QueryHashes]:
    """Queries near entries of every shard (some exact copies), and one near nothing."""
    rng = np.random.default_rng(seed)
    found = [
        query_near(rng, data.entries[int(target)], 4, phash_bits=(0, 10), pdq_bits=(0, 50), exact=i % 2 == 0)
        for i, target in enumerate(rng.choice(len(data.entries), size=count, replace=False))
    ]
    unrelated = make_query(random_words(rng, 3).tolist(), list(random_words(rng, (3, WORDS_PDQ))))
    return [*found, unrelated]


def as_one_index(looked_up: LookUp, renamed: dict[str, str]) -> LookUp:
    """A served index's look-up with the one index's shard names."""
    return replace(
        looked_up,
        found=[
            replace(item, match=replace(item.match, shard=renamed[item.match.shard]))
            for item in looked_up.found
        ],
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Served:
    return make_served(tmp_path_factory.mktemp("served"))


@pytest.mark.parametrize("rule", RULES, ids=["defaults", "wide"])
def test_a_parted_index_answers_as_one_index(served, rule):
    one, parted = HashIndex(served.one), PartedIndex(served.served)
    seen_parts, unjudged = set(), 0
    for query in queries(served, 8, seed=1):
        expected = one.look_up(query, rule, views=None)
        got = parted.look_up(query, rule, views=None)
        assert as_one_index(got, served.renamed) == expected
        seen_parts |= {item.match.shard.rpartition("/")[0] for item in got.found}
        unjudged += got.unjudged
    assert seen_parts == {"parts/000", "parts/001"}  # both parts answered some query
    assert unjudged > 0  # the too-plain entries are counted alike


def test_approved_removals_are_left_out_and_counted_alike(served):
    one, parted = HashIndex(served.one), PartedIndex(served.served)
    rule = RULES[1]
    query = queries(served, 1, seed=2)[0]
    found = one.look_up(query, rule, views=None).found
    assert found
    removed = {(item.entry.key, item.entry.url or "") for item in found[:1]}
    expected = one.look_up(query, rule, removed, views=None)
    got = parted.look_up(query, rule, removed, views=None)
    assert as_one_index(got, served.renamed) == expected
    assert got.removed == 1
    assert found[0].entry.key not in {item.entry.key for item in got.found}


def test_a_plain_index_folder_is_one_part_with_its_own_shard_names(served):
    assert [part.name for part in read_parts(served.one)] == [""]
    one, parted = HashIndex(served.one), PartedIndex(served.one)
    for query in queries(served, 3, seed=3):
        assert parted.look_up(query, RULES[0], views=None) == one.look_up(query, RULES[0], views=None)


def test_entry_hashes_come_from_the_matched_entrys_part(served):
    one, parted = HashIndex(served.one), PartedIndex(served.served)
    compared = 0
    for query in queries(served, 6, seed=4)[:-1]:
        for item in parted.look_up(query, RULES[0], views=None).found:
            same = replace(item.match, shard=served.renamed[item.match.shard])
            assert same_hashes(parted.entry_hashes(item.match), one.entry_hashes(same))
            compared += 1
    assert compared >= 6


def same_hashes(first: EntryHashes, second: EntryHashes) -> bool:
    return first.quality == second.quality and all(
        np.array_equal(first.signals[name], second.signals[name]) for name in first.signals | second.signals
    )


def test_shards_appended_to_a_part_and_new_parts_are_searched_without_reopening(tmp_path):
    data = make_served(tmp_path)
    parted = PartedIndex(data.served)  # opened before anything is added
    rng = np.random.default_rng(5)
    new = [
        EntryHashes(phash=int(random_words(rng, 1)[0]), pdq=random_words(rng, WORDS_PDQ), quality=100)
        for _ in range(2)
    ]
    query = make_query([new[0].phash], [new[0].pdq])
    assert parted.look_up(query, RULES[0], views=None).found == []

    append_shard(data.served / "parts" / "000", [("appended", new[0])])
    found = parted.look_up(query, RULES[0], views=None).found
    assert [(item.entry.key, item.match.shard) for item in found] == [("appended", "parts/000/00002")]

    write_index(data.served / "parts" / "002", [[("new-part", new[1])]], tables=True)
    write_parts(data.served, ["parts/000", "parts/001", "parts/002"])
    query = make_query([new[1].phash], [new[1].pdq])
    found = parted.look_up(query, RULES[0], views=None).found
    assert [(item.entry.key, item.match.shard) for item in found] == [("new-part", "parts/002/00000")]


def test_a_missing_part_is_an_error_never_a_smaller_index(tmp_path):
    data = make_served(tmp_path)
    parted = PartedIndex(data.served)
    query = queries(data, 1, seed=6)[0]
    assert parted.look_up(query, RULES[1], views=None).found
    shutil.move(data.served / "parts" / "001", tmp_path / "elsewhere")
    with pytest.raises(IncompleteSearchError, match=r"parts/001.*no manifest\.json"):
        parted.look_up(query, RULES[1], views=None)
    with pytest.raises(IndexFormatError):
        PartedIndex(data.served)


@pytest.mark.parametrize("name", ["/abs/part", "../outside", "a/../b", ""])
def test_a_list_of_parts_names_only_folders_inside_it(tmp_path, name):
    with pytest.raises(IndexFormatError, match="relative"):
        write_parts(tmp_path, [name])


def test_a_folder_that_is_neither_index_nor_parts_is_refused(tmp_path):
    with pytest.raises(IndexFormatError, match="not an index"):
        read_parts(tmp_path)
    (tmp_path / "parts.json").write_text('{"format": "something else"}')
    with pytest.raises(IndexFormatError, match="not a list of parts"):
        read_parts(tmp_path)


def test_parts_stay_on_living_workers_and_the_load_evens_out():
    from bot.index.served import balanced

    names = ["a", "b", "c", "d", "e"]
    first = balanced(names, ("w1", "w2"), {})
    assert first == {"a": "w1", "b": "w2", "c": "w1", "d": "w2", "e": "w1"}  # round robin
    replaced = balanced(names, ("w1", "w3"), first)  # w2 died, w3 replaced it
    assert replaced == {"a": "w1", "b": "w3", "c": "w1", "d": "w3", "e": "w1"}  # only w2's parts moved
    joined = balanced(names, ("w1", "w3", "w4"), replaced)  # a worker more: one part moves to it
    assert sum(joined[name] != replaced[name] for name in names) == 1
    assert sorted(list(joined.values()).count(w) for w in ("w1", "w3", "w4")) == [1, 2, 2]
    alone = balanced(names, ("w4",), joined)
    assert set(alone.values()) == {"w4"}
    assert balanced([*names, "f"], ("w4", "w5"), alone) == balanced([*names, "f"], ("w4", "w5"), alone)
    assert sorted(list(balanced(names, ("w4", "w5"), alone).values()).count(w) for w in ("w4", "w5")) == [
        2,
        3,
    ]
    assert balanced(names, (), first) == {}


def test_parts_held_by_some_workers_stay_on_them():
    from bot.index.served import balanced

    names = ["a", "b", "c", "d"]
    holders = {"a": frozenset({"w1"}), "b": frozenset({"w1"}), "c": frozenset({"w1", "w2"})}  # d: all
    first = balanced(names, ("w1", "w2", "w3"), {}, holders)
    assert first["a"] == first["b"] == "w1"
    assert first["c"] == "w2"  # w1 holds two already
    assert first["d"] == "w3"
    assert balanced(names, ("w2", "w3"), first, holders) == {"c": "w2", "d": "w3"}  # a, b: held by none
    crowded = balanced(names, ("w1", "w2"), dict.fromkeys(names, "w1"), holders)
    assert crowded == {"a": "w1", "b": "w1", "c": "w2", "d": "w2"}  # evened out among the holders


def test_index_parts_lists_parts_that_open_and_refuses_one_that_does_not(tmp_path, capsys):
    from bot.cli import main

    data = make_served(tmp_path)
    (data.served / PARTS_NAME).unlink()
    assert main(["index", "parts", str(data.served), "parts/000", "parts/missing"]) == 2
    assert "parts/missing" in capsys.readouterr().err
    assert not (data.served / PARTS_NAME).exists()  # nothing written

    assert main(["index", "parts", str(data.served), "parts/000", "parts/001"]) == 0
    assert f"serves 2 part(s), {len(data.entries)} entries" in capsys.readouterr().out
    assert [part.name for part in read_parts(data.served)] == ["parts/000", "parts/001"]
    query = queries(data, 1, seed=7)[0]
    assert as_one_index(PartedIndex(data.served).look_up(query, RULES[1], views=None), data.renamed) == (
        HashIndex(data.one).look_up(query, RULES[1], views=None)
    )
