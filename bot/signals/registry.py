"""The registry: every kind of hash an entry and a query are hashed with.

Whatever iterates over kinds reads them from here, at the time it runs (a test may register a
kind of its own): hashing computes each, a shard stores each in a column of its own, the search
checks each on the rows its tables find, a match ranks them, tickets and hash files write them.
"""

from __future__ import annotations

from bot.signals.base import SignalKind
from bot.signals.pdq import PDQ
from bot.signals.phash import PHash

# In the order their columns are written (ticket JSON, manifest).
SIGNAL_KINDS: dict[str, type[SignalKind]] = {kind.name: kind for kind in (PHash, PDQ)}

# The kind the index's search tables are keyed on (64 bits: bot.index.mih); the search checks
# every other kind on the rows the tables find.
SEARCHED: type[SignalKind] = PHash


def signal_kinds() -> tuple[type[SignalKind], ...]:
    return tuple(SIGNAL_KINDS.values())


def checked_kinds() -> tuple[type[SignalKind], ...]:
    """Every kind but the searched one: checked on the candidates the search tables give."""
    return tuple(kind for kind in SIGNAL_KINDS.values() if kind is not SEARCHED)


def ranked_kinds() -> tuple[type[SignalKind], ...]:
    """The kinds in the order matches are ranked by: the finest (most bits) first, so PDQ's 256
    bits decide before pHash's 64."""
    return tuple(sorted(SIGNAL_KINDS.values(), key=lambda kind: -kind.bits))
