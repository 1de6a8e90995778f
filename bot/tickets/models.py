"""What a ticket holds, as plain values the store returns and the front ends render.

A ticket holds what a decision needs and nothing else: the query's hashes (never the picture,
its URL, its file name or its metadata), the matched dataset entries with their own hashes, an
opaque requester id and an optional note. Hashes are kept as hex strings, the form people and
other tools read.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from bot.hashing import CORE_GUESSES, EntryHashes, QueryHashes
from bot.index.search import FoundEntry
from bot.signals import PDQ, PHash, SignalValues, signal_keywords, signal_kinds
from bot.tickets.lifecycle import TicketState


@dataclass(frozen=True)
class MatchedEntry:
    """One dataset entry a query matched: how the dataset names it, its hashes, and how close.

    A row of the ticket database: its hashes are the kinds its columns name
    (bot.tickets.migrations), written as their kinds write them (:meth:`SignalKind.to_hex`)."""

    key: str
    url: str | None
    caption: str | None
    entry_id: str  # shard/row in the index the query was checked against
    phash: str  # 16 hex digits
    pdq: str  # 64 hex digits
    quality: int
    pdq_distance: int  # -1: not compared (a hash-list hit of another signal type)
    phash_distance: int  # -1: as above
    variant: str  # the query variant that found it; ``list:SIGNAL`` for a hash-list hit
    # The entry's whole-picture PDQ and its quality (bot.whole_picture): what a platform's PDQ of
    # the same picture is close to, exported for ThreatExchange. None where the index lacks it.
    whole_pdq: str | None = None
    whole_quality: int | None = None

    @classmethod
    def from_found(cls, found: FoundEntry, hashes: EntryHashes) -> MatchedEntry:
        match = found.match
        whole = hashes.whole
        return cls(
            key=found.entry.key,
            url=found.entry.url,
            caption=found.entry.caption,
            entry_id=f"{match.shard}/{match.row}",
            phash=PHash.to_hex(hashes.phash),
            pdq=PDQ.to_hex(hashes.pdq),
            quality=int(hashes.quality),
            pdq_distance=match.distance.pdq,
            phash_distance=match.distance.phash,
            variant=match.variant,
            whole_pdq=None if whole is None else PDQ.to_hex(whole.pdq),
            whole_quality=None if whole is None else whole.quality,
        )

    @property
    def identity(self) -> tuple[str, str]:
        """What makes two matches the same dataset entry: its key and its URL."""
        return (self.key, self.url or "")


@signal_keywords
@dataclass(frozen=True)
class StoredQuery(SignalValues):
    """A query's hashes in every variant, as stored with a ticket until erased: hex strings of
    every kind (``query.pdq``), one per variant."""

    variants: tuple[str, ...]
    signals: dict[str, tuple[str, ...]]
    quality: int

    @classmethod
    def from_hashes(cls, query: QueryHashes, found_through: Collection[str] = ()) -> StoredQuery:
        """The variants a decision may look at: every one but the hundreds of regions aimed at an
        entry's core after a guessed crop (bot.hashing.Guess), and those that found an entry.
        Keeping all (~670) would store ~90 kB of hashes per ticket, nearly all of guesses that
        found nothing."""
        guesses = query.guesses if query.guesses is not None else np.zeros(len(query.variants), np.uint8)
        keep = [
            i
            for i, (variant, guess) in enumerate(zip(query.variants, guesses.tolist(), strict=True))
            if guess not in CORE_GUESSES or variant in found_through
        ]
        return cls(
            variants=tuple(query.variants[i] for i in keep),
            signals={
                kind.name: tuple(kind.to_hex(value) for value in query.signals[kind.name][keep].tolist())
                for kind in signal_kinds()
            },
            quality=int(query.quality),
        )

    def to_document(self) -> dict[str, Any]:
        """``{"variants": [...], "phash": [...], "pdq": [...], "quality": 90}``: a key per kind."""
        return {"variants": self.variants, **self.signals, "quality": self.quality}

    def to_json(self) -> str:
        return json.dumps(self.to_document(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> StoredQuery:
        document = json.loads(text)
        return cls(
            variants=tuple(document["variants"]),
            # a ticket filed before a kind was added has none of its hashes
            signals={kind.name: tuple(document.get(kind.name, ())) for kind in signal_kinds()},
            quality=int(document["quality"]),
        )


@dataclass(frozen=True)
class ListOrigin:
    """Where a hash-list hit ticket came from: the partner's list (imported under ``source``), the
    line and hash that matched, the list's own id for it. ``policy`` names the setting that
    approved it automatically, if one did."""

    source: str
    list_id: int
    line: int
    list_entry_id: str | None
    category: str | None
    signal_type: str
    hash: str
    policy: str | None = None


@dataclass(frozen=True)
class Ticket:
    id: str
    state: TicketState
    source: str
    requester: str | None  # None once erased (forget, retention)
    note: str | None
    query: StoredQuery | None  # None once erased
    entries: tuple[MatchedEntry, ...]
    assignee: str | None
    decided_by: str | None
    decision_reason: str | None
    flagged: bool
    flag_reason: str | None
    linked_to: str | None
    created_at: str
    updated_at: str
    closed_at: str | None
    erased_at: str | None
    # Set on a ticket a partner hash list filed (it has no requester); None for a person's.
    list_hit: ListOrigin | None = None

    @property
    def approved_by_policy(self) -> bool:
        """Approved at filing by a hash-list policy, and not decided again since by a maintainer
        (a reopened and re-decided ticket names its maintainer instead)."""
        return (
            self.list_hit is not None
            and self.list_hit.policy is not None
            and self.state is TicketState.APPROVED
            and self.decided_by is None
        )

    def to_dict(self) -> dict[str, Any]:
        document = asdict(self)
        document["state"] = str(self.state)
        document["query"] = None if self.query is None else self.query.to_document()
        return document


@dataclass(frozen=True)
class AuditEvent:
    """One line of the audit log. ``actor`` names a maintainer; requesters are never named."""

    id: int
    at: str
    ticket_id: str | None
    actor_kind: str  # maintainer | requester | system
    actor: str | None
    action: str
    from_state: str | None
    to_state: str | None
    reason: str | None
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TransitionResult:
    """A ticket after an action, and the other tickets the action moved with it (linked ones)."""

    ticket: Ticket
    also_changed: tuple[Ticket, ...] = ()

    @property
    def requesters_to_tell(self) -> list[tuple[str, str]]:
        """(requester, ticket id) for every still-known requester whose ticket changed."""
        changed = (self.ticket, *self.also_changed)
        return [(ticket.requester, ticket.id) for ticket in changed if ticket.requester is not None]


@dataclass(frozen=True)
class RemovalRow:
    """One approved dataset entry on the removal list."""

    key: str
    url: str | None
    phash: str
    pdq: str
    quality: int
    ticket_id: str
    decided_at: str
    added_in: int  # the removal list version that first carried this row
    whole_pdq: str | None = None  # the entry's whole-picture PDQ (what --te-pdq exports)
    removed_by_list: str | None = None  # the hash list's source when a list hit removed it
    list_entry_id: str | None = None  # that list's own id for the hash
