"""Perceptual hashes (bot.hashing): what an entry stores (its central region, its core, the
photographs inside it) and which variants a query is hashed in, each with what it guesses at."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bot.config import Settings
from bot.hashing import PDQ, Guess, PHash, RowKind, core_query_regions, hash_entry, hash_query
from tests.bot.test_cropped_copies import SIZE, cut, region
from tests.bot.test_plain_entries import detail_only_at_the_edges
from tests.made_up import photo

# --- what an entry stores ----------------------------------------------------------------------


def test_an_entry_with_a_plain_middle_is_hashed_on_its_whole_frame(settings: Settings):
    image = detail_only_at_the_edges(300)
    margin = settings.hashing.entry_margin
    middle = image.crop((48, 36, 432, 324))
    assert PDQ.compute_with_quality(middle)[1] < settings.matching.pdq_min_quality
    hashes = hash_entry(image, settings.hashing)
    assert hashes.quality == PDQ.compute_with_quality(image)[1] >= settings.matching.pdq_min_quality
    assert margin > 0


def test_an_entry_keeps_its_core_as_a_part(settings: Settings):
    picture = photo(400, SIZE)
    core = settings.hashing.core_margin
    parts = hash_entry(picture, settings.hashing).parts
    assert [part.kind for part in parts] == [RowKind.CORE]
    left, top, right, bottom = parts[0].box
    assert left == pytest.approx(top) == pytest.approx(1 - right) == pytest.approx(1 - bottom)
    assert parts[0].hashes.phash == int(PHash.compute(region(picture, (core,) * 4))[0])


def test_a_plain_core_is_not_kept(settings: Settings):
    """A flat middle with detail only at the edges: the core row could never match."""
    picture = np.full((SIZE[1], SIZE[0], 3), 128, dtype=np.uint8)
    picture[:40] = np.asarray(photo(401, (SIZE[0], 40)))
    picture[-40:] = np.asarray(photo(402, (SIZE[0], 40)))
    parts = hash_entry(Image.fromarray(picture), settings.hashing).parts
    assert [part for part in parts if part.kind == RowKind.CORE] == []
    assert [part.kind for part in hash_entry(photo(401, SIZE), settings.hashing).parts] == [RowKind.CORE]


# --- the variants a query is hashed in --------------------------------------------------------


@pytest.mark.parametrize(
    "cuts", [(0.15, 0, 0, 0), (0, 0.11, 0.11, 0), (0.1,) * 4], ids=["side", "corner", "even"]
)
def test_a_region_aimed_at_the_core_lines_up_with_it(settings: Settings, cuts):
    """Cut exactly as one of the grid's guesses, the copy holds the core where that guess looks."""
    picture = photo(403, SIZE)
    core = int(PHash.compute(region(picture, (settings.hashing.core_margin,) * 4))[0])
    copy = cut(picture, *cuts)
    closest = min(
        (int(PHash.compute(region(copy, margins))[0]) ^ core).bit_count()
        for margins in core_query_regions(settings.hashing)
    )
    assert closest <= 2


def core_in_copy(core: float, cuts: tuple[float, float, float, float]) -> tuple[float, ...]:
    """Where the core (``core`` in from every side of the original) lies in a copy cut by
    ``cuts`` (left, top, right, bottom): its margins as fractions of the copy."""
    left, top, right, bottom = cuts
    return (
        (core - left) / (1 - left - right),
        (core - top) / (1 - top - bottom),
        (core - right) / (1 - left - right),
        (core - bottom) / (1 - top - bottom),
    )


def test_some_region_aimed_at_the_core_is_within_a_grid_step_of_any_uneven_cut(settings: Settings):
    """Cut on every side by a different amount inside the crop grid's span, the core lies within
    half a grid step (scaled by the copy's size) of one of the regions aimed at it."""
    grid = settings.hashing.core_crop_grid
    half_step = (grid[1] - grid[0]) / 2
    regions = np.array(core_query_regions(settings.hashing))
    rng = np.random.default_rng(3)
    for cuts in rng.uniform(grid[0] - half_step, grid[-1] + half_step, size=(200, 4)):
        where = np.array(core_in_copy(settings.hashing.core_margin, tuple(cuts)))
        off = np.abs(regions - where).max(axis=1).min()
        assert off <= half_step / (1 - 2 * (grid[-1] + half_step)) + 1e-9


def test_turned_variants_are_guesses_at_an_angle(settings: Settings):
    query = hash_query(photo(300, SIZE), settings.hashing)
    turned = [name.startswith("turned") for name in query.variants]
    assert query.guesses is not None
    assert [guess == Guess.TURN for guess in query.guesses] == turned
    assert sum(turned) == len(settings.hashing.turn_angles) * len(settings.hashing.turned_query_regions)
