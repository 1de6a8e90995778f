"""bench/precision/tail_fit.py on binomial histograms, whose tails are known exactly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from bench.precision.tail_fit import fit_lower_tail


def binomial_hist(bits: int, samples: float) -> np.ndarray:
    """Expected counts of the Hamming distance between independent random hashes."""
    return np.round(samples * binom.pmf(np.arange(bits + 1), bits, 0.5))


@pytest.mark.parametrize(("bits", "threshold"), [(256, 70), (256, 80), (64, 6), (64, 10)])
def test_normal_fit_recovers_a_binomial_tail_far_below_the_measured_range(bits: int, threshold: int) -> None:
    hist = binomial_hist(bits, 1e9)
    exact = binom.cdf(threshold, bits, 0.5)
    fit = fit_lower_tail(hist, threshold, shape="normal")
    assert not fit.measured
    assert fit.fit_range[0] > threshold  # extrapolated, not read off
    assert exact / 2 <= fit.probability <= 5 * exact


def test_exponential_fit_is_an_upper_bound_of_a_binomial_tail() -> None:
    hist = binomial_hist(256, 1e9)
    for threshold in (60, 70, 80):
        exact = binom.cdf(threshold, 256, 0.5)
        # A binomial tail falls ever faster (log F is concave): a straight line in log F errs high.
        assert fit_lower_tail(hist, threshold, shape="exp").probability >= exact


def test_a_threshold_inside_the_measured_range_is_read_off_not_fitted() -> None:
    hist = np.zeros(257)
    hist[[90, 100, 128]] = [30, 70, 900]
    fit = fit_lower_tail(hist, 95)
    assert fit.measured
    assert fit.probability == pytest.approx(30 / 1000)
