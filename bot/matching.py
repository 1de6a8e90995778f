"""The match rule, in one place: when is a dataset entry a copy of a query picture?

An entry matches when, for at least one query variant, its pHash is within
``phash_max_distance`` bits (a radius of its own for a variant that guesses at an edit)
AND its PDQ within ``pdq_max_distance`` bits of that variant, and the
entry's PDQ quality is at least ``pdq_min_quality``. The index search must return exactly the
entries this rule accepts (tests compare it with a brute-force pass over every row).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bot.config import MatchingSettings
from bot.hashing import CORE_GUESSES, Guess, QueryHashes, RowKind


@dataclass(frozen=True, order=True)
class MatchDistance:
    """How close an entry is, compared PDQ first (256 bits: finer), then pHash."""

    pdq: int
    phash: int


@dataclass(frozen=True)
class EntryMatch:
    """One matching entry: where it is in the index, and its best distance over query variants."""

    shard: str
    row: int
    distance: MatchDistance
    variant: str
    # False: an entry too plain for its hashes to count (PDQ quality under the gate), near the query
    # in both hashes, that no pixel check confirmed. Never a match; a check says it exists.
    judged: bool = True

    @property
    def sort_key(self) -> tuple[int, int, str, int]:
        return (self.distance.pdq, self.distance.phash, self.shard, self.row)


def phash_limits(query: QueryHashes, rule: MatchingSettings) -> np.ndarray:
    """(kinds of row, V): the pHash radius within which each query variant looks for each kind of
    row (:class:`bot.hashing.RowKind`); -1 where it does not look at all.

    Pictures' central regions (and composites' photographs): ``phash_max_distance``, tighter for
    a variant turned back by a guessed angle (``turn_phash_max_distance``); never by a region
    aimed at the core. Cores: every variant within ``core_phash_max_distance``, which costs the
    search 46 buckets a variant at 4 bits: a region lined up with a picture's central region is
    often close to a core as well (a copy cut ~10 % on every side holds the core near a margin of
    10 %), and the regions aimed at cores are tight guesses."""
    variants = len(query.variants)
    guesses = query.guesses if query.guesses is not None else np.zeros(variants, dtype=np.uint8)
    limits = np.full((len(RowKind), variants), -1, dtype=np.int64)
    picture = limits[RowKind.PICTURE]
    picture[:] = rule.phash_max_distance
    if rule.turn_phash_max_distance >= 0:
        picture[guesses == Guess.TURN] = min(rule.turn_phash_max_distance, rule.phash_max_distance)
    picture[np.isin(guesses, list(CORE_GUESSES))] = -1
    core = rule.phash_max_distance if rule.core_phash_max_distance < 0 else rule.core_phash_max_distance
    core = min(core, rule.phash_max_distance)
    limits[RowKind.CORE] = core
    if rule.grid_phash_max_distance >= 0:
        limits[RowKind.CORE][guesses == Guess.GRID] = min(rule.grid_phash_max_distance, core)
    return limits


def best_variant(
    query: QueryHashes,
    phash: int,
    pdq: tuple[int, int, int, int],
    quality: int,
    rule: MatchingSettings,
    *,
    kind: RowKind = RowKind.PICTURE,
) -> tuple[MatchDistance, str] | None:
    """The rule for one row of ``kind``, written plainly: the reference the fast search is checked
    against. Each variant counts within its radius for that kind of row (:func:`phash_limits`)."""
    if quality < rule.pdq_min_quality:
        return None
    best: tuple[MatchDistance, str] | None = None
    limits = phash_limits(query, rule)[kind]
    for i, variant in enumerate(query.variants):
        phash_distance = (int(query.phash[i]) ^ phash).bit_count()
        if phash_distance > limits[i]:
            continue
        pdq_distance = sum((int(query.pdq[i, w]) ^ pdq[w]).bit_count() for w in range(4))
        if pdq_distance > rule.pdq_max_distance:
            continue
        distance = MatchDistance(pdq=pdq_distance, phash=phash_distance)
        if best is None or distance < best[0]:
            best = (distance, variant)
    return best


def verification_order(
    query: QueryHashes,
    phash: int,
    pdq: np.ndarray,
    rule: MatchingSettings,
    found: list[int],
    *,
    kind: RowKind = RowKind.PICTURE,
) -> list[int]:
    """The query variants to line a row of ``kind`` up through: ``found`` (those within the rule,
    closest first), then the others that look for that kind within ``verify_near_*`` of it,
    closest first.

    The hashes only nominate a candidate; the region that lines up best may be one they judged a
    little too far (see ``[matching]`` in config/default.toml)."""
    phash_distance = np.bitwise_count(query.phash ^ np.uint64(phash)).astype(np.int64)
    pdq_distance = np.bitwise_count(query.pdq ^ np.asarray(pdq, dtype=np.uint64)).sum(axis=1, dtype=np.int64)
    near = np.flatnonzero(
        (phash_distance <= rule.verify_near_phash)
        & (pdq_distance <= rule.verify_near_pdq)
        & (phash_limits(query, rule)[kind] >= 0)
    )
    tried = set(found)
    others = sorted(
        (int(pdq_distance[i]), int(phash_distance[i]), int(i)) for i in near if int(i) not in tried
    )
    return [*found, *(variant for _, _, variant in others)]
