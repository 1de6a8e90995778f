"""Verification of the few candidates the hashes find: do the two pictures line up, pixel for pixel?

The hashes are signs of a handful of low frequencies; over 1e8 entries, unrelated pictures alike
in broad layout (one curved edge between two flat areas, a horizon) agree on them by chance
(bench/precision). So each candidate is checked once more, against a 16x16 grey thumbnail of
the entry's hashed region that the index keeps on disk (256 bytes an entry, read only for the
candidates, never part of what the search holds in memory).

The query side does the work, as for the hashes: the query region that found the candidate is
shifted (up to 1/16 of its size each way, by half a cell) and scaled (0.94-1.06) in a small grid,
so a crop or a slight rotation that left the hashes only roughly aligned is lined up; every
placement is resampled to 16x16 and compared with the entry's thumbnail by two correlations, which brightness,
contrast, colour changes and re-encoding leave close to 1:

* shape: the Pearson correlation of the two thumbnails (the picture's layout);
* detail: the same after removing each thumbnail's blurred self (a Gaussian of 1 cell), so that
  only edges and texture are compared; a broad layout that happens to agree gives nothing here.

The best placement of that grid is then refined: finer shifts (1/64 of the region) and scales
(1.5 %) at five small rotations (-2..2 degrees), so that a textured crop or a slightly turned copy,
whose detail falls apart when it is half a cell off, lines up too. A candidate whose grid best is
far below the minimums is turned down without the refinement.

Grey shape and detail cannot tell apart two simple pictures alike in layout (a white curve on teal
and a pink one on purple). Their colours can: each entry also keeps an 8x8 map of its opponent
colours (red-green, yellow-blue; 128 bytes), compared with the same map of the aligned query
region by a cosine, which brightness and saturation changes leave near 1. A picture with too
little colour (a grey copy, a black-and-white photograph) has no colour to compare and is judged
on grey alone.

Smooth pictures need a stricter bar. One curved edge between two flat areas (a wallpaper, a
close-up of a cup's rim) is matched by many unrelated pictures of the same kind at 0.9 and more,
while a copy of such a picture barely changes: resampling, blur and re-encoding move little when
there is little fine detail. So where the entry's thumbnail keeps less than a set share of its
variance in detail (:func:`detail_share`), shape and detail must both reach a higher minimum.
Measured (bench/precision): the dev set's copies of such pictures score at least 0.96; the
unrelated everyday pairs near in both hashes at most 0.92.

Sparse pictures too: a small bright subject on a dark ground (a galaxy, a star cluster) keeps its
contrast in a few cells of the thumbnail (:func:`spread`), and unrelated pictures of that kind are
alike in layout: the stars that tell them apart are far finer than a cell. Copies of such pictures
change as little as copies of smooth ones, so below a set spread the same kind of higher minimum
applies (``verify_sparse_below``, ``verify_min_sparse``).

The candidate stays when the best placement reaches every minimum (``[matching]`` in the config).

Privacy: the query's side of this is a small grey copy of each query base (128 px on its short
side), held in memory for the length of one check and dropped with the picture; a ticket keeps only
the hashes (:class:`bot.hashing.QueryHashes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from bot.config import MatchingSettings

THUMBNAIL_SIDE = 16
CHROMA_SIDE = 8
# The query bases are kept this large (short side): 8 pixels for each thumbnail cell at most.
_VIEW_SIDE = 8 * THUMBNAIL_SIDE
_SHIFTS = (-2 / 32, -1 / 32, 0.0, 1 / 32, 2 / 32)  # of the region's size: half a cell a step
_SCALES = (0.94, 0.97, 1.0, 1.03, 1.06)
_DETAIL_BLUR = 1.0  # thumbnail cells
# The refinement around the grid's best placement.
_FINE_SHIFTS = (-1 / 64, 0.0, 1 / 64)
_FINE_SCALES = (0.985, 1.0, 1.015)
_ANGLES = (-2.0, -1.0, 0.0, 1.0, 2.0)  # degrees
# The refinement runs only from a grid placement this good. It lifts a true copy by up to ~0.25
# (hubble.jpg turned by 2 degrees: 0.76 at the grid, 0.99 refined; the dev set's copies all reach
# 0.80 at the grid), far from lifting a candidate under 0.6 to the minimums; most unrelated
# candidates are under it and then cost a matrix product instead of ~10 ms of resampling.
_REFINE_FROM = 0.6
# Opponent colours are halved to fit int8. A map whose root mean square (in those units) is below
# this is taken as grey: JPEG noise in a grey picture stays well under it.
_CHROMA_MIN_RMS = 2.0
# A placement may reach this far past the picture's edge (rounding of the region's box).
_EDGE_SLACK = 0.01


def thumbnail(region: Image.Image) -> np.ndarray:
    """The (16, 16) uint8 grey thumbnail an entry stores: the region's average over each cell."""
    grey = region.convert("L")
    return np.asarray(grey.resize((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.BOX), dtype=np.uint8)


def chroma(region: Image.Image) -> np.ndarray:
    """The (2, 8, 8) int8 opponent colours an entry stores: (red - green) / 2 and
    (yellow - blue) / 2 of the region's average over each cell."""
    return _chroma_of(
        np.asarray(region.convert("RGB").resize((CHROMA_SIDE, CHROMA_SIDE), Image.Resampling.BOX))
    )


def _chroma_of(rgb: np.ndarray) -> np.ndarray:
    values = rgb.astype(np.float64)
    red, green, blue = values[..., 0], values[..., 1], values[..., 2]
    opponent = np.stack([(red - green) / 2, ((red + green) / 2 - blue) / 2])
    return np.clip(np.round(opponent), -128, 127).astype(np.int8)


def colour_agreement(query_chroma: np.ndarray, entry_chroma: np.ndarray) -> float | None:
    """Cosine of two opponent-colour maps; None when either is too grey to say anything."""
    query, entry = query_chroma.astype(np.float64).ravel(), entry_chroma.astype(np.float64).ravel()
    query_norm, entry_norm = float(np.linalg.norm(query)), float(np.linalg.norm(entry))
    if min(query_norm, entry_norm) < _CHROMA_MIN_RMS * np.sqrt(query.size):
        return None
    return float(query @ entry) / (query_norm * entry_norm)


def has_thumbnail(thumbnails: np.ndarray) -> np.ndarray:
    """(..., 16, 16) -> (...) bool. All zero means none: an entry hashed elsewhere (a hash Parquet)
    or by a version that kept none. A truly black picture has PDQ quality 0 and never matches."""
    return np.asarray(thumbnails.reshape(*thumbnails.shape[:-2], -1).any(axis=-1))


def describe(thumbnails: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 16, 16) thumbnails -> (shape, detail) unit vectors (..., 256), zero-mean.

    A flat thumbnail gives a zero vector, which correlates 0 with everything."""
    values = np.asarray(thumbnails, dtype=np.float64)
    blur_axes = [0.0] * (values.ndim - 2) + [_DETAIL_BLUR, _DETAIL_BLUR]
    detail = values - gaussian_filter(values, sigma=blur_axes, mode="nearest")
    return _unit(values), _unit(detail)


def detail_share(thumbnail: np.ndarray) -> float:
    """The share of a thumbnail's variance that is detail (what :func:`describe` compares as
    detail); small for smooth pictures, whose copies must agree more closely. A flat one gives 0."""
    values = np.asarray(thumbnail, dtype=np.float64)
    values = values - values.mean()
    total = float((values**2).sum())
    if total <= 1e-9:
        return 0.0
    detail = values - gaussian_filter(values, sigma=_DETAIL_BLUR, mode="nearest")
    return float((detail**2).sum()) / total


def spread(thumbnail: np.ndarray) -> float:
    """Over how many of the thumbnail's cells its contrast is spread (the participation ratio of
    the deviations from the mean, (sum c^2)^2 / sum c^4): ~1 for one bright cell on black, ~85
    for noise, 256 at most. Small for a small bright subject on a dark ground (a galaxy, a star
    cluster), which unrelated pictures of the same kind match in layout. A flat one gives 0."""
    values = np.asarray(thumbnail, dtype=np.float64)
    squares = (values - values.mean()) ** 2
    fourth = float((squares**2).sum())
    return float(squares.sum()) ** 2 / fourth if fourth > 1e-9 else 0.0


def _unit(values: np.ndarray) -> np.ndarray:
    flat = values.reshape(*values.shape[:-2], -1)
    flat = flat - flat.mean(axis=-1, keepdims=True)
    norm = np.linalg.norm(flat, axis=-1, keepdims=True)
    return np.divide(flat, norm, out=np.zeros_like(flat), where=norm > 1e-9)


@dataclass(frozen=True)
class Correlation:
    """The best placement's two correlations (-1..1) for one candidate."""

    shape: float
    detail: float
    colour: float | None = None  # None: one of the two pictures is (nearly) grey, or no colour kept
    entry_detail_share: float = 1.0  # detail_share of the entry's thumbnail
    entry_spread: float = float(THUMBNAIL_SIDE**2)  # spread of the entry's thumbnail


@dataclass
class QueryViews:
    """Small copies of a query's bases and where each variant's region lies in them.

    Built next to the hashes (:func:`bot.hashing.hash_query_with_views`); the aligned
    thumbnails of a variant are computed the first time a candidate needs them.
    """

    bases: dict[str, np.ndarray]  # base name -> (H, W, 3) uint8 RGB, short side <= 128
    boxes: dict[str, tuple[str, tuple[float, float, float, float]]]  # variant -> (base, box)
    _placements: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    # (variant or base, angle) -> the turned base in colour and in grey, made once per query
    _rotated: dict[tuple[str, float], tuple[Image.Image, Image.Image]] = field(
        default_factory=dict, repr=False
    )

    @classmethod
    def empty(cls) -> QueryViews:
        return cls(bases={}, boxes={})

    def add_base(self, name: str, base: Image.Image) -> tuple[float, float]:
        """Keep a small copy of ``base``; returns its scale (small pixels per base pixel)."""
        rgb = base.convert("RGB")
        factor = min(1.0, _VIEW_SIDE / min(rgb.size))
        if factor < 1.0:
            size = (max(1, round(rgb.width * factor)), max(1, round(rgb.height * factor)))
            rgb = rgb.resize(size, Image.Resampling.BOX)
        self.bases[name] = np.asarray(rgb, dtype=np.uint8)
        return rgb.width / base.width, rgb.height / base.height

    def add_variant(self, variant: str, base: str, box: tuple[float, float, float, float]) -> None:
        self.boxes[variant] = (base, box)

    def placements(self, variant: str) -> tuple[np.ndarray, np.ndarray]:
        """(shape, detail) unit vectors of every grid placement of ``variant``'s region: (P, 256) each."""
        if variant not in self._placements:
            self._placements[variant] = describe(
                _placed_thumbnails(self._view(variant, 0.0)[1], self.boxes[variant][1], _GRID)
            )
        return self._placements[variant]

    def correlate(
        self, variant: str, entry_thumbnail: np.ndarray, entry_chroma: np.ndarray | None = None
    ) -> Correlation:
        """The placement of ``variant`` that agrees best with the entry: the grid's best (the
        placement maximising the smaller of the two correlations, so one placement must carry
        both), refined unless it is far off (``_REFINE_FROM``); then the colours at that
        placement, when both pictures have colour."""
        entry_shape, entry_detail = describe(entry_thumbnail)
        shape, detail = self.placements(variant)
        grid_shape, grid_detail = shape @ entry_shape, detail @ entry_detail
        grid_index = int(np.argmax(np.minimum(grid_shape, grid_detail)))
        box = self.boxes[variant][1]
        if min(grid_shape[grid_index], grid_detail[grid_index]) < _REFINE_FROM:
            at_grid = (float(grid_shape[grid_index]), float(grid_detail[grid_index]), 0.0, _GRID[grid_index])
            return self._finish(variant, entry_thumbnail, entry_chroma, at_grid)
        shift_x, shift_y, scale = _GRID[grid_index]
        fine = [
            (shift_x + fine_x, shift_y + fine_y, scale * fine_scale)
            for fine_scale in _FINE_SCALES
            for fine_y in _FINE_SHIFTS
            for fine_x in _FINE_SHIFTS
        ]
        best: tuple[float, float, float, tuple[float, float, float]] | None = None
        for angle in _ANGLES:
            fine_shape, fine_detail = describe(_placed_thumbnails(self._view(variant, angle)[1], box, fine))
            shape_scores, detail_scores = fine_shape @ entry_shape, fine_detail @ entry_detail
            index = int(np.argmax(np.minimum(shape_scores, detail_scores)))
            score = min(shape_scores[index], detail_scores[index])
            if best is None or score > min(best[0], best[1]):
                best = (float(shape_scores[index]), float(detail_scores[index]), angle, fine[index])
        assert best is not None
        return self._finish(variant, entry_thumbnail, entry_chroma, best)

    def _finish(
        self,
        variant: str,
        entry_thumbnail: np.ndarray,
        entry_chroma: np.ndarray | None,
        best: tuple[float, float, float, Placement],
    ) -> Correlation:
        """The correlation at the chosen (shape, detail, angle, placement), with the colours
        compared there."""
        shape, detail, angle, placement = best
        colour = None
        if entry_chroma is not None:
            query_chroma = _placed_chroma(self._view(variant, angle)[0], self.boxes[variant][1], placement)
            colour = None if query_chroma is None else colour_agreement(query_chroma, entry_chroma)
        return Correlation(
            shape=float(shape),
            detail=float(detail),
            colour=colour,
            entry_detail_share=detail_share(entry_thumbnail),
            entry_spread=spread(entry_thumbnail),
        )

    def _view(self, variant: str, angle: float) -> tuple[Image.Image, Image.Image]:
        """``variant``'s base turned by ``angle`` degrees about its region's centre: (RGB, grey)."""
        base_name, box = self.boxes[variant]
        key = (variant if angle else base_name, angle)
        if key not in self._rotated:
            image = Image.fromarray(self.bases[base_name])
            if angle:
                centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
                image = image.rotate(angle, resample=Image.Resampling.BILINEAR, center=centre)
            self._rotated[key] = (image, image.convert("L"))
        return self._rotated[key]


Placement = tuple[float, float, float]  # (shift x, shift y: fractions of the region; scale)
_GRID: list[Placement] = [
    (shift_x, shift_y, scale) for scale in _SCALES for shift_y in _SHIFTS for shift_x in _SHIFTS
]


def _placed_box(
    size: tuple[int, int], box: tuple[float, float, float, float], placement: Placement
) -> tuple[float, float, float, float] | None:
    """The box ``placement`` puts the region at, clipped to the picture; None if it leaves it."""
    width, height = size
    left, top, right, bottom = box
    shift_x, shift_y, scale = placement
    box_width, box_height = right - left, bottom - top
    x = (left + right) / 2 + shift_x * box_width
    y = (top + bottom) / 2 + shift_y * box_height
    half_width, half_height = box_width * scale / 2, box_height * scale / 2
    placed = (x - half_width, y - half_height, x + half_width, y + half_height)
    slack_x, slack_y = _EDGE_SLACK * width, _EDGE_SLACK * height
    if (
        placed[0] < -slack_x
        or placed[1] < -slack_y
        or placed[2] > width + slack_x
        or placed[3] > height + slack_y
    ):
        return None
    return (max(0.0, placed[0]), max(0.0, placed[1]), min(width, placed[2]), min(height, placed[3]))


def _placed_thumbnails(
    grey: Image.Image, box: tuple[float, float, float, float], placements: list[Placement]
) -> np.ndarray:
    """16x16 thumbnails of the region ``box`` of ``grey`` at each placement; a placement that leaves
    the picture is a flat (all-zero) thumbnail, which correlates with nothing."""
    thumbnails = []
    for placement in placements:
        placed = _placed_box(grey.size, box, placement)
        if placed is None:
            thumbnails.append(np.zeros((THUMBNAIL_SIDE, THUMBNAIL_SIDE), np.uint8))
            continue
        resized = grey.resize((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.BOX, box=placed)
        thumbnails.append(np.asarray(resized, dtype=np.uint8))
    return np.stack(thumbnails)


def _placed_chroma(
    rgb: Image.Image, box: tuple[float, float, float, float], placement: Placement
) -> np.ndarray | None:
    placed = _placed_box(rgb.size, box, placement)
    if placed is None:
        return None
    return _chroma_of(np.asarray(rgb.resize((CHROMA_SIDE, CHROMA_SIDE), Image.Resampling.BOX, box=placed)))


def grey_minimums(
    entry_detail_share: float, entry_spread: float, rule: MatchingSettings
) -> tuple[float, float]:
    """The (shape, detail) minimums for an entry: raised to the smooth minimum where its thumbnail
    keeps less than ``verify_smooth_below`` of its variance in detail, and to the sparse minimum
    where its contrast is spread over fewer than ``verify_sparse_below`` cells."""
    strict = max(
        rule.verify_min_smooth if entry_detail_share < rule.verify_smooth_below else -1.0,
        rule.verify_min_sparse if entry_spread < rule.verify_sparse_below else -1.0,
    )
    return max(rule.verify_min_shape, strict), max(rule.verify_min_detail, strict)


def unjudgeable(entry_thumbnail: np.ndarray, rule: MatchingSettings) -> bool:
    """Whether an entry's thumbnail keeps its contrast in too few cells for any alignment to say
    it is a copy (``verify_unjudgeable_below``): a small subject on a plain ground, whose 16x16
    thumbnail says where the subject is, not what it is. Such an entry near a query in both
    hashes is reported as one that could not be judged, never as a match."""
    return spread(entry_thumbnail) < rule.verify_unjudgeable_below


def correlation_passes(correlation: Correlation, rule: MatchingSettings) -> bool:
    """Every minimum of ``rule`` reached: the colour one only where both pictures have colour to
    compare, the stricter smooth and sparse ones only for such an entry."""
    if correlation.entry_spread < rule.verify_unjudgeable_below:
        return False  # too few cells to tell one such picture from another: see unjudgeable()
    min_shape, min_detail = grey_minimums(correlation.entry_detail_share, correlation.entry_spread, rule)
    colour_ok = correlation.colour is None or correlation.colour >= rule.verify_min_colour
    return correlation.shape >= min_shape and correlation.detail >= min_detail and colour_ok
