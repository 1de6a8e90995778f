"""Verification of the few candidates the hashes find: do the two pictures line up, pixel for pixel?

The hashes are signs of a handful of low frequencies; over 1e8 entries, unrelated pictures alike
in broad layout (one curved edge between two flat areas, a horizon) agree on them by chance
(bench/precision.py). So each candidate is checked once more, against a 16x16 grey thumbnail of
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

The candidate stays when the best placement reaches both minimums (``[matching]`` in the config).

Privacy: the query's side of this is a small grey copy of each query base (128 px on its short
side), held in memory for the length of one check and dropped with the picture; a ticket keeps only
the hashes (:class:`bot.hashing.QueryHashes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

THUMBNAIL_SIDE = 16
# The query bases are kept this large (short side): 8 pixels for each thumbnail cell at most.
_VIEW_SIDE = 8 * THUMBNAIL_SIDE
_SHIFTS = (-2 / 32, -1 / 32, 0.0, 1 / 32, 2 / 32)  # of the region's size: half a cell a step
_SCALES = (0.94, 0.97, 1.0, 1.03, 1.06)
_DETAIL_BLUR = 1.0  # thumbnail cells
# A placement may reach this far past the picture's edge (rounding of the region's box).
_EDGE_SLACK = 0.01


def thumbnail(region: Image.Image) -> np.ndarray:
    """The (16, 16) uint8 grey thumbnail an entry stores: the region's average over each cell."""
    grey = region.convert("L")
    return np.asarray(grey.resize((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.BOX), dtype=np.uint8)


def has_thumbnail(thumbnails: np.ndarray) -> np.ndarray:
    """(..., 16, 16) -> (...) bool. All zero means none: an entry hashed elsewhere (a hash Parquet)
    or by a version that kept none. A truly black picture has PDQ quality 0 and never matches."""
    return thumbnails.reshape(*thumbnails.shape[:-2], -1).any(axis=-1)


def describe(thumbnails: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 16, 16) thumbnails -> (shape, detail) unit vectors (..., 256), zero-mean.

    A flat thumbnail gives a zero vector, which correlates 0 with everything."""
    values = np.asarray(thumbnails, dtype=np.float64)
    blur_axes = [0.0] * (values.ndim - 2) + [_DETAIL_BLUR, _DETAIL_BLUR]
    detail = values - gaussian_filter(values, sigma=blur_axes, mode="nearest")
    return _unit(values), _unit(detail)


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


@dataclass
class QueryViews:
    """Small grey copies of a query's bases and where each variant's region lies in them.

    Built next to the hashes (:func:`bot.hashing.hash_query_with_views`); the aligned
    thumbnails of a variant are computed the first time a candidate needs them.
    """

    bases: dict[str, np.ndarray]  # base name -> (H, W) uint8 grey, short side <= 128
    boxes: dict[str, tuple[str, tuple[float, float, float, float]]]  # variant -> (base, box)
    _placements: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    @classmethod
    def empty(cls) -> QueryViews:
        return cls(bases={}, boxes={})

    def add_base(self, name: str, base: Image.Image) -> tuple[float, float]:
        """Keep a small grey copy of ``base``; returns its scale (small pixels per base pixel)."""
        grey = base.convert("L")
        factor = min(1.0, _VIEW_SIDE / min(grey.size))
        if factor < 1.0:
            size = (max(1, round(grey.width * factor)), max(1, round(grey.height * factor)))
            grey = grey.resize(size, Image.Resampling.BOX)
        self.bases[name] = np.asarray(grey, dtype=np.uint8)
        return grey.width / base.width, grey.height / base.height

    def add_variant(self, variant: str, base: str, box: tuple[float, float, float, float]) -> None:
        self.boxes[variant] = (base, box)

    def placements(self, variant: str) -> tuple[np.ndarray, np.ndarray]:
        """(shape, detail) unit vectors of every placement of ``variant``'s region: (P, 256) each."""
        if variant not in self._placements:
            base_name, box = self.boxes[variant]
            self._placements[variant] = describe(_placed_thumbnails(self.bases[base_name], box))
        return self._placements[variant]

    def correlate(self, variant: str, entry_thumbnail: np.ndarray) -> Correlation:
        """The placement of ``variant`` that agrees best with the entry (both correlations at once:
        the placement maximising their sum, so one placement must carry both)."""
        shape, detail = self.placements(variant)
        entry_shape, entry_detail = describe(entry_thumbnail)
        shape_scores, detail_scores = shape @ entry_shape, detail @ entry_detail
        best = int(np.argmax(np.minimum(shape_scores, detail_scores)))
        return Correlation(shape=float(shape_scores[best]), detail=float(detail_scores[best]))


def _placed_thumbnails(base: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """16x16 thumbnails of the region ``box`` of ``base`` shifted and scaled over the grid; a
    placement that leaves the picture is a flat (all-zero) thumbnail, which correlates with nothing."""
    image = Image.fromarray(base)
    height, width = base.shape
    left, top, right, bottom = box
    centre_x, centre_y = (left + right) / 2, (top + bottom) / 2
    box_width, box_height = right - left, bottom - top
    slack_x, slack_y = _EDGE_SLACK * width, _EDGE_SLACK * height
    thumbnails = []
    for scale in _SCALES:
        half_width, half_height = box_width * scale / 2, box_height * scale / 2
        for shift_y in _SHIFTS:
            for shift_x in _SHIFTS:
                x, y = centre_x + shift_x * box_width, centre_y + shift_y * box_height
                placed = (x - half_width, y - half_height, x + half_width, y + half_height)
                if (
                    placed[0] < -slack_x
                    or placed[1] < -slack_y
                    or placed[2] > width + slack_x
                    or placed[3] > height + slack_y
                ):
                    thumbnails.append(np.zeros((THUMBNAIL_SIDE, THUMBNAIL_SIDE), np.uint8))
                    continue
                clipped = (
                    max(0.0, placed[0]),
                    max(0.0, placed[1]),
                    min(width, placed[2]),
                    min(height, placed[3]),
                )
                resized = image.resize((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.BOX, box=clipped)
                thumbnails.append(np.asarray(resized, dtype=np.uint8))
    return np.stack(thumbnails)


def correlation_passes(correlation: Correlation, *, min_shape: float, min_detail: float) -> bool:
    return correlation.shape >= min_shape and correlation.detail >= min_detail
