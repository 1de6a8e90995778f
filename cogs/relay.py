"""Relay the audit log to Discord: review cards, the log channel, and the requester's DM.

The audit log is the single source of what happened, whichever front end did it (a button here,
or a maintainer's shell). The relay reads events past the last one it queued (a cursor kept in
the database, so a restart neither repeats nor skips one) and turns each into deliveries — the
ticket's card brought up to date, a line in the log channel, the requester told of a decision —
kept in a durable queue (:mod:`cogs.bookkeeping`) until Discord has taken them. A delivery that
fails is tried again with growing pauses; one that cannot be made (DMs closed, a channel the bot
may not post in, or still failing after every retry) is given up on and shown to maintainers: in
the log channel and under ``/tickets queue``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import discord

from bot import messages
from bot.tickets.lifecycle import TicketState
from bot.tickets.models import AuditEvent, Ticket
from cogs import render
from cogs.bookkeeping import Delivery, DiscordBookkeeping
from cogs.host import DeskBot
from cogs.locales import of_guild
from cogs.review import review_view

log = logging.getLogger(__name__)

_TOLD = {TicketState.APPROVED, TicketState.REJECTED}
_NEEDS_REVIEW = {TicketState.OPEN, TicketState.CLAIMED}
# Pauses before each retry: 5 s, 15 s, 45 s, ~2 min, ~7 min (a Discord outage of some minutes
# is ridden out; ~10 minutes after the first try the delivery is given up on and shown).
FIRST_RETRY_SECONDS = 5.0
RETRY_FACTOR = 3.0
MAX_ATTEMPTS = 6


class UndeliverableError(Exception):
    """Discord will not take this delivery however often it is tried (closed DMs, a missing
    permission, an unknown user): give it up at once."""


def retry_delay(attempts: int) -> float:
    """Seconds to wait after the ``attempts``-th failure."""
    return FIRST_RETRY_SECONDS * RETRY_FACTOR ** (attempts - 1)


def _transient(error: discord.HTTPException) -> bool:
    """Server errors and rate limits pass; a refusal (4xx) does not."""
    return error.status >= 500 or error.status == 429


class Relay:
    def __init__(self, bot: DeskBot, clock: Callable[[], float] = time.time) -> None:
        self.bot = bot
        self.store = bot.desk.store
        self.bookkeeping = DiscordBookkeeping(bot.desk.store.database)
        self.settings = bot.desk.settings.discord
        self.clock = clock
        self._lock = asyncio.Lock()

    async def run_once(self) -> int:
        """Queue every event not relayed yet, delivering as it goes, then whatever retries are
        due; return how many events were queued."""
        async with self._lock:
            handled = 0
            while True:
                events = await self.store.events_after(await self.bookkeeping.relayed_up_to())
                if not events:
                    break
                for event in events:
                    await self.bookkeeping.enqueue(event.id, await self._deliveries(event), self.clock())
                    handled += 1
                    await self._deliver_due()
            await self._deliver_due()
            return handled

    async def _deliveries(self, event: AuditEvent) -> list[tuple[str, str | None, str | None]]:
        """What an event owes Discord, in the order it is sent (log line, card, requester)."""
        owed: list[tuple[str, str | None, str | None]] = []
        if self._worth_a_log_line(event):
            owed.append(("log", None, None))
        if event.action in {"forget", "purge"}:
            # The cards of the tickets an erasure touched must stop showing the note.
            erased = await self.store.list_tickets(erased_at=event.at, limit=10_000)
            return owed + [("card", ticket.id, None) for ticket in erased]
        if event.ticket_id is None:
            return owed
        owed.append(("card", event.ticket_id, None))
        if event.action in {"approve", "reject"} and event.to_state in _TOLD:
            owed.append(("dm", event.ticket_id, event.to_state))
        return owed

    def _worth_a_log_line(self, event: AuditEvent) -> bool:
        if not self.settings.log_channel_id:
            return False
        # A retention run that erased nothing: recorded in the audit log, not worth a post.
        return not (event.action == "purge" and not event.detail.get("tickets"))

    async def _deliver_due(self) -> None:
        for delivery in await self.bookkeeping.due(self.clock()):
            try:
                await self._deliver(delivery)
            except UndeliverableError as refused:
                await self._give_up(delivery, str(refused))
            except discord.HTTPException as failed:
                reason = f"Discord answered {failed.status}: {failed.text or failed}"
                if not _transient(failed) or delivery.attempts + 1 >= MAX_ATTEMPTS:
                    await self._give_up(delivery, reason)
                else:
                    log.warning("%s for ticket %s failed (%s); trying again later",
                                delivery.kind, delivery.ticket_id, reason)  # fmt: skip
                    due = self.clock() + retry_delay(delivery.attempts + 1)
                    await self.bookkeeping.retry_later(delivery, reason, due)
            else:
                await self.bookkeeping.delivered(delivery)

    async def _deliver(self, delivery: Delivery) -> None:
        if delivery.kind == "log":
            assert delivery.event_id is not None
            [event] = await self.store.events_after(delivery.event_id - 1, limit=1)
            await self._post_to_log(event)
            return
        assert delivery.ticket_id is not None
        ticket = await self.store.get(delivery.ticket_id)
        if delivery.kind == "card":
            await self._update_card(ticket)
        elif str(ticket.state) == delivery.expected_state and ticket.requester:
            # Only a decision that still stands: a relay that lags behind an approve, reopen,
            # reject sends one message, about the rejection, not two.
            await self._tell_requester(ticket)

    async def _give_up(self, delivery: Delivery, reason: str) -> None:
        """Keep the failed delivery for ``/tickets queue`` and tell the maintainers now."""
        log.error("gave up delivering %s for ticket %s: %s", delivery.kind, delivery.ticket_id, reason)
        await self.bookkeeping.give_up(delivery, reason, self.clock())
        channel = self.bot.get_channel(self.settings.log_channel_id or self.settings.review_channel_id)
        if not isinstance(channel, discord.abc.Messageable):
            return
        try:
            await channel.send(
                messages.undelivered(delivery.kind, delivery.ticket_id, reason),
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException:
            log.exception("could not tell the maintainers that a %s was not delivered", delivery.kind)

    async def _post_to_log(self, event: AuditEvent) -> None:
        channel = self.bot.get_channel(self.settings.log_channel_id)
        if not isinstance(channel, discord.abc.Messageable):
            raise UndeliverableError(messages.CHANNEL_NOT_FOUND)
        await channel.send(
            messages.fit([render.event_line(event)]), allowed_mentions=discord.AllowedMentions.none()
        )

    async def _update_card(self, ticket: Ticket) -> None:
        """Post a card for a ticket that needs review, or bring its existing card up to date."""
        channel = self.bot.get_channel(self.settings.review_channel_id)
        if not isinstance(channel, discord.TextChannel):
            return
        where = await self.bookkeeping.review_card(ticket.id)
        embed = render.ticket_embed(ticket, await self.store.overlapping(ticket))
        quiet = discord.AllowedMentions.none()
        if where is None:
            if ticket.state not in _NEEDS_REVIEW:
                return  # linked, or decided with another ticket: no review work, no card
            message = await channel.send(embed=embed, view=review_view(ticket), allowed_mentions=quiet)
            await self.bookkeeping.set_review_card(ticket.id, channel.id, message.id)
            return
        card = channel.get_partial_message(where[1])
        try:
            await card.edit(embed=embed, view=review_view(ticket), allowed_mentions=quiet)
        except discord.NotFound:
            posted = await channel.send(embed=embed, view=review_view(ticket), allowed_mentions=quiet)
            await self.bookkeeping.set_review_card(ticket.id, channel.id, posted.id)

    async def _tell_requester(self, ticket: Ticket) -> None:
        assert ticket.requester is not None
        if not ticket.requester.isdigit():
            return  # filed from the command line for someone outside Discord
        try:
            user = self.bot.get_user(int(ticket.requester)) or await self.bot.fetch_user(
                int(ticket.requester)
            )
            # Not an interaction: the server's language (a ticket keeps nothing about its requester's).
            locale = of_guild(self.bot, None, self.settings.guild_ids)
            await user.send(messages.decision(ticket, self.settings.contact, locale=locale))
        except (discord.Forbidden, discord.NotFound) as refused:
            raise UndeliverableError(messages.requester_unreachable(refused.status)) from refused
