"""Check one picture against the index: bytes in, matching dataset entries out.

This is the one path every front end uses (command line, Discord), so the privacy rules hold in
one place: the bytes are decoded in memory, hashed, and dropped; only hashes leave this module.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from bot.config import Settings
from bot.decoding import decode_picture, rejected
from bot.hashing import QueryHashes, hash_query_with_views
from bot.index.search import FoundEntry, Searchable
from bot.verification import QueryViews


@dataclass(frozen=True)
class CheckResult:
    """The outcome of checking one picture: its hashes (for a ticket) and what it matched."""

    query: QueryHashes
    found: list[FoundEntry]
    # Entries near the picture that are too plain to be judged (bot.index.search.LookUp): when
    # nothing was found, the person is told these exist instead of "no copy".
    unjudged: int = 0
    # Copies found whose removal was already approved (not in ``found``): "already removed".
    removed: int = 0
    # Entries the search compared the picture with (every part's), told when nothing matched.
    entries: int = 0


def hash_submitted_picture(data: bytes, settings: Settings) -> tuple[QueryHashes, QueryViews]:
    """Decode and hash a submitted picture; raise :class:`ImageRejectedError` if it cannot be compared.

    Returns the hashes (which a ticket may keep) and the small grey views that verify the
    candidates (which the caller drops once the search is done)."""
    picture = decode_picture(data, settings.decoding)
    query, views = hash_query_with_views(picture.image, settings.hashing)
    if query.quality < settings.matching.pdq_min_quality:
        raise rejected("too_plain", "checking.too_plain")
    return query, views


def check_picture(
    data: bytes,
    index: Searchable,
    settings: Settings,
    removed: Collection[tuple[str, str]] = frozenset(),
) -> CheckResult:
    """Hash ``data`` and find every dataset entry that is a copy of it, best first.

    ``removed`` lists entries whose removal was already approved; they no longer match.
    """
    query, views = hash_submitted_picture(data, settings)
    looked_up = index.look_up(query, settings.matching, removed, views=views)
    return CheckResult(
        query=query,
        found=looked_up.found,
        unjudged=looked_up.unjudged,
        removed=looked_up.removed,
        entries=looked_up.entries,
    )
