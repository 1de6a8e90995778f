"""What the running desk counts, in Prometheus' text format, for whoever keeps the bot alive.

Two kinds of figure:

* counted where things happen (:class:`bot.desk.Desk`, the cogs through it): checks by where the
  picture came from, checks that found a copy, refusals by reason, and how long hashing and the
  index search took;
* read from the ticket database when scraped (:meth:`DeskMetrics.refresh`): tickets by state, how
  long decided tickets waited for their decision, and the bot's delivery queue (reached through a
  callable the bot registers, so ``bot/`` never imports the Discord side).

Every label value comes from a fixed set written here (a reason code, a source, a state): nothing a
person sent, typed or is called ever becomes a label, and an unknown value is counted as "other".
Each desk has a registry of its own, so two desks in one process (the tests) never share a count.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from bot.tickets.lifecycle import TicketState
from bot.tickets.store import TicketStore

log = logging.getLogger(__name__)

PREFIX = "removal_desk"
# Where a picture came from: /check, the privacy channel, a direct message; "other" for anything
# else (the command line does not count here).
CHECK_SOURCES = ("command", "channel", "dm", "other")
# Why a picture was not checked: bot.decoding's and bot.checking's reason codes, the cog's two
# refusals before a download (Discord's size and content type) and a failed download, the
# per-person check limit, and the desk's two "try again"s. Nothing from the person: a reason not
# listed is counted as "other".
REFUSAL_REASONS = (
    "empty",
    "too_many_bytes",
    "too_big",
    "not_a_picture",
    "not_an_image",
    "corrupt",
    "too_small",
    "too_many_pixels",
    "too_plain",
    "download_failed",
    "busy",
    "rate_limited",
    "worker_died",
    "index_incomplete",
    "other",
)
TICKET_STATES = tuple(str(state) for state in TicketState)
# Hashing a picture costs ~0.1-0.5 s of CPU (docs/measurements.md); the index search a few ms
# (10 ms is its budget at 1e8 entries); a decision hours to days.
HASHING_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.0, 5.0)
SEARCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
DECISION_BUCKETS = (3600.0, 6 * 3600.0, 86400.0, 3 * 86400.0, 7 * 86400.0, 14 * 86400.0, 30 * 86400.0)
# A scrape must not hang on a database held by another writer: past this the figures read from it
# are left out (removal_desk_database_up 0) and the counters are still served. Under Prometheus'
# default scrape timeout (10 s), and above a first full read of 100,000 tickets on a busy machine
# (~1-2 s; later scrapes reuse it until the audit log grows).
DATABASE_READ_SECONDS = 5.0

# (deliveries waiting or being retried, deliveries given up on)
DeliveryQueue = Callable[[], Awaitable[tuple[int, int]]]


@dataclass(frozen=True)
class DecisionTimes:
    """Filing to decision over every decided ticket."""

    decided: int
    seconds_sum: float
    buckets: tuple[int, ...]  # cumulative counts at DECISION_BUCKETS


@dataclass(frozen=True)
class StoreSnapshot:
    """What one scrape read from the ticket database; the tickets' figures as of audit event
    ``as_of``."""

    as_of: int
    tickets: dict[str, int]
    decisions: DecisionTimes
    delivery_queue: tuple[int, int] | None  # None: no bot registered its queue


class _StoreCollector(Collector):
    """Yields the last :class:`StoreSnapshot` (read by :meth:`DeskMetrics.refresh`, which is
    async: a collector's ``collect`` is called synchronously by the exposition)."""

    def __init__(self) -> None:
        self.snapshot: StoreSnapshot | None = None
        self.database_up = False

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            f"{PREFIX}_database_up", "1 when the last scrape could read the ticket database"
        )
        up.add_metric([], 1.0 if self.database_up else 0.0)
        yield up
        snapshot = self.snapshot
        if snapshot is None or not self.database_up:
            return
        tickets = GaugeMetricFamily(f"{PREFIX}_tickets", "Tickets in each state", labels=["state"])
        for state in TICKET_STATES:
            tickets.add_metric([state], float(snapshot.tickets.get(state, 0)))
        yield tickets
        buckets = [
            (floatToGoString(bound), float(count))
            for bound, count in zip(DECISION_BUCKETS, snapshot.decisions.buckets, strict=True)
        ]
        buckets.append(("+Inf", float(snapshot.decisions.decided)))
        yield HistogramMetricFamily(
            f"{PREFIX}_decision_seconds",
            "Time from a ticket's filing to its approval or rejection, over decided tickets",
            buckets=buckets,
            sum_value=snapshot.decisions.seconds_sum,
        )
        if snapshot.delivery_queue is not None:
            waiting, given_up = snapshot.delivery_queue
            queue = GaugeMetricFamily(
                f"{PREFIX}_delivery_queue_depth", "Messages to Discord waiting to be sent or retried"
            )
            queue.add_metric([], float(waiting))
            yield queue
            undelivered = GaugeMetricFamily(
                f"{PREFIX}_undelivered_messages",
                "Messages to Discord given up on (shown to maintainers under /tickets queue)",
            )
            undelivered.add_metric([], float(given_up))
            yield undelivered


class DeskMetrics:
    """One desk's counters and histograms, and its registry (not prometheus_client's global one)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.checks = Counter(
            f"{PREFIX}_checks", "Pictures the desk took to check, by where they came from",
            ["source"], registry=self.registry,
        )  # fmt: skip
        self.matches = Counter(
            f"{PREFIX}_matches", "Checks that found at least one copy in the index", registry=self.registry
        )
        self.matched_entries = Counter(
            f"{PREFIX}_matched_entries", "Dataset entries found by checks", registry=self.registry
        )
        self.refusals = Counter(
            f"{PREFIX}_refusals", "Pictures not checked, by reason", ["reason"], registry=self.registry
        )
        self.hashing_seconds = Histogram(
            f"{PREFIX}_hashing_seconds", "Decoding and hashing one picture, in the hashing worker",
            buckets=HASHING_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.search_seconds = Histogram(
            f"{PREFIX}_search_seconds", "Searching the index and verifying candidates for one picture",
            buckets=SEARCH_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.pictures_in_desk = Gauge(
            f"{PREFIX}_pictures_in_desk", "Pictures held now (downloading, queued, being hashed)",
            registry=self.registry,
        )  # fmt: skip
        for source in CHECK_SOURCES:  # every series from the first scrape, at 0
            self.checks.labels(source)
        for reason in REFUSAL_REASONS:
            self.refusals.labels(reason)
        self._store_state = _StoreCollector()
        self.registry.register(self._store_state)
        self.delivery_queue: DeliveryQueue | None = None

    def checked(self, source: str) -> None:
        self.checks.labels(source if source in CHECK_SOURCES else "other").inc()

    def refused(self, reason: str) -> None:
        self.refusals.labels(reason if reason in REFUSAL_REASONS else "other").inc()

    def found(self, entries: int) -> None:
        if entries:
            self.matches.inc()
            self.matched_entries.inc(entries)

    async def refresh(self, store: TicketStore) -> bool:
        """Read what the database holds now for the next exposition; False (and the database
        figures left out) when it cannot be read within :data:`DATABASE_READ_SECONDS`."""
        try:
            async with asyncio.timeout(DATABASE_READ_SECONDS):
                snapshot = await _read_store(store, self.delivery_queue, self._store_state.snapshot)
        except Exception as failed:  # closed, locked, missing table: the scrape says so, not a 500
            log.warning("metrics: the ticket database could not be read (%s)", type(failed).__name__)
            self._store_state.database_up = False
            return False
        self._store_state.snapshot = snapshot
        self._store_state.database_up = True
        return True


async def _read_store(
    store: TicketStore, delivery_queue: DeliveryQueue | None, previous: StoreSnapshot | None
) -> StoreSnapshot:
    """The tickets' figures are read again only when the audit log has grown: every ticket written
    (filed, moved to another state, erased) appends an event in the same transaction, and reading
    them all costs ~0.1 s at 100,000 tickets where the newest event's id costs nothing."""
    reader = store.database.reader
    async with reader.execute("SELECT COALESCE(MAX(id), 0) FROM audit_events") as cursor:
        row = await cursor.fetchone()
    as_of = int(row[0]) if row else 0
    queue = await delivery_queue() if delivery_queue is not None else None
    if previous is not None and previous.as_of == as_of:
        return dataclasses.replace(previous, delivery_queue=queue)
    async with reader.execute("SELECT state, COUNT(*) FROM tickets GROUP BY state") as cursor:
        tickets = {str(state): int(count) for state, count in await cursor.fetchall()}
    return StoreSnapshot(
        as_of=as_of, tickets=tickets, decisions=await _decision_times(store), delivery_queue=queue
    )


async def _decision_times(store: TicketStore) -> DecisionTimes:
    # Timestamps are fixed-width UTC ISO strings, which julianday() reads.
    waited = "(julianday(closed_at) - julianday(created_at)) * 86400.0"
    bucket_sums = ", ".join(f"COALESCE(SUM({waited} <= {bound!r}), 0)" for bound in DECISION_BUCKETS)
    async with store.database.reader.execute(
        f"SELECT COUNT(*), COALESCE(SUM({waited}), 0.0), {bucket_sums} FROM tickets"
        " WHERE state IN ('approved', 'rejected') AND closed_at IS NOT NULL"
    ) as cursor:
        sums: Sequence[float] | None = await cursor.fetchone()
    assert sums is not None
    return DecisionTimes(
        decided=int(sums[0]), seconds_sum=float(sums[1]), buckets=tuple(int(count) for count in sums[2:])
    )
