"""PDQ (Meta's hash for near-duplicate photos, via pdqhash): 256 bits and a quality score.

Computed by :func:`bot.signals.pdq_fast.compute`: pdqhash's values bit for bit, faster.

PDQ rates its hashes: a flat picture's (quality under 50, its authors' cut-off) is noise, and an
entry under ``[matching] pdq_min_quality`` is never matched on its hashes alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from bot.signals import pdq_fast
from bot.signals.base import SignalKind, pack_bits

if TYPE_CHECKING:
    from PIL import Image


class PDQ(SignalKind):
    """256 bits in the order pdqhash returns them."""

    name: ClassVar[str] = "pdq"
    bits: ClassVar[int] = 256

    @classmethod
    def compute(cls, image: Image.Image) -> np.ndarray:
        return cls.compute_rated(image)[0]

    @classmethod
    def compute_rated(cls, image: Image.Image) -> tuple[np.ndarray, int]:
        bits, quality = pdq_fast.compute(np.ascontiguousarray(np.asarray(image)))
        return pack_bits(bits), int(quality)

    compute_with_quality = compute_rated  # PDQ's own word for it (bench/ calls it so)
