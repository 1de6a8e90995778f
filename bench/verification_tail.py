"""How often the verification (bot/verification.py) would accept an unrelated pair near in both
hashes, when too few are measured to count: each (query variant, entry) triple's margin, and a
stated tail fit of the pairs' margins. Used by bench/precision (pairs of the photo corpus near in
both hashes) and bench/false_matches.py (the rule's candidates, end to end).

1. Each (query variant, entry) triple gets a margin: the smallest of atanh(score) - atanh(minimum)
   over the checks that apply (shape, detail; colour where both pictures have it; the smooth
   minimum for smooth entries). It passes exactly when the margin is >= 0 (the Fisher transform
   spreads correlations near 1, where the minimums sit). A pair's margin is the best of its triples.
2. Closer hashes might mean closer pictures: the margins are regressed on the pair's pHash and PDQ
   distances (least squares), and the fit is made on the residuals.
3. The residuals' upper tail above their 95th percentile is fitted with an exponential (peaks over
   a threshold, a generalised Pareto tail of shape 0; maximum likelihood: the mean excess).
4. The share is that tail's probability of reaching margin 0 from the location the regression
   gives each measured pair within the rule (the pairs the rule nominates), averaged; with none
   measured, from the rule's most alike corner (pHash 0 or the rule's, PDQ 0 or the rule's, kept
   within the distances measured): p_verified = p_rule x share.

The check: the pairs are split in two by query photograph; each half's fit predicts how many of
the other half's pairs exceed the levels that the 10th, 3rd and 1st highest margins of all pairs
mark, and both figures are printed. Where the prediction at the 10th is below the count, the share
is raised by their ratio (never lowered), so that the estimate errs high.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bot.config import MatchingSettings
from bot.verification import grey_minimums

TAIL_QUANTILE = 0.95  # the residuals above this quantile are the fitted tail
CALIBRATION_RANK = 10  # the split-half check at this rank (the steadiest count) calibrates the fit
# The columns of a verification score row, in order (colour NaN where either picture is grey).
SCORE_COLUMNS = ("shape", "detail", "colour", "entry_detail_share", "entry_spread")


def margins(scores: np.ndarray, rule: MatchingSettings) -> np.ndarray:
    """(M,) the smallest atanh(score) - atanh(minimum) over the checks that apply to each triple;
    >= 0 exactly where :func:`verified` accepts it."""
    shape_min, detail_min = _grey_minimums(scores, rule)
    colour = _column(scores, 2)
    colour_margin = np.where(np.isnan(colour), np.inf, _atanh(colour) - _atanh(rule.verify_min_colour))
    return np.minimum.reduce(
        [_atanh(scores[:, 0]) - _atanh(shape_min), _atanh(scores[:, 1]) - _atanh(detail_min), colour_margin]
    )


def verified(scores: np.ndarray, rule: MatchingSettings) -> np.ndarray:
    """Which (shape, detail, colour, entry detail share, entry spread) rows pass the rule's
    minimums (colour NaN: not compared; the smooth and sparse minimums where they apply)."""
    shape_min, detail_min = _grey_minimums(scores, rule)
    grey = (scores[:, 0] >= shape_min) & (scores[:, 1] >= detail_min)
    colour = _column(scores, 2)
    return grey & (np.isnan(colour) | (colour >= rule.verify_min_colour))


def _grey_minimums(scores: np.ndarray, rule: MatchingSettings) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the bot's own (shape, detail) minimums for the entry's detail share and spread
    (NaN or a missing column: judged by the ordinary minimums)."""
    share = np.nan_to_num(_column(scores, 3), nan=np.inf)
    spread = np.nan_to_num(_column(scores, 4), nan=np.inf)
    minimums = np.array(
        [grey_minimums(float(value), float(cells), rule) for value, cells in zip(share, spread, strict=True)]
    ).reshape(-1, 2)
    return minimums[:, 0], minimums[:, 1]


def _column(scores: np.ndarray, index: int) -> np.ndarray:
    return scores[:, index] if scores.shape[1] > index else np.full(len(scores), np.nan)


def _atanh(values: np.ndarray | float) -> np.ndarray:
    return np.arctanh(np.clip(values, -0.999999, 0.999999))


def tail_fit(
    triples: np.ndarray,
    margin: np.ndarray,
    *,
    photo: np.ndarray,
    rule: tuple[int, int],
    in_rule_triples: np.ndarray | None = None,
) -> dict[str, Any]:
    """The share of near pairs reaching margin 0, from a regression on closeness and an
    exponential fit of the residuals' upper tail (module docstring), with a split-half check.

    ``in_rule_triples`` says which triples the hash rule accepts where one pair of radii
    (``rule``) does not say it (bench/false_matches.py: per-variant radii, rows of two kinds)."""
    keys, inverse = np.unique(
        triples[:, 0] * (int(triples[:, 1].max()) + 1) + triples[:, 1], return_inverse=True
    )
    pair_margin = np.full(len(keys), -np.inf)
    np.maximum.at(pair_margin, inverse, margin)
    closeness = np.full((len(keys), 2), np.iinfo(np.int64).max)
    np.minimum.at(closeness, inverse, triples[:, 3:5])
    query = np.zeros(len(keys), np.int64)
    query[inverse] = triples[:, 0]
    if len(keys) < 40:
        return {"pairs": len(keys), "share": float("nan"), "method": "too few pairs to fit"}
    design = np.column_stack([np.ones(len(keys)), closeness])
    coefficients = np.linalg.lstsq(design, pair_margin, rcond=None)[0]
    residual = pair_margin - design @ coefficients
    # Where the rule's own pairs sit: the share is the mean of each one's chance from its location.
    in_rule = np.zeros(len(keys), bool)
    if in_rule_triples is None:
        in_rule_triples = (triples[:, 3] <= rule[0]) & (triples[:, 4] <= rule[1])
    np.logical_or.at(in_rule, inverse, in_rule_triples)
    if in_rule.any():
        locations = design[in_rule] @ coefficients
    else:  # none measured: the rule's most alike corner, kept inside the measured closeness
        low, high = closeness.min(axis=0), closeness.max(axis=0)
        corners = [
            [1, np.clip(a, low[0], high[0]), np.clip(b, low[1], high[1])]
            for a in (0, rule[0])
            for b in (0, rule[1])
        ]
        locations = np.array([(np.array(corners, dtype=np.float64) @ coefficients).max()])
    share = float(np.mean(_exceedance(residual, -locations)))
    half = photo[query] % 2 == 0  # the two halves share no photograph
    ordered = np.sort(pair_margin)[::-1]
    checks = []
    for rank in (10, 3, 1):
        if rank > len(ordered):
            continue
        level = float(ordered[rank - 1])
        predicted = observed = 0.0
        for fitted, other in ((half, ~half), (~half, half)):
            if fitted.sum() < 20 or not other.any():
                continue
            fit_coefficients = np.linalg.lstsq(design[fitted], pair_margin[fitted], rcond=None)[0]
            fit_residual = pair_margin[fitted] - design[fitted] @ fit_coefficients
            other_location = design[other] @ fit_coefficients
            predicted += float(_exceedance(fit_residual, level - other_location).sum())
            observed += int((pair_margin[other] >= level).sum())
        checks.append({"level": level, "rank": rank, "predicted": predicted, "observed": observed})
    # Where the fit predicted fewer pairs past the 10th-highest margin than the other half held,
    # the share is raised by that ratio (never lowered): the estimate errs high, not low.
    tenth = next((check for check in checks if check["rank"] == CALIBRATION_RANK), None)
    calibration = 1.0
    if tenth is not None and tenth["predicted"] > 0:
        calibration = max(1.0, tenth["observed"] / tenth["predicted"])
    return {
        "pairs": len(keys),
        "method": f"residual tail above the {TAIL_QUANTILE:.0%} quantile, exponential (mean excess)",
        "coefficients": {
            "intercept": coefficients[0],
            "per_phash_bit": coefficients[1],
            "per_pdq_bit": coefficients[2],
        },
        "rule_pairs": int(in_rule.sum()),
        "location_at_rule": float(np.mean(locations)),
        "highest_margins": ordered[:5].tolist(),
        "share_fitted": share,
        "calibration": calibration,
        "share": share * calibration,
        "split_half_check": checks,
    }


def _exceedance(residual: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """P(residual >= level) for each level, from the empirical share above the tail threshold and
    an exponential of the excesses beyond it (the empirical share where a level is below the
    threshold). The threshold and the scale are computed once for all levels: a split-half check
    asks for one level per pair, tens of thousands of them."""
    levels = np.asarray(levels, dtype=np.float64)
    ordered = np.sort(residual)
    threshold = float(np.quantile(residual, TAIL_QUANTILE))
    empirical = (len(ordered) - np.searchsorted(ordered, levels, side="left")) / len(ordered)
    excess = residual[residual > threshold] - threshold
    scale = float(excess.mean()) if excess.size else 0.0
    above = float((residual > threshold).mean())
    with np.errstate(over="ignore"):
        fitted = above * np.exp(-(levels - threshold) / scale) if scale > 0 else np.zeros_like(levels)
    return np.where(levels <= threshold, empirical, fitted)
