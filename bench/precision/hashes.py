"""The hashes of the corpus pictures, through the project's own code, cached incrementally.

Each picture goes through decode_picture, then hash_entry (as a dataset entry) and hash_query (as
a query: every variant). Hashing is the slow part of the bench (~1-3 s a picture), so the hashes
are kept as .npz under the cache folder, keyed by the hashing and decoding settings and the code
that hashes: a run hashes only the pictures no earlier run hashed under the same key.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

import bot.borders
import bot.decoding
import bot.hashing
import bot.verification
from bench.photo_corpus import Picture, picture_bytes
from bot.config import Settings, load_settings
from bot.decoding import ImageRejectedError, decode_picture
from bot.hashing import PHash, hash_entry, hash_query

HASHING_CODE = (bot.hashing, bot.borders, bot.decoding, bot.verification)  # a change re-hashes
CACHE_FORMAT = 8  # bump when HashTable's columns change
VARIANT_NAME = "<U64"  # the dtype of a variant's name


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
    def columns() -> tuple[str, ...]:
        return tuple(field.name for field in fields(HashTable))

    def rows(self, index: np.ndarray) -> HashTable:
        return HashTable(**{name: getattr(self, name)[index] for name in self.columns()})

    def padded(self, width: int) -> HashTable:
        """The same table with room for ``width`` query variants."""
        extra = width - self.query_phash.shape[1]
        if extra <= 0:
            return self
        pad = {"query_phash": 0, "query_pdq": 0, "query_variant": ""}
        values = {name: getattr(self, name) for name in self.columns()}
        for name, fill in pad.items():
            array = values[name]
            shape = (array.shape[0], extra, *array.shape[2:])
            values[name] = np.concatenate([array, np.full(shape, fill, dtype=array.dtype)], axis=1)
        return HashTable(**values)

    @staticmethod
    def concat(tables: list[HashTable]) -> HashTable:
        width = max(t.query_phash.shape[1] for t in tables)
        tables = [t.padded(width) for t in tables]
        return HashTable(**{n: np.concatenate([getattr(t, n) for t in tables]) for n in HashTable.columns()})


def hash_one(data: bytes, settings: Settings) -> HashTable:
    """One picture's row (its id left empty), through the project's own code; a picture that
    decode_picture refuses has its reason, zero hashes and no query variant."""
    try:
        image = decode_picture(data, settings.decoding).image
    except ImageRejectedError as exc:
        return _row(rejected=exc.reason, variants=0)
    entry = hash_entry(image, settings.hashing)
    query = hash_query(image, settings.hashing)
    row = _row(rejected="", variants=len(query.variants))
    row.entry_phash[0] = np.uint64(entry.phash)
    row.entry_pdq[0] = entry.pdq
    row.entry_quality[0] = entry.quality
    row.plain_phash[0] = np.uint64(int(PHash.compute(image)[0]))
    row.query_phash[0] = query.phash
    row.query_pdq[0] = query.pdq
    row.query_variant[0] = query.variants
    row.query_quality[0] = query.quality
    if entry.thumbnail is not None:
        row.entry_thumbnail[0] = entry.thumbnail
    if entry.chroma is not None:
        row.entry_chroma[0] = entry.chroma
    return row


def _row(*, rejected: str, variants: int) -> HashTable:
    return HashTable(
        ids=np.array([""]),
        rejected=np.array([rejected]),
        entry_phash=np.zeros(1, np.uint64),
        entry_pdq=np.zeros((1, 4), np.uint64),
        entry_quality=np.zeros(1, np.int16),
        plain_phash=np.zeros(1, np.uint64),
        query_phash=np.zeros((1, variants), np.uint64),
        query_pdq=np.zeros((1, variants, 4), np.uint64),
        query_variant=np.full((1, variants), "", dtype=VARIANT_NAME),
        query_quality=np.zeros(1, np.int16),
        entry_thumbnail=np.zeros((1, 16, 16), np.uint8),
        entry_chroma=np.zeros((1, 2, 8, 8), np.int8),
    )


def settings_key(settings: Settings) -> str:
    """Changes when anything that changes a hash changes: hashing and decoding settings, code."""
    digest = hashlib.sha256()
    digest.update(json.dumps([CACHE_FORMAT, asdict(settings.hashing), asdict(settings.decoding)]).encode())
    for module in HASHING_CODE:
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()[:20]


def picture_id(picture: Picture) -> str:
    return f"{picture.name}|{picture.path.stat().st_size}"


def hash_pictures(
    pictures: list[Picture], settings: Settings, cache: Path, *, workers: int, label: str
) -> HashTable:
    """Hashes of ``pictures`` in order: from the cache when hashed before under the same settings
    and code, otherwise computed over ``workers`` processes and added to the cache."""
    path = cache / "hashes" / f"{label}-{settings_key(settings)}.npz"
    ids = [picture_id(p) for p in pictures]
    stored: HashTable | None = None
    if path.exists():
        with np.load(path, allow_pickle=False) as saved:
            stored = HashTable(**{name: saved[name] for name in HashTable.columns()})
    known = {} if stored is None else {str(i): row for row, i in enumerate(stored.ids)}
    missing = [index for index, i in enumerate(ids) if i not in known]
    if missing:
        fresh = _hash_missing(pictures, ids, missing, workers=workers, label=label)
        stored = fresh if stored is None else HashTable.concat([stored, fresh])
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **{name: getattr(stored, name) for name in HashTable.columns()})
        known = {str(i): row for row, i in enumerate(stored.ids)}
    assert stored is not None
    return stored.rows(np.array([known[i] for i in ids], dtype=np.int64))


# Pictures of one photograph to hash: (their positions in the list, the pictures).
_Task = tuple[list[int], list[Picture]]
_worker_settings: Settings | None = None


def _init_worker() -> None:
    global _worker_settings  # noqa: PLW0603 - one settings object per worker process
    _worker_settings = load_settings(with_deployment_files=False)


def _hash_task(task: _Task) -> list[tuple[int, HashTable]]:
    """Hash pictures of one photograph (the photograph is decoded once for all its tiles)."""
    assert _worker_settings is not None
    indices, pictures = task
    position = {picture.name: index for index, picture in zip(indices, pictures, strict=True)}
    return [(position[p.name], hash_one(data, _worker_settings)) for p, data in picture_bytes(pictures)]


def _tasks(pictures: list[Picture], indices: list[int], per_task: int = 48) -> list[_Task]:
    groups: dict[str, list[int]] = {}
    for index in indices:
        picture = pictures[index]
        groups.setdefault(picture.photo if picture.box else "", []).append(index)
    return [
        (chunk, [pictures[i] for i in chunk])
        for members in groups.values()
        for chunk in (members[s : s + per_task] for s in range(0, len(members), per_task))
    ]


def _hash_missing(
    pictures: list[Picture], ids: list[str], missing: list[int], *, workers: int, label: str
) -> HashTable:
    started = time.perf_counter()
    results: dict[int, HashTable] = {}
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
    table = HashTable.concat([results[index] for index in missing])
    table.ids = np.array([ids[index] for index in missing])
    return table
