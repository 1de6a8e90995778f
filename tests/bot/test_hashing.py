"""Perceptual hashes (bot.hashing): what an entry stores (its central region, its core, the
photographs inside it) and which variants a query is hashed in, each with what it guesses at."""

from __future__ import annotations

from dataclasses import replace

import imagehash
import numpy as np
import pdqhash
import pytest
from PIL import Image, ImageOps

from bot.config import Settings
from bot.hashing import (
    PDQ,
    Guess,
    PHash,
    RowKind,
    core_guesses,
    core_query_regions,
    guessed_regions,
    hash_entry,
    hash_query,
    hash_query_with_views,
    query_bases,
)
from tests.bot.test_composites import side_by_side
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


# --- the hashes themselves -----------------------------------------------------------------------


def test_both_hashes_are_packed_first_bit_most_significant():
    """The index stores a hash as big-endian words, first bit most significant (the README's index
    format): the bits imagehash and pdqhash give, in their order."""
    picture = photo(7, SIZE)
    assert PHash.compute(picture).tolist() == [int(str(imagehash.phash(picture)), 16)]
    bits, _ = pdqhash.compute(np.asarray(picture))
    words = PDQ.compute(picture)
    assert words.shape == (PDQ.bits // 64,)
    np.testing.assert_array_equal(np.unpackbits(words.astype(">u8").view(np.uint8)), bits)


def test_an_exact_copy_has_a_variant_hashed_as_the_entry_was(settings: Settings):
    """The asymmetry works: one of a query's variants is the entry's central region, bit for bit."""
    picture = photo(8, SIZE)
    margin = settings.hashing.entry_margin
    entry = hash_entry(picture, settings.hashing)
    query = hash_query(picture, settings.hashing)

    row = query.variants.index(f"as-sent@{margin:g},{margin:g},{margin:g},{margin:g}")
    assert int(query.phash[row]) == entry.phash == int(PHash.compute(region(picture, (margin,) * 4))[0])
    np.testing.assert_array_equal(query.pdq[row], entry.pdq)


def test_a_composite_entry_keeps_each_photograph_as_a_part_hashed_as_an_entry_of_its_own(
    settings: Settings,
):
    first, second = photo(204, (480, 360)), photo(205, (400, 360))
    pair = side_by_side(first, second, gap=16)
    placed = [(16, 32, 16 + 480, 32 + 360), (2 * 16 + 480, 32, 2 * 16 + 480 + 400, 32 + 360)]

    parts = hash_entry(pair, settings.hashing).parts

    assert [part.kind for part in parts] == [RowKind.CORE, RowKind.PICTURE, RowKind.PICTURE]
    for part, box in zip(parts[1:], placed, strict=True):
        fractions = (box[0] / pair.width, box[1] / pair.height, box[2] / pair.width, box[3] / pair.height)
        assert part.box == pytest.approx(fractions, abs=0.01)
        pixels = tuple(round(f * size) for f, size in zip(part.box, pair.size * 2, strict=True))
        alone = hash_entry(pair.crop(pixels), settings.hashing)
        assert (part.hashes.phash, part.hashes.quality) == (alone.phash, alone.quality)
        np.testing.assert_array_equal(part.hashes.pdq, alone.pdq)


# --- the pictures a query might have been made from ----------------------------------------------


def letterboxed(image: Image.Image, bar: int) -> Image.Image:
    canvas = Image.new("RGB", (image.width, image.height + 2 * bar), (0, 0, 0))
    canvas.paste(image, (0, bar))
    return canvas


def test_query_bases_trim_borders_and_mirror_every_base_and_turn_the_picture_as_sent(settings: Settings):
    picture = photo(9, SIZE)
    bases = query_bases(letterboxed(picture, 60), settings.hashing)

    trimmed = np.asarray(bases["trimmed"], dtype=np.int16)
    assert trimmed.shape == np.asarray(picture).shape
    assert np.abs(trimmed - np.asarray(picture)).mean() < 1
    unturned = [name for name in bases if not name.startswith("turned")]
    assert {name for name in unturned if name.endswith("+mirrored")} == {
        f"{name}+mirrored" for name in unturned if not name.endswith("+mirrored")
    }
    for name in unturned:
        if not name.endswith("+mirrored"):
            assert np.array_equal(
                np.asarray(bases[f"{name}+mirrored"]), np.asarray(ImageOps.mirror(bases[name]))
            )
    turned = [name for name in bases if name.startswith("turned")]
    assert turned == [f"turned{angle:+g}" for angle in settings.hashing.turn_angles]
    assert {bases[name].size for name in turned} == {bases["as-sent"].size}
    # a photograph without borders or panels is only itself, mirrored and turned
    assert set(query_bases(picture, settings.hashing)) == {"as-sent", "as-sent+mirrored", *turned}


def test_every_variant_is_one_row_of_each_array_and_the_views_change_no_hash(settings: Settings):
    picture = letterboxed(photo(10, (240, 180)), 30)
    query = hash_query(picture, settings.hashing)
    with_views, _ = hash_query_with_views(picture, settings.hashing)

    expected = sum(
        len(guessed_regions(name, settings.hashing)) for name in query_bases(picture, settings.hashing)
    )
    assert len(query.variants) == len(set(query.variants)) == expected
    assert query.guesses is not None
    assert query.phash.shape == query.guesses.shape == (expected,)
    assert query.pdq.shape == (expected, 4)
    assert with_views.variants == query.variants
    np.testing.assert_array_equal(with_views.phash, query.phash)
    np.testing.assert_array_equal(with_views.pdq, query.pdq)


def test_a_query_is_judged_by_its_best_plain_region_as_sent(settings: Settings):
    """A picture whose detail lies near its edges: its quality is the whole frame's, not the middle's."""
    picture = detail_only_at_the_edges(301)
    plain = settings.hashing.query_regions + settings.hashing.cut_query_regions
    qualities = [PDQ.compute_with_quality(region(picture, margins))[1] for margins in plain]

    query = hash_query(picture, settings.hashing)

    assert query.quality == max(qualities)
    assert query.quality > min(qualities)


# --- what each variant guesses at ----------------------------------------------------------------


def test_only_the_picture_as_sent_and_its_mirror_look_for_the_core(settings: Settings):
    picture = letterboxed(photo(11, (240, 180)), 30)
    query = hash_query(picture, settings.hashing)
    assert query.guesses is not None
    base_of = [name.split("@")[0] for name in query.variants]

    def bases_guessing(*guesses: Guess) -> set[str]:
        return {base for base, guess in zip(base_of, query.guesses, strict=True) if guess in guesses}

    assert bases_guessing(Guess.CORE, Guess.GRID) == {"as-sent", "as-sent+mirrored"}
    assert bases_guessing(Guess.TURN) == {name for name in base_of if name.startswith("turned")}
    assert {"trimmed", "trimmed+mirrored"} <= bases_guessing(Guess.NONE)
    assert bases_guessing(Guess.NONE).isdisjoint(bases_guessing(Guess.TURN))
    without_core = hash_query(picture, replace(settings.hashing, core_margin=0.0)).guesses
    assert without_core is not None
    assert {Guess(guess) for guess in without_core} == {Guess.NONE, Guess.TURN}


def test_grid_guesses_are_the_regions_that_only_the_crop_grid_adds(settings: Settings):
    hashing = settings.hashing
    without_grid = set(core_query_regions(replace(hashing, core_crop_grid=())))
    guesses = core_guesses(hashing)

    assert [margins for margins, _ in guesses] == list(core_query_regions(hashing))
    assert {margins for margins, guess in guesses if guess == Guess.GRID} == set(
        core_query_regions(hashing)
    ) - without_grid
    assert {guess for _, guess in core_guesses(replace(hashing, core_crop_grid=()))} == {Guess.CORE}
    assert core_guesses(replace(hashing, core_margin=0.0)) == ()
