"""The tail fit and colour check of bench/precision.py, on distributions whose truth is known."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binom

_PATH = Path(__file__).resolve().parents[2] / "bench" / "precision.py"
_SPEC = importlib.util.spec_from_file_location("bench_precision", _PATH)
assert _SPEC is not None
assert _SPEC.loader is not None
precision = importlib.util.module_from_spec(_SPEC)
sys.modules["bench_precision"] = precision
_SPEC.loader.exec_module(precision)


def binomial_hist(bits: int, samples: float) -> np.ndarray:
    """Expected counts of the Hamming distance between independent random hashes."""
    return np.round(samples * binom.pmf(np.arange(bits + 1), bits, 0.5))


@pytest.mark.parametrize(("bits", "threshold"), [(256, 70), (256, 80), (64, 6), (64, 10)])
def test_normal_fit_recovers_a_binomial_tail_far_below_the_measured_range(bits: int, threshold: int) -> None:
    hist = binomial_hist(bits, 1e9)
    exact = binom.cdf(threshold, bits, 0.5)
    fit = precision.fit_lower_tail(hist, threshold, shape="normal")
    assert not fit.measured
    assert fit.fit_range[0] > threshold  # extrapolated, not read off
    assert exact / 2 <= fit.probability <= 5 * exact


def test_exponential_fit_is_an_upper_bound_of_a_binomial_tail() -> None:
    hist = binomial_hist(256, 1e9)
    for threshold in (60, 70, 80):
        exact = binom.cdf(threshold, 256, 0.5)
        # A binomial tail falls ever faster (log F is concave): a straight line in log F errs high.
        assert precision.fit_lower_tail(hist, threshold, shape="exp").probability >= exact


def test_a_threshold_inside_the_measured_range_is_read_off_not_fitted() -> None:
    hist = np.zeros(257)
    hist[[90, 100, 128]] = [30, 70, 900]
    fit = precision.fit_lower_tail(hist, 95)
    assert fit.measured
    assert fit.probability == pytest.approx(30 / 1000)


def test_pair_probability_multiplies_the_share_of_pairs_with_a_close_variant() -> None:
    defined = binomial_hist(256, 1e8)
    min_pdq = np.concatenate([defined, [3 * defined.sum()]])  # 3 of 4 pairs: no variant close in pHash
    p, fit = precision.pair_match_probability(min_pdq, 100)
    assert p == pytest.approx(0.25 * fit.probability)
    assert fit.probability == pytest.approx(binom.cdf(100, 256, 0.5), rel=1e-3)


def quadrants(*rgb: tuple[float, float, float]) -> np.ndarray:
    return np.array([channel for colour in rgb for channel in colour], dtype=np.float32)


def test_colour_check_passes_darker_greyer_and_more_saturated_copies() -> None:
    original = quadrants((200, 60, 40), (40, 90, 200), (90, 160, 60), (120, 120, 120))
    grey = np.repeat(original.reshape(4, 3).mean(axis=1), 3)
    darker = original * 0.75
    mean = original.reshape(4, 3).mean(axis=1, keepdims=True)
    saturated = (mean + 1.6 * (original.reshape(4, 3) - mean)).clip(0, 255).ravel()
    copies = np.stack([original, grey, darker, saturated])
    assert precision.colour_agrees(copies, original[None, :]).all()


def test_colour_check_refuses_a_clearly_different_hue() -> None:
    red = quadrants(*[(200, 50, 40)] * 4)
    blue = quadrants(*[(40, 70, 200)] * 4)
    assert not precision.colour_agrees(red, blue)


def test_quadrant_distance_is_the_mean_over_the_four_quadrants() -> None:
    rng = np.random.default_rng(0)
    quads = rng.integers(0, 2**63, size=(4, 4), dtype=np.uint64)
    flipped = quads.copy()
    flipped[0, 0] ^= np.uint64(0xFF)  # 8 bits differ in the first quadrant
    assert precision.quadrant_distance(flipped, quads) == pytest.approx(2.0)
    assert precision.quadrants_agree(np.array([2.0, 200.0])).tolist() == [True, False]


def _verification_report(triples: list[tuple[int, int, int, int, int]], passes: list[bool]) -> dict:
    from types import SimpleNamespace

    from bot.config import load_settings

    settings = load_settings(with_deployment_files=False)
    shape, detail = settings.matching.verify_min_shape, settings.matching.verify_min_detail
    scores = np.array([(shape, detail) if ok else (shape, detail - 0.01) for ok in passes])
    corpus = SimpleNamespace(names=[str(i) for i in range(100)])
    verify = sys.modules["precision_verify"]  # bench/precision.py imported it
    return verify.verification_report(
        corpus, settings, np.array(triples), scores, p_rule=1e-6, positives_verified=None
    )


def test_verification_factor_comes_from_the_tightest_ring_with_enough_pairs() -> None:
    # 60 pairs at pHash 10 / PDQ 90 (the tightest ring with >= 50 pairs), 6 of them accepted; one
    # pair under the rule, accepted through the second of its two variants.
    triples = [(q, q + 1, 0, 10, 90) for q in range(60)] + [(70, 71, 0, 8, 80), (70, 71, 1, 8, 80)]
    passes = [q < 6 for q in range(60)] + [False, True]
    report = _verification_report(triples, passes)

    assert report["factor_ring"] == {"phash": 10, "pdq": 90, "pairs": 61, "accepted": 7}
    assert report["factor"] == pytest.approx(7 / 61)
    assert report["p_verified"] == pytest.approx(1e-6 * 7 / 61)
    assert (report["measured_rule"], report["measured_rule_and_verified"]) == (1, 1)
    assert report["expected_per_query"]["1e+08"] == pytest.approx(100 * 7 / 61)


def test_verification_factor_is_an_upper_bound_when_nothing_passes() -> None:
    triples = [(q, q + 1, 0, 12, 100) for q in range(80)]
    report = _verification_report(triples, [False] * 80)

    assert report["factor_is_upper_bound"]
    assert report["factor"] == pytest.approx(3 / 80)
