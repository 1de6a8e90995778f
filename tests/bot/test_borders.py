"""Uniform borders (bot.borders): letterbox bars and banners found from the outside in, in the
picture's own pixels; none where there is only a hairline, or nothing but border."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from bot.borders import border_depth, find_content_box
from bot.config import Settings
from tests.made_up import photo

PROBE_SIDE = 256  # bot.borders searches a copy scaled to fit this square


def framed(
    image: Image.Image,
    *,
    left: int = 0,
    top: int = 0,
    right: int = 0,
    bottom: int = 0,
    colour: tuple[int, int, int] = (0, 0, 0),
) -> Image.Image:
    canvas = Image.new("RGB", (image.width + left + right, image.height + top + bottom), colour)
    canvas.paste(image, (left, top))
    return canvas


def content_box(image: Image.Image, settings: Settings) -> tuple[int, int, int, int] | None:
    return find_content_box(image, settings.hashing.border_row_share, settings.hashing.border_tolerance)


@pytest.mark.parametrize(
    ("size", "bars"),
    [
        ((480, 360), {"top": 60, "bottom": 60}),  # letterbox
        ((480, 360), {"left": 100, "right": 100}),  # pillarbox
        ((480, 360), {"bottom": 50, "colour": (255, 255, 255)}),  # a caption banner
        ((480, 360), {"top": 40, "left": 30, "colour": (30, 120, 200)}),  # any colour, two sides
        ((1600, 1200), {"top": 200, "bottom": 200}),  # larger than the probe: the box in its pixels
    ],
)
def test_bars_are_found_to_within_a_probe_pixel(settings: Settings, size, bars):
    picture = photo(3, size)
    bordered = framed(picture, **bars)
    left, top = bars.get("left", 0), bars.get("top", 0)
    placed = (left, top, left + picture.width, top + picture.height)

    box = content_box(bordered, settings)

    assert box is not None
    slack = math.ceil(max(bordered.size) / PROBE_SIDE)
    assert all(abs(found - expected) <= slack for found, expected in zip(box, placed, strict=True)), box


@pytest.mark.parametrize(
    "picture",
    [
        photo(4, (480, 360)),  # no border at all
        framed(photo(5, (480, 360)), top=3, bottom=3),  # a hairline: JPEG ringing, not a bar
        framed(photo(6, (480, 120)), top=400, bottom=400),  # more border than picture
        Image.new("RGB", (300, 200), (90, 90, 90)),  # flat: nothing would be left to hash
    ],
    ids=["none", "hairline", "mostly-border", "flat"],
)
def test_no_box_where_trimming_would_not_help(settings: Settings, picture):
    assert content_box(picture, settings) is None


def test_border_depth_counts_leading_lines_of_the_first_lines_colour_within_the_tolerance():
    rng = np.random.default_rng(0)
    lines = rng.integers(0, 256, size=(20, 100)).astype(np.int16)
    lines[:5] = 40 + rng.integers(-10, 11, size=(5, 100))  # a bar with some noise in it
    lines[3, :5] = 250  # a few specks: the line is still nearly all bar

    assert border_depth(lines, row_share=0.9, tolerance=12) == 5
    assert border_depth(lines, row_share=0.9, tolerance=5) < 5  # the noise exceeds a tighter tolerance
    assert border_depth(lines, row_share=0.99, tolerance=12) == 3  # the specks count against a stricter share
    assert border_depth(np.full((7, 10), 9, dtype=np.int16), row_share=0.9, tolerance=0) == 7
