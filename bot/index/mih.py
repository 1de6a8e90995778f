"""Multi-index hashing over the index's pHashes: exact Hamming range search without a full scan.

A linear scan compares a query with every entry: ~65 ms per 64-bit hash over 1e8 entries on two
cores, and a query looks up many variants. Multi-index hashing (Norouzi, Punjani & Fleet, "Fast
Exact Search in Hamming Space with Multi-Index Hashing", 2014) splits each hash into ``m``
disjoint substrings and keeps one table per substring. If two hashes differ in at most ``R`` bits,
pigeonhole says some substring differs in at most ``R // m`` of them; the refined form used here
(``R = m*q + a``) lets the first ``a + 1`` tables search radius ``q`` and the rest ``q - 1``.
Probing every key within that radius in every table finds a superset of the answer, which is
then verified exactly: the result equals a brute-force scan, it is never approximate.

Three tables of 21-22 bits suit 1e8 entries (about log2(N) bits each, so a bucket holds a few
dozen entries). The bits of a table are every third bit of the hash, not a contiguous run:
pHash bits come from an 8x8 DCT in row-major order and neighbouring low frequencies are
correlated (the first bit, the DC term, is nearly always 1), so interleaving spreads real
pictures evenly over the buckets.

One set of tables per kind of row (:class:`bot.hashing.RowKind`), each probed by every query
variant within the radius it looks for that kind at (:func:`bot.matching.phash_limits`): the
pictures' tables at 8 bits (718 buckets a variant), the cores' at 4 (46 buckets), so the many
regions aimed at cores cost the search little.

On disk (``DIR/search/`` for pictures' rows, ``DIR/search-core/`` for cores; all plain ``.npy``
opened memory-mapped)::

    search.json            the layout, the shards covered and their row counts, the row kind
    values.T.npy           uint64 (N,)  every pHash, ordered by table T's key (T = 0, 1, 2)
    offsets.T.npy          uint32|64    (2**bits + 1,) where each key's run starts in values.T
    ids.npy                uint32|64    (N,)  row ordinal (over all rows of the covered shards)
                                        of each position of values.0

Each table holds its own copy of the hashes, so verifying a bucket reads contiguous memory
instead of gathering scattered entries. Only table 0 stores entry ordinals: a hash found in
another table is looked up by value in table 0, where equal hashes share a bucket. That keeps
the search structures at 3 * 8 + 4 = 28 bytes per entry (plus 33 MB of offsets, whatever N).
"""

from __future__ import annotations

import json
import mmap
import os
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from itertools import combinations
from math import comb
from pathlib import Path

import numpy as np

from bot.durable import replace_durably
from bot.hashing import RowKind
from bot.index.storage import Manifest, ShardReader

LAYOUT_NAME = "mih-interleaved-3"
# Beyond this radius the buckets to probe (~70k per query hash at 16, ~500k at 20) cost more than
# scanning: the index scans instead (still exact). The default rule searches radius 8.
MAX_TABLE_RADIUS = 16
TABLES = 3
HASH_BITS = 64
# madvise(2) advice that maps a range's pages without waiting for faults (not in Python's mmap).
_MADV_POPULATE_READ = 22
# Search threads: the kernel releases the GIL, so two cores halve a query's wait.
SEARCH_THREADS = min(2, os.cpu_count() or 1)


def table_positions(table: int) -> tuple[int, ...]:
    """Bit positions (0 = the most significant bit, the hash's first) that form table's key."""
    return tuple(range(table, HASH_BITS, TABLES))


def _key_lookup(positions: tuple[int, ...]) -> np.ndarray:
    """(8, 256) table: the key bits each byte of a hash contributes, so a key is 8 lookups."""
    lookup = np.zeros((8, 256), dtype=np.uint32)
    width = len(positions)
    byte_values = np.arange(256, dtype=np.uint32)
    for key_bit, position in enumerate(positions):
        byte = 7 - position // 8  # byte 0 = least significant
        bit_in_byte = 7 - position % 8
        lookup[byte] |= ((byte_values >> bit_in_byte) & 1) << (width - 1 - key_bit)
    return lookup


_LOOKUPS = tuple(_key_lookup(table_positions(t)) for t in range(TABLES))


def table_keys(hashes: np.ndarray, table: int) -> np.ndarray:
    """The table's key of each hash (uint32)."""
    hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
    as_bytes = hashes.view(np.uint8).reshape(-1, 8)  # little-endian: column 0 is the low byte
    lookup = _LOOKUPS[table]
    keys = lookup[0][as_bytes[:, 0]]
    for byte in range(1, 8):
        keys |= lookup[byte][as_bytes[:, byte]]
    return keys


def table_radii(radius: int) -> tuple[int, ...]:
    """Per-table search radius for an exact search of ``radius`` (refined pigeonhole)."""
    quotient, remainder = divmod(radius, TABLES)
    return tuple(quotient if table <= remainder else quotient - 1 for table in range(TABLES))


def flip_masks(width: int, radius: int) -> np.ndarray:
    """Every ``width``-bit mask with at most ``radius`` bits set: the keys to probe around a key."""
    masks = [0]
    for count in range(1, radius + 1):
        masks.extend(sum(1 << bit for bit in bits) for bits in combinations(range(width), count))
    return np.array(masks, dtype=np.uint32)


@cache
def probes_per_hash(radius: int) -> int:
    """How many buckets an exact search of ``radius`` probes for one query hash (all tables): the
    search's cost grows with it, since every probe is a random read of a large table."""
    return sum(
        sum(comb(len(table_positions(table)), bits) for bits in range(table_radius + 1))
        for table, table_radius in enumerate(table_radii(radius))
    )


@cache
def _search_pool() -> ThreadPoolExecutor:
    """Threads shared by every opened index (one pool per process, started on first use)."""
    return ThreadPoolExecutor(SEARCH_THREADS, thread_name_prefix="index-search")


def _concatenated_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """np.concatenate([np.arange(s, s + n) for s, n in zip(starts, lengths)]), vectorised."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    shift = np.repeat(starts.astype(np.int64) - (ends - lengths), lengths)
    return shift + np.arange(total, dtype=np.int64)


def _index_dtype(count: int) -> type[np.unsignedinteger]:
    return np.uint32 if count < 2**32 else np.uint64


@dataclass(frozen=True)
class Covered:
    """The shards a set of search tables was built from, in order: names, entry counts, and a
    fingerprint of each shard's pHash file, so a shard rewritten under the same name is noticed."""

    shards: tuple[str, ...]
    counts: tuple[int, ...]
    fingerprints: tuple[str, ...] = ()

    @classmethod
    def of(cls, shards: Sequence[ShardReader]) -> Covered:
        return cls(
            tuple(shard.name for shard in shards),
            tuple(len(shard) for shard in shards),
            tuple(shard_fingerprint(shard) for shard in shards),
        )


def shard_fingerprint(shard: ShardReader) -> str:
    """Size and modification time (ns) of the shard's pHash file: a rewritten shard differs, no
    file is read to tell, and an index copied with its timestamps (cp -a, rsync -a, a restored
    backup) keeps its tables."""
    status = (shard.path / "phash.npy").stat()
    return f"{status.st_size}-{status.st_mtime_ns}"


def build_tables(
    folder: Path,
    phash: np.ndarray,
    covered: Covered,
    ordinals: np.ndarray | None = None,
    kinds: Sequence[RowKind] = (RowKind.PICTURE,),
) -> None:
    """Write search tables for ``phash`` to ``folder``, atomically: every row of the covered
    shards in order, or the rows at ``ordinals``, all of ``kinds[0]``. The tables of pictures
    (``kinds[0]`` RowKind.PICTURE) also list every kind with tables of its own, ``kinds``."""
    phash = np.ascontiguousarray(phash, dtype=np.uint64)
    row_count = sum(covered.counts)
    temporary = folder.with_name(f".tmp-{folder.name}")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    for table in range(TABLES):
        width = len(table_positions(table))
        keys = table_keys(phash, table)
        order = np.argsort(keys, kind="stable")
        counts = np.bincount(keys, minlength=1 << width)
        offsets = np.zeros((1 << width) + 1, dtype=_index_dtype(len(phash) + 1))
        np.cumsum(counts, out=offsets[1:])
        np.save(temporary / f"values.{table}.npy", phash[order])
        np.save(temporary / f"offsets.{table}.npy", offsets)
        if table == 0:
            ids = order if ordinals is None else np.asarray(ordinals)[order]
            np.save(temporary / "ids.npy", ids.astype(_index_dtype(row_count)))
        del keys, order, counts
    description = {
        "layout": LAYOUT_NAME,
        "entries": len(phash),
        "kind": int(kinds[0]),
        "kinds": [int(kind) for kind in kinds] if kinds[0] == RowKind.PICTURE else [],
        "shards": list(covered.shards),
        "counts": list(covered.counts),
        "fingerprints": list(covered.fingerprints),
    }
    (temporary / "search.json").write_text(json.dumps(description, indent=1), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    replace_durably(temporary, folder)


class MultiIndex:
    """Opened search tables (memory-mapped); :meth:`within` answers exact radius queries."""

    def __init__(self, folder: Path) -> None:
        description = json.loads((folder / "search.json").read_text(encoding="utf-8"))
        if description.get("layout") != LAYOUT_NAME:
            raise ValueError(f"{folder} holds search tables of layout {description.get('layout')!r}")
        self.covered = Covered(
            tuple(description["shards"]),
            tuple(description["counts"]),
            tuple(description.get("fingerprints", ())),
        )
        self.entries = int(description["entries"])
        self.kind = RowKind(int(description.get("kind", RowKind.PICTURE)))
        self.values = [np.load(folder / f"values.{t}.npy", mmap_mode="r") for t in range(TABLES)]
        self.offsets = [np.load(folder / f"offsets.{t}.npy", mmap_mode="r") for t in range(TABLES)]
        self.ids = np.load(folder / "ids.npy", mmap_mode="r")
        self._masks: dict[tuple[int, int], np.ndarray] = {}
        self.nbytes = sum(a.nbytes for a in [*self.values, *self.offsets, self.ids])
        self._advise(mmap.MADV_RANDOM)

    def _advise(self, *advice: int) -> bool:
        """Give the tables' mappings ``advice`` in turn; False where madvise is not available.

        Tables not in memory are read by the queries' page faults, and a query's probes land on
        scattered pages (~90 MB of a 1e8-entry part's 5.7 GB). With the kernel's default
        read-around each fault reads 128 KB, so a cold query read 3.6 GB: MADV_RANDOM reads the
        page alone (cold query 1.47 s -> 0.73 s, bench/beyond_memory.py). It matters whenever the
        tables are larger than the page cache can hold."""
        for array in [*self.values, *self.offsets, self.ids]:
            mapping = getattr(array, "_mmap", None)
            try:
                if mapping is None:
                    raise OSError("not memory-mapped")
                for each in advice:
                    mapping.madvise(each)
            except (OSError, ValueError, AttributeError):  # no madvise on this platform
                return False
        return True

    def warm(self) -> None:
        """Map every page of the tables now, instead of one page fault at a time during queries.

        A freshly opened index answers its first thousands of queries slowly: each probe lands
        on a page this process has not touched yet. A server calls this once, in the background,
        after opening (the bot does); it reads the tables from the page cache or disk in one
        sequential sweep (MADV_POPULATE_READ, Linux 5.14+; a strided read elsewhere). It asks for
        huge pages first (MADV_HUGEPAGE): tables read cold then map in 2 MB pages, and a probe no
        longer pays a page-table walk, which is dear in a virtual machine. The sweep reads ahead
        (MADV_SEQUENTIAL); the tables go back to random reads after it, for pages evicted later.
        """
        self._advise(mmap.MADV_HUGEPAGE)  # where the kernel offers it
        if not self._advise(mmap.MADV_SEQUENTIAL, _MADV_POPULATE_READ):
            self._advise(mmap.MADV_NORMAL)
            for array in [*self.values, *self.offsets, self.ids]:
                np.asarray(array.reshape(-1).view(np.uint8)[::4096]).sum()
        self._advise(mmap.MADV_RANDOM)

    def _flip_masks(self, table: int, radius: int) -> np.ndarray:
        width = len(table_positions(table))
        if (width, radius) not in self._masks:
            self._masks[width, radius] = flip_masks(width, radius)
        return self._masks[width, radius]

    def _close_values(self, query: np.ndarray, radius: int) -> np.ndarray:
        """Distinct indexed hash values within ``radius`` of some query hash."""
        from bot.index.mih_kernel import probe_table  # numba loads in ~1 s: only when searching

        radii = table_radii(radius)
        parts = [
            query[part::SEARCH_THREADS] for part in range(SEARCH_THREADS) if query[part::SEARCH_THREADS].size
        ]

        def probe_part(part: np.ndarray) -> list[np.ndarray]:
            return [
                probe_table(
                    part,
                    table_keys(part, table),
                    self._flip_masks(table, table_radius),
                    self.offsets[table],
                    self.values[table],
                    radius,
                )
                for table, table_radius in enumerate(radii)
                if table_radius >= 0
            ]

        if len(parts) > 1:
            found = [array for arrays in _search_pool().map(probe_part, parts) for array in arrays]
        else:
            found = probe_part(query)
        if not found:
            return np.zeros(0, dtype=np.uint64)
        return np.unique(np.concatenate(found))

    def _ordinals_of(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every entry whose hash is one of ``values``: (ordinals, their hashes)."""
        offsets = self.offsets[0]
        keys = table_keys(values, 0)
        starts = offsets[keys].astype(np.int64)
        lengths = offsets[keys + 1].astype(np.int64) - starts
        positions = _concatenated_ranges(starts, lengths)
        stored = self.values[0][positions]
        wanted = np.repeat(values, lengths)
        equal = stored == wanted
        return self.ids[positions[equal]].astype(np.int64), stored[equal]

    def within(self, query: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every (entry ordinal, query row, distance) whose pHashes differ in <= ``radius`` bits.

        ``query`` is a (V,) uint64 array, one hash per query variant. Exact: the same pairs a
        comparison of every entry with every variant would give. The distances come along so
        that verifying a match never reads the shards' own pHash arrays.
        """
        query = np.ascontiguousarray(query, dtype=np.uint64)
        if radius < 0 or not query.size or self.entries == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        # Variants often share a hash (a small inner margin rarely changes pHash): probe each once.
        values = self._close_values(np.unique(query), min(radius, HASH_BITS))
        ordinals, hashes = self._ordinals_of(values)
        distances = np.bitwise_count(hashes[:, None] ^ query[None, :])
        rows, variants = np.nonzero(distances <= radius)
        return ordinals[rows], variants.astype(np.int64), distances[rows, variants].astype(np.int64)


def search_folder(index_folder: Path, kind: RowKind = RowKind.PICTURE) -> Path:
    """Where the tables of one kind of row live: ``search`` for pictures, ``search-core``..."""
    return index_folder / ("search" if kind == RowKind.PICTURE else f"search-{kind.name.lower()}")


@dataclass(frozen=True)
class SearchTables:
    """The tables of every kind of row the covered shards hold, opened."""

    by_kind: dict[RowKind, MultiIndex]
    covered: Covered

    @property
    def nbytes(self) -> int:
        return sum(tables.nbytes for tables in self.by_kind.values())

    def warm(self) -> None:
        for tables in self.by_kind.values():
            tables.warm()

    def within(
        self, query: np.ndarray, radius: int, kind: RowKind
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`MultiIndex.within` over the rows of ``kind`` (none found where there are none)."""
        tables = self.by_kind.get(kind)
        if tables is None:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        return tables.within(query, radius)


def _kinds_present(shards: Sequence[ShardReader]) -> list[RowKind]:
    present = {RowKind.PICTURE}
    for shard in shards:
        present.update(RowKind(int(kind)) for kind in np.unique(shard.kinds))
    return sorted(present)


def open_search_tables(index_folder: Path, shards: Sequence[ShardReader]) -> SearchTables | None:
    """The index's search tables, if they describe a leading run of its shards exactly.

    Tables built before shards were appended still serve the shards they cover (the index scans
    the rest); tables that disagree with the shards they claim (names, row counts and file
    fingerprints must all agree, and every kind of row the pictures' tables list must have its
    own) are not used at all, so a stale table can never hide an entry.
    """
    folder = search_folder(index_folder)
    if not (folder / "search.json").exists():
        return None
    try:
        pictures = MultiIndex(folder)
        kinds = json.loads((folder / "search.json").read_text(encoding="utf-8")).get("kinds", [0])
        by_kind = {RowKind.PICTURE: pictures}
        for kind in (RowKind(int(value)) for value in kinds if int(value) != RowKind.PICTURE):
            by_kind[kind] = MultiIndex(search_folder(index_folder, kind))
    except (ValueError, KeyError, OSError):  # another layout or version, or a kind's tables lost
        return None
    covered = pictures.covered
    if any(tables.covered != covered for tables in by_kind.values()):
        return None
    if Covered.of(shards[: len(covered.shards)]) != covered:
        return None
    return SearchTables(by_kind, covered)


def refresh_search_tables(index_folder: Path) -> SearchTables:
    """(Re)build the search tables over every shard of the index, unless they already cover all.

    A full rebuild: at 1e8 rows it sorts 800 MB three times (about two minutes here), which is
    small beside hashing 1e8 pictures, and keeps one set of tables per kind of row instead of a
    growing stack. The pictures' tables are written last and list the kinds: tables of a kind
    left from an interrupted rebuild are never read without them.
    """
    manifest = Manifest.read(index_folder)
    shards = [ShardReader(index_folder / "shards" / name) for name in manifest.shards]
    current = open_search_tables(index_folder, shards)
    if current is not None and len(current.covered.shards) == len(shards):
        return current
    covered = Covered.of(shards)
    if shards:
        phash = np.concatenate([np.asarray(shard.phash) for shard in shards])
        kinds = np.concatenate([shard.kinds for shard in shards])
    else:
        phash = np.zeros(0, dtype=np.uint64)
        kinds = np.zeros(0, dtype=np.uint8)
    present = _kinds_present(shards)
    for kind in reversed(present):  # RowKind.PICTURE, which lists the others, last
        ordinals = np.flatnonzero(kinds == kind)
        listed = present if kind == RowKind.PICTURE else [kind]
        build_tables(search_folder(index_folder, kind), phash[ordinals], covered, ordinals, listed)
    tables = open_search_tables(index_folder, shards)
    assert tables is not None
    return tables
