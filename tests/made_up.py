"""Made-up pictures for tests whose answer must be known: no file, no download, any size."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

if TYPE_CHECKING:
    from bot.index.search import HashIndex


def photo(seed: int, size: tuple[int, int] = (400, 300)) -> Image.Image:
    """A made-up photograph: smooth random shapes in colour, with fine grain (no uniform lines)."""
    rng = np.random.default_rng(seed)
    width, height = size
    layers = [gaussian_filter(rng.normal(size=(height, width)), sigma) for sigma in (30, 8, 2)]
    channels = []
    for channel in range(3):
        weights = (1.0, 0.5, 0.25)
        mix = sum(layer / layer.std() * weight for layer, weight in zip(layers, weights, strict=True))
        mix = mix + rng.normal(size=(height, width)) * 0.1 + channel * 0.3
        channels.append(np.clip(128 + 40 * mix, 0, 255))
    return Image.fromarray(np.stack(channels, axis=-1).astype(np.uint8))


def jpeg(image: Image.Image, quality: int = 88) -> bytes:
    """A picture as a person would send it: JPEG bytes."""
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def index_of_photos(root: Path, seeds: range, size: tuple[int, int]) -> HashIndex:
    """An index built as ``index build`` does from made-up photographs ``photo<i>.jpg`` (photo(seed))."""
    from bot.config import load_settings
    from bot.index.build import build_index
    from bot.index.search import HashIndex

    (root / "dataset").mkdir()
    for number, seed in enumerate(seeds):
        (root / "dataset" / f"photo{number}.jpg").write_bytes(jpeg(photo(seed, size)))
    build_index([root / "dataset"], root / "index", load_settings(with_deployment_files=False), workers=1)
    return HashIndex(root / "index")
