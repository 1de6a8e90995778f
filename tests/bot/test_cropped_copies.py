"""Copies cut past the central region's margin: found through the entry's core row and the query
regions aimed at it (bot.hashing core_margin, core_query_regions)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from bot.checking import check_picture
from bot.config import Settings
from bot.hashing import Guess, hash_query
from bot.index.search import HashIndex
from bot.tickets.intake import file_removal_request
from tests.made_up import index_of_photos, jpeg, photo

SIZE = (480, 360)


def cut(image: Image.Image, left: float = 0.0, top: float = 0.0, right: float = 0.0, bottom: float = 0.0):
    width, height = image.size
    return image.crop(
        (round(width * left), round(height * top), round(width * (1 - right)), round(height * (1 - bottom)))
    )


def region(image: Image.Image, margins: tuple[float, float, float, float]) -> Image.Image:
    return cut(image, *margins)


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> HashIndex:
    return index_of_photos(tmp_path_factory.mktemp("cropped"), range(400, 404), SIZE)


@pytest.mark.parametrize(
    ("number", "cuts"),
    [
        (0, (0.17, 0, 0, 0)),  # one side, past the central region's 10 %
        (1, (0, 0, 0, 0.14)),
        (2, (0, 0.13, 0.12, 0)),  # a corner
        (3, (0.12, 0.09, 0.11, 0.1)),  # every side
    ],
)
def test_a_copy_cut_past_the_central_region_is_found_through_the_core(
    index, settings: Settings, number, cuts
):
    copy = cut(photo(400 + number, SIZE), *cuts)
    found = check_picture(jpeg(copy), index, settings).found
    assert [Path(item.entry.key).stem for item in found] == [f"photo{number}"]
    assert found[0].part is not None  # the core's row matched, not the central region's


@pytest.mark.parametrize(("number", "cuts"), [(0, (0.17, 0, 0, 0)), (2, (0, 0.13, 0.12, 0))])
def test_the_regions_aimed_at_the_core_are_what_finds_a_copy_cut_on_one_side(index, settings, number, cuts):
    """Cut on one side or at a corner, only a region aimed at the core lines up with it (cut on
    every side, a plain region near 10 % often comes close to the core as well)."""
    copy = cut(photo(400 + number, SIZE), *cuts)
    found = check_picture(jpeg(copy), index, settings).found
    query = hash_query(copy, settings.hashing)
    assert query.guesses is not None
    assert query.guesses[query.variants.index(found[0].match.variant)] == Guess.CORE

    without_core = replace(settings, hashing=replace(settings.hashing, core_margin=0.0))
    assert check_picture(jpeg(copy), index, without_core).found == []


def test_an_unrelated_photograph_cut_the_same_way_finds_nothing(index, settings: Settings):
    assert check_picture(jpeg(cut(photo(499, SIZE), 0.15)), index, settings).found == []


@pytest.mark.parametrize("cuts", [(0.05, 0.13, 0.12, 0.06), (0.13, 0.04, 0.07, 0.12)])
def test_a_copy_cut_unevenly_on_every_side_and_mirrored_is_found_through_the_core(
    index, settings: Settings, cuts
):
    copy = ImageOps.mirror(cut(photo(401, SIZE), *cuts))
    found = check_picture(jpeg(copy), index, settings).found
    assert [Path(item.entry.key).stem for item in found] == ["photo1"]
    query = hash_query(copy, settings.hashing)
    variant = found[0].match.variant
    assert variant.startswith("as-sent+mirrored@")
    assert query.guesses is not None
    assert query.guesses[query.variants.index(variant)] == Guess.GRID

    without_grid = replace(settings, hashing=replace(settings.hashing, core_crop_grid=()))
    assert check_picture(jpeg(copy), index, without_grid).found == []


async def test_a_ticket_keeps_the_plain_variants_and_the_guess_that_found_its_entry(index, settings, store):
    """Of a query's ~670 variants, a ticket keeps those that are no guess at the core, and the one
    guess that found its entry: not ~90 kB of hashes of guesses that found nothing."""
    copy = ImageOps.mirror(cut(photo(401, SIZE), 0.05, 0.13, 0.12, 0.06))
    result = check_picture(jpeg(copy), index, settings)
    through = result.found[0].match.variant
    assert result.query.guesses is not None
    assert result.query.guesses[result.query.variants.index(through)] == Guess.GRID

    ticket = await file_removal_request(store, index, result, "requester-1")

    assert ticket.query is not None
    kept = dict(zip(result.query.variants, result.query.guesses.tolist(), strict=True))
    guessed_at_core = {Guess.CORE, Guess.GRID}
    assert through in ticket.query.variants
    assert [v for v in ticket.query.variants if v != through and kept[v] in guessed_at_core] == []
    assert {v for v, guess in kept.items() if guess not in guessed_at_core} <= set(ticket.query.variants)
    assert len(ticket.query.variants) < len(result.query.variants) / 10
    stored_phash = ticket.query.phash[ticket.query.variants.index(through)]
    assert int(stored_phash, 16) == int(result.query.phash[result.query.variants.index(through)])
