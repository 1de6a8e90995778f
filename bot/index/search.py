"""Search an index: every entry that the match rule accepts for a query, best first, exactly.

The scan is vectorised: pHash distances (the searched kind, :data:`bot.signals.SEARCHED`) for all
query variants against a block of entries in one numpy expression, then every other kind of hash
checked only for the few entries within the pHash radius. The result
equals the plain rule in :mod:`bot.matching` applied to every entry (tests prove it). Given the
query's views, the entries all hashes accept are then verified against their thumbnails
(:mod:`bot.verification`): the same step after the tables as after the scan.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

from bot.config import MatchingSettings
from bot.hashing import EntryHashes, QueryHashes, RowKind
from bot.index.mih import MAX_TABLE_RADIUS, open_search_tables
from bot.index.storage import DatasetEntry, Manifest, ShardReader
from bot.matching import EntryMatch, MatchDistance, phash_limits, verification_order
from bot.signals import SEARCHED, checked_kinds, ranked_kinds, signal_kinds
from bot.verification import QueryViews, correlation_passes, has_thumbnail, unjudgeable
from bot.whole_picture import WholeHashes

log = logging.getLogger(__name__)

T = TypeVar("T")
# Entries scanned per numpy step: (variants x block) uint8 distances stay a few MB, in cache.
_BLOCK = 1 << 18
# A check of a picture gives its views and is verified on the pixels; hash-level measurements
# (benches, hash lists) give none and stop at the match rule.
Views = QueryViews | None


@dataclass(frozen=True)
class FoundEntry:
    """A match with the dataset's own description of the entry."""

    match: EntryMatch
    entry: DatasetEntry
    # Where in the entry's picture the photograph that matched lies (fractions left, top, right,
    # bottom); None when the whole picture matched.
    part: tuple[float, float, float, float] | None = None


def _strict(rule: MatchingSettings) -> MatchingSettings:
    """The rule for an entry too plain for its hashes to count (PDQ quality under the gate): only
    its pixels can say it is a copy, so both correlations must reach the smooth pictures' minimum
    whatever its detail (see ``verify_min_smooth`` in the config)."""
    bar = max(rule.verify_min_smooth, rule.verify_min_shape, rule.verify_min_detail)
    return replace(rule, verify_min_shape=bar, verify_min_detail=bar)


@dataclass(frozen=True)
class LookUp:
    """What a check learns from the index: the copies found, and how many entries near the query
    in both hashes were too plain for the hashes to count and were not confirmed by their pixels
    either. Those are not matches; a person is told they exist rather than "no copy"."""

    found: list[FoundEntry]
    unjudged: int = 0
    # Copies found whose removal was already approved: left out of ``found``, counted so the
    # person is told "already removed" rather than "no copy".
    removed: int = 0
    # Entries searched for this answer (every part's): "N pictures compared" told to the person.
    entries: int = 0


class HashIndex:
    """An opened index. Opening maps the arrays; nothing is read until a search touches it.

    Shards covered by the index's search tables (``DIR/search``, see :mod:`bot.index.mih`) are
    searched through them; any shard they do not cover (an index from an older version, or
    tables not yet refreshed after ``--append``) is scanned. Both paths are exact.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.manifest = Manifest.read(folder)
        for name in self.manifest.shards:  # sizes only: free, catches truncated and swapped files
            self.manifest.check_shard(folder, name)
        unverifiable = self.manifest.unverifiable()
        if unverifiable:
            log.warning(
                "%d of %d shard(s) of %s were written before checksums were kept: a damaged file in "
                "them cannot be detected; rebuild the index to have them checked",
                len(unverifiable), len(self.manifest.shards), folder,
            )  # fmt: skip
        self.shards = [ShardReader(folder / "shards" / name) for name in self.manifest.shards]
        self.tables = open_search_tables(folder, self.shards)
        covered = len(self.tables.covered.shards) if self.tables else 0
        self._covered_starts = np.cumsum([0] + [len(shard) for shard in self.shards[:covered]])
        self.scanned = self.shards[covered:]
        self._by_name: dict[str, ShardReader] | None = None

    def __len__(self) -> int:
        """Entries (pictures of the dataset); :attr:`rows` counts what the search goes through."""
        return sum(shard.entries for shard in self.shards)

    @property
    def rows(self) -> int:
        """Hashed regions: an entry's whole picture, and each photograph inside a composite."""
        return sum(len(shard) for shard in self.shards)

    def verify(self) -> int:
        """Compare every shard file with its checksum in the manifest (reads the whole index: ~1 s
        per GB and core, on every core); raise IndexFormatError at the first that differs. Returns
        the number of shards verified (those written before checksums were kept are not)."""
        names = [name for name in self.manifest.shards if name in self.manifest.files]
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:  # hashlib drops the GIL
            for _ in pool.map(
                lambda name: self.manifest.check_shard(self.folder, name, checksums=True), names
            ):
                pass
        return len(names)

    def warm(self) -> None:
        """Map the search tables' pages ahead of the first queries (see :meth:`MultiIndex.warm`)."""
        if self.tables is not None:
            self.tables.warm()

    def _verified(
        self,
        shard: ShardReader,
        rows: np.ndarray,
        variant_ids: np.ndarray,
        *,
        query: QueryHashes,
        rule: MatchingSettings,
        views: QueryViews | None,
        searched_distance: np.ndarray | None = None,
    ) -> Iterator[EntryMatch]:
        """The (row, variant) pairs whose pHash is close enough, checked against the whole rule.

        An entry may be close through several variants: they are verified closest first, and the
        first that lines up is the match (the rest are not computed)."""
        if not rows.size:
            return
        if searched_distance is None:
            searched_distance = SEARCHED.distances(
                shard.signals[SEARCHED.name][rows], query.signals[SEARCHED.name][variant_ids]
            )
        distances = {SEARCHED.name: searched_distance}
        near = np.ones(rows.size, dtype=bool)
        for kind in checked_kinds():
            distances[kind.name] = kind.distances(
                shard.signals[kind.name][rows], query.signals[kind.name][variant_ids]
            )
            near &= distances[kind.name] <= kind.max_distance(rule)
        # (pairs, kinds): what ranks a pair, the finest kind first (MatchDistance.ranking)
        ranking = np.stack([distances[kind.name] for kind in ranked_kinds()], axis=1)
        usable = shard.quality[rows] >= rule.pdq_min_quality
        if views is not None and shard.thumbnail is not None and rule.verify_unjudgeable_below > 0:
            # an entry too sparse for its pixels to say more than its hashes is judged as a
            # plain one: counted as near, never confirmed (bot.verification.unjudgeable)
            for row in np.unique(rows[near & usable]).tolist():  # each row's thumbnail once
                thumbnail = np.asarray(shard.thumbnail[row])
                if has_thumbnail(thumbnail) and unjudgeable(thumbnail, rule):
                    usable[rows == row] = False
        close: dict[int, list[tuple[tuple[int, ...], int]]] = {}
        plain: dict[int, list[tuple[tuple[int, ...], int]]] = {}
        for row, variant, ranks, judged in zip(
            rows[near].tolist(),
            variant_ids[near].tolist(),
            ranking[near].tolist(),
            usable[near].tolist(),
            strict=True,
        ):
            (close if judged else plain).setdefault(row, []).append((tuple(ranks), variant))
        for row, variants in close.items():
            variants.sort()
            verified = self._first_verified(shard, row, variants, query=query, rule=rule, views=views)
            if verified is not None:
                ranks, variant = verified
                yield EntryMatch(
                    shard=shard.name,
                    row=row,
                    distance=MatchDistance.ranked(ranks),
                    variant=query.variants[variant],
                )
        strict = _strict(rule)
        for row, variants in plain.items():
            variants.sort()
            confirmed = None
            if (
                views is not None
                and shard.thumbnail is not None
                and has_thumbnail(np.asarray(shard.thumbnail[row]))
            ):
                confirmed = self._first_verified(shard, row, variants, query=query, rule=strict, views=views)
            ranks, variant = confirmed or variants[0]
            yield EntryMatch(
                shard=shard.name,
                row=row,
                distance=MatchDistance.ranked(ranks),
                variant=query.variants[variant],
                judged=confirmed is not None,
            )

    @staticmethod
    def _first_verified(
        shard: ShardReader,
        row: int,
        variants: list[tuple[tuple[int, ...], int]],
        *,
        query: QueryHashes,
        rule: MatchingSettings,
        views: QueryViews | None,
    ) -> tuple[tuple[int, ...], int] | None:
        """The closest variant through which the entry's thumbnail lines up with the query.

        Without views (a search on hashes alone: the search benchmark, the hash-rule tests) or
        without a thumbnail (an entry indexed from precomputed hashes) there is nothing to verify
        with, and the closest variant stands.

        The hashes only nominate the entry: when no variant within the rule lines up, the query's
        other variants near the entry (``verify_near_*``) are tried too, closest first. A
        rotated copy, for one, is found by the hashes of a trimmed region that its black corners
        shifted, and lines up through a plain crop the hashes judged a little too far. The match
        keeps the distance and variant the hashes found it by."""
        if views is None or shard.thumbnail is None:
            return variants[0]
        thumbnail = np.asarray(shard.thumbnail[row])
        if not has_thumbnail(thumbnail):
            return variants[0]
        chroma = None if shard.chroma is None else np.asarray(shard.chroma[row])
        found = [variant for _, variant in variants]
        kind = shard.row_kind(row)
        for variant in verification_order(query, shard.row_signals(row), rule, found, kind=kind):
            correlation = views.correlate(query.variants[variant], thumbnail, chroma)
            if correlation_passes(correlation, rule):
                return next((close for close in variants if close[1] == variant), variants[0])
        return None

    def _scan_shard(
        self, shard: ShardReader, query: QueryHashes, rule: MatchingSettings, views: QueryViews | None
    ) -> Iterator[EntryMatch]:
        """Linear scan: every entry against every variant, a block at a time."""
        query_phash = query.phash[:, None]
        limits = phash_limits(query, rule).astype(np.int8)  # (kinds, V); -1: not looked for
        kinds = shard.kinds
        for start in range(0, len(shard), _BLOCK):
            block = shard.phash[start : start + _BLOCK]
            distance = np.bitwise_count(block[None, :] ^ query_phash).view(np.int8)  # 0..64
            block_kinds = kinds[start : start + _BLOCK]
            # each row within the radius its own kind is looked for at
            row_limits = limits[block_kinds].T if block_kinds.any() else limits[RowKind.PICTURE][:, None]
            close = distance <= row_limits
            variant_ids, offsets = np.nonzero(close)
            yield from self._verified(
                shard, offsets + start, variant_ids, query=query, rule=rule, views=views
            )

    def _search_tables(
        self, query: QueryHashes, rule: MatchingSettings, views: QueryViews | None
    ) -> Iterator[EntryMatch]:
        """Multi-index lookup of the pHash radius, then the whole rule on the few entries found."""
        if self.tables is None:
            return
        ordinals, variant_ids, distances = self._within_limits(query, rule)
        shard_numbers = np.searchsorted(self._covered_starts, ordinals, side="right") - 1
        for number in np.unique(shard_numbers).tolist():
            mine = shard_numbers == number
            rows = ordinals[mine] - self._covered_starts[number]
            yield from self._verified(
                self.shards[number],
                rows,
                variant_ids[mine],
                query=query,
                rule=rule,
                views=views,
                searched_distance=distances[mine],
            )

    def _within_limits(self, query: QueryHashes, rule: MatchingSettings) -> tuple[np.ndarray, ...]:
        """(row ordinal, variant, distance) within each variant's pHash radius among the rows of
        the kind it is aimed at: one table search per kind and radius, so that a guess pays only
        for the buckets of its own."""
        assert self.tables is not None
        parts = []
        for kind, limits in zip(RowKind, phash_limits(query, rule), strict=True):
            for limit in np.unique(limits[limits >= 0]).tolist():
                variants = np.flatnonzero(limits == limit)
                ordinals, rows, distances = self.tables.within(query.phash[variants], limit, kind)
                parts.append((ordinals, variants[rows], distances))
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        return tuple(np.concatenate(arrays) for arrays in zip(*parts, strict=True))

    def scan(
        self, query: QueryHashes, rule: MatchingSettings, views: Views = None, *, unjudged: bool = False
    ) -> list[EntryMatch]:
        """The same answer as :meth:`search` from a linear scan of every shard (the reference)."""
        matches = [match for shard in self.shards for match in self._scan_shard(shard, query, rule, views)]
        return self._best_per_entry(matches, unjudged)

    def _best_per_entry(self, matches: list[EntryMatch], unjudged: bool) -> list[EntryMatch]:
        """Best first, one match per entry: a composite found through its whole picture and one of
        its photographs (or two) is one dataset entry, kept by its closest row; an entry matched
        is not also unjudged. Unjudged entries (``judged`` False) are kept only when asked for."""
        ordered = sorted(matches, key=lambda match: (not match.judged, *match.sort_key))
        if not unjudged:
            ordered = [match for match in ordered if match.judged]
        seen: set[tuple[str, int]] = set()
        best = []
        for match in ordered:
            entry = (match.shard, self._shard(match.shard).entry_number(match.row))
            if entry not in seen:
                seen.add(entry)
                best.append(match)
        return best

    def search(
        self, query: QueryHashes, rule: MatchingSettings, views: Views = None, *, unjudged: bool = False
    ) -> list[EntryMatch]:
        """Every entry the match rule accepts, best (closest) first; verified when ``views`` are
        given (every check of a picture gives them; only hash-level measurements leave them out).

        With ``unjudged``, the entries too plain to be judged by their hashes that are near the
        query and that no pixel check confirmed follow, marked ``judged=False``."""
        if rule.phash_max_distance > MAX_TABLE_RADIUS:
            return self.scan(query, rule, views, unjudged=unjudged)
        matches = list(self._search_tables(query, rule, views))
        matches += [match for shard in self.scanned for match in self._scan_shard(shard, query, rule, views)]
        return self._best_per_entry(matches, unjudged)

    def _shard(self, name: str) -> ShardReader:
        if self._by_name is None:
            self._by_name = {shard.name: shard for shard in self.shards}
        return self._by_name[name]

    def describe(self, match: EntryMatch) -> DatasetEntry:
        return self.describe_row(match.shard, match.row)

    def describe_row(self, shard_name: str, row: int) -> DatasetEntry:
        """The dataset's description (key, URL, caption) of row ``row``'s entry."""
        return self._shard(shard_name).entry(row)

    def part_box(self, match: EntryMatch) -> tuple[float, float, float, float] | None:
        """Where in the entry's picture the matched photograph lies; None: the whole picture."""
        return self._shard(match.shard).part_box(match.row)

    def entry_hashes(self, match: EntryMatch) -> EntryHashes:
        """The hashes the index stores for a matched entry (a removal list carries them)."""
        return self.filed_hashes(match.shard, match.row)

    def filed_hashes(self, shard_name: str, row: int) -> EntryHashes:
        """What a ticket keeps of row ``row``'s entry: the row's hashes and the entry's
        whole-picture hashes where the shard keeps them (one row of each mapped file: filing
        reads them, a check never does)."""
        hashes = self.row_hashes(shard_name, row)
        shard = self._shard(shard_name)
        pdq, phash, quality = shard.whole_pdq, shard.whole_phash, shard.whole_quality
        if pdq is None or phash is None or quality is None:
            return hashes
        number = shard.entry_number(row)
        whole = WholeHashes(np.array(pdq[number], np.uint64), int(phash[number]), int(quality[number]))
        return replace(hashes, whole=whole)

    def row_hashes(self, shard_name: str, row: int) -> EntryHashes:
        """The hashes the index stores for row ``row`` of shard ``shard_name``."""
        shard = self._shard(shard_name)
        return EntryHashes(
            signals={
                kind.name: kind.entry_value(np.array(shard.signals[kind.name][row]))
                for kind in signal_kinds()
            },
            quality=int(shard.quality[row]),
        )

    def find(
        self,
        query: QueryHashes,
        rule: MatchingSettings,
        removed: Collection[tuple[str, str]] = frozenset(),
        *,
        views: QueryViews | None,
    ) -> list[FoundEntry]:
        """Matches with the dataset's description, minus entries whose removal was approved (see
        :meth:`look_up`, which also counts the entries that could not be judged)."""
        return self.look_up(query, rule, removed, views=views).found

    def look_up(
        self,
        query: QueryHashes,
        rule: MatchingSettings,
        removed: Collection[tuple[str, str]] = frozenset(),
        *,
        views: QueryViews | None,
    ) -> LookUp:
        """Matches with the dataset's description, minus entries whose removal was approved, and
        how many entries near the query were too plain to judge.

        ``removed`` holds (key, url or "") pairs, as :meth:`TicketStore.removed_entries` gives
        them: once a removal is approved, the entry stops matching, so nobody is shown (or files
        a ticket for) a picture that is already gone from the dataset.
        """
        described = (
            (match, self.describe(match), self.part_box(match))
            for match in self.search(query, rule, views, unjudged=True)
        )
        return collect_look_up(described, removed, entries=len(self))

    def each_part(self, function: Callable[[HashIndex], T]) -> list[tuple[str, T]]:
        """``function`` of this index, its one part (named "", as :mod:`bot.index.parts` names it)."""
        return [("", function(self))]


# A match with what the index says of it: the dataset's description and the matched photograph's box.
Described = tuple[EntryMatch, DatasetEntry, tuple[float, float, float, float] | None]


def collect_look_up(
    described: Iterable[Described], removed: Collection[tuple[str, str]], *, entries: int = 0
) -> LookUp:
    """A look-up from every match the search returned (``unjudged`` included, best first): entries
    whose removal was approved are counted and left out, unjudged ones counted. One function for a
    single index and for the parts of a served one (:mod:`bot.index.parts`), so both answer alike."""
    found: list[FoundEntry] = []
    unjudged = already_removed = 0
    for match, entry, box in described:
        if (entry.key, entry.url or "") in removed:
            already_removed += match.judged
            continue
        if match.judged:
            found.append(FoundEntry(match=match, entry=entry, part=box))
        else:
            unjudged += 1
    return LookUp(found=found, unjudged=unjudged, removed=already_removed, entries=entries)


class Searchable(Protocol):
    """What a check needs of an index: :class:`HashIndex`, the parts of a served index searched
    here (:class:`bot.index.parts.PartedIndex`) or on a Dask cluster
    (:class:`bot.index.served.DaskIndex`) all answer it, alike.

    Whatever else is asked of an index (warm it, verify it, describe it, is it still there) is
    asked of each part where it is served, through :meth:`each_part` (see
    :mod:`bot.index.serving`): one path for one index, parts here and parts on a cluster."""

    folder: Path

    def look_up(
        self,
        query: QueryHashes,
        rule: MatchingSettings,
        removed: Collection[tuple[str, str]] = frozenset(),
        *,
        views: QueryViews | None,
    ) -> LookUp: ...

    def entry_hashes(self, match: EntryMatch) -> EntryHashes: ...

    def each_part(self, function: Callable[[HashIndex], T]) -> list[tuple[str, T]]:
        """(part name, ``function`` of the opened part) for every part; IncompleteSearchError
        (:mod:`bot.index.parts`) when a part cannot be reached. ``function`` may run in another
        process (a Dask worker): a module-level function, or a ``functools.partial`` of one."""
        ...
