"""The tail fits of bench/precision.py and bench/precision_verify.py, on distributions of known truth."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.stats import binom

from bench import precision, precision_verify


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


def _rule():  # type: ignore[no-untyped-def]
    from bot.config import load_settings

    return load_settings(with_deployment_files=False).matching


def test_margin_is_non_negative_exactly_where_the_verification_accepts() -> None:
    rule = _rule()
    rng = np.random.default_rng(7)
    scores = np.column_stack(
        [
            rng.uniform(0.7, 1.0, 5000),
            rng.uniform(0.6, 1.0, 5000),
            np.where(rng.random(5000) < 0.3, np.nan, rng.uniform(0.5, 1.0, 5000)),  # NaN: grey
            rng.uniform(0.0, 0.4, 5000),  # entries smooth and not
            rng.uniform(1.0, 60.0, 5000),  # entries sparse and not
        ]
    )
    verify = precision_verify

    accepted = verify.verified(scores, rule)

    np.testing.assert_array_equal(verify.margins(scores, rule) >= 0, accepted)
    assert 50 < accepted.sum() < 4950  # both sides exercised
    smooth = scores[:, 3] < rule.verify_smooth_below
    assert not accepted[smooth & (scores[:, 1] < rule.verify_min_smooth)].any()
    assert accepted[~smooth & (scores[:, 1] < rule.verify_min_smooth)].any()
    sparse = scores[:, 4] < rule.verify_sparse_below
    assert not accepted[sparse & (scores[:, 1] < rule.verify_min_sparse)].any()
    assert accepted[~sparse & ~smooth & (scores[:, 1] < rule.verify_min_sparse)].any()
    # The bot's own rule decides each row the same way.
    from bot.verification import Correlation, correlation_passes

    for row in scores[:300]:
        correlation = Correlation(
            shape=row[0],
            detail=row[1],
            colour=None if np.isnan(row[2]) else row[2],
            entry_detail_share=row[3],
            entry_spread=row[4],
        )
        assert correlation_passes(correlation, rule) == verify.verified(row[None, :], rule)[0]


def _pairs(margins: np.ndarray, phash: np.ndarray, pdq: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Triples (one per pair) with the given margins and pHash distances, one PDQ distance."""
    count = len(margins)
    triples = np.column_stack(
        [np.arange(count), np.arange(count) + count, np.zeros(count), phash, np.full(count, pdq)]
    ).astype(np.int64)
    return triples, np.arange(2 * count)  # each picture its own photograph


def test_tail_fit_recovers_a_known_exponential_tail_beyond_every_measured_pair() -> None:
    """Margins -2 + Exp(0.2): P(margin >= 0) = exp(-10) = 4.5e-5, below 1 / 20,000 pairs."""
    rng = np.random.default_rng(11)
    margins = -2.0 + rng.exponential(0.2, 20_000)
    triples, photo = _pairs(margins, rng.integers(0, 17, 20_000))

    fit = precision_verify.tail_fit(triples, margins, photo=photo, rule=(8, 80))

    assert (margins < 0).all()
    assert fit["share_fitted"] == pytest.approx(np.exp(-10), rel=0.6)
    assert fit["share"] == pytest.approx(fit["share_fitted"] * fit["calibration"])
    assert 1.0 <= fit["calibration"] < 2.0  # a true exponential: each half predicts the other
    for check in fit["split_half_check"]:  # each half predicts the other's far tail
        assert check["observed"] == pytest.approx(check["predicted"], abs=3 * np.sqrt(check["predicted"]) + 2)


def test_tail_fit_takes_the_tail_where_the_rule_nominates_pairs() -> None:
    """Closer hashes, higher margins (+0.05 a pHash bit closer): the rule (pHash <= 8) nominates
    the closer pairs, where P(margin >= 0 | pHash p) = exp(-(1.2 + 0.05 p) / 0.2)."""
    rng = np.random.default_rng(12)
    phash = rng.integers(0, 17, 20_000)
    margins = -2.0 + 0.05 * (16 - phash) + rng.exponential(0.2, 20_000)
    triples, photo = _pairs(margins, phash, pdq=70)
    nominated = phash[phash <= 8]

    fit = precision_verify.tail_fit(triples, margins, photo=photo, rule=(8, 80))

    assert fit["coefficients"]["per_phash_bit"] == pytest.approx(-0.05, abs=0.005)
    assert fit["rule_pairs"] == len(nominated)
    assert fit["share_fitted"] == pytest.approx(np.mean(np.exp(-(1.2 + 0.05 * nominated) / 0.2)), rel=0.6)


def test_tail_fit_without_pairs_in_the_rule_takes_its_most_alike_corner() -> None:
    rng = np.random.default_rng(13)
    phash = rng.integers(9, 17, 20_000)  # none within the rule's pHash 8
    margins = -2.0 + 0.05 * (16 - phash) + rng.exponential(0.2, 20_000)
    triples, photo = _pairs(margins, phash)

    fit = precision_verify.tail_fit(triples, margins, photo=photo, rule=(8, 80))

    assert fit["rule_pairs"] == 0
    # the corner pHash 0 lies outside the measured 9..16: kept at 9, location -2 + 0.35 + 0.2
    assert fit["location_at_rule"] == pytest.approx(-1.45, abs=0.03)
    assert fit["share_fitted"] == pytest.approx(np.exp(-(2.0 - 0.35) / 0.2), rel=0.6)


def test_the_frontier_prices_each_wider_rule_at_its_own_pairs() -> None:
    """Closer hashes, higher margins: a wider rule nominates farther pairs as well, so its share
    is averaged over its own pairs and comes out lower than the narrow rule's."""
    rng = np.random.default_rng(15)
    phash = rng.integers(0, 17, 20_000)
    margins = -2.0 + 0.05 * (16 - phash) + rng.exponential(0.2, 20_000)
    triples, photo = _pairs(margins, phash, pdq=70)
    verify = precision_verify
    from bot.index.mih import probes_per_hash

    rows = verify.frontier(
        triples,
        margins,
        photo=photo,
        p_rule_of=lambda a, b: 1e-7 * (a + b),
        found_of=lambda a, b: 1000 * a + b,
    )

    assert [(row["phash"], row["pdq"]) for row in rows] == list(verify.FRONTIER)
    for row in rows:
        own = verify.tail_fit(triples, margins, photo=photo, rule=(row["phash"], row["pdq"]))
        assert row["share"] == pytest.approx(own["share"])
        p_rule = 1e-7 * (row["phash"] + row["pdq"])
        assert row["expected_at_1e8"] == pytest.approx(p_rule * row["share"] * 1e8)
        assert row["probes_per_variant"] == probes_per_hash(row["phash"])
        assert row["copies_found"] == 1000 * row["phash"] + row["pdq"]
    shares = [row["share"] for row in rows if row["pdq"] >= 70]  # the rules that nominate these pairs
    assert shares == sorted(shares, reverse=True)
    # P(pass | pHash p) falls as exp(-0.25 p): the mean over 0..16 against the mean over 0..8
    chance = np.exp(-0.25 * np.arange(17))
    share_at = {(row["phash"], row["pdq"]): row["share"] for row in rows}
    assert share_at[16, 110] / share_at[8, 80] == pytest.approx(chance.mean() / chance[:9].mean(), rel=0.1)


def test_a_fit_that_predicts_too_few_is_raised_to_what_was_counted() -> None:
    """A tail heavier than exponential (Pareto): the fit under-predicts the far tail, and the
    split-half check at the 10th-highest margin raises the share by observed / predicted."""
    rng = np.random.default_rng(14)
    margins = -3.0 + (rng.pareto(2.0, 20_000) * 0.2)
    triples, photo = _pairs(margins, rng.integers(0, 17, 20_000))

    fit = precision_verify.tail_fit(triples, margins, photo=photo, rule=(8, 80))

    tenth = next(check for check in fit["split_half_check"] if check["rank"] == 10)
    assert tenth["observed"] > tenth["predicted"]
    assert fit["calibration"] == pytest.approx(tenth["observed"] / tenth["predicted"])
    assert fit["share"] > fit["share_fitted"]


def test_a_pair_passes_through_its_best_variant() -> None:
    """Two variants of one pair: the pair's margin is the better one; rings count pairs."""
    rule = _rule()
    triples = np.array([(0, 1, 0, 8, 80), (0, 1, 1, 8, 80), (2, 3, 0, 16, 110)], np.int64)
    scores = np.array([(0.5, 0.5, np.nan, 1.0), (0.99, 0.99, np.nan, 1.0), (0.5, 0.5, np.nan, 1.0)])
    corpus = SimpleNamespace(names=[str(i) for i in range(4)], photo=np.arange(4))

    verify = precision_verify
    report = verify.verification_report(
        corpus, _settings(), triples, verify.margins(scores, rule), p_rule=1e-6, positives_verified=None
    )

    rings = precision_verify.RINGS
    assert verified_pairs(report) == {rings[0]: (2, 1), **dict.fromkeys(rings[1:], (1, 1))}
    assert rule.verify_min_shape < 0.99


def _settings():  # type: ignore[no-untyped-def]
    from bot.config import load_settings

    return load_settings(with_deployment_files=False)


def verified_pairs(report: dict) -> dict[tuple[int, int], tuple[int, int]]:  # type: ignore[type-arg]
    return {(r["phash"], r["pdq"]): (r["pairs"], r["accepted"]) for r in report["rings"] if r["pairs"]}
