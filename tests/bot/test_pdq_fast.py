"""bot.signals.pdq_fast gives pdqhash.compute's bits and quality exactly, on real photos at full size
and on made arrays whose sizes exercise every phase of the blur (windows of 1 to 3 pixels, sides
just under and over 64 and 128, the 64 x 64 picture PDQ does not blur)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pdqhash
import pytest
from PIL import Image

from bot.signals import pdq_fast

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
REAL_PICTURES = sorted((SAMPLES / "dataset").glob("*.jpg")) + sorted((SAMPLES / "queries").glob("*.jpg"))


def assert_same_as_pdqhash(pixels: np.ndarray) -> None:
    expected_bits, expected_quality = pdqhash.compute(pixels)
    bits, quality = pdq_fast.compute(pixels)
    assert bits.tolist() == expected_bits.tolist()
    assert quality == expected_quality


def test_the_fast_path_is_taken_with_the_pinned_pdqhash():
    """Else every comparison below would compare pdqhash with itself."""
    assert pdq_fast.available()


@pytest.mark.parametrize("path", REAL_PICTURES, ids=lambda path: path.name)
def test_real_photos_at_full_size(path: Path):
    assert_same_as_pdqhash(np.asarray(Image.open(path).convert("RGB")))


@pytest.mark.parametrize(
    "shape",
    [(5, 5), (6, 9), (63, 65), (64, 64), (65, 64), (127, 129), (128, 300), (301, 7), (700, 1024)],
)
def test_made_arrays_of_awkward_sizes(shape: tuple[int, int]):
    rng = np.random.default_rng(sum(shape))
    noise = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    gradient = np.stack([rows * 255 // shape[0], cols * 255 // shape[1], (rows + cols) % 256], axis=2)

    assert_same_as_pdqhash(noise)
    assert_same_as_pdqhash(gradient.astype(np.uint8))


def test_a_fourth_channel_is_ignored_as_pdqhash_ignores_it():
    rgba = np.asarray(Image.open(SAMPLES / "dataset" / "rocket.jpg").convert("RGBA")).copy()
    rgba[..., 3] = np.arange(rgba.shape[1], dtype=np.uint8)

    assert_same_as_pdqhash(rgba)


def test_arrays_the_kernel_is_not_for_go_to_pdqhash_itself():
    """Too small to hash (a zero hash of quality 0), and a type pdqhash refuses: the same answer,
    the same error."""
    assert_same_as_pdqhash(np.full((4, 100, 3), 200, np.uint8))
    with pytest.raises(ValueError, match="dtype"):
        pdqhash.compute(np.zeros((32, 32, 3), np.int32))
    with pytest.raises(ValueError, match="dtype"):
        pdq_fast.compute(np.zeros((32, 32, 3), np.int32))


def test_the_grey_of_every_colour_is_pdqhashs():
    """The luma pdqhash computes in numpy (float64, then float32), for all 2**24 RGB colours."""
    from bot.signals.pdq_kernel import _luma

    green, blue = np.mgrid[0:256, 0:256].astype(np.uint8)
    for red in range(256):
        image = np.stack([np.full_like(green, red), green, blue], axis=2)
        grey = image[:, :, 0] * 0.299 + image[:, :, 1] * 0.587 + image[:, :, 2] * 0.114
        expected = grey.astype("float32")
        assert _luma(image).tobytes() == expected.tobytes()
