"""The verification stage's share: how many unrelated pairs the hashes let through does the
thumbnail check (bot/verification.py) still accept, and how many true copies does it keep?

The hash rule's false-match probability p comes from the pair scan (all pairs, tail fit);
verification is too costly to run on all pairs (it aligns the query's region with each entry's
thumbnail), so it runs on every (query variant, entry) pair of different photographs near in both
hashes (``[matching] verify_near_*``: the bot verifies a candidate through any variant that near),
through the bot's own code: decode_picture, hash_query_with_views, QueryViews.correlate against
hash_entry's thumbnail, the configured minimums. Everyday photographs are the headline; all
pictures (telescope pictures and cut-outs too) are reported beside them.

How often does the verification let an unrelated near pair through? Too rarely to count: the goal
(0.01 expected false matches per query at 1e8) needs a share near 1e-4, and the corpus has ~8,000
near pairs. So the share is estimated by the tail fit of bench/verification_tail.py, checked
against what can be counted; the empirical share per ring of closeness is printed too.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.photo_corpus import Picture, picture_bytes
from bench.precision.corpus import Corpus, Positives
from bench.precision.estimates import SCALES
from bench.precision.hashes import settings_key
from bench.precision.pairs import ALL_DIFFERENT, HEADLINE
from bench.verification_tail import SCORE_COLUMNS, margins, tail_fit
from bot.config import MatchingSettings, Settings, load_settings
from bot.decoding import decode_picture
from bot.hashing import hash_entry, hash_query_with_views
from bot.index.mih import probes_per_hash
from bot.matching import verification_order
from bot.verification import correlation_passes

# Rings of closeness between the near pairs (``verify_near_*``) and the hash rule, both read from
# the config: the share of pairs the verification accepts in each.
RINGS_BETWEEN = ((14, 100), (12, 100), (12, 90), (10, 90))
# Hash rules the search could use (pHash, PDQ), within the near pairs verified: what each wider
# one would win back in recall and cost in probes and false matches, and what a narrower one
# would save and lose.
FRONTIER = ((6, 60), (6, 70), (8, 80), (10, 90), (12, 100), (14, 100), (16, 110))


def rings(rule: MatchingSettings) -> tuple[tuple[int, int], ...]:
    """(pHash, PDQ) radii from the near pairs' to the hash rule's (the last ring)."""
    near = (rule.verify_near_phash, rule.verify_near_pdq)
    return (near, *RINGS_BETWEEN, (rule.phash_max_distance, rule.pdq_max_distance))


def measure(
    corpus: Corpus,
    positives: Positives | None,
    report: dict[str, Any],
    settings: Settings,
    *,
    cache: Path,
    devset: Path,
    workers: int,
) -> dict[str, Any]:
    """The report's verification sections: per population, the shares and the tail-fit estimate
    (from the hash rule's p in ``report``), and what wider or narrower hash rules would cost."""
    rule = settings.matching
    triples = near_triples(corpus, (rule.verify_near_phash, rule.verify_near_pdq))
    scores = correlate_pairs(corpus, triples, cache=cache, key=settings_key(settings), workers=workers)
    verified_positives = verify_positives(devset, settings) if positives is not None else None
    everyday = (corpus.genre[triples[:, 0]] == 0) & (corpus.genre[triples[:, 1]] == 0)
    margin = margins(scores, rule)  # once: the rule per row is a loop
    sections: dict[str, Any] = {}
    for key, name, subset, with_positives in (
        ("verification", HEADLINE, everyday, verified_positives),
        ("verification_all", ALL_DIFFERENT, slice(None), None),
    ):
        sections[key] = verification_report(
            rule,
            triples[subset],
            margin[subset],
            photo=corpus.photo,
            p_rule=report["populations"][name]["estimates"]["rule"]["p"],
            positives_verified=with_positives,
        )

    def p_rule_in(population: str) -> Callable[[int, int], float]:
        return lambda a, b: report["p_rule_at"][population][f"{a},{b}"]

    def found(a: int, b: int) -> int:
        return positives.found(a, b) if positives is not None else 0

    sections["frontier"] = {
        name: frontier(
            triples[subset], margin[subset], photo=corpus.photo, p_rule_of=p_rule_in(name), found_of=found
        )
        for name, subset in ((HEADLINE, everyday), (ALL_DIFFERENT, slice(None)))
    }
    return sections


def near_triples(corpus: Corpus, near: tuple[int, int]) -> np.ndarray:
    """(M, 5) int64 rows (query, entry, variant, pHash distance, PDQ distance): every variant of
    every query near an entry of another photograph (the bot verifies a candidate through any
    variant this near: ``[matching] verify_near_*``)."""
    near_phash, near_pdq = near
    table = corpus.table
    rows = []
    everyone = np.arange(len(corpus.genre))
    for q in everyone.tolist():
        valid = table.query_variant[q] != ""
        phash = np.bitwise_count(table.query_phash[q][:, None] ^ table.entry_phash[None, :])
        variants, entries = np.nonzero((phash <= near_phash) & valid[:, None])
        pdq = np.bitwise_count(table.query_pdq[q][variants] ^ table.entry_pdq[entries]).sum(axis=-1)
        keep = (pdq <= near_pdq) & (corpus.photo[entries] != corpus.photo[q])
        count = int(keep.sum())
        rows.append(
            np.stack(
                [
                    np.full(count, q),
                    entries[keep],
                    variants[keep],
                    phash[variants[keep], entries[keep]],
                    pdq[keep],
                ],
                axis=1,
            )
        )
    return np.concatenate(rows).astype(np.int64) if rows else np.zeros((0, 5), np.int64)


# The pictures of one photograph, and per picture the (row, variant, thumbnail, chroma) to correlate.
_Task = tuple[list[Picture], dict[str, list[tuple[int, str, np.ndarray, np.ndarray]]]]
_worker_settings: Settings | None = None


def _init_worker() -> None:
    global _worker_settings  # noqa: PLW0603 - one settings object per worker process
    _worker_settings = load_settings(with_deployment_files=False)


def _correlate_task(task: _Task) -> list[tuple[int, tuple[float, ...]]]:
    """For the pictures of one photograph: decode each as a query, correlate its listed variants
    with the listed entry thumbnails -> [(row, SCORE_COLUMNS)]."""
    assert _worker_settings is not None
    pictures, jobs = task
    out = []
    for picture, data in picture_bytes(pictures):
        image = decode_picture(data, _worker_settings.decoding).image
        _, views = hash_query_with_views(image, _worker_settings.hashing)
        for row, variant, thumbnail, chroma in jobs[picture.name]:
            correlation = views.correlate(variant, thumbnail, chroma)
            values = [getattr(correlation, column) for column in SCORE_COLUMNS]
            out.append((row, tuple(np.nan if value is None else value for value in values)))
    return out


def correlate_pairs(
    corpus: Corpus, triples: np.ndarray, *, cache: Path, key: str, workers: int
) -> np.ndarray:
    """(M, len(SCORE_COLUMNS)) float: the best placement's (shape, detail, colour) correlation of
    each triple, colour NaN where either picture is grey, and the entry's detail share and spread;
    cached."""
    digest = hashlib.sha256(key.encode() + triples.tobytes()).hexdigest()[:20]
    path = cache / "hashes" / f"verify-{digest}.npy"
    if path.exists():
        return np.load(path)
    table = corpus.table
    jobs: dict[str, list[tuple[int, str, np.ndarray, np.ndarray]]] = {}
    for row, (q, e, v, _, _) in enumerate(triples.tolist()):
        jobs.setdefault(corpus.names[q], []).append(
            (row, str(table.query_variant[q, v]), table.entry_thumbnail[e], table.entry_chroma[e])
        )
    by_photo: dict[str, list[Picture]] = {}
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
            for row, values in results:
                scores[row] = values
            if done % 200 == 0:
                print(f"  {done}/{len(tasks)} tasks, {time.perf_counter() - started:.0f} s", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, scores)
    return scores


def verification_report(
    rule: MatchingSettings,
    triples: np.ndarray,
    margin: np.ndarray,
    *,
    photo: np.ndarray,
    p_rule: float,
    positives_verified: dict[str, Any] | None,
) -> dict[str, Any]:
    """Shares of near pairs the verification accepts per ring, and the tail-fit estimate, from
    each triple's :func:`bench.verification_tail.margins` (>= 0 exactly where the verification
    accepts it); ``photo``: the photograph of each picture the triples name."""
    passes = margin >= 0
    pair_key = triples[:, 0] * len(photo) + triples[:, 1]
    counted = []
    for a, b in rings(rule):
        inside = (triples[:, 3] <= a) & (triples[:, 4] <= b)
        pairs = np.unique(pair_key[inside])
        accepted = np.unique(pair_key[inside & passes])
        counted.append({"phash": a, "pdq": b, "pairs": len(pairs), "accepted": len(accepted)})
    fit = tail_fit(triples, margin, photo=photo, rule=(rule.phash_max_distance, rule.pdq_max_distance))
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
        "rings": counted,
        "tail_fit": fit,
        "factor": fit["share"],
        "p_rule": p_rule,
        "p_verified": p,
        "expected_per_query": {f"{n:g}": p * n for n in SCALES},
        "measured_rule_and_verified": counted[-1]["accepted"],
        "measured_rule": counted[-1]["pairs"],
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


def verify_positives(devset: Path, settings: Settings) -> dict[str, Any]:
    """Dev-set copies the hash rule finds, and how many of them the verification keeps."""
    rule = settings.matching
    rule_a, rule_b = rule.phash_max_distance, rule.pdq_max_distance
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
        assert entry.thumbnail is not None, "hash_entry keeps a thumbnail"
        if min(entry.quality, query.quality) < rule.pdq_min_quality:
            continue
        phash = np.bitwise_count(query.phash ^ np.uint64(entry.phash))
        pdq = np.bitwise_count(query.pdq ^ entry.pdq).sum(axis=1)
        if not ((phash <= rule_a) & (pdq <= rule_b)).any():
            continue
        found += 1
        # as the search does: the variants within the rule, then the others near enough
        within_rule = [
            int(i) for i in np.argsort(pdq, kind="stable") if phash[i] <= rule_a and pdq[i] <= rule_b
        ]
        order = verification_order(query, entry.signals, rule, within_rule)
        tried = [views.correlate(query.variants[i], entry.thumbnail, entry.chroma) for i in order]
        passing = [c for c in tried if correlation_passes(c, rule)]
        best = max(passing or tried, key=lambda c: min(c.shape, c.detail))
        colour = None if best.colour is None else round(best.colour, 3)
        lowest.append((round(best.shape, 3), round(best.detail, 3), colour, name))
        kept += bool(passing)
    lowest.sort(key=lambda item: min(item[0], item[1]))
    return {"found_by_hashes": found, "kept": kept, "lowest": lowest[:5]}
