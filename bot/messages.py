"""Every sentence the bot says to a person, in one place: to the person who asks for a removal
first, then to the maintainers who review.

The people writing in may be distressed (a leaked medical photo): each message is short and
plain, says what was done with their picture (hashed, not kept) and what happens next. Kept free
of Discord types so the wording can be reviewed and tested on its own.

What a requester reads is translated: its wording lives in the language catalogues
(:mod:`bot.i18n`, English and German), and each function here takes the reader's ``locale``
(English when it is None). What maintainers read (review cards, ``/tickets``, ``/removals``, the
log channel, the operator's notices) stays English and is written here: the team shares one
working language, and a card or log line must read the same to every maintainer.
"""

from __future__ import annotations

from typing import Any

from bot import i18n
from bot.tickets.lifecycle import TicketState
from bot.tickets.models import ListOrigin, MatchedEntry, Ticket

Locale = object  # a Discord locale (``discord.Locale`` or its value, "de", "en-US"); None: English


def text(key: str, locale: Locale = None, /, **placeholders: Any) -> str:
    """A requester's message ``key`` from the language catalogue (:mod:`bot.i18n`), in ``locale``'s
    language (English when there is no catalogue for it)."""
    return i18n.text(key, locale, **placeholders)


# The requester's fixed sentences in English, for callers (and tests) that have no locale to go by.
PICTURE_HANDLED = text("picture.handled")
PICTURE_DELETED = text("picture.deleted")
PICTURE_NOT_DELETED = text("picture.not_deleted")
NOTE_WARNING = text("note_warning")
SEND_PICTURE_HERE = text("send_picture_here")
CANNOT_DM = text("cannot_dm")
DM_SENT = text("dm_sent")
SEND_A_PICTURE = text("send_a_picture")
DOWNLOAD_FAILED = text("download_failed")
NOT_YOUR_BUTTON = text("not_your_button")
NOTHING_ERASED = text("nothing_erased")
FORGET_EXPIRED = text("forget_expired")
NO_REQUESTS = text("no_requests")
SOMETHING_WENT_WRONG = text("something_went_wrong")
STORE_BUSY = text("store_busy")
STORE_FULL = text("store_full")
HASHING_WORKER_DIED = text("hashing_worker_died")
INDEX_INCOMPLETE = text("index_incomplete")
PANEL = text("panel")
# To maintainers only: English (see the module docstring).
MAINTAINERS_ONLY = "Only maintainers can see or act on removal requests."
QUEUE_EMPTY = "Nothing is waiting for review."
NO_EVENTS = "No events."


def count_of(number: int, singular: str, plural: str | None = None) -> str:
    """ "1 copy", "2 copies", "1,204 entries": the number with the noun it takes (English)."""
    noun = singular if number == 1 else (plural or f"{singular}s")
    return f"{number:,} {noun}"


# Discord refuses a message over 2,000 characters; lists are cut to this, at a line's end.
MESSAGE_LIMIT = 1900


def error_text(error: Exception, locale: Locale = None) -> str:
    """What an error the core raised says, in ``locale``'s language when it carries a message id
    (:attr:`bot.errors.RemovalDeskError.message_key`), else its own (English) message."""
    key = getattr(error, "message_key", None)
    if key is None or i18n.language(locale) == i18n.DEFAULT:
        return str(error)  # English: the error's own words, which may say more
    params = dict(getattr(error, "message_params", {}))
    if isinstance(params.get("state"), TicketState):
        params["state"] = state_name(params["state"], locale)
    if "seconds" in params:  # a wait, said in the reader's words ("in 30 Sekunden")
        params["duration"] = _duration(float(str(params.pop("seconds"))), locale)
    return text(key, locale, **params)


def state_name(state: str, locale: Locale = None) -> str:
    """A ticket state as a requester reads it ("open", in German "offen")."""
    return text(f"state.{state}", locale)


def withdrawn(ticket_id: str, *, locale: Locale = None) -> str:
    return text("withdrawn", locale, id=ticket_id)


def fit(lines: list[str], *, newest_last: bool = False) -> str:
    """As many whole lines as fit one Discord message, and how many were left out: the first ones
    (a list, best first), or with ``newest_last`` the last ones (a log, oldest first)."""
    kept: list[str] = []
    size = 0
    room = MESSAGE_LIMIT - 40  # for the note on what was left out
    for whole in reversed(lines) if newest_last else lines:
        line = whole[:room]  # a single overlong line is cut rather than dropped
        grown = size + len(line) + (1 if kept else 0)  # the lines and the newlines between them
        if grown > room:
            break
        kept.append(line)
        size = grown
    left_out = len(lines) - len(kept)
    if newest_last:
        kept.reverse()
    if left_out:
        note = f"… {left_out} more not shown"
        kept = [note, *kept] if newest_last else [*kept, note]
    return "\n".join(kept)


def no_match(
    index_entries: int, contact: str = "", unjudged: int = 0, removed: int = 0, *, locale: Locale = None
) -> str:
    """``contact`` says how to reach a maintainer on this server (``[discord] contact``);
    ``unjudged`` counts entries near the picture too plain to compare (never "no copy" then);
    ``removed`` counts copies found whose removal was already approved (never "no copy" then)."""
    common = {
        "handled": text("picture.handled", locale),
        "dataset": text("dataset", locale, count=index_entries),
        "reach": contact or text("write_to_them", locale),
    }
    if removed:
        return text("no_match.removed", locale, count=removed, **common)
    if unjudged:
        return text("no_match.unjudged", locale, count=unjudged, **common)
    return text("no_match", locale, **common)


def matches_found(count: int, *, locale: Locale = None) -> str:
    return text("matches_found", locale, count=count, handled=text("picture.handled", locale))


def refused_picture(reason_sentence: str, *, locale: Locale = None) -> str:
    return text("refused_picture", locale, reason=reason_sentence)


def too_big(size: int, limit: int, *, locale: Locale = None) -> str:
    return text("too_big", locale, size=size / 2**20, limit=limit / 2**20)


def not_a_picture(content_type: str | None, *, locale: Locale = None) -> str:
    if content_type:
        return text("not_a_picture.typed", locale, content_type=content_type)
    return text("not_a_picture", locale)


def busy(seconds: float, *, locale: Locale = None) -> str:
    return text("busy", locale, duration=_duration(seconds, locale))


def slow_down(seconds: float, *, locale: Locale = None) -> str:
    return text("slow_down", locale, duration=_duration(seconds, locale))


def ordinal(number: int, *, locale: Locale = None) -> str:
    """1st, 2nd, 3rd, 4th, ... 11th, 12th, 13th, ... 21st (in German 1., 2., 3.)."""
    return i18n.ordinal(number, locale)


def which_picture(position: int, count: int, *, locale: Locale = None) -> str:
    """Which picture of a message an answer is about: by its place, never by its file name."""
    return text("which_picture", locale, ordinal=ordinal(position, locale=locale), count=count)


def pictures_not_checked(positions: list[int], count: int, seconds: float, *, locale: Locale = None) -> str:
    """Pictures of one message left unchecked by the per-person limit (they were not downloaded)."""
    places = i18n.listed([ordinal(position, locale=locale) for position in positions], locale)
    return text(
        "pictures_not_checked",
        locale,
        count=len(positions),
        places=places,
        total=count,
        duration=_duration(seconds, locale),
    )


def requests_slow_down(seconds: float, *, locale: Locale = None) -> str:
    return text("requests_slow_down", locale, duration=_duration(seconds, locale))


def check_expired(*, locale: Locale = None) -> str:
    return text("check_expired", locale)


def request_form_expired(note: str | None, *, locale: Locale = None) -> str:
    """A request form submitted after its check was forgotten (the bot restarted meanwhile)."""
    answer = text("request_form_expired", locale)
    if note:
        quoted = "\n".join(f"> {line}" for line in note.splitlines())
        answer += f"\n{text('request_form_expired.note', locale)}\n{quoted}"
    return answer


def already_requested(ticket_id: str, *, locale: Locale = None) -> str:
    """Request removal pressed again for a check that already became a ticket."""
    return text("already_requested", locale, id=ticket_id)


# The commands are registered in the server only (they appear there at once, and nowhere else):
# a direct message with the bot does not offer them, so every mention says where they work.
_CREATED = {TicketState.LINKED: "ticket_created.linked", TicketState.APPROVED: "ticket_created.approved"}


def ticket_created(ticket: Ticket, *, locale: Locale = None) -> str:
    key = _CREATED.get(ticket.state, "ticket_created")
    return text(key, locale, id=ticket.id, hint=text("commands_hint", locale))


_DECIDED = {TicketState.APPROVED: "decision.approved", TicketState.REJECTED: "decision.rejected"}


def decision(ticket: Ticket, contact: str = "", *, locale: Locale = None) -> str:
    """The requester's message about a decision. ``contact`` (``[discord] contact``) says how to
    reach a maintainer; without it a rejection says nothing about writing to one, since the person
    would not know how."""
    key = _DECIDED.get(ticket.state, "decision.other")
    answer = text(
        key, locale, id=ticket.id, reason=ticket.decision_reason, state=state_name(ticket.state, locale)
    )
    if ticket.state is TicketState.REJECTED and contact:
        answer += "\n" + text("decision.contact", locale, contact=contact)
    return answer


def dm_failed_notice(user_mention: str, *, locale: Locale = None) -> str:
    return text("dm_failed_notice", locale, mention=user_mention)


def dm_closed_notice(user_mention: str, *, locale: Locale = None) -> str:
    return text("dm_closed_notice", locale, mention=user_mention)


def forget_confirm(*, locale: Locale = None) -> str:
    return text("forget_confirm", locale)


def forgotten(count: int, *, locale: Locale = None) -> str:
    if not count:
        return text("forgotten.none", locale)
    return text("forgotten", locale, count=count)


def _duration(seconds: float, locale: Locale = None) -> str:
    seconds = max(1, round(seconds))
    if seconds < 90:
        return text("seconds", locale, count=seconds)
    return text("minutes", locale, count=round(seconds / 60))


# -- labels on the requester's buttons and forms ----------------------------------------------------

REQUEST_REMOVAL_LABEL = text("label.request_removal")
CHECK_PRIVATELY_LABEL = text("label.check_privately")
ERASE_MY_DATA_LABEL = text("label.erase_my_data")
CANCEL_LABEL = text("label.cancel")
NOTE_LABEL = text("label.note")
CHECK_IMAGE_HELP = text("command.check.image.description")
TICKET_ID_HELP = text("command.withdraw.ticket.description")


def closeness(pdq_distance: int, *, locale: Locale = None) -> str:
    """PDQ bits that differ, as words a person understands."""
    if pdq_distance <= 16:
        return text("closeness.same", locale)
    if pdq_distance <= 48:
        return text("closeness.very_close", locale)
    return text("closeness.close", locale)


def found_entry(closeness_words: str, url: str, caption: str, *, locale: Locale = None) -> str:
    """One entry of a check's answer, as the requester reads it."""
    return text("found_entry", locale, closeness=closeness_words, url=url, caption=caption)


def found_more(count: int, *, locale: Locale = None) -> str:
    return text("found_more", locale, count=count)


def entries_of(count: int, *, locale: Locale = None) -> str:
    """ "1 entry", "3 entries" in the requester's language (``/mytickets``)."""
    return text("entries", locale, count=count)


def ticket_line_extras(claimed_by: str | None, flagged: bool, *, locale: Locale = None) -> str:
    """What a ticket's line adds after its date: who claimed it, and whether it is flagged."""
    extra = f" · {text('ticket_line.claimed_by', locale, who=claimed_by)}" if claimed_by else ""
    return extra + (f" · {text('ticket_line.flagged', locale)}" if flagged else "")


# -- to maintainers ---------------------------------------------------------------------------------

CARD_GUIDANCE = (
    "Judge the dataset's entries below by their URL, or by their key in the dataset for an entry "
    "without one; the requester's picture is never kept."
)
FLAGGED_FIELD = "Flagged"
REQUESTERS_NOTE_FIELD = "Requester's note"
CLAIMED_BY_FIELD = "Claimed by"
LINKED_TO_FIELD = "Linked to"
ENTRIES_ALSO_IN_FIELD = "Entries also in"
REASON_LABEL = "Reason (the requester reads it)"
ACTION_LABELS = {
    "claim": "Claim",
    "release": "Release",
    "approve": "Approve",
    "reject": "Reject",
    "reopen": "Reopen",
}


def card_title(ticket_id: str, state: str) -> str:
    return f"Removal request {ticket_id}: {state}"


def card_filed(when: str, source: str) -> str:
    """``when``: the filing time as shown (Discord's timestamp markup on a card)."""
    return f"Filed {when} via {source}. {CARD_GUIDANCE}"


def decided_by(state: str) -> str:
    return f"{state.capitalize()} by"


LIST_HIT_GUIDANCE = (
    "A partner organisation's hash list matched these entries; there is no requester to tell. "
    "Judge the entries by their URL (or key); the list carries a hash, never a picture."
)
LIST_HIT_FIELD = "From a partner hash list"
POLICY_FIELD = "Approved by policy"
BITS = {"pdq": 256, "phash": 64}


def list_origin(origin: ListOrigin) -> str:
    """Which list, line and hash filed a hit ticket, as a maintainer reads it."""
    own_id = f", its id `{origin.list_entry_id}`" if origin.list_entry_id else ""
    category = f", category `{origin.category}`" if origin.category else ""
    return (
        f"`{origin.source}` (list {origin.list_id}, line {origin.line}{own_id}{category}): "
        f"{origin.signal_type} `{origin.hash}`"
    )


def list_hit_closeness(entry: MatchedEntry, signal: str) -> str:
    """How near a list's hash lies to the entry's whole picture (a hash-only match: no closeness
    words, which describe a verified match of a person's picture)."""
    if signal == "md5":
        return "the file's MD5 is the list's: the very same file"
    distance = entry.pdq_distance if signal == "pdq" else entry.phash_distance
    return f"{signal} {distance}/{BITS.get(signal, '?')} bits from the entry's whole picture"


def policy_approval(origin: ListOrigin) -> str:
    return f"`{origin.policy}` approves every hit of the `{origin.source}` list (no maintainer decided it)"


def more_entries(count: int) -> str:
    return f"and {count_of(count, 'more entry', 'more entries')} (`/tickets show` lists them all)"


def entries(count: int) -> str:
    return count_of(count, "entry", "entries")


def ticket_now(ticket_id: str, state: str) -> str:
    return f"Ticket {ticket_id} is now {state}."


def commands_synced(count: int) -> str:
    return f"Synced {count_of(count, 'command')}."


def removal_list_sent(version: int, entries: int, pictures: int) -> str:
    return (
        f"Removal list version {version}: {count_of(entries, 'entry', 'entries')}, "
        f"{count_of(pictures, 'picture hash', 'picture hashes')}."
    )


CHANNEL_NOT_FOUND = "The channel is gone or the bot cannot see it."
_WHAT_WAS_NOT_DELIVERED = {
    "card": "the review card",
    "log": "a line of the audit log",
    "dm": "the message telling the requester of the decision",
}


def requester_unreachable(status: int) -> str:
    if status == 404:
        return "The requester's Discord account no longer exists."
    return "The requester does not accept direct messages from the bot (their DMs are closed)."


def undelivered(kind: str, ticket_id: str | None, reason: str) -> str:
    about = f" of ticket {ticket_id}" if ticket_id else ""
    return (
        f"I could not deliver {_WHAT_WAS_NOT_DELIVERED[kind]}{about}: {reason} "
        "`/tickets queue` lists what was not delivered."
    )


NOT_DELIVERED_HEADING = "**Not delivered** (given up after retries; the tickets themselves are fine):"


def undelivered_line(kind: str, ticket_id: str | None, attempts: int, reason: str | None) -> str:
    about = f" of `{ticket_id}`" if ticket_id else ""
    tries = count_of(attempts, "try", "tries")
    return f"{_WHAT_WAS_NOT_DELIVERED[kind]}{about} ({tries}): {reason or 'no reason given'}"


# -- The maintainers' overview: /index info, /tickets stats and their command-line twins -------------

INDEX_INFO_LABEL = "The dataset index"
INDEX_ENTRIES_FIELD = "Entries"
INDEX_BUILT_FIELD = "Built"
INDEX_SOURCES_FIELD = "Sources"
INDEX_KINDS_FIELD = "Signal kinds"
INDEX_THRESHOLDS_FIELD = "Thresholds in force"
INDEX_FORMAT_FIELD = "Format"
UNKNOWN_TIME = "unknown (built before this was recorded)"
STATS_LABEL = "Removal requests: how the desk keeps up"
STATS_WAITING_FIELD = "Waiting for a maintainer"
STATS_AGES_FIELD = "Waiting, by time since filing"
STATS_OLDEST_FIELD = "Oldest waiting"
STATS_WITHDRAWN_FIELD = "Withdrawn by their requester"
NOTHING_WAITING_LABEL = "nothing"
AGE_BUCKET_LABELS = {
    "under_1_day": "under 1 day",
    "1_to_7_days": "1-7 days",
    "7_to_30_days": "7-30 days",
    "over_30_days": "over 30 days",
}


def duration(seconds: float) -> str:
    """A wait as a maintainer reads it: "3 d 4 h", "5 h 12 min", "12 min", "under a minute"."""
    minutes = int(seconds // 60)
    days, hours, minutes = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else "under a minute"


def size_on_disk(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB on disk"


def index_entries(entries: int, rows: int, shards: int, removed: int | None) -> str:
    text = (
        f"{count_of(entries, 'entry', 'entries')} in {count_of(shards, 'shard')} "
        f"({count_of(rows, 'row')} searched: each entry's central region and core, each photograph "
        "of a composite)"
    )
    if removed is not None:
        text += f"; {count_of(removed, 'approved removal')}, never matched"
    return text


def index_source(source: str, entries: int, shards: int, failures: int) -> str:
    return (
        f"{source}: {count_of(entries, 'entry', 'entries')} in {count_of(shards, 'shard')}, "
        f"{failures:,} could not be hashed"
    )


def signal_kind(name: str, bits: int, searched: bool, in_index: bool) -> str:
    role = "keys the search tables" if searched else "checked on the candidates"
    return f"{name} ({bits} bits, {role}" + ("" if in_index else ", NOT in this index") + ")"


def thresholds_lines(
    max_distance: dict[str, int],
    pdq_min_quality: int,
    phash_radii: dict[str, int],
    verify_near: dict[str, int],
    verification: dict[str, float],
) -> list[str]:
    """``bot.index.describe.thresholds`` as lines: the match rule, the guesses' radii, verification."""
    radii = ", ".join(f"{name} ≤ {radius}" for name, radius in max_distance.items())
    return [
        f"match: {radii}, PDQ quality ≥ {pdq_min_quality}",
        "pHash radius by variant: "
        + ", ".join(f"{name.replace('_', ' ')} {radius}" for name, radius in phash_radii.items()),
        "lined up through variants within "
        + ", ".join(f"{name} {radius}" for name, radius in verify_near.items()),
        "verification: "
        + ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in verification.items()),
    ]


def waiting_summary(by_state: dict[str, int], linked: int) -> str:
    total = sum(by_state.values())
    parts = ", ".join(f"{state} {count:,}" for state, count in by_state.items())
    return f"{total:,} ({parts}); {linked:,} more linked to a request with the same entries"


def age_line(bucket: str, by_state: dict[str, int]) -> str:
    counts = ", ".join(f"{state} {count:,}" for state, count in by_state.items())
    return f"{AGE_BUCKET_LABELS[bucket]}: {counts}"


def oldest_waiting(ticket_id: str | None, seconds: float | None) -> str:
    if ticket_id is None or seconds is None:
        return NOTHING_WAITING_LABEL
    return f"{ticket_id}, filed {duration(seconds)} ago"


def decided_heading(days: int | None) -> str:
    return f"Decided in the last {days} days" if days is not None else "Decided, ever"


def decisions_summary(count: int, by_outcome: dict[str, int], median_seconds: float | None) -> str:
    outcomes = ", ".join(f"{outcome} {n:,}" for outcome, n in by_outcome.items())
    if median_seconds is None:
        return f"{count:,} ({outcomes}); no decision to take a median of yet"
    return f"{count:,} ({outcomes}); median time from filing to decision {duration(median_seconds)}"


def index_built(built: str, last_added: str) -> str:
    return f"{built} · last shard added {last_added}"


def index_format(name: str, version: int, size: int) -> str:
    return f"{name} version {version} · {size_on_disk(size)}"
