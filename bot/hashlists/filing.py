"""A scan's hits as filing requests: one per list hash, with what a ticket keeps of each entry.

The scan names an entry PART/SHARD/ROW (ROW its whole picture's row); a ticket keeps the entry's
description and its hashes as a person's request would (the row's hashes, which the hash
blocklist carries, and the whole-picture PDQ, which the ThreatExchange export carries), so the
review and the removal list treat both kinds of ticket alike. The distance of the list's hash goes
in its signal type's column; the other type's is -1 (not compared: a list hash is one type).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from bot.hashlists.scan import ScanHit
from bot.index.parts import Part, open_part, read_parts, split_shard
from bot.signals import PDQ, PHash
from bot.tickets.list_filing import ListHitRequest
from bot.tickets.models import ListOrigin, MatchedEntry

NOT_COMPARED = -1


def hit_requests(folder: Path, hits: Sequence[ScanHit], sources: Mapping[int, str]) -> list[ListHitRequest]:
    """The filing requests for ``hits`` (a scan of the index at ``folder``), one per list hash in
    list and line order; ``sources`` names each list's source by its id."""
    parts = {part.name: part for part in read_parts(folder)}
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
        requests.append(ListHitRequest(origin, tuple(_matched(parts, hit) for hit in group)))
    return requests


def _matched(parts: Mapping[str, Part], hit: ScanHit) -> MatchedEntry:
    shard_name, _, row_text = hit.entry.rpartition("/")
    part_name, shard = split_shard(shard_name)
    index = open_part(parts[part_name].path)
    row = int(row_text)
    described = index.describe_row(shard, row)
    hashes = index.filed_hashes(shard, row)
    whole = hashes.whole
    signal = hit.list_hash.signal
    return MatchedEntry(
        key=described.key,
        url=described.url,
        caption=described.caption,
        entry_id=hit.entry,
        phash=PHash.to_hex(hashes.phash),
        pdq=PDQ.to_hex(hashes.pdq),
        quality=hashes.quality,
        pdq_distance=hit.distance if signal == "pdq" else NOT_COMPARED,
        phash_distance=hit.distance if signal == "phash" else NOT_COMPARED,
        variant=f"list:{signal}",
        whole_pdq=None if whole is None else PDQ.to_hex(whole.pdq),
        whole_quality=None if whole is None else whole.quality,
    )
