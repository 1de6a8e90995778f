"""Everything bench/precision prints, as JSON-ready values (``--json`` prints it as it is)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import numpy as np

from bench import BASELINE_PHASH_MAX_DISTANCE
from bench.photo_corpus import GENRES
from bench.precision.corpus import Corpus, Positives
from bench.precision.estimates import TARGET_AT_1E8, Estimator, recommend
from bench.precision.pairs import (
    HEADLINE,
    PHASH_BITS,
    POPULATIONS,
    SAME_PHOTO,
    UNDEFINED,
    PairStats,
    pair_kinds,
)
from bench.precision.tail_fit import fit_lower_tail
from bench.precision.verification import FRONTIER

PHASH_GRID = (6, 8, 10, 12, 16)
PDQ_GRID = (50, 60, 70, 80)


def build_report(
    corpus: Corpus, positives: Positives | None, stats: PairStats, rule: tuple[int, int]
) -> dict[str, Any]:
    """Everything the bench prints but the verification's sections (bench.precision.verification)."""
    rows = stats.near
    kinds = pair_kinds(corpus.genre, corpus.photo, rows[:, 0], rows[:, 1])
    estimators = {name: Estimator(stats, name, rows, kinds) for name in POPULATIONS}
    a_rule, b_rule = rule
    populations: dict[str, Any] = {}
    for name, est in estimators.items():
        hists = est.hists
        a_index = stats.a_values.index
        rule_estimate = est.estimate(a_rule, b_rule)
        populations[name] = {
            "pairs": est.pairs,
            "samples": int(hists["samples"]),
            "distributions": distributions(hists, stats.a_values, rule),
            "false_matches": {
                "rule": est.measured(a_rule, b_rule),
                "phash_alone": int(hists["min_phash"][: a_rule + 1].sum()),
                "pdq_alone": int(hists["min_pdq"][a_index(PHASH_BITS)][: b_rule + 1].sum()),
                "baseline_plain_phash_le_6": int(hists["plain"][: BASELINE_PHASH_MAX_DISTANCE + 1].sum()),
            },
            "estimates": {
                "rule": {**asdict(rule_estimate), "expected_per_query": rule_estimate.expected},
                "rule_method_B": est.method_b(a_rule, b_rule),
                "rule_normal_tail": est.estimate(a_rule, b_rule, shape="normal").p,
                "phash_alone": fit_lower_tail(hists["min_phash"], a_rule).probability,
                "pdq_alone": rule_estimate.pdq_alone,
                "baseline_plain_phash_le_6": fit_lower_tail(
                    hists["plain"], BASELINE_PHASH_MAX_DISTANCE
                ).probability,
            },
            "backtest": {shape: est.backtest(shape=shape) for shape in ("exp", "normal")},
            "conditional_by_radius": est.conditional_by_radius() if name == HEADLINE else [],
            "grid": [grid_row(est, positives, a, b) for a in PHASH_GRID for b in PDQ_GRID],
        }
    return {
        "rule": {"phash_max_distance": a_rule, "pdq_max_distance": b_rule},
        "target_expected_at_1e8": TARGET_AT_1E8,
        "corpus": corpus.info,
        "variants_per_query_mean": float(stats.samples.sum() / max(1, stats.pairs.sum())),
        "populations": populations,
        "positives": len(positives.names) if positives is not None else 0,
        "recall_rule": positives.found(*rule) if positives is not None else None,
        "recommendation": recommend(estimators[HEADLINE], positives),
        # the hash rule's p at the wider rules the verification's frontier prices
        "p_rule_at": {
            name: {f"{a},{b}": est.estimate(a, b).p for a, b in FRONTIER} for name, est in estimators.items()
        },
        "closest_pairs": closest_pairs(corpus, rows, kinds, rule),
    }


def distributions(
    hists: dict[str, np.ndarray], a_values: tuple[int, ...], rule: tuple[int, int]
) -> dict[str, list[int]]:
    """The distance distributions of one population, per hash kind, as plain lists."""
    joint = hists["joint"]
    return {
        "phash_per_variant_entry": joint.sum(axis=1).tolist(),
        "phash_min_over_variants": hists["min_phash"].tolist(),
        "plain_phash_whole_picture": hists["plain"].tolist(),
        "pdq_per_variant_entry": joint.sum(axis=0).tolist(),
        "pdq_min_over_variants": hists["min_pdq"][a_values.index(PHASH_BITS)][:UNDEFINED].tolist(),
        "pdq_min_over_variants_within_phash_radius": hists["min_pdq"][a_values.index(rule[0])].tolist(),
    }


def grid_row(est: Estimator, positives: Positives | None, a: int, b: int) -> dict[str, Any]:
    estimate = est.estimate(a, b)
    return {
        "phash": a,
        "pdq": b,
        "measured": estimate.measured_pairs,
        "p": estimate.p,
        "p_method_A": estimate.method_a,
        "p_pdq_alone": estimate.pdq_alone,
        "p_method_B": est.method_b(a, b),
        "pooled_radius": estimate.pooled_radius,
        "expected_per_query": estimate.expected,
        "recall": positives.found(a, b) if positives is not None else None,
    }


def closest_pairs(
    corpus: Corpus, near: np.ndarray, kinds: np.ndarray, rule: tuple[int, int], count: int = 12
) -> list[dict[str, Any]]:
    """The unrelated pairs closest to matching: score max(pHash/a, PDQ/b) <= 1 is a match."""
    score = np.maximum(near[:, 3] / rule[0], near[:, 4] / rule[1])
    seen: set[tuple[int, int]] = set()
    found: list[dict[str, Any]] = []
    for row in np.argsort(score, kind="stable"):
        q, e, v, ph, pd = (int(x) for x in near[row])
        pair = (min(q, e), max(q, e))
        if pair in seen or kinds[row] == SAME_PHOTO:
            continue
        seen.add(pair)
        found.append(
            {
                "score": float(score[row]),
                "phash": ph,
                "pdq": pd,
                "variant": str(corpus.table.query_variant[q, v]),
                "query": str(corpus.names[q]),
                "entry": str(corpus.names[e]),
                "kind": f"{GENRES[corpus.genre[q]]}/{GENRES[corpus.genre[e]]}",
            }
        )
        if len(found) == count:
            break
    return found


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(_finite(report), default=_json_default, allow_nan=False)


def _finite(value: object) -> object:
    """The report with NaN and infinities (nothing to fit, nothing measured) as null: strict JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return None
    return value


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
