"""Search every hash of an imported partner list against the whole index, on the hashes alone.

A partner list carries a hash, never the picture: nothing can be lined up and compared as a
person's picture is (bot.verification), so the rule here is a hash-only one, stricter than a
person's check:

* **PDQ**: distance ≤ 31 (python-threatexchange's ``PDQ_CONFIDENT_MATCH_THRESHOLD``, what its own
  PDQ index matches within) to the entry's *whole-picture* PDQ, and that hash's quality ≥ 50
  (``PdqSignal.QUALITY_THRESHOLD``, PDQ's authors' cut-off: a flatter picture's hash is noise, and
  python-threatexchange does not even hash it). Two unrelated pictures' PDQ hashes lie ~128 bits
  apart; a re-encoded or resized copy stays within a few bits, well inside 31.
* **pHash**: distance ≤ 4 of 64 to the entry's whole-picture pHash, no quality gate (pHash does not
  rate its hashes). Weaker than the PDQ rule: pHash's bits are far from independent on real
  photographs, and 64 bits leave little room (the index's own pHash radius is 16, and only a
  verified picture makes that safe), so its hits deserve a closer look at review.
* **MD5**: equal to the MD5 of the entry's file bytes (``md5.npy`` (N, 16) uint8, kept where the
  build read the file or a hash Parquet file brought img2dataset's ``md5`` column), distance 0.
  Only the very same file matches: a copy re-encoded, resized or with one byte changed does not,
  and neither does a file img2dataset resized on download (its MD5 is of the bytes it wrote).

A list's hash is of the whole picture (python-threatexchange hashes the file as it is), while an
index row hashes an entry's central region: the two differ by ~126 of 256 bits, so the scan
compares list hashes with each entry's whole-picture hashes, kept per entry beside the shard's
rows (``whole_pdq.npy`` (N, 4) uint64 in ``pdq.npy``'s word layout, ``whole_phash.npy`` (N,),
``whole_quality.npy`` (N,) uint8). A shard without them (or, for a list's MD5s, without
``md5.npy``) cannot be scanned: it is reported (rebuild it), never silently skipped, and the scan
says it is incomplete. A shard is read only for what the lists carry: MD5s alone never open the
whole-picture files.

The search is exact. The list is the small side: its hashes go into a faiss binary index
(``IndexBinaryFlat``, a popcount per pair) and the entries stream through it a chunk at a time
(``range_search``). A list of one to three hashes is compared by numpy instead, where faiss's
per-query overhead costs more than it saves (bench/hashlist.py, docs/measurements.md). MD5s are
sorted once and each chunk of entries looked up by binary search (``np.searchsorted``).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
from threatexchange.signal_type.pdq.pdq_utils import PDQ_CONFIDENT_MATCH_THRESHOLD
from threatexchange.signal_type.pdq.signal import PdqSignal

from bot.errors import RemovalDeskError
from bot.index.parts import open_served
from bot.index.search import HashIndex, Searchable
from bot.index.storage import MD5_BYTES, IndexFormatError, ShardReader
from bot.signals import PDQ, PHash
from bot.tickets.models import MatchedEntry

PDQ_MAX_DISTANCE = PDQ_CONFIDENT_MATCH_THRESHOLD  # 31
PDQ_MIN_QUALITY = PdqSignal.QUALITY_THRESHOLD  # 50
PHASH_MAX_DISTANCE = 4
MAX_DISTANCE = {"pdq": PDQ_MAX_DISTANCE, "phash": PHASH_MAX_DISTANCE}
WORDS = {"pdq": 4, "phash": 1}
WHOLE_PICTURE_SIGNALS = tuple(MAX_DISTANCE)  # matched against the whole-picture hashes
SCANNED_SIGNALS = (*WHOLE_PICTURE_SIGNALS, "md5")
NOT_COMPARED = -1  # a ticket entry's distance for the signal type the list hash is not

CHUNK = 1 << 16  # entries compared at once: a few MB, whatever the shard's size
NUMPY_BELOW = 4  # lists shorter than this are compared by numpy (faster there, measured)


@dataclass(frozen=True, slots=True)
class ListHash:
    """One hash of a stored list: which list and line it came from, and the list's own entry id."""

    list_id: int
    line: int
    signal: str
    hash: str
    entry_id: str | None = None
    category: str | None = None


@dataclass(frozen=True)
class ScanHit:
    """A dataset entry a list hash matched: ``entry`` is PART/SHARD/ROW as tickets name entries."""

    list_hash: ListHash
    entry: str
    key: str
    url: str | None
    distance: int
    ticket_entry: MatchedEntry | None = None  # what a ticket keeps of the entry, if filed

    def in_part(self, part: str) -> ScanHit:
        """The hit named as the served index names it: PART/SHARD/ROW."""
        if not part:
            return self
        entry = f"{part}/{self.entry}"
        kept = None if self.ticket_entry is None else replace(self.ticket_entry, entry_id=entry)
        return replace(self, entry=entry, ticket_entry=kept)

    def to_dict(self) -> dict[str, object]:
        return {
            "list": self.list_hash.list_id, "line": self.list_hash.line,
            "list_entry_id": self.list_hash.entry_id, "signal": self.list_hash.signal,
            "hash": self.list_hash.hash, "entry": self.entry, "key": self.key, "url": self.url,
            "distance": self.distance,
        }  # fmt: skip


@dataclass
class ScanReport:
    """What a scan found and what it could not look at."""

    hits: list[ScanHit] = field(default_factory=list)
    hashes: dict[str, int] = field(default_factory=dict)  # list hashes scanned, by signal
    entries: int = 0  # entries compared
    low_quality: int = 0  # entries whose whole-picture PDQ is under PDQ_MIN_QUALITY
    unscannable: dict[str, str] = field(default_factory=dict)  # PART/SHARD -> why
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return not self.unscannable

    def add(self, part: str, found: ScanReport) -> None:
        """Take in one part's report (its names made PART/SHARD/ROW)."""
        self.hits.extend(hit.in_part(part) for hit in found.hits)
        self.entries += found.entries
        self.low_quality += found.low_quality
        self.unscannable.update(
            {f"{part}/{name}" if part else name: why for name, why in found.unscannable.items()}
        )


@dataclass(frozen=True)
class WholeColumns:
    """A shard's whole-picture hashes, one row per entry, memory-mapped."""

    pdq: np.ndarray  # (N, 4) uint64
    phash: np.ndarray  # (N,) uint64
    quality: np.ndarray  # (N,) uint8

    def column(self, signal: str) -> np.ndarray:
        """(N, words) uint64 of ``signal``."""
        column = self.pdq if signal == "pdq" else self.phash
        return column.reshape(len(column), WORDS[signal])


class UnscannableShardError(RemovalDeskError):
    """A shard that has no whole-picture hashes (or damaged ones): it must be rebuilt."""


def whole_columns(shard: ShardReader) -> WholeColumns:
    """The shard's whole-picture hashes; UnscannableShardError when it has none or they are
    damaged (a shard written before they were kept must be rebuilt)."""
    try:
        pdq, phash, quality = shard.whole_pdq, shard.whole_phash, shard.whole_quality
    except IndexFormatError as exc:
        raise UnscannableShardError(
            f"not scannable: its whole-picture hashes cannot be read ({exc})"
        ) from exc
    if pdq is None or phash is None or quality is None:
        raise UnscannableShardError("not scannable: no whole-picture hashes; rebuild it")
    if pdq.ndim != 2 or pdq.shape[1] != 4:
        raise UnscannableShardError(
            "not scannable: its whole-picture PDQ is not 4 words an entry; rebuild it"
        )
    return WholeColumns(np.asarray(pdq, np.uint64), np.asarray(phash, np.uint64), quality)


def file_md5s(shard: ShardReader) -> np.ndarray:
    """The shard's (N, 16) uint8 file MD5s; UnscannableShardError when it has none or they are
    damaged (a shard written before they were kept, or from a hash file without them)."""
    try:
        column = shard.md5
    except IndexFormatError as exc:
        raise UnscannableShardError(f"not scannable for MD5: its file MD5s cannot be read ({exc})") from exc
    if column is None:
        raise UnscannableShardError("not scannable for MD5: no file MD5s kept; rebuild it")
    return column


def hash_words(text: str) -> np.ndarray:
    """A list hash (hex, first bit first) as the index's words: (words,) uint64."""
    return np.frombuffer(bytes.fromhex(text), dtype=">u8").astype(np.uint64)


class ListMatcher:
    """Every pair (list hash, entry) within ``radius`` bits, exactly, for one signal's list."""

    def __init__(self, words: np.ndarray, radius: int) -> None:
        self.words = np.ascontiguousarray(words, dtype=np.uint64)  # (L, W)
        self.radius = radius
        self._faiss = None
        if len(self.words) >= NUMPY_BELOW:
            import faiss

            self._faiss = faiss.IndexBinaryFlat(self.words.shape[1] * 64)
            self._faiss.add(self.words.view(np.uint8))

    def pairs(self, chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(entry positions in ``chunk``, list positions, distances) of every pair within the radius."""
        chunk = np.ascontiguousarray(chunk, dtype=np.uint64)
        if self._faiss is None:
            return numpy_pairs(self.words, chunk, self.radius)
        # faiss's range is exclusive: < radius + 1 is <= radius. The distance is the same whatever
        # the bytes' order, as long as both sides use one (the same uint64 words seen as bytes).
        limits, distances, labels = self._faiss.range_search(chunk.view(np.uint8), self.radius + 1)
        entries = np.repeat(np.arange(len(chunk)), np.diff(limits).astype(np.int64))
        return entries, labels.astype(np.int64), distances.astype(np.int64)


class MD5Matcher:
    """Every pair (list MD5, entry) of equal MD5s. The list is sorted once by its first 8 bytes;
    each entry's are looked up by binary search, and the few found compared whole (a list may
    hold the same MD5 on several lines: each is a pair).

    A table of the list's top bits (~64 slots a list hash, 64 KB to 64 MB) first leaves out the
    entries no list hash can equal: a binary search per entry cost ~45 ns, the table look-up a few
    (1e8 entries against 10,000 MD5s: 10 s without it, 0.4 s with it; bench/hashlist.py)."""

    def __init__(self, digests: np.ndarray) -> None:
        words = _md5_words(digests)  # (L, 2): only equality and one order matter, not byte order
        self.order = np.lexsort((words[:, 1], words[:, 0]))
        self.first = np.ascontiguousarray(words[self.order, 0])
        self.second = np.ascontiguousarray(words[self.order, 1])
        bits = int(np.clip(np.ceil(np.log2(max(len(self.first), 1))) + 6, 16, 26))
        self.shift = np.uint64(64 - bits)
        self.listed = np.zeros(1 << bits, dtype=bool)
        self.listed[self.first >> self.shift] = True

    def pairs(self, chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(entry positions in ``chunk`` (n, 16), list positions, distances: all 0) of every pair."""
        words = _md5_words(chunk)
        found = np.flatnonzero(self.listed[words[:, 0] >> self.shift])
        starts = np.searchsorted(self.first, words[found, 0])
        inside = starts < len(self.first)
        found, starts = found[inside], starts[inside]
        equal = self.first[starts] == words[found, 0]
        found, starts = found[equal], starts[equal]
        entries, listed = [], []
        # The hits, and entries whose first 8 bytes equal a list hash's by chance (one in 2**64).
        for entry, start in zip(found.tolist(), starts.tolist(), strict=True):
            position = start
            while position < len(self.first) and self.first[position] == words[entry, 0]:
                if self.second[position] == words[entry, 1]:
                    entries.append(entry)
                    listed.append(int(self.order[position]))
                position += 1
        return np.array(entries, np.int64), np.array(listed, np.int64), np.zeros(len(entries), np.int64)


def _md5_words(digests: np.ndarray) -> np.ndarray:
    """(n, 16) uint8 MD5s as (n, 2) uint64 words."""
    return np.ascontiguousarray(digests, dtype=np.uint8).reshape(-1, MD5_BYTES).view(np.uint64)


def md5_digests(texts: Sequence[str]) -> np.ndarray:
    """List MD5s (32 hex digits) as (L, 16) uint8."""
    return np.frombuffer(b"".join(bytes.fromhex(text) for text in texts), np.uint8).reshape(-1, MD5_BYTES)


def numpy_pairs(
    words: np.ndarray, chunk: np.ndarray, radius: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:meth:`ListMatcher.pairs` one list hash at a time by numpy popcount (also the baseline)."""
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for position, word in enumerate(words):
        distance = np.bitwise_count(chunk ^ word).sum(axis=1, dtype=np.int64)
        near = np.flatnonzero(distance <= radius)
        found.append((near, np.full(len(near), position, np.int64), distance[near]))
    if not found:
        return (np.zeros(0, np.int64),) * 3  # type: ignore[return-value]
    entries, listed, distances = (np.concatenate(parts) for parts in zip(*found, strict=True))
    return entries, listed, distances


def column_pairs(
    matcher: ListMatcher | MD5Matcher, column: np.ndarray, allowed: np.ndarray | None = None
) -> Iterator[tuple[int, int, int]]:
    """(entry number, list position, distance) of every pair of ``column`` (N, W) within the
    matcher's radius (an MD5Matcher's: equal), streamed a chunk at a time; entries where
    ``allowed`` is False are left out."""
    for start in range(0, len(column), CHUNK):
        entries, listed, distances = matcher.pairs(column[start : start + CHUNK])
        entries = entries + start
        if allowed is not None and len(entries):
            keep = allowed[entries]
            entries, listed, distances = entries[keep], listed[keep], distances[keep]
        yield from zip(entries.tolist(), listed.tolist(), distances.tolist(), strict=True)


def _picture_rows(shard: ShardReader) -> Callable[[int], int]:
    """Entry number -> the row of its whole picture: its first row (ShardWriter.add writes it
    first). rows.npy is opened once a shard and read only where the binary search looks."""
    rows_path = shard.path / "rows.npy"
    if not rows_path.exists():
        return lambda number: number
    rows = np.load(rows_path, mmap_mode="r")
    return lambda number: bisect.bisect_left(range(len(rows)), number, key=lambda row: int(rows[row, 0]))


def scan_index(folder: Path, hashes: Sequence[ListHash]) -> ScanReport:
    """Every hash of ``hashes`` (PDQ, pHash and MD5; others are not scanned) against every entry of
    the index at ``folder`` (an index or a folder of parts), part after part in this process, by
    the module's hash-only rule."""
    return scan_served(open_served(folder), hashes)


def scan_served(index: Searchable, hashes: Sequence[ListHash]) -> ScanReport:
    """:func:`scan_index` over a served index: each part scanned where the index keeps it (in
    turn here, or by its Dask worker, all at once, for a :class:`bot.index.served.DaskIndex`);
    IncompleteSearchError (bot.index.parts) naming a part that could not be reached."""
    started = time.perf_counter()
    report = ScanReport()
    for part_name, found in index.each_part(partial(scan_part, hashes=tuple(hashes))):
        report.add(part_name, found)
    report.hashes = {
        signal: count for signal in SCANNED_SIGNALS if (count := sum(h.signal == signal for h in hashes))
    }
    report.hits.sort(key=lambda hit: (hit.list_hash.list_id, hit.list_hash.line, hit.distance, hit.entry))
    report.seconds = time.perf_counter() - started
    return report


def scan_part(index: HashIndex, hashes: Sequence[ListHash]) -> ScanReport:
    """One part's (or one plain index's) scan, its hits named SHARD/ROW: run where the part is
    (a module-level function, so a Dask worker can run it)."""
    by_signal = {signal: [h for h in hashes if h.signal == signal] for signal in SCANNED_SIGNALS}
    matchers: dict[str, tuple[list[ListHash], ListMatcher | MD5Matcher]] = {
        signal: (listed, ListMatcher(np.stack([hash_words(h.hash) for h in listed]), MAX_DISTANCE[signal]))
        for signal, listed in by_signal.items()
        if listed and signal in WHOLE_PICTURE_SIGNALS
    }
    if by_signal["md5"]:
        matchers["md5"] = (by_signal["md5"], MD5Matcher(md5_digests([h.hash for h in by_signal["md5"]])))
    report = ScanReport()
    for shard in index.shards:
        _scan_shard(index, shard, matchers, report)
    return report


def _scan_shard(
    index: HashIndex,
    shard: ShardReader,
    matchers: dict[str, tuple[list[ListHash], ListMatcher | MD5Matcher]],
    report: ScanReport,
) -> None:
    columns: dict[str, np.ndarray] = {}
    allowed: dict[str, np.ndarray] = {}
    missing: list[str] = []
    if any(signal in matchers for signal in WHOLE_PICTURE_SIGNALS):
        try:
            whole = whole_columns(shard)
        except UnscannableShardError as exc:
            missing.append(str(exc))
        else:
            allowed["pdq"] = np.asarray(whole.quality) >= PDQ_MIN_QUALITY
            report.low_quality += int(shard.entries - np.count_nonzero(allowed["pdq"]))
            columns.update((signal, whole.column(signal)) for signal in WHOLE_PICTURE_SIGNALS)
    if "md5" in matchers:
        try:
            columns["md5"] = file_md5s(shard)
        except UnscannableShardError as exc:
            missing.append(str(exc))
    if missing:
        report.unscannable[shard.name] = "; ".join(missing)
    if not columns:
        return
    picture_row = _picture_rows(shard)
    report.entries += shard.entries
    for signal, (listed, matcher) in matchers.items():
        if signal not in columns:
            continue
        for number, position, distance in column_pairs(matcher, columns[signal], allowed.get(signal)):
            report.hits.append(_hit(index, shard, picture_row(number), listed[position], distance))


def _hit(index: HashIndex, shard: ShardReader, row: int, list_hash: ListHash, distance: int) -> ScanHit:
    """A hit, with what a ticket keeps of its entry read where the shard is: the row's hashes
    (which the hash blocklist carries) and the entry's whole-picture PDQ (which the ThreatExchange
    export carries), so that filing needs no second visit to the part. The list hash's distance
    goes in its signal's column; the other's is -1 (not compared: a list hash is of one type; an
    MD5's hit has -1 in both)."""
    described = shard.entry(row)
    hashes = index.filed_hashes(shard.name, row)
    whole = hashes.whole
    signal = list_hash.signal
    entry = MatchedEntry(
        key=described.key,
        url=described.url,
        caption=described.caption,
        entry_id=f"{shard.name}/{row}",
        phash=PHash.to_hex(hashes.phash),
        pdq=PDQ.to_hex(hashes.pdq),
        quality=hashes.quality,
        pdq_distance=distance if signal == "pdq" else NOT_COMPARED,
        phash_distance=distance if signal == "phash" else NOT_COMPARED,
        variant=f"list:{signal}",
        whole_pdq=None if whole is None else PDQ.to_hex(whole.pdq),
        whole_quality=None if whole is None else whole.quality,
    )
    return ScanHit(list_hash, entry.entry_id, entry.key, entry.url, distance, entry)
