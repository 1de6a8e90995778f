"""Composites end to end, through a real index built from made-up pictures: a photograph finds the
before-and-after picture that holds it, and a person's own before-and-after picture finds each of
its photographs. Pictures whose answer is known, no dev set needed."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from bot.checking import check_picture
from bot.config import Settings
from bot.index.build import build_index
from bot.index.search import HashIndex
from tests.made_up import photo


def side_by_side(first: Image.Image, second: Image.Image, gap: int, labels: bool = True) -> Image.Image:
    height = 360
    first = first.resize((first.width * height // first.height, height))
    second = second.resize((second.width * height // second.height, height))
    top = 32 if labels else 0
    canvas = Image.new("RGB", (first.width + second.width + 3 * gap, height + top + gap), "white")
    canvas.paste(first, (gap, top))
    canvas.paste(second, (2 * gap + first.width, top))
    if labels:
        draw = ImageDraw.Draw(canvas)
        draw.text((gap + 4, 8), "before", fill="black")
        draw.text((2 * gap + first.width + 4, 8), "after", fill="black")
    return canvas


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=88)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> HashIndex:
    """Photographs 0-3 alone, composites of 4+5 (a gap) and 6+7 (edge to edge), photograph 8."""
    from bot.config import load_settings

    root = tmp_path_factory.mktemp("composites")
    (root / "dataset").mkdir()
    for number in range(4):
        (root / "dataset" / f"photo{number}.jpg").write_bytes(jpeg(photo(200 + number, (480, 360))))
    pair = side_by_side(photo(204, (480, 360)), photo(205, (400, 360)), gap=16)
    (root / "dataset" / "pair-gap.jpg").write_bytes(jpeg(pair))
    seam = side_by_side(photo(206, (480, 360)), photo(207, (480, 360)), gap=0, labels=False)
    (root / "dataset" / "pair-seam.jpg").write_bytes(jpeg(seam))
    (root / "dataset" / "photo8.jpg").write_bytes(jpeg(photo(208, (480, 360))))
    build_index([root / "dataset"], root / "index", load_settings(with_deployment_files=False), workers=1)
    return HashIndex(root / "index")


def found_keys(data: bytes, index: HashIndex, settings: Settings) -> list[str]:
    return [Path(item.entry.key).stem for item in check_picture(data, index, settings).found]


@pytest.mark.parametrize(("seed", "composite"), [(204, "pair-gap"), (205, "pair-gap"), (206, "pair-seam")])
def test_a_photograph_finds_the_composite_that_holds_it(index, settings, seed, composite):
    result = check_picture(jpeg(photo(seed, (480 if seed != 205 else 400, 360))), index, settings)
    assert [Path(item.entry.key).stem for item in result.found] == [composite]
    left, _, right, _ = result.found[0].part
    assert (left < 0.5) == (seed in (204, 206))  # the part says which photograph it is
    assert right - left < 0.6


def test_a_composite_is_indexed_with_its_photographs_and_plain_photos_without(index):
    assert len(index) == 7
    assert index.rows == 7 + 7 + 2 + 2  # each picture, its core, and the composites' photographs


def test_a_persons_own_before_after_picture_finds_both_photographs(index, settings):
    mine = side_by_side(photo(201, (480, 360)), photo(203, (480, 360)), gap=10)
    assert sorted(found_keys(jpeg(mine), index, settings)) == ["photo1", "photo3"]


def test_an_unrelated_photograph_finds_nothing(index, settings):
    assert found_keys(jpeg(photo(999, (480, 360))), index, settings) == []
