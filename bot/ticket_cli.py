"""``python -m bot tickets ...`` and ``python -m bot removals ...``: the review desk from a shell.

Maintainers also get requests by e-mail and web forms; they process them with these commands
exactly as the Discord front end does (same store, same rules, same audit log). A refused action
prints one sentence on standard error and exits with 1; ``--json`` prints what a script reads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bot import messages
from bot.checking import check_picture
from bot.config import Settings
from bot.decoding import ImageRejectedError
from bot.index.parts import open_served
from bot.index.storage import hashing_parameters
from bot.removals.apply import apply_removal_list, load_removal_list
from bot.removals.export import FORMATS, export_removal_list, format_for
from bot.tickets.backup import backup_database, restore_database
from bot.tickets.intake import file_removal_request
from bot.tickets.lifecycle import TicketAction, TicketError, TicketState
from bot.tickets.models import AuditEvent, MatchedEntry, Ticket
from bot.tickets.stats import RECENT_DAYS, TicketStats
from bot.tickets.store import TicketStore


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the ``tickets`` and ``removals`` command groups on the main parser."""
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument("--db", type=Path, help="the ticket database (default: tickets.database in config)")
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="JSON output for scripts")
    common = [database, as_json]
    _add_ticket_commands(commands, common)
    _add_removal_commands(commands, common, as_json)
    db = commands.add_parser("db", help="back up or restore the ticket database")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    backed = db_commands.add_parser(
        "backup", parents=[database], help="a consistent copy, safe while the bot runs (SQLite's backup API)"
    )
    backed.add_argument("file", type=Path)
    restored = db_commands.add_parser(
        "restore", parents=[database], help="replace the database with a backup (stop the bot first)"
    )
    restored.add_argument("file", type=Path)


def _add_ticket_commands(
    commands: argparse._SubParsersAction,  # type: ignore[type-arg]
    common: list[argparse.ArgumentParser],
) -> None:
    database = common[0]
    tickets = commands.add_parser("tickets", help="removal tickets: file, review, decide, erase")
    sub = tickets.add_subparsers(dest="tickets_command", required=True)
    opened = sub.add_parser("open", parents=common, help="check a picture and file a removal request")
    opened.add_argument("--index", required=True, type=Path, dest="index_folder")
    opened.add_argument("--requester", required=True, help="an opaque id to follow the request by")
    opened.add_argument("--note", help="optional context for the reviewers (no names, please)")
    opened.add_argument("image", type=Path)
    listed = sub.add_parser("list", parents=common, help="tickets, oldest first")
    listed.add_argument("--state", choices=[str(state) for state in TicketState])
    listed.add_argument("--requester")
    listed.add_argument("--assignee")
    listed.add_argument("--limit", type=int, default=100)
    shown = sub.add_parser("show", parents=common, help="one ticket in full")
    shown.add_argument("ticket")
    for action, purpose in (("claim", "take a ticket for review"), ("release", "give a claimed ticket back")):
        parser = sub.add_parser(action, parents=common, help=purpose)
        parser.add_argument("ticket")
        parser.add_argument("--by", required=True, help="the maintainer acting")
    for action, purpose in (
        ("approve", "remove the ticket's entries"),
        ("reject", "keep the entries; the reason is told to the requester"),
        ("reopen", "undo a decision"),
    ):
        parser = sub.add_parser(action, parents=common, help=purpose)
        parser.add_argument("ticket")
        parser.add_argument("--by", required=True, help="the maintainer acting")
        parser.add_argument("--reason", required=True)
    withdrawn = sub.add_parser("withdraw", parents=common, help="the requester takes a request back")
    withdrawn.add_argument("ticket")
    withdrawn.add_argument("--requester", required=True)
    forgotten = sub.add_parser("forget", parents=common, help="erase a requester's data from every ticket")
    forgotten.add_argument("--requester", required=True)
    exported = sub.add_parser("export", parents=[database], help="everything stored about a requester (JSON)")
    exported.add_argument("--requester", required=True)
    sub.add_parser("purge", parents=common, help="retention: erase requester data from old closed tickets")
    stats = sub.add_parser(
        "stats", parents=common, help="tickets waiting, by age; median time from filing to decision"
    )
    stats.add_argument("--days", type=int, default=RECENT_DAYS, help="the recent span, in days (default 90)")
    logged = sub.add_parser("log", parents=common, help="the audit log, oldest first")
    logged.add_argument("--ticket")
    logged.add_argument("--by", help="only this maintainer's actions")
    logged.add_argument("--since", help="UTC date or timestamp, inclusive (2026-11-01)")
    logged.add_argument("--until", help="UTC date or timestamp, exclusive")
    logged.add_argument("--action")
    logged.add_argument("--limit", type=int, help="only the most recent N events")


def _add_removal_commands(
    commands: argparse._SubParsersAction,  # type: ignore[type-arg]
    common: list[argparse.ArgumentParser],
    as_json: argparse.ArgumentParser,
) -> None:
    removals = commands.add_parser("removals", help="the removal list: export it, apply it to metadata")
    sub = removals.add_subparsers(dest="removals_command", required=True)
    export = sub.add_parser("export", parents=common, help="write the removal list and hash blocklist")
    export.add_argument("--out", required=True, type=Path)
    export.add_argument("--format", choices=FORMATS, help="default: from --out's suffix, else parquet")
    export.add_argument(
        "--blocklist", type=Path, help="default: OUT's name with .blocklist before the suffix"
    )
    export.add_argument(
        "--te-pdq",
        type=Path,
        metavar="FILE",
        help="also write the blocklist's PDQ hashes as a ThreatExchange/HMA list (`pdq HASH` lines)",
    )
    apply = sub.add_parser("apply", parents=[as_json], help="drop listed rows from metadata Parquet files")
    apply.add_argument("--list", required=True, type=Path, dest="list_path")
    apply.add_argument("metadata", nargs="+", type=Path)
    apply.add_argument("--out", required=True, type=Path)
    apply.add_argument(
        "--match", default="url,key", help="what identifies a row: url, key or url,key (default)"
    )


def _database(args: argparse.Namespace, settings: Settings) -> Path:
    return args.db if getattr(args, "db", None) else settings.tickets.database_path


def _emit(args: argparse.Namespace, document: Any, text: str) -> None:
    print(json.dumps(document, ensure_ascii=False) if args.json else text)


def describe_ticket(ticket: Ticket) -> str:
    """A ticket as a maintainer reads it in a terminal."""
    lines = [
        f"ticket {ticket.id}: {ticket.state}"
        + (f" (linked to {ticket.linked_to})" if ticket.linked_to else "")
        + (f", claimed by {ticket.assignee}" if ticket.state is TicketState.CLAIMED else ""),
        f"  filed {ticket.created_at} via {ticket.source}; "
        + (
            "no requester: a partner hash list's hit"
            if ticket.list_hit
            else "requester data erased"
            if ticket.erased_at
            else "requester known"
        ),
    ]
    if ticket.list_hit:
        lines.append(f"  from hash list {messages.list_origin(ticket.list_hit)}")
        if ticket.approved_by_policy:
            lines.append(f"  approved by policy: {messages.policy_approval(ticket.list_hit)}")
    if ticket.flagged:
        lines.append(f"  FLAGGED: {ticket.flag_reason}")
    if ticket.note:
        lines.append(f"  note: {ticket.note}")
    if ticket.decided_by:
        lines.append(f"  decided by {ticket.decided_by} at {ticket.closed_at}: {ticket.decision_reason}")
    lines.append(f"  {len(ticket.entries)} entr{'y' if len(ticket.entries) == 1 else 'ies'}:")
    lines.extend(
        f"    {entry.key}  {_closeness(ticket, entry)}  {entry.url or '-'}" for entry in ticket.entries
    )
    return "\n".join(lines)


def _closeness(ticket: Ticket, entry: MatchedEntry) -> str:
    if ticket.list_hit is not None:
        return messages.list_hit_closeness(entry, ticket.list_hit.signal_type)
    return f"pdq {entry.pdq_distance}/256 phash {entry.phash_distance}/64"


def _describe_event(event: AuditEvent) -> str:
    who = event.actor if event.actor_kind == "maintainer" else f"({event.actor_kind})"
    states = f" {event.from_state or '-'} -> {event.to_state}" if event.to_state else ""
    reason = f": {event.reason}" if event.reason else ""
    detail = f" {json.dumps(event.detail, sort_keys=True)}" if event.detail else ""
    return f"{event.at}  {event.ticket_id or '-':6}  {who} {event.action}{states}{reason}{detail}"


async def _tickets(args: argparse.Namespace, settings: Settings) -> int:
    command = args.tickets_command
    async with await TicketStore.open(_database(args, settings), settings.tickets) as store:
        if command == "open":
            return await _open(args, settings, store)
        if command == "list":
            state = TicketState(args.state) if args.state else None
            found = await store.list_tickets(state, args.requester, args.assignee, args.limit)
            text = "\n".join(
                f"{t.id}  {t.state:9}  {len(t.entries):3} entries  {t.created_at}"
                + (f"  {t.assignee}" if t.assignee else "")
                + ("  FLAGGED" if t.flagged else "")
                for t in found
            )
            _emit(args, [t.to_dict() for t in found], text or "no tickets")
        elif command == "show":
            ticket = await store.get(args.ticket)
            overlaps = await store.overlapping(ticket)
            text = describe_ticket(ticket)
            if overlaps:
                text += f"\n  entries also in: {', '.join(overlaps)}"
            _emit(args, {**ticket.to_dict(), "overlapping": overlaps}, text)
        elif command in {"claim", "release", "approve", "reject", "reopen", "withdraw"}:
            if command == "withdraw":
                result = await store.withdraw(args.ticket, args.requester)
            else:
                reason = getattr(args, "reason", None)
                result = await store.act(args.ticket, TicketAction(command), args.by, reason)
            also = [t.id for t in result.also_changed]
            text = f"ticket {result.ticket.id} is now {result.ticket.state}"
            if also:
                text += f" (with linked ticket(s) {', '.join(also)})"
            _emit(args, {**result.ticket.to_dict(), "also_changed": also}, text)
        elif command == "forget":
            count = await store.forget(args.requester)
            _emit(args, {"tickets": count}, f"erased the requester's data from {count} ticket(s)")
        elif command == "export":
            print(json.dumps(await store.export_requester(args.requester), ensure_ascii=False, indent=1))
        elif command == "purge":
            count = await store.purge_expired()
            days = settings.tickets.retention_days
            _emit(
                args, {"tickets": count}, f"erased requester data from {count} ticket(s) closed > {days} days"
            )
        elif command == "stats":
            figures = await store.stats(args.days)
            _emit(args, figures.to_dict(), "\n".join(stats_lines(figures)))
        else:  # log
            events = await store.audit_log(
                ticket_id=args.ticket, actor=args.by, since=args.since, until=args.until,
                action=args.action, limit=args.limit,
            )  # fmt: skip
            text = "\n".join(_describe_event(event) for event in events) or "no events"
            _emit(args, [event.to_dict() for event in events], text)
    return 0


def stats_lines(figures: TicketStats) -> list[str]:
    """``tickets stats`` as a maintainer reads it in a terminal."""
    totals = {state: sum(buckets.values()) for state, buckets in figures.waiting.items()}
    lines = [f"waiting for a maintainer: {messages.waiting_summary(totals, figures.linked)}"]
    for bucket in messages.AGE_BUCKET_LABELS:
        by_state = {state: buckets[bucket] for state, buckets in figures.waiting.items()}
        lines.append("  " + messages.age_line(bucket, by_state))
    oldest = messages.oldest_waiting(figures.oldest_waiting_id, figures.oldest_waiting_seconds)
    lines.append(f"oldest waiting: {oldest}")
    for days, decisions in ((figures.recent_days, figures.recent), (None, figures.overall)):
        summary = messages.decisions_summary(decisions.count, decisions.by_outcome, decisions.median_seconds)
        lines.append(f"{messages.decided_heading(days).lower()}: {summary}")
    lines.append(f"{messages.STATS_WITHDRAWN_FIELD.lower()}: {figures.withdrawn:,}")
    return lines


async def _open(args: argparse.Namespace, settings: Settings, store: TicketStore) -> int:
    index = open_served(args.index_folder)  # an index folder, or a folder of parts
    try:
        data = args.image.read_bytes()
    except OSError as exc:
        print(f"error: cannot read {args.image}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    removed = await store.removed_entries()
    try:
        result = check_picture(data, index, settings, removed)
    except ImageRejectedError as rejected:
        print(f"error: {rejected.message}", file=sys.stderr)
        return 1
    del data  # only hashes go further
    ticket = await file_removal_request(store, index, result, args.requester, note=args.note, source="cli")
    if args.json:
        print(json.dumps(ticket.to_dict(), ensure_ascii=False))
        return 0
    print(ticket.id)
    print(describe_ticket(ticket), file=sys.stderr)
    return 0


async def _export(args: argparse.Namespace, settings: Settings) -> int:
    async with await TicketStore.open(_database(args, settings), settings.tickets) as store:
        version, rows = await store.removal_list()
    report = export_removal_list(
        version, rows, args.out, format_for(args.out, args.format),
        hashing=hashing_parameters(settings), blocklist=args.blocklist,
    )  # fmt: skip
    document: dict[str, Any] = {
        "version": report.version,
        "entries": report.entries,
        "pictures": report.pictures,
        "list": str(report.list_path),
        "blocklist": str(report.blocklist_path),
    }
    text = (
        f"removal list version {report.version}: {report.entries} entries -> {report.list_path}; "
        f"{report.pictures} picture hashes -> {report.blocklist_path}"
    )
    if args.te_pdq is not None:
        from bot.hashlists.export import write_te_pdq  # python-threatexchange: loaded when asked for

        exported = write_te_pdq(args.te_pdq, rows)
        document["te_pdq"] = {"path": str(args.te_pdq), **asdict(exported)}
        text += f"; {exported.hashes} whole-picture PDQ hashes (ThreatExchange list) -> {args.te_pdq}"
        if exported.without_whole_pdq:
            text += (
                f" ({exported.without_whole_pdq} approved entries left out: no whole-picture PDQ was kept"
                " for them; rebuild their index and file again to include them)"
            )
    _emit(args, document, text)
    return 0


def _apply(args: argparse.Namespace) -> int:
    match = [part.strip() for part in args.match.split(",") if part.strip()]
    if not match or set(match) - {"url", "key"}:
        print("error: --match takes url, key or url,key", file=sys.stderr)
        return 2
    report = apply_removal_list(load_removal_list(args.list_path), args.metadata, args.out, match)
    document = report.to_dict()
    lines = [
        f"removal list {args.list_path} (version {report.list_version}): "
        f"{document['dropped']} of {document['rows']} rows dropped"
    ]
    for file_report in report.files:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(file_report.dropped.items())) or "none"
        lines.append(
            f"  {file_report.source}: {file_report.rows} rows, {file_report.kept} kept -> "
            f"{file_report.output} (dropped by {reasons})"
        )
    lines.append(f"every dropped row, with its reason and ticket: {args.out / 'removals-applied.json'}")
    if args.json:
        document.pop("dropped_rows")
    _emit(args, document, "\n".join(lines))
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run a ``tickets`` or ``removals`` command; a refused ticket action exits with 1."""
    try:
        if args.command == "db":
            return _database_copy(args, settings)
        if args.command == "tickets":
            return asyncio.run(_tickets(args, settings))
        if args.removals_command == "export":
            return asyncio.run(_export(args, settings))
        return _apply(args)
    except TicketError as refused:
        print(f"error: {refused}", file=sys.stderr)
        return 1


def _database_copy(args: argparse.Namespace, settings: Settings) -> int:
    database = _database(args, settings)
    if args.db_command == "backup":
        version = backup_database(database, args.file)
        print(f"backed up {database} to {args.file} (schema version {version})")
    else:
        version = restore_database(args.file, database)
        print(f"restored {database} from {args.file} (schema version {version})")
    return 0
