"""The multi-index search is exact: it finds every entry within the radius, like a brute-force scan.

Two levels. :class:`MultiIndex` alone is compared with ``np.bitwise_count`` over every (entry,
query row) pair, on uniform, clustered and pHash-like (32 one-bits) data, with entries planted at
exactly the radius and one bit past it, their differing bits spread over the three tables in every
possible way. :class:`HashIndex` with tables is compared with its own linear scan and with the plain
rule of :mod:`bot.matching`, including the ways tables can fall out of step with the shards.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from itertools import pairwise, product
from pathlib import Path

import numpy as np
import pytest

from bot.config import MatchingSettings
from bot.hashing import EntryHashes, QueryHashes, RowKind
from bot.index import mih
from bot.index.mih import (
    HASH_BITS,
    TABLES,
    Covered,
    MultiIndex,
    build_tables,
    flip_masks,
    open_search_tables,
    probes_per_hash,
    refresh_search_tables,
    search_folder,
    table_keys,
    table_positions,
    table_radii,
)
from bot.index.search import HashIndex
from bot.index.storage import DatasetEntry, Manifest, ShardWriter
from bot.matching import EntryMatch
from tests.bot.index.test_search import (
    WORDS_PDQ,
    brute_force,
    flip_pdq,
    flip_phash,
    make_query,
    query_near,
    random_words,
    write_index,
)

RADII = [0, 1, 2, 7, 8, 9, 10, 16]
WIDTHS = tuple(len(table_positions(table)) for table in range(TABLES))


# --- hash helpers: bit position 0 is the most significant bit, as in bot.index.mih -----------------


def bit(position: int) -> int:
    return 1 << (HASH_BITS - 1 - position)


def words_from_bits(bits: np.ndarray) -> np.ndarray:
    """(N, 64) booleans, column 0 the most significant bit, packed into (N,) uint64."""
    return np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64)


def masks_with_bit_counts(rng: np.random.Generator, counts: np.ndarray) -> np.ndarray:
    """One uint64 mask per count with exactly that many bits set, at random positions."""
    ranks = rng.random((len(counts), HASH_BITS)).argsort(axis=1).argsort(axis=1)
    return words_from_bits(ranks < np.asarray(counts)[:, None])


def flip_random(rng: np.random.Generator, value: int, distance: int) -> int:
    """``value`` with ``distance`` bits flipped anywhere."""
    return value ^ sum(bit(int(p)) for p in rng.choice(HASH_BITS, size=distance, replace=False))


def swap_random(rng: np.random.Generator, value: int, distance: int) -> int:
    """``value`` with ``distance // 2`` one-bits and as many zero-bits flipped: the weight is kept.

    Two pHashes of 32 one-bits each always differ in an even number of bits, so this is the
    closest a pHash-like query gets to ``distance``.
    """
    ones = [p for p in range(HASH_BITS) if value & bit(p)]
    zeros = [p for p in range(HASH_BITS) if not value & bit(p)]
    half = min(distance // 2, len(ones), len(zeros))
    chosen = [*rng.choice(ones, size=half, replace=False), *rng.choice(zeros, size=half, replace=False)]
    return value ^ sum(bit(int(p)) for p in chosen)


def flip_in_tables(rng: np.random.Generator, value: int, per_table: tuple[int, ...]) -> int:
    """``value`` with ``per_table[t]`` bits flipped among the key bits of table ``t``."""
    for table, count in enumerate(per_table):
        for position in rng.choice(table_positions(table), size=count, replace=False):
            value ^= bit(int(position))
    return value


def splits(distance: int) -> Iterator[tuple[int, int, int]]:
    """Every way ``distance`` differing bits can fall into the three tables (within their widths)."""
    for first in range(min(distance, WIDTHS[0]) + 1):
        for second in range(min(distance - first, WIDTHS[1]) + 1):
            third = distance - first - second
            if third <= WIDTHS[2]:
                yield first, second, third


# --- references -------------------------------------------------------------------------------------


def brute_force_pairs(hashes: np.ndarray, query: np.ndarray, radius: int) -> dict[tuple[int, int], int]:
    """{(entry ordinal, query row): distance} within ``radius``, from all entries against all rows."""
    distances = np.bitwise_count(hashes[:, None] ^ np.asarray(query, dtype=np.uint64)[None, :])
    ordinals, rows = np.nonzero(distances <= radius)
    return dict(
        zip(
            zip(ordinals.tolist(), rows.tolist(), strict=True),
            distances[ordinals, rows].tolist(),
            strict=True,
        )
    )


def within_pairs(tables: MultiIndex, query: np.ndarray, radius: int) -> dict[tuple[int, int], int]:
    """:meth:`MultiIndex.within` as {(entry ordinal, query row): distance}, each pair named once."""
    ordinals, rows, distances = tables.within(np.asarray(query, dtype=np.uint64), radius)
    assert ordinals.dtype == rows.dtype == distances.dtype == np.int64
    pairs = dict(zip(zip(ordinals.tolist(), rows.tolist(), strict=True), distances.tolist(), strict=True))
    assert len(pairs) == len(ordinals), "a pair is reported more than once"
    return pairs


def open_tables(folder: Path, hashes: np.ndarray) -> MultiIndex:
    build_tables(folder, hashes, Covered(("all",), (len(hashes),)))
    return MultiIndex(folder)


# --- table keys, radii and flip masks ---------------------------------------------------------------


def reference_key(value: int, table: int) -> int:
    """The table's key bits read one by one, first position first (the key's top bit)."""
    key = 0
    for position in table_positions(table):
        key = (key << 1) | ((value >> (HASH_BITS - 1 - position)) & 1)
    return key


def test_tables_partition_the_64_bits():
    positions = [p for table in range(TABLES) for p in table_positions(table)]

    assert sorted(positions) == list(range(HASH_BITS))
    assert sorted(WIDTHS, reverse=True) == [22, 21, 21]  # about log2(1e8) bits each


def test_table_keys_equal_the_bits_read_one_by_one():
    rng = np.random.default_rng(100)
    special = [0, 2**64 - 1, 0x5555555555555555, 0xAAAAAAAAAAAAAAAA, *(bit(p) for p in range(HASH_BITS))]
    hashes = np.concatenate([np.array(special, dtype=np.uint64), random_words(rng, 2000)])
    for table in range(TABLES):
        keys = table_keys(hashes, table)

        assert keys.dtype == np.uint32
        assert keys.tolist() == [reference_key(value, table) for value in hashes.tolist()]
        assert int(keys.max()) < 1 << WIDTHS[table]


def test_a_single_bit_reaches_exactly_one_table_key():
    singles = np.array([bit(p) for p in range(HASH_BITS)], dtype=np.uint64)
    nonzero = np.stack([table_keys(singles, table) != 0 for table in range(TABLES)])

    assert nonzero.sum(axis=0).tolist() == [1] * HASH_BITS


@pytest.mark.parametrize("radius", range(21))
def test_table_radii_cover_every_split_of_a_distance(radius):
    """The pigeonhole guarantee, exhaustively: any pair within ``radius`` is probed by some table."""
    radii = table_radii(radius)

    assert len(radii) == TABLES
    for distance in range(radius + 1):
        for split in splits(distance):
            assert any(d <= r for d, r in zip(split, radii, strict=True)), (distance, split, radii)
    # ...and no wider than needed: one bit more in every table is a distance of radius + 1.
    assert sum(r + 1 for r in radii) == radius + 1


@pytest.mark.parametrize("width", range(1, 9))
def test_flip_masks_are_every_mask_of_at_most_radius_bits(width):
    for radius in range(width + 2):
        masks = flip_masks(width, radius)
        expected = {mask for mask in range(1 << width) if mask.bit_count() <= radius}

        assert masks.dtype == np.uint32
        assert len(masks) == len(set(masks.tolist()))
        assert set(masks.tolist()) == expected


@pytest.mark.parametrize(("width", "radius"), [(22, 0), (22, 3), (21, 4), (22, 5), (21, 5)])
def test_flip_masks_count_for_table_widths(width, radius):
    masks = flip_masks(width, radius)
    counts = np.bitwise_count(masks)

    assert len(masks) == sum(math.comb(width, k) for k in range(radius + 1))
    assert len(np.unique(masks)) == len(masks)
    assert int(counts.max()) <= radius
    assert int(masks.max()) < 1 << width
    assert masks[0] == 0  # the key itself is probed


@pytest.mark.parametrize("radius", [0, 1, 5, 8, 10])
def test_probes_per_hash_counts_the_keys_every_table_probes(radius):
    probed = sum(
        len(flip_masks(len(table_positions(table)), table_radius))
        for table, table_radius in enumerate(table_radii(radius))
        if table_radius >= 0
    )

    assert probes_per_hash(radius) == probed


def test_probes_grow_steeply_with_the_radius():
    assert probes_per_hash(8) == 254 + 232 + 232  # 22-bit table at radius 2, the two 21-bit ones too
    assert probes_per_hash(10) > 4 * probes_per_hash(8)


# --- MultiIndex.within against brute force --------------------------------------------------------


@dataclass(frozen=True)
class SearchData:
    """Indexed hashes, their tables, where queries start from, and how a query row is perturbed."""

    hashes: np.ndarray
    tables: MultiIndex
    tables_folder: Path
    anchors: np.ndarray
    perturb: Callable[[np.random.Generator, int, int], int]


def uniform_hashes(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    hashes = random_words(rng, 100_000)
    return hashes, hashes[rng.choice(len(hashes), size=200, replace=False)]


def clustered_hashes(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """500 centres, ~80 members each at 0..18 bits, exact duplicates, some noise; shuffled."""
    centres = random_words(rng, 500)
    owners = rng.integers(0, len(centres), size=40_000)
    members = centres[owners] ^ masks_with_bit_counts(rng, rng.integers(0, max(RADII) + 3, size=len(owners)))
    hashes = np.concatenate([centres, members, random_words(rng, 5000)])
    hashes = np.concatenate([hashes, hashes[rng.integers(0, len(hashes), size=5000)]])  # duplicates
    hashes = hashes[rng.permutation(len(hashes))]
    return hashes, np.concatenate([centres[:100], members[:100]])


def weight_32_hashes(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """pHash-like: exactly 32 one-bits (a median threshold), the first (DC) bit always set."""
    ranks = rng.random((60_000, HASH_BITS - 1)).argsort(axis=1).argsort(axis=1)
    bits = np.concatenate([np.ones((len(ranks), 1), dtype=bool), ranks < 31], axis=1)
    hashes = words_from_bits(bits)
    return hashes, hashes[rng.choice(len(hashes), size=200, replace=False)]


DATASETS = {
    "uniform": (uniform_hashes, flip_random),
    "clustered": (clustered_hashes, flip_random),
    "weight32": (weight_32_hashes, swap_random),
}


class SearchDataCache:
    """Each data set built (and its tables written) once per module, on first use."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp_path_factory = tmp_path_factory
        self._built: dict[str, SearchData] = {}

    def __getitem__(self, name: str) -> SearchData:
        if name not in self._built:
            make, perturb = DATASETS[name]
            hashes, anchors = make(np.random.default_rng(list(DATASETS).index(name)))
            folder = self._tmp_path_factory.mktemp(name) / "search"
            self._built[name] = SearchData(
                hashes=hashes,
                tables=open_tables(folder, hashes),
                tables_folder=folder,
                anchors=anchors,
                perturb=perturb,
            )
        return self._built[name]


@pytest.fixture(scope="module")
def search_data_sets(tmp_path_factory) -> SearchDataCache:
    return SearchDataCache(tmp_path_factory)


@pytest.fixture(scope="module", params=list(DATASETS))
def search_data(request, search_data_sets) -> SearchData:
    return search_data_sets[request.param]


def test_phash_like_data_has_32_one_bits(search_data_sets):
    data = search_data_sets["weight32"]

    assert set(np.bitwise_count(data.hashes).tolist()) == {32}
    assert np.all(data.hashes >> np.uint64(HASH_BITS - 1) == 1)  # the DC bit


def query_rows(data: SearchData, rng: np.random.Generator, *, rows: int, radius: int) -> np.ndarray:
    """``rows`` query variants around an anchor: at 0, R-1, R, R+1, R+2 bits, unrelated, repeated.

    A quarter of the rows (of 12 or more) repeat earlier ones: a query's variants often share a
    pHash, and each repeated row must still be reported.
    """
    anchor = int(rng.choice(data.anchors))
    distances = [0, radius, radius + 1, max(radius - 1, 0), radius + 2, None]
    distinct = rows - rows // 4
    values = []
    for row in range(distinct):
        distance = distances[row % len(distances)]
        if distance is None:
            values.append(int(random_words(rng, 1)[0]))
        else:
            values.append(data.perturb(rng, int(rng.choice(data.anchors)) if row >= 6 else anchor, distance))
    values += [values[int(i)] for i in rng.integers(0, distinct, size=rows - distinct)]
    return np.array(values, dtype=np.uint64)[rng.permutation(rows)]


@pytest.mark.parametrize("rows", [1, 12, 36])
@pytest.mark.parametrize("radius", RADII)
def test_within_equals_brute_force(search_data, radius, rows):
    rng = np.random.default_rng(1000 * radius + rows)
    found_any = False
    for _ in range(3):
        query = query_rows(search_data, rng, rows=rows, radius=radius)
        expected = brute_force_pairs(search_data.hashes, query, radius)

        assert within_pairs(search_data.tables, query, radius) == expected
        found_any |= bool(expected)
    assert found_any  # the anchor itself is a row, so there was something to find


def test_clustered_queries_find_whole_clusters(search_data_sets):
    """A centre at radius 16 finds dozens of members (so the equalities are not only of empty sets)."""
    data = search_data_sets["clustered"]
    centres = data.anchors[:5]
    pairs = within_pairs(data.tables, centres, 16)

    assert len(pairs) >= 5 * 40
    assert pairs == brute_force_pairs(data.hashes, centres, 16)


@pytest.mark.parametrize("threads", [1, 3, 5])
def test_within_is_exact_however_the_query_is_split_between_threads(search_data, threads, monkeypatch):
    """The query's rows are dealt out to SEARCH_THREADS parts; fewer rows than parts included."""
    monkeypatch.setattr(mih, "SEARCH_THREADS", threads)
    rng = np.random.default_rng(threads)
    for rows in (1, 2, 12, 36):
        query = query_rows(search_data, rng, rows=rows, radius=9)
        assert within_pairs(search_data.tables, query, 9) == brute_force_pairs(search_data.hashes, query, 9)


def test_warming_the_tables_changes_no_answer(search_data, tmp_path):
    rng = np.random.default_rng(600)
    query = query_rows(search_data, rng, rows=12, radius=10)
    expected = brute_force_pairs(search_data.hashes, query, 10)
    search_data.tables.warm()
    assert within_pairs(search_data.tables, query, 10) == expected

    in_memory = MultiIndex(search_data.tables_folder)  # the fallback for arrays that are not mapped
    in_memory.values = [np.array(values) for values in in_memory.values]
    in_memory.offsets = [np.array(offsets) for offsets in in_memory.offsets]
    in_memory.ids = np.array(in_memory.ids)
    in_memory.warm()
    assert within_pairs(in_memory, query, 10) == expected

    empty = open_tables(tmp_path / "search", np.zeros(0, dtype=np.uint64))
    empty.warm()
    assert within_pairs(empty, query, 10) == {}


def mapping_of(path: Path) -> tuple[set[str], int]:
    """This process's mapping of ``path``: its VmFlags and resident kB (/proc/self/smaps)."""
    flags: set[str] = set()
    resident, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if line.split()[0].count("-") == 1 and ":" not in line.split()[0]:  # a mapping's header
            inside = line.endswith(str(path))
        elif inside and line.startswith("Rss:"):
            resident = int(line.split()[1])
        elif inside and line.startswith("VmFlags:"):
            flags = set(line.split()[1:])
    return flags, resident


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads Linux's /proc/self/smaps")
def test_tables_are_read_page_by_page_and_warming_reads_them_all(search_data):
    """Tables larger than the page cache are read by faults: each must read its page alone (rr,
    MADV_RANDOM), not the kernel's 128 KB read-around; warming still maps every page."""
    tables = MultiIndex(search_data.tables_folder)
    values = (search_data.tables_folder / "values.0.npy").resolve()
    flags, _ = mapping_of(values)
    assert "rr" in flags
    tables.warm()
    flags, resident = mapping_of(values)
    assert "rr" in flags  # random again after the sequential sweep
    assert "sr" not in flags
    assert resident * 1024 >= tables.values[0].nbytes  # every page of the table mapped


# --- radius edges: distance R is found, R + 1 is not, however the bits fall into the tables --------


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[np.ndarray, MultiIndex, dict[int, int], dict[tuple[int, int], list]]:
    """Noise plus, for each radius R, a centre and one entry per split of R and of R + 1 bits.

    Returns the hashes, their tables, each radius's centre, and {(R, distance): [(split, ordinal)]}.
    """
    rng = np.random.default_rng(200)
    values = random_words(rng, 20_000).tolist()
    centres, planted_at = {}, {}
    for radius in RADII:
        centres[radius] = int(random_words(rng, 1)[0])
        for distance in (radius, radius + 1):
            planted_at[radius, distance] = []
            for split in splits(distance):
                planted_at[radius, distance].append((split, len(values)))
                values.append(flip_in_tables(rng, centres[radius], split))
    hashes = np.array(values, dtype=np.uint64)
    return hashes, open_tables(tmp_path_factory.mktemp("planted") / "search", hashes), centres, planted_at


@pytest.mark.parametrize("radius", RADII)
def test_entries_at_the_radius_are_found_and_one_bit_more_is_not(planted, radius):
    hashes, tables, centres, planted_at = planted
    centre = centres[radius]
    unrelated = int(random_words(np.random.default_rng(radius), 1)[0])
    query = np.array([unrelated, centre, centre], dtype=np.uint64)  # the centre twice: rows 1 and 2
    pairs = within_pairs(tables, query, radius)

    at_radius = planted_at[radius, radius]
    assert len(at_radius) == len(list(splits(radius)))
    for split, ordinal in at_radius:
        assert int(np.bitwise_count(hashes[ordinal] ^ np.uint64(centre))) == radius
        assert {(ordinal, 1), (ordinal, 2)} <= pairs.keys(), f"missed an entry at {radius} bits split {split}"
        assert pairs[ordinal, 1] == pairs[ordinal, 2] == radius
    for split, ordinal in planted_at[radius, radius + 1]:
        assert not {(ordinal, 1), (ordinal, 2)} & pairs.keys(), (
            f"found an entry at {radius + 1} bits split {split}"
        )
    assert pairs == brute_force_pairs(hashes, query, radius)


def test_named_bit_placements_at_radius_8(tmp_path):
    """The placements a careless pigeonhole gets wrong: all bits in one table, spread evenly, all but one."""
    rng = np.random.default_rng(201)
    centre = int(random_words(rng, 1)[0])
    placements = {
        "all in table 0": (8, 0, 0),
        "all in table 1": (0, 8, 0),
        "all in table 2": (0, 0, 8),
        "spread 3-3-2": (3, 3, 2),
        "spread 2-3-3": (2, 3, 3),
        "spread 3-2-3": (3, 2, 3),
        "all but one in table 0": (7, 1, 0),
        "all but one in table 2": (0, 1, 7),
        "all but one in table 1, one in table 2": (0, 7, 1),
    }
    names = list(placements)
    at_radius = [flip_in_tables(rng, centre, placements[name]) for name in names]
    one_more = [flip_in_tables(rng, centre, (d0 + 1, d1, d2)) for d0, d1, d2 in placements.values()]
    one_more += [flip_in_tables(rng, centre, (3, 3, 3)), flip_in_tables(rng, centre, (0, 0, 9))]
    hashes = np.array(at_radius + one_more, dtype=np.uint64)
    pairs = within_pairs(open_tables(tmp_path / "search", hashes), np.array([centre], dtype=np.uint64), 8)

    assert {names[ordinal] for ordinal, _ in pairs} == set(names)
    assert set(pairs.values()) == {8}


# --- degenerate indexes and queries -----------------------------------------------------------------


def test_empty_index_finds_nothing(tmp_path):
    tables = open_tables(tmp_path / "search", np.zeros(0, dtype=np.uint64))
    query = np.array([0, 2**64 - 1, 12345], dtype=np.uint64)

    assert tables.entries == 0
    for radius in (0, 8, 16):
        assert within_pairs(tables, query, radius) == {}


def test_one_entry_index(tmp_path):
    rng = np.random.default_rng(300)
    value = int(random_words(rng, 1)[0])
    tables = open_tables(tmp_path / "search", np.array([value], dtype=np.uint64))
    query = np.array(
        [value, flip_random(rng, value, 8), flip_random(rng, value, 9), value ^ 1], dtype=np.uint64
    )

    assert within_pairs(tables, query, 0) == {(0, 0): 0}
    assert within_pairs(tables, query, 1) == {(0, 0): 0, (0, 3): 1}
    assert within_pairs(tables, query, 8) == {(0, 0): 0, (0, 1): 8, (0, 3): 1}
    assert within_pairs(tables, query, 9) == {(0, 0): 0, (0, 1): 8, (0, 2): 9, (0, 3): 1}


def test_every_entry_equal(tmp_path):
    rng = np.random.default_rng(301)
    value = int(random_words(rng, 1)[0])
    hashes = np.full(2000, value, dtype=np.uint64)
    tables = open_tables(tmp_path / "search", hashes)
    near = flip_random(rng, value, 3)
    query = np.array([near, value, int(random_words(rng, 1)[0])], dtype=np.uint64)

    assert within_pairs(tables, query, 2) == {(ordinal, 1): 0 for ordinal in range(2000)}
    assert within_pairs(tables, query, 3) == {(o, row): 3 - 3 * row for o in range(2000) for row in (0, 1)}
    assert within_pairs(tables, query, 3) == brute_force_pairs(hashes, query, 3)


def test_query_equal_to_an_entry_finds_every_copy_of_it(search_data):
    rng = np.random.default_rng(302)
    value = search_data.hashes[int(rng.integers(0, len(search_data.hashes)))]
    copies = set(np.flatnonzero(search_data.hashes == value).tolist())
    pairs = within_pairs(search_data.tables, np.array([value]), 0)

    assert pairs == {(ordinal, 0): 0 for ordinal in copies}


def test_negative_radius_and_empty_query_find_nothing(search_data):
    value = search_data.hashes[:1]

    assert within_pairs(search_data.tables, value, -1) == {}
    assert within_pairs(search_data.tables, np.zeros(0, dtype=np.uint64), 16) == {}


# --- HashIndex with tables: the same answer as its scan and as the plain rule -----------------------

RULES = [
    MatchingSettings(phash_max_distance=16, pdq_max_distance=80, pdq_min_quality=50),  # the defaults
    MatchingSettings(phash_max_distance=0, pdq_max_distance=0, pdq_min_quality=0),
    MatchingSettings(phash_max_distance=9, pdq_max_distance=60, pdq_min_quality=50),
    MatchingSettings(phash_max_distance=8, pdq_max_distance=256, pdq_min_quality=0),
]
RULE = RULES[0]
QUALITIES = [100, 100, 80, 50, 49, 10, 0]


def random_entries(rng: np.random.Generator, count: int) -> list[EntryHashes]:
    return [
        EntryHashes(
            phash=int(random_words(rng, 1)[0]),
            pdq=random_words(rng, WORDS_PDQ),
            quality=int(rng.choice(QUALITIES)),
        )
        for _ in range(count)
    ]


def clustered_entries(rng: np.random.Generator, centres: int) -> list[EntryHashes]:
    """Centres with 0-15 near copies each (0-18 pHash bits, 0-100 PDQ bits) and exact duplicates."""
    entries = random_entries(rng, centres)
    for centre in list(entries):
        for _ in range(int(rng.integers(0, 16))):
            entries.append(
                EntryHashes(
                    phash=flip_phash(rng, centre.phash, int(rng.integers(0, 19))),
                    pdq=flip_pdq(rng, centre.pdq, int(rng.integers(0, 101))),
                    quality=int(rng.choice(QUALITIES)),
                )
            )
    entries += [entries[int(i)] for i in rng.integers(0, len(entries), size=len(entries) // 10)]
    return [entries[int(i)] for i in rng.permutation(len(entries))]


def split_into_shards(entries: list[EntryHashes], sizes: list[int]) -> list[list[EntryHashes]]:
    starts = np.cumsum([0, *sizes])
    assert starts[-1] == len(entries)
    return [entries[start:end] for start, end in pairwise(starts)]


def indexed_with_tables(folder: Path, shards: list[list[EntryHashes]]) -> HashIndex:
    write_index(folder, shards)
    refresh_search_tables(folder)
    index = HashIndex(folder)
    assert index.tables is not None
    assert index.tables.covered.shards == tuple(index.manifest.shards)
    assert index.scanned == []
    return index


def append_shard(folder: Path, entries: list[EntryHashes]) -> str:
    """Add a shard the way ``index build --append`` does: write it, then list it in the manifest."""
    manifest = Manifest.read(folder)
    name = f"{len(manifest.shards):05d}"
    rewrite_shard(folder, name, entries)
    manifest.shards.append(name)
    manifest.write(folder)
    return name


def rewrite_shard(folder: Path, name: str, entries: list[EntryHashes]) -> None:
    shutil.rmtree(folder / "shards" / name, ignore_errors=True)
    writer = ShardWriter(folder, name)
    for row, hashes in enumerate(entries):
        writer.add(DatasetEntry(key=f"{name}/{row}", url=f"https://example.org/{name}/{row}"), hashes)
    writer.commit()


def queries_around(rng: np.random.Generator, entries: list[EntryHashes], count: int) -> list[QueryHashes]:
    queries = [
        query_near(rng, entries[int(i)], 6, phash_bits=(0, 19), pdq_bits=(0, 90), exact=n % 2 == 0)
        for n, i in enumerate(rng.choice(len(entries), size=count, replace=False))
    ]
    unrelated = make_query(random_words(rng, 3).tolist(), list(random_words(rng, (3, WORDS_PDQ))))
    return [*queries, unrelated]


def assert_tables_exact(index: HashIndex, query: QueryHashes, rule: MatchingSettings, monkeypatch) -> list:
    """search (through the tables only: scanning is forbidden) == scan == the plain rule per entry."""
    expected = brute_force(index, query, rule)
    assert index.scan(query, rule) == expected
    with monkeypatch.context() as patch:
        if not index.scanned:
            patch.setattr(index, "_scan_shard", forbidden_scan)
        assert index.search(query, rule) == expected
    return expected


def forbidden_scan(*args, **kwargs) -> Iterator[EntryMatch]:
    raise AssertionError("a shard covered by the search tables was scanned")


@pytest.fixture(scope="module")
def random_tables_index(tmp_path_factory) -> tuple[HashIndex, list[EntryHashes]]:
    rng = np.random.default_rng(400)
    entries = random_entries(rng, 2500)
    shards = split_into_shards(entries, [900, 0, 1, 1099, 500])
    return indexed_with_tables(tmp_path_factory.mktemp("random-tables"), shards), entries


@pytest.fixture(scope="module")
def clustered_tables_index(tmp_path_factory) -> tuple[HashIndex, list[EntryHashes]]:
    rng = np.random.default_rng(401)
    entries = clustered_entries(rng, 250)
    third = len(entries) // 3
    shards = split_into_shards(entries, [third, third, len(entries) - 2 * third])
    return indexed_with_tables(tmp_path_factory.mktemp("clustered-tables"), shards), entries


@pytest.mark.parametrize("rule", RULES, ids=["defaults", "zero", "radius9", "radius8-any-pdq"])
def test_index_with_tables_equals_scan_and_plain_rule_on_random_data(random_tables_index, rule, monkeypatch):
    index, entries = random_tables_index
    rng = np.random.default_rng(410)
    found = [
        assert_tables_exact(index, query, rule, monkeypatch) for query in queries_around(rng, entries, 5)
    ]

    assert sum(map(len, found)) > 0


@pytest.mark.parametrize("rule", RULES, ids=["defaults", "zero", "radius9", "radius8-any-pdq"])
def test_index_with_tables_equals_scan_and_plain_rule_on_clustered_data(
    clustered_tables_index, rule, monkeypatch
):
    index, entries = clustered_tables_index
    rng = np.random.default_rng(411)
    found = [
        assert_tables_exact(index, query, rule, monkeypatch) for query in queries_around(rng, entries, 5)
    ]

    assert sum(map(len, found)) > 0
    if rule.phash_max_distance:
        assert len({match.shard for matches in found for match in matches}) >= 2


def test_index_with_tables_keeps_the_radius_edges(tmp_path, monkeypatch):
    """pHash at exactly 16 bits (in any table placement) matches; 17 bits never does."""
    rng = np.random.default_rng(420)
    base = EntryHashes(phash=int(random_words(rng, 1)[0]), pdq=random_words(rng, WORDS_PDQ), quality=100)
    placements = [(16, 0, 0), (0, 16, 0), (0, 0, 16), (6, 5, 5), (5, 5, 6), (15, 1, 0), (0, 1, 15)]
    at_16 = [
        EntryHashes(phash=flip_in_tables(rng, base.phash, p), pdq=base.pdq, quality=100) for p in placements
    ]
    at_17 = [
        EntryHashes(phash=flip_in_tables(rng, base.phash, (a + 1, b, c)), pdq=base.pdq, quality=100)
        for a, b, c in placements
    ]
    index = indexed_with_tables(tmp_path / "index", [at_17 + random_entries(rng, 300), at_16])
    query = make_query([int(random_words(rng, 1)[0]), base.phash], [random_words(rng, WORDS_PDQ), base.pdq])
    found = assert_tables_exact(index, query, RULE, monkeypatch)

    assert {(m.shard, m.row) for m in found} == {("00001", row) for row in range(len(placements))}
    assert {m.distance.phash for m in found} == {16}


# --- tables that cover a prefix, stale tables, no tables ---------------------------------------------


def test_appended_shard_is_scanned_until_refresh(tmp_path, monkeypatch):
    rng = np.random.default_rng(500)
    folder = tmp_path / "index"
    old = clustered_entries(rng, 60)
    indexed_with_tables(folder, split_into_shards(old, [len(old) // 2, len(old) - len(old) // 2]))
    # near copies of old entries, so queries about them find entries in both the old and new shards
    new = [
        EntryHashes(phash=flip_phash(rng, e.phash, 5), pdq=flip_pdq(rng, e.pdq, 20), quality=100)
        for e in (old[int(i)] for i in rng.choice(len(old), size=40, replace=False))
    ]
    name = append_shard(folder, new + random_entries(rng, 100))

    index = HashIndex(folder)
    assert index.tables is not None
    assert len(index.tables.covered.shards) == 2
    assert [shard.name for shard in index.scanned] == [name]
    queries = [query_near(rng, entry, 4, phash_bits=(0, 6), pdq_bits=(0, 30)) for entry in new[:10]]
    found = [m for query in queries for m in assert_tables_exact(index, query, RULE, monkeypatch)]
    shards_found = {m.shard for m in found}
    assert name in shards_found  # the scanned shard...
    assert shards_found & {"00000", "00001"}  # ...and the covered ones answer together

    refreshed = refresh_search_tables(folder)
    assert refreshed is not None
    assert refreshed.covered.shards == ("00000", "00001", name)
    index = HashIndex(folder)
    assert index.scanned == []
    assert [m for query in queries for m in assert_tables_exact(index, query, RULE, monkeypatch)] == found


def test_refresh_leaves_tables_that_cover_every_shard_alone(tmp_path):
    rng = np.random.default_rng(501)
    folder = tmp_path / "index"
    indexed_with_tables(folder, [random_entries(rng, 50), random_entries(rng, 30)])
    before = (search_folder(folder) / "search.json").stat()

    tables = refresh_search_tables(folder)
    after = (search_folder(folder) / "search.json").stat()
    assert tables is not None
    assert tables.covered.counts == (50, 30)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_tables_whose_shard_count_disagrees_are_not_used(tmp_path, monkeypatch):
    rng = np.random.default_rng(502)
    folder = tmp_path / "index"
    first = random_entries(rng, 200)
    index = indexed_with_tables(folder, [first, random_entries(rng, 200)])
    target = first[7]
    # shard 00000 rebuilt with one entry fewer and a near copy of the target at its end
    replacement = [
        *first[:198],
        EntryHashes(phash=flip_phash(rng, target.phash, 3), pdq=target.pdq, quality=100),
    ]
    rewrite_shard(folder, "00000", replacement)

    shards = HashIndex(folder).shards
    assert [len(shard) for shard in shards] == [199, 200]
    assert open_search_tables(folder, shards) is None
    index = HashIndex(folder)
    assert index.tables is None
    assert index.scanned == index.shards
    query = query_near(rng, target, 3, phash_bits=(0, 3), pdq_bits=(0, 10), exact=True)
    found = assert_tables_exact(index, query, RULE, monkeypatch)
    assert {("00000", 7), ("00000", 198)} <= {(m.shard, m.row) for m in found}

    refreshed = refresh_search_tables(folder)
    assert refreshed is not None
    assert refreshed.covered.counts == (199, 200)
    assert assert_tables_exact(HashIndex(folder), query, RULE, monkeypatch) == found


def test_tables_covering_more_shards_than_listed_are_not_used(tmp_path):
    rng = np.random.default_rng(503)
    folder = tmp_path / "index"
    indexed_with_tables(folder, [random_entries(rng, 20), random_entries(rng, 20)])
    manifest = Manifest.read(folder)
    manifest.shards = manifest.shards[:1]
    manifest.write(folder)

    assert HashIndex(folder).tables is None


def test_tables_of_a_shard_rebuilt_with_the_same_count_are_not_used(tmp_path, monkeypatch):
    rng = np.random.default_rng(504)
    folder = tmp_path / "index"
    indexed_with_tables(folder, [random_entries(rng, 100), random_entries(rng, 100)])
    rewrite_shard(folder, "00001", random_entries(rng, 100))
    index = HashIndex(folder)
    query = make_query([int(index.shards[1].phash[5])], [np.array(index.shards[1].pdq[5])])

    # without the quality minimum, so the rebuilt entry counts whatever its quality
    assert_tables_exact(index, query, replace(RULE, pdq_min_quality=0), monkeypatch)


def test_tables_from_before_fingerprints_are_not_used_and_refresh_replaces_them(tmp_path, monkeypatch):
    rng = np.random.default_rng(506)
    folder = tmp_path / "index"
    entries = random_entries(rng, 150)
    indexed_with_tables(folder, split_into_shards(entries, [100, 50]))
    description_file = search_folder(folder) / "search.json"
    description = json.loads(description_file.read_text(encoding="utf-8"))
    del description["fingerprints"]
    description_file.write_text(json.dumps(description), encoding="utf-8")

    index = HashIndex(folder)
    assert index.tables is None
    query = query_near(rng, entries[120], 3, phash_bits=(0, 8), pdq_bits=(0, 30), exact=True)
    found = assert_tables_exact(index, query, replace(RULE, pdq_min_quality=0), monkeypatch)
    assert ("00001", 20) in {(m.shard, m.row) for m in found}

    refreshed = refresh_search_tables(folder)
    assert refreshed is not None
    assert len(refreshed.covered.fingerprints) == 2
    index = HashIndex(folder)
    assert index.tables is not None
    assert assert_tables_exact(index, query, replace(RULE, pdq_min_quality=0), monkeypatch) == found


def test_an_index_copied_with_its_timestamps_keeps_its_tables(tmp_path):
    rng = np.random.default_rng(507)
    indexed_with_tables(tmp_path / "built", [random_entries(rng, 30), random_entries(rng, 20)])
    shutil.copytree(tmp_path / "built", tmp_path / "deployed")  # copy2: contents and timestamps

    assert HashIndex(tmp_path / "deployed").tables is not None


def test_index_without_search_folder_scans_exactly(tmp_path, monkeypatch):
    rng = np.random.default_rng(505)
    folder = tmp_path / "index"
    entries = clustered_entries(rng, 40)
    write_index(folder, split_into_shards(entries, [100, len(entries) - 100]))
    assert not search_folder(folder).exists()

    index = HashIndex(folder)
    assert index.tables is None
    assert open_search_tables(folder, index.shards) is None
    queries = queries_around(rng, entries, 5)
    found = [assert_tables_exact(index, query, RULE, monkeypatch) for query in queries]
    assert sum(map(len, found)) > 0

    refresh_search_tables(folder)  # tables built, then deleted: the index goes back to scanning
    shutil.rmtree(search_folder(folder))
    index = HashIndex(folder)
    assert index.tables is None
    assert [assert_tables_exact(index, query, RULE, monkeypatch) for query in queries] == found


def test_tables_on_disk_are_plain_npy_opened_memory_mapped(random_tables_index):
    index, _ = random_tables_index
    folder = search_folder(index.folder)
    files = sorted(path.name for path in folder.iterdir())

    assert files == sorted(
        [
            "search.json",
            "ids.npy",
            *(f"{kind}.{t}.npy" for kind, t in product(["values", "offsets"], range(3))),
        ]
    )
    for name in files:
        if name.endswith(".npy"):
            loaded = np.load(folder / name, allow_pickle=False)  # raises on any pickled object array
            assert loaded.dtype.kind == "u"
            assert isinstance(np.load(folder / name, mmap_mode="r"), np.memmap)
    description = json.loads((folder / "search.json").read_text(encoding="utf-8"))
    assert description["shards"] == index.manifest.shards
    assert description["counts"] == [len(shard) for shard in index.shards]
    assert description["entries"] == len(index)

    assert index.tables is not None
    assert list(index.tables.by_kind) == [RowKind.PICTURE]  # hashes only: no cores
    tables = index.tables.by_kind[RowKind.PICTURE]
    for array in [*tables.values, *tables.offsets, tables.ids]:
        assert isinstance(array, np.memmap)
    phash = np.concatenate([np.asarray(shard.phash) for shard in index.shards])
    for table in range(TABLES):
        assert sorted(tables.values[table].tolist()) == sorted(phash.tolist())  # each table: every hash
        assert len(tables.offsets[table]) == (1 << WIDTHS[table]) + 1
    assert np.array_equal(phash[tables.ids], tables.values[0])  # ids name each position's entry
