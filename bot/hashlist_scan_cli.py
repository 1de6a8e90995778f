"""``python -m bot hash-lists scan ...``: the stored lists of a source (or one list) against the index.

Prints every hit (the list, line and list's own entry id, the list hash, the dataset entry as
PART/SHARD/ROW with its key and URL, the distance) and the counts; ``--out`` writes the same
report as JSON to a file. ``--file`` files the hits as tickets for review, each (hash, entry)
once per source, so scanning again, or scanning a newer version of the list, files only what is
new (bot.tickets.list_filing); sources in ``[hash_lists] auto_approve`` are approved at once.
Without ``--file`` nothing is stored. Exit 1 when a shard could not be scanned (it lacks
whole-picture hashes, or file MD5s for a list's MD5s: the report names it; what was found is
still filed) or no list matches the request; 0 otherwise, hits or not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import Settings
from bot.durable import written_aside
from bot.tickets.store import TicketStore

if TYPE_CHECKING:
    from bot.hashlists.scan import ListHash, ScanReport
    from bot.tickets.list_filing import ListFilingReport

NOT_FILED = "nothing filed: --file files the hits as tickets for review"


async def scan(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``hash-lists scan``."""
    # python-threatexchange (and faiss with it) loads only when a list is scanned.
    from bot.hashlists.filing import hit_requests
    from bot.hashlists.scan import PDQ_MAX_DISTANCE, PDQ_MIN_QUALITY, PHASH_MAX_DISTANCE, scan_index
    from bot.hashlists.storage import list_hashes, stored_lists

    database = args.db or settings.tickets.database_path
    async with await TicketStore.open(database, settings.tickets) as store:
        lists = await stored_lists(store, source=args.source, list_id=args.list_id)
        hashes = await list_hashes(store, [stored.id for stored in lists])
        asked = f"source {args.source!r}" if args.source is not None else f"list {args.list_id}"
        if not lists:
            print(f"error: no hash list stored for {asked} (hash-lists import stores one)", file=sys.stderr)
            return 1
        if args.dask:
            report = await asyncio.to_thread(scan_on_cluster, args.dask, args.index_folder, hashes)
        else:
            report = await asyncio.to_thread(scan_index, args.index_folder, hashes)
        filed: ListFilingReport | None = None
        if args.file_hits:
            sources = {stored.id: stored.source for stored in lists}
            requests = hit_requests(report.hits, sources)
            filed = await store.file_list_hits(requests, settings.hash_lists.auto_approve)
    document: dict[str, Any] = {
        "lists": [stored.id for stored in lists],
        "hashes": report.hashes,
        "not_scanned": len(hashes) - sum(report.hashes.values()),
        "entries": report.entries,
        "low_quality_entries": report.low_quality,
        "rule": {"pdq_max_distance": PDQ_MAX_DISTANCE, "pdq_min_quality": PDQ_MIN_QUALITY,
                 "phash_max_distance": PHASH_MAX_DISTANCE, "md5": "equal to the file's"},
        "complete": report.complete,
        "unscannable": report.unscannable,
        "hit_count": len(report.hits),
        "hits": [hit.to_dict() for hit in report.hits],
        "seconds": round(report.seconds, 3),
        "filed": None if filed is None else filed.to_dict(),
    }  # fmt: skip
    if args.out is not None:
        with written_aside(args.out) as temporary:
            temporary.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
    if args.json:
        print(json.dumps(document, ensure_ascii=False))
    else:
        print("\n".join(_text(asked, document)))
    return 0 if report.complete else 1


# A part's scan takes minutes to hours (a 10,000-hash list: ~16 min per 1e8 entries on a core):
# the cluster's answer is awaited this long before the parts still scanning are named as failed.
SCAN_TIMEOUT_S = 7 * 24 * 3600.0


def scan_on_cluster(address: str, folder: Path, hashes: Sequence[ListHash]) -> ScanReport:
    """The scan with each part on its Dask worker, all parts at once (bot.index.served); in a
    thread of its own, as the Dask client runs its own event loop."""
    from bot.hashlists.scan import scan_served
    from bot.index.served import dask_index

    with dask_index(address, folder, timeout=SCAN_TIMEOUT_S) as served:
        return scan_served(served, hashes)


def _text(asked: str, document: dict[str, Any]) -> list[str]:
    hashes = ", ".join(f"{name} {count}" for name, count in sorted(document["hashes"].items())) or "none"
    lines = [
        f"scanned {asked} (lists {', '.join(str(n) for n in document['lists'])}): {hashes} hashes "
        f"against {document['entries']} entries in {document['seconds']} s",
    ]
    if document["not_scanned"]:
        lines.append(f"  {document['not_scanned']} hashes not scanned (of a type the scan does not match)")
    if document["low_quality_entries"]:
        lines.append(
            f"  {document['low_quality_entries']} entries never match a PDQ list: their whole-picture "
            f"PDQ quality is under {document['rule']['pdq_min_quality']}"
        )
    for shard, why in sorted(document["unscannable"].items()):
        lines.append(f"  shard {shard}: {why}")
    if document["unscannable"]:
        lines.append(f"INCOMPLETE: {len(document['unscannable'])} shard(s) not scanned")
    lines.append(f"{document['hit_count']} hit(s):")
    for hit in document["hits"]:
        listed = f"list {hit['list']} line {hit['line']}" + (
            f" (id {hit['list_entry_id']})" if hit["list_entry_id"] else ""
        )
        lines.append(
            f"  {listed} {hit['signal']} {hit['hash']} -> {hit['entry']} {hit['key']} "
            f"{hit['url'] or '-'} distance {hit['distance']}"
        )
    filed = document["filed"]
    if filed is None:
        lines.append(NOT_FILED)
    else:
        lines.append(
            f"filed {filed['filed']} ticket(s): {filed['open']} open for review, {filed['linked']} linked "
            f"to earlier tickets, {filed['approved']} approved ({filed['auto_approved']} by the policy "
            f"hash_lists.auto_approve); {filed['already_filed']} hit(s) filed before, not again"
        )
    return lines
