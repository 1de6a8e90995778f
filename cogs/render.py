"""How tickets and check results look on Discord: embeds only, no logic."""

from __future__ import annotations

import discord

from bot.index.search import FoundEntry
from bot.tickets.lifecycle import TicketState
from bot.tickets.models import AuditEvent, Ticket

MAX_LISTED = 10
_COLOURS = {
    TicketState.OPEN: discord.Colour.orange(),
    TicketState.CLAIMED: discord.Colour.gold(),
    TicketState.APPROVED: discord.Colour.green(),
    TicketState.REJECTED: discord.Colour.red(),
    TicketState.WITHDRAWN: discord.Colour.light_grey(),
    TicketState.LINKED: discord.Colour.blurple(),
}


def closeness(pdq_distance: int) -> str:
    """PDQ bits that differ, as words a person understands."""
    if pdq_distance <= 16:
        return "the same picture"
    if pdq_distance <= 48:
        return "a very close copy"
    return "a close copy (edited or cropped)"


def _short(text: str | None, limit: int) -> str:
    if not text:
        return "-"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_result(found: list[FoundEntry], intro: str) -> discord.Embed:
    embed = discord.Embed(description=intro, colour=discord.Colour.blurple())
    for item in found[:MAX_LISTED]:
        embed.add_field(
            name=_short(item.entry.key, 250),
            value=(
                f"{closeness(item.match.distance.pdq)}\n"
                f"URL: {_short(item.entry.url, 300)}\nCaption: {_short(item.entry.caption, 200)}"
            ),
            inline=False,
        )
    if len(found) > MAX_LISTED:
        embed.set_footer(text=f"and {len(found) - MAX_LISTED} more; a request covers all of them")
    return embed


def ticket_embed(ticket: Ticket, overlapping: list[str] | None = None) -> discord.Embed:
    """The review card: the dataset's own entries (never the requester's picture)."""
    embed = discord.Embed(
        title=f"Removal request {ticket.id}: {ticket.state}",
        colour=_COLOURS[ticket.state],
        description=f"Filed {ticket.created_at} via {ticket.source}. "
        "Judge the dataset's entries below by their URLs; the requester's picture is never kept.",
    )
    if ticket.flagged:
        embed.add_field(name="Flagged", value=_short(ticket.flag_reason, 1000), inline=False)
    if ticket.note:
        embed.add_field(name="Requester's note", value=_short(ticket.note, 1000), inline=False)
    if ticket.assignee and ticket.state is TicketState.CLAIMED:
        embed.add_field(name="Claimed by", value=f"<@{ticket.assignee}>", inline=False)
    if ticket.decided_by:
        embed.add_field(
            name=f"{ticket.state.capitalize()} by",
            value=f"<@{ticket.decided_by}>: {_short(ticket.decision_reason, 900)}",
            inline=False,
        )
    if ticket.linked_to:
        embed.add_field(name="Linked to", value=ticket.linked_to, inline=False)
    if overlapping:
        embed.add_field(name="Entries also in", value=", ".join(overlapping), inline=False)
    for entry in ticket.entries[:MAX_LISTED]:
        embed.add_field(
            name=_short(entry.key, 250),
            value=f"{closeness(entry.pdq_distance)} (PDQ {entry.pdq_distance}/256)\n{_short(entry.url, 400)}",
            inline=False,
        )
    if len(ticket.entries) > MAX_LISTED:
        embed.set_footer(text=f"and {len(ticket.entries) - MAX_LISTED} more entries (tickets show ID)")
    return embed


def ticket_line(ticket: Ticket) -> str:
    who = f" · claimed by <@{ticket.assignee}>" if ticket.state is TicketState.CLAIMED else ""
    flag = " · flagged" if ticket.flagged else ""
    return (
        f"`{ticket.id}` {ticket.state} · {len(ticket.entries)} entries · {ticket.created_at[:16]}{who}{flag}"
    )


def event_line(event: AuditEvent) -> str:
    who = f"<@{event.actor}>" if event.actor_kind == "maintainer" and event.actor else f"({event.actor_kind})"
    states = f" {event.from_state or '-'} → {event.to_state}" if event.to_state else ""
    reason = f": {_short(event.reason, 300)}" if event.reason else ""
    ticket = f"`{event.ticket_id}` " if event.ticket_id else ""
    return f"{event.at[:19]} {ticket}{who} {event.action}{states}{reason}"
