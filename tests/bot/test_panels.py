"""The panel finder on made-up pictures whose layout is known: composites side by side, stacked,
in a grid, edge to edge (no gap), a photo in a screenshot, and plain photographs (no panels)."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from bot.panels import MAX_PANELS, find_panels
from tests.made_up import photo

ROW_SHARE, TOLERANCE = 0.90, 24  # bot/default.toml [hashing] border_*


def paste_all(canvas: Image.Image, pieces: list[tuple[Image.Image, tuple[int, int]]]) -> list[tuple]:
    boxes = []
    for piece, (x, y) in pieces:
        canvas.paste(piece, (x, y))
        boxes.append((x, y, x + piece.width, y + piece.height))
    return boxes


def overlap(a: tuple, b: tuple) -> float:
    """Intersection over union of two boxes."""
    width = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def assert_found(panels: tuple, expected: list[tuple]) -> None:
    for box in expected:
        best = max((overlap(box, panel) for panel in panels), default=0.0)
        assert best >= 0.9, f"{box} not found among {panels}"


@pytest.mark.parametrize("gap", [0, 6, 20])
def test_two_photographs_side_by_side_are_two_panels(gap):
    first, second = photo(1), photo(2, (360, 300))
    canvas = Image.new("RGB", (gap + 400 + gap + 360 + gap, 300 + 2 * gap), "white")
    boxes = paste_all(canvas, [(first, (gap, gap)), (second, (2 * gap + 400, gap))])
    layout = find_panels(canvas, ROW_SHARE, TOLERANCE)
    assert layout.is_composite
    assert_found(layout.panels, boxes)


def test_stacked_photographs_of_different_widths_with_labels():
    canvas = Image.new("RGB", (440, 2 * 300 + 3 * 40), (250, 250, 250))
    draw = ImageDraw.Draw(canvas)
    draw.text((20, 10), "BEFORE", fill="black")
    draw.text((20, 350), "AFTER", fill="black")
    boxes = paste_all(canvas, [(photo(3), (20, 30)), (photo(4, (300, 300)), (70, 370))])
    layout = find_panels(canvas, ROW_SHARE, TOLERANCE)
    assert_found(layout.panels, boxes)


def test_a_grid_of_four_on_black_gives_each_photograph():
    canvas = Image.new("RGB", (2 * 400 + 3 * 8, 2 * 300 + 3 * 8), "black")
    pieces = [(photo(10 + i), (8 + (i % 2) * 408, 8 + (i // 2) * 308)) for i in range(4)]
    boxes = paste_all(canvas, pieces)
    layout = find_panels(canvas, ROW_SHARE, TOLERANCE)
    assert len(layout.panels) <= MAX_PANELS
    assert_found(layout.panels, boxes)


def test_the_photograph_in_a_screenshot_of_a_post():
    canvas = Image.new("RGB", (520, 520), "white")
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, 520, 40), fill=(29, 161, 242))
    draw.text((12, 12), "@someone · 3h", fill="white")
    boxes = paste_all(canvas, [(photo(5), (60, 60))])
    for line in range(3):
        draw.text((12, 372 + 14 * line), "a caption line that goes on and on", fill=(20, 20, 20))
    layout = find_panels(canvas, ROW_SHARE, TOLERANCE)
    assert_found(layout.panels, boxes)


@pytest.mark.parametrize("seed", range(6))
def test_a_single_photograph_has_no_panels(seed):
    assert not find_panels(photo(100 + seed, (500, 380)), ROW_SHARE, TOLERANCE).is_composite


def test_a_photograph_on_a_page_is_its_panel():
    canvas = Image.new("RGB", (480, 380), (240, 240, 240))
    ImageDraw.Draw(canvas).text((8, 4), "gallery · page 3 of 9", fill=(60, 60, 60))
    boxes = paste_all(canvas, [(photo(7), (40, 40))])
    layout = find_panels(canvas, ROW_SHARE, TOLERANCE)
    assert_found(layout.panels, boxes)


def test_a_thin_border_is_not_a_panel():
    canvas = Image.new("RGB", (412, 312), "black")
    canvas.paste(photo(8), (6, 6))
    assert not find_panels(canvas, ROW_SHARE, TOLERANCE).is_composite


def test_a_flat_picture_has_no_panels():
    assert not find_panels(Image.new("RGB", (300, 200), "white"), ROW_SHARE, TOLERANCE).is_composite
