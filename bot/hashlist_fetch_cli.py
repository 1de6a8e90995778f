"""``python -m bot hash-lists fetch EXCHANGE --index DIR ...``: a partner's list from a hash exchange.

StopNCII, NCMEC or Meta ThreatExchange, through python-threatexchange's clients
(:mod:`bot.hashlists.exchanges`), made into a list (:mod:`bot.hashlists.fetching`) and stored as
``hash-lists import`` stores a file: refused whole with a bad hash unless ``--skip-bad`` (exit 1),
the same content again stores nothing. Credentials are read from the environment only; a missing
one, refused credentials or an exchange that cannot be reached is an error naming what to check
(exit 2). The fetch starts where the last complete one of the same feed under the same source
stopped (a checkpoint in the ticket database), or from the start with ``--restart``; a refused
fetch does not move it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.hashlist_cli import _bad_lines_text, _bad_report, _counts_text, _emit, matchable_kinds
from bot.tickets.store import TicketStore

# Here, not imported from bot.hashlists.exchanges: the parser is built without loading
# python-threatexchange (and faiss with it).
EXCHANGES = ("stopncii", "ncmec", "threatexchange")


def add_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``hash-lists fetch``."""
    fetch = sub.add_parser(
        "fetch",
        help="fetch a list from StopNCII, NCMEC or ThreatExchange and store it as import does",
        description="Credentials come from the environment only: REMOVAL_DESK_STOPNCII_SUBSCRIPTION_KEY "
        "and REMOVAL_DESK_STOPNCII_FETCH_KEY; REMOVAL_DESK_NCMEC_USER and REMOVAL_DESK_NCMEC_PASSWORD; "
        "REMOVAL_DESK_THREATEXCHANGE_TOKEN (APP_ID|SECRET).",
    )
    fetch.add_argument("exchange", choices=EXCHANGES)
    fetch.add_argument(
        "--index", required=True, type=Path, dest="index_folder", help="the index the list will be matched to"
    )
    fetch.add_argument("--source", help="whose list it is, as import names it (default: the exchange)")
    fetch.add_argument("--db", type=Path, help="the ticket database (default: tickets.database in config)")
    fetch.add_argument(
        "--base-url",
        help="the exchange's API address instead of its own (a test server); default "
        "$REMOVAL_DESK_<EXCHANGE>_BASE_URL",
    )
    fetch.add_argument(
        "--ncmec-environment", default="Industry", help="NCMEC's database (Industry, NGO, Exploitative...)"
    )
    fetch.add_argument("--privacy-group", type=int, help="the ThreatExchange privacy group to fetch")
    fetch.add_argument("--restart", action="store_true", help="fetch from the start, not from the checkpoint")
    fetch.add_argument("--skip-bad", action="store_true", help="store the good hashes when some are bad")
    fetch.add_argument("--json", action="store_true", help="JSON output for scripts")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``hash-lists fetch``."""
    return asyncio.run(fetch_list(args, settings))


async def fetch_list(args: argparse.Namespace, settings: Settings) -> int:
    """Fetch, store, move the checkpoint, report; the exit code."""
    # python-threatexchange (and faiss with it) loads only when a list is fetched.
    from bot.hashlists.exchanges import fetch, open_exchange
    from bot.hashlists.fetching import feed_list
    from bot.hashlists.storage import fetch_checkpoint, save_fetch_checkpoint, source_hashes, store_list

    exchange = open_exchange(
        args.exchange, os.environ, args.base_url, args.ncmec_environment, args.privacy_group
    )
    source = args.source or args.exchange
    matchable = matchable_kinds(args.index_folder, settings)
    database = args.db or settings.tickets.database_path
    async with await TicketStore.open(database, settings.tickets) as store:
        since = None if args.restart else await fetch_checkpoint(store, source, exchange.feed)
        fetched = await asyncio.to_thread(fetch, exchange, since)
        listed = feed_list(exchange.name, exchange.feed, fetched.records, matchable)
        read, bad = listed.read, _bad_report(listed.read)
        document: dict[str, Any] = {
            "exchange": exchange.name, "feed": exchange.feed, "source": source, "pages": fetched.pages,
            "records": listed.records, "deleted": listed.deleted, "replaced": listed.replaced,
            "unreadable": fetched.unreadable, "not_matchable": listed.not_matchable,
            "entries": read.counts(), "bad_lines": read.bad_lines, "bad": bad,
            "checkpoint": {"before": since, "after": since},
        }  # fmt: skip
        summary = _summary(document)
        if bad and not args.skip_bad:
            document.update(status="refused", stored=False, list=None)
            _emit(
                args, document,
                [*summary, f"error: {read.bad_lines} bad hash(es), numbered in the order {exchange.name} "
                 "sent them; nothing stored and the checkpoint not moved (--skip-bad stores the good "
                 "ones):", *_bad_lines_text(bad)],
                stream=sys.stderr,
            )  # fmt: skip
            return 1
        known = await source_hashes(store, source)
        document["relisted"] = sum((entry.signal, entry.hash) in known for entry in read.entries)
        stored, new = (await store_list(store, source, read)) if read.entries else (None, False)
        if fetched.checkpoint is not None:
            await save_fetch_checkpoint(store, source, exchange.feed, fetched.checkpoint)
            document["checkpoint"]["after"] = fetched.checkpoint
    status = "stored" if new else "already imported" if stored is not None else "nothing new"
    document.update(status=status, stored=new, list=stored.to_dict() if stored else None)
    _emit(args, document, [*_summary(document), *_outcome(document, bad)])
    return 0


def _summary(document: dict[str, Any]) -> list[str]:
    checkpoint = document["checkpoint"]
    lines = [
        f"fetched {document['records']} record(s) in {document['pages']} page(s) from {document['feed']} "
        f"(checkpoint {checkpoint['before'] if checkpoint['before'] is not None else 'none'} -> "
        f"{checkpoint['after'] if checkpoint['after'] is not None else 'none'})"
    ]
    if document["deleted"]:
        lines.append(
            f"{document['deleted']} deleted or withdrawn record(s): not in this list; lists stored "
            "before keep their hashes (see the README)"
        )
    if document["not_matchable"]:
        lines.append(f"not stored, types the index cannot match: {_counts_text(document['not_matchable'])}")
    if document["unreadable"]:
        lines.append(f"{document['unreadable']} record(s) the client could not read and left out")
    return lines


def _outcome(document: dict[str, Any], bad: dict[str, dict[str, Any]]) -> list[str]:
    listed = document["list"]
    if document["status"] == "nothing new":
        return ["no new hash: nothing stored"]
    if document["status"] == "already imported":
        return [
            f"the same hashes were stored from {listed['source']} before (list {listed['id']}): nothing new"
        ]
    lines = [
        f"stored hash list {listed['id']} from {listed['source']} ({listed['format']}): {listed['entries']} "
        f"entries ({_counts_text(listed['counts'])}), {document['relisted']} of them listed before"
    ]
    if bad:
        lines += [f"{document['bad_lines']} bad hash(es) skipped:", *_bad_lines_text(bad)]
    return lines
