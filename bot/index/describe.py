"""What a maintainer asks of an index: how big, when built, from what, hashed how, matched how.

One description for every front end (``python -m bot index info``, the bot's ``/index info``), so
both say the same. Everything comes from the index itself (the manifest, its history, each
shard's summary, the files on disk) and from the settings in force: the radii shown are those the
running program applies, derived through the match rule's own code
(:func:`bot.matching.phash_limits`), not restated here. Nothing about a person is in it: sources
are the dataset paths the build was given.

Reading it opens every shard's ``shard.json`` and stats every file of the folder: ~1 ms a shard,
so a thread's work for a large index, never the event loop's.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bot.config import MatchingSettings, Settings
from bot.hashing import Guess, QueryHashes, RowKind
from bot.index.search import HashIndex, Searchable
from bot.index.storage import FORMAT_NAME, FORMAT_VERSION, IndexHistory
from bot.matching import phash_limits
from bot.signals import signal_kinds
from bot.signals.registry import SEARCHED


@dataclass(frozen=True)
class SourceSummary:
    """One dataset source as the build recorded it (its absolute path), and what it gave."""

    source: str
    shards: int
    entries: int
    failures: int


@dataclass(frozen=True)
class KindSummary:
    """One kind of hash: its size, whether the search tables are keyed on it (the others are checked
    on the rows the tables find), whether this index holds it, and its radii in force."""

    name: str
    bits: int
    searched: bool
    in_index: bool
    max_distance: int
    verify_near: int


@dataclass(frozen=True)
class IndexDescription:
    folder: str
    format: str
    format_version: int
    entries: int
    rows: int  # hashed regions: each entry's central region and core, each photograph of a composite
    # Entries whose removal is approved (skipped by every search); None when no ticket database
    # was consulted.
    removed: int | None
    built_at: str | None  # None: the manifest predates the timestamps
    last_added_at: str | None
    hashing: dict[str, Any]
    shards: list[dict[str, Any]]
    sources: list[SourceSummary]
    signal_kinds: list[KindSummary]
    thresholds: dict[str, Any]
    search_tables: dict[str, int]
    size_bytes: int
    failures: dict[str, int] = field(default_factory=dict)
    # Shards that keep each entry's whole-picture hashes (bot.whole_picture): a hash-list scan
    # needs them, and a shard written before has none until rebuilt.
    whole_picture_shards: int = 0
    # Shards that keep each entry's MD5 of its file bytes: a hash list's MD5s are matched there.
    md5_shards: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; the keys ``index info --json`` printed before (folder, entries, rows,
        hashing, shards, search_tables) keep their meaning."""
        return dataclasses.asdict(self)


def phash_radii(rule: MatchingSettings) -> dict[str, int]:
    """The pHash radius of each kind of query variant against each kind of row, as the match rule
    computes it for a query: plain variants against central regions, turned-back guesses, and
    the guesses at an entry's core (single cuts, and the crop grid). -1: never looked for."""
    guesses = np.array([Guess.NONE, Guess.TURN, Guess.CORE, Guess.GRID], dtype=np.uint8)
    empty = {kind.name: np.zeros((len(guesses), *kind.value_shape()), np.uint64) for kind in signal_kinds()}
    names = ("none", "turn", "core", "grid")
    query = QueryHashes(signals=empty, variants=names, quality=100, guesses=guesses)
    limits = phash_limits(query, rule)
    return {
        "picture": int(limits[RowKind.PICTURE][0]),
        "turned": int(limits[RowKind.PICTURE][1]),
        "core": int(limits[RowKind.CORE][0]),
        "core_guess": int(limits[RowKind.CORE][2]),
        "core_grid": int(limits[RowKind.CORE][3]),
    }


def thresholds(rule: MatchingSettings) -> dict[str, Any]:
    """The match rule and verification minimums in force (``[matching]`` of the settings)."""
    verification = {
        item.name.removeprefix("verify_"): getattr(rule, item.name)
        for item in dataclasses.fields(rule)
        if item.name.startswith("verify_") and not item.name.startswith("verify_near_")
    }
    return {
        "max_distance": {kind.name: kind.max_distance(rule) for kind in signal_kinds()},
        "pdq_min_quality": rule.pdq_min_quality,
        "phash_radii": phash_radii(rule),
        "verify_near": {kind.name: kind.near_distance(rule) for kind in signal_kinds()},
        "verification": verification,
    }


def size_on_disk(folder: Path) -> int:
    """Bytes of every file under ``folder`` (shards, search tables, manifest, ledger)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except FileNotFoundError:  # a temporary file renamed away meanwhile
                continue
    return total


def describe_index(index: HashIndex, settings: Settings, removed: int | None = None) -> IndexDescription:
    """The description of an opened index under ``settings``; ``removed`` is the number of approved
    removals (from the ticket store), if the caller has it."""
    shards: list[dict[str, Any]] = []
    per_source: dict[str, Counter[str]] = {}
    failures: Counter[str] = Counter()
    for shard in index.shards:
        summary = shard.summary()
        shard_failures = {str(k): int(v) for k, v in summary.get("failures", {}).items()}
        shards.append({"name": shard.name, "entries": shard.entries, "failures": shard_failures})
        failures.update(shard_failures)
        for source in summary.get("sources") or ["unknown"]:
            counts = per_source.setdefault(str(source), Counter())
            counts["shards"] += 1
            counts["entries"] += shard.entries
            counts["failures"] += sum(shard_failures.values())
    indexed_kinds = index.manifest.hashing.get("kinds", {})
    kinds = [
        KindSummary(
            name=kind.name,
            bits=kind.bits,
            searched=kind is SEARCHED,
            in_index=kind.name in indexed_kinds,
            max_distance=kind.max_distance(settings.matching),
            verify_near=kind.near_distance(settings.matching),
        )
        for kind in signal_kinds()
    ]
    tables = index.tables
    history = IndexHistory.read(index.folder)
    return IndexDescription(
        folder=str(index.folder),
        format=FORMAT_NAME,
        format_version=FORMAT_VERSION,
        entries=len(index),
        rows=index.rows,
        removed=removed,
        built_at=history.built_at,
        last_added_at=history.last_added_at,
        hashing=index.manifest.hashing,
        shards=shards,
        sources=[
            SourceSummary(source, counts["shards"], counts["entries"], counts["failures"])
            for source, counts in per_source.items()
        ],
        signal_kinds=kinds,
        thresholds=thresholds(settings.matching),
        search_tables={
            "covered_shards": len(tables.covered.shards) if tables else 0,
            "scanned_shards": len(index.scanned),
            "bytes": tables.nbytes if tables else 0,
        },
        size_bytes=size_on_disk(index.folder),
        failures=dict(failures),
        whole_picture_shards=sum(shard.has_whole for shard in index.shards),
        md5_shards=sum(shard.has_md5 for shard in index.shards),
    )


def describe_served(index: Searchable, settings: Settings, removed: int | None = None) -> IndexDescription:
    """The description of a served index: each part described where it is served (here, or by its
    Dask worker), then summed. A plain index folder (one part named "") is described exactly as
    :func:`describe_index` describes it."""
    described = index.each_part(functools.partial(describe_index, settings=settings))
    if len(described) == 1 and described[0][0] == "":
        return dataclasses.replace(described[0][1], removed=removed)
    return combined(str(index.folder), described, removed)


def combined(folder: str, parts: list[tuple[str, IndexDescription]], removed: int | None) -> IndexDescription:
    """The parts' descriptions as one: counts, sizes, shards (named ``PART/SHARD``, as matches name
    them), sources and failures summed; built when the first part was, added to when the last
    was. The hashing shown is the first part's (``doctor`` checks every part's against the
    settings); a kind of hash is in the index when every part holds it."""
    descriptions = [description for _, description in parts]
    sources: dict[str, Counter[str]] = {}
    for description in descriptions:
        for source in description.sources:
            counts = sources.setdefault(source.source, Counter())
            counts.update(shards=source.shards, entries=source.entries, failures=source.failures)
    failures: Counter[str] = Counter()
    tables: Counter[str] = Counter()
    for description in descriptions:
        failures.update(description.failures)
        tables.update(description.search_tables)
    built = [d.built_at for d in descriptions if d.built_at is not None]
    added = [d.last_added_at for d in descriptions if d.last_added_at is not None]
    first = descriptions[0] if descriptions else None
    kinds = [
        dataclasses.replace(kind, in_index=all(d.signal_kinds[number].in_index for d in descriptions))
        for number, kind in enumerate(first.signal_kinds if first else [])
    ]
    return IndexDescription(
        folder=folder,
        format=FORMAT_NAME,
        format_version=FORMAT_VERSION,
        entries=sum(d.entries for d in descriptions),
        rows=sum(d.rows for d in descriptions),
        removed=removed,
        built_at=min(built) if built else None,  # ISO 8601 in UTC: ordered as text
        last_added_at=max(added) if added else None,
        hashing=first.hashing if first else {},
        shards=[{**shard, "name": f"{name}/{shard['name']}"} for name, d in parts for shard in d.shards],
        sources=[
            SourceSummary(source, counts["shards"], counts["entries"], counts["failures"])
            for source, counts in sources.items()
        ],
        signal_kinds=kinds,
        thresholds=first.thresholds if first else {},
        search_tables={key: tables[key] for key in ("covered_shards", "scanned_shards", "bytes")},
        size_bytes=sum(d.size_bytes for d in descriptions),
        failures=dict(failures),
        whole_picture_shards=sum(d.whole_picture_shards for d in descriptions),
        md5_shards=sum(d.md5_shards for d in descriptions),
    )
