"""The hashes of a dataset picture's WHOLE frame, computed exactly as partner hash lists compute theirs.

Partner lists (python-threatexchange, StopNCII, NCMEC) carry the PDQ (and sometimes pHash) of the
whole picture as its file decodes, while an index row hashes the picture's central region
(``entry_margin``), its core and its panels, on the work picture (``decoding.work_side``). PDQ is
crop-sensitive: whole against central region differ by a median 126 of 256 bits on the dev sets'
originals. So every entry also keeps its whole-picture hashes, read only by a hash-list scan
(``whole_*.npy`` in a shard, :mod:`bot.index.storage`), never by a person's check.

"Exactly" matters: PDQ of the 512 px work picture differs from python-threatexchange's
(``pdq_hasher.pdq_from_bytes``) by 8-20 bits on the sample photos larger than 512 px, since PDQ
downsamples the full-size pixels itself. So the file is decoded again here at full size and
converted as that library converts it: no EXIF rotation, no flattening of transparency, a grey
picture's one channel repeated three times, LA and 16-bit grey through RGB, any other mode's array
as it comes (tests/bot/test_whole_picture.py compares against the library on real pictures).
pHash is imagehash's on the same full-size picture (what a list made with imagehash holds).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from bot.decoding import ALLOWED_FORMATS
from bot.signals import PDQ, PHash, pdq_fast
from bot.signals.base import pack_bits


@dataclass(frozen=True)
class WholeHashes:
    """One entry's whole-picture hashes: PDQ as (4,) uint64 words (the layout of ``pdq.npy``),
    pHash as an int (that of ``phash.npy``), and PDQ's quality 0-100."""

    pdq: np.ndarray
    phash: int
    quality: int


def library_array(image: Image.Image) -> np.ndarray:
    """The pixel array python-threatexchange hands pdqhash for ``image`` (its
    ``_convert_image_to_correct_array_dimension``, mirrored rather than imported: it is private)."""
    if image.mode in ("LA", "I;16"):
        image = image.convert("RGB")
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., np.newaxis], 3, axis=2)
    return np.ascontiguousarray(array)


def hash_whole_picture(data: bytes, fallback: Image.Image, decoded: Image.Image | None = None) -> WholeHashes:
    """The whole-picture hashes of a file that :func:`bot.decoding.decode_picture` has accepted
    (so its format and pixel count are already checked). ``fallback`` (the decoded work picture)
    is hashed instead where the file's own pixels cannot be (a mode pdqhash refuses): the library
    would fail on such a file too, so no list holds a hash of it to miss, and every entry of a
    shard keeps a value (a shard has whole-picture hashes for all its entries or none).
    ``decoded``: decode_picture's full-size decode of ``data`` (``DecodedPicture.full``), hashed
    instead of decoding the file again; it is closed here."""
    image = decoded if decoded is not None else Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    with image:
        try:
            image.load()
            bits, quality = pdq_fast.compute(library_array(image))
            phash = PHash.entry_value(PHash.compute(image))
            return WholeHashes(pdq=pack_bits(bits), phash=phash, quality=int(quality))
        except (ValueError, TypeError, OSError):
            pass
    words, rating = PDQ.compute_rated(fallback)
    return WholeHashes(pdq=words, phash=PHash.entry_value(PHash.compute(fallback)), quality=rating)


@dataclass(frozen=True)
class WholeColumns:
    """Many entries' whole-picture hashes as the columns a shard stores (``whole_pdq.npy`` (N, 4)
    uint64, ``whole_phash.npy`` (N,) uint64, ``whole_quality.npy`` (N,) uint8): compact enough to
    send back from a worker."""

    pdq: np.ndarray
    phash: np.ndarray
    quality: np.ndarray

    @classmethod
    def stack(cls, values: list[WholeHashes | None]) -> WholeColumns | None:
        """The columns of ``values``; None unless every one is there (never a mix: a shard keeps
        whole-picture hashes for all its entries or for none)."""
        if any(value is None for value in values):
            return None
        present = [value for value in values if value is not None]
        return cls(
            pdq=PDQ.column([value.pdq for value in present]),
            phash=PHash.column([value.phash for value in present]),
            quality=np.array([value.quality for value in present], dtype=np.uint8),
        )

    def row(self, number: int) -> WholeHashes:
        return WholeHashes(
            pdq=PDQ.entry_value(self.pdq[number]),
            phash=int(self.phash[number]),
            quality=int(self.quality[number]),
        )
