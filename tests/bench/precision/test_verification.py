"""bench/precision/verification.py: the rings of closeness and the frontier of hash rules."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bench.precision.verification import FRONTIER, frontier, rings, verification_report
from bench.verification_tail import margins, tail_fit
from bot.index.mih import probes_per_hash
from tests.bench.helpers import default_rule, one_triple_per_pair


def test_the_frontier_prices_each_wider_rule_at_its_own_pairs() -> None:
    """Closer hashes, higher margins: a wider rule nominates farther pairs as well, so its share
    is averaged over its own pairs and comes out lower than the narrow rule's."""
    rng = np.random.default_rng(15)
    phash = rng.integers(0, 17, 20_000)
    pair_margins = -2.0 + 0.05 * (16 - phash) + rng.exponential(0.2, 20_000)
    triples, photo = one_triple_per_pair(phash, pdq=70)
    rows = frontier(
        triples,
        pair_margins,
        photo=photo,
        p_rule_of=lambda a, b: 1e-7 * (a + b),
        found_of=lambda a, b: 1000 * a + b,
    )

    assert [(row["phash"], row["pdq"]) for row in rows] == list(FRONTIER)
    for row in rows:
        own = tail_fit(triples, pair_margins, photo=photo, rule=(row["phash"], row["pdq"]))
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


def test_a_pair_passes_through_its_best_variant() -> None:
    """Two variants of one pair: the pair's margin is the better one; rings count pairs."""
    rule = default_rule()
    triples = np.array([(0, 1, 0, 8, 80), (0, 1, 1, 8, 80), (2, 3, 0, 16, 110)], np.int64)
    scores = np.array([(0.5, 0.5, np.nan, 1.0), (0.99, 0.99, np.nan, 1.0), (0.5, 0.5, np.nan, 1.0)])

    report = verification_report(
        rule, triples, margins(scores, rule), photo=np.arange(4), p_rule=1e-6, positives_verified=None
    )

    ring = rings(rule)
    assert ring[0] == (rule.verify_near_phash, rule.verify_near_pdq)
    assert ring[-1] == (rule.phash_max_distance, rule.pdq_max_distance)
    assert verified_pairs(report) == {ring[0]: (2, 1), **dict.fromkeys(ring[1:], (1, 1))}
    assert rule.verify_min_shape < 0.99


def verified_pairs(report: dict[str, Any]) -> dict[tuple[int, int], tuple[int, int]]:
    return {(r["phash"], r["pdq"]): (r["pairs"], r["accepted"]) for r in report["rings"] if r["pairs"]}
