"""The command line: ``python -m bot index|check|tickets|removals|hash-lists ...`` (see the README)."""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from bot import hashlist_cli, hashlist_fetch_cli, messages, ticket_cli
from bot.checking import check_picture
from bot.config import ConfigError, Settings, config_file, load_settings
from bot.decoding import ImageRejectedError
from bot.doctor import diagnose
from bot.errors import RemovalDeskError
from bot.index.batches import HashingProcessDiedError
from bot.index.build import build_index
from bot.index.describe import IndexDescription, describe_served
from bot.index.mih import refresh_search_tables
from bot.index.parts import PartedIndex, open_served, write_parts
from bot.index.search import FoundEntry, HashIndex, Searchable
from bot.index.served import dask_index
from bot.index.serving import serving, verify
from bot.logs import configure_logging
from bot.signals import ranked_kinds
from bot.tickets.store import TicketStore
from bot.times import human_time


def _version() -> str:
    try:
        return importlib.metadata.version("removal-desk")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    parser.add_argument(
        "--config",
        type=Path,
        help="a TOML file overriding bot/default.toml (else $REMOVAL_DESK_CONFIG, else "
        "./removal-desk.toml if there is one)",
    )
    parser.add_argument("--version", action="version", version=f"removal-desk {_version()}")
    parser.add_argument(
        "--log-json",
        action="store_true",
        help="log JSON lines to stderr (for a log collector) instead of plain lines ([logging] format)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    index = commands.add_parser("index", help="build or describe a dataset hash index")
    index_commands = index.add_subparsers(dest="index_command", required=True)
    build = index_commands.add_parser("build", help="hash dataset sources into an index")
    build.add_argument(
        "sources",
        nargs="+",
        type=Path,
        help="folders, webdataset .tar shards, hash .parquet files, URL lists (.csv, .tsv, .parquet)",
    )
    build.add_argument("--out", required=True, type=Path, help="the index folder to create")
    build.add_argument(
        "--append", action="store_true", help="add the sources as new shards of an existing index"
    )
    build.add_argument("--workers", type=int, default=None, help="hashing processes (default: all cores)")
    build.add_argument(
        "--dask",
        metavar="ADDRESS",
        default=None,
        help="hash on the Dask cluster whose scheduler is at ADDRESS (tcp://host:8786) instead of "
        "local processes; the sources must be readable from every worker under the same path",
    )
    build.add_argument(
        "--without-whole-picture",
        action="store_true",
        help="leave out the whole-picture hashes a hash-list scan needs: about twice as fast "
        "([index] whole_picture_hashes = false); its shards are then not scannable",
    )
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    tables = index_commands.add_parser(
        "tables", help="(re)build an index's search tables (index build does it after hashing)"
    )
    tables.add_argument("folder", type=Path)
    verify = index_commands.add_parser(
        "verify", help="compare every shard file with its checksum in the manifest (~1 s per GB)"
    )
    verify.add_argument("folder", type=Path)
    parts = index_commands.add_parser(
        "parts", help="list the index folders a served index is made of (DIR/parts.json; each opened first)"
    )
    parts.add_argument("folder", type=Path, help="the served index's folder")
    parts.add_argument("parts", nargs="+", help="each part's folder, relative to FOLDER (parts/000 ...)")
    info = index_commands.add_parser("info", help="describe an index")
    info.add_argument("folder", type=Path)
    info.add_argument("--json", action="store_true", help="one JSON object instead of text")

    check = commands.add_parser("check", help="find the dataset entries that are copies of pictures")
    check.add_argument(
        "--index",
        required=True,
        type=Path,
        dest="index_folder",
        help="an index folder, or a folder of parts listed in parts.json (see docs/architecture.md)",
    )
    check.add_argument(
        "--dask",
        metavar="ADDRESS",
        default=None,
        help="search on the Dask cluster whose scheduler is at ADDRESS (tcp://host:8786), each part "
        "of the index on a worker; the parts must be readable from every worker under the same path",
    )
    check.add_argument("--json", action="store_true", help="one JSON object per picture, per line")
    check.add_argument("images", nargs="+", type=Path)
    ticket_cli.add_commands(commands)
    hashlist_fetch_cli.add_command(hashlist_cli.add_commands(commands))
    run = commands.add_parser("run", help="start the Discord bot (settings: [discord] in the config)")
    run.add_argument("--no-sync", action="store_true", help="do not sync slash commands at start")
    run.add_argument(
        "--dask",
        metavar="ADDRESS",
        default=None,
        help="search the index on the Dask cluster whose scheduler is at ADDRESS (tcp://host:8786), "
        "each part on a worker (overrides [discord] dask)",
    )
    run.add_argument(
        "--no-verify",
        action="store_true",
        help="start without reading the whole index to compare its checksums (~1 s per GB); sizes "
        "are still compared",
    )
    doctor = commands.add_parser(
        "doctor", help="check that the desk is ready: settings, token, index, database, Discord"
    )
    doctor.add_argument("--json", action="store_true", help="one JSON object {ready, findings} for scripts")
    doctor.add_argument(
        "--quick", action="store_true", help="compare the index files' sizes only, not their checksums"
    )
    doctor.add_argument(
        "--offline", action="store_true", help="skip the Discord checks (guild, channels, role, permissions)"
    )
    return parser


def _run_doctor(args: argparse.Namespace) -> int:
    """Exit 0 only when the desk is ready; 1 when a finding is a problem (Discord unreachable is
    one, unless --offline skips those checks on purpose)."""
    try:  # the log set-up `run` has (the token scrubbed); a settings error is one of the findings
        settings = load_settings(config_file(args.config))
        json_lines = args.log_json or settings.logging.format == "json"
        configure_logging(settings.logging.level, json_lines=json_lines, secrets=(settings.discord.token,))
    except ConfigError:
        pass
    discord_check = None
    if not args.offline:
        from cogs.app import check_discord  # the composition root, as for `run`

        discord_check = check_discord
    report = asyncio.run(diagnose(args.config, quick=args.quick, discord_check=discord_check))
    print(report.as_json() if args.json else report.as_text())
    return 0 if report.ready else 1


def _run_bot(args: argparse.Namespace, settings: Settings) -> int:
    problems = settings.discord.problems()
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        print("see README, 'Running the Discord bot'", file=sys.stderr)
        return 2
    if args.dask:
        settings = replace(settings, discord=replace(settings.discord, dask=args.dask))
    # fail now, clearly, if a part is missing; a damaged one is refused, never answered from
    with serving(Path(settings.discord.index).expanduser(), settings.discord.dask) as index:
        if not args.no_verify:
            verify(index)
    # The composition root: the one place the core starts the Discord side (never imported
    # otherwise, so the command line works without discord.py loaded).
    from cogs.app import run

    return run(settings, sync_on_start=not args.no_sync)


def _distances(record: dict[str, object]) -> str:
    """Each kind's distance out of its bits, the finest kind first: ``pdq 2/256, phash 0/64``."""
    return ", ".join(f"{kind.name} {record[f'{kind.name}_distance']}/{kind.bits}" for kind in ranked_kinds())


def _match_record(found: FoundEntry) -> dict[str, object]:
    match = found.match
    return {
        "key": found.entry.key,
        "url": found.entry.url,
        "caption": found.entry.caption,
        "distance": match.distance.ranking[0],  # the finest kind's (PDQ's)
        **{f"{kind.name}_distance": match.distance.signals[kind.name] for kind in ranked_kinds()},
        "variant": match.variant,
        "entry_id": f"{match.shard}/{match.row}",
        "part": None if found.part is None else [round(v, 4) for v in found.part],
    }


def _run_build(args: argparse.Namespace, settings: Settings) -> int:
    if args.without_whole_picture:
        settings = replace(settings, index=replace(settings.index, whole_picture_hashes=False))
    try:
        report = build_index(
            args.sources,
            args.out,
            settings,
            workers=args.workers,
            append=args.append,
            show_progress=not args.quiet,
            dask_address=args.dask,
        )
    except KeyboardInterrupt:
        print("interrupted: finished shards are kept; run the same command again to resume", file=sys.stderr)
        return 130
    except HashingProcessDiedError as exc:
        print(f"error: {exc}; finished shards are kept: run the command again to resume", file=sys.stderr)
        return 2
    failed = sum(report.failures.values())
    print(f"indexed {report.entries} entries into {len(report.shards)} new shard(s) at {args.out}")
    if failed:
        kinds = ", ".join(f"{reason}: {count}" for reason, count in report.failures.most_common())
        print(f"{failed} entries could not be hashed ({kinds}); examples are in each shard's shard.json")
    if report.skipped_units:
        print(f"skipped {report.skipped_units} of {report.units} unit(s) already in the index")
    for source in report.already_indexed:
        print(f"already indexed, skipped: {source}")
    if report.pictures:
        print(f"read {report.pictures} entries in {report.seconds:.1f} s ({report.rate:.1f} per second)")
    if report.unreadable:
        print(f"error: {len(report.unreadable)} unit(s) could not be read:", file=sys.stderr)
        for problem in report.unreadable:
            print(f"  {problem}", file=sys.stderr)
        print("fix them and run the same command again: only these units are redone", file=sys.stderr)
        return 1
    return 0


def _run_tables(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    tables = refresh_search_tables(args.folder)
    print(
        f"search tables over {sum(tables.covered.counts)} rows (entries, their cores and the "
        "photographs inside composites): "
        f"{tables.nbytes / 2**20:,.1f} MiB "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return 0


def _run_verify(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    index = HashIndex(args.folder)
    verified = index.verify()
    took = time.perf_counter() - started
    print(
        f"index {args.folder}: {verified} of {len(index.shards)} shard(s) match their checksums"
        f" ({took:.1f} s)"
    )
    unverifiable = index.manifest.unverifiable()
    if unverifiable:
        print(f"{len(unverifiable)} shard(s) were written before checksums were kept: rebuild to check them")
    return 0


def _run_parts(args: argparse.Namespace) -> int:
    """Write DIR/parts.json once every part opens: a part that would fail every query is refused now."""
    entries = sum(len(HashIndex(args.folder / name)) for name in args.parts)
    write_parts(args.folder, args.parts)
    print(f"{args.folder} serves {len(args.parts)} part(s), {entries} entries")
    return 0


def _run_info(args: argparse.Namespace, settings: Settings) -> int:
    index = PartedIndex(args.folder)  # an index folder, or a folder of parts (summed)
    removed = None
    if settings.tickets.database_path.exists():
        removed = len(asyncio.run(_approved_removals(settings)))
    described = describe_served(index, settings, removed)
    if args.json:
        print(json.dumps(described.to_dict()))
        return 0
    print("\n".join(_info_lines(described)))
    return 0


def _info_lines(described: IndexDescription) -> list[str]:
    """``index info`` as a maintainer reads it in a terminal (the first line as it always was)."""
    removed = "" if described.removed is None else f"; {described.removed} removal(s) approved, never matched"
    lines = [
        f"index {described.folder}: {described.entries} entries in {len(described.shards)} shard(s)"
        f" ({described.rows} rows searched){removed}",
        f"format {described.format} version {described.format_version}; "
        + messages.size_on_disk(described.size_bytes),
        f"built {_when(described.built_at)}; last shard added {_when(described.last_added_at)}",
        "sources:",
        *(
            "  " + messages.index_source(source.source, source.entries, source.shards, source.failures)
            for source in described.sources
        ),
        "signal kinds: "
        + ", ".join(
            messages.signal_kind(kind.name, kind.bits, kind.searched, kind.in_index)
            for kind in described.signal_kinds
        ),
        "thresholds:",
        *("  " + line for line in messages.thresholds_lines(**described.thresholds)),
        f"hashing: {json.dumps(described.hashing, sort_keys=True)}",
        f"whole-picture hashes: in {described.whole_picture_shards} of {len(described.shards)} shard(s)"
        + (
            ""
            if described.whole_picture_shards == len(described.shards)
            else " (a hash-list scan needs them; rebuild the others)"
        ),
        f"file MD5s: in {described.md5_shards} of {len(described.shards)} shard(s)"
        + (
            ""
            if described.md5_shards == len(described.shards)
            else " (a hash list's MD5s are matched only there; rebuild the others)"
        ),
    ]
    tables = described.search_tables
    if not tables["covered_shards"]:
        lines.append("search tables: none (every query scans every shard; `index tables DIR` builds them)")
    else:
        scanned = tables["scanned_shards"]
        lines.append(
            f"search tables: {tables['bytes'] / 2**20:,.1f} MiB over {tables['covered_shards']} shard(s)"
            + (f"; {scanned} newer shard(s) scanned" if scanned else "")
        )
    for shard in described.shards:
        failures = sum(shard["failures"].values())
        lines.append(f"  shard {shard['name']}: {shard['entries']} entries, {failures} failed")
    return lines


def _when(stamp: str | None) -> str:
    return messages.UNKNOWN_TIME if stamp is None else human_time(stamp)


async def _approved_removals(settings: Settings) -> frozenset[tuple[str, str]]:
    """Entries whose removal is approved in the ticket database, if there is one yet."""
    path = settings.tickets.database_path
    if not path.exists():
        return frozenset()
    async with await TicketStore.open(path, settings.tickets) as store:
        return await store.removed_entries()


def _run_check(args: argparse.Namespace, settings: Settings) -> int:
    removed = asyncio.run(_approved_removals(settings))
    if args.dask:
        with dask_index(args.dask, args.index_folder) as served:
            return _check_pictures(args, settings, served, removed)
    return _check_pictures(args, settings, open_served(args.index_folder), removed)


def _check_pictures(
    args: argparse.Namespace, settings: Settings, index: Searchable, removed: frozenset[tuple[str, str]]
) -> int:
    worst = 0
    for image in args.images:
        record: dict[str, object] = {"query": str(image), "matches": [], "unjudged": 0, "error": None}
        try:
            data = image.read_bytes()
            result = check_picture(data, index, settings, removed)
            record["matches"] = [_match_record(found) for found in result.found]
            record["unjudged"] = result.unjudged
        except ImageRejectedError as rejected:
            record["error"], worst = rejected.message, 1
        except OSError as exc:
            record["error"], worst = f"cannot read {image}: {exc.strerror or exc}", 1
        if args.json:
            print(json.dumps(record, ensure_ascii=False), flush=True)
        else:
            _print_check(record)
    return worst


def _print_check(record: dict[str, object]) -> None:
    if record["error"]:
        print(f"{record['query']}: error: {record['error']}")
        return
    matches = record["matches"]
    assert isinstance(matches, list)
    if not matches:
        unjudged = record["unjudged"]
        if unjudged:
            print(f"{record['query']}: no match; {unjudged} entries near it are too plain to judge")
        else:
            print(f"{record['query']}: no match")
        return
    print(f"{record['query']}: {len(matches)} match(es)")
    for match in matches:
        print(f"  {match['key']}  {_distances(match)}  url={match['url'] or '-'}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "doctor":  # loads the settings itself: a load error is one of its findings
        return _run_doctor(args)
    try:
        settings = load_settings(config_file(args.config))
        configure_logging(
            settings.logging.level,
            json_lines=args.log_json or settings.logging.format == "json",
            secrets=(settings.discord.token,),
        )
        if args.command == "index" and args.index_command == "build":
            return _run_build(args, settings)
        if args.command == "index" and args.index_command == "tables":
            return _run_tables(args)
        if args.command == "index" and args.index_command == "parts":
            return _run_parts(args)
        if args.command == "index" and args.index_command == "verify":
            return _run_verify(args)
        if args.command == "index":
            return _run_info(args, settings)
        if args.command == "run":
            return _run_bot(args, settings)
        if args.command in {"tickets", "removals", "db"}:
            return ticket_cli.run(args, settings)
        if args.command == "hash-lists" and args.hash_lists_command == "fetch":
            return hashlist_fetch_cli.run(args, settings)
        if args.command == "hash-lists":
            return hashlist_cli.run(args, settings)
        return _run_check(args, settings)
    except RemovalDeskError as exc:  # every error meant for the person running the command
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk, a folder we may not write: say so, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
