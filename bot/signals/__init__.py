"""Kinds of perceptual hash (signals, as python-threatexchange calls them) behind one interface.

* :mod:`bot.signals.base`: :class:`SignalKind`, what a kind must say and do: its name, its size,
  how it is computed from a picture, written and read as text, compared, and its match radii
  (settings named after it).
* one module per kind: :mod:`bot.signals.phash`, :mod:`bot.signals.pdq`;
* :mod:`bot.signals.registry`: :data:`SIGNAL_KINDS`, every kind in use, and :data:`SEARCHED`,
  the kind the index's search tables are keyed on;
* :mod:`bot.signals.values`: the ``signals`` mapping that carries a value per kind.

Adding a kind: its module, its line in :data:`SIGNAL_KINDS`, and its radii in ``[matching]``
(``NAME_max_distance``, ``verify_near_NAME``). Hashing, the index's shards, the search, the
match rule's ranking, a ticket's query and hash Parquet sources take it from there. An index
pins the kinds it was built with (its manifest: build a new one), and a ticket's matched entries
and the removal list keep the kinds their database columns name (bot.tickets.migrations): a
kind they should carry needs a migration as well.
"""

from bot.signals.base import SignalKind, pack_bits
from bot.signals.pdq import PDQ
from bot.signals.phash import PHash
from bot.signals.registry import SEARCHED, SIGNAL_KINDS, checked_kinds, ranked_kinds, signal_kinds
from bot.signals.values import SignalValues, by_kind, signal_keywords

__all__ = [
    "PDQ",
    "SEARCHED",
    "SIGNAL_KINDS",
    "PHash",
    "SignalKind",
    "SignalValues",
    "by_kind",
    "checked_kinds",
    "pack_bits",
    "ranked_kinds",
    "signal_keywords",
    "signal_kinds",
]
