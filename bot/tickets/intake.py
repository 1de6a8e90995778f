"""From a checked picture to a ticket: the one path the command line and Discord both take."""

from __future__ import annotations

import asyncio

from bot.checking import CheckResult
from bot.index.search import FoundEntry, Searchable
from bot.tickets.models import MatchedEntry, Ticket
from bot.tickets.store import TicketStore


def matched_entries(index: Searchable, found: list[FoundEntry]) -> list[MatchedEntry]:
    """What a ticket keeps of each match: the dataset's description and the entry's own hashes
    (read from the part that holds the entry: on a Dask worker, a round trip)."""
    return [MatchedEntry.from_found(item, index.entry_hashes(item.match)) for item in found]


async def file_removal_request(
    store: TicketStore,
    index: Searchable,
    result: CheckResult,
    requester: str,
    *,
    note: str | None = None,
    source: str = "cli",
) -> Ticket:
    """Open a ticket for everything ``result`` matched. The picture itself is long gone by now:
    ``result`` holds only its hashes. The entries' hashes are read in a thread: from a Dask
    cluster they are a round trip, never the event loop's to wait for."""
    entries = await asyncio.to_thread(matched_entries, index, result.found)
    return await store.create_ticket(
        requester=requester,
        query=result.query,
        entries=entries,
        note=note,
        source=source,
    )
