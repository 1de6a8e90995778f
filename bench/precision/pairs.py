"""All ordered pairs: the query variants of picture i against the entry hashes of picture j != i,
histogrammed by distance per kind of pair, in chunks of queries over worker processes."""

from __future__ import annotations

import multiprocessing
import sys
import time
from dataclasses import dataclass

import numpy as np

from bench.photo_corpus import GENRES
from bench.precision.hashes import HashTable
from bot.hashing import PDQ, PHash

PHASH_BITS, PDQ_BITS = PHash.bits, PDQ.bits
UNDEFINED = PDQ_BITS + 1  # D_a when no variant of the query is within pHash distance a
# (variant, entry) samples this close in pHash are kept one by one: the closest pairs, and the D_a
# histograms at the radii the scan does not histogram.
NEAR_PHASH = 16

# Pair kinds. A pair of pictures from different photographs gets the kind of its two genres
# (photo_corpus.GENRES); two tiles of one photograph get SAME_PHOTO; a picture with itself is
# never counted.
SAME_PHOTO = len(GENRES) ** 2
KINDS = SAME_PHOTO + 1
_SELF = KINDS
HEADLINE = "everyday photographs"
ALL_DIFFERENT = "all pictures, different photographs"
POPULATIONS: dict[str, tuple[int, ...]] = {
    HEADLINE: (0,),
    ALL_DIFFERENT: tuple(range(SAME_PHOTO)),
    "telescope pictures": (4,),
    "cut-outs on white": (8,),
    "tiles of one photograph": (SAME_PHOTO,),
}
_HISTOGRAMS = ("pairs", "samples", "joint", "min_pdq", "min_phash", "plain")


@dataclass
class PairStats:
    """Histograms over every ordered pair (i != j), per pair kind (first axis, see KINDS)."""

    a_values: tuple[int, ...]
    pairs: np.ndarray  # (KINDS,) ordered pairs
    samples: np.ndarray  # (KINDS,) (query variant, entry) samples
    joint: np.ndarray  # (KINDS, 65, 257): samples by (pHash distance, PDQ distance)
    min_pdq: np.ndarray  # (KINDS, len(a_values), 258): pairs by D_a (last bin: undefined)
    min_phash: np.ndarray  # (KINDS, 65): pairs by the smallest pHash distance over variants
    plain: np.ndarray  # (KINDS, 65): pairs by whole-picture pHash distance (the baseline)
    near: np.ndarray  # (M, 5) int32 rows (query, entry, variant, pHash, PDQ), pHash <= NEAR_PHASH

    def merged(self, other: PairStats) -> PairStats:
        summed = {name: getattr(self, name) + getattr(other, name) for name in _HISTOGRAMS}
        return PairStats(a_values=self.a_values, near=np.concatenate([self.near, other.near]), **summed)

    def population(self, name: str) -> dict[str, np.ndarray]:
        """The histograms of one population (POPULATIONS), summed over its pair kinds."""
        kinds = list(POPULATIONS[name])
        return {n: getattr(self, n)[kinds].sum(axis=0) for n in _HISTOGRAMS}


def pair_kinds(genre: np.ndarray, photo: np.ndarray, queries: np.ndarray, entries: np.ndarray) -> np.ndarray:
    """The kind of each (query, entry) pair of pictures, for any shapes that broadcast."""
    kind = genre[queries] * len(GENRES) + genre[entries]
    return np.where(photo[queries] == photo[entries], SAME_PHOTO, kind)


@dataclass(frozen=True)
class _Scan:
    """What every chunk of the scan reads: set before the worker processes fork."""

    table: HashTable
    genre: np.ndarray
    photo: np.ndarray
    a_values: tuple[int, ...]


_scan: _Scan | None = None


def scan_pairs(
    table: HashTable, genre: np.ndarray, photo: np.ndarray, a_values: tuple[int, ...], *, workers: int
) -> PairStats:
    """Distances of every ordered pair of distinct pictures, histogrammed in chunks of queries."""
    global _scan  # noqa: PLW0603 - read by the forked workers
    _scan = _Scan(table, genre, photo, a_values)
    count = table.ids.size
    chunk = max(1, min(24, 3_000_000 // max(1, count * table.query_phash.shape[1])))
    bounds = [(s, min(s + chunk, count)) for s in range(0, count, chunk)]
    total: PairStats | None = None
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for done, part in enumerate(pool.imap_unordered(_scan_chunk, bounds), 1):
            total = part if total is None else total.merged(part)
            if done % 50 == 0 or done == len(bounds):
                elapsed = time.perf_counter() - started
                print(f"  pairs: {done}/{len(bounds)} chunks of queries, {elapsed:.0f} s", file=sys.stderr)
    assert total is not None
    return total


def _bincount_by_kind(kind: np.ndarray, values: np.ndarray, bins: int) -> np.ndarray:
    counts = np.bincount(kind.ravel() * bins + values.ravel(), minlength=(KINDS + 1) * bins)
    return counts[: KINDS * bins].reshape(KINDS, bins).astype(np.int64)


def _scan_chunk(bounds: tuple[int, int]) -> PairStats:
    assert _scan is not None
    table, a_values = _scan.table, _scan.a_values
    start, stop = bounds
    rows = np.arange(start, stop)
    valid = table.query_variant[start:stop] != ""
    ph = np.bitwise_count(table.query_phash[start:stop, :, None] ^ table.entry_phash[None, None, :])
    pd = np.zeros(ph.shape, np.uint16)
    for word in range(4):
        pd += np.bitwise_count(
            table.query_pdq[start:stop, :, None, word] ^ table.entry_pdq[None, None, :, word]
        )
    ph[~valid] = PHASH_BITS + 1  # padding: never within any threshold ...
    pd[~valid] = PDQ_BITS  # ... and never counted (masked below)
    kind = pair_kinds(_scan.genre, _scan.photo, rows[:, None], np.arange(table.ids.size)[None, :])
    kind[rows - start, rows] = _SELF
    counted = valid[:, :, None] & (kind[:, None, :] != _SELF)
    joint_code = (kind[:, None, :] * (65 * 257) + ph.astype(np.int64) * 257 + pd)[counted]
    joint = np.bincount(joint_code, minlength=(KINDS + 1) * 65 * 257)[: KINDS * 65 * 257]
    min_pdq = np.stack(
        [
            _bincount_by_kind(kind, np.where(ph <= a, pd, UNDEFINED).min(axis=1), UNDEFINED + 1)
            for a in a_values
        ],
        axis=1,
    )
    plain_distance = np.bitwise_count(table.plain_phash[rows, None] ^ table.plain_phash[None, :])
    near = np.argwhere((ph <= NEAR_PHASH) & (kind[:, None, :] != _SELF))
    return PairStats(
        a_values=a_values,
        pairs=np.bincount(kind.ravel(), minlength=KINDS + 1)[:KINDS].astype(np.int64),
        samples=joint.reshape(KINDS, -1).sum(axis=1).astype(np.int64),
        joint=joint.reshape(KINDS, 65, 257).astype(np.int64),
        min_pdq=min_pdq,
        min_phash=_bincount_by_kind(kind, np.minimum(ph.min(axis=1), PHASH_BITS), 65),
        plain=_bincount_by_kind(kind, plain_distance.astype(np.int64), 65),
        near=np.column_stack(
            [near[:, 0] + start, near[:, 2], near[:, 1], ph[tuple(near.T)], pd[tuple(near.T)]]
        ).astype(np.int32),
    )
