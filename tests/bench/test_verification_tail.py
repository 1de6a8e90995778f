"""bench/verification_tail.py: the margins decide as the bot's verification does, and the tail
fit recovers tails whose truth is known."""

from __future__ import annotations

import numpy as np
import pytest

from bench.verification_tail import margins, tail_fit, verified
from bot.verification import Correlation, correlation_passes
from tests.bench.helpers import default_rule, one_triple_per_pair


def test_margin_is_non_negative_exactly_where_the_verification_accepts() -> None:
    rule = default_rule()
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
    accepted = verified(scores, rule)

    np.testing.assert_array_equal(margins(scores, rule) >= 0, accepted)
    assert 50 < accepted.sum() < 4950  # both sides exercised
    smooth = scores[:, 3] < rule.verify_smooth_below
    assert not accepted[smooth & (scores[:, 1] < rule.verify_min_smooth)].any()
    assert accepted[~smooth & (scores[:, 1] < rule.verify_min_smooth)].any()
    sparse = scores[:, 4] < rule.verify_sparse_below
    assert not accepted[sparse & (scores[:, 1] < rule.verify_min_sparse)].any()
    assert accepted[~sparse & ~smooth & (scores[:, 1] < rule.verify_min_sparse)].any()
    # The bot's own rule decides each row the same way.
    for row in scores[:300]:
        correlation = Correlation(
            shape=row[0],
            detail=row[1],
            colour=None if np.isnan(row[2]) else row[2],
            entry_detail_share=row[3],
            entry_spread=row[4],
        )
        assert correlation_passes(correlation, rule) == verified(row[None, :], rule)[0]


def test_tail_fit_recovers_a_known_exponential_tail_beyond_every_measured_pair() -> None:
    """Margins -2 + Exp(0.2): P(margin >= 0) = exp(-10) = 4.5e-5, below 1 / 20,000 pairs."""
    rng = np.random.default_rng(11)
    pair_margins = -2.0 + rng.exponential(0.2, 20_000)
    triples, photo = one_triple_per_pair(rng.integers(0, 17, 20_000))

    fit = tail_fit(triples, pair_margins, photo=photo, rule=(8, 80))

    assert (pair_margins < 0).all()
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
    pair_margins = -2.0 + 0.05 * (16 - phash) + rng.exponential(0.2, 20_000)
    triples, photo = one_triple_per_pair(phash, pdq=70)
    nominated = phash[phash <= 8]

    fit = tail_fit(triples, pair_margins, photo=photo, rule=(8, 80))

    assert fit["coefficients"]["per_phash_bit"] == pytest.approx(-0.05, abs=0.005)
    assert fit["rule_pairs"] == len(nominated)
    assert fit["share_fitted"] == pytest.approx(np.mean(np.exp(-(1.2 + 0.05 * nominated) / 0.2)), rel=0.6)


def test_tail_fit_without_pairs_in_the_rule_takes_its_most_alike_corner() -> None:
    rng = np.random.default_rng(13)
    phash = rng.integers(9, 17, 20_000)  # none within the rule's pHash 8
    pair_margins = -2.0 + 0.05 * (16 - phash) + rng.exponential(0.2, 20_000)
    triples, photo = one_triple_per_pair(phash)

    fit = tail_fit(triples, pair_margins, photo=photo, rule=(8, 80))

    assert fit["rule_pairs"] == 0
    # the corner pHash 0 lies outside the measured 9..16: kept at 9, location -2 + 0.35 + 0.2
    assert fit["location_at_rule"] == pytest.approx(-1.45, abs=0.03)
    assert fit["share_fitted"] == pytest.approx(np.exp(-(2.0 - 0.35) / 0.2), rel=0.6)


def test_a_fit_that_predicts_too_few_is_raised_to_what_was_counted() -> None:
    """A tail heavier than exponential (Pareto): the fit under-predicts the far tail, and the
    split-half check at the 10th-highest margin raises the share by observed / predicted."""
    rng = np.random.default_rng(14)
    pair_margins = -3.0 + (rng.pareto(2.0, 20_000) * 0.2)
    triples, photo = one_triple_per_pair(rng.integers(0, 17, 20_000))

    fit = tail_fit(triples, pair_margins, photo=photo, rule=(8, 80))

    tenth = next(check for check in fit["split_half_check"] if check["rank"] == 10)
    assert tenth["observed"] > tenth["predicted"]
    assert fit["calibration"] == pytest.approx(tenth["observed"] / tenth["predicted"])
    assert fit["share"] > fit["share_fitted"]
