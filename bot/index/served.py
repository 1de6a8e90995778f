"""Serve an index from a Dask distributed cluster: each part searched by a worker, answers merged.

The parts of a served index (:mod:`bot.index.parts`) are assigned to the cluster's workers, round
robin in name order, and then moving as few as can be when workers come and go (:func:`balanced`).
Every query becomes one task per part, sent to the part's worker, which keeps the part
memory-mapped between queries (:func:`bot.index.parts.open_part`: the worker process's own cache,
re-opened when the part's manifest changes, so appended shards are searched without a restart).
A part's folder is read under the same path on every machine, from a shared disk or from a copy
on a machine's own disk: each worker is asked which part folders it can read (when the workers
are looked at, below), and a part is assigned only to one of those. A part every worker can read
may run on another worker when its own is gone; a part on some machines' disks only waits for its
worker, and a query it is in is refused if that worker dies (the next goes to another holder). The
client reads ``parts.json`` itself before each query, so it sees the list too.

A query is answered from every part or not at all: a part whose task fails (its folder missing or
damaged), whose workers kept dying on it (Dask's ``KilledWorker``) or which does not answer in
time raises :class:`IncompleteSearchError`, which names the parts. A worker that dies while its
tasks run has them re-run on the others (``allow_other_workers``); the assignment is made again
when the set of workers changes (a replaced worker has a new address), looked at when a part's
answer came from another worker than assigned, and every ``_WORKERS_CHECKED_EVERY`` seconds.

Removals are left out where the answers are merged, on the client, from the list passed with each
query: an approved removal stops matching at once, whichever worker found the entry.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from bot.config import MatchingSettings
from bot.hashing import EntryHashes, QueryHashes
from bot.index.parts import (
    IncompleteSearchError,
    Part,
    PartAnswer,
    PartQuery,
    merge,
    on_part,
    part_entry_hashes,
    read_parts,
    search_part,
    split_shard,
)
from bot.index.search import HashIndex, LookUp
from bot.index.storage import IndexFormatError
from bot.matching import EntryMatch
from bot.verification import QueryViews

__all__ = ["DEFAULT_TIMEOUT", "DaskIndex", "IncompleteSearchError", "balanced", "dask_index"]

T = TypeVar("T")

# How long a query waits for every part before it is refused (a worker lost without a
# replacement leaves its tasks waiting for one).
DEFAULT_TIMEOUT = 60.0
# How often the set of workers is asked for (a round trip to the scheduler), to spread the parts
# over workers that joined, or replaced dead ones, since the last assignment.
_WORKERS_CHECKED_EVERY = 10.0


def _search_on_worker(part: Part, request: PartQuery) -> PartAnswer:
    """A part's task: search it in the worker's process (its opened parts are kept there)."""
    from distributed import get_worker

    return search_part(part, request, worker=get_worker().address)


def _readable_parts(paths: list[str]) -> list[str]:
    """Run on every worker (``Client.run``): the part folders this worker can read, whether on a
    shared disk or a copy on its machine's own."""
    return [path for path in paths if os.access(os.path.join(path, "manifest.json"), os.R_OK)]


def balanced(
    names: list[str],
    workers: tuple[str, ...],
    before: dict[str, str],
    holders: dict[str, frozenset[str]] | None = None,
) -> dict[str, str]:
    """Part name -> worker, as few parts moved as can be: a part stays on its worker while that one
    lives (its pages stay in that machine's cache), the parts of workers gone and new parts go to
    the least loaded, and then parts move from the most to the least loaded worker until no two
    differ by more than one part. From nothing: round robin in name order over the workers in
    address order.

    ``holders`` (part name -> the workers that can read it; absent: every worker) keeps a part
    whose folder lies on some machines' own disks on those; a part no living worker holds is left
    out (a query then names it)."""
    if not workers:
        return {}
    alive = set(workers)
    allowed = {
        name: sorted(alive if holders is None or name not in holders else holders[name] & alive)
        for name in names
    }
    assigned = {name: before[name] for name in names if before.get(name) in allowed[name]}
    load = dict.fromkeys(workers, 0)
    for worker in assigned.values():
        load[worker] += 1
    for name in names:
        if name not in assigned and allowed[name]:
            worker = min(allowed[name], key=lambda w: (load[w], w))
            assigned[name], load[worker] = worker, load[worker] + 1
    while True:  # each move lowers the sum of squared loads: this ends
        moves = [
            (load[worker] - load[target], worker, name, target)
            for name, worker in assigned.items()
            for target in [min(allowed[name], key=lambda w: (load[w], w))]
            if load[worker] - load[target] > 1
        ]
        if not moves:
            break
        _, most, _, _ = max(moves, key=lambda move: (load[move[1]], move[1]))
        _, _, moved, least = max(move for move in moves if move[1] == most)
        assigned[moved] = least
        load[most], load[least] = load[most] - 1, load[least] + 1
    return {name: assigned[name] for name in names if name in assigned}


class DaskIndex:
    """A served index searched on the Dask cluster of ``client`` (a ``distributed.Client``)."""

    def __init__(self, client: Any, folder: Path, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.client = client
        self.folder = folder
        self.timeout = timeout
        self._assigned: dict[str, str] = {}
        self._workers: tuple[str, ...] = ()
        self._holders: dict[str, frozenset[str]] = {}  # part name -> the workers that can read it
        self._checked_at = -float("inf")
        # The bot looks up from several threads at once: the workers seen and the assignment made
        # from them change together, or one thread could balance against another's half-update.
        self._lock = threading.Lock()

    def _look_at_cluster(self, parts: list[Part], *, now: bool = False) -> tuple[str, ...]:
        """The workers' addresses and which parts each can read, asked of the cluster when due,
        ``now``, or when the parts changed."""
        names = {part.name for part in parts}
        due = time.monotonic() - self._checked_at >= _WORKERS_CHECKED_EVERY
        if now or due or names != set(self._holders):
            self._workers = tuple(sorted(self.client.nthreads()))
            paths = [str(part.path) for part in parts]
            readable: dict[str, list[str]] = (
                self.client.run(_readable_parts, paths, workers=list(self._workers), on_error="ignore")
                if paths and self._workers
                else {}
            )
            self._holders = {
                part.name: frozenset(w for w, found in readable.items() if str(part.path) in found)
                for part in parts
            }
            self._checked_at = time.monotonic()
        return self._workers

    def _assignment(self, parts: list[Part], *, recheck: bool = False) -> dict[str, str]:
        """Part name -> its worker (see :func:`balanced`), made again when the workers changed.
        Raises IncompleteSearchError for a part that no worker can read."""
        with self._lock:
            before, held_before = self._workers, self._holders
            workers = self._look_at_cluster(parts, now=recheck)
            names = [part.name for part in parts]
            if workers != before or self._holders != held_before or set(names) != set(self._assigned):
                self._assigned = balanced(names, workers, self._assigned, self._holders)
            unheld = [name for name in names if workers and not self._holders.get(name)]
            if unheld:
                raise IncompleteSearchError(dict.fromkeys(unheld, "no worker can read its folder"))
            return self._assigned

    def open(self) -> int:
        """Have every part opened by its worker (fails now, naming the parts, if one cannot be);
        the entries served."""
        return sum(entries for _, entries in self._on_parts(len, recheck=True))

    def each_part(self, function: Callable[[HashIndex], T]) -> list[tuple[str, T]]:
        """``function`` of every part, run by the part's worker (IncompleteSearchError naming the
        parts that failed)."""
        return self._on_parts(function)

    def _on_parts(self, function: Callable[[HashIndex], T], *, recheck: bool = False) -> list[tuple[str, T]]:
        parts = read_parts(self.folder)
        assigned = self._assignment(parts, recheck=recheck)
        futures = {
            part.name: self._submit(on_part, part, assigned.get(part.name), function) for part in parts
        }
        return list(zip(futures, self._gather(futures), strict=True))

    def _submit(self, function: Any, part: Part, worker: str | None, *args: Any) -> Any:
        """A part's task for its worker. A part every worker can read may run on another when that
        one is gone; a part on some machines' own disks waits for its worker (or the timeout)."""
        shared = self._holders.get(part.name, frozenset()) >= set(self._workers)
        # pure=False: the same query asked twice is searched twice (the part may have grown).
        return self.client.submit(
            function,
            part,
            *args,
            workers=None if worker is None else [worker],
            allow_other_workers=worker is not None and shared,
            pure=False,
        )

    def _gather(self, futures: dict[str, Any]) -> list[Any]:
        """Every future's result, in order, or IncompleteSearchError naming those that failed.

        One wait for all and one gather of the results (each call into the client is a round
        trip through its event loop: asking each future in turn cost ~9 ms more a query)."""
        from distributed import KilledWorker, wait

        pending = list(futures.values())
        with suppress(TimeoutError):  # the parts still pending are named below
            wait(pending, timeout=self.timeout)
        failures: dict[str, str] = {}
        for name, future in futures.items():
            if future.status == "finished":
                continue
            if future.status != "error":
                failures[name] = f"no answer within {self.timeout:g} s (no worker left to search it?)"
                continue
            exc = future.exception()
            if isinstance(exc, KilledWorker):
                failures[name] = "the workers searching it kept dying"
            elif isinstance(exc, IndexFormatError):
                failures[name] = str(exc)
            else:  # any other failure of a part's task is named too
                failures[name] = f"its search failed ({type(exc).__name__}: {exc})"
        if failures:
            for future in pending:
                future.cancel()
            self._checked_at = -float("inf")  # the next call looks at the cluster again first
            raise IncompleteSearchError(failures)
        results: list[Any] = self.client.gather(pending)
        return results

    def look_up(
        self,
        query: QueryHashes,
        rule: MatchingSettings,
        removed: Collection[tuple[str, str]] = frozenset(),
        *,
        views: QueryViews | None,
    ) -> LookUp:
        """As :meth:`HashIndex.look_up`, from every part of the served index."""
        parts = read_parts(self.folder)
        assigned = self._assignment(parts)
        request = PartQuery(query, rule, views).without_caches()
        futures = {
            part.name: self._submit(_search_on_worker, part, assigned.get(part.name), request)
            for part in parts
        }
        answers: list[PartAnswer] = self._gather(futures)
        if any(answer.worker != assigned.get(answer.part) for answer in answers):
            self._assignment(parts, recheck=True)  # a part was searched elsewhere: a worker left
        return merge(answers, removed)

    def entry_hashes(self, match: EntryMatch) -> EntryHashes:
        """The hashes a part stores for a matched entry (a ticket keeps them)."""
        part_name, shard = split_shard(match.shard)
        part = next((part for part in read_parts(self.folder) if part.name == part_name), None)
        if part is None:
            raise IndexFormatError(f"{self.folder} has no part {part_name!r} (was it removed?)")
        worker = self._assignment(read_parts(self.folder)).get(part_name)
        future = self._submit(part_entry_hashes, part, worker, shard, match.row)
        hashes: EntryHashes = self._gather({part_name: future})[0]
        return hashes


@contextmanager
def dask_index(
    address: str, folder: Path, *, timeout: float = DEFAULT_TIMEOUT, connect_timeout: float | None = None
) -> Iterator[DaskIndex]:
    """The served index at ``folder`` on the Dask cluster whose scheduler is at ``address``
    (``tcp://host:8786``), its parts opened by their workers, for the length of the block;
    ``connect_timeout``: how long to try to reach the scheduler (None: Dask's setting, 30 s)."""
    from distributed import Client

    # Made in a thread without an event loop (the bot opens it through asyncio.to_thread), it is a
    # synchronous client running its own loop thread; the default one (distributed.wait needs it).
    # Closed, not left as a ``with`` block: the bot closes it from another thread than it was
    # made in, where the context ``Client.__exit__`` resets does not exist.
    client = Client(address) if connect_timeout is None else Client(address, timeout=connect_timeout)
    try:
        index = DaskIndex(client, folder, timeout=timeout)
        index.open()
        yield index
    finally:
        client.close()
