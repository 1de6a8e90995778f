"""How the review desk is keeping up: what waits and for how long, how long a decision takes.

Read on the store's read-only connection, so a maintainer asking never waits for a write, and
computed at the store's clock (a test's fake clock included). Counts only: no requester, note or
entry is read.

* Waiting: tickets in each state that needs a maintainer (open, claimed), by how long ago they
  were filed; linked tickets are counted apart (they are decided with the ticket they duplicate).
* Time to a decision: from filing to the current decision (``closed_at``) of every approved or
  rejected ticket, linked ones decided with their primary included (it is the requester's wait).
  A ticket reopened and decided again counts once, from filing to its latest decision. The median,
  over the decisions of the last ``RECENT_DAYS`` and over all of them. Withdrawn tickets were not
  decided and are only counted.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import aiosqlite

from bot.tickets.database import timestamp
from bot.tickets.lifecycle import TicketState

RECENT_DAYS = 90
# (name, upper bound in days) of each age bucket; the last has none.
AGE_BUCKETS: tuple[tuple[str, int | None], ...] = (
    ("under_1_day", 1),
    ("1_to_7_days", 7),
    ("7_to_30_days", 30),
    ("over_30_days", None),
)
WAITING_STATES = (TicketState.OPEN, TicketState.CLAIMED)
DECIDED_STATES = (TicketState.APPROVED, TicketState.REJECTED)


@dataclass(frozen=True)
class Decisions:
    """Decisions over some span: how many of each outcome, and the median wait in seconds (None:
    no decision in the span)."""

    count: int
    by_outcome: dict[str, int]
    median_seconds: float | None


@dataclass(frozen=True)
class TicketStats:
    at: str  # when the figures were taken (the store's clock)
    waiting: dict[str, dict[str, int]]  # state -> age bucket -> tickets
    linked: int  # waiting with the ticket they duplicate
    oldest_waiting_id: str | None
    oldest_waiting_seconds: float | None
    recent_days: int
    recent: Decisions
    overall: Decisions
    withdrawn: int

    @property
    def waiting_total(self) -> int:
        return sum(sum(buckets.values()) for buckets in self.waiting.values())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "waiting_total": self.waiting_total}


def _seconds(later: str, earlier: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


def _decisions(rows: list[tuple[str, str, str]]) -> Decisions:
    """``rows``: (state, created_at, closed_at) of decided tickets."""
    by_outcome = {str(state): 0 for state in DECIDED_STATES}
    for state, _created, _closed in rows:
        by_outcome[state] += 1
    waits = [_seconds(closed, created) for _state, created, closed in rows]
    return Decisions(len(rows), by_outcome, statistics.median(waits) if waits else None)


async def ticket_stats(
    db: aiosqlite.Connection, now: datetime, recent_days: int = RECENT_DAYS
) -> TicketStats:
    """The figures at ``now`` (timestamps compare as strings: the store writes them fixed-width UTC)."""
    bounds = [timestamp(now - timedelta(days=days)) for _name, days in AGE_BUCKETS if days is not None]
    # bucket i holds created_at in (bounds[i], bounds[i-1]]: filed less than its days ago
    cases = []
    for position, (_name, _days) in enumerate(AGE_BUCKETS):
        newer = f"created_at > ?{position + 1}" if position < len(bounds) else "1"
        older = f"created_at <= ?{position}" if position > 0 else "1"
        cases.append(f"SUM(CASE WHEN {newer} AND {older} THEN 1 ELSE 0 END)")
    states = ", ".join(f"'{state}'" for state in WAITING_STATES)
    waiting = {str(state): {name: 0 for name, _days in AGE_BUCKETS} for state in WAITING_STATES}
    async with db.execute(
        f"SELECT state, {', '.join(cases)} FROM tickets WHERE state IN ({states}) GROUP BY state", bounds
    ) as cursor:
        for row in await cursor.fetchall():
            waiting[row[0]] = {name: int(row[i + 1] or 0) for i, (name, _days) in enumerate(AGE_BUCKETS)}
    async with db.execute(
        f"SELECT id, created_at FROM tickets WHERE state IN ({states}) ORDER BY created_at, id LIMIT 1"
    ) as cursor:
        oldest = await cursor.fetchone()
    async with db.execute(
        "SELECT SUM(state = 'linked'), SUM(state = 'withdrawn') FROM tickets"
        " WHERE state IN ('linked', 'withdrawn')"
    ) as cursor:
        linked, withdrawn = await cursor.fetchone() or (0, 0)
    decided = ", ".join(f"'{state}'" for state in DECIDED_STATES)
    async with db.execute(
        f"SELECT state, created_at, closed_at FROM tickets"
        f" WHERE state IN ({decided}) AND closed_at IS NOT NULL"
    ) as cursor:
        rows = [(str(row[0]), str(row[1]), str(row[2])) for row in await cursor.fetchall()]
    since = timestamp(now - timedelta(days=recent_days))
    stamp = timestamp(now)
    return TicketStats(
        at=stamp,
        waiting=waiting,
        linked=int(linked or 0),
        oldest_waiting_id=oldest[0] if oldest else None,
        oldest_waiting_seconds=_seconds(stamp, oldest[1]) if oldest else None,
        recent_days=recent_days,
        recent=_decisions([row for row in rows if row[2] >= since]),
        overall=_decisions(rows),
        withdrawn=int(withdrawn or 0),
    )
