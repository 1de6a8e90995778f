"""The verification stage's share in precision.py: how many unrelated pairs the hashes let through
does the thumbnail check (bot/verification.py) still accept, and how many true copies does it keep?

Used by bench/precision.py. The hash rule's false-match probability p comes from there (all pairs,
tail fit); verification is too costly to run on all pairs (it aligns the query's region with each
entry's thumbnail), so it runs on every (query variant, entry) pair of different photographs near
in both hashes (``[matching] verify_near_*``: the bot verifies a candidate through any variant
that near), through the bot's own code: decode_picture, hash_query_with_views,
QueryViews.correlate against hash_entry's thumbnail, the configured minimums. Everyday
photographs are the headline; all pictures (telescope pictures and cut-outs too) are reported
beside them.

How often does the verification let an unrelated near pair through? Too rarely to count: the
goal (0.01 expected false matches per query at 1e8) needs a share near 1e-4, and the corpus has
~8,000 near pairs. So the share is estimated by a stated tail fit, checked against what can be
counted:

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
is raised by their ratio (never lowered), so that the estimate errs high. The empirical share per
ring of closeness is printed too.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

NEAR_PHASH, NEAR_PDQ = 16, 110
RINGS = ((16, 110), (14, 100), (12, 100), (12, 90), (10, 90), (8, 80))
# Hash rules the search could use (pHash, PDQ), within the near pairs verified: what each wider
# one would win back in recall and cost in probes and false matches, and what a narrower one
# would save and lose.
FRONTIER = ((6, 60), (6, 70), (8, 80), (10, 90), (12, 100), (14, 100), (16, 110))
TAIL_QUANTILE = 0.95  # the residuals above this quantile are the fitted tail
CALIBRATION_RANK = 10  # the split-half check at this rank (the steadiest count) calibrates the fit
_worker_settings = None


def near_triples(
    corpus, near: tuple[int, int] = (NEAR_PHASH, NEAR_PDQ), *, everyday_only: bool = True
) -> np.ndarray:  # type: ignore[no-untyped-def]
    """(M, 5) int64 rows (query, entry, variant, pHash distance, PDQ distance): every variant of
    every (everyday) query near an (everyday) entry of another photograph (the bot verifies a
    candidate through any variant this near: ``[matching] verify_near_*``)."""
    near_phash, near_pdq = near
    table = corpus.table
    rows = []
    everyday = np.flatnonzero(corpus.genre == 0) if everyday_only else np.arange(len(corpus.genre))
    entries_phash = table.entry_phash[everyday]
    for q in everyday.tolist():
        valid = table.query_variant[q] != ""
        phash = np.bitwise_count(table.query_phash[q][:, None] ^ entries_phash[None, :])
        variants, columns = np.nonzero((phash <= near_phash) & valid[:, None])
        entries = everyday[columns]
        pdq = np.bitwise_count(table.query_pdq[q][variants] ^ table.entry_pdq[entries]).sum(axis=-1)
        keep = (pdq <= near_pdq) & (corpus.photo[entries] != corpus.photo[q])
        count = int(keep.sum())
        rows.append(
            np.stack(
                [
                    np.full(count, q),
                    entries[keep],
                    variants[keep],
                    phash[variants[keep], columns[keep]],
                    pdq[keep],
                ],
                axis=1,
            )
        )
    return np.concatenate(rows).astype(np.int64) if rows else np.zeros((0, 5), np.int64)


def _init_worker() -> None:
    global _worker_settings  # noqa: PLW0603 - one settings object per worker process
    from bot.config import load_settings

    _worker_settings = load_settings(with_deployment_files=False)


# The columns of a verification score row, in order (colour NaN where either picture is grey).
SCORE_COLUMNS = ("shape", "detail", "colour", "entry_detail_share", "entry_spread")


def _correlate_task(task):  # type: ignore[no-untyped-def]
    """For the pictures of one photograph: decode each as a query, correlate its listed variants
    with the listed entry thumbnails -> [(row, *SCORE_COLUMNS)]."""
    from bench.photo_corpus import picture_bytes
    from bot.decoding import decode_picture
    from bot.hashing import hash_query_with_views

    pictures, jobs = task
    out = []
    for picture, data in picture_bytes(pictures):
        image = decode_picture(data, _worker_settings.decoding).image
        _, views = hash_query_with_views(image, _worker_settings.hashing)
        for row, variant, thumbnail, chroma in jobs[picture.name]:
            correlation = views.correlate(variant, thumbnail, chroma)
            values = [getattr(correlation, column) for column in SCORE_COLUMNS]
            out.append((row, *(np.nan if value is None else value for value in values)))
    return out


def correlate_pairs(corpus, triples: np.ndarray, *, cache: Path, key: str, workers: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    """(M, len(SCORE_COLUMNS)) float: the best placement's (shape, detail, colour) correlation of
    each triple, colour NaN where either picture is grey, and the entry's detail share and spread;
    cached."""
    digest = hashlib.sha256(key.encode() + triples.tobytes()).hexdigest()[:20]
    path = cache / "hashes" / f"verify-{digest}.npy"
    if path.exists():
        return np.load(path)
    table = corpus.table
    jobs: dict[str, list] = {}  # type: ignore[type-arg]
    for row, (q, e, v, _, _) in enumerate(triples.tolist()):
        jobs.setdefault(corpus.names[q], []).append(
            (row, str(table.query_variant[q, v]), table.entry_thumbnail[e], table.entry_chroma[e])
        )
    by_photo: dict[str, list] = {}  # type: ignore[type-arg]
    for picture in corpus.pictures:
        if picture.name in jobs:
            by_photo.setdefault(picture.photo, []).append(picture)
    tasks = [
        (chunk, {p.name: jobs[p.name] for p in chunk})
        for members in by_photo.values()
        for chunk in (members[s : s + 16] for s in range(0, len(members), 16))
    ]
    scores = np.full((len(triples), len(SCORE_COLUMNS)), np.nan)
    started = time.perf_counter()
    print(
        f"  verifying {len(triples)} near pairs of {len(jobs)} queries on {workers} processes ...", flush=True
    )
    with multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
        for done, results in enumerate(pool.imap_unordered(_correlate_task, tasks), 1):
            for row, *values in results:
                scores[row] = values
            if done % 200 == 0:
                print(f"  {done}/{len(tasks)} tasks, {time.perf_counter() - started:.0f} s", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, scores)
    return scores


def verification_report(  # type: ignore[no-untyped-def]
    corpus, settings, triples: np.ndarray, margin: np.ndarray, *, p_rule: float, positives_verified
) -> dict[str, object]:
    """Shares of near pairs the verification accepts per ring, and the tail-fit estimate, from
    each triple's :func:`margins` (>= 0 exactly where the verification accepts it)."""
    rule = settings.matching
    passes = margin >= 0
    pair_key = triples[:, 0] * len(corpus.names) + triples[:, 1]
    rings = []
    for a, b in RINGS:
        inside = (triples[:, 3] <= a) & (triples[:, 4] <= b)
        pairs = np.unique(pair_key[inside])
        accepted = np.unique(pair_key[inside & passes])
        rings.append({"phash": a, "pdq": b, "pairs": len(pairs), "accepted": len(accepted)})
    photo = np.asarray(getattr(corpus, "photo", np.arange(len(corpus.names))))
    fit = tail_fit(
        triples,
        margin,
        photo=photo,
        rule=(rule.phash_max_distance, rule.pdq_max_distance),
    )
    p = p_rule * fit["share"]
    return {
        "minimums": {
            "shape": rule.verify_min_shape,
            "detail": rule.verify_min_detail,
            "colour": rule.verify_min_colour,
            "smooth": rule.verify_min_smooth,
            "smooth_below": rule.verify_smooth_below,
            "sparse": rule.verify_min_sparse,
            "sparse_below": rule.verify_sparse_below,
        },
        "near_pairs": {"phash": rule.verify_near_phash, "pdq": rule.verify_near_pdq, "triples": len(triples)},
        "rings": rings,
        "tail_fit": fit,
        "factor": fit["share"],
        "p_rule": p_rule,
        "p_verified": p,
        "expected_per_query": {f"{n:g}": p * n for n in (1e6, 1e8, 5.85e9)},
        "measured_rule_and_verified": rings[-1]["accepted"],
        "measured_rule": rings[-1]["pairs"],
        "positives": positives_verified,
    }


def frontier(
    triples: np.ndarray,
    margin: np.ndarray,
    *,
    photo: np.ndarray,
    p_rule_of: Callable[[int, int], float],
    found_of: Callable[[int, int], int],
) -> list[dict[str, float]]:
    """For each rule of FRONTIER: the dev-set copies its hashes find (``found_of(a, b)``), the
    buckets the exact search probes per query variant, the hash rule's p per pair
    (``p_rule_of(a, b)``) and the verified estimate (the same tail fit of the triples' margins,
    located at that rule's pairs): the price in speed and in false matches of each step toward
    more recall."""
    from bot.index.mih import probes_per_hash

    rows = []
    for a, b in FRONTIER:
        fit = tail_fit(triples, margin, photo=photo, rule=(a, b))
        p_rule = p_rule_of(a, b)
        rows.append(
            {
                "phash": a,
                "pdq": b,
                "copies_found": found_of(a, b),
                "probes_per_variant": probes_per_hash(a),
                "p_rule": p_rule,
                "share": fit["share"],
                "expected_at_1e8": p_rule * fit["share"] * 1e8,
            }
        )
    return rows


def margins(scores: np.ndarray, rule) -> np.ndarray:  # type: ignore[no-untyped-def]
    """(M,) the smallest atanh(score) - atanh(minimum) over the checks that apply to each triple;
    >= 0 exactly where :func:`verified` accepts it."""
    shape_min, detail_min = _grey_minimums(scores, rule)
    colour = _column(scores, 2)
    colour_margin = np.where(np.isnan(colour), np.inf, _atanh(colour) - _atanh(rule.verify_min_colour))
    return np.minimum.reduce(
        [_atanh(scores[:, 0]) - _atanh(shape_min), _atanh(scores[:, 1]) - _atanh(detail_min), colour_margin]
    )


def tail_fit(
    triples: np.ndarray,
    margin: np.ndarray,
    *,
    photo: np.ndarray,
    rule: tuple[int, int],
    in_rule_triples: np.ndarray | None = None,
) -> dict[str, object]:
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


def verified(scores: np.ndarray, rule) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Which (shape, detail, colour, entry detail share, entry spread) rows pass the rule's
    minimums (colour NaN: not compared; the smooth and sparse minimums where they apply)."""
    shape_min, detail_min = _grey_minimums(scores, rule)
    grey = (scores[:, 0] >= shape_min) & (scores[:, 1] >= detail_min)
    colour = _column(scores, 2)
    return grey & (np.isnan(colour) | (colour >= rule.verify_min_colour))


def _grey_minimums(scores: np.ndarray, rule) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """Per row, the bot's own (shape, detail) minimums for the entry's detail share and spread
    (NaN or a missing column: judged by the ordinary minimums)."""
    from bot.verification import grey_minimums

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


def verify_positives(devset: Path, settings, rule_a: int, rule_b: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Dev-set copies the hashes find, and how many of them the verification keeps."""
    from bot.decoding import decode_picture
    from bot.hashing import hash_entry, hash_query_with_views
    from bot.matching import verification_order
    from bot.verification import correlation_passes

    truth = json.loads((devset / "truth.json").read_text())
    originals = {p.stem: p for p in (devset / "index").iterdir()}
    found = kept = 0
    lowest: list[tuple[float, float, float | None, str]] = []
    for name, original in sorted(truth.items()):
        copy = devset / "pos" / name
        if original not in originals or not copy.exists():
            continue
        entry = hash_entry(
            decode_picture(originals[original].read_bytes(), settings.decoding).image, settings.hashing
        )
        query, views = hash_query_with_views(
            decode_picture(copy.read_bytes(), settings.decoding).image, settings.hashing
        )
        if min(entry.quality, query.quality) < settings.matching.pdq_min_quality:
            continue
        phash = np.bitwise_count(query.phash ^ np.uint64(entry.phash))
        pdq = np.bitwise_count(query.pdq ^ entry.pdq).sum(axis=1)
        if not ((phash <= rule_a) & (pdq <= rule_b)).any():
            continue
        found += 1
        # as the search does: the variants within the rule, then the others near enough
        rule = settings.matching
        within_rule = [
            int(i) for i in np.argsort(pdq, kind="stable") if phash[i] <= rule_a and pdq[i] <= rule_b
        ]
        order = verification_order(query, entry.phash, entry.pdq, rule, within_rule)
        tried = [views.correlate(query.variants[i], entry.thumbnail, entry.chroma) for i in order]
        passing = [c for c in tried if correlation_passes(c, rule)]
        best = max(passing or tried, key=lambda c: min(c.shape, c.detail))
        colour = None if best.colour is None else round(best.colour, 3)
        lowest.append((round(best.shape, 3), round(best.detail, 3), colour, name))
        kept += bool(passing)
    lowest.sort(key=lambda item: min(item[0], item[1]))
    return {"found_by_hashes": found, "kept": kept, "lowest": lowest[:5]}


def print_verification(report: dict) -> None:  # type: ignore[type-arg]
    for key, population in (
        ("verification", "everyday photographs"),
        ("verification_all", "all pictures, different photographs (telescope pictures and cut-outs too)"),
    ):
        if report.get(key):
            _print_verification(report[key], population)


def print_frontier(report: dict) -> None:  # type: ignore[type-arg]
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


def _print_verification(v: dict, population: str) -> None:  # type: ignore[type-arg]
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
