"""The removal desk as the bot uses it: check a picture off the event loop, file and follow tickets.

Everything Discord-independent that the cogs need lives here, so the cogs only translate:

* hashing runs in a process pool (decoding and up to 20 hash variants take ~0.1 s of CPU, which
  would freeze a bot's event loop); the picture's bytes go to the worker through a pipe, never a
  file; the hashes come back with small grey views for verifying candidates, dropped after the search;
* the index search runs in a thread (numpy releases the GIL while scanning);
* a check's result is kept in memory, only as hashes, for a short while, under a random token the
  Request removal button carries; nothing about a check is stored unless a ticket is made.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from bot.checking import CheckResult, hash_submitted_picture
from bot.config import Settings
from bot.cooldowns import Cooldown
from bot.index.search import HashIndex
from bot.tickets.intake import file_removal_request
from bot.tickets.models import Ticket
from bot.tickets.store import TicketStore

FILED_KEPT_SECONDS = 24 * 3600


@dataclass(frozen=True)
class PendingCheck:
    owner: int
    result: CheckResult
    expires: float


class Desk:
    def __init__(
        self,
        settings: Settings,
        index: HashIndex,
        store: TicketStore,
        executor: Executor | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.index = index
        self.store = store
        self._executor = executor
        self._clock = clock
        self._pending: dict[str, PendingCheck] = {}
        # Checks that became a ticket: token -> (owner, ticket id, until when it is remembered), so
        # Request removal pressed again names the request instead of "expired". Ids only.
        self._filed: dict[str, tuple[int, str, float]] = {}
        discord = settings.discord
        self.check_cooldown = Cooldown(discord.check_uses, discord.check_per_seconds, clock)
        self.request_cooldown = Cooldown(discord.request_uses, discord.request_per_seconds, clock)

    async def check(self, data: bytes) -> CheckResult:
        """Hash ``data`` in a worker and search the index; raise ImageRejectedError for bad input."""
        loop = asyncio.get_running_loop()
        query, views = await loop.run_in_executor(self._executor, hash_submitted_picture, data, self.settings)
        del data
        removed = await self.store.removed_entries()
        looked_up = await asyncio.to_thread(
            self.index.look_up, query, self.settings.matching, removed, views=views
        )
        del views  # the small grey copies of the picture: only the hashes outlive the check
        return CheckResult(
            query=query, found=looked_up.found, unjudged=looked_up.unjudged, removed=looked_up.removed
        )

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
        """File a ticket from a remembered check; None if it expired. The check is then dropped."""
        result = self.recall(token, owner)
        if result is None:
            return None
        ticket = await file_removal_request(
            self.store, self.index, result, str(owner), note=note, source="discord"
        )
        self._pending.pop(token, None)
        # As long as the answer's button stays in the person's DM history (a day is plenty).
        self._filed[token] = (owner, ticket.id, self._clock() + FILED_KEPT_SECONDS)
        return ticket
