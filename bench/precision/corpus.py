"""The pictures the bench compares: the photo corpus's (unrelated pairs) and the dev set's (true
copies, for the recall at each threshold)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.photo_corpus import GENRES, SOURCES, Picture, gather, genre_of
from bench.precision.hashes import HashTable, hash_pictures
from bench.precision.pairs import PDQ_BITS, PHASH_BITS
from bot.config import Settings


@dataclass
class Corpus:
    """The usable corpus pictures: their hashes, and what they are."""

    table: HashTable
    names: np.ndarray
    photo: np.ndarray  # (N,) int: which photograph (tiles of one photograph share it)
    genre: np.ndarray  # (N,) int: index into photo_corpus.GENRES
    info: dict[str, Any]
    pictures: list[Picture]


def load_corpus(
    settings: Settings, cache: Path, *, sample: int, tile_side: int, tile_from: int, workers: int
) -> Corpus:
    """Hashes of the corpus pictures the matcher can use (entry and query quality >= the minimum);
    of a random ``sample`` of them when that is not 0."""
    pictures = gather(cache, tile_side=tile_side, tile_from=tile_from)
    gathered = len(pictures)
    if sample and sample < gathered:
        chosen = np.sort(np.random.default_rng(0).choice(gathered, sample, replace=False))
        pictures = [pictures[i] for i in chosen]
    table = hash_pictures(pictures, settings, cache, workers=workers, label="corpus")
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
        "tile_side": tile_side,
        "tile_from": tile_from,
        "per_package": per_package,
    }
    kept = [pictures[i] for i in np.flatnonzero(usable)]
    _, photo = np.unique(np.array([p.photo for p in kept]), return_inverse=True)
    return Corpus(
        table=table.rows(np.flatnonzero(usable)),
        names=np.array([p.name for p in kept]),
        photo=photo,
        genre=np.array([GENRES.index(genre_of(p.package)) for p in kept]),
        info=info,
        pictures=kept,
    )


@dataclass
class Positives:
    """The dev set's positive copies: per variant, distances to their true original."""

    names: list[str]
    phash: np.ndarray  # (P, V) int, padding = PHASH_BITS + 1
    pdq: np.ndarray  # (P, V) int
    quality_ok: np.ndarray  # (P,) bool: query and original both above the quality minimum

    def found(self, a: int, b: int) -> int:
        """Positives with a variant within (a, b) of their own original: the recall at (a, b)."""
        within = (self.phash <= a) & (self.pdq <= b)
        return int((within.any(axis=1) & self.quality_ok).sum())


def load_positives(devset: Path, settings: Settings, cache: Path, *, workers: int) -> Positives | None:
    """Hash the dev set's originals (as entries) and positive copies (as queries); None without
    a dev set."""
    truth_path = devset / "truth.json"
    if not truth_path.exists():
        return None
    truth: dict[str, str | None] = json.loads(truth_path.read_text())
    originals = {p.stem: p for p in sorted((devset / "index").iterdir())}
    queries = sorted(
        (name, original)
        for name, original in truth.items()
        if original in originals and (devset / "pos" / name).exists()
    )
    pictures = [Picture(f"devset/index/{p.name}", stem, "devset", p, None) for stem, p in originals.items()]
    pictures += [Picture(f"devset/pos/{n}", n, "devset", devset / "pos" / n, None) for n, _ in queries]
    table = hash_pictures(pictures, settings, cache, workers=workers, label="devset")
    row = {stem: i for i, stem in enumerate(originals)}
    q = np.arange(len(originals), len(pictures))
    e = np.array([row[original] for _, original in queries])
    valid = table.query_variant[q] != ""
    phash = np.bitwise_count(table.query_phash[q] ^ table.entry_phash[e][:, None]).astype(np.int64)
    pdq = np.bitwise_count(table.query_pdq[q] ^ table.entry_pdq[e][:, None, :]).sum(axis=-1).astype(np.int64)
    minimum = settings.matching.pdq_min_quality
    return Positives(
        names=[n for n, _ in queries],
        phash=np.where(valid, phash, PHASH_BITS + 1),
        pdq=np.where(valid, pdq, PDQ_BITS + 1),
        quality_ok=(table.rejected[q] == "")
        & (table.query_quality[q] >= minimum)
        & (table.entry_quality[e] >= minimum),
    )
