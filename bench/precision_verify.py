"""The verification stage's share in precision.py: how many unrelated pairs the hashes let through
does the thumbnail check (bot/verification.py) still accept, and how many true copies does it keep?

Used by bench/precision.py. The hash rule's false-match probability p comes from there (all pairs,
tail fit); verification is too costly to run on all pairs (it aligns the query's region with each
entry's thumbnail), so it runs on every everyday (query variant, entry) pair near in both hashes
(pHash <= NEAR_PHASH and PDQ <= NEAR_PDQ), through the bot's own code: decode_picture,
hash_query_with_views, QueryViews.correlate against hash_entry's thumbnail, the configured
minimums. The share of pairs it accepts is printed for rings of stage-1 closeness from loose to
the rule; it rises as the hashes get closer (closer pairs look more alike), so the estimate takes it
at the tightest ring that holds at least FACTOR_MIN_PAIRS pairs, and when none of its pairs pass,
the one-sided 95 % upper bound (3 / pairs): p_verified = p_rule x that share.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import time
from pathlib import Path

import numpy as np

NEAR_PHASH, NEAR_PDQ = 16, 110
RINGS = ((16, 110), (14, 100), (12, 100), (12, 90), (10, 90), (8, 80))
FACTOR_MIN_PAIRS = 50
_worker_settings = None


def near_triples(corpus, headline_genre: int = 0) -> np.ndarray:  # type: ignore[no-untyped-def]
    """(M, 5) int64 rows (query, entry, variant, pHash distance, PDQ distance): every variant of
    every everyday query near an everyday entry of another photograph."""
    table = corpus.table
    rows = []
    everyday = np.flatnonzero(corpus.genre == headline_genre)
    entries_phash = table.entry_phash[everyday]
    for q in everyday.tolist():
        valid = table.query_variant[q] != ""
        phash = np.bitwise_count(table.query_phash[q][:, None] ^ entries_phash[None, :])
        variants, columns = np.nonzero((phash <= NEAR_PHASH) & valid[:, None])
        entries = everyday[columns]
        pdq = np.bitwise_count(table.query_pdq[q][variants] ^ table.entry_pdq[entries]).sum(axis=-1)
        keep = (pdq <= NEAR_PDQ) & (corpus.photo[entries] != corpus.photo[q])
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


def _correlate_task(task):  # type: ignore[no-untyped-def]
    """For the pictures of one photograph: decode each as a query, correlate its listed variants
    with the listed entry thumbnails -> [(row, shape, detail)]."""
    from photo_corpus import picture_bytes

    from bot.decoding import decode_picture
    from bot.hashing import hash_query_with_views

    pictures, jobs = task
    out = []
    for picture, data in picture_bytes(pictures):
        image = decode_picture(data, _worker_settings.decoding).image
        _, views = hash_query_with_views(image, _worker_settings.hashing)
        for row, variant, thumbnail, chroma in jobs[picture.name]:
            correlation = views.correlate(variant, thumbnail, chroma)
            colour = np.nan if correlation.colour is None else correlation.colour
            out.append((row, correlation.shape, correlation.detail, colour))
    return out


def correlate_pairs(corpus, triples: np.ndarray, *, cache: Path, key: str, workers: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    """(M, 3) float: the best placement's (shape, detail, colour) correlation of each triple, colour
    NaN where either picture is grey; cached."""
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
    scores = np.full((len(triples), 3), np.nan)
    started = time.perf_counter()
    print(
        f"  verifying {len(triples)} near pairs of {len(jobs)} queries on {workers} processes ...", flush=True
    )
    with multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
        for done, results in enumerate(pool.imap_unordered(_correlate_task, tasks), 1):
            for row, shape, detail, colour in results:
                scores[row] = (shape, detail, colour)
            if done % 200 == 0:
                print(f"  {done}/{len(tasks)} tasks, {time.perf_counter() - started:.0f} s", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, scores)
    return scores


def verification_report(  # type: ignore[no-untyped-def]
    corpus, settings, triples: np.ndarray, scores: np.ndarray, *, p_rule: float, positives_verified
) -> dict[str, object]:
    """Shares of near pairs the verification accepts per ring, and the estimate it gives."""
    rule = settings.matching
    passes = verified(scores, rule)
    pair_key = triples[:, 0] * len(corpus.names) + triples[:, 1]
    rings = []
    for a, b in RINGS:
        inside = (triples[:, 3] <= a) & (triples[:, 4] <= b)
        pairs = np.unique(pair_key[inside])
        accepted = np.unique(pair_key[inside & passes])
        rings.append({"phash": a, "pdq": b, "pairs": len(pairs), "accepted": len(accepted)})
    usable = [ring for ring in rings if ring["pairs"] >= FACTOR_MIN_PAIRS]
    basis = usable[-1] if usable else rings[0]
    # None accepted: the one-sided 95 % upper bound of a share measured as 0 of n is 3 / n.
    share = basis["accepted"] / basis["pairs"] if basis["accepted"] else 3 / max(1, basis["pairs"])
    p = p_rule * share
    return {
        "minimums": {
            "shape": rule.verify_min_shape,
            "detail": rule.verify_min_detail,
            "colour": rule.verify_min_colour,
        },
        "near_pairs": {"phash": NEAR_PHASH, "pdq": NEAR_PDQ, "triples": len(triples)},
        "rings": rings,
        "factor_ring": basis,
        "factor": share,
        "factor_is_upper_bound": basis["accepted"] == 0,
        "p_rule": p_rule,
        "p_verified": p,
        "expected_per_query": {f"{n:g}": p * n for n in (1e6, 1e8, 5.85e9)},
        "measured_rule_and_verified": rings[-1]["accepted"],
        "measured_rule": rings[-1]["pairs"],
        "positives": positives_verified,
    }


def verified(scores: np.ndarray, rule) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Which (shape, detail, colour) rows pass the rule's minimums (colour NaN: not compared)."""
    grey = (scores[:, 0] >= rule.verify_min_shape) & (scores[:, 1] >= rule.verify_min_detail)
    colour = scores[:, 2] if scores.shape[1] > 2 else np.full(len(scores), np.nan)
    return grey & (np.isnan(colour) | (colour >= rule.verify_min_colour))


def verify_positives(devset: Path, settings, rule_a: int, rule_b: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Dev-set copies the hashes find, and how many of them the verification keeps."""
    from bot.decoding import decode_picture
    from bot.hashing import hash_entry, hash_query_with_views
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
        close = np.flatnonzero((phash <= rule_a) & (pdq <= rule_b))
        if not close.size:
            continue
        found += 1
        best = max(
            (views.correlate(query.variants[i], entry.thumbnail, entry.chroma) for i in close),
            key=lambda c: min(c.shape, c.detail),
        )
        colour = None if best.colour is None else round(best.colour, 3)
        lowest.append((round(best.shape, 3), round(best.detail, 3), colour, name))
        kept += correlation_passes(
            best,
            min_shape=settings.matching.verify_min_shape,
            min_detail=settings.matching.verify_min_detail,
            min_colour=settings.matching.verify_min_colour,
        )
    lowest.sort(key=lambda item: min(item[0], item[1]))
    return {"found_by_hashes": found, "kept": kept, "lowest": lowest[:5]}


def print_verification(report: dict) -> None:  # type: ignore[type-arg]
    v = report.get("verification")
    if not v:
        return
    print("\nVerification of candidates (bot/verification.py), everyday photographs:")
    minimums = v["minimums"]
    print(
        f"  minimums: shape >= {minimums['shape']}, detail >= {minimums['detail']}, "
        f"colour >= {minimums.get('colour')} (where both pictures have colour)"
    )
    print(f"  {'pHash <=':>8} {'PDQ <=':>7} {'pairs':>7} {'accepted':>9} {'share':>8}")
    for ring in v["rings"]:
        share = ring["accepted"] / ring["pairs"] if ring["pairs"] else float("nan")
        print(f"  {ring['phash']:>8} {ring['pdq']:>7} {ring['pairs']:>7} {ring['accepted']:>9} {share:>8.4f}")
    basis = v["factor_ring"]
    bound = " (95% upper bound, none passed)" if v["factor_is_upper_bound"] else ""
    print(
        f"  measured under the rule: {v['measured_rule']} unrelated pairs pass the hashes, "
        f"{v['measured_rule_and_verified']} of them the verification"
    )
    print(
        f"  factor {v['factor']:.4f}{bound} from the ring pHash <= {basis['phash']}, PDQ <= {basis['pdq']} "
        f"({basis['accepted']}/{basis['pairs']}); p = {v['p_rule']:.2e} x factor = {v['p_verified']:.2e}"
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
