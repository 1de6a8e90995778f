"""Perceptual hashes of a picture: what a dataset entry stores and what a query looks up.

Two hash kinds, each a view of the picture that survives re-encoding, resizing and colour changes:
pHash (64-bit DCT sign hash, via imagehash) and PDQ (256 bits, Meta's hash for near-duplicate
photos, via pdqhash). A match needs both to agree, which makes a chance match between unrelated
pictures far rarer than either alone.

The asymmetry is deliberate: a dataset entry stores ONE set of hashes (of its central region), so
the index costs the same per entry however many tricks the matcher learns; a query is hashed in
many variants (mirrored, borders trimmed, several inner margins to line up with crops), which
costs a few milliseconds once per query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import imagehash
import numpy as np
import pdqhash
from PIL import Image, ImageOps

from bot.borders import find_content_box
from bot.config import HashingSettings


class HashKind(Protocol):
    """One kind of perceptual hash, stored as ``words`` big-endian 64-bit words per picture."""

    name: ClassVar[str]
    bits: ClassVar[int]

    @staticmethod
    def compute(image: Image.Image) -> np.ndarray: ...


def _pack(bits: np.ndarray) -> np.ndarray:
    """Pack a bit vector (first bit = most significant) into big-endian uint64 words."""
    return np.packbits(bits.astype(np.uint8).ravel()).view(">u8").astype(np.uint64)


class PHash:
    """imagehash.phash: 8x8 signs of the DCT of a 32x32 grey thumbnail, row-major."""

    name: ClassVar[str] = "phash"
    bits: ClassVar[int] = 64

    @staticmethod
    def compute(image: Image.Image) -> np.ndarray:
        return _pack(imagehash.phash(image).hash)


class PDQ:
    """PDQ (pdqhash.compute): 256 bits in the order pdqhash returns them, and a quality score."""

    name: ClassVar[str] = "pdq"
    bits: ClassVar[int] = 256

    @staticmethod
    def compute(image: Image.Image) -> np.ndarray:
        return PDQ.compute_with_quality(image)[0]

    @staticmethod
    def compute_with_quality(image: Image.Image) -> tuple[np.ndarray, int]:
        """PDQ's quality (0-100) is low for flat pictures, whose hashes are noise."""
        bits, quality = pdqhash.compute(np.ascontiguousarray(np.asarray(image)))
        return _pack(bits), int(quality)


HASH_KINDS: tuple[type[HashKind], ...] = (PHash, PDQ)


def _inner_region(image: Image.Image, margins: tuple[float, float, float, float]) -> Image.Image:
    """The region ``margins`` (left, top, right, bottom; fractions of the size) in from the edges."""
    if not any(margins):
        return image
    left, top, right, bottom = margins
    width, height = image.size
    return image.crop(
        (
            round(width * left),
            round(height * top),
            width - round(width * right),
            height - round(height * bottom),
        )
    )


@dataclass(frozen=True)
class EntryHashes:
    """What the index stores for one dataset picture."""

    phash: int
    pdq: np.ndarray  # (4,) uint64
    quality: int


@dataclass(frozen=True)
class QueryHashes:
    """All variants of one query picture; row i of each array belongs to ``variants[i]``."""

    phash: np.ndarray  # (V,) uint64
    pdq: np.ndarray  # (V, 4) uint64
    variants: tuple[str, ...]
    quality: int


def hash_entry(image: Image.Image, settings: HashingSettings) -> EntryHashes:
    """Hash a dataset picture: its central region only (see ``entry_margin`` in the config)."""
    margin = settings.entry_margin
    region = _inner_region(image, (margin, margin, margin, margin))
    pdq, quality = PDQ.compute_with_quality(region)
    return EntryHashes(phash=int(PHash.compute(region)[0]), pdq=pdq, quality=quality)


def query_bases(image: Image.Image, settings: HashingSettings) -> dict[str, Image.Image]:
    """The pictures a query might have been made from: as sent, without borders, and mirrored."""
    bases = {"as-sent": image}
    box = find_content_box(image, settings.border_row_share, settings.border_tolerance)
    if box is not None:
        bases["trimmed"] = image.crop(box)
    for name, base in list(bases.items()):
        bases[f"{name}+mirrored"] = ImageOps.mirror(base)
    return bases


def query_regions(base_name: str, settings: HashingSettings) -> tuple[tuple[float, float, float, float], ...]:
    """Inner regions hashed for a base: fewer for a trimmed one (a border is rarely also a crop).

    Every variant is one more lookup in the index, so the list is as short as recall allows.
    """
    return settings.trimmed_query_regions if base_name.startswith("trimmed") else settings.query_regions


def hash_query(image: Image.Image, settings: HashingSettings) -> QueryHashes:
    """Hash every variant of a query picture; quality is that of the picture as sent."""
    names: list[str] = []
    phashes: list[int] = []
    pdqs: list[np.ndarray] = []
    quality = 0
    for base_name, base in query_bases(image, settings).items():
        for margins in query_regions(base_name, settings):
            region = _inner_region(base, margins)
            pdq, region_quality = PDQ.compute_with_quality(region)
            if base_name == "as-sent":
                quality = max(quality, region_quality)
            names.append(f"{base_name}@{','.join(f'{m:g}' for m in margins)}")
            phashes.append(int(PHash.compute(region)[0]))
            pdqs.append(pdq)
    return QueryHashes(
        phash=np.array(phashes, dtype=np.uint64),
        pdq=np.stack(pdqs).astype(np.uint64),
        variants=tuple(names),
        quality=quality,
    )
