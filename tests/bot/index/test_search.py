"""The index search is exact: it returns what the plain rule in bot.matching accepts, nothing else.

Indexes are written directly with ShardWriter from synthetic hashes, so every distance is known.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bot.config import MatchingSettings
from bot.hashing import EntryHashes, EntryPart, Guess, QueryHashes, RowKind
from bot.index import search
from bot.index.search import HashIndex
from bot.index.storage import DatasetEntry, Manifest, ShardWriter
from bot.matching import EntryMatch, MatchDistance, best_variant

WORDS_PDQ = 4


def random_words(rng: np.random.Generator, shape: int | tuple[int, ...]) -> np.ndarray:
    return rng.integers(0, 2**64, size=shape, dtype=np.uint64)


def flip_phash(rng: np.random.Generator, value: int, bits: int) -> int:
    for position in rng.choice(64, size=bits, replace=False):
        value ^= 1 << int(position)
    return value


def flip_pdq(rng: np.random.Generator, words: np.ndarray, bits: int) -> np.ndarray:
    flipped = np.array(words, dtype=np.uint64)
    for position in rng.choice(256, size=bits, replace=False):
        flipped[position // 64] ^= np.uint64(1 << int(position % 64))
    return flipped


def write_index(folder: Path, shards: list[list[EntryHashes]]) -> HashIndex:
    """An index with one shard per list; entry key ``"<shard>/<row>"``."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for number, entries in enumerate(shards):
        writer = ShardWriter(folder, f"{number:05d}")
        for row, hashes in enumerate(entries):
            writer.add(DatasetEntry(key=f"{number:05d}/{row}", url=f"https://example.org/{row}"), hashes)
        writer.commit()
        names.append(writer.name)
    Manifest(hashing={"synthetic": True}, shards=names).write(folder)
    return HashIndex(folder)


def brute_force(index: HashIndex, query: QueryHashes, rule: MatchingSettings) -> list[EntryMatch]:
    """The rule of bot.matching applied to every row, one by one; an entry found through several
    rows (its whole picture, its photographs) is reported once, by its closest row."""
    best: dict[tuple[str, int], EntryMatch] = {}
    for shard in index.shards:
        qualities = shard.quality.tolist()
        for row in range(len(shard)):
            kind = shard.row_kind(row)
            found = best_variant(query, shard.row_signals(row), qualities[row], rule, kind=kind)
            if found is None:
                continue
            match = EntryMatch(shard=shard.name, row=row, distance=found[0], variant=found[1])
            entry = (shard.name, shard.entry_number(row))
            if entry not in best or match.sort_key < best[entry].sort_key:
                best[entry] = match
    return sorted(best.values(), key=lambda match: match.sort_key)


def make_query(phashes: list[int], pdqs: list[np.ndarray], names: list[str] | None = None) -> QueryHashes:
    return QueryHashes(
        phash=np.array(phashes, dtype=np.uint64),
        pdq=np.stack(pdqs).astype(np.uint64),
        variants=tuple(names or [f"v{i}" for i in range(len(phashes))]),
        quality=100,
    )


def query_near(
    rng: np.random.Generator,
    entry: EntryHashes,
    variants: int,
    *,
    phash_bits: tuple[int, int],
    pdq_bits: tuple[int, int],
    exact: bool = False,
) -> QueryHashes:
    """A query whose variants are copies of ``entry`` with random bit flips (and one unrelated).

    With ``exact``, one variant (not the first) is an unchanged copy of ``entry``.
    """
    phashes = [flip_phash(rng, entry.phash, int(rng.integers(*phash_bits))) for _ in range(variants - 1)]
    pdqs = [flip_pdq(rng, entry.pdq, int(rng.integers(*pdq_bits))) for _ in range(variants - 1)]
    if exact:
        phashes[-1], pdqs[-1] = entry.phash, np.array(entry.pdq, dtype=np.uint64)
    phashes.append(int(random_words(rng, 1)[0]))
    pdqs.append(random_words(rng, WORDS_PDQ))
    return make_query(phashes, pdqs)


def assert_exact(index: HashIndex, query: QueryHashes, rule: MatchingSettings) -> list[EntryMatch]:
    found = index.search(query, rule)
    expected = brute_force(index, query, rule)
    assert found == expected  # same entries, same distances, same variants, same order
    assert [m.sort_key for m in found] == sorted(m.sort_key for m in found)
    return found


RULES = [
    MatchingSettings(phash_max_distance=16, pdq_max_distance=80, pdq_min_quality=50),  # the defaults
    MatchingSettings(phash_max_distance=0, pdq_max_distance=0, pdq_min_quality=0),
    MatchingSettings(phash_max_distance=24, pdq_max_distance=128, pdq_min_quality=50),  # random hits
    MatchingSettings(phash_max_distance=64, pdq_max_distance=256, pdq_min_quality=90),  # everything
]


@pytest.fixture(scope="module")
def random_index(tmp_path_factory) -> tuple[HashIndex, list[EntryHashes]]:
    """About 3000 uniformly random entries in shards of uneven sizes, one of them empty."""
    rng = np.random.default_rng(20240601)
    sizes = [1000, 0, 1, 1333, 777]
    entries = [
        EntryHashes(
            phash=int(random_words(rng, 1)[0]),
            pdq=random_words(rng, WORDS_PDQ),
            quality=int(rng.choice([100, 100, 100, int(rng.integers(0, 101))])),
        )
        for _ in range(sum(sizes))
    ]
    shards, start = [], 0
    for size in sizes:
        shards.append(entries[start : start + size])
        start += size
    return write_index(tmp_path_factory.mktemp("random-index"), shards), entries


def clustered_entries(
    rng: np.random.Generator, count: int, *, copies: int, phash_bits: int, pdq_bits: int, qualities: list[int]
) -> tuple[list[EntryHashes], list[EntryHashes]]:
    """``count`` random centres (quality 100) and, after them, each centre's 0..copies-1
    near-duplicates (under ``phash_bits`` pHash and ``pdq_bits`` PDQ bits flipped, a quality drawn
    from ``qualities``): (centres, centres + copies)."""
    centres = [
        EntryHashes(phash=int(random_words(rng, 1)[0]), pdq=random_words(rng, WORDS_PDQ), quality=100)
        for _ in range(count)
    ]
    entries = list(centres)
    for centre in centres:
        for _ in range(int(rng.integers(0, copies))):
            entries.append(
                EntryHashes(
                    phash=flip_phash(rng, centre.phash, int(rng.integers(0, phash_bits))),
                    pdq=flip_pdq(rng, centre.pdq, int(rng.integers(0, pdq_bits))),
                    quality=int(rng.choice(qualities)),
                )
            )
    return centres, entries


@pytest.fixture(scope="module")
def clustered_index(tmp_path_factory) -> tuple[HashIndex, list[EntryHashes]]:
    """300 centres with 0-15 near-duplicates each (0-20 pHash bits, 0-100 PDQ bits flipped), shuffled."""
    rng = np.random.default_rng(7)
    centres, entries = clustered_entries(
        rng, 300, copies=16, phash_bits=21, pdq_bits=101, qualities=[100, 80, 50, 49, 10]
    )
    order = rng.permutation(len(entries))
    entries = [entries[i] for i in order]
    third = len(entries) // 3
    shards = [entries[:third], entries[third : 2 * third], entries[2 * third :]]
    return write_index(tmp_path_factory.mktemp("clustered-index"), shards), [centres[0], *entries]


@pytest.mark.parametrize("rule", RULES, ids=["defaults", "zero", "wide", "all"])
def test_random_index_search_equals_brute_force(random_index, rule):
    index, entries = random_index
    rng = np.random.default_rng(1)
    total = 0
    for i, target in enumerate(rng.choice(len(entries), size=6, replace=False)):
        query = query_near(rng, entries[target], 5, phash_bits=(0, 20), pdq_bits=(0, 100), exact=i % 2 == 0)
        total += len(assert_exact(index, query, rule))
    unrelated = make_query(random_words(rng, 3).tolist(), list(random_words(rng, (3, WORDS_PDQ))))
    total += len(assert_exact(index, unrelated, rule))
    assert total > 0


def test_random_index_wide_rule_yields_many_matches_across_shards(random_index):
    index, _ = random_index
    rng = np.random.default_rng(2)
    query = make_query(random_words(rng, 4).tolist(), list(random_words(rng, (4, WORDS_PDQ))))
    found = assert_exact(index, query, RULES[2])
    assert len(found) > 50
    assert len({m.shard for m in found}) >= 3


@pytest.mark.parametrize("rule", RULES[:3], ids=["defaults", "zero", "wide"])
def test_clustered_index_search_equals_brute_force(clustered_index, rule):
    index, entries = clustered_index
    rng = np.random.default_rng(3)
    sizes = []
    for i, target in enumerate([0, *rng.choice(len(entries), size=7, replace=False)]):
        query = query_near(rng, entries[target], 4, phash_bits=(0, 12), pdq_bits=(0, 60), exact=i % 2 == 0)
        sizes.append(len(assert_exact(index, query, rule)))
    if rule.phash_max_distance:
        assert max(sizes) >= 2  # clusters give several matches per query, at various distances


@pytest.mark.parametrize("block", [64, 7, 1])
def test_search_crosses_block_boundaries_exactly(clustered_index, random_index, monkeypatch, block):
    monkeypatch.setattr(search, "_BLOCK", block)
    rng = np.random.default_rng(4)
    index, entries = clustered_index
    for target in rng.choice(len(entries), size=3, replace=False):
        query = query_near(rng, entries[target], variants=4, phash_bits=(0, 12), pdq_bits=(0, 60))
        assert_exact(index, query, RULES[0])
    index, _ = random_index
    query = make_query(random_words(rng, 2).tolist(), list(random_words(rng, (2, WORDS_PDQ))))
    assert len(assert_exact(index, query, RULES[2])) > 20


def test_small_block_gives_the_same_result_as_the_default_block(clustered_index, monkeypatch):
    index, entries = clustered_index
    rng = np.random.default_rng(5)
    query = query_near(rng, entries[0], variants=6, phash_bits=(0, 10), pdq_bits=(0, 40))
    default = index.search(query, RULES[0])
    monkeypatch.setattr(search, "_BLOCK", 64)
    assert index.search(query, RULES[0]) == default
    assert default


# --- the radius edges, with known distances ---------------------------------------------------------

RULE = MatchingSettings(phash_max_distance=16, pdq_max_distance=80, pdq_min_quality=50)


@pytest.fixture
def edge_index(tmp_path) -> tuple[HashIndex, QueryHashes]:
    rng = np.random.default_rng(11)
    base_phash = int(random_words(rng, 1)[0])
    base_pdq = random_words(rng, WORDS_PDQ)

    def entry(phash_bits: int, pdq_bits: int, quality: int = 100) -> EntryHashes:
        return EntryHashes(
            phash=flip_phash(rng, base_phash, phash_bits),
            pdq=flip_pdq(rng, base_pdq, pdq_bits),
            quality=quality,
        )

    entries = [
        entry(16, 80),  # 0: exactly on both radii: matches
        entry(17, 80),  # 1: one pHash bit more: no
        entry(16, 81),  # 2: one PDQ bit more: no
        entry(0, 0, quality=49),  # 3: identical but quality below the minimum: never
        entry(0, 0, quality=50),  # 4: quality exactly the minimum: matches
        entry(0, 0, quality=0),  # 5: never
        entry(64, 256),  # 6: every bit different
        entry(3, 7),  # 7: close
    ]
    noise = [
        EntryHashes(phash=int(random_words(rng, 1)[0]), pdq=random_words(rng, WORDS_PDQ), quality=100)
        for _ in range(200)
    ]
    index = write_index(tmp_path / "index", [entries, noise])
    # variant "far" is unrelated; "near" is the base the entries were made from
    query = make_query([int(random_words(rng, 1)[0]), base_phash], [random_words(rng, WORDS_PDQ), base_pdq])
    return index, replace(query, variants=("far", "near"))


def distances(
    index: HashIndex, query: QueryHashes, rule: MatchingSettings
) -> dict[str, tuple[int, int, str]]:
    return {
        found.entry.key: (found.match.distance.pdq, found.match.distance.phash, found.match.variant)
        for found in index.find(query, rule, views=None)  # hashes alone: these entries have no pictures
    }


def test_radius_edges_are_inclusive_and_one_bit_more_is_out(edge_index):
    index, query = edge_index

    assert distances(index, query, RULE) == {
        "00000/0": (80, 16, "near"),
        "00000/4": (0, 0, "near"),
        "00000/7": (7, 3, "near"),
    }
    assert [m.row for m in assert_exact(index, query, RULE)] == [4, 7, 0]  # best (smallest PDQ) first


def test_radius_edges_move_with_the_rule(edge_index):
    index, query = edge_index
    wider = MatchingSettings(phash_max_distance=17, pdq_max_distance=81, pdq_min_quality=49)

    assert set(distances(index, query, wider)) == {
        "00000/0",
        "00000/1",
        "00000/2",
        "00000/3",
        "00000/4",
        "00000/7",
    }
    assert_exact(index, query, wider)
    tighter = MatchingSettings(phash_max_distance=15, pdq_max_distance=79, pdq_min_quality=51)
    assert set(distances(index, query, tighter)) == {"00000/7"}
    assert_exact(index, query, tighter)


def test_low_quality_entry_never_matches_even_when_identical(tmp_path):
    rng = np.random.default_rng(12)
    pdq = random_words(rng, WORDS_PDQ)
    index = write_index(
        tmp_path / "index", [[EntryHashes(phash=5, pdq=pdq, quality=q) for q in (0, 49, 50, 100)]]
    )
    query = make_query([5], [pdq])

    assert [m.row for m in index.search(query, RULE)] == [2, 3]
    strict = replace(RULE, pdq_min_quality=101)
    assert index.search(query, strict) == []
    assert brute_force(index, query, strict) == []


def test_best_variant_is_reported_and_pdq_distance_ranks_before_phash(tmp_path):
    rng = np.random.default_rng(13)
    phash = int(random_words(rng, 1)[0])
    pdq = random_words(rng, WORDS_PDQ)
    index = write_index(tmp_path / "index", [[EntryHashes(phash=phash, pdq=pdq, quality=100)]])
    variants = [
        (flip_phash(rng, phash, 15), flip_pdq(rng, pdq, 10)),  # a: pdq 10, phash 15 -> best
        (phash, flip_pdq(rng, pdq, 12)),  # b: pdq 12, phash 0
        (flip_phash(rng, phash, 17), pdq),  # c: identical PDQ but pHash out of radius
    ]
    query = make_query([v[0] for v in variants], [v[1] for v in variants], ["a", "b", "c"])

    assert index.search(query, RULE) == [
        EntryMatch(shard="00000", row=0, distance=MatchDistance(pdq=10, phash=15), variant="a")
    ]
    assert_exact(index, query, RULE)


def test_tied_variants_report_the_first_one(tmp_path):
    rng = np.random.default_rng(14)
    phash = int(random_words(rng, 1)[0])
    pdq = random_words(rng, WORDS_PDQ)
    near = (flip_phash(rng, phash, 4), flip_pdq(rng, pdq, 20))
    far = (int(random_words(rng, 1)[0]), random_words(rng, WORDS_PDQ))
    index = write_index(tmp_path / "index", [[EntryHashes(phash=phash, pdq=pdq, quality=100)]])
    query = make_query([far[0], near[0], near[0]], [far[1], near[1], near[1]], ["x", "first", "second"])

    [match] = assert_exact(index, query, RULE)
    assert (match.variant, match.distance) == ("first", MatchDistance(pdq=20, phash=4))


def test_same_distance_in_several_shards_is_ordered_by_shard_then_row(tmp_path):
    rng = np.random.default_rng(15)
    same = EntryHashes(phash=int(random_words(rng, 1)[0]), pdq=random_words(rng, WORDS_PDQ), quality=100)
    other = EntryHashes(phash=int(random_words(rng, 1)[0]), pdq=random_words(rng, WORDS_PDQ), quality=100)
    index = write_index(tmp_path / "index", [[other, same, same], [same], [], [other, same]])
    query = make_query([same.phash], [same.pdq])

    found = assert_exact(index, query, RULE)
    assert [(m.shard, m.row) for m in found] == [("00000", 1), ("00000", 2), ("00001", 0), ("00003", 1)]
    assert [index.describe(m).key for m in found] == ["00000/1", "00000/2", "00001/0", "00003/1"]


def test_search_of_an_empty_index(tmp_path):
    index = write_index(tmp_path / "index", [[]])
    query = make_query([0], [np.zeros(4, dtype=np.uint64)])

    assert len(index) == 0
    assert index.search(query, RULES[3]) == []


def _near(rng: np.random.Generator, centre: EntryHashes, phash_bits: int, pdq_bits: int) -> EntryHashes:
    return EntryHashes(
        phash=flip_phash(rng, centre.phash, phash_bits),
        pdq=flip_pdq(rng, centre.pdq, pdq_bits),
        quality=100,
    )


@pytest.fixture(scope="module")
def composite_index(tmp_path_factory) -> tuple[HashIndex, list[EntryHashes]]:
    """Entries whose photographs (parts) lie near 100 centres, besides plain entries near them: one
    entry may be reached through its whole picture and through one or more of its parts."""
    rng = np.random.default_rng(16)
    centres = [
        EntryHashes(phash=int(random_words(rng, 1)[0]), pdq=random_words(rng, WORDS_PDQ), quality=100)
        for _ in range(100)
    ]
    entries: list[EntryHashes] = []
    for centre in centres:
        for _ in range(int(rng.integers(0, 4))):
            entries.append(_near(rng, centre, int(rng.integers(0, 16)), int(rng.integers(0, 90))))
        for _ in range(int(rng.integers(0, 4))):
            whole = _near(rng, centre, int(rng.integers(0, 20)), int(rng.integers(0, 100)))
            parts = tuple(
                EntryPart(
                    box=(0.5 * (i % 2), 0.0, 0.5 + 0.5 * (i % 2), 1.0),
                    hashes=_near(rng, centre, int(rng.integers(0, 12)), int(rng.integers(0, 90))),
                    kind=RowKind(int(rng.integers(0, 2))),  # a photograph inside it, or its core
                )
                for i in range(int(rng.integers(1, 5)))
            )
            entries.append(replace(whole, parts=parts))
    order = rng.permutation(len(entries))
    entries = [entries[i] for i in order]
    half = len(entries) // 2
    return write_index(tmp_path_factory.mktemp("composite-index"), [entries[:half], entries[half:]]), centres


@pytest.mark.parametrize("rule", RULES[:3], ids=["defaults", "zero", "wide"])
def test_an_index_with_parts_searches_as_brute_force_one_match_per_entry(composite_index, rule):
    index, centres = composite_index
    rng = np.random.default_rng(5)
    total = 0
    guessing = replace(rule, turn_phash_max_distance=4, core_phash_max_distance=2)
    for centre in centres[:40]:
        query = query_near(rng, centre, 4, phash_bits=(0, 6), pdq_bits=(0, 40))
        found = assert_exact(index, query, rule)
        guessed = replace(query, guesses=rng.integers(0, 3, size=4).astype(np.uint8))  # plain, turn, core
        assert_exact(index, guessed, guessing)
        entries = [(m.shard, index._shard(m.shard).entry_number(m.row)) for m in found]
        assert len(entries) == len(set(entries))
        total += len(found)
    if rule is RULES[0]:
        assert total > 40  # the test reaches entries through their parts, not only a few


def test_a_part_row_describes_its_entry_and_says_where_it_lies(tmp_path):
    rng = np.random.default_rng(3)
    photo = EntryHashes(phash=int(random_words(rng, 1)[0]), pdq=random_words(rng, WORDS_PDQ), quality=100)
    other = EntryHashes(phash=int(random_words(rng, 1)[0]), pdq=random_words(rng, WORDS_PDQ), quality=100)
    composite = replace(
        other, parts=(EntryPart(box=(0.0, 0.0, 0.5, 1.0), hashes=other), EntryPart((0.5, 0, 1, 1), photo))
    )
    index = write_index(tmp_path, [[other, composite, photo]])
    assert len(index) == 3
    assert index.rows == 5
    query = make_query([photo.phash], [photo.pdq])
    found = index.find(query, RULES[0], views=None)
    # rows: other 0, composite 1 (its parts 2, 3), photo 4; equal distances go by row
    assert [(item.entry.key, item.part) for item in found] == [
        ("00000/1", (0.5, 0.0, 1.0, 1.0)),
        ("00000/2", None),
    ]
    assert index.entry_hashes(found[0].match).phash == photo.phash
    # the composite's own whole picture, and its left photograph, are one entry: found once
    whole = index.find(make_query([other.phash], [other.pdq]), RULES[0], views=None)
    assert [item.entry.key for item in whole] == ["00000/0", "00000/1"]


def as_guesses(query: QueryHashes, *names: str) -> QueryHashes:
    """``query`` with the named variants marked as guesses at an edit (a turned-back copy)."""
    guesses = [Guess.TURN if name in names else Guess.NONE for name in query.variants]
    return replace(query, guesses=np.array(guesses, dtype=np.uint8))


def test_a_guessed_variant_is_held_to_the_guess_radius(edge_index):
    index, query = edge_index
    guessing = replace(RULE, turn_phash_max_distance=4)

    # "near" as a plain variant: the rule's radius (16); as a guess: 4 bits, entry 0 (16) is out
    assert set(distances(index, query, guessing)) == {"00000/0", "00000/4", "00000/7"}
    guessed = as_guesses(query, "near")
    assert set(distances(index, guessed, guessing)) == {"00000/4", "00000/7"}
    assert_exact(index, guessed, guessing)
    # the guess radius never widens the rule, and -1 means the rule's own radius
    assert set(distances(index, guessed, replace(RULE, turn_phash_max_distance=40))) == {
        "00000/0",
        "00000/4",
        "00000/7",
    }
    assert set(distances(index, guessed, replace(RULE, turn_phash_max_distance=-1))) == {
        "00000/0",
        "00000/4",
        "00000/7",
    }


@pytest.mark.parametrize("guess_radius", [0, 3, 6])
def test_search_with_guessed_variants_equals_brute_force(clustered_index, guess_radius):
    index, entries = clustered_index
    rule = replace(
        RULE, phash_max_distance=8, turn_phash_max_distance=guess_radius, core_phash_max_distance=2
    )
    rng = np.random.default_rng(30 + guess_radius)
    found_through = {True: 0, False: 0}
    for target in rng.choice(len(entries), size=12, replace=False):
        query = query_near(rng, entries[target], 6, phash_bits=(0, 10), pdq_bits=(0, 60), exact=True)
        guesses = rng.integers(0, 3, size=len(query.variants)).astype(np.uint8)  # plain, turned, core
        guessed = replace(query, guesses=guesses)
        for match in assert_exact(index, guessed, rule):
            found_through[bool(guessed.guesses[guessed.variants.index(match.variant)])] += 1
    assert found_through[True]  # guesses found entries within their radius...
    assert found_through[False]  # ...and plain variants within theirs


def test_each_kind_of_row_is_looked_for_within_its_own_radius(tmp_path):
    """A picture's row: every variant within its radius but a region aimed at the core; a core's
    row: every variant within the core radius, the crop grid's guesses within theirs."""
    rng = np.random.default_rng(44)
    base_phash, base_pdq = int(random_words(rng, 1)[0]), random_words(rng, WORDS_PDQ)

    def row(bits: int) -> EntryHashes:
        return EntryHashes(phash=flip_phash(rng, base_phash, bits), pdq=base_pdq, quality=100)

    unrelated = EntryHashes(phash=int(random_words(rng, 1)[0]), pdq=random_words(rng, WORDS_PDQ), quality=100)
    entries = [
        row(6),  # 0: a picture's central region 6 bits away
        replace(unrelated, parts=(EntryPart(box=(0.1, 0.1, 0.9, 0.9), hashes=row(6), kind=RowKind.CORE),)),
        replace(unrelated, parts=(EntryPart(box=(0.1, 0.1, 0.9, 0.9), hashes=row(2), kind=RowKind.CORE),)),
        replace(unrelated, parts=(EntryPart(box=(0.1, 0.1, 0.9, 0.9), hashes=row(4), kind=RowKind.CORE),)),
    ]
    index = write_index(tmp_path / "index", [entries])
    rule = replace(RULE, phash_max_distance=8, core_phash_max_distance=4, grid_phash_max_distance=2)
    query = make_query([base_phash], [base_pdq])

    for guess, expected in (
        (Guess.NONE, {"00000/0", "00000/2", "00000/3"}),
        (Guess.CORE, {"00000/2", "00000/3"}),
        (Guess.GRID, {"00000/2"}),
    ):
        guessed = replace(query, guesses=np.array([guess], dtype=np.uint8))
        assert set(distances(index, guessed, rule)) == expected, guess
        assert_exact(index, guessed, rule)
