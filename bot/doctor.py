"""``removal-desk doctor``: is this desk ready to run, and if not, what exactly to fix.

Each check gives :class:`Finding`s: what was looked at, whether it holds, and when it does not,
the one thing to do about it, naming the setting, environment variable or command. The operator
reads them once before the first start and after every change; a script reads ``--json``.

Doctor is read-only: it never creates, migrates or repairs anything (the database is opened
read-only, the index only read), so it is safe beside a running bot. It never prints the token,
nor any part of it.

The checks here need no Discord library (``bot/`` never imports one): the Discord side (the guild,
channels, role and the bot's permissions) lives in :mod:`cogs.doctor_checks` and is handed in as
``discord_check`` by the command line, through the composition root :mod:`cogs.app`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from bot.config import (
    CONFIG_ENV,
    ENV_PREFIX,
    LOCAL_CONFIG_NAME,
    ConfigError,
    Settings,
    config_file,
    deployment_files,
    load_settings,
    setting_errors,
)
from bot.errors import RemovalDeskError
from bot.index.parts import read_parts
from bot.index.search import HashIndex
from bot.index.served import dask_index
from bot.index.storage import IndexFormatError, hashing_parameters
from bot.tickets.migrations import LATEST_VERSION


class Status(StrEnum):
    OK = "ok"
    WARNING = "warning"  # worth fixing; the desk runs anyway
    PROBLEM = "problem"  # the desk is not ready
    SKIPPED = "skipped"  # not checked, on purpose or because an earlier problem stops it


@dataclass(frozen=True)
class Finding:
    """One thing doctor looked at. ``fix`` says what to do, naming the setting, variable or command
    (None when there is nothing to do)."""

    check: str
    status: Status
    message: str
    fix: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"check": self.check, "status": str(self.status), "message": self.message, "fix": self.fix}


@dataclass(frozen=True)
class Report:
    findings: tuple[Finding, ...]

    @property
    def ready(self) -> bool:
        """Ready when nothing is a problem: warnings and skipped checks do not stop the desk."""
        return not any(finding.status is Status.PROBLEM for finding in self.findings)

    def as_json(self) -> str:
        return json.dumps({"ready": self.ready, "findings": [f.as_dict() for f in self.findings]})

    def as_text(self) -> str:
        labels = {Status.OK: "OK", Status.WARNING: "WARN", Status.PROBLEM: "FAIL", Status.SKIPPED: "SKIP"}
        lines = []
        for finding in self.findings:
            lines.append(f"{labels[finding.status]:<5} {finding.check}: {finding.message}")
            if finding.fix:
                lines.append(f"      fix: {finding.fix}")
        problems = sum(f.status is Status.PROBLEM for f in self.findings)
        warnings = sum(f.status is Status.WARNING for f in self.findings)
        verdict = "ready" if self.ready else f"not ready: {problems} problem(s)"
        lines.append(f"{verdict}, {warnings} warning(s)")
        return "\n".join(lines)


# The Discord side's checks (cogs.doctor_checks.check_discord), given the loaded settings.
DiscordCheck = Callable[[Settings], Awaitable[list[Finding]]]

# Where a fix tells the operator to write a setting when no settings file was named.
_DEFAULT_TARGET = f"config/local.toml, ./{LOCAL_CONFIG_NAME} or a file given with --config"
# How long doctor tries to reach a Dask scheduler ([discord] dask) before saying it cannot.
DASK_CONNECT_SECONDS = 10.0
_ID_HOWTO = "Discord > Settings > Advanced > Developer Mode, then right-click > Copy ID"


async def diagnose(
    explicit_config: Path | None,
    *,
    quick: bool = False,
    discord_check: DiscordCheck | None = None,
) -> Report:
    """Every check, in the order an operator fixes things. ``discord_check`` None: the Discord
    side is skipped on purpose (``--offline``)."""
    findings, settings, target = load_findings(explicit_config)
    if settings is None:
        skipped = "not checked: the configuration does not load"
        findings += [
            Finding(name, Status.SKIPPED, skipped) for name in ("token", "index", "database", "discord")
        ]
        return Report(tuple(findings))
    findings += config_findings(settings, target)
    findings += token_findings(settings)
    findings += index_findings(settings, quick=quick)
    findings += await asyncio.to_thread(dask_findings, settings)  # a Dask client wants no event loop
    findings += database_findings(settings)
    if discord_check is None:
        findings.append(
            Finding("discord", Status.SKIPPED, "not checked (--offline): guild, channels, role, permissions")
        )
    elif not settings.discord.token:
        findings.append(Finding("discord", Status.SKIPPED, "not checked: there is no token to log in with"))
    else:
        findings += await discord_check(settings)
    return Report(tuple(findings))


def load_findings(explicit_config: Path | None) -> tuple[list[Finding], Settings | None, str]:
    """Load the settings as ``run`` would; a load error is a finding naming the setting or file.
    Also returns where a fix should tell the operator to write a setting."""
    try:
        named = config_file(explicit_config)
    except ConfigError as exc:
        source = "--config" if explicit_config else f"${CONFIG_ENV}"
        fix = f"give an existing file with {source}, or unset it to use ./{LOCAL_CONFIG_NAME}"
        return [Finding("config", Status.PROBLEM, str(exc), fix)], None, _DEFAULT_TARGET
    files = [*deployment_files(), *([named] if named else [])]
    target = str(named) if named else (str(files[-1]) if files else _DEFAULT_TARGET)
    try:
        settings = load_settings(named)
    except ConfigError as exc:
        fix = (
            f"correct or remove that setting (in {target}, or the {ENV_PREFIX}<SECTION>_<KEY> "
            "environment variable that sets it); bot/default.toml lists every setting and its range"
        )
        refusals = setting_errors(named)  # every wrong setting, not only the first
        if str(exc) not in refusals:
            refusals.insert(0, str(exc))
        return [Finding("config", Status.PROBLEM, refusal, fix) for refusal in refusals], None, target
    read = ", ".join(str(path) for path in files) or "no file (defaults and environment only)"
    return [Finding("config", Status.OK, f"settings load; read over the defaults: {read}")], settings, target


def config_findings(settings: Settings, target: str) -> list[Finding]:
    """Settings that load but leave the bot unable to do its job, one finding each."""
    discord = settings.discord
    found = []
    required = {
        "review_channel_id": "the channel where new tickets appear for maintainers",
        "maintainer_role_id": "the role whose members may see and decide tickets",
    }
    for name, purpose in required.items():
        if getattr(discord, name) <= 0:
            found.append(
                Finding(
                    f"config.discord.{name}",
                    Status.PROBLEM,
                    f"discord.{name} is not set ({purpose})",
                    f"set discord.{name} in {target} to its id ({_ID_HOWTO})",
                )
            )
    if not discord.guild_ids:
        found.append(
            Finding(
                "config.discord.guild_ids",
                Status.WARNING,
                "discord.guild_ids is empty: slash commands are synced globally and may take an hour to "
                "appear; doctor looks for the guild through the review channel",
                f"set discord.guild_ids = [<your server's id>] in {target}",
            )
        )
    if not discord.index.strip():
        found.append(
            Finding(
                "config.discord.index",
                Status.PROBLEM,
                "discord.index is not set (the dataset index pictures are checked against)",
                f"set discord.index in {target} to the folder `removal-desk index build` wrote",
            )
        )
    if not discord.api_base_url.startswith(("https://", "http://")):
        found.append(
            Finding(
                "config.discord.api_base_url",
                Status.PROBLEM,
                f"discord.api_base_url = {discord.api_base_url!r} is not an http(s) URL",
                f"remove discord.api_base_url from {target} (Discord's own is the default)",
            )
        )
    channels = {
        "privacy_channel_id": discord.privacy_channel_id,
        "review_channel_id": discord.review_channel_id,
        "log_channel_id": discord.log_channel_id,
    }
    if discord.privacy_channel_id and discord.privacy_channel_id in (
        discord.review_channel_id,
        discord.log_channel_id,
    ):
        other = "review" if discord.privacy_channel_id == discord.review_channel_id else "log"
        found.append(
            Finding(
                "config.discord.privacy_channel_id",
                Status.PROBLEM,
                f"discord.privacy_channel_id is also the {other} channel: the bot deletes every picture "
                "posted in the privacy channel",
                f"give the privacy channel a channel of its own in {target} (or 0 for none)",
            )
        )
    if not [f for f in found if f.status is Status.PROBLEM]:
        named = ", ".join(f"{name} {value}" for name, value in channels.items() if value)
        found.append(Finding("config.discord", Status.OK, f"the bot's settings make sense ({named})"))
    return found


def token_findings(settings: Settings) -> list[Finding]:
    """Whether there is a token, and whether it comes from the environment. Never shows it."""
    if not settings.discord.token:
        return [
            Finding(
                "token",
                Status.PROBLEM,
                "no bot token: DISCORD_TOKEN is not set",
                "export DISCORD_TOKEN=<the bot's token> (Developer Portal > your application > Bot > "
                "Reset Token); keep it out of files",
            )
        ]
    variable = next(
        (name for name in ("DISCORD_TOKEN", f"{ENV_PREFIX}DISCORD_TOKEN") if os.environ.get(name)), None
    )
    if variable is None:
        return [
            Finding(
                "token",
                Status.WARNING,
                "the token is set in a settings file, where it can leak (a commit, a backup)",
                "move it to the DISCORD_TOKEN environment variable and delete discord.token from the file",
            )
        ]
    return [Finding("token", Status.OK, f"a token is set in {variable} (not shown)")]


def index_findings(settings: Settings, *, quick: bool = False) -> list[Finding]:
    """The index opens (every part, for a folder of parts), its files are those the manifests list
    (sizes, and unless ``quick`` their SHA-256), and it was hashed the way this configuration
    hashes queries. Read here even when the bot searches on a Dask cluster: the parts are read
    under the same path everywhere."""
    if not settings.discord.index.strip():
        return [Finding("index", Status.SKIPPED, "not checked: discord.index is not set")]
    folder = Path(settings.discord.index).expanduser()
    rebuild = f"restore {folder} from a copy, or rebuild it: removal-desk index build SOURCES --out {folder}"
    if not folder.is_dir():
        return [
            Finding(
                "index",
                Status.PROBLEM,
                f"the index folder {folder} does not exist",
                f"build it (removal-desk index build SOURCES --out {folder}) or point discord.index at it",
            )
        ]
    started = time.perf_counter()
    try:
        parts = read_parts(folder)
        indexes = [(part, HashIndex(part.path)) for part in parts]
        verified = 0 if quick else sum(index.verify() for _, index in indexes)
    except (IndexFormatError, OSError) as exc:
        return [Finding("index", Status.PROBLEM, str(exc), rebuild)]
    took = time.perf_counter() - started
    found = []
    expected = hashing_parameters(settings)
    for part, index in indexes:
        where = part.path if part.name else folder
        if index.manifest.hashing != expected:
            found.append(
                Finding(
                    "index.hashing",
                    Status.PROBLEM,
                    f"{where} was hashed with {index.manifest.hashing}; these settings hash pictures "
                    f"with {expected}, so copies would be missed",
                    f"rebuild the index with these settings, or restore the settings it was built with "
                    f"([hashing] entry_margin, [decoding] work_side): {rebuild}",
                )
            )
    unverifiable = sum(len(index.manifest.unverifiable()) for _, index in indexes)
    if unverifiable and not quick:
        found.append(
            Finding(
                "index.checksums",
                Status.WARNING,
                f"{unverifiable} shard(s) were written before checksums were kept: damage in them "
                "cannot be detected",
                f"rebuild the index to have them checked: {rebuild}",
            )
        )
    shards = sum(len(index.shards) for _, index in indexes)
    what = (
        "sizes match the manifest (--quick: checksums not read)"
        if quick
        else (f"{verified} of {shards} shard(s) match their checksums")
    )
    entries = sum(len(index) for _, index in indexes)
    served = "" if parts[0].name == "" else f" in {len(parts)} part(s)"
    found.append(Finding("index", Status.OK, f"{folder}: {entries} entries{served}; {what} ({took:.1f} s)"))
    return found


def dask_findings(settings: Settings) -> list[Finding]:
    """With ``[discord] dask`` set: the scheduler answers and its workers open every part of the
    index (as ``run --dask`` has them do). Nothing when the index is searched in the bot's process."""
    address = settings.discord.dask.strip()
    if not address or not settings.discord.index.strip():
        return []
    folder = Path(settings.discord.index).expanduser()
    try:
        with dask_index(address, folder, connect_timeout=DASK_CONNECT_SECONDS) as remote:
            workers = len(remote.client.nthreads())
            parts = len(remote.each_part(len))
    except (OSError, TimeoutError, RemovalDeskError) as exc:
        return [
            Finding(
                "index.dask",
                Status.PROBLEM,
                f"the index cannot be searched on the Dask cluster at {address}: {exc}",
                "start the scheduler and its workers (README, 'Building an index', Cluster), with the "
                "parts at the same path on every worker, or empty discord.dask to search in the bot",
            )
        ]
    return [Finding("index.dask", Status.OK, f"{address}: {parts} part(s) open on {workers} worker(s)")]


def database_findings(settings: Settings) -> list[Finding]:
    """The ticket database can be written where it is, opens, and its schema is this release's.

    Opened read-only: doctor never creates, migrates or changes it (the bot migrates at start)."""
    path = settings.tickets.database_path
    if path.is_dir():
        return [
            Finding(
                "database",
                Status.PROBLEM,
                f"tickets.database = {path} is a folder, not a database file",
                "set tickets.database to a file path, e.g. data/tickets.sqlite3",
            )
        ]
    folder = _nearest_existing(path.parent)
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        return [
            Finding(
                "database",
                Status.PROBLEM,
                f"the ticket database {path} cannot be written: {folder} is not a writable folder",
                f"let the bot's user write {folder} (it also needs room for the -wal and -shm files), or "
                "set tickets.database to a writable place",
            )
        ]
    if not path.exists():
        return [
            Finding(
                "database",
                Status.WARNING,
                f"the ticket database {path} does not exist yet; the bot creates and migrates it at start",
                "nothing to do for a new desk; if there should be one, set tickets.database to it",
            )
        ]
    if not os.access(path, os.R_OK | os.W_OK):
        return [
            Finding(
                "database",
                Status.PROBLEM,
                f"the ticket database {path} cannot be written by this user",
                f"give the bot's user read and write access to {path}",
            )
        ]
    return _schema_findings(path)


def _schema_findings(path: Path) -> list[Finding]:
    try:
        # Read-only. With no -wal or -shm file beside it, nobody has the database open and its file
        # is whole: read it as immutable, or SQLite would leave those two files behind.
        in_use = any(Path(f"{path}{suffix}").exists() for suffix in ("-wal", "-shm"))
        uri = f"{path.resolve().as_uri()}?mode=ro{'' if in_use else '&immutable=1'}"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            integrity = str(db.execute("PRAGMA quick_check").fetchone()[0])
    except sqlite3.Error as exc:
        return [
            Finding(
                "database",
                Status.PROBLEM,
                f"the ticket database {path} cannot be read ({exc})",
                "restore it from a backup (removal-desk db restore FILE), or set tickets.database",
            )
        ]
    if integrity != "ok":
        return [
            Finding(
                "database",
                Status.PROBLEM,
                f"the ticket database {path} is damaged ({integrity})",
                "restore it from a backup: removal-desk db restore FILE",
            )
        ]
    if version > LATEST_VERSION:
        return [
            Finding(
                "database.schema",
                Status.PROBLEM,
                f"the ticket database is at schema version {version}, newer than this release "
                f"understands ({LATEST_VERSION})",
                "upgrade removal-desk to the release that wrote it (or restore a backup this release made)",
            )
        ]
    if version < LATEST_VERSION:
        return [
            Finding(
                "database.schema",
                Status.WARNING,
                f"the ticket database is at schema version {version}, not migrated to this release's "
                f"{LATEST_VERSION}; the bot migrates it when it starts",
                "back it up first (removal-desk db backup FILE), then start the bot or run any tickets "
                "command (e.g. removal-desk tickets list): either migrates it",
            )
        ]
    return [Finding("database", Status.OK, f"{path} is writable, whole, at schema version {version}")]


def _nearest_existing(folder: Path) -> Path:
    """``folder``, or its nearest ancestor that exists (the bot creates the rest at start)."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return candidate
    return folder
