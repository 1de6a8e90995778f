"""The signal types a partner list may carry, named and validated as python-threatexchange does.

python-threatexchange names a type by ``SignalType.get_name()`` (``pdq``, ``video_md5``) in its
text files and by its ThreatExchange indicator type (``HASH_PDQ``, ``HASH_MD5``) in the API's
exports; both are accepted here, with ``md5`` and ``phash`` for plain lists. A hash goes through
the library's own ``validate_signal_str`` where it has the type (PDQ, MD5); pHash has no
python-threatexchange type, so it is checked here the same way (lower-case hex of its length).

A list whose lines name no type is read by the hash's length: 64 hex digits are PDQ, 16 pHash,
32 MD5 (no two of the three share a length).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass

from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal

from bot.errors import RemovalDeskError

_HEX = frozenset(string.hexdigits)


class BadHashError(RemovalDeskError, ValueError):
    """A list line that cannot be imported; ``reason`` is the count it goes under."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# The reasons a line is refused, in the order they are checked (and reported).
EMPTY, UNKNOWN_TYPE, NOT_HEX, WRONG_LENGTH, NOT_IN_INDEX, MALFORMED = (
    "empty hash",
    "unknown signal type",
    "not hex",
    "wrong length",
    "signal type the index cannot match",
    "malformed line",
)
REASONS = (EMPTY, MALFORMED, UNKNOWN_TYPE, NOT_HEX, WRONG_LENGTH, NOT_IN_INDEX)


def _validate_phash(text: str) -> str:
    """pHash (ImageHash's 64 bits): 16 lower-case hex digits, as PdqSignal checks its own 64."""
    if not re.fullmatch("[0-9a-f]{16}", text):
        raise ValueError("invalid pHash")
    return text


@dataclass(frozen=True)
class ListSignal:
    """One signal type of a list: its name here (the index's kind name where it has one)."""

    name: str
    hex_digits: int
    validate: Callable[[str], str]
    aliases: frozenset[str]


PDQ = ListSignal(
    "pdq",
    64,
    PdqSignal.validate_signal_str,
    frozenset({PdqSignal.get_name(), str(PdqSignal.INDICATOR_TYPE).lower()}),
)
PHASH = ListSignal("phash", 16, _validate_phash, frozenset({"phash", "hash_phash"}))
MD5 = ListSignal(
    "md5",
    32,
    VideoMD5Signal.validate_signal_str,
    frozenset({"md5", VideoMD5Signal.get_name(), *(name.lower() for name in VideoMD5Signal.INDICATOR_TYPE)}),
)
LIST_SIGNALS: tuple[ListSignal, ...] = (PDQ, PHASH, MD5)
_BY_NAME = {alias: signal for signal in LIST_SIGNALS for alias in signal.aliases}
_BY_LENGTH = {signal.hex_digits: signal for signal in LIST_SIGNALS}


def signal_named(name: str) -> ListSignal:
    """The signal type a list calls ``name`` (any case); BadHashError if none."""
    found = _BY_NAME.get(name.strip().lower())
    if found is None:
        raise BadHashError(UNKNOWN_TYPE)
    return found


def parse_hash(text: str, type_name: str | None, matchable: frozenset[str]) -> tuple[ListSignal, str]:
    """A list's hash as lower-case hex with its signal type (named, else by length); BadHashError if
    it is empty, of an unknown type, not hex, of the wrong length, or of a type not in
    ``matchable`` (the index's kinds, by name)."""
    value = text.strip().lower()
    if not value:
        raise BadHashError(EMPTY)
    signal = signal_named(type_name) if type_name else None
    if not _HEX.issuperset(value):
        raise BadHashError(NOT_HEX)
    if signal is None:
        signal = _BY_LENGTH.get(len(value))
        if signal is None:
            raise BadHashError(WRONG_LENGTH)
    elif len(value) != signal.hex_digits:
        raise BadHashError(WRONG_LENGTH)
    try:
        value = signal.validate(value)  # python-threatexchange's own check where it has the type
    except ValueError as exc:
        raise BadHashError(MALFORMED) from exc
    if signal.name not in matchable:
        raise BadHashError(NOT_IN_INDEX)
    return signal, value
