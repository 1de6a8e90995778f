"""Per-person rate limits: at most ``uses`` actions in any window of ``per_seconds``.

A sliding window (the times of the last ``uses`` actions) rather than a fixed bucket, so the
answer "try again in N seconds" is exact and a burst at a window's edge cannot double the rate.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable


class Cooldown:
    def __init__(
        self,
        uses: int,
        per_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        on_refused: Callable[[], None] | None = None,
    ) -> None:
        """``on_refused`` is called for every refused action (the desk counts them in its metrics)."""
        if uses < 1 or per_seconds <= 0:
            raise ValueError("a cooldown needs at least one use per positive window")
        self.uses = uses
        self.per_seconds = per_seconds
        self._clock = clock
        self._on_refused = on_refused
        self._recent: dict[Hashable, deque[float]] = {}

    def retry_after(self, key: Hashable) -> float:
        """Seconds until ``key`` may act again; 0 when it may act now (nothing is recorded)."""
        now = self._clock()
        recent = self._recent.get(key)
        if recent is None:
            return 0.0
        while recent and recent[0] <= now - self.per_seconds:
            recent.popleft()
        if not recent:
            del self._recent[key]
            return 0.0
        return max(0.0, recent[0] + self.per_seconds - now) if len(recent) >= self.uses else 0.0

    def try_acquire(self, key: Hashable) -> float:
        """Record an action for ``key`` if allowed and return 0; else the seconds to wait."""
        wait = self.retry_after(key)
        if wait > 0:
            if self._on_refused is not None:
                self._on_refused()
            return wait
        self._recent.setdefault(key, deque()).append(self._clock())
        return 0.0
