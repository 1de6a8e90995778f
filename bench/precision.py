"""Precision at scale: how often does the matcher match two UNRELATED real pictures?

Usage: python -m bench.precision [--pictures N] [--cache DIR] [--devset DIR] [--workers N] [--json]

A threshold with no false match among a thousand pictures can make thousands among 1e8 entries:
the expected number of false matches of one query is N_entries * p, where p is the probability
that one unrelated (query, entry) pair matches. This bench measures p on every ordered pair of
~5,000 distinct real pictures (bench/photo_corpus.py: photographs from Debian packages and
non-overlapping tiles of large ones), under the CURRENT config and query variants: each picture
goes through decode_picture, then hash_entry (as a dataset entry) and hash_query (as a query).
Pictures whose PDQ quality is below pdq_min_quality are left out: the matcher ignores them.
Hashes are cached per picture under --cache, keyed by the hashing settings and code.

Pairs are split by kind, because p depends on what the pictures show: everyday photographs (the
headline: what people ask to have removed); telescope pictures (a bright blob on black: their
hashes collide far more often); objects cut out on white; tiles of one photograph.

Printed: pair counts; distance histograms of unrelated pairs per hash kind, per (query variant,
entry) and as the minimum over a query's variants; false matches under the configured rule, each
hash alone and the baseline (plain whole-picture pHash <= 6, no variants); estimated expected
false matches per query at 1e6, 1e8 and 5.85e9 entries on a threshold grid, beside the dev set's
recall at each point; the thresholds that reach the goal with the most recall; the verification
stage's share (bench/precision_verify.py).

How p is estimated (p is far below 1 / pairs measured, so it must be extrapolated):

* Method A (headline): per PAIR. D_a = the smallest PDQ distance among the query's variants whose
  pHash distance is <= a (undefined when there is none). A pair matches iff D_a <= b, so
  p = P(D_a defined) * P(D_a <= b | D_a defined). The first factor is measured. The second is
  the lower tail of the D_a histogram, fitted and extrapolated to b (measured when >= 25 pairs
  lie at or below b); with fewer than 250 pairs at radius a the tail's shape is taken from the
  smallest radius with 250 (below pHash ~10 the PDQ distances of unrelated pairs stop falling;
  printed). p is capped by PDQ alone (the rule needs PDQ too), fitted on all pairs.
* Method B (cross-check): per (variant, entry) sample, p_ve = P(ph <= a) * P(pd <= b | ph <= a),
  and p <= V * p_ve by the union bound over the V variants of a query.
* Tail fit: a straight line through log F(d) against d (F = cumulative share: an exponential
  tail) on the lowest decade of counts (cumulative 25 to 250). Hamming distances of independent
  bits fall faster than that, so on them the fit errs high; the everyday photographs' measured
  tail is heavier still: refitted with 8x fewer pairs (the printed backtest) it predicts fewer
  close pairs than were measured. A Gaussian tail ("normal") is printed beside it. No fit sees a
  heavier component that only appears beyond the measured range: the estimate is as good as
  the corpus.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.special import ndtr, ndtri

from bench import REPO, precision_verify
from bot.config import Settings, load_settings

SCALES = (1e6, 1e8, 5.85e9)  # entries: a large collection, LAION-400M-ish, LAION-5B
PHASH_GRID = (6, 8, 10, 12, 16)
PDQ_GRID = (50, 60, 70, 80)
TARGET_AT_1E8 = 0.01  # expected false matches per query at 1e8 entries (the issue's goal)
PLAIN_PHASH_THRESHOLD = 6  # the dev set README's baseline: whole-picture pHash, nothing else
PHASH_BITS, PDQ_BITS = 64, 256
UNDEFINED = PDQ_BITS + 1  # D_a when no variant of the query is within pHash distance a
NEAR_PHASH = 16  # (variant, entry) samples this close in pHash are kept one by one
HASH_FILES = ("bot/hashing.py", "bot/borders.py", "bot/decoding.py", "bot/verification.py")
CACHE_FORMAT = 8

# Pair kinds. A pair of pictures from different photographs gets the kind of its two genres;
# two tiles of one photograph get SAME_PHOTO; a picture with itself is never counted.
GENRES = ("everyday", "telescope", "cut-out")
GENRE_OF_PACKAGE = {"stellarium-data": 1, "tuxpaint-stamps-default": 2}
SAME_PHOTO = len(GENRES) ** 2
KINDS = SAME_PHOTO + 1
_SELF = KINDS
HEADLINE = "everyday photographs"
ALL_DIFFERENT = "all pictures, different photographs"
POPULATIONS: dict[str, tuple[int, ...]] = {
    HEADLINE: (0,),
    ALL_DIFFERENT: tuple(range(SAME_PHOTO)),
    "telescope pictures": (4,),
    "cut-outs on white": (8,),
    "tiles of one photograph": (SAME_PHOTO,),
}


# --------------------------------------------------------------------------------------------
# Tail fit: the statistics, importable and unit-tested (tests/bench/test_precision.py).


@dataclass(frozen=True)
class TailFit:
    """P(distance <= threshold) from a histogram: measured when enough samples fall at or below the
    threshold, otherwise extrapolated from the fitted lower tail (``shape`` "exp" or "normal")."""

    probability: float
    measured: bool
    shape: str
    samples: int
    fit_points: int
    fit_range: tuple[int, int] | None


def fit_lower_tail(
    hist: np.ndarray,
    threshold: int,
    *,
    shape: str = "exp",
    min_count: int = 25,
    span: float = 10.0,
    max_share: float = 0.05,
) -> TailFit:
    """Probability that a sample of ``hist`` (counts per integer distance) is <= ``threshold``.

    Measured when at least ``min_count`` samples lie at or below the threshold. Otherwise the
    extreme tail is fitted: the distances that occur whose cumulative count is between
    ``min_count`` (each share then known to within ~20%) and ``span`` times that (the lowest
    decade: the extreme tail, not the bulk, whose shape differs) and whose cumulative share is
    <= ``max_share``; if that leaves fewer than 3 points, the 3 lowest with ``min_count``. Points
    are weighted by the square root of their cumulative count (Poisson errors).
    """
    counts = np.asarray(hist, dtype=np.float64)
    total = float(counts.sum())
    if total <= 0 or threshold < 0:
        return TailFit(0.0, True, shape, int(total), 0, None)
    cumulative = np.cumsum(counts)
    threshold = min(int(threshold), len(counts) - 1)
    if cumulative[threshold] >= min_count:
        return TailFit(float(cumulative[threshold] / total), True, shape, int(total), 0, None)
    share = cumulative / total
    usable = (counts > 0) & (cumulative >= min_count)
    points = np.flatnonzero(usable & (cumulative <= span * min_count) & (share <= max_share))
    if points.size < 3:
        points = np.flatnonzero(usable & (share <= 0.5))[:3]
    if points.size < 2:
        return TailFit(float("nan"), False, shape, int(total), int(points.size), None)
    x = points.astype(np.float64)
    weights = np.sqrt(cumulative[points])
    if shape == "exp":
        slope, intercept = np.polyfit(x, np.log(share[points]), 1, w=weights)
        probability = float(np.exp(intercept + slope * threshold))
    elif shape == "normal":
        slope, intercept = np.polyfit(x, ndtri(share[points]), 1, w=weights)
        probability = float(ndtr(intercept + slope * threshold))
    else:
        raise ValueError(f"unknown tail shape {shape!r}")
    # Never above what was measured at the first fit point, which lies above the threshold.
    probability = min(probability, float(share[points[0]]))
    return TailFit(probability, False, shape, int(total), int(points.size), (int(x[0]), int(x[-1])))


def pair_match_probability(min_pdq: np.ndarray, b: int, *, shape: str = "exp") -> tuple[float, TailFit]:
    """Method A: P(D_a <= b) from the histogram of D_a over pairs (last bin: D_a undefined)."""
    pairs = float(min_pdq.sum())
    defined = min_pdq[:UNDEFINED]
    fit = fit_lower_tail(defined, b, shape=shape)
    if pairs == 0:
        return 0.0, fit
    return float(defined.sum() / pairs) * fit.probability, fit


# --------------------------------------------------------------------------------------------
# Hashing pictures (worker processes), cached incrementally as .npz.


@dataclass
class HashTable:
    """The hashes of pictures: each as a dataset entry (one set) and as a query (all variants)."""

    ids: np.ndarray  # (N,) str: name|file size
    rejected: np.ndarray  # (N,) str: decode_picture's reason, or ""
    entry_phash: np.ndarray  # (N,) uint64
    entry_pdq: np.ndarray  # (N, 4) uint64
    entry_quality: np.ndarray  # (N,) int16
    plain_phash: np.ndarray  # (N,) uint64: pHash of the whole decoded picture (the baseline)
    query_phash: np.ndarray  # (N, V) uint64
    query_pdq: np.ndarray  # (N, V, 4) uint64
    query_variant: np.ndarray  # (N, V) str; "" = no such variant (padding)
    query_quality: np.ndarray  # (N,) int16
    entry_thumbnail: np.ndarray  # (N, 16, 16) uint8: what the index keeps for verification
    entry_chroma: np.ndarray  # (N, 2, 8, 8) int8: the same region's opponent colours

    @staticmethod
    def fields() -> tuple[str, ...]:
        return tuple(HashTable.__dataclass_fields__)

    def rows(self, index: np.ndarray) -> HashTable:
        return HashTable(**{name: getattr(self, name)[index] for name in self.fields()})

    def padded(self, width: int) -> HashTable:
        """The same table with room for ``width`` query variants."""
        extra = width - self.query_phash.shape[1]
        if extra <= 0:
            return self
        pad = {"query_phash": 0, "query_pdq": 0, "query_variant": ""}
        values = {name: getattr(self, name) for name in self.fields()}
        for name, fill in pad.items():
            array = values[name]
            shape = (array.shape[0], extra, *array.shape[2:])
            values[name] = np.concatenate([array, np.full(shape, fill, dtype=array.dtype)], axis=1)
        return HashTable(**values)

    @staticmethod
    def concat(tables: list[HashTable]) -> HashTable:
        width = max(t.query_phash.shape[1] for t in tables)
        tables = [t.padded(width) for t in tables]
        return HashTable(**{n: np.concatenate([getattr(t, n) for t in tables]) for n in HashTable.fields()})


_worker_settings: Settings | None = None


def _init_worker() -> None:
    global _worker_settings  # noqa: PLW0603 - one settings object per worker process
    _worker_settings = load_settings(with_deployment_files=False)


def hash_one(data: bytes, settings: Settings) -> dict[str, object]:
    """Everything the bench needs about one picture, through the project's own code."""
    from bot.decoding import ImageRejectedError, decode_picture
    from bot.hashing import PHash, hash_entry, hash_query

    try:
        image = decode_picture(data, settings.decoding).image
    except ImageRejectedError as exc:
        return {"rejected": exc.reason}
    entry = hash_entry(image, settings.hashing)
    query = hash_query(image, settings.hashing)
    return {
        "rejected": "",
        "entry_phash": entry.phash,
        "entry_pdq": entry.pdq,
        "entry_quality": entry.quality,
        "entry_thumbnail": entry.thumbnail,
        "entry_chroma": entry.chroma,
        "plain_phash": int(PHash.compute(image)[0]),
        "query_phash": query.phash,
        "query_pdq": query.pdq,
        "query_variant": query.variants,
        "query_quality": query.quality,
    }


def _hash_task(task: tuple[list[int], list]) -> list[tuple[int, dict[str, object]]]:  # type: ignore[type-arg]
    """Hash pictures of one photograph (the photograph is decoded once for all its tiles)."""
    from bench.photo_corpus import picture_bytes

    assert _worker_settings is not None
    indices, pictures = task
    position = {picture.name: index for index, picture in zip(indices, pictures, strict=True)}
    return [(position[p.name], hash_one(data, _worker_settings)) for p, data in picture_bytes(pictures)]


def _tasks(pictures: list, indices: list[int], per_task: int = 48) -> list[tuple[list[int], list]]:  # type: ignore[type-arg]
    groups: dict[str, list[int]] = {}
    for index in indices:
        picture = pictures[index]
        groups.setdefault(picture.photo if picture.box else "", []).append(index)
    return [
        (chunk, [pictures[i] for i in chunk])
        for members in groups.values()
        for chunk in (members[s : s + per_task] for s in range(0, len(members), per_task))
    ]


def settings_key(settings: Settings) -> str:
    """Changes when anything that changes a hash changes: hashing and decoding settings, code."""
    digest = hashlib.sha256()
    digest.update(json.dumps([CACHE_FORMAT, asdict(settings.hashing), asdict(settings.decoding)]).encode())
    for name in HASH_FILES:
        digest.update((REPO / name).read_bytes())
    return digest.hexdigest()[:20]


def picture_id(picture) -> str:  # type: ignore[no-untyped-def]
    return f"{picture.name}|{picture.path.stat().st_size}"


def hash_pictures(pictures: list, settings: Settings, cache: Path, *, workers: int, label: str) -> HashTable:  # type: ignore[type-arg]
    """Hashes of ``pictures`` in order: from the cache when hashed before under the same settings
    and code, otherwise computed over ``workers`` processes and added to the cache."""
    path = cache / "hashes" / f"{label}-{settings_key(settings)}.npz"
    ids = [picture_id(p) for p in pictures]
    stored: HashTable | None = None
    if path.exists():
        with np.load(path, allow_pickle=False) as saved:
            stored = HashTable(**{name: saved[name] for name in HashTable.fields()})
    known = {} if stored is None else {str(i): row for row, i in enumerate(stored.ids)}
    missing = [index for index, i in enumerate(ids) if i not in known]
    if missing:
        fresh = _hash_missing(pictures, ids, missing, workers=workers, label=label)
        stored = fresh if stored is None else HashTable.concat([stored, fresh])
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **{name: getattr(stored, name) for name in HashTable.fields()})
        known = {str(i): row for row, i in enumerate(stored.ids)}
    assert stored is not None
    return stored.rows(np.array([known[i] for i in ids], dtype=np.int64))


def _hash_missing(
    pictures: list, ids: list[str], missing: list[int], *, workers: int, label: str
) -> HashTable:  # type: ignore[type-arg]
    started = time.perf_counter()
    results: dict[int, dict[str, object]] = {}
    tasks = _tasks(pictures, missing)
    print(f"  hashing {len(missing)} {label} pictures on {workers} processes ...", file=sys.stderr)
    with multiprocessing.get_context("fork").Pool(workers, initializer=_init_worker) as pool:
        for done, batch in enumerate(pool.imap_unordered(_hash_task, tasks), 1):
            results.update(batch)
            if done % 20 == 0 or done == len(tasks):
                elapsed = time.perf_counter() - started
                print(
                    f"  hashed {len(results)}/{len(missing)} {label} pictures, {elapsed:.0f} s",
                    file=sys.stderr,
                )
    ordered = [results[index] for index in missing]
    width = max(len(r.get("query_variant", ())) for r in ordered)  # type: ignore[arg-type]
    count = len(ordered)
    table = HashTable(
        ids=np.array([ids[index] for index in missing]),
        rejected=np.array([r["rejected"] for r in ordered]),
        entry_phash=np.zeros(count, np.uint64),
        entry_pdq=np.zeros((count, 4), np.uint64),
        entry_quality=np.zeros(count, np.int16),
        plain_phash=np.zeros(count, np.uint64),
        query_phash=np.zeros((count, width), np.uint64),
        query_pdq=np.zeros((count, width, 4), np.uint64),
        query_variant=np.full((count, width), "", dtype="<U64"),
        query_quality=np.zeros(count, np.int16),
        entry_thumbnail=np.zeros((count, 16, 16), np.uint8),
        entry_chroma=np.zeros((count, 2, 8, 8), np.int8),
    )
    for row, r in enumerate(ordered):
        if r["rejected"]:
            continue
        v = len(r["query_variant"])  # type: ignore[arg-type]
        for name in ("entry_pdq", "entry_quality", "query_quality", "entry_thumbnail", "entry_chroma"):
            getattr(table, name)[row] = r[name]
        table.entry_phash[row] = np.uint64(r["entry_phash"])  # type: ignore[arg-type]
        table.plain_phash[row] = np.uint64(r["plain_phash"])  # type: ignore[arg-type]
        for name in ("query_phash", "query_pdq", "query_variant"):
            getattr(table, name)[row, :v] = r[name]
    return table


# --------------------------------------------------------------------------------------------
# All ordered pairs: the query variants of picture i against the entry hashes of picture j != i.


@dataclass
class PairStats:
    """Histograms over every ordered pair (i != j), per pair kind (first axis, see KINDS)."""

    a_values: tuple[int, ...]
    pairs: np.ndarray  # (KINDS,) ordered pairs
    samples: np.ndarray  # (KINDS,) (query variant, entry) samples
    joint: np.ndarray  # (KINDS, 65, 257): samples by (pHash distance, PDQ distance)
    min_pdq: np.ndarray  # (KINDS, len(a_values), 258): pairs by D_a (last bin: undefined)
    min_phash: np.ndarray  # (KINDS, 65): pairs by the smallest pHash distance over variants
    plain: np.ndarray  # (KINDS, 65): pairs by whole-picture pHash distance (the baseline)
    near: np.ndarray  # (M, 5) int32 rows (query, entry, variant, pHash, PDQ), pHash <= NEAR_PHASH

    def merged(self, other: PairStats) -> PairStats:
        summed = {
            name: getattr(self, name) + getattr(other, name)
            for name in ("pairs", "samples", "joint", "min_pdq", "min_phash", "plain")
        }
        return PairStats(a_values=self.a_values, near=np.concatenate([self.near, other.near]), **summed)

    def population(self, name: str) -> dict[str, np.ndarray]:
        """The histograms of one population (POPULATIONS), summed over its pair kinds."""
        kinds = list(POPULATIONS[name])
        return {
            n: getattr(self, n)[kinds].sum(axis=0)
            for n in ("pairs", "samples", "joint", "min_pdq", "min_phash", "plain")
        }


def _bincount_by_kind(kind: np.ndarray, values: np.ndarray, bins: int) -> np.ndarray:
    counts = np.bincount(kind.ravel() * bins + values.ravel(), minlength=(KINDS + 1) * bins)
    return counts[: KINDS * bins].reshape(KINDS, bins).astype(np.int64)


_scan: dict[str, object] = {}


def _scan_chunk(bounds: tuple[int, int]) -> PairStats:
    table: HashTable = _scan["table"]  # type: ignore[assignment]
    a_values: tuple[int, ...] = _scan["a_values"]  # type: ignore[assignment]
    genre: np.ndarray = _scan["genre"]  # type: ignore[assignment]
    photo: np.ndarray = _scan["photo"]  # type: ignore[assignment]
    start, stop = bounds
    rows = np.arange(start, stop)
    valid = table.query_variant[start:stop] != ""
    ph = np.bitwise_count(table.query_phash[start:stop, :, None] ^ table.entry_phash[None, None, :])
    pd = np.zeros(ph.shape, np.uint16)
    for word in range(4):
        pd += np.bitwise_count(
            table.query_pdq[start:stop, :, None, word] ^ table.entry_pdq[None, None, :, word]
        )
    ph[~valid] = PHASH_BITS + 1  # padding: never within any threshold ...
    pd[~valid] = PDQ_BITS  # ... and never counted (masked below)
    kind = genre[rows, None] * len(GENRES) + genre[None, :]
    kind[photo[rows, None] == photo[None, :]] = SAME_PHOTO
    kind[rows - start, rows] = _SELF
    counted = valid[:, :, None] & (kind[:, None, :] != _SELF)
    joint_code = (kind[:, None, :] * (65 * 257) + ph.astype(np.int64) * 257 + pd)[counted]
    joint = np.bincount(joint_code, minlength=(KINDS + 1) * 65 * 257)[: KINDS * 65 * 257]
    min_pdq = np.stack(
        [
            _bincount_by_kind(kind, np.where(ph <= a, pd, UNDEFINED).min(axis=1), UNDEFINED + 1)
            for a in a_values
        ],
        axis=1,
    )
    plain_distance = np.bitwise_count(table.plain_phash[rows, None] ^ table.plain_phash[None, :])
    near = np.argwhere((ph <= NEAR_PHASH) & (kind[:, None, :] != _SELF))
    return PairStats(
        a_values=a_values,
        pairs=np.bincount(kind.ravel(), minlength=KINDS + 1)[:KINDS].astype(np.int64),
        samples=joint.reshape(KINDS, -1).sum(axis=1).astype(np.int64),
        joint=joint.reshape(KINDS, 65, 257).astype(np.int64),
        min_pdq=min_pdq,
        min_phash=_bincount_by_kind(kind, np.minimum(ph.min(axis=1), PHASH_BITS), 65),
        plain=_bincount_by_kind(kind, plain_distance.astype(np.int64), 65),
        near=np.column_stack(
            [near[:, 0] + start, near[:, 2], near[:, 1], ph[tuple(near.T)], pd[tuple(near.T)]]
        ).astype(np.int32),
    )


def scan_pairs(
    table: HashTable, genre: np.ndarray, photo: np.ndarray, a_values: tuple[int, ...], *, workers: int
) -> PairStats:
    """Distances of every ordered pair of distinct pictures, histogrammed in chunks of queries."""
    _scan.update(table=table, a_values=a_values, genre=genre, photo=photo)
    count = table.ids.size
    chunk = max(1, min(24, 3_000_000 // max(1, count * table.query_phash.shape[1])))
    bounds = [(s, min(s + chunk, count)) for s in range(0, count, chunk)]
    total: PairStats | None = None
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for done, part in enumerate(pool.imap_unordered(_scan_chunk, bounds), 1):
            total = part if total is None else total.merged(part)
            if done % 50 == 0 or done == len(bounds):
                elapsed = time.perf_counter() - started
                print(f"  pairs: {done}/{len(bounds)} chunks of queries, {elapsed:.0f} s", file=sys.stderr)
    assert total is not None
    return total


# --------------------------------------------------------------------------------------------
# The corpus and the dev set.


@dataclass
class Corpus:
    """The usable corpus pictures: their hashes, and what they are."""

    table: HashTable
    names: np.ndarray
    packages: np.ndarray
    photo: np.ndarray  # (N,) int: which photograph (tiles of one photograph share it)
    genre: np.ndarray  # (N,) int: index into GENRES
    info: dict[str, object]
    pictures: list  # type: ignore[type-arg]  # photo_corpus.Picture of each usable picture


def load_corpus(args: argparse.Namespace, settings: Settings) -> Corpus:
    """Hashes of the corpus pictures the matcher can use (entry and query quality >= the minimum)."""
    from bench.photo_corpus import SOURCES, gather

    pictures = gather(args.cache, tile_side=args.tile_side, tile_from=args.tile_from)
    gathered = len(pictures)
    if args.pictures and args.pictures < gathered:
        chosen = np.sort(np.random.default_rng(0).choice(gathered, args.pictures, replace=False))
        pictures = [pictures[i] for i in chosen]
    table = hash_pictures(pictures, settings, args.cache, workers=args.workers, label="corpus")
    minimum = settings.matching.pdq_min_quality
    usable = (table.rejected == "") & (table.entry_quality >= minimum) & (table.query_quality >= minimum)
    packages = np.array([p.package for p in pictures])
    per_package = {}
    for source in SOURCES:
        mine = packages == source.package
        tiles = np.array([p.box is not None for p in pictures]) & mine
        per_package[source.package] = {
            "pictures": int(mine.sum()),
            "used": int((mine & usable).sum()),
            "whole_used": int((mine & usable & ~tiles).sum()),
            "tiles_used": int((mine & usable & tiles).sum()),
            "photographs_used": len(
                {p.photo for p, u in zip(pictures, usable, strict=True) if u and p.package == source.package}
            ),
            "why": source.why,
        }
    info = {
        "gathered": gathered,
        "hashed": len(pictures),
        "refused_by_decoder": int((table.rejected != "").sum()),
        "below_quality": int(((table.rejected == "") & ~usable).sum()),
        "used": int(usable.sum()),
        "min_quality": minimum,
        "tile_side": args.tile_side,
        "tile_from": args.tile_from,
        "per_package": per_package,
    }
    keep = np.flatnonzero(usable)
    _, photo = np.unique(np.array([pictures[i].photo for i in keep]), return_inverse=True)
    return Corpus(
        table=table.rows(keep),
        names=np.array([pictures[i].name for i in keep]),
        packages=packages[keep],
        photo=photo,
        genre=np.array([GENRE_OF_PACKAGE.get(packages[i], 0) for i in keep]),
        info=info,
        pictures=[pictures[i] for i in keep],
    )


@dataclass
class Positives:
    """The dev set's positive copies: per variant, distances to their true original."""

    names: list[str]
    transforms: list[str]
    phash: np.ndarray  # (P, V) int, padding = PHASH_BITS + 1
    pdq: np.ndarray  # (P, V) int
    quality_ok: np.ndarray  # (P,) bool: query and original both above the quality minimum


def load_positives(args: argparse.Namespace, settings: Settings) -> Positives | None:
    """Hash the dev set's originals (as entries) and positive copies (as queries)."""
    from bench.photo_corpus import Picture

    truth_path = args.devset / "truth.json"
    if not truth_path.exists():
        return None
    truth: dict[str, str | None] = json.loads(truth_path.read_text())
    originals = {p.stem: p for p in sorted((args.devset / "index").iterdir())}
    queries = sorted(
        (name, original)
        for name, original in truth.items()
        if original in originals and (args.devset / "pos" / name).exists()
    )
    pictures = [Picture(f"devset/index/{p.name}", stem, "devset", p, None) for stem, p in originals.items()]
    pictures += [Picture(f"devset/pos/{n}", n, "devset", args.devset / "pos" / n, None) for n, _ in queries]
    table = hash_pictures(pictures, settings, args.cache, workers=args.workers, label="devset")
    row = {stem: i for i, stem in enumerate(originals)}
    q = np.arange(len(originals), len(pictures))
    e = np.array([row[original] for _, original in queries])
    valid = table.query_variant[q] != ""
    phash = np.bitwise_count(table.query_phash[q] ^ table.entry_phash[e][:, None]).astype(np.int64)
    pdq = np.bitwise_count(table.query_pdq[q] ^ table.entry_pdq[e][:, None, :]).sum(axis=-1).astype(np.int64)
    minimum = settings.matching.pdq_min_quality
    return Positives(
        names=[n for n, _ in queries],
        transforms=[n.rsplit("__", 1)[1].rsplit(".", 1)[0] for n, _ in queries],
        phash=np.where(valid, phash, PHASH_BITS + 1),
        pdq=np.where(valid, pdq, PDQ_BITS + 1),
        quality_ok=(table.rejected[q] == "")
        & (table.query_quality[q] >= minimum)
        & (table.entry_quality[e] >= minimum),
    )


# --------------------------------------------------------------------------------------------
# Estimates.

POOL_MIN = 250  # the conditional PDQ tail is fitted on the smallest pHash radius >= a with this many pairs


def near_kinds(corpus: Corpus, near: np.ndarray) -> np.ndarray:
    """The pair kind of each near (variant, entry) sample."""
    q, e = near[:, 0], near[:, 1]
    kind = corpus.genre[q] * len(GENRES) + corpus.genre[e]
    return np.where(corpus.photo[q] == corpus.photo[e], SAME_PHOTO, kind)


def min_pdq_from_near(near: np.ndarray, keep: np.ndarray, a: int, pairs: int) -> np.ndarray:
    """D_a histogram (last bin: undefined) from the near samples ``keep`` (a <= NEAR_PHASH)."""
    rows = near[keep & (near[:, 3] <= a)]
    hist = np.zeros(UNDEFINED + 1, np.int64)
    if rows.size:
        pair = rows[:, 0].astype(np.int64) * (1 << 32) + rows[:, 1]
        order = np.lexsort((rows[:, 4], pair))
        first = np.ones(order.size, bool)
        first[1:] = pair[order][1:] != pair[order][:-1]
        hist[:UNDEFINED] = np.bincount(rows[order][first, 4], minlength=UNDEFINED)[:UNDEFINED]
    hist[UNDEFINED] = pairs - hist[:UNDEFINED].sum()
    return hist


@dataclass(frozen=True)
class Estimate:
    """p for one rule: the headline ``p`` = min(method A, PDQ alone)."""

    p: float
    method_a: float
    pdq_alone: float
    pooled_radius: int
    measured_pairs: int

    @property
    def expected(self) -> dict[str, float]:
        return {f"{n:g}": self.p * n for n in SCALES}


@dataclass
class Estimator:
    """p for any (a, b) in one population."""

    stats: PairStats
    population: str
    near: np.ndarray  # (M, 5) query, entry, variant, pHash, PDQ: the samples within NEAR_PHASH
    near_kinds: np.ndarray  # (M,) the pair kind of each

    def __post_init__(self) -> None:
        self.hists = self.stats.population(self.population)
        self.in_population = np.isin(self.near_kinds, POPULATIONS[self.population])
        self._d_a: dict[int, np.ndarray] = {}

    @property
    def pairs(self) -> int:
        return int(self.hists["pairs"])

    def d_a(self, a: int) -> np.ndarray:
        """The D_a histogram (from the scan; from the near samples at a radius it did not keep)."""
        if a in self.stats.a_values:
            return self.hists["min_pdq"][self.stats.a_values.index(a)]
        if a > NEAR_PHASH:
            raise ValueError(f"pHash radius {a} > {NEAR_PHASH}: samples not kept one by one")
        if a not in self._d_a:
            self._d_a[a] = min_pdq_from_near(self.near, self.in_population, a, self.pairs)
        return self._d_a[a]

    def measured(self, a: int, b: int) -> int:
        return int(self.d_a(a)[: b + 1].sum())

    def pooled_radius(self, a: int) -> int:
        """The smallest pHash radius >= a whose D histogram has POOL_MIN defined pairs. Below a
        radius of ~10 the PDQ distances of unrelated pairs stop falling (printed per radius), so
        the tail's shape is borrowed from there."""
        for radius in range(a, NEAR_PHASH + 1, 2):
            if self.d_a(radius)[:UNDEFINED].sum() >= POOL_MIN:
                return radius
        return max(a, NEAR_PHASH)

    def pdq_alone(self, b: int, *, shape: str = "exp") -> TailFit:
        hist = self.hists["min_pdq"][self.stats.a_values.index(PHASH_BITS)][:UNDEFINED]
        return fit_lower_tail(hist, b, shape=shape)

    def estimate(self, a: int, b: int, *, shape: str = "exp") -> Estimate:
        """Method A with a pooled conditional tail, capped by PDQ alone (the rule needs PDQ too)."""
        d_a = self.d_a(a)
        measured = int(d_a[: b + 1].sum())
        radius = self.pooled_radius(a)
        if measured >= 25:
            method_a = measured / max(1, self.pairs)
        else:
            conditional = fit_lower_tail(self.d_a(radius)[:UNDEFINED], b, shape=shape)
            method_a = float(d_a[:UNDEFINED].sum()) / max(1, self.pairs) * conditional.probability
        pdq_alone = self.pdq_alone(b, shape=shape).probability
        finite = [x for x in (method_a, pdq_alone) if np.isfinite(x)]
        p = min(finite) if finite else float("nan")
        return Estimate(p, method_a, pdq_alone, radius, measured)

    def method_b(self, a: int, b: int, *, shape: str = "exp") -> float:
        """Per (variant, entry) sample, union bound over a query's variants."""
        joint = self.hists["joint"]
        variants = float(self.hists["samples"]) / max(1.0, float(self.hists["pairs"]))
        phash_share = fit_lower_tail(joint.sum(axis=1), a, shape=shape).probability
        radius = next((r for r in range(a, 65) if joint[: r + 1].sum() >= POOL_MIN), 64)
        pdq_given = fit_lower_tail(joint[: radius + 1].sum(axis=0), b, shape=shape).probability
        return min(1.0, variants * phash_share * pdq_given)

    def backtest(self, *, shape: str = "exp") -> dict[str, float] | None:
        """PDQ alone fitted as if 8x fewer pairs had been measured (points with >= 200 pairs),
        its prediction at the lowest distance with >= 25 pairs, beside what was measured."""
        hist = self.hists["min_pdq"][self.stats.a_values.index(PHASH_BITS)][:UNDEFINED]
        cumulative = np.cumsum(hist)
        low = np.flatnonzero((cumulative >= 25) & (cumulative < 200))
        if not low.size:
            return None
        distance = int(low[0])
        predicted = fit_lower_tail(hist, distance, shape=shape, min_count=200)
        return {
            "distance": distance,
            "measured_pairs": int(cumulative[distance]),
            "predicted_pairs": predicted.probability * float(hist.sum()),
        }

    def conditional_by_radius(self) -> list[dict[str, int]]:
        """How the PDQ distance of unrelated pairs falls as their pHash gets closer."""
        rows = []
        for a in (4, 6, 8, 10, 12, 14, 16, 20, 24, 32):
            hist = self.d_a(a)[:UNDEFINED]
            total = int(hist.sum())
            if total:
                share = np.cumsum(hist) / total
                quantiles = {f"q{int(x * 100)}": int(np.searchsorted(share, x)) for x in (0.01, 0.1, 0.5)}
                rows.append({"phash_radius": a, "pairs": total, **quantiles})
        return rows


def recall(positives: Positives, a: int, b: int) -> int:
    """Dev-set positives with a variant within (a, b) of their own original."""
    within = (positives.phash <= a) & (positives.pdq <= b)
    return int((within.any(axis=1) & positives.quality_ok).sum())


def recommend(estimator: Estimator, positives: Positives | None) -> list[dict[str, object]]:
    """Per pHash radius, the loosest PDQ radius whose estimate reaches TARGET_AT_1E8, with its
    dev-set recall; most recall first, then fewest false matches."""
    options: list[dict[str, object]] = []
    for a in range(4, NEAR_PHASH + 1, 2):
        passing = [
            (b, estimate)
            for b in range(20, 91, 2)
            if (estimate := estimator.estimate(a, b)).p * 1e8 <= TARGET_AT_1E8
        ]
        if passing:
            b, estimate = passing[-1]
            options.append(
                {
                    "phash": a,
                    "pdq": b,
                    "p": estimate.p,
                    "expected_at_1e8": estimate.p * 1e8,
                    "measured": estimate.measured_pairs,
                    "recall": recall(positives, a, b) if positives else 0,
                }
            )
    options.sort(key=lambda o: (-o["recall"], o["expected_at_1e8"]))  # type: ignore[operator]
    return options


# --------------------------------------------------------------------------------------------
# Report.


def cumulative_at(hist: Sequence[int] | np.ndarray, points: Sequence[int]) -> dict[int, int]:
    cumulative = np.cumsum(hist)
    return {d: int(cumulative[d]) for d in points}


def median_of(hist: Sequence[int] | np.ndarray) -> int:
    cumulative = np.cumsum(hist)
    return int(np.searchsorted(cumulative, cumulative[-1] / 2))


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


def grid_row(est: Estimator, positives: Positives | None, a: int, b: int) -> dict[str, object]:
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
        "recall": recall(positives, a, b) if positives else None,
    }


def build_report(
    corpus: Corpus, positives: Positives | None, stats: PairStats, rule: tuple[int, int]
) -> dict:  # type: ignore[type-arg]
    """Everything the bench prints, as JSON-ready values."""
    rows = stats.near
    kinds = near_kinds(corpus, rows)
    estimators = {name: Estimator(stats, name, rows, kinds) for name in POPULATIONS}
    a_rule, b_rule = rule
    populations: dict[str, object] = {}
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
                "baseline_plain_phash_le_6": int(hists["plain"][: PLAIN_PHASH_THRESHOLD + 1].sum()),
            },
            "estimates": {
                "rule": {**asdict(rule_estimate), "expected_per_query": rule_estimate.expected},
                "rule_method_B": est.method_b(a_rule, b_rule),
                "rule_normal_tail": est.estimate(a_rule, b_rule, shape="normal").p,
                "phash_alone": fit_lower_tail(hists["min_phash"], a_rule).probability,
                "pdq_alone": rule_estimate.pdq_alone,
                "baseline_plain_phash_le_6": fit_lower_tail(
                    hists["plain"], PLAIN_PHASH_THRESHOLD
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
        "positives": len(positives.names) if positives else 0,
        "recall_rule": recall(positives, *rule) if positives else None,
        "recommendation": recommend(estimators[HEADLINE], positives),
        # the hash rule's p at the wider rules the verification's frontier prices
        "p_rule_at": {
            name: {f"{a},{b}": est.estimate(a, b).p for a, b in precision_verify.FRONTIER}
            for name, est in estimators.items()
        },
        "closest_pairs": closest_pairs(corpus, rows, kinds, rule),
    }


def closest_pairs(
    corpus: Corpus, near: np.ndarray, kinds: np.ndarray, rule: tuple[int, int], count: int = 12
) -> list[dict[str, object]]:
    """The unrelated pairs closest to matching: score max(pHash/a, PDQ/b) <= 1 is a match."""
    score = np.maximum(near[:, 3] / rule[0], near[:, 4] / rule[1])
    seen: set[tuple[int, int]] = set()
    found: list[dict[str, object]] = []
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


def print_report(report: dict, elapsed: float) -> None:  # type: ignore[type-arg]
    """The report for a reader, section by section (the same numbers as --json)."""
    for section in (
        _print_corpus,
        _print_distributions,
        _print_false_matches,
        _print_estimates,
        _print_grid,
        _print_recommendation,
        _print_closest_pairs,
        precision_verify.print_verification,
        precision_verify.print_frontier,
    ):
        section(report)
    print(f"\n({elapsed:.0f} s)")


def _print_corpus(report: dict) -> None:  # type: ignore[type-arg]
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


def _print_distributions(report: dict) -> None:  # type: ignore[type-arg]
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


def _print_false_matches(report: dict) -> None:  # type: ignore[type-arg]
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


def _print_estimates(report: dict) -> None:  # type: ignore[type-arg]
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
        values = (r["p"], r["method_a"], e["rule_method_B"], e["rule_normal_tail"])
        values += (e["phash_alone"], e["pdq_alone"], e["baseline_plain_phash_le_6"])
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


def _print_grid(report: dict) -> None:  # type: ignore[type-arg]
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


def _print_recommendation(report: dict) -> None:  # type: ignore[type-arg]
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


def _print_closest_pairs(report: dict) -> None:  # type: ignore[type-arg]
    a_rule, b_rule = report["rule"]["phash_max_distance"], report["rule"]["pdq_max_distance"]
    print(
        f"\nClosest unrelated pairs (score = max(pHash/{a_rule}, PDQ/{b_rule}); <= 1 matches under the rule):"
    )
    for pair in report["closest_pairs"]:
        print(
            f"  {pair['score']:.2f} pHash {pair['phash']:2d} PDQ {pair['pdq']:3d} {pair['kind']:19s} "
            f"{short(pair['query'])} ~ {short(pair['entry'])} [{pair['variant']}]"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pictures", type=int, default=0, help="a random sample of N pictures (quick run)")
    parser.add_argument("--cache", type=Path, default=None, help="default ~/.cache/removal-desk/photos")
    parser.add_argument("--tile-side", type=int, default=256)
    parser.add_argument(
        "--tile-from", type=int, default=512, help="tile photographs this large (shorter side)"
    )
    parser.add_argument("--devset", type=Path, default=Path("/tmp/devset"))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from bench.photo_corpus import DEFAULT_CACHE

    started = time.perf_counter()
    args.cache = args.cache or DEFAULT_CACHE
    settings = load_settings(with_deployment_files=False)
    rule = (settings.matching.phash_max_distance, settings.matching.pdq_max_distance)
    corpus = load_corpus(args, settings)
    positives = load_positives(args, settings)
    a_values = tuple(sorted({*range(0, 34, 2), *PHASH_GRID, rule[0], PHASH_BITS}))
    stats = scan_pairs(corpus.table, corpus.genre, corpus.photo, a_values, workers=args.workers)
    report = build_report(corpus, positives, stats, rule)
    near = (settings.matching.verify_near_phash, settings.matching.verify_near_pdq)
    triples = precision_verify.near_triples(corpus, near, everyday_only=False)
    scores = precision_verify.correlate_pairs(
        corpus, triples, cache=args.cache, key=settings_key(settings), workers=args.workers
    )
    verified_positives = (
        precision_verify.verify_positives(args.devset, settings, *rule) if positives is not None else None
    )
    everyday = (corpus.genre[triples[:, 0]] == 0) & (corpus.genre[triples[:, 1]] == 0)
    margin = precision_verify.margins(scores, settings.matching)  # once: the rule per row is a loop
    for key, name, subset, with_positives in (
        ("verification", HEADLINE, everyday, verified_positives),
        ("verification_all", ALL_DIFFERENT, slice(None), None),
    ):
        report[key] = precision_verify.verification_report(
            corpus,
            settings,
            triples[subset],
            margin[subset],
            p_rule=report["populations"][name]["estimates"]["rule"]["p"],
            positives_verified=with_positives,
        )
    report["frontier"] = {
        name: precision_verify.frontier(
            triples[subset],
            margin[subset],
            photo=corpus.photo,
            p_rule_of=lambda a, b, name=name: report["p_rule_at"][name][f"{a},{b}"],
            found_of=lambda a, b: recall(positives, a, b) if positives is not None else 0,
        )
        for name, subset in ((HEADLINE, everyday), (ALL_DIFFERENT, slice(None)))
    }
    if args.json:
        print(json.dumps(_finite(report), default=_json_default, allow_nan=False))
    else:
        print_report(report, time.perf_counter() - started)


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


if __name__ == "__main__":
    main()
