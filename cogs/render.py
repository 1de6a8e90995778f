"""How tickets and check results look on Discord: embeds only, no logic."""

from __future__ import annotations

from datetime import UTC, datetime

import discord

from bot import messages
from bot.index.describe import IndexDescription
from bot.index.search import FoundEntry
from bot.tickets.lifecycle import TicketState
from bot.tickets.models import AuditEvent, Ticket
from bot.tickets.stats import TicketStats
from bot.times import human_time

MAX_LISTED = 10
# Discord refuses (400) an embed whose title, description, field names and values and footer
# together pass 6,000 characters; room is kept for the "and N more" footer.
EMBED_BUDGET = 6000 - 100
_COLOURS = {
    TicketState.OPEN: discord.Colour.orange(),
    TicketState.CLAIMED: discord.Colour.gold(),
    TicketState.APPROVED: discord.Colour.green(),
    TicketState.REJECTED: discord.Colour.red(),
    TicketState.WITHDRAWN: discord.Colour.light_grey(),
    TicketState.LINKED: discord.Colour.blurple(),
}


def when(iso: str, style: str = "f") -> str:
    """A stored UTC timestamp as Discord's timestamp markup (``<t:UNIX:f>``): each reader's client
    shows it in their own time zone and language. Anything unparsable is shown as people read it."""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return human_time(iso)
    if moment.tzinfo is None:  # stored timestamps are UTC
        moment = moment.replace(tzinfo=UTC)
    return f"<t:{int(moment.timestamp())}:{style}>"


def _short(text: str | None, limit: int) -> str:
    if not text:
        return "-"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _add_listed(embed: discord.Embed, name: str, value: str) -> bool:
    """Add one listed entry if the embed stays within Discord's size limit; say whether it did."""
    if len(embed) + len(name) + len(value) > EMBED_BUDGET:
        return False
    embed.add_field(name=name, value=value, inline=False)
    return True


def check_result(found: list[FoundEntry], intro: str, *, locale: str | None = None) -> discord.Embed:
    """A check's matches as the requester reads them, in their language ``locale``."""
    embed = discord.Embed(description=intro, colour=discord.Colour.blurple())
    shown = 0
    for item in found[:MAX_LISTED]:
        value = messages.found_entry(
            messages.closeness(item.match.distance.pdq, locale=locale),
            _short(item.entry.url, 300),
            _short(item.entry.caption, 200),
            locale=locale,
        )
        if not _add_listed(embed, _short(item.entry.key, 250), value):
            break
        shown += 1
    if len(found) > shown:
        embed.set_footer(text=messages.found_more(len(found) - shown, locale=locale))
    return embed


def ticket_embed(ticket: Ticket, overlapping: list[str] | None = None) -> discord.Embed:
    """The review card: the dataset's own entries (never the requester's picture)."""
    origin = ticket.list_hit
    embed = discord.Embed(
        title=messages.card_title(ticket.id, ticket.state),
        colour=_COLOURS[ticket.state],
        description=messages.card_filed(when(ticket.created_at), ticket.source)
        if origin is None
        else f"{when(ticket.created_at)}: {messages.LIST_HIT_GUIDANCE}",
    )
    if origin is not None:
        embed.add_field(
            name=messages.LIST_HIT_FIELD, value=_short(messages.list_origin(origin), 1000), inline=False
        )
        if ticket.approved_by_policy:
            embed.add_field(name=messages.POLICY_FIELD, value=messages.policy_approval(origin), inline=False)
    if ticket.flagged:
        embed.add_field(name=messages.FLAGGED_FIELD, value=_short(ticket.flag_reason, 1000), inline=False)
    if ticket.note:
        embed.add_field(name=messages.REQUESTERS_NOTE_FIELD, value=_short(ticket.note, 1000), inline=False)
    if ticket.assignee and ticket.state is TicketState.CLAIMED:
        embed.add_field(name=messages.CLAIMED_BY_FIELD, value=f"<@{ticket.assignee}>", inline=False)
    if ticket.decided_by:
        embed.add_field(
            name=messages.decided_by(ticket.state),
            value=f"<@{ticket.decided_by}>: {_short(ticket.decision_reason, 900)}",
            inline=False,
        )
    if ticket.linked_to:
        embed.add_field(name=messages.LINKED_TO_FIELD, value=ticket.linked_to, inline=False)
    if overlapping:  # a field value may hold at most 1,024 characters
        embed.add_field(
            name=messages.ENTRIES_ALSO_IN_FIELD, value=_short(", ".join(overlapping), 1000), inline=False
        )
    shown = 0
    for entry in ticket.entries[:MAX_LISTED]:
        if origin is None:
            closeness = f"{messages.closeness(entry.pdq_distance)} (PDQ {entry.pdq_distance}/256)"
        else:
            closeness = messages.list_hit_closeness(entry, origin.signal_type)
        value = f"{closeness}\n{_short(entry.url, 400)}"
        if not _add_listed(embed, _short(entry.key, 250), value):
            break
        shown += 1
    if len(ticket.entries) > shown:
        embed.set_footer(text=messages.more_entries(len(ticket.entries) - shown))
    return embed


def ticket_line(ticket: Ticket, *, locale: str | None = None) -> str:
    """One ticket in a list: ``/tickets`` (English), or the requester's ``/mytickets`` (``locale``)."""
    claimed_by = f"<@{ticket.assignee}>" if ticket.state is TicketState.CLAIMED else None
    extras = messages.ticket_line_extras(claimed_by, ticket.flagged, locale=locale)
    if ticket.list_hit is not None:  # only maintainers list such tickets: no requester has one
        extras += f" · list `{ticket.list_hit.source}`"
    entries = messages.entries_of(len(ticket.entries), locale=locale)
    state = messages.state_name(ticket.state, locale)
    return f"`{ticket.id}` {state} · {entries} · {when(ticket.created_at)}{extras}"


def event_line(event: AuditEvent) -> str:
    who = f"<@{event.actor}>" if event.actor_kind == "maintainer" and event.actor else f"({event.actor_kind})"
    states = f" {event.from_state or '-'} → {event.to_state}" if event.to_state else ""
    reason = f": {_short(event.reason, 300)}" if event.reason else ""
    ticket = f"`{event.ticket_id}` " if event.ticket_id else ""
    # Date and time to the second: two decisions a moment apart must read apart.
    return f"{when(event.at, 'd')} {when(event.at, 'T')} {ticket}{who} {event.action}{states}{reason}"


def _lines_within(lines: list[str], limit: int = 1000) -> str:
    """As many whole lines as fit in an embed field (1,024 characters at most), then "…"."""
    kept: list[str] = []
    for line in lines:
        if sum(len(k) + 1 for k in kept) + len(line) > limit - 2:
            kept.append("…")
            break
        kept.append(line)
    return "\n".join(kept) or "-"


def _when_or_unknown(stamp: str | None) -> str:
    return messages.UNKNOWN_TIME if stamp is None else when(stamp)


def index_embed(described: IndexDescription) -> discord.Embed:
    """/index info: the index the desk answers from, and the rule it answers by."""
    embed = discord.Embed(title=messages.INDEX_INFO_LABEL, colour=discord.Colour.blurple())
    entries = messages.index_entries(
        described.entries, described.rows, len(described.shards), described.removed
    )
    embed.add_field(name=messages.INDEX_ENTRIES_FIELD, value=_short(entries, 1000), inline=False)
    built = messages.index_built(
        _when_or_unknown(described.built_at), _when_or_unknown(described.last_added_at)
    )
    embed.add_field(name=messages.INDEX_BUILT_FIELD, value=built, inline=False)
    sources = [
        messages.index_source(f"`{s.source}`", s.entries, s.shards, s.failures) for s in described.sources
    ]
    embed.add_field(name=messages.INDEX_SOURCES_FIELD, value=_lines_within(sources), inline=False)
    kinds = [messages.signal_kind(k.name, k.bits, k.searched, k.in_index) for k in described.signal_kinds]
    embed.add_field(name=messages.INDEX_KINDS_FIELD, value=_lines_within(kinds), inline=False)
    embed.add_field(
        name=messages.INDEX_THRESHOLDS_FIELD,
        value=_lines_within(messages.thresholds_lines(**described.thresholds)),
        inline=False,
    )
    layout = messages.index_format(described.format, described.format_version, described.size_bytes)
    embed.add_field(name=messages.INDEX_FORMAT_FIELD, value=layout, inline=False)
    return embed


def stats_embed(figures: TicketStats) -> discord.Embed:
    """/tickets stats: what waits and for how long, how long a decision takes."""
    embed = discord.Embed(title=messages.STATS_LABEL, colour=discord.Colour.blurple())
    totals = {state: sum(buckets.values()) for state, buckets in figures.waiting.items()}
    embed.add_field(
        name=messages.STATS_WAITING_FIELD,
        value=messages.waiting_summary(totals, figures.linked),
        inline=False,
    )
    ages = [
        messages.age_line(bucket, {state: buckets[bucket] for state, buckets in figures.waiting.items()})
        for bucket in messages.AGE_BUCKET_LABELS
    ]
    embed.add_field(name=messages.STATS_AGES_FIELD, value="\n".join(ages), inline=False)
    oldest = messages.oldest_waiting(figures.oldest_waiting_id, figures.oldest_waiting_seconds)
    embed.add_field(name=messages.STATS_OLDEST_FIELD, value=oldest, inline=False)
    for days, decisions in ((figures.recent_days, figures.recent), (None, figures.overall)):
        summary = messages.decisions_summary(decisions.count, decisions.by_outcome, decisions.median_seconds)
        embed.add_field(name=messages.decided_heading(days), value=summary, inline=False)
    embed.add_field(name=messages.STATS_WITHDRAWN_FIELD, value=f"{figures.withdrawn:,}", inline=False)
    return embed
