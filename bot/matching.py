"""The match rule, in one place: when is a dataset entry a copy of a query picture?

An entry matches when, for at least one query variant, its pHash is within
``phash_max_distance`` bits (a radius of its own for a variant that guesses at an edit)
AND every other kind of hash (:mod:`bot.signals`: PDQ) within its own radius
(``pdq_max_distance``) of that variant, and the entry's quality (PDQ's) is at least
``pdq_min_quality``. The index search must return exactly the
entries this rule accepts (tests compare it with a brute-force pass over every row).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bot.config import MatchingSettings
from bot.hashing import CORE_GUESSES, Guess, QueryHashes, RowKind
from bot.signals import SEARCHED, SignalValues, checked_kinds, ranked_kinds, signal_keywords


@signal_keywords
@dataclass(frozen=True, order=True)
class MatchDistance(SignalValues):
    """How close an entry is: the bits that differ in each kind of hash (``distance.pdq``),
    compared finest kind first (PDQ's 256 bits, then pHash's 64)."""

    signals: dict[str, int] = field(compare=False)
    ranking: tuple[int, ...] = field(init=False, repr=False)  # in bot.signals.ranked_kinds() order

    def __post_init__(self) -> None:
        object.__setattr__(self, "ranking", tuple(self.signals[kind.name] for kind in ranked_kinds()))

    @classmethod
    def ranked(cls, ranking: Sequence[int]) -> MatchDistance:
        """The distance whose :attr:`ranking` is ``ranking``."""
        return cls(signals={kind.name: bits for kind, bits in zip(ranked_kinds(), ranking, strict=True)})


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
    def sort_key(self) -> tuple[tuple[int, ...], str, int]:
        return (self.distance.ranking, self.shard, self.row)


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


def _bits_apart(first: Any, second: Any) -> int:
    """Bits that differ between two hashes given as ints or sequences of 64-bit words."""
    first, second = (np.asarray(value, dtype=np.uint64).ravel().tolist() for value in (first, second))
    return sum((a ^ b).bit_count() for a, b in zip(first, second, strict=True))


def best_variant(
    query: QueryHashes,
    row: Mapping[str, Any],
    quality: int,
    rule: MatchingSettings,
    *,
    kind: RowKind = RowKind.PICTURE,
) -> tuple[MatchDistance, str] | None:
    """The rule for one row of ``kind`` (its hash of every kind in ``row``, by kind name), written
    plainly: the reference the fast search is checked against. Each variant counts within its
    pHash radius for that kind of row (:func:`phash_limits`) and every other kind's radius."""
    if quality < rule.pdq_min_quality:
        return None
    best: tuple[MatchDistance, str] | None = None
    limits = phash_limits(query, rule)[kind]
    for i, variant in enumerate(query.variants):
        distances = {SEARCHED.name: _bits_apart(query.signals[SEARCHED.name][i], row[SEARCHED.name])}
        if distances[SEARCHED.name] > limits[i]:
            continue
        for other in checked_kinds():
            distances[other.name] = _bits_apart(query.signals[other.name][i], row[other.name])
        if any(distances[other.name] > other.max_distance(rule) for other in checked_kinds()):
            continue
        distance = MatchDistance(signals=distances)
        if best is None or distance < best[0]:
            best = (distance, variant)
    return best


def verification_order(
    query: QueryHashes,
    row: Mapping[str, Any],
    rule: MatchingSettings,
    found: list[int],
    *,
    kind: RowKind = RowKind.PICTURE,
) -> list[int]:
    """The query variants to line a row of ``kind`` up through (its hash of every kind in ``row``,
    by kind name): ``found`` (those within the rule, closest first), then the others that look
    for that kind of row within ``verify_near_*`` of it in every kind of hash, closest first.

    The hashes only nominate a candidate; the region that lines up best may be one they judged a
    little too far (see ``[matching]`` in bot/default.toml)."""
    ranked = ranked_kinds()
    distances = [kind.distances(query.signals[kind.name], row[kind.name]) for kind in ranked]
    within = phash_limits(query, rule)[kind] >= 0
    for signal, distance in zip(ranked, distances, strict=True):
        within &= distance <= signal.near_distance(rule)
    tried = set(found)
    others = sorted(
        (*(int(distance[i]) for distance in distances), int(i))
        for i in np.flatnonzero(within)
        if int(i) not in tried
    )
    return [*found, *(ranks[-1] for ranks in others)]
