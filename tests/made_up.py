"""Made-up pictures for tests whose answer must be known: no file, no download, any size."""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter


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
