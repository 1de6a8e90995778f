"""The index a running desk serves, and what is asked of it besides a look-up, part by part.

The bot serves one index folder, a folder of parts (``parts.json``), or those parts on a Dask
cluster (``[discord] dask`` / ``run --dask``); :func:`serving` opens whichever the settings name as
a :class:`~bot.index.search.Searchable`. Without a cluster every folder is served as a
:class:`~bot.index.parts.PartedIndex` (a plain folder is its one part): each query goes through
:func:`bot.index.parts.open_part`, so shards appended by ``index build --append`` are searched by the
running bot from the next query on.

Warming, verifying and "is it still there" are asked of every part where it is served
(``each_part``: here, or on the part's Dask worker), so one function of an opened
:class:`HashIndex` serves every backend. The functions handed to ``each_part`` are module-level:
a Dask worker receives them pickled.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from bot.index.parts import PartedIndex
from bot.index.search import HashIndex, Searchable
from bot.index.served import dask_index


@contextmanager
def serving(folder: Path, dask: str = "") -> Iterator[Searchable]:
    """The served index at ``folder``, searched in this process, or on the Dask cluster whose
    scheduler is at ``dask`` (its parts opened by their workers); the client is closed after."""
    if dask:
        with dask_index(dask, folder) as remote:
            yield remote
    else:
        yield PartedIndex(folder)


@asynccontextmanager
async def serving_off_loop(folder: Path, dask: str = "") -> AsyncIterator[Searchable]:
    """:func:`serving` for a program on an event loop: opened and closed in a worker thread. A Dask
    ``Client`` made there is a synchronous one with its own loop thread, so its calls (each check
    makes them from ``asyncio.to_thread``) never run on, nor wait for, the caller's loop."""
    opened = serving(folder, dask)
    index = await asyncio.to_thread(opened.__enter__)
    try:
        yield index
    finally:
        await asyncio.to_thread(opened.__exit__, None, None, None)


def _warm_part(index: HashIndex) -> int:
    index.warm()
    return len(index)


def warm(index: Searchable) -> int:
    """Map every part's search tables ahead of the first queries; the entries served."""
    return sum(entries for _, entries in index.each_part(_warm_part))


def _verify_part(index: HashIndex) -> int:
    return index.verify()


def verify(index: Searchable) -> int:
    """Compare every part's shard files with their checksums (IndexFormatError, or for a part on a
    worker IncompleteSearchError, at the first that differs); the shards verified."""
    return sum(verified for _, verified in index.each_part(_verify_part))


def _part_present(index: HashIndex) -> bool:
    """The opened part knows its size and its shard folders are still there (a disk unmounted or a
    part moved away under the running bot fails this)."""
    len(index)
    return index.folder.is_dir() and all(shard.path.is_dir() for shard in index.shards)


def answers(index: Searchable) -> bool:
    """Every part opens (again, if it changed on disk) and its files are there; a part that cannot
    be reached raises IncompleteSearchError."""
    return all(present for _, present in index.each_part(_part_present))
