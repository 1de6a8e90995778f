"""Copies turned a few degrees: found through the query turned back (bot.hashing turn_angles)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from bot.checking import check_picture
from bot.config import Settings
from bot.index.search import HashIndex
from tests.made_up import index_of_photos, jpeg, photo

SIZE = (480, 360)


def turned_with_corners_filled(image: Image.Image, angle: float) -> Image.Image:
    return image.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=(0, 0, 0))


def turned_and_cut(image: Image.Image, angle: float, cut: float = 0.12) -> Image.Image:
    """Turned on a larger canvas, then cut ``cut`` from every side to hide the corners."""
    turned = image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    width, height = turned.size
    return turned.crop(
        (round(width * cut), round(height * cut), round(width * (1 - cut)), round(height * (1 - cut)))
    )


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> HashIndex:
    return index_of_photos(tmp_path_factory.mktemp("turned"), range(300, 304), SIZE)


@pytest.mark.parametrize(
    ("number", "angle", "edit"),
    [
        (0, 5.0, turned_with_corners_filled),
        (1, -6.5, turned_with_corners_filled),
        (2, 4.0, turned_and_cut),
        (3, -7.0, turned_and_cut),
    ],
)
def test_a_turned_copy_is_found_through_a_turned_back_variant(index, settings: Settings, number, angle, edit):
    copy = edit(photo(300 + number, SIZE), angle)
    found = check_picture(jpeg(copy), index, settings).found
    assert [Path(item.entry.key).stem for item in found] == [f"photo{number}"]
    assert found[0].match.variant.startswith("turned")


def test_without_turned_variants_the_turned_copy_is_lost(index, settings: Settings):
    """The turned-back variants are what finds it: a plain photograph's hashes drift too far."""
    from dataclasses import replace

    untuned = replace(settings, hashing=replace(settings.hashing, turn_angles=()))
    copy = turned_with_corners_filled(photo(300, SIZE), 6.25)
    assert check_picture(jpeg(copy), index, untuned).found == []


def test_an_unrelated_turned_photograph_finds_nothing(index, settings: Settings):
    copy = turned_and_cut(photo(399, SIZE), 5.0)
    assert check_picture(jpeg(copy), index, settings).found == []
