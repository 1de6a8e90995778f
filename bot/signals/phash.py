"""pHash (imagehash.phash): 8x8 signs of the DCT of a 32x32 grey thumbnail, row-major; 64 bits.

The kind the index's search tables are keyed on (:mod:`bot.index.mih`): one word a row, and its
radius is widened or narrowed per query variant by what the variant guesses at
(:func:`bot.matching.phash_limits`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import imagehash
import numpy as np

from bot.signals.base import SignalKind, pack_bits

if TYPE_CHECKING:
    from PIL import Image


class PHash(SignalKind):
    name: ClassVar[str] = "phash"
    bits: ClassVar[int] = 64
    grey: ClassVar[bool] = True  # imagehash converts to grey first: the same hash from a grey copy

    @classmethod
    def compute(cls, image: Image.Image) -> np.ndarray:
        return pack_bits(imagehash.phash(image).hash)

    @classmethod
    def parse(cls, value: object) -> int:
        """Any hex number that fits in 64 bits (tools that write pHash often drop leading zeros),
        an integer (an int64 column holds the same 64 bits, negative past 2**63), or 8 bytes."""
        if isinstance(value, bytes):
            return super().parse(value)
        if isinstance(value, str):
            number = int(value, 16)
        elif isinstance(value, int):
            number = value & 0xFFFF_FFFF_FFFF_FFFF if value < 0 else value
        else:
            raise TypeError(f"phash must be a hex string, an integer or bytes, not {type(value).__name__}")
        if not 0 <= number < 1 << 64 or (isinstance(value, str) and value.startswith("-")):
            raise ValueError(f"phash {value!r} does not fit in 64 bits")
        return number
