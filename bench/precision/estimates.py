"""p, the probability that one unrelated (query, entry) pair matches, for any pair of radii in
one population of pairs; and the radii that reach the goal.

* Method A (headline): per PAIR. D_a = the smallest PDQ distance among the query's variants whose
  pHash distance is <= a (undefined when there is none). A pair matches iff D_a <= b, so
  p = P(D_a defined) * P(D_a <= b | D_a defined). The first factor is measured. The second is
  the lower tail of the D_a histogram, fitted and extrapolated to b (measured when >= 25 pairs
  lie at or below b); with fewer than 250 pairs at radius a the tail's shape is taken from the
  smallest radius with 250 (below pHash ~10 the PDQ distances of unrelated pairs stop falling;
  printed). p is capped by PDQ alone (the rule needs PDQ too), fitted on all pairs.
* Method B (cross-check): per (variant, entry) sample, p_ve = P(ph <= a) * P(pd <= b | ph <= a),
  and p <= V * p_ve by the union bound over the V variants of a query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.precision.corpus import Positives
from bench.precision.pairs import NEAR_PHASH, PHASH_BITS, POPULATIONS, UNDEFINED, PairStats
from bench.precision.tail_fit import TailFit, fit_lower_tail

SCALES = (1e6, 1e8, 5.85e9)  # entries: a large collection, LAION-400M-ish, LAION-5B
TARGET_AT_1E8 = 0.01  # expected false matches per query at 1e8 entries (the goal)
POOL_MIN = 250  # the conditional PDQ tail is fitted on the smallest pHash radius >= a with this many pairs


def pair_match_probability(min_pdq: np.ndarray, b: int, *, shape: str = "exp") -> tuple[float, TailFit]:
    """Method A at one radius: P(D_a <= b) from the histogram of D_a over pairs (last bin: D_a
    undefined), the tail fitted on that radius's own pairs."""
    pairs = float(min_pdq.sum())
    defined = min_pdq[:UNDEFINED]
    fit = fit_lower_tail(defined, b, shape=shape)
    if pairs == 0:
        return 0.0, fit
    return float(defined.sum() / pairs) * fit.probability, fit


def min_pdq_from_near(near: np.ndarray, keep: np.ndarray, a: int, pairs: int) -> np.ndarray:
    """D_a histogram (last bin: undefined) from the near samples ``keep`` (a <= NEAR_PHASH)."""
    rows = near[keep & (near[:, 3] <= a)]
    hist = np.zeros(UNDEFINED + 1, np.int64)
    if rows.size:
        pair = rows[:, 0].astype(np.int64) * (1 << 32) + rows[:, 1]
        order = np.lexsort((rows[:, 4], pair))
        first = np.ones(order.size, bool)
        first[1:] = pair[order][1:] != pair[order][:-1]
        hist[:UNDEFINED] = np.bincount(rows[order][first, 4], minlength=UNDEFINED)[:UNDEFINED]
    hist[UNDEFINED] = pairs - hist[:UNDEFINED].sum()
    return hist


@dataclass(frozen=True)
class Estimate:
    """p for one rule: the headline ``p`` = min(method A, PDQ alone)."""

    p: float
    method_a: float
    pdq_alone: float
    pooled_radius: int
    measured_pairs: int

    @property
    def expected(self) -> dict[str, float]:
        return {f"{n:g}": self.p * n for n in SCALES}


@dataclass
class Estimator:
    """p for any (a, b) in one population."""

    stats: PairStats
    population: str
    near: np.ndarray  # (M, 5) query, entry, variant, pHash, PDQ: the samples within NEAR_PHASH
    near_kinds: np.ndarray  # (M,) the pair kind of each

    def __post_init__(self) -> None:
        self.hists = self.stats.population(self.population)
        self.in_population = np.isin(self.near_kinds, POPULATIONS[self.population])
        self._d_a: dict[int, np.ndarray] = {}

    @property
    def pairs(self) -> int:
        return int(self.hists["pairs"])

    def d_a(self, a: int) -> np.ndarray:
        """The D_a histogram (from the scan; from the near samples at a radius it did not keep)."""
        if a in self.stats.a_values:
            return self.hists["min_pdq"][self.stats.a_values.index(a)]
        if a > NEAR_PHASH:
            raise ValueError(f"pHash radius {a} > {NEAR_PHASH}: samples not kept one by one")
        if a not in self._d_a:
            self._d_a[a] = min_pdq_from_near(self.near, self.in_population, a, self.pairs)
        return self._d_a[a]

    def measured(self, a: int, b: int) -> int:
        return int(self.d_a(a)[: b + 1].sum())

    def pooled_radius(self, a: int) -> int:
        """The smallest pHash radius >= a whose D histogram has POOL_MIN defined pairs. Below a
        radius of ~10 the PDQ distances of unrelated pairs stop falling (printed per radius), so
        the tail's shape is borrowed from there."""
        for radius in range(a, NEAR_PHASH + 1, 2):
            if self.d_a(radius)[:UNDEFINED].sum() >= POOL_MIN:
                return radius
        return max(a, NEAR_PHASH)

    def pdq_alone(self, b: int, *, shape: str = "exp") -> TailFit:
        hist = self.hists["min_pdq"][self.stats.a_values.index(PHASH_BITS)][:UNDEFINED]
        return fit_lower_tail(hist, b, shape=shape)

    def estimate(self, a: int, b: int, *, shape: str = "exp") -> Estimate:
        """Method A with a pooled conditional tail, capped by PDQ alone (the rule needs PDQ too)."""
        d_a = self.d_a(a)
        measured = int(d_a[: b + 1].sum())
        radius = self.pooled_radius(a)
        if measured >= 25:
            method_a = measured / max(1, self.pairs)
        else:
            conditional = fit_lower_tail(self.d_a(radius)[:UNDEFINED], b, shape=shape)
            method_a = float(d_a[:UNDEFINED].sum()) / max(1, self.pairs) * conditional.probability
        pdq_alone = self.pdq_alone(b, shape=shape).probability
        finite = [x for x in (method_a, pdq_alone) if np.isfinite(x)]
        p = min(finite) if finite else float("nan")
        return Estimate(p, method_a, pdq_alone, radius, measured)

    def method_b(self, a: int, b: int, *, shape: str = "exp") -> float:
        """Per (variant, entry) sample, union bound over a query's variants."""
        joint = self.hists["joint"]
        variants = float(self.hists["samples"]) / max(1.0, float(self.hists["pairs"]))
        phash_share = fit_lower_tail(joint.sum(axis=1), a, shape=shape).probability
        radius = next((r for r in range(a, 65) if joint[: r + 1].sum() >= POOL_MIN), 64)
        pdq_given = fit_lower_tail(joint[: radius + 1].sum(axis=0), b, shape=shape).probability
        return min(1.0, variants * phash_share * pdq_given)

    def backtest(self, *, shape: str = "exp") -> dict[str, float] | None:
        """PDQ alone fitted as if 8x fewer pairs had been measured (points with >= 200 pairs),
        its prediction at the lowest distance with >= 25 pairs, beside what was measured."""
        hist = self.hists["min_pdq"][self.stats.a_values.index(PHASH_BITS)][:UNDEFINED]
        cumulative = np.cumsum(hist)
        low = np.flatnonzero((cumulative >= 25) & (cumulative < 200))
        if not low.size:
            return None
        distance = int(low[0])
        predicted = fit_lower_tail(hist, distance, shape=shape, min_count=200)
        return {
            "distance": distance,
            "measured_pairs": int(cumulative[distance]),
            "predicted_pairs": predicted.probability * float(hist.sum()),
        }

    def conditional_by_radius(self) -> list[dict[str, int]]:
        """How the PDQ distance of unrelated pairs falls as their pHash gets closer."""
        rows = []
        for a in (4, 6, 8, 10, 12, 14, 16, 20, 24, 32):
            hist = self.d_a(a)[:UNDEFINED]
            total = int(hist.sum())
            if total:
                share = np.cumsum(hist) / total
                quantiles = {f"q{int(x * 100)}": int(np.searchsorted(share, x)) for x in (0.01, 0.1, 0.5)}
                rows.append({"phash_radius": a, "pairs": total, **quantiles})
        return rows


def recommend(estimator: Estimator, positives: Positives | None) -> list[dict[str, Any]]:
    """Per pHash radius, the loosest PDQ radius whose estimate reaches TARGET_AT_1E8, with its
    dev-set recall; most recall first, then fewest false matches."""
    options: list[dict[str, Any]] = []
    for a in range(4, NEAR_PHASH + 1, 2):
        passing = [
            (b, estimate)
            for b in range(20, 91, 2)
            if (estimate := estimator.estimate(a, b)).p * 1e8 <= TARGET_AT_1E8
        ]
        if passing:
            b, estimate = passing[-1]
            options.append(
                {
                    "phash": a,
                    "pdq": b,
                    "p": estimate.p,
                    "expected_at_1e8": estimate.p * 1e8,
                    "measured": estimate.measured_pairs,
                    "recall": positives.found(a, b) if positives is not None else 0,
                }
            )
    options.sort(key=lambda o: (-o["recall"], o["expected_at_1e8"]))
    return options
