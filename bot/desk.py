"""The removal desk as the bot uses it: check a picture off the event loop, file and follow tickets.

Everything Discord-independent that the cogs need lives here, so the cogs only translate:

* hashing runs in a process pool (decoding and up to 20 hash variants take ~0.1 s of CPU, which
  would freeze a bot's event loop); the picture's bytes go to the worker through a pipe, never a
  file; the hashes come back with small grey views for verifying candidates, dropped after the search;
* the index search runs in a thread (numpy releases the GIL while scanning);
* a check's result is kept in memory, only as hashes, for a short while, under a random token the
  Request removal button carries; nothing about a check is stored unless a ticket is made;
* a hashing process that dies (a picture that crashes the decoder, the OOM killer) breaks a
  ``ProcessPoolExecutor`` for good: the desk replaces the pool from its factory, answers the check
  that met it with "try again" (the picture may be the cause, so it is not retried), and the next
  check works;
* at most ``max_checks_in_memory`` pictures are admitted at once (downloaded, queued or being
  hashed); past that a check is refused at once with "busy, try again in N s", never dropped or
  queued without bound, so memory stays bounded under a crowd.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from bot import messages
from bot.checking import CheckResult, hash_submitted_picture
from bot.config import Settings
from bot.cooldowns import Cooldown
from bot.decoding import ImageRejectedError
from bot.errors import RemovalDeskError
from bot.hashing import QueryHashes
from bot.index.parts import IncompleteSearchError
from bot.index.search import LookUp, Searchable
from bot.metrics import DeskMetrics
from bot.tickets.intake import file_removal_request
from bot.tickets.models import Ticket
from bot.tickets.store import TicketStore
from bot.verification import QueryViews

log = logging.getLogger(__name__)

# A first guess at how long a check holds its place, until the desk has timed a few.
_FIRST_CHECK_SECONDS = 1.0


class TryAgainError(RemovalDeskError):
    """The desk could not check this picture now, through no fault of the picture's; ``message``
    is the sentence for the person (from :mod:`bot.messages`)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DeskBusyError(TryAgainError):
    """Every place for a picture is taken; ``retry_after`` is the desk's estimate in seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(messages.busy(retry_after))
        self.retry_after = retry_after
        self.translatable("busy", seconds=retry_after)


class IndexUnreachableError(TryAgainError):
    """The search could not reach every part of the index: no partial answer is given."""

    def __init__(self) -> None:
        super().__init__(messages.INDEX_INCOMPLETE)
        self.translatable("index_incomplete")


class HashingWorkerDiedError(TryAgainError):
    """The hashing process died during this check; the pool has been replaced."""

    def __init__(self) -> None:
        super().__init__(messages.HASHING_WORKER_DIED)
        self.translatable("hashing_worker_died")


FILED_KEPT_SECONDS = 24 * 3600


def hash_submitted_picture_timed(data: bytes, settings: Settings) -> tuple[QueryHashes, QueryViews, float]:
    """:func:`hash_submitted_picture` timed in the worker itself, so the figure is the hashing
    alone, not the wait for a free worker."""
    started = time.perf_counter()
    query, views = hash_submitted_picture(data, settings)
    return query, views, time.perf_counter() - started


def _timed_look_up(
    index: Searchable,
    query: QueryHashes,
    settings: Settings,
    removed: frozenset[tuple[str, str]],
    views: QueryViews,
) -> tuple[LookUp, float]:
    started = time.perf_counter()
    looked_up = index.look_up(query, settings.matching, removed, views=views)
    return looked_up, time.perf_counter() - started


@dataclass(frozen=True)
class PendingCheck:
    owner: int
    result: CheckResult
    expires: float


class Desk:
    def __init__(
        self,
        settings: Settings,
        index: Searchable,
        store: TicketStore,
        executor: Executor | None,
        clock: Callable[[], float] = time.monotonic,
        *,
        executor_factory: Callable[[], Executor] | None = None,
    ) -> None:
        """``executor`` hashes pictures (None: asyncio's default thread pool); ``executor_factory``
        makes a new one when a process pool breaks (and the first one, if ``executor`` is None)."""
        self.settings = settings
        self.index = index
        self.store = store
        if executor is None and executor_factory is not None:
            executor = executor_factory()
        self._executor = executor
        self._executor_factory = executor_factory
        self._clock = clock
        self.admitted = 0  # pictures in the desk now (downloading, queued, hashing, searching)
        self.peak_admitted = 0
        self.refused_busy = 0
        self._check_seconds = _FIRST_CHECK_SECONDS  # moving average of an admitted check's time
        self._admission: contextvars.ContextVar[bool] = contextvars.ContextVar("admitted", default=False)
        self._pending: dict[str, PendingCheck] = {}
        # Checks that became a ticket: token -> (owner, ticket id, until when it is remembered), so
        # Request removal pressed again names the request instead of "expired". Ids only.
        self._filed: dict[str, tuple[int, str, float]] = {}
        #: Counted here and by the cogs (refusals before a download); served by bot.health_server.
        self.metrics = DeskMetrics()
        self.metrics.pictures_in_desk.set_function(lambda: self.admitted)
        discord = settings.discord
        self.check_cooldown = Cooldown(
            discord.check_uses, discord.check_per_seconds, clock,
            on_refused=lambda: self.metrics.refused("rate_limited"),
        )  # fmt: skip
        self.request_cooldown = Cooldown(discord.request_uses, discord.request_per_seconds, clock)

    @property
    def executor(self) -> Executor | None:
        return self._executor

    def busy_for(self) -> float:
        """Seconds until a place is likely free: the checks ahead, spread over the hashing workers
        (at least 2: sooner would only meet the same crowd)."""
        workers = max(1, self.settings.discord.hash_workers)
        return max(2.0, self._check_seconds * max(1, self.admitted) / workers)

    @contextlib.contextmanager
    def admit(self, *, another: bool = False) -> Iterator[None]:
        """Hold one of the ``max_checks_in_memory`` places for a picture, from before its download
        to the end of its check; raise :class:`DeskBusyError` at once if none is free. A
        :meth:`check` inside it uses this place instead of taking another; ``another`` takes one
        more all the same (the second picture of a message, held beside the first)."""
        if self._admission.get() and not another:
            yield
            return
        if self.admitted >= self.settings.discord.max_checks_in_memory:
            self.refused_busy += 1
            self.metrics.refused("busy")
            raise DeskBusyError(self.busy_for())
        self.admitted += 1
        self.peak_admitted = max(self.peak_admitted, self.admitted)
        token = self._admission.set(True)
        started = self._clock()
        try:
            yield
        finally:
            self._admission.reset(token)
            self.admitted -= 1
            took = self._clock() - started
            if took > 0:
                self._check_seconds = 0.8 * self._check_seconds + 0.2 * took

    async def check(self, data: bytes, *, source: str = "other") -> CheckResult:
        """Hash ``data`` in a worker and search the index; raise ImageRejectedError for bad input,
        TryAgainError (busy, or the hashing process died) when the desk cannot check it now.
        ``source`` says where the picture came from, for the metrics (bot.metrics.CHECK_SOURCES)."""
        with self.admit():
            self.metrics.checked(source)
            return await self._check(data)

    async def _check(self, data: bytes) -> CheckResult:
        loop = asyncio.get_running_loop()
        executor = self._executor
        try:
            query, views, hashing = await loop.run_in_executor(
                executor, hash_submitted_picture_timed, data, self.settings
            )
        except ImageRejectedError as rejected:
            self.metrics.refused(rejected.reason)
            raise
        except BrokenProcessPool as broken:
            self._replace_broken(executor)
            self.metrics.refused("worker_died")
            raise HashingWorkerDiedError() from broken
        del data
        self.metrics.hashing_seconds.observe(hashing)
        removed = await self.store.removed_entries()
        try:
            looked_up, searching = await asyncio.to_thread(
                _timed_look_up, self.index, query, self.settings, removed, views
            )
        except IncompleteSearchError as incomplete:  # names parts and folders, nothing of the picture
            log.warning("a check was not answered: %s", incomplete)
            self.metrics.refused("index_incomplete")
            raise IndexUnreachableError() from incomplete
        finally:
            del views  # the small grey copies of the picture: only the hashes outlive the check
        self.metrics.search_seconds.observe(searching)
        self.metrics.found(len(looked_up.found))
        return CheckResult(
            query=query,
            found=looked_up.found,
            unjudged=looked_up.unjudged,
            removed=looked_up.removed,
            entries=looked_up.entries,
        )

    def _replace_broken(self, broken: Executor | None) -> None:
        """Swap in a new pool for ``broken`` (once: the checks that were queued on it all fail)."""
        if self._executor is not broken:
            return  # another check already replaced it
        if self._executor_factory is None:
            log.error("the hashing pool broke and the desk has no factory to replace it")
            return
        log.warning("a hashing process died; starting a new pool")
        if broken is not None:
            broken.shutdown(wait=False, cancel_futures=True)
        self._executor = self._executor_factory()

    def close(self) -> None:
        """Stop the hashing pool (queued checks are cancelled)."""
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)

    def remember(self, owner: int, result: CheckResult) -> str:
        """Keep a check's hashes briefly for the Request removal button; return its token."""
        self._forget_expired()
        token = secrets.token_urlsafe(12)
        expires = self._clock() + self.settings.discord.pending_check_seconds
        self._pending[token] = PendingCheck(owner, result, expires)
        return token

    def recall(self, token: str, owner: int) -> CheckResult | None:
        """The check behind a button, if it is still fresh and was made by ``owner``."""
        self._forget_expired()
        pending = self._pending.get(token)
        if pending is None or pending.owner != owner:
            return None
        return pending.result

    def drop(self, token: str) -> None:
        """Forget a remembered check at once (its answer could not be delivered)."""
        self._pending.pop(token, None)

    def filed_ticket(self, token: str, owner: int) -> str | None:
        """The id of the ticket ``owner`` already filed from the check behind ``token``, if any."""
        self._forget_expired()
        filed = self._filed.get(token)
        return filed[1] if filed is not None and filed[0] == owner else None

    def _forget_expired(self) -> None:
        now = self._clock()
        for token in [token for token, pending in self._pending.items() if pending.expires <= now]:
            del self._pending[token]
        for token in [token for token, (_, _, until) in self._filed.items() if until <= now]:
            del self._filed[token]

    async def request_removal(self, token: str, owner: int, note: str | None) -> Ticket | None:
        """File a ticket from a remembered check; None if it expired. The check is then dropped.
        IndexUnreachableError when a matched entry's part cannot be read now (nothing is filed;
        the check stays, so the person may press again)."""
        result = self.recall(token, owner)
        if result is None:
            return None
        try:
            ticket = await file_removal_request(
                self.store, self.index, result, str(owner), note=note, source="discord"
            )
        except IncompleteSearchError as incomplete:
            log.warning("a removal request was not filed: %s", incomplete)
            raise IndexUnreachableError() from incomplete
        self._pending.pop(token, None)
        # As long as the answer's button stays in the person's DM history (a day is plenty).
        self._filed[token] = (owner, ticket.id, self._clock() + FILED_KEPT_SECONDS)
        return ticket
