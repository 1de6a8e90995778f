"""bench/precision/estimates.py on histograms whose truth is known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from bench.precision.estimates import pair_match_probability


def binomial_hist(bits: int, samples: float) -> np.ndarray:
    """Expected counts of the Hamming distance between independent random hashes."""
    return np.round(samples * binom.pmf(np.arange(bits + 1), bits, 0.5))


def test_pair_probability_multiplies_the_share_of_pairs_with_a_close_variant() -> None:
    defined = binomial_hist(256, 1e8)
    min_pdq = np.concatenate([defined, [3 * defined.sum()]])  # 3 of 4 pairs: no variant close in pHash
    p, fit = pair_match_probability(min_pdq, 100)
    assert p == pytest.approx(0.25 * fit.probability)
    assert fit.probability == pytest.approx(binom.cdf(100, 256, 0.5), rel=1e-3)
