"""Ticket store throughput and latency: durable writes (WAL, synchronous=FULL) on this disk.

Usage: python -m bench.tickets [--tickets 500] [--json]

Creates tickets (each with 3 matched entries and 36 query-hash variants, as a real request has),
then claims and approves them, and times each acknowledged write. The baseline, measured in the
same run, is the same work with ``synchronous=OFF`` (no fsync at all): the price of durability.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import aiosqlite

from bot.config import load_settings
from bot.tickets.models import MatchedEntry, StoredQuery
from bot.tickets.store import TicketStore

QUERY = StoredQuery(
    variants=tuple(f"v{i}" for i in range(36)),
    signals={"phash": ("ab" * 8,) * 36, "pdq": ("cd" * 32,) * 36},
    quality=90,
)


def entries(number: int) -> list[MatchedEntry]:
    return [
        MatchedEntry(
            key=f"{number:09d}-{copy}",
            url=f"https://example.org/{number}/{copy}.jpg",
            caption="a caption",
            entry_id=f"00000/{number * 3 + copy}",
            phash="ab" * 8,
            pdq="cd" * 32,
            quality=90,
            pdq_distance=4,
            phash_distance=2,
            variant="as-sent@0,0,0,0",
        )
        for copy in range(3)
    ]


async def run(count: int, synchronous: str) -> dict[str, float]:
    settings = replace(load_settings().tickets, max_open_per_requester=count + 1)
    with tempfile.TemporaryDirectory() as folder:
        store = await TicketStore.open(Path(folder) / "bench.sqlite3", settings)
        async with store.database.outside_transactions() as connection:  # the baseline turns durability off
            await connection.execute(f"PRAGMA synchronous = {synchronous}")
        create, decide = [], []
        ids = []
        for number in range(count):
            start = time.perf_counter()
            ticket = await store.create_ticket(f"requester-{number}", QUERY, entries(number))
            create.append(time.perf_counter() - start)
            ids.append(ticket.id)
        for ticket_id in ids:
            start = time.perf_counter()
            await store.claim(ticket_id, "maintainer")
            await store.approve(ticket_id, "maintainer", "bench")
            decide.append(time.perf_counter() - start)
        version, rows = await store.removal_list()
        assert version == count
        assert len(rows) == 3 * count
        await store.close()
    return {
        "create_per_s": count / sum(create),
        "create_p50_ms": statistics.median(create) * 1e3,
        "create_p99_ms": sorted(create)[int(0.99 * (count - 1))] * 1e3,
        "claim_and_approve_p50_ms": statistics.median(decide) * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    durable = asyncio.run(run(args.tickets, "FULL"))
    baseline = asyncio.run(run(args.tickets, "OFF"))
    result = {"tickets": args.tickets, "sqlite": aiosqlite.sqlite_version, "full": durable, "off": baseline}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.tickets} tickets, SQLite {aiosqlite.sqlite_version}, WAL")
    print(f"{'':28}{'synchronous=FULL':>18}{'OFF (baseline)':>18}")
    for name in durable:
        print(f"{name:28}{durable[name]:18.2f}{baseline[name]:18.2f}")


if __name__ == "__main__":
    main()
