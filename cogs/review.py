"""The maintainers' side: review cards with Claim / Approve / Reject, and /tickets, /removals, /index.

Who may act is checked at run time on every command and every button press
(:mod:`cogs.permissions`); the store checks again what the lifecycle allows.
"""

from __future__ import annotations

import asyncio
import io
import re
from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot import messages
from bot.index.describe import describe_served
from bot.index.storage import hashing_parameters
from bot.removals.export import export_as_files
from bot.tickets.lifecycle import (
    NEEDS_REASON,
    TicketAction,
    TicketError,
    TicketState,
    allowed_actions,
    check_action,
)
from bot.tickets.models import Ticket
from cogs import render
from cogs.bookkeeping import DiscordBookkeeping
from cogs.host import DeskBot, DeskModal, desk_bot, lost_form, submitted_texts
from cogs.permissions import MaintainerCommands, maintainers_only, require_maintainer

_BUTTON_STYLES = {
    TicketAction.CLAIM: discord.ButtonStyle.secondary,
    TicketAction.RELEASE: discord.ButtonStyle.secondary,
    TicketAction.APPROVE: discord.ButtonStyle.success,
    TicketAction.REJECT: discord.ButtonStyle.danger,
    TicketAction.REOPEN: discord.ButtonStyle.secondary,
}
_DISCORD_ID = re.compile(r"\b(\d{15,21})\b")
REASON_FORM = re.compile(r"rd:reason:(?P<action>approve|reject|reopen):(?P<ticket>[0-9A-Z]{6}):(?P<user>\d+)")


def refusal_text(refused: TicketError) -> str:
    """The store's sentence, with maintainers' Discord ids as mentions: Discord shows their names."""
    return _DISCORD_ID.sub(r"<@\1>", str(refused))


async def refuse(interaction: discord.Interaction, refused: TicketError) -> None:
    await interaction.response.send_message(
        refusal_text(refused), ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
    )


class TicketButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"rd:ticket:(?P<action>claim|release|approve|reject|reopen):(?P<ticket>[0-9A-Z]{6})",
):
    """Stable custom_id (action + ticket id): the buttons work after any restart."""

    def __init__(self, action: TicketAction, ticket_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label=messages.ACTION_LABELS[action],
                style=_BUTTON_STYLES[action],
                custom_id=f"rd:ticket:{action}:{ticket_id}",
            )
        )
        self.action = action
        self.ticket_id = ticket_id

    @classmethod
    async def from_custom_id(
        cls, _interaction: discord.Interaction, _item: discord.ui.Item[Any], match: Any
    ) -> TicketButton:
        return cls(TicketAction(match["action"]), match["ticket"])

    async def callback(self, interaction: discord.Interaction) -> None:
        bot = desk_bot(interaction)
        if not await require_maintainer(interaction):
            return
        if self.action in NEEDS_REASON:
            # Say at once if the action cannot happen (someone else claimed or decided the ticket),
            # rather than after a reason was written; the store checks again when acting.
            try:
                ticket = await bot.desk.store.get(self.ticket_id)
                check_action(ticket, self.action, str(interaction.user.id))
            except TicketError as refused:
                await refuse(interaction, refused)
                return
            await interaction.response.send_modal(
                ReasonModal(self.action, self.ticket_id, interaction.user.id)
            )
            return
        await act(interaction, self.action, self.ticket_id, None)


class ReasonModal(DeskModal):
    reason: discord.ui.TextInput[ReasonModal] = discord.ui.TextInput(
        label=messages.REASON_LABEL, style=discord.TextStyle.paragraph, max_length=1000
    )

    def __init__(self, action: TicketAction, ticket_id: str, user_id: int) -> None:
        # discord.py finds an open modal by custom_id alone: with the user's id in it, two maintainers
        # with the same modal open do not replace each other's (the second submit would be dropped).
        super().__init__(
            title=f"{messages.ACTION_LABELS[action]} {ticket_id}",
            custom_id=f"rd:reason:{action}:{ticket_id}:{user_id}",
        )
        self.action = action
        self.ticket_id = ticket_id

    async def on_submit(self, interaction: discord.Interaction) -> None:
        if not await require_maintainer(interaction):  # the role may have been taken away meanwhile
            return
        await act(interaction, self.action, self.ticket_id, self.reason.value)


async def act(
    interaction: discord.Interaction, action: TicketAction, ticket_id: str, reason: str | None
) -> None:
    """Run a maintainer's action; update the card in place, or say why it was refused.

    The interaction is answered (deferred) before the database is written: the write waits for
    SQLite's lock, which another process (a maintainer's shell) may hold for seconds, and Discord
    forgets an interaction not answered within 3 s."""
    bot = desk_bot(interaction)
    store = bot.desk.store
    on_card = interaction.message is not None
    await interaction.response.defer(ephemeral=True, thinking=not on_card)
    try:
        result = await store.act(ticket_id, action, str(interaction.user.id), reason)
    except TicketError as refused:
        await interaction.followup.send(
            refusal_text(refused), ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )
        return
    ticket = result.ticket
    if on_card:
        embed = render.ticket_embed(ticket, await store.overlapping(ticket))
        await interaction.edit_original_response(embed=embed, view=review_view(ticket))
    else:
        await interaction.followup.send(messages.ticket_now(ticket.id, ticket.state), ephemeral=True)
    await bot.relay.run_once()


def review_view(ticket: Ticket) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    if ticket.state is TicketState.LINKED:
        return view
    for action in allowed_actions(ticket.state):
        if action in _BUTTON_STYLES:
            view.add_item(TicketButton(action, ticket.id))
    return view


@maintainers_only
class TicketCommands(MaintainerCommands, name="tickets", description="Review removal requests"):
    @app_commands.command(name="queue", description="Requests waiting for review, oldest first")
    async def queue(self, interaction: discord.Interaction) -> None:
        waiting = await self.bot.desk.store.review_queue()
        lines = [render.ticket_line(ticket) for ticket in waiting] or [messages.QUEUE_EMPTY]
        undelivered = await DiscordBookkeeping(self.bot.desk.store.database).undelivered()
        if undelivered:
            lines += [messages.NOT_DELIVERED_HEADING]
            lines += [
                messages.undelivered_line(d.kind, d.ticket_id, d.attempts, d.last_error) for d in undelivered
            ]
        text = messages.fit(lines)
        await interaction.response.send_message(
            text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )

    @app_commands.command(name="show", description="One request in full")
    async def show(self, interaction: discord.Interaction, ticket: str) -> None:
        store = self.bot.desk.store
        try:
            found = await store.get(ticket)
        except TicketError as refused:
            await interaction.response.send_message(str(refused), ephemeral=True)
            return
        embed = render.ticket_embed(found, await store.overlapping(found))
        await interaction.response.send_message(embed=embed, view=review_view(found), ephemeral=True)

    @app_commands.command(name="log", description="The audit log, most recent last")
    async def log(
        self,
        interaction: discord.Interaction,
        ticket: str | None = None,
        maintainer: discord.Member | None = None,
    ) -> None:
        events = await self.bot.desk.store.audit_log(
            ticket_id=ticket, actor=str(maintainer.id) if maintainer else None, limit=20
        )
        text = messages.fit([render.event_line(event) for event in events], newest_last=True)
        await interaction.response.send_message(
            text or messages.NO_EVENTS, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )

    @app_commands.command(name="stats", description="What waits and for how long; how long decisions take")
    async def stats(self, interaction: discord.Interaction) -> None:
        figures = await self.bot.desk.store.stats()
        await interaction.response.send_message(embed=render.stats_embed(figures), ephemeral=True)

    @app_commands.command(name="resync", description="Sync the bot's slash commands to this server again")
    async def resync(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        synced = await self.bot.sync_commands()
        await interaction.followup.send(messages.commands_synced(synced), ephemeral=True)


@maintainers_only
class RemovalCommands(MaintainerCommands, name="removals", description="The dataset's removal list"):
    @app_commands.command(name="export", description="Send me the removal list and the hash blocklist")
    async def export(
        self, interaction: discord.Interaction, file_format: Literal["parquet", "csv", "jsonl"] = "csv"
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        version, rows = await self.bot.desk.store.removal_list()
        hashing = hashing_parameters(self.bot.desk.settings)
        report, files = await asyncio.to_thread(export_as_files, version, rows, file_format, hashing=hashing)
        await interaction.followup.send(
            messages.removal_list_sent(report.version, report.entries, report.pictures),
            files=[discord.File(io.BytesIO(data), filename=name) for name, data in files],
            ephemeral=True,
        )


@maintainers_only
class IndexCommands(MaintainerCommands, name="index", description="The dataset index the bot answers from"):
    @app_commands.command(name="info", description="Entries, build date, sources, signal kinds, thresholds")
    async def info(self, interaction: discord.Interaction) -> None:
        # Reading every shard's summary and the folder's sizes is a thread's work on a large index;
        # answered first, since it may pass Discord's 3 s.
        await interaction.response.defer(ephemeral=True, thinking=True)
        desk = self.bot.desk
        removed = len(await desk.store.removed_entries())
        described = await asyncio.to_thread(describe_served, desk.index, desk.settings, removed)
        await interaction.followup.send(embed=render.index_embed(described), ephemeral=True)


class Review(commands.Cog):
    def __init__(self, bot: DeskBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.tree.add_command(TicketCommands(self.bot))
        self.bot.tree.add_command(RemovalCommands(self.bot))
        self.bot.tree.add_command(IndexCommands(self.bot))

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command("tickets")
        self.bot.tree.remove_command("removals")
        self.bot.tree.remove_command("index")

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """A reason typed in a form shown before a restart: discord.py no longer knows the form,
        but the submit carries everything the decision needs (action, ticket, who, the reason), so
        it is carried out as the live form would, with the same checks."""
        match = await lost_form(interaction, REASON_FORM)
        if match is None:
            return
        if int(match["user"]) != interaction.user.id:
            await interaction.response.send_message(messages.NOT_YOUR_BUTTON, ephemeral=True)
            return
        if not await require_maintainer(interaction):
            return
        reason = next((text for text in submitted_texts(interaction) if text.strip()), None)
        await act(interaction, TicketAction(match["action"]), match["ticket"], reason)
