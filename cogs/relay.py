"""Relay the audit log to Discord: review cards, the log channel, and the requester's DM.

The audit log is the single source of what happened, whichever front end did it (a button here,
or a maintainer's shell): the relay reads events past the last one it handled (a cursor kept in
the database, so a restart neither repeats nor skips one) and, per event, posts or updates the
ticket's review card, posts the event to the log channel and tells the requester about a decision.
"""

from __future__ import annotations

import asyncio
import logging

import discord

from bot import messages
from bot.tickets.lifecycle import TicketState
from bot.tickets.models import AuditEvent, Ticket
from cogs import render
from cogs.bookkeeping import DiscordBookkeeping
from cogs.host import DeskBot
from cogs.review import review_view

log = logging.getLogger(__name__)

_TOLD = {TicketState.APPROVED, TicketState.REJECTED}
_NEEDS_REVIEW = {TicketState.OPEN, TicketState.CLAIMED}


class Relay:
    def __init__(self, bot: DeskBot) -> None:
        self.bot = bot
        self.store = bot.desk.store
        self.bookkeeping = DiscordBookkeeping(bot.desk.store.database)
        self.settings = bot.desk.settings.discord
        self._lock = asyncio.Lock()

    async def run_once(self) -> int:
        """Relay every event not relayed yet; return how many."""
        async with self._lock:
            handled = 0
            while True:
                events = await self.store.events_after(await self.bookkeeping.relayed_up_to())
                if not events:
                    return handled
                for event in events:
                    try:
                        await self._relay(event)
                    except discord.HTTPException:
                        log.exception("could not relay audit event %s; skipping it", event.id)
                    await self.bookkeeping.mark_relayed(event.id)
                    handled += 1

    async def _relay(self, event: AuditEvent) -> None:
        # Each step on its own: a log channel the bot may not post in must not keep the card stale
        # or the requester uninformed.
        try:
            await self._post_to_log(event)
        except discord.HTTPException:
            log.exception("could not post audit event %s to the log channel", event.id)
        if event.ticket_id is None:
            return
        ticket = await self.store.get(event.ticket_id)
        try:
            await self._update_card(ticket)
        except discord.HTTPException:
            log.exception("could not post or update the review card of %s", ticket.id)
        # Only a decision that still stands: a relay that lags behind an approve, reopen, reject
        # sends one message, about the rejection, not two.
        decided = event.action in {"approve", "reject"} and event.to_state == ticket.state
        if decided and ticket.state in _TOLD and ticket.requester:
            await self._tell_requester(ticket)

    async def _post_to_log(self, event: AuditEvent) -> None:
        if not self.settings.log_channel_id:
            return
        if event.action == "purge" and not event.detail.get("tickets"):
            return  # a retention run that erased nothing: recorded in the log, not worth a post
        channel = self.bot.get_channel(self.settings.log_channel_id)
        if isinstance(channel, discord.abc.Messageable):
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
            await user.send(messages.decision(ticket, self.settings.contact))
        except discord.HTTPException:
            log.info("could not tell the requester of %s about the decision (DMs closed?)", ticket.id)
