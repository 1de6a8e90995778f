"""A served index made of parts, and the search of one part that every backend runs.

A **part** is a complete index folder (manifest, shards, its own search tables), built by ``index
build --out DIR/parts/NAME`` on one machine or over one slice of the sources. A served index is
either one index folder (one part, named "") or a folder listing its parts in ``parts.json``::

    DIR/parts.json   {"format": "removal-desk-parts", "version": 1, "parts": ["parts/000", ...]}

Each listed path is relative to DIR. The list is explicit on purpose: a part whose folder is gone
or unreadable is then an error that names it, never an index that silently became smaller (as a
glob over ``DIR/parts/*`` would make it). Adding a part is adding its path to the list
(:func:`write_parts`, atomic); it is read again before every query.

Shard names repeat across parts ("00000" in every one), so a match from a part is named
``PART/SHARD`` (the part's path as listed, then the shard); a plain index keeps its bare names, and
answers exactly as :class:`HashIndex` does.

:func:`search_part` is what one part answers for one query, the same function whether run here
(:class:`PartedIndex`) or on a Dask worker (:mod:`bot.index.served`). It keeps opened parts in a
process-wide cache, keyed by the part's manifest and search tables as found on disk: shards
appended by a build (a new manifest) are searched from the next query on, without a restart.
:func:`merge` puts the parts' answers together exactly as one index orders its own.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TypeVar

from bot.config import MatchingSettings
from bot.durable import write_text_durably
from bot.errors import RemovalDeskError
from bot.hashing import EntryHashes, QueryHashes
from bot.index.mih import search_folder
from bot.index.search import Described, HashIndex, LookUp, collect_look_up
from bot.index.storage import IndexFormatError
from bot.matching import EntryMatch
from bot.verification import QueryViews

PARTS_NAME = "parts.json"
PARTS_FORMAT = "removal-desk-parts"
PARTS_VERSION = 1

T = TypeVar("T")


class IncompleteSearchError(RemovalDeskError):
    """Some part of a served index did not answer: no answer is given from the others."""

    def __init__(self, failures: dict[str, str]) -> None:
        self.failures = failures
        named = "; ".join(f"part {name or '(the index)'!r}: {why}" for name, why in sorted(failures.items()))
        super().__init__(
            f"the search could not reach every part of the index, so it gives no answer from the "
            f"others ({named})"
        )


@dataclass(frozen=True)
class Part:
    """One part of a served index: its name in match identities ("" for a plain index) and folder."""

    name: str
    path: Path

    def qualified(self, shard: str) -> str:
        return f"{self.name}/{shard}" if self.name else shard


def read_parts(folder: Path) -> list[Part]:
    """The parts of the served index at ``folder``: those ``parts.json`` lists, or the folder itself
    when it is an index. Raises IndexFormatError for anything else."""
    listing = folder / PARTS_NAME
    if not listing.exists():
        if (folder / "manifest.json").exists():
            return [Part("", folder)]
        raise IndexFormatError(
            f"{folder} is not an index (no manifest.json) nor a list of parts ({PARTS_NAME})"
        )
    try:
        document = json.loads(listing.read_text(encoding="utf-8"))
        if document.get("format") != PARTS_FORMAT or document.get("version") != PARTS_VERSION:
            raise ValueError(f"format {document.get('format')!r} version {document.get('version')!r}")
        names = [str(name) for name in document["parts"]]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IndexFormatError(f"{listing} is not a list of parts this program reads ({exc})") from exc
    _check_names(listing, names)
    return [Part(name, folder / name) for name in names]


def _check_names(listing: Path, names: list[str]) -> None:
    for name in names:
        path = PurePosixPath(name)
        if not name or path.is_absolute() or ".." in path.parts or name != str(path):
            raise IndexFormatError(
                f"{listing} lists {name!r}: a part is a plain path relative to {listing.parent}"
            )
    if len(set(names)) != len(names):
        raise IndexFormatError(f"{listing} lists a part twice")


def write_parts(folder: Path, names: Iterable[str]) -> None:
    """List ``names`` (paths relative to ``folder``) as the served index's parts, atomically.
    Refuses (IndexFormatError, nothing written) names a query would refuse."""
    listed = list(names)
    _check_names(folder / PARTS_NAME, listed)
    document = {"format": PARTS_FORMAT, "version": PARTS_VERSION, "parts": listed}
    folder.mkdir(parents=True, exist_ok=True)
    write_text_durably(folder / PARTS_NAME, json.dumps(document, indent=1))


@dataclass(frozen=True)
class PartQuery:
    """One query as a part is asked it. Its ``repr`` says nothing of the picture: a Dask worker
    logs a failed task's arguments, and the views are small copies of a person's picture."""

    query: QueryHashes
    rule: MatchingSettings
    views: QueryViews | None

    def __repr__(self) -> str:
        return "PartQuery(<a query>)"

    def without_caches(self) -> PartQuery:
        """The same query with views that carry only what a worker needs (not their caches)."""
        if self.views is None:
            return self
        return PartQuery(self.query, self.rule, QueryViews(bases=self.views.bases, boxes=self.views.boxes))


@dataclass(frozen=True)
class PartAnswer:
    """Every match one part has for a query (unjudged ones too), best first, shard names qualified
    with the part's; ``worker``: where it was searched (None: in this process)."""

    part: str
    matches: list[Described]
    worker: str | None = None
    entries: int = 0  # the entries the part searched (a person is told how many were compared)


# Parts opened in this process, by folder: (what the folder held when opened, the opened index).
_opened: dict[str, tuple[tuple[object, ...], HashIndex]] = {}
_opening = threading.Lock()


def _stamp(folder: Path) -> tuple[object, ...]:
    """What changes when a build adds shards (the manifest is replaced) or the search tables are
    rebuilt (search.json is written last): either makes the part be opened again."""
    stamps: list[object] = []
    for path in (folder / "manifest.json", search_folder(folder) / "search.json"):
        try:
            status = os.stat(path)
        except FileNotFoundError:
            stamps.append(None)
        else:
            stamps.append((status.st_ino, status.st_size, status.st_mtime_ns))
    return tuple(stamps)


def open_part(path: Path) -> HashIndex:
    """The part at ``path``, opened once per process and again whenever its manifest or tables
    changed on disk. Raises IndexFormatError when it is missing or damaged."""
    key = str(path)
    with _opening:
        stamp = _stamp(path)
        cached = _opened.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        index = HashIndex(path)
        _opened[key] = (stamp, index)
        return index


def search_part(part: Part, request: PartQuery, worker: str | None = None) -> PartAnswer:
    """What ``part`` answers for ``request``: every match with its description and box."""
    index = open_part(part.path)
    matches: list[Described] = []
    for match in index.search(request.query, request.rule, request.views, unjudged=True):
        entry, box = index.describe(match), index.part_box(match)
        named = EntryMatch(
            shard=part.qualified(match.shard),
            row=match.row,
            distance=match.distance,
            variant=match.variant,
            judged=match.judged,
        )
        matches.append((named, entry, box))
    return PartAnswer(part=part.name, matches=matches, worker=worker, entries=len(index))


def part_entry_hashes(part: Part, shard: str, row: int) -> EntryHashes:
    """The hashes ``part`` stores for row ``row`` of its shard ``shard`` (bare name)."""
    return open_part(part.path).filed_hashes(shard, row)


def on_part(part: Part, function: Callable[[HashIndex], T]) -> T:
    """``function`` of the opened part (a served index's :meth:`each_part`, here or on a worker)."""
    return function(open_part(part.path))


def merge(answers: Iterable[PartAnswer], removed: Collection[tuple[str, str]]) -> LookUp:
    """The parts' answers as one index gives its own: matched entries first, each best first (the
    ordering of :meth:`HashIndex.search`). An entry lives in one part, and each part gives one
    match per entry, so nothing is left to deduplicate."""
    answers = list(answers)
    described = [item for answer in answers for item in answer.matches]
    described.sort(key=lambda item: (not item[0].judged, *item[0].sort_key))
    return collect_look_up(described, removed, entries=sum(answer.entries for answer in answers))


def split_shard(name: str) -> tuple[str, str]:
    """(part, bare shard) of a match's shard name."""
    part, _, shard = name.rpartition("/")
    return part, shard


def open_served(folder: Path) -> HashIndex | PartedIndex:
    """The index at ``folder`` to search in this process: its parts when it lists some, else the
    index itself (opened as it always was)."""
    if (folder / PARTS_NAME).exists():
        return PartedIndex(folder)
    return HashIndex(folder)


class PartedIndex:
    """A served index searched in this process, part after part (the reference the Dask backend
    must equal, what ``check`` uses on one machine, and what the bot serves without a cluster).

    Every part goes through :func:`open_part` on every query, a plain index folder too (one part
    named ""): shards appended by ``index build --append`` are searched from the next query on.
    A part that cannot be opened or listed then (its folder gone, a damaged manifest) makes the
    query fail with :class:`IncompleteSearchError`, never answer from the others."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        for part in read_parts(folder):  # fail now, clearly, if a part is missing
            open_part(part.path)

    def _parts(self) -> list[Part]:
        try:
            return read_parts(self.folder)
        except IndexFormatError as exc:
            raise IncompleteSearchError({"": str(exc)}) from exc

    def _opened(self) -> list[tuple[Part, HashIndex]]:
        """Every part opened (again if it changed), or IncompleteSearchError naming those that fail."""
        opened, failures = [], {}
        for part in self._parts():
            try:
                opened.append((part, open_part(part.path)))
            except (IndexFormatError, OSError) as exc:
                failures[part.name] = str(exc)
        if failures:
            raise IncompleteSearchError(failures)
        return opened

    def look_up(
        self,
        query: QueryHashes,
        rule: MatchingSettings,
        removed: Collection[tuple[str, str]] = frozenset(),
        *,
        views: QueryViews | None,
    ) -> LookUp:
        request = PartQuery(query, rule, views)
        answers, failures = [], {}
        for part in self._parts():
            try:
                answers.append(search_part(part, request))
            except (IndexFormatError, OSError) as exc:  # opened again as it changed, and failed
                failures[part.name] = str(exc)
        if failures:
            raise IncompleteSearchError(failures)
        return merge(answers, removed)

    def each_part(self, function: Callable[[HashIndex], T]) -> list[tuple[str, T]]:
        """``function`` of every opened part, with the part's name, in the listed order."""
        return [(part.name, function(index)) for part, index in self._opened()]

    def entry_hashes(self, match: EntryMatch) -> EntryHashes:
        part_name, shard = split_shard(match.shard)
        part = next((part for part in self._parts() if part.name == part_name), None)
        if part is None:
            raise IncompleteSearchError({part_name: f"{self.folder} no longer lists it"})
        try:
            return part_entry_hashes(part, shard, match.row)
        except (IndexFormatError, OSError) as exc:
            raise IncompleteSearchError({part_name: str(exc)}) from exc
