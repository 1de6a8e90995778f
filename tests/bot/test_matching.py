"""The match rule's radii: which variant looks for which kind of row, within how many pHash bits."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bot.config import MatchingSettings
from bot.hashing import Guess, QueryHashes, RowKind
from bot.matching import phash_limits

RULE = MatchingSettings(
    phash_max_distance=8,
    pdq_max_distance=80,
    pdq_min_quality=50,
    turn_phash_max_distance=6,
    core_phash_max_distance=4,
    grid_phash_max_distance=2,
)
GUESSES = [Guess.NONE, Guess.TURN, Guess.CORE, Guess.GRID]


def query_of(guesses: list[Guess] | None) -> QueryHashes:
    count = len(GUESSES)
    return QueryHashes(
        phash=np.zeros(count, dtype=np.uint64),
        pdq=np.zeros((count, 4), dtype=np.uint64),
        variants=tuple(f"v{number}" for number in range(count)),
        quality=100,
        guesses=None if guesses is None else np.array(guesses, dtype=np.uint8),
    )


def test_each_guess_looks_for_each_kind_of_row_within_its_own_radius():
    limits = phash_limits(query_of(GUESSES), RULE)
    # plain, turned, aimed at the core, the crop grid's
    assert limits[RowKind.PICTURE].tolist() == [8, 6, -1, -1]
    assert limits[RowKind.CORE].tolist() == [4, 4, 4, 2]


def test_without_guesses_every_variant_is_plain():
    limits = phash_limits(query_of(None), RULE)
    assert limits[RowKind.PICTURE].tolist() == [8] * 4
    assert limits[RowKind.CORE].tolist() == [4] * 4


def test_minus_one_means_the_radius_a_guess_falls_back_to():
    rule = replace(RULE, turn_phash_max_distance=-1, core_phash_max_distance=-1, grid_phash_max_distance=-1)
    limits = phash_limits(query_of(GUESSES), rule)
    assert limits[RowKind.PICTURE].tolist() == [8, 8, -1, -1]
    assert limits[RowKind.CORE].tolist() == [8, 8, 8, 8]  # the core's falls back to the rule's
    only_grid_unset = replace(RULE, grid_phash_max_distance=-1)
    assert phash_limits(query_of(GUESSES), only_grid_unset)[RowKind.CORE].tolist() == [4, 4, 4, 4]


@pytest.mark.parametrize("wider", [10, 64])
def test_a_guess_never_looks_farther_than_the_rule(wider):
    rule = replace(
        RULE, turn_phash_max_distance=wider, core_phash_max_distance=wider, grid_phash_max_distance=wider
    )
    limits = phash_limits(query_of(GUESSES), rule)
    assert limits.max() == RULE.phash_max_distance
