"""Values kept per kind of hash: a mapping by kind name that reads as attributes (``hashes.pdq``).

The carriers of hashes (:class:`bot.hashing.EntryHashes`, :class:`bot.hashing.QueryHashes`, a
shard, a batch, a match's distance) hold one ``signals`` dict instead of a field per kind, so a
kind added to the registry flows through them untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from bot.signals.registry import SIGNAL_KINDS


class SignalValues:
    """``signals`` maps each kind's name to its value(s); ``obj.<name>`` reads one."""

    signals: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        # Only reached when ordinary lookup fails; vars() never recurses (an object being
        # unpickled has no ``signals`` yet).
        signals = vars(self).get("signals")
        if signals is not None and name in signals:
            return signals[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


def by_kind(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` in the registry's order; a TypeError naming the kinds missing or unknown."""
    if tuple(values) == tuple(SIGNAL_KINDS) and isinstance(values, dict):  # as they usually come
        return values
    if values.keys() != SIGNAL_KINDS.keys():
        missing = ", ".join(name for name in SIGNAL_KINDS if name not in values)
        unknown = ", ".join(name for name in values if name not in SIGNAL_KINDS)
        raise TypeError(
            f"a value of every kind of hash is needed (missing: {missing or '-'}; unknown: {unknown or '-'})"
        )
    return {name: values[name] for name in SIGNAL_KINDS}


_Carrier = TypeVar("_Carrier")


def signal_keywords(cls: type[_Carrier]) -> type[_Carrier]:
    """For a dataclass with a ``signals`` field: also accept each kind's value as a keyword of its
    name (``EntryHashes(phash=..., pdq=..., quality=100)``), and check that every kind is there."""
    init: Callable[..., None] = cls.__init__

    def init_with_kind_keywords(
        self: _Carrier, *args: Any, signals: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> None:
        named = {name: kwargs.pop(name) for name in SIGNAL_KINDS.keys() & kwargs.keys()}
        init(
            self,
            *args,
            signals=by_kind({**signals, **named} if signals and named else signals or named),
            **kwargs,
        )

    init_with_kind_keywords.__doc__ = init.__doc__
    setattr(cls, "__init__", init_with_kind_keywords)  # noqa: B010 - a method mypy would not let be replaced
    return cls
