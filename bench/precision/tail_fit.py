"""The lower tail of a distance histogram, measured where samples are plentiful and extrapolated
below: how the bench reaches probabilities far below 1 / pairs measured.

A straight line through log F(d) against d (F = cumulative share: an exponential tail) on the
lowest decade of counts (cumulative 25 to 250). Hamming distances of independent bits fall faster
than that, so on them the fit errs high; the everyday photographs' measured tail is heavier still:
refitted with 8x fewer pairs (the printed backtest) it predicts fewer close pairs than were
measured. A Gaussian tail ("normal") is printed beside it. No fit sees a heavier component that
only appears beyond the measured range: the estimate is as good as the corpus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri


@dataclass(frozen=True)
class TailFit:
    """P(distance <= threshold) from a histogram: measured when enough samples fall at or below the
    threshold, otherwise extrapolated from the fitted lower tail (``shape`` "exp" or "normal")."""

    probability: float
    measured: bool
    shape: str
    samples: int
    fit_points: int
    fit_range: tuple[int, int] | None


def fit_lower_tail(
    hist: np.ndarray,
    threshold: int,
    *,
    shape: str = "exp",
    min_count: int = 25,
    span: float = 10.0,
    max_share: float = 0.05,
) -> TailFit:
    """Probability that a sample of ``hist`` (counts per integer distance) is <= ``threshold``.

    Measured when at least ``min_count`` samples lie at or below the threshold. Otherwise the
    extreme tail is fitted: the distances that occur whose cumulative count is between
    ``min_count`` (each share then known to within ~20%) and ``span`` times that (the lowest
    decade: the extreme tail, not the bulk, whose shape differs) and whose cumulative share is
    <= ``max_share``; if that leaves fewer than 3 points, the 3 lowest with ``min_count``. Points
    are weighted by the square root of their cumulative count (Poisson errors).
    """
    counts = np.asarray(hist, dtype=np.float64)
    total = float(counts.sum())
    if total <= 0 or threshold < 0:
        return TailFit(0.0, True, shape, int(total), 0, None)
    cumulative = np.cumsum(counts)
    threshold = min(int(threshold), len(counts) - 1)
    if cumulative[threshold] >= min_count:
        return TailFit(float(cumulative[threshold] / total), True, shape, int(total), 0, None)
    share = cumulative / total
    usable = (counts > 0) & (cumulative >= min_count)
    points = np.flatnonzero(usable & (cumulative <= span * min_count) & (share <= max_share))
    if points.size < 3:
        points = np.flatnonzero(usable & (share <= 0.5))[:3]
    if points.size < 2:
        return TailFit(float("nan"), False, shape, int(total), int(points.size), None)
    x = points.astype(np.float64)
    weights = np.sqrt(cumulative[points])
    if shape == "exp":
        slope, intercept = np.polyfit(x, np.log(share[points]), 1, w=weights)
        probability = float(np.exp(intercept + slope * threshold))
    elif shape == "normal":
        slope, intercept = np.polyfit(x, ndtri(share[points]), 1, w=weights)
        probability = float(ndtr(intercept + slope * threshold))
    else:
        raise ValueError(f"unknown tail shape {shape!r}")
    # Never above what was measured at the first fit point, which lies above the threshold.
    probability = min(probability, float(share[points[0]]))
    return TailFit(probability, False, shape, int(total), int(points.size), (int(x[0]), int(x[-1])))
