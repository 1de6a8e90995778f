"""A scan's hits as filing requests: one per list hash, with every entry it matched.

The scan read what a ticket keeps of each entry where the entry's part is (``ScanHit.ticket_entry``:
the row's hashes and the whole-picture PDQ, bot.hashlists.scan), so filing needs no index here,
whether the scan ran in this process or on a Dask cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.hashlists.scan import ScanHit
from bot.tickets.list_filing import ListHitRequest
from bot.tickets.models import ListOrigin


def hit_requests(hits: Sequence[ScanHit], sources: Mapping[int, str]) -> list[ListHitRequest]:
    """The filing requests for ``hits``, one per list hash in list and line order; ``sources``
    names each list's source by its id."""
    grouped: dict[tuple[int, int], list[ScanHit]] = {}
    for hit in hits:
        grouped.setdefault((hit.list_hash.list_id, hit.list_hash.line), []).append(hit)
    requests = []
    for (list_id, line), group in sorted(grouped.items()):
        listed = group[0].list_hash
        origin = ListOrigin(
            source=sources[list_id], list_id=list_id, line=line, list_entry_id=listed.entry_id,
            category=listed.category, signal_type=listed.signal, hash=listed.hash,
        )  # fmt: skip
        entries = tuple(hit.ticket_entry for hit in group if hit.ticket_entry is not None)
        requests.append(ListHitRequest(origin, entries))
    return requests
