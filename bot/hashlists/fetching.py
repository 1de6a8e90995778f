"""A fetched feed made into a hash list, so that ``hash-lists fetch`` stores it as ``import`` stores
a file (:func:`bot.hashlists.storage.store_list`, the same checks, the same dedupe).

What a fetch means here:

* The records are taken in the order the exchange sent them. Each is the exchange's current word
  on its key (StopNCII: "the same SignalType+Hash in a later iteration should completely replace
  the previously observed record"), so a later record with the same key replaces an earlier one
  and a deletion removes it from this fetch.
* Each fingerprint of a live record is one list entry, numbered in that order from 1 (its "line",
  as a file's entries are numbered by line). A fingerprint of a type this project takes (PDQ,
  pHash, MD5) is checked by :func:`bot.hashlists.signals.parse_hash`: a malformed one is a bad
  line under import's reasons. A type the index cannot match (SHA-1, PhotoDNA, a video's MD5, or
  MD5 while the index has none) is counted by the exchange's name for it, not stored, and not a
  bad line: a feed carries every fingerprint its exchange has, not what somebody chose for us.
* A deletion (StopNCII Withdrawn / Deleted, an NCMEC ``deleted...`` entry, ThreatExchange's
  ``should_delete``) is counted and reported. It does not reach into lists stored before: each of
  those is the record of what the exchange listed when it was fetched, and a scan of the source
  still searches it. What the exchange lists now is this fetch's list.
* The list's sha256 is that of its entries written out canonically (with the feed's name), so the
  same content fetched again (``--restart``) stores nothing, as the same file imported again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.hashlists.exchanges import FeedRecord
from bot.hashlists.reading import ListEntry, ReadList, file_sha256
from bot.hashlists.signals import BadHashError, parse_hash


@dataclass
class FeedList:
    """A fetch as a list (``read``), with what did not go into it."""

    read: ReadList
    records: int = 0
    deleted: int = 0
    replaced: int = 0  # records that replaced an earlier record of the same fetch
    not_matchable: dict[str, int] = field(default_factory=dict)  # fingerprints by exchange type


def feed_list(exchange: str, feed: str, records: Iterable[FeedRecord], matchable: frozenset[str]) -> FeedList:
    """The list ``records`` make (see the module's docstring); ``matchable``: the index's kinds."""
    live: dict[str, FeedRecord] = {}
    listed = FeedList(ReadList(exchange, ""))
    for record in records:
        listed.records += 1
        earlier = live.pop(record.key, None)
        if record.deleted:
            listed.deleted += 1
        else:
            listed.replaced += earlier is not None
            live[record.key] = record
    read = listed.read
    line = 0
    for record in live.values():
        for fingerprint in record.hashes:
            if fingerprint.signal is None or fingerprint.signal not in matchable:
                kind = fingerprint.exchange_type
                listed.not_matchable[kind] = listed.not_matchable.get(kind, 0) + 1
                continue
            line += 1
            try:
                signal, value = parse_hash(fingerprint.value, fingerprint.signal, matchable)
            except BadHashError as bad:
                read.bad.setdefault(bad.reason, []).append(line)
                continue
            read.entries.append(
                ListEntry(line, signal.name, value, record.entry_id, record.category, record.list_source)
            )
    read.sha256 = file_sha256(_canonical(feed, read.entries).encode())
    return listed


def _canonical(feed: str, entries: list[ListEntry]) -> str:
    lines = [f"{feed}\n"]
    lines.extend(
        "\t".join((e.signal, e.hash, e.entry_id or "", e.category or "", e.source or "")) + "\n"
        for e in entries
    )
    return "".join(lines)
