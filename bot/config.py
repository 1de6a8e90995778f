"""Typed settings, read from ``bot/default.toml`` with optional file and environment overrides.

The TOML file is the single place where default values and the reasons for them live; these
classes only give them types. Environment variables win over files so that secrets and
per-deployment values never need to be written into the repository.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from bot.errors import RemovalDeskError

# The defaults ship inside the package (package data), so an installed copy finds them from any
# folder; a checkout's config/ folder holds deployment files and the commented example.
DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent / "default.toml"
CHECKOUT_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
# A template to copy, every setting commented out: never read as settings.
EXAMPLE_CONFIG_NAME = "example.toml"
ENV_PREFIX = "REMOVAL_DESK_"
# Names that deployment tools and Discord's own guides use.
_ENV_ALIASES = {"discord.token": "DISCORD_TOKEN"}


class ConfigError(RemovalDeskError, ValueError):
    """A setting is missing, has the wrong type or lies outside its range; the message names it."""


# The range each numeric setting must lie in (inclusive; None: no bound), checked as settings are
# read: a zero concurrency or cooldown window would otherwise surface as a hang or a traceback far
# from the file that set it.
_RANGES: dict[str, tuple[float | None, float | None]] = {
    "decoding.max_bytes": (1, None),
    "decoding.max_pixels": (1, None),
    "decoding.min_side": (1, None),
    "decoding.work_side": (16, None),
    "matching.phash_max_distance": (0, 64),
    "matching.pdq_max_distance": (0, 256),
    "matching.pdq_min_quality": (0, 100),
    "matching.turn_phash_max_distance": (-1, 64),
    "matching.core_phash_max_distance": (-1, 64),
    "matching.grid_phash_max_distance": (-1, 64),
    "matching.verify_near_phash": (0, 64),
    "matching.verify_near_pdq": (0, 256),
    "hashing.entry_margin": (0, 0.45),
    "hashing.core_margin": (0, 0.45),
    "hashing.guess_side": (32, None),
    "hashing.border_row_share": (0, 1),
    "hashing.border_tolerance": (0, 255),
    "index.shard_size": (1, None),
    "download.concurrency": (1, None),
    "download.limit_per_host": (1, None),
    "download.connect_timeout_s": (0.001, None),
    "download.read_timeout_s": (0.001, None),
    "download.retries": (0, None),
    "download.backoff_base_s": (0, None),
    "download.retry_after_cap_s": (0, None),
    "download.max_bytes": (1, None),
    "tickets.busy_timeout_ms": (0, None),
    "tickets.max_open_per_requester": (1, None),
    "tickets.flag_matches_over": (1, None),
    "tickets.retention_days": (0, None),
    "tickets.max_note_chars": (0, None),
    "discord.check_uses": (1, None),
    "discord.check_per_seconds": (1, None),
    "discord.request_uses": (1, None),
    "discord.request_per_seconds": (1, None),
    "discord.pending_check_seconds": (1, None),
    "discord.hash_workers": (1, None),
    "discord.max_checks_in_memory": (1, 1000),
    "health.port": (0, 65535),
}


def _check_range(setting: str, value: Any) -> None:
    low, high = _RANGES.get(setting, (None, None))
    if (low is not None and value < low) or (high is not None and value > high):
        wanted = f"at least {low:g}" if high is None else f"between {low:g} and {high:g}"
        raise ConfigError(f"setting {setting} = {value!r} must be {wanted} (see bot/default.toml)")


@dataclass(frozen=True)
class DecodingSettings:
    max_bytes: int
    max_pixels: int
    min_side: int
    work_side: int


@dataclass(frozen=True)
class MatchingSettings:
    phash_max_distance: int
    pdq_max_distance: int
    pdq_min_quality: int
    # The verification of candidates (bot.verification); -1 (a rule built in code without them,
    # as the hash-rule tests do) lets every candidate through.
    verify_min_shape: float = -1.0
    # The pHash radius for query variants that guess at an edit (bot.hashing.Guess): turned back
    # by a guessed angle, cut for the entry's core at a guessed crop. -1: as phash_max_distance.
    turn_phash_max_distance: int = -1
    core_phash_max_distance: int = -1
    # The radius for the crop grid's guesses at the core (Guess.GRID); -1: as core_phash_max_distance.
    grid_phash_max_distance: int = -1
    verify_min_detail: float = -1.0
    verify_min_colour: float = -1.0
    # Smooth entries (less than this share of their thumbnail's variance in detail) must reach
    # verify_min_smooth in shape and detail: their copies barely change, unrelated ones alike in
    # layout come close (see bot/default.toml).
    verify_smooth_below: float = 0.0
    verify_min_smooth: float = -1.0
    # Sparse entries (contrast spread over fewer than this many of the thumbnail's 256 cells: a
    # small bright subject on black) must reach verify_min_sparse in shape and detail.
    verify_sparse_below: float = 0.0
    verify_min_sparse: float = -1.0
    # Entries whose contrast is spread over fewer thumbnail cells than this are never confirmed
    # by their pixels, only counted as near (bot.verification.unjudgeable).
    verify_unjudgeable_below: float = 0.0
    # A candidate the rule found may be lined up through any query variant this near to it.
    verify_near_phash: int = 0
    verify_near_pdq: int = 0


@dataclass(frozen=True)
class HashingSettings:
    entry_margin: float
    query_regions: tuple[tuple[float, float, float, float], ...]
    trimmed_query_regions: tuple[tuple[float, float, float, float], ...]
    cut_query_regions: tuple[tuple[float, float, float, float], ...]
    turn_angles: tuple[float, ...]
    core_margin: float
    core_side_cuts: tuple[float, ...]
    core_even_cuts: tuple[float, ...]
    core_corner_cuts: tuple[float, ...]
    core_crop_grid: tuple[float, ...]
    guess_side: int
    turned_query_regions: tuple[tuple[float, float, float, float], ...]
    border_row_share: float
    border_tolerance: int


@dataclass(frozen=True)
class IndexSettings:
    shard_size: int
    whole_picture_hashes: bool


@dataclass(frozen=True)
class DownloadSettings:
    concurrency: int
    limit_per_host: int
    connect_timeout_s: float
    read_timeout_s: float
    retries: int
    backoff_base_s: float
    retry_after_cap_s: float
    max_bytes: int
    user_agent: str


@dataclass(frozen=True)
class TicketSettings:
    database: str
    busy_timeout_ms: int
    max_open_per_requester: int
    flag_matches_over: int
    retention_days: int
    max_note_chars: int

    @property
    def database_path(self) -> Path:
        """The database file; a relative path is taken from the current directory."""
        return Path(self.database).expanduser()


@dataclass(frozen=True)
class DiscordSettings:
    token: str
    guild_ids: tuple[int, ...]
    privacy_channel_id: int
    review_channel_id: int
    log_channel_id: int
    maintainer_role_id: int
    index: str
    dask: str
    api_base_url: str
    gateway_url: str
    check_uses: int
    check_per_seconds: int
    request_uses: int
    request_per_seconds: int
    pending_check_seconds: int
    contact: str
    hash_workers: int
    max_checks_in_memory: int

    def problems(self) -> list[str]:
        """What keeps the bot from running, one sentence per missing or wrong setting."""
        found = []
        if not self.token:
            found.append(
                "discord.token is not set: put the bot's token in the DISCORD_TOKEN environment variable"
            )
        for name in ("review_channel_id", "maintainer_role_id"):
            if getattr(self, name) <= 0:
                found.append(f"discord.{name} is not set: the id (right-click > Copy ID in Discord)")
        if not self.api_base_url.startswith(("https://", "http://")):
            found.append(f"discord.api_base_url = {self.api_base_url!r} is not an http(s) URL")
        return found


@dataclass(frozen=True)
class LoggingSettings:
    level: str
    format: str

    def __post_init__(self) -> None:
        # bot.logs would refuse them too, but only once the command had started: name the key now.
        if self.level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ConfigError(f"setting logging.level = {self.level!r} must be DEBUG, INFO, WARNING or ERROR")
        if self.format not in {"plain", "json"}:
            raise ConfigError(f"setting logging.format = {self.format!r} must be plain or json")


@dataclass(frozen=True)
class HashListSettings:
    """Partner hash lists (bot.hashlists): the sources whose hits need no review."""

    auto_approve: tuple[str, ...]


@dataclass(frozen=True)
class HealthSettings:
    """The bot's /healthz and /metrics server (bot.health_server); port 0: none."""

    host: str
    port: int


@dataclass(frozen=True)
class Settings:
    decoding: DecodingSettings
    matching: MatchingSettings
    hashing: HashingSettings
    index: IndexSettings
    tickets: TicketSettings
    discord: DiscordSettings
    download: DownloadSettings
    logging: LoggingSettings
    hash_lists: HashListSettings
    health: HealthSettings


_Section = TypeVar("_Section")


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _frozen(value: Any) -> Any:
    """Lists as tuples, all the way down: settings are hashable (the hashing caches by them), also
    where a list's default is empty and gives no example of its items."""
    return tuple(_frozen(item) for item in value) if isinstance(value, list | tuple) else value


def _coerce(name: str, raw: Any, example: Any) -> Any:
    """Convert an environment string (or a TOML value) to the type the default has."""
    try:
        if isinstance(example, bool):
            return raw if isinstance(raw, bool) else str(raw).lower() in {"1", "true", "yes", "on"}
        if isinstance(example, int):
            return int(raw)
        if isinstance(example, float):
            return float(raw)
        if isinstance(example, list | tuple):
            items = raw if isinstance(raw, list | tuple) else json.loads(str(raw))
            if example:
                return tuple(_coerce(name, item, example[0]) for item in items)
            return _frozen(items)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name} = {raw!r} is not a valid {type(example).__name__}") from exc
    return raw


def _section(cls: type[_Section], name: str, values: dict[str, Any], defaults: dict[str, Any]) -> _Section:
    kwargs = {}
    for field in fields(cls):  # type: ignore[arg-type]
        setting = f"{name}.{field.name}"
        if field.name not in values:
            raise ConfigError(f"missing setting {setting} (see bot/default.toml)")
        value = values[field.name]
        env_name = f"{ENV_PREFIX}{name}_{field.name}".upper()
        alias = _ENV_ALIASES.get(setting)
        if alias and alias in os.environ:
            value = os.environ[alias]
        if env_name in os.environ:
            value = os.environ[env_name]
        kwargs[field.name] = _coerce(setting, value, defaults.get(field.name, value))
        _check_range(setting, kwargs[field.name])
    return cls(**kwargs)


def deployment_files(config_dir: Path = CHECKOUT_CONFIG_DIR) -> list[Path]:
    """A checkout's ``config/*.toml`` (e.g. ``config/local.toml``) merged in name order, the example
    excepted. An installed copy has no such folder: it reads ``--config``, ``$REMOVAL_DESK_CONFIG``
    or ``./removal-desk.toml`` instead."""
    return sorted(path for path in config_dir.glob("*.toml") if path.name != EXAMPLE_CONFIG_NAME)


def _read_override(path: Path, defaults: dict[str, Any]) -> dict[str, Any]:
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    for section, entries in values.items():
        if section not in defaults:
            raise ConfigError(f"{path}: unknown section [{section}] (see bot/default.toml)")
        unknown = sorted(set(entries) - set(defaults[section])) if isinstance(entries, dict) else []
        if unknown:
            raise ConfigError(
                f"{path}: unknown setting {section}.{unknown[0]} (a typo? see bot/default.toml)"
            )
    return values


# Where a deployment's own settings are found when no --config is given: the environment, then a
# file of this name in the current folder (so a maintainer's data folder can carry its own).
CONFIG_ENV = "REMOVAL_DESK_CONFIG"
LOCAL_CONFIG_NAME = "removal-desk.toml"


def config_file(explicit: Path | None = None, *, cwd: Path | None = None) -> Path | None:
    """The settings file to read over the defaults: ``--config``, else ``$REMOVAL_DESK_CONFIG``,
    else ``removal-desk.toml`` in the current folder, else none. A file named but missing is an
    error, not silently skipped: the bot would otherwise run without the settings meant for it."""
    named = explicit or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    if named is not None:
        if not named.is_file():
            raise ConfigError(f"config file {named} does not exist")
        return named
    local = (cwd or Path.cwd()) / LOCAL_CONFIG_NAME
    return local if local.is_file() else None


def load_settings(extra_file: Path | None = None, *, with_deployment_files: bool = True) -> Settings:
    """Read the embedded defaults, then ``config/*.toml`` deployment files, then ``extra_file`` if
    given, then the environment (``REMOVAL_DESK_<SECTION>_<KEY>``, and ``DISCORD_TOKEN``).

    An override naming a setting that does not exist is an error, not silently ignored: a typo in
    a channel id's name would otherwise leave the bot running without it."""
    defaults = _defaults()
    values = defaults
    for path in _override_files(extra_file, with_deployment_files):
        values = _merge(values, _read_override(path, defaults))
    sections: dict[str, Any] = {}
    for field in fields(Settings):
        sections[field.name] = _section(
            _section_class(field.type), field.name, values.get(field.name, {}), defaults.get(field.name, {})
        )
    return Settings(**sections)


def _defaults() -> dict[str, Any]:
    return tomllib.loads(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))


def _override_files(extra_file: Path | None, with_deployment_files: bool) -> list[Path]:
    """The files read over the defaults, in order: deployment files, then ``extra_file``."""
    overrides = deployment_files() if with_deployment_files else []
    if extra_file is not None:
        overrides.append(extra_file)
    return overrides


def _section_class(annotation: Any) -> type:
    """A Settings field's section class (annotations are strings under ``from __future__``)."""
    return annotation if isinstance(annotation, type) else globals()[str(annotation)]


def setting_errors(extra_file: Path | None = None, *, with_deployment_files: bool = True) -> list[str]:
    """Every refusal :func:`load_settings` would give for these files and this environment, not
    only the first: ``removal-desk doctor`` names each wrong setting at once, so an operator fixes
    them in one pass. Each setting is tried alone (the others at their defaults); an unknown or
    unreadable file is one refusal, and the settings it does name are still tried."""
    defaults = _defaults()
    values = defaults
    found: list[str] = []
    for path in _override_files(extra_file, with_deployment_files):
        try:
            values = _merge(values, _read_override(path, defaults))
        except ConfigError as exc:
            found.append(str(exc))
            values = _merge(values, _known_part(path, defaults))
    for field in fields(Settings):
        given, default = values.get(field.name, {}), defaults.get(field.name, {})
        for name in given if isinstance(given, dict) else ():
            try:
                _section(_section_class(field.type), field.name, {**default, name: given[name]}, default)
            except ConfigError as exc:
                if str(exc) not in found:  # an environment variable is met on every try
                    found.append(str(exc))
    return found


def _known_part(path: Path, defaults: dict[str, Any]) -> dict[str, Any]:
    """The sections and settings of ``path`` that exist (nothing if it cannot be read)."""
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    return {
        section: {key: value for key, value in entries.items() if key in defaults[section]}
        for section, entries in values.items()
        if section in defaults and isinstance(entries, dict)
    }
