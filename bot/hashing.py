"""Perceptual hashes of a picture: what a dataset entry stores and what a query looks up.

Every kind of hash in the registry (:mod:`bot.signals`: pHash and PDQ), each a view of the
picture that survives re-encoding, resizing and colour changes. A match needs all of them to
agree, which makes a chance match between unrelated pictures far rarer than any one alone.

The asymmetry is deliberate: a dataset entry stores ONE set of hashes (of its central region), so
the index costs the same per entry however many tricks the matcher learns; a query is hashed in
many variants (mirrored, borders trimmed, several inner margins to line up with crops), which
costs a few milliseconds once per query.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum
from functools import cache
from itertools import product
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from bot.borders import find_content_box
from bot.config import HashingSettings
from bot.panels import Box, find_panels
from bot.signals import PDQ, PHash, SignalValues, signal_keywords, signal_kinds
from bot.verification import QueryViews, chroma, thumbnail
from bot.whole_picture import WholeHashes

__all__ = ["PDQ", "PHash"]  # the kinds, also from here (bench/ imports them so)


# Margins of a region (left, top, right, bottom): fractions of the picture's size cut from each side.
Margins = tuple[float, float, float, float]


def _inner_box(
    size: tuple[int, int], margins: tuple[float, float, float, float]
) -> tuple[int, int, int, int]:
    """The box ``margins`` (left, top, right, bottom; fractions of the size) in from the edges."""
    left, top, right, bottom = margins
    width, height = size
    return (
        round(width * left),
        round(height * top),
        width - round(width * right),
        height - round(height * bottom),
    )


def inner_region(image: Image.Image, margins: tuple[float, float, float, float]) -> Image.Image:
    """The region ``margins`` in from the edges (see :func:`_inner_box`)."""
    if not any(margins):
        return image
    return image.crop(_inner_box(image.size, margins))


@signal_keywords
@dataclass(frozen=True)
class EntryHashes(SignalValues):
    """What the index stores for one dataset picture: a hash of every kind (``hashes.pdq``)."""

    # by kind name (bot.signals): an int for a 64-bit kind, (words,) uint64 for a wider one
    signals: dict[str, Any]
    quality: int  # the lowest rating of its hashes (PDQ's quality), 0-100
    # (16, 16) uint8 grey thumbnail of the hashed region, for verifying candidates
    # (bot.verification); None where the entry came as hashes only (a hash Parquet, a removal list).
    thumbnail: np.ndarray | None = None
    # (2, 8, 8) int8 opponent colours of the same region (bot.verification.chroma); None as above.
    chroma: np.ndarray | None = None
    # The photographs inside the picture when it is a composite (a before-and-after picture, a
    # grid, a photo on a page): each is hashed as an entry of its own (bot.panels).
    parts: tuple[EntryPart, ...] = ()
    # The entry's whole-picture hashes as partner hash lists compute them (bot.whole_picture), set
    # by the build from the file's bytes; read only by a hash-list scan. None: not kept.
    whole: WholeHashes | None = None
    # MD5 of the entry's file bytes (16 bytes), as img2dataset writes it with compute_hash="md5"
    # and partner lists carry it: set by the build from the bytes it reads, or from a hash Parquet
    # file's md5 column; read only by a hash-list scan. None: not known.
    md5: bytes | None = None


class RowKind(IntEnum):
    """What an index row hashes, and so which query variants look for it, within which radius
    (:func:`bot.matching.phash_limits`): the central region of a picture or of a photograph
    inside it, or a picture's core."""

    PICTURE = 0
    CORE = 1


@dataclass(frozen=True)
class EntryPart:
    """A row of its own for part of a dataset picture: a photograph inside it, or its core."""

    box: tuple[float, float, float, float]  # left, top, right, bottom: fractions of the picture
    hashes: EntryHashes
    kind: RowKind = RowKind.PICTURE


@signal_keywords
@dataclass(frozen=True)
class QueryHashes(SignalValues):
    """All variants of one query picture; row i of each array belongs to ``variants[i]``."""

    signals: dict[str, np.ndarray]  # by kind name: (V, *kind.value_shape()) uint64 (``query.pdq``)
    variants: tuple[str, ...]
    quality: int
    # (V,) uint8 Guess: what each variant guesses at (bot.matching.phash_limits); None: nothing.
    guesses: np.ndarray | None = None


class Guess(IntEnum):
    """What a query variant guesses at; a guess is held to a radius of its own (see
    ``[matching] turn_phash_max_distance`` and ``core_phash_max_distance``)."""

    NONE = 0  # undoes an edit that is seen (borders, panels), or a region every copy is tried at
    TURN = 1  # the picture turned back by a guessed angle
    CORE = 2  # the region where the entry's core lies after a guessed crop
    GRID = 3  # the same after a guessed crop on every side by different amounts (core_crop_grid)


# The guesses aimed at an entry's core: they look only for core rows, are hashed on the picture
# scaled down, and a ticket does not keep them.
CORE_GUESSES = frozenset({Guess.CORE, Guess.GRID})


def hash_entry(image: Image.Image, settings: HashingSettings) -> EntryHashes:
    """Hash a dataset picture: its central region (see ``entry_margin`` in the config), its core
    (``core_margin``: what a copy cut by up to that much on any side still holds), and the
    central region of each photograph inside it when it is a composite (:mod:`bot.panels`)."""
    layout = find_panels(image, settings.border_row_share, settings.border_tolerance)
    parts = tuple(
        EntryPart(box=_fractions(box, image.size), hashes=_hash_region(image.crop(box), settings))
        for box in layout.panels
    )
    core = _core_part(image, settings)
    if core is not None:
        parts = (core, *parts)
    return replace(_hash_region(image, settings), parts=parts)


# PDQ's authors' cut-off for a hash worth comparing, and the default of [matching] pdq_min_quality.
_USABLE_QUALITY = 50


def _hash_region(image: Image.Image, settings: HashingSettings) -> EntryHashes:
    """The hashes of ``image``'s central region; of the whole frame when the central region is too
    plain for PDQ (quality under 50) and the whole frame is not.

    An entry under the quality gate is never matched, while a query is judged by its best region,
    the whole frame among them: a picture whose detail lies near its edges (a plain middle, a
    vignette) would pass as a query and never find its own exact copy. The whole frame is what
    the query's first variant hashes, so the copy lines up."""
    margin = settings.entry_margin
    region = inner_region(image, (margin, margin, margin, margin))
    signals, quality = _region_signals(region)
    if quality < _USABLE_QUALITY and margin:
        whole_signals, whole_quality = _region_signals(image)
        if whole_quality > quality:
            region, signals, quality = image, whole_signals, whole_quality
    return _region_hashes(region, signals, quality)


def _region_signals(region: Image.Image) -> tuple[dict[str, Any], int]:
    """Every kind's hash of ``region`` as an entry keeps it, and its quality: the lowest rating
    of its hashes (PDQ's quality; a kind that does not rate its hashes rates them 100)."""
    signals, quality = {}, 100
    for kind in signal_kinds():
        words, rating = kind.compute_rated(region)
        signals[kind.name] = kind.entry_value(words)
        quality = min(quality, rating)
    return signals, quality


def _region_hashes(region: Image.Image, signals: dict[str, Any], quality: int) -> EntryHashes:
    """A row's hashes of ``region``, its signals already computed (the caller judged its quality)."""
    return EntryHashes(signals=signals, quality=quality, thumbnail=thumbnail(region), chroma=chroma(region))


def _core_part(image: Image.Image, settings: HashingSettings) -> EntryPart | None:
    """The picture's core as a part of it: the box whose central region (``entry_margin`` in) is
    the core (``core_margin`` in from the picture's sides), so that it is stored, searched and
    reported as any part is. None when there is no core (``core_margin`` 0) or it is too plain
    for PDQ: such a row could never match, and the central region's row stands for it."""
    core, margin = settings.core_margin, settings.entry_margin
    if not core:
        return None
    side = (core - margin) / (1 - 2 * margin)
    box = (side, side, 1 - side, 1 - side)
    region = inner_region(image.crop(_inner_box(image.size, (side, side, side, side))), (margin,) * 4)
    signals, quality = _region_signals(region)
    if quality < _USABLE_QUALITY:
        return None
    return EntryPart(box=box, hashes=_region_hashes(region, signals, quality), kind=RowKind.CORE)


@cache
def core_query_regions(settings: HashingSettings) -> tuple[Margins, ...]:
    """Query regions (margins left, top, right, bottom) where an entry's core lies in a copy cut
    on one side, on two adjacent sides, or evenly on all four (see ``core_margin``)."""
    core = settings.core_margin
    if not core:
        return ()
    regions: list[tuple[float, float, float, float]] = []

    def axis(cut: float) -> tuple[float, float]:  # (cut side, far side) margins of the core
        return _core_sides(core, cut, 0.0)

    for cut in settings.core_side_cuts:
        near, far = axis(cut)
        regions += [
            (near, core, far, core),
            (far, core, near, core),
            (core, near, core, far),
            (core, far, core, near),
        ]
    for cut in settings.core_even_cuts:
        even = _core_sides(core, cut, cut)[0]
        regions.append((even, even, even, even))
    for cut_x in settings.core_corner_cuts:
        for cut_y in settings.core_corner_cuts:
            (near_x, far_x), (near_y, far_y) = axis(cut_x), axis(cut_y)
            regions += [
                (near_x, near_y, far_x, far_y),
                (far_x, near_y, near_x, far_y),
                (near_x, far_y, far_x, near_y),
                (far_x, far_y, near_x, near_y),
            ]

    regions += _grid_regions(settings)
    rounded = (tuple(round(value, 4) for value in region) for region in regions)
    return tuple(dict.fromkeys(rounded))  # type: ignore[arg-type]


def _grid_regions(settings: HashingSettings) -> list[Margins]:
    """Where the core lies after every combination of ``core_crop_grid``'s cuts on the four sides."""
    core, grid = settings.core_margin, settings.core_crop_grid
    regions = []
    for left, right in product(grid, grid):
        for top, bottom in product(grid, grid):
            margin_left, margin_right = _core_sides(core, left, right)
            margin_top, margin_bottom = _core_sides(core, top, bottom)
            regions.append((margin_left, margin_top, margin_right, margin_bottom))
    return regions


def _core_sides(core: float, first: float, second: float) -> tuple[float, float]:
    """The core's margins on an axis of a copy cut by ``first`` and ``second`` on its two ends."""
    return (core - first) / (1 - first - second), (core - second) / (1 - first - second)


@cache
def core_guesses(settings: HashingSettings) -> tuple[tuple[Margins, Guess], ...]:
    """:func:`core_query_regions`, each marked with what it guesses at: a region that only the crop
    grid puts there is a :attr:`Guess.GRID` (held to ``grid_phash_max_distance``), the rest (cuts
    on one side, at a corner, even all round: the cuts a copy most often has) :attr:`Guess.CORE`."""
    plain = set(core_query_regions(replace(settings, core_crop_grid=())))
    return tuple(
        (margins, Guess.CORE if margins in plain else Guess.GRID) for margins in core_query_regions(settings)
    )


def _fractions(box: Box, size: tuple[int, int]) -> tuple[float, float, float, float]:
    width, height = size
    return (box[0] / width, box[1] / height, box[2] / width, box[3] / height)


def query_bases(image: Image.Image, settings: HashingSettings) -> dict[str, Image.Image]:
    """The pictures a query might have been made from: as sent, without borders, each photograph
    inside it (a person's own before/after picture, a screenshot of a post), and all mirrored."""
    bases = {"as-sent": image}
    box = find_content_box(image, settings.border_row_share, settings.border_tolerance)
    if box is not None:
        bases["trimmed"] = image.crop(box)
    layout = find_panels(image, settings.border_row_share, settings.border_tolerance)
    for number, panel in enumerate(layout.panels, start=1):
        bases[f"panel{number}"] = image.crop(panel)
    for name, base in list(bases.items()):
        bases[f"{name}+mirrored"] = ImageOps.mirror(base)
    fill = _mean_colour(image)
    for angle in settings.turn_angles:
        bases[f"turned{angle:+g}"] = image.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=fill)
    return bases


def _mean_colour(image: Image.Image) -> tuple[int, ...]:
    """The picture's mean colour: what a turned base's empty corners are filled with, so that
    they add as little as they can to the low frequencies both hashes keep."""
    small = np.asarray(image.convert("RGB").reduce(8) if min(image.size) >= 64 else image.convert("RGB"))
    return tuple(int(v) for v in small.reshape(-1, 3).mean(axis=0).round())


def query_regions(base_name: str, settings: HashingSettings) -> tuple[Margins, ...]:
    """Inner regions hashed for a base (see :func:`guessed_regions`)."""
    return tuple(margins for margins, _ in guessed_regions(base_name, settings))


def guessed_regions(base_name: str, settings: HashingSettings) -> tuple[tuple[Margins, Guess], ...]:
    """Inner regions hashed for a base, each with what it guesses at: fewer for a trimmed base or
    a panel (a border is rarely also a crop); for the picture as sent, also the regions aimed at
    the core after a guessed crop. The cut regions aimed at the central region are no guess: they
    line it up only roughly (held to a guess's radius, they lost 8 of make_hardset's 36 copies
    cut at a corner).

    Every variant is one more lookup in the index, so the list is as short as recall allows.
    """
    if base_name.startswith(("trimmed", "panel")):
        return tuple((margins, Guess.NONE) for margins in settings.trimmed_query_regions)
    if base_name.startswith("turned"):
        return tuple((margins, Guess.TURN) for margins in settings.turned_query_regions)
    plain = tuple((margins, Guess.NONE) for margins in settings.query_regions)
    core = core_guesses(settings)
    if base_name == "as-sent+mirrored":  # a copy mirrored and cut (make_hardset: 3-10 % a side)
        return plain + core
    if base_name != "as-sent":
        return plain
    cut = tuple((margins, Guess.NONE) for margins in settings.cut_query_regions)
    return plain + cut + core


def _scaled_down(base: Image.Image, side: int) -> tuple[Image.Image, Image.Image]:
    """``base`` scaled to ``side`` pixels on its shorter side (never enlarged), and in grey: what
    the regions aimed at the core are hashed on. Both hashes keep a 32x32 or 64x64 view of a
    region, so a region of ~130 px keeps what they need at a fraction of the cost."""
    scale = side / min(base.size)
    if scale < 1:
        size = (max(1, round(base.width * scale)), max(1, round(base.height * scale)))
        base = base.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    return base, base.convert("L")


def hash_query(image: Image.Image, settings: HashingSettings) -> QueryHashes:
    """Hash every variant of a query picture; quality is that of the picture as sent."""
    return hash_query_with_views(image, settings)[0]


def hash_query_with_views(image: Image.Image, settings: HashingSettings) -> tuple[QueryHashes, QueryViews]:
    """The query's hashes, and the small grey views that verify its candidates (held for one
    check only: see :mod:`bot.verification`)."""
    kinds = signal_kinds()
    # Kinds that hash only the grey (pHash) read it from one grey copy per base rather than each
    # region converted on its own (the same hashes, a fifth of pHash's time with ~100 regions).
    greys = {kind.grey for kind in kinds}
    names: list[str] = []
    guesses: list[Guess] = []
    hashed_by_kind: dict[str, list[np.ndarray]] = {kind.name: [] for kind in kinds}
    quality = 0
    views = QueryViews.empty()
    for base_name, base in query_bases(image, settings).items():
        scale_x, scale_y = views.add_base(base_name, base)
        whole = (base, base.convert("L") if True in greys else base)  # (colour, grey)
        small: tuple[Image.Image, Image.Image] | None = None
        for margins, guess in guessed_regions(base_name, settings):
            hashed = whole
            if guess in CORE_GUESSES:  # hundreds of them: hashed on the base scaled down
                if small is None:
                    small = _scaled_down(base, settings.guess_side)
                hashed = small
            regions = {grey: inner_region(hashed[grey], margins) for grey in greys}
            region_quality = 100
            for kind in kinds:
                words, rating = kind.compute_rated(regions[kind.grey])
                hashed_by_kind[kind.name].append(words)
                region_quality = min(region_quality, rating)
            if base_name == "as-sent" and guess not in CORE_GUESSES:
                quality = max(quality, region_quality)
            name = f"{base_name}@{','.join(f'{m:g}' for m in margins)}"
            box = _inner_box(base.size, margins)
            views.add_variant(
                name, base_name, (box[0] * scale_x, box[1] * scale_y, box[2] * scale_x, box[3] * scale_y)
            )
            names.append(name)
            guesses.append(guess)
    hashes = QueryHashes(
        signals={kind.name: kind.column(hashed_by_kind[kind.name]) for kind in kinds},
        variants=tuple(names),
        quality=quality,
        guesses=np.array(guesses, dtype=np.uint8),
    )
    return hashes, views
