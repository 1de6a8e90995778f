"""``python -m bot hash-lists import ...``: a partner's hash list into the ticket database.

The list is read and checked whole before anything is stored: with any bad line nothing is
stored (exit 1) unless ``--skip-bad`` says to store the good lines; either way the bad lines are
reported by reason with their line numbers. The same file imported again under the same source
stores nothing (exit 0). ``--index`` says which signal types can be matched: a hash of a type
the index does not carry (MD5, where no shard keeps its entries' file MD5s) is a bad line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import Settings
from bot.hashlists import FORMATS
from bot.index.describe import describe_served
from bot.index.parts import PartedIndex
from bot.tickets.store import TicketStore

if TYPE_CHECKING:
    from bot.hashlists.reading import ReadList
    from bot.hashlists.storage import StoredList

SHOWN_LINES = 10  # line numbers shown per reason; the count is always whole


def add_commands(commands: argparse._SubParsersAction) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    """Register the ``hash-lists`` command group on the main parser; return its subcommands, to
    which bot.hashlist_fetch_cli adds ``fetch`` (it borrows this module's report helpers)."""
    group = commands.add_parser("hash-lists", help="partner hash lists: import them, scan the index")
    sub = group.add_subparsers(dest="hash_lists_command", required=True)
    imported = sub.add_parser("import", help="read a hash list and store it in the ticket database")
    imported.add_argument("file", type=Path)
    imported.add_argument(
        "--index", required=True, type=Path, dest="index_folder", help="the index the list will be matched to"
    )
    imported.add_argument("--source", required=True, help="whose list it is (ncmec, stopncii, iwf ...)")
    imported.add_argument("--db", type=Path, help="the ticket database (default: tickets.database in config)")
    imported.add_argument(
        "--format", choices=FORMATS, default="auto", help="default: from the suffix, else the first line"
    )
    imported.add_argument("--skip-bad", action="store_true", help="store the good lines when some are bad")
    imported.add_argument("--json", action="store_true", help="JSON output for scripts")
    scan = sub.add_parser("scan", help="search every hash of stored lists against the whole index")
    scan.add_argument("--index", required=True, type=Path, dest="index_folder", help="an index or parts")
    which = scan.add_mutually_exclusive_group(required=True)
    which.add_argument("--source", help="every list imported under this source")
    which.add_argument("--list", type=int, dest="list_id", help="one list, by the id import printed")
    scan.add_argument("--db", type=Path, help="the ticket database (default: tickets.database in config)")
    scan.add_argument("--json", action="store_true", help="JSON output for scripts")
    scan.add_argument("--out", type=Path, help="also write the JSON report (every hit) to this file")
    scan.add_argument(
        "--dask",
        metavar="ADDRESS",
        default=None,
        help="scan on the Dask cluster whose scheduler is at ADDRESS (tcp://host:8786): every part at "
        "once, each by a worker that can read it",
    )
    scan.add_argument(
        "--file",
        action="store_true",
        dest="file_hits",
        help="file the hits as tickets for review (each hit once; [hash_lists] auto_approve applies)",
    )
    return sub


def matchable_kinds(folder: Path, settings: Settings) -> frozenset[str]:
    """The signal types the index at ``folder`` carries (bot.index.describe): its kinds of hash,
    and ``md5`` where a shard keeps its entries' file MD5s (a scan names the shards without)."""
    described = describe_served(PartedIndex(folder), settings)
    kinds = {kind.name for kind in described.signal_kinds if kind.in_index}
    return frozenset(kinds | ({"md5"} if described.md5_shards else set()))


def _bad_report(read: ReadList) -> dict[str, dict[str, Any]]:
    from bot.hashlists.signals import REASONS

    return {
        reason: {"count": len(read.bad[reason]), "lines": read.bad[reason][:SHOWN_LINES]}
        for reason in REASONS
        if reason in read.bad
    }


def _bad_lines_text(bad: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for reason, found in bad.items():
        more = found["count"] - len(found["lines"])
        numbers = ", ".join(str(n) for n in found["lines"]) + (f" and {more} more" if more else "")
        lines.append(f"  {reason}: {found['count']} (line{'s' if found['count'] > 1 else ''} {numbers})")
    return lines


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counts.items())) or "none"


async def _import(args: argparse.Namespace, settings: Settings) -> int:
    # python-threatexchange (and faiss with it) loads only when a list is read.
    from bot.hashlists.reading import file_sha256, read_list
    from bot.hashlists.storage import imported_before, store_list

    database = args.db or settings.tickets.database_path
    sha256 = file_sha256(args.file.read_bytes())
    async with await TicketStore.open(database, settings.tickets) as store:
        earlier = await imported_before(store, args.source, sha256)
        if earlier is not None:
            return _already(args, earlier)
        read = read_list(args.file, matchable_kinds(args.index_folder, settings), args.format)
        bad = _bad_report(read)
        if bad and not args.skip_bad:
            _emit(
                args,
                {"status": "refused", "stored": False, "source": args.source, "format": read.format,
                 "sha256": read.sha256, "entries": read.counts(), "bad_lines": read.bad_lines, "bad": bad},
                [f"error: {read.bad_lines} bad line(s) in {args.file}; nothing imported "
                 "(--skip-bad imports the good lines):", *_bad_lines_text(bad)],
                stream=sys.stderr,
            )  # fmt: skip
            return 1
        if not read.entries:
            _emit(
                args,
                {"status": "refused", "stored": False, "source": args.source, "format": read.format,
                 "sha256": read.sha256, "entries": {}, "bad_lines": read.bad_lines, "bad": bad},
                [f"error: no good hash in {args.file}; nothing imported", *_bad_lines_text(bad)],
                stream=sys.stderr,
            )  # fmt: skip
            return 1
        stored, new = await store_list(store, args.source, read)
    if not new:  # imported by someone else since we looked
        return _already(args, stored)
    text = [
        f"imported hash list {stored.id} from {stored.source} ({stored.format}): "
        f"{stored.entries} entries ({_counts_text(stored.counts)})"
    ]
    if bad:
        text += [f"{read.bad_lines} bad line(s) skipped:", *_bad_lines_text(bad)]
    _emit(args, {"status": "imported", "stored": True, **stored.to_dict(), "bad": bad}, text)
    return 0


def _already(args: argparse.Namespace, earlier: StoredList) -> int:
    _emit(
        args,
        {"status": "already imported", "stored": False, **earlier.to_dict(), "bad": {}},
        [f"this file was imported from {earlier.source} before (list {earlier.id}, {earlier.imported_at}, "
         f"{earlier.entries} entries); nothing stored"],
    )  # fmt: skip
    return 0


def _emit(args: argparse.Namespace, document: dict[str, Any], text: list[str], stream: Any = None) -> None:
    if args.json:
        print(json.dumps(document, ensure_ascii=False))
    else:
        print("\n".join(text), file=stream or sys.stdout)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run a ``hash-lists`` command."""
    if args.hash_lists_command == "scan":
        from bot.hashlist_scan_cli import scan

        return asyncio.run(scan(args, settings))
    return asyncio.run(_import(args, settings))
