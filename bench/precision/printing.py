"""The report of bench/precision for a reader, section by section (the same numbers as --json)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.precision.estimates import TARGET_AT_1E8
from bench.precision.pairs import ALL_DIFFERENT, HEADLINE, UNDEFINED
from bench.verification_tail import CALIBRATION_RANK


def fmt(value: float | None) -> str:
    """A probability or an expected count, short."""
    if value is None or not np.isfinite(value):
        return "-"
    if value == 0:
        return "0"
    return f"{value:.2g}" if 0.01 <= value < 1000 else f"{value:.1e}"


def short(name: str) -> str:
    """A picture's name without the unpacked package's folders."""
    package, _, rest = name.partition("/")
    for prefix in (
        "usr/share/doc/opencv-doc/examples/",
        "usr/share/backgrounds/",
        "usr/share/wallpapers/",
        "usr/share/stellarium/nebulae/default/",
        "usr/share/tuxpaint/stamps/",
        "usr/share/",
        "usr/lib/python3/dist-packages/skimage/data/",
        "carved/",
    ):
        if rest.startswith(prefix):
            rest = rest[len(prefix) :]
            break
    return f"{package}:{rest.replace('/contents/images/', '/')}"


def print_report(report: dict[str, Any], elapsed: float) -> None:
    """The report for a reader, section by section (the same numbers as --json)."""
    for section in (
        _print_corpus,
        _print_distributions,
        _print_false_matches,
        _print_estimates,
        _print_grid,
        _print_recommendation,
        _print_closest_pairs,
        print_verification,
        print_frontier,
    ):
        section(report)
    print(f"\n({elapsed:.0f} s)")


def _print_corpus(report: dict[str, Any]) -> None:
    rule, corpus = report["rule"], report["corpus"]
    print("Precision at scale: false matches between unrelated real pictures")
    print(
        f"rule (current config): a query variant with pHash <= {rule['phash_max_distance']} AND PDQ <= "
        f"{rule['pdq_max_distance']}, PDQ quality >= {corpus['min_quality']}; "
        f"{report['variants_per_query_mean']:.1f} variants per query on average"
    )
    print(
        f"\npictures: {corpus['gathered']} gathered, {corpus['hashed']} hashed, "
        f"{corpus['refused_by_decoder']} refused by decode_picture, {corpus['below_quality']} below PDQ "
        f"quality {corpus['min_quality']} (left out: the matcher ignores them), {corpus['used']} used.\n"
        f"Photographs of {corpus['tile_from']} px and more are cut into {corpus['tile_side']} px tiles that "
        "do not overlap."
    )
    for package, row in corpus["per_package"].items():
        print(
            f"  {package:27s} {row['used']:5d} used: {row['whole_used']:4d} whole + {row['tiles_used']:4d} "
            f"tiles, of {row['photographs_used']:3d} photographs; {row['why']}"
        )


def _print_distributions(report: dict[str, Any]) -> None:
    a_rule = report["rule"]["phash_max_distance"]
    print("\nDistances between unrelated pictures: cumulative pair counts at or below each distance")
    for name in (HEADLINE, ALL_DIFFERENT, "tiles of one photograph"):
        population = report["populations"][name]
        d = population["distributions"]
        print(f"  {name}: {population['pairs']:,} ordered pairs, {population['samples']:,} samples")
        within = d["pdq_min_over_variants_within_phash_radius"][:UNDEFINED]
        for label, values, points in (
            ("pHash, each (variant, entry)", d["phash_per_variant_entry"], range(0, 25, 2)),
            ("pHash, min over variants", d["phash_min_over_variants"], range(0, 25, 2)),
            ("pHash, whole picture (baseline)", d["plain_phash_whole_picture"], range(0, 25, 2)),
            ("PDQ, each (variant, entry)", d["pdq_per_variant_entry"], range(40, 121, 10)),
            ("PDQ, min over variants", d["pdq_min_over_variants"], range(40, 121, 10)),
            (f"PDQ, min over variants with pHash <= {a_rule}", within, range(40, 121, 10)),
        ):
            cells = " ".join(f"{k}:{v}" for k, v in cumulative_at(values, points).items())
            print(f"    {label:44s} median {median_of(values):3d} | {cells}")
    print(f"  {HEADLINE}: PDQ (min over variants) of the pairs with a variant within pHash radius a:")
    conditional = report["populations"][HEADLINE]["conditional_by_radius"]
    for half in (conditional[:5], conditional[5:]):
        quantiles = (
            f"a={r['phash_radius']}: n={r['pairs']} 1%={r['q1']} 10%={r['q10']} 50%={r['q50']}" for r in half
        )
        print("    " + "  ".join(quantiles))


def _print_false_matches(report: dict[str, Any]) -> None:
    a_rule, b_rule = report["rule"]["phash_max_distance"], report["rule"]["pdq_max_distance"]
    print(f"\nFalse matches among the measured pairs (goal 0), rule pHash <= {a_rule} AND PDQ <= {b_rule}:")
    print(
        f"  {'pairs of':37s} {'pairs':>11s} {'rule':>5s} {'pHash<=' + str(a_rule):>9s} "
        f"{'PDQ<=' + str(b_rule):>7s} {'baseline: whole-picture pHash<=6':>33s}"
    )
    for name, population in report["populations"].items():
        f = population["false_matches"]
        print(
            f"  {name:37s} {population['pairs']:11,d} {f['rule']:5d} {f['phash_alone']:9d} "
            f"{f['pdq_alone']:7d} {f['baseline_plain_phash_le_6']:33d}"
        )


def _print_estimates(report: dict[str, Any]) -> None:
    print("\nEstimated p = P(one unrelated pair matches); expected false matches per query = entries x p")
    print("  (A: pairs with a variant within the pHash radius x fitted PDQ tail among them, capped by PDQ")
    print("   alone; B: per (variant, entry), union bound; exponential tail on the lowest decade unless")
    print("   'normal')")
    print(
        f"  {'pairs of':37s} {'p rule':>8s} {'A':>8s} {'B':>8s} {'normal':>8s} {'pHash':>8s} {'PDQ':>8s} "
        f"{'baseline':>8s} | E at {'1e6':>7s} {'1e8':>7s} {'5.85e9':>7s}"
    )
    for name, population in report["populations"].items():
        e = population["estimates"]
        r = e["rule"]
        values = [r["p"], r["method_a"], e["rule_method_B"], e["rule_normal_tail"]]
        values += [e["phash_alone"], e["pdq_alone"], e["baseline_plain_phash_le_6"]]
        expected = " ".join(f"{fmt(x):>7s}" for x in r["expected_per_query"].values())
        print(f"  {name:37s} " + " ".join(f"{fmt(x):>8s}" for x in values) + f" |      {expected}")
    for name in (HEADLINE, ALL_DIFFERENT):
        for shape, backtest in report["populations"][name]["backtest"].items():
            if backtest:
                print(
                    f"  backtest, {name}, {shape} tail: PDQ alone fitted on distances with >= 200 pairs "
                    f"predicts {backtest['predicted_pairs']:.0f} pairs at <= {backtest['distance']}; "
                    f"measured {backtest['measured_pairs']}"
                )


def _print_grid(report: dict[str, Any]) -> None:
    goal = f"goal at 1e8 <= {TARGET_AT_1E8}"
    print(f"\nThreshold grid, {HEADLINE} (E = expected false matches per query, {goal});")
    print("recall = dev-set positives with a variant within the thresholds of their own original, of")
    print(f"{report['positives']} (current rule: {report['recall_rule']})")
    print(
        f"  {'pHash':>5s} {'PDQ':>4s} | {'measured':>8s} {'p':>8s} {'A':>8s} {'B':>8s} {'PDQ':>8s} "
        f"{'E 1e6':>8s} {'E 1e8':>8s} {'E 5.85e9':>8s} {'recall':>6s}"
    )
    for row in report["populations"][HEADLINE]["grid"]:
        estimates = (row["p"], row["p_method_A"], row["p_method_B"], row["p_pdq_alone"])
        print(
            f"  {row['phash']:5d} {row['pdq']:4d} | {row['measured']:8d} "
            + " ".join(f"{fmt(x):>8s}" for x in (*estimates, *row["expected_per_query"].values()))
            + f" {row['recall']:6d}"
        )


def _print_recommendation(report: dict[str, Any]) -> None:
    print(
        f"\nThresholds reaching E at 1e8 <= {TARGET_AT_1E8} for {HEADLINE} (the loosest PDQ radius per pHash "
        "radius), most recall first:"
    )
    if not report["recommendation"]:
        print("  none on the grid (pHash 4..16, PDQ 20..90)")
    for item in report["recommendation"][:10]:
        print(
            f"  pHash <= {item['phash']:2d}, PDQ <= {item['pdq']:2d}  p={fmt(item['p'])}  "
            f"E at 1e8 = {fmt(item['expected_at_1e8'])}  recall {item['recall']}/{report['positives']}  "
            f"(measured false matches: {item['measured']})"
        )


def _print_closest_pairs(report: dict[str, Any]) -> None:
    a_rule, b_rule = report["rule"]["phash_max_distance"], report["rule"]["pdq_max_distance"]
    print(
        f"\nClosest unrelated pairs (score = max(pHash/{a_rule}, PDQ/{b_rule}); <= 1 matches under the rule):"
    )
    for pair in report["closest_pairs"]:
        print(
            f"  {pair['score']:.2f} pHash {pair['phash']:2d} PDQ {pair['pdq']:3d} {pair['kind']:19s} "
            f"{short(pair['query'])} ~ {short(pair['entry'])} [{pair['variant']}]"
        )


def print_verification(report: dict[str, Any]) -> None:
    for key, population in (
        ("verification", "everyday photographs"),
        ("verification_all", "all pictures, different photographs (telescope pictures and cut-outs too)"),
    ):
        if report.get(key):
            _print_verification(report[key], population)


def print_frontier(report: dict[str, Any]) -> None:
    rows = report.get("frontier")
    if not rows:
        return
    print(
        "\nWhat more recall would cost (narrower and wider hash rules; "
        f"{report['positives']} dev-set copies; expected false matches per query at 1e8 after "
        "verification, same tail fit):"
    )
    populations = list(rows)
    labels = "; ".join(f"[{i + 1}] {name}" for i, name in enumerate(populations))
    print(f"  expected per query at 1e8: {labels}")
    print(
        f"  {'pHash <=':>8} {'PDQ <=':>7} {'copies found':>12} {'probes/variant':>14} "
        + " ".join(f"{f'[{i + 1}]':>10}" for i in range(len(populations)))
    )
    for i, first in enumerate(rows[populations[0]]):
        print(
            f"  {first['phash']:>8} {first['pdq']:>7} {first['copies_found']:>12} "
            f"{first['probes_per_variant']:>14} "
            + " ".join(f"{rows[name][i]['expected_at_1e8']:>10.3g}" for name in populations)
        )


def _print_verification(v: dict[str, Any], population: str) -> None:
    print(f"\nVerification of candidates (bot/verification.py), {population}:")
    minimums = v["minimums"]
    print(
        f"  minimums: shape >= {minimums['shape']}, detail >= {minimums['detail']}, "
        f"colour >= {minimums.get('colour')} (where both pictures have colour), both >= "
        f"{minimums.get('smooth')} for smooth entries (detail share < {minimums.get('smooth_below')}), "
        f"both >= {minimums.get('sparse')} for sparse ones (spread < {minimums.get('sparse_below')} cells)"
    )
    near = v["near_pairs"]
    print(f"  pairs verified through every variant within pHash {near['phash']}, PDQ {near['pdq']}")
    print(f"  {'pHash <=':>8} {'PDQ <=':>7} {'pairs':>7} {'accepted':>9} {'share':>8}")
    for ring in v["rings"]:
        share = ring["accepted"] / ring["pairs"] if ring["pairs"] else float("nan")
        print(f"  {ring['phash']:>8} {ring['pdq']:>7} {ring['pairs']:>7} {ring['accepted']:>9} {share:>8.4f}")
    print(
        f"  measured under the rule: {v['measured_rule']} unrelated pairs pass the hashes, "
        f"{v['measured_rule_and_verified']} of them the verification"
    )
    fit = v["tail_fit"]
    if "coefficients" in fit:
        c = fit["coefficients"]
        print(
            f"  tail fit over {fit['pairs']} pairs ({fit['method']}): margin = {c['intercept']:.3f} "
            f"{c['per_phash_bit']:+.4f}/pHash bit {c['per_pdq_bit']:+.4f}/PDQ bit + residual; "
            f"mean location of the {fit['rule_pairs']} pairs within the rule {fit['location_at_rule']:.3f}; "
            f"highest margins "
            f"{[round(m, 3) for m in fit['highest_margins']]}"
        )
        for check in fit["split_half_check"]:
            print(
                f"    split-half check, margin >= {check['level']:.3f} (rank {check['rank']}): "
                f"predicted {check['predicted']:.1f}, observed {check['observed']:.0f}"
            )
    if "share_fitted" in fit:
        print(
            f"  share reaching margin 0: fitted {fit['share_fitted']:.2e} x calibration "
            f"{fit['calibration']:.2f} (observed / predicted at rank {CALIBRATION_RANK}, at least 1)"
        )
    print(
        f"  share reaching margin 0 (tail fit): {v['factor']:.2e}; "
        f"p = {v['p_rule']:.2e} x share = {v['p_verified']:.2e}"
    )
    expected = v["expected_per_query"]
    print("  expected false matches per query: " + ", ".join(f"{n}: {x:.3g}" for n, x in expected.items()))
    positives = v["positives"]
    if positives:
        print(
            f"  dev-set copies the hashes find: {positives['found_by_hashes']}, "
            f"kept by the verification: {positives['kept']}; "
            f"lowest (shape, detail, colour): {positives['lowest']}"
        )


def cumulative_at(hist: Sequence[int] | np.ndarray, points: Sequence[int]) -> dict[int, int]:
    cumulative = np.cumsum(hist)
    return {d: int(cumulative[d]) for d in points}


def median_of(hist: Sequence[int] | np.ndarray) -> int:
    cumulative = np.cumsum(hist)
    return int(np.searchsorted(cumulative, cumulative[-1] / 2))
