"""The interface every kind of perceptual hash (a *signal*) sits behind.

After python-threatexchange's ``SignalType``: a kind names itself, computes its hash from a
picture, writes and reads it as text, and measures how far apart two of its hashes are. The
index, the match rule, tickets and exports reach a kind only through this interface and the
registry (:mod:`bot.signals`), so a new kind is one module and one line there.

Every kind here is a string of ``bits`` bits (a multiple of 64) compared by Hamming distance,
kept as big-endian uint64 words, the first bit the most significant. A row of the index holds a
64-bit kind as one word (its column is (R,)) and a wider kind as ``bits // 64`` words (R, words):
that is the on-disk format (:mod:`bot.index.storage`), whatever the kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

    from bot.config import MatchingSettings


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Pack a bit vector (first bit = most significant) into big-endian uint64 words."""
    return np.packbits(bits.astype(np.uint8).ravel()).view(">u8").astype(np.uint64)


class SignalKind:
    """One kind of perceptual hash. Subclasses name themselves and compute; the text form, the
    distances and the index column follow from ``bits``.

    Kinds are used as classes (``PDQ.compute(image)``), never instantiated: a kind has no state.
    """

    # The kind's name everywhere it is stored: the index file (NAME.npy), the column of a hash
    # Parquet file, a ticket's and the removal list's, the key in a ticket's JSON. Lower case.
    name: ClassVar[str]
    bits: ClassVar[int]
    # Hashes only the grey of a picture: a query's regions are cut from one grey copy per base
    # instead of each converted on its own (a fifth of pHash's time with ~100 regions a query).
    grey: ClassVar[bool] = False

    @classmethod
    def compute(cls, image: Image.Image) -> np.ndarray:
        """(words,) uint64: the hash of ``image``."""
        raise NotImplementedError

    @classmethod
    def compute_rated(cls, image: Image.Image) -> tuple[np.ndarray, int]:
        """The hash and how much it says (0-100: a flat picture's hash is noise). A kind that
        does not rate its hashes rates them all 100; a region's quality is the lowest rating."""
        return cls.compute(image), 100

    # A kind's radii are settings named after it, in bot/default.toml with the reasons for them.
    @classmethod
    def max_distance(cls, rule: MatchingSettings) -> int:
        """``[matching] NAME_max_distance``: the radius within which a query variant's hash counts
        as the entry's (the match rule)."""
        return int(getattr(rule, f"{cls.name}_max_distance"))

    @classmethod
    def near_distance(cls, rule: MatchingSettings) -> int:
        """``[matching] verify_near_NAME``: the radius within which a variant may line a candidate
        up (bot.matching.verification_order)."""
        return int(getattr(rule, f"verify_near_{cls.name}"))

    @classmethod
    def words(cls) -> int:
        return cls.bits // 64

    @classmethod
    def value_shape(cls) -> tuple[int, ...]:
        """The shape of one row's value in the kind's column: () for one word, (words,) else."""
        return () if cls.bits == 64 else (cls.words(),)

    @classmethod
    def column(cls, values: Sequence[Any] | np.ndarray) -> np.ndarray:
        """(R, *value_shape) uint64: rows' values (or hashes) stacked as the index stores them."""
        return np.asarray(values, dtype=np.uint64).reshape(len(values), *cls.value_shape())

    @classmethod
    def entry_value(cls, words: Any) -> Any:
        """One row's hash as an entry keeps it: an int for a 64-bit kind, (words,) uint64 else."""
        if cls.bits == 64:
            return int(words) if isinstance(words, int | np.integer) else int(np.ravel(words)[0])
        return np.asarray(words, dtype=np.uint64).reshape(cls.words())

    @classmethod
    def entry_values(cls, column: np.ndarray) -> list[int] | np.ndarray:
        """Every row of a column as :meth:`entry_value` gives it (a batch's rows, at once)."""
        return column.tolist() if cls.bits == 64 else np.asarray(column, dtype=np.uint64)

    @classmethod
    def distances(cls, first: Any, second: Any) -> np.ndarray:
        """int64 bits that differ between hashes (values or columns, broadcast against each other)."""
        differ = np.bitwise_count(np.asarray(first, dtype=np.uint64) ^ np.asarray(second, dtype=np.uint64))
        return differ.astype(np.int64) if cls.bits == 64 else differ.sum(axis=-1, dtype=np.int64)

    @classmethod
    def to_hex(cls, value: Any) -> str:
        """``bits // 4`` hex digits, first bit first: how tickets and exports write a hash. ``value``
        is an int, a uint64 array, or a list of ints (never put through numpy: a list of ints over
        and under 2**63 would become floats)."""
        words = (value,) if isinstance(value, int | np.integer) else value
        return "".join(f"{int(word):016x}" for word in words)

    @classmethod
    def parse(cls, value: object) -> Any:
        """A hash written elsewhere (a hash Parquet file, a blocklist) as an entry keeps it:
        ``bits // 4`` hex digits or ``bits // 8`` bytes. ValueError or TypeError if it is neither."""
        raw = bytes.fromhex(value) if isinstance(value, str) else value
        if not isinstance(raw, bytes) or len(raw) != cls.bits // 8:
            raise TypeError(f"{cls.name} must be {cls.bits // 4} hex digits or {cls.bits // 8} bytes")
        return cls.entry_value(np.frombuffer(raw, dtype=">u8"))
