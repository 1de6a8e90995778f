"""From a checked picture to a ticket: the one path the command line and Discord both take."""

from __future__ import annotations

from bot.checking import CheckResult
from bot.index.search import FoundEntry, HashIndex
from bot.tickets.models import MatchedEntry, Ticket
from bot.tickets.store import TicketStore


def matched_entries(index: HashIndex, found: list[FoundEntry]) -> list[MatchedEntry]:
    """What a ticket keeps of each match: the dataset's description and the entry's own hashes."""
    return [MatchedEntry.from_found(item, index.entry_hashes(item.match)) for item in found]


async def file_removal_request(
    store: TicketStore,
    index: HashIndex,
    result: CheckResult,
    requester: str,
    *,
    note: str | None = None,
    source: str = "cli",
) -> Ticket:
    """Open a ticket for everything ``result`` matched. The picture itself is long gone by now:
    ``result`` holds only its hashes."""
    return await store.create_ticket(
        requester=requester,
        query=result.query,
        entries=matched_entries(index, result.found),
        note=note,
        source=source,
    )
