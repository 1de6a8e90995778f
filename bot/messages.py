"""Every sentence the bot says to a person, in one place: to the person who asks for a removal
first, then to the maintainers who review.

The people writing in may be distressed (a leaked medical photo): each message is short and
plain, says what was done with their picture (hashed, not kept) and what happens next. Kept free
of Discord types so the wording can be reviewed and tested on its own (and translated).
"""

from __future__ import annotations

from bot.tickets.lifecycle import TicketState
from bot.tickets.models import Ticket

PICTURE_HANDLED = "Your picture was turned into a fingerprint (a hash) and then discarded: it was not saved."
PICTURE_DELETED = "I deleted your message so nobody else sees the picture."
PICTURE_NOT_DELETED = "I could not delete your message: please delete it yourself, others can see it."
NOTE_WARNING = "Optional. Please do not write names, contact details or anything else that identifies you."
SEND_PICTURE_HERE = (
    "Send me the picture here, in this private conversation, and I will check it. It will be turned "
    "into a fingerprint (a hash) and then discarded: it is not saved."
)
CANNOT_DM = (
    "I cannot send you a private message. Use `/check` with the picture attached: only you see the answer."
)
DM_SENT = "I sent you a private message."
SEND_A_PICTURE = "Send me a picture to check it (as an attachment)."
DOWNLOAD_FAILED = "I could not download the file from Discord. Please try again."
NOT_YOUR_BUTTON = "This button is not for you."
NOTHING_ERASED = "Nothing was erased."
FORGET_EXPIRED = (
    "This question expired and nothing was erased. Run `/forget-me` again (in the server) to erase your data."
)
NO_REQUESTS = "You have no removal requests."
SOMETHING_WENT_WRONG = "Something went wrong on my side; nothing was saved. Please try again later."
MAINTAINERS_ONLY = "Only maintainers can see or act on removal requests."
QUEUE_EMPTY = "Nothing is waiting for review."
NO_EVENTS = "No events."


def count_of(number: int, singular: str, plural: str | None = None) -> str:
    """ "1 copy", "2 copies", "1,204 entries": the number with the noun it takes."""
    noun = singular if number == 1 else (plural or f"{singular}s")
    return f"{number:,} {noun}"


# Discord refuses a message over 2,000 characters; lists are cut to this, at a line's end.
MESSAGE_LIMIT = 1900


def withdrawn(ticket_id: str) -> str:
    return f"Request {ticket_id} is withdrawn."


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


def _in_dataset(index_entries: int) -> str:
    if index_entries == 1:
        return "the one picture in the dataset"
    return f"all {index_entries:,} pictures in the dataset"


def no_match(index_entries: int, contact: str = "", unjudged: int = 0, removed: int = 0) -> str:
    """``contact`` says how to reach a maintainer on this server (``[discord] contact``);
    ``unjudged`` counts entries near the picture too plain to compare (never "no copy" then);
    ``removed`` counts copies found whose removal was already approved (never "no copy" then)."""
    reach = f" {contact}" if contact else " write to them."
    compared = f"{PICTURE_HANDLED}\n\nI compared it with {_in_dataset(index_entries)}"
    if removed:
        were = "it was" if removed == 1 else "they were"
        return (
            f"{compared} and found {count_of(removed, 'copy', 'copies')} of it, but {were} already "
            "removed: a maintainer approved an earlier request, so the dataset's removal list names "
            f"{'it' if removed == 1 else 'them'} and nothing is left to ask for."
        )
    if unjudged:
        near = (
            "1 picture in it looks close to yours but is too plain (nearly one colour, or a smooth "
            "gradient) for me to tell whether it is a copy"
            if unjudged == 1
            else f"{unjudged:,} pictures in it look close to yours but are too plain (nearly one "
            "colour, or a smooth gradient) for me to tell whether they are a copy"
        )
        return f"{compared}. {near}, so I cannot say either way. A maintainer can look into it;{reach}"
    return (
        f"{compared} and found no copy of it. Copies that were cropped or edited heavily can be "
        f"missed: if you know the picture is in the dataset, a maintainer can still look into it;{reach}"
    )


def matches_found(count: int) -> str:
    them = "it" if count == 1 else "them"
    return (
        f"{PICTURE_HANDLED}\n\nI found {count_of(count, 'copy', 'copies')} of it in the dataset (listed "
        f"below). If you want {them} removed, press **Request removal**. You do not need to say who "
        "you are."
    )


def refused_picture(reason_sentence: str) -> str:
    return f"I could not check this file. {reason_sentence}\nNothing was saved."


def too_big(size: int, limit: int) -> str:
    return (
        f"This file is {size / 2**20:.1f} MiB; I can check files up to {limit / 2**20:.0f} MiB. "
        "A smaller copy or a screenshot of the picture works just as well. Nothing was saved."
    )


def not_a_picture(content_type: str | None) -> str:
    kind = f" ({content_type})" if content_type else ""
    return f"This file{kind} is not a picture I can check: please send a JPEG, PNG, WebP, GIF or BMP."


STORE_BUSY = "The ticket database is busy right now and nothing was saved. Please try again in a moment."
STORE_FULL = (
    "I could not save your request: the ticket database has no room left, and nothing was saved. "
    "Please try again later."
)
HASHING_WORKER_DIED = (
    "Something went wrong while I was checking this picture, and it was not saved. "
    "Please send it again; if the same picture fails twice, it may be a file I cannot read."
)


def busy(seconds: float) -> str:
    return (
        "Many people are checking pictures right now and I could not take yours; it was not saved. "
        f"Please try again in {_duration(seconds)}."
    )


def slow_down(seconds: float) -> str:
    return f"You have checked several pictures in a short time. Please try again in {_duration(seconds)}."


def ordinal(number: int) -> str:
    """1st, 2nd, 3rd, 4th, ... 11th, 12th, 13th, ... 21st."""
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _listed(items: list[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def which_picture(position: int, count: int) -> str:
    """Which picture of a message an answer is about: by its place, never by its file name."""
    return f"**Your {ordinal(position)} picture (of {count}):**"


def pictures_not_checked(positions: list[int], count: int, seconds: float) -> str:
    """Pictures of one message left unchecked by the per-person limit (they were not downloaded)."""
    nouns = "picture" if len(positions) == 1 else "pictures"
    places = _listed([ordinal(position) for position in positions])
    return (
        f"I did not check your {places} {nouns} (of {count}): you have checked several pictures in a "
        f"short time. Please send {'it' if len(positions) == 1 else 'them'} again in {_duration(seconds)}."
    )


def requests_slow_down(seconds: float) -> str:
    return f"You have made several requests in a short time. Please try again in {_duration(seconds)}."


def check_expired() -> str:
    return (
        "This result has expired (results are kept only briefly, and only as fingerprints). "
        "Please check the picture again to make a request."
    )


def request_form_expired(note: str | None) -> str:
    """A request form submitted after its check was forgotten (the bot restarted meanwhile)."""
    text = (
        "I could not file this request: I restarted while you were writing, and the result it "
        "belongs to is gone (results are kept only briefly, and only as fingerprints). Nothing was "
        "saved. Please check the picture again to make a request."
    )
    if note:
        quoted = "\n".join(f"> {line}" for line in note.splitlines())
        text += f"\nWhat you wrote, to paste again:\n{quoted}"
    return text


def already_requested(ticket_id: str) -> str:
    """Request removal pressed again for a check that already became a ticket."""
    return (
        f"You already asked for this: your request is **{ticket_id}**. In the server, `/mytickets` "
        "shows where it stands."
    )


# The commands are registered in the server only (they appear there at once, and nowhere else):
# a direct message with the bot does not offer them, so every mention says where they work.
_COMMANDS_HINT = "In the server, `/mytickets` shows your requests and `/withdraw` takes one back."

_CREATED = {
    TicketState.LINKED: (
        "Your request is **{id}**. Someone already asked to remove the same picture, so your "
        "request joins theirs; I will send you a private message when a maintainer decides. " + _COMMANDS_HINT
    ),
    TicketState.APPROVED: (
        "Your request is **{id}**. This picture has already been removed from the dataset list."
    ),
}
_CREATED_DEFAULT = (
    "Your request is **{id}**. A maintainer will review it; they see only the dataset's own "
    "entries, never your picture. I will send you a private message when they decide. " + _COMMANDS_HINT
)


def ticket_created(ticket: Ticket) -> str:
    return _CREATED.get(ticket.state, _CREATED_DEFAULT).format(id=ticket.id)


_DECIDED = {
    TicketState.APPROVED: (
        "Good news about request **{id}**: a maintainer approved it. The matching entries are "
        "on the dataset's removal list, and the picture's fingerprint is blocked from future "
        "collections.\nNote from the maintainer: {reason}"
    ),
    TicketState.REJECTED: (
        "About request **{id}**: a maintainer decided not to remove these entries.\nTheir reason: {reason}"
    ),
}
_DECIDED_DEFAULT = "Your request **{id}** is now {state}."


def decision(ticket: Ticket, contact: str = "") -> str:
    """The requester's message about a decision. ``contact`` (``[discord] contact``) says how to
    reach a maintainer; without it a rejection says nothing about writing to one, since the person
    would not know how."""
    template = _DECIDED.get(ticket.state, _DECIDED_DEFAULT)
    text = template.format(id=ticket.id, reason=ticket.decision_reason, state=ticket.state)
    if ticket.state is TicketState.REJECTED and contact:
        text += f"\nIf you think this is wrong, a maintainer can look at it again: {contact}"
    return text


def dm_failed_notice(user_mention: str) -> str:
    return (
        f"{user_mention} I deleted your message so nobody else sees it, but Discord would not deliver my "
        "answer to you just now. Use `/check` here (only you see the answer), or post the picture again "
        "in a few minutes."
    )


def dm_closed_notice(user_mention: str) -> str:
    return (
        f"{user_mention} I deleted your message so nobody else sees it, but I cannot send you my answer in a "
        "private message. Use `/check` here (only you see the answer), or allow direct messages from this "
        "server."
    )


def forget_confirm() -> str:
    return (
        "This erases your Discord id, your notes and your pictures' fingerprints from all your requests. "
        "Requests still waiting will still be decided, but nobody (not even you) can follow them any more. "
        "Continue?"
    )


def forgotten(count: int) -> str:
    if not count:
        return "Done. I had no request of yours, so there was nothing to erase."
    return f"Done. Your data was erased from {count_of(count, 'request')}."


PANEL = (
    "**Ask for a picture of you to be removed from this dataset**\n"
    "Post a picture here and I will delete it at once, check it against the dataset and answer you "
    "privately. Until I delete it, others in this channel could see it. Fully private ways:\n"
    "• `/check` with the picture attached: only you see it and the answer;\n"
    "• send me the picture in a direct message.\n"
    "Pictures are never saved: only a fingerprint is used to find copies."
)


def _duration(seconds: float) -> str:
    seconds = max(1, round(seconds))
    if seconds < 90:
        return count_of(seconds, "second")
    return count_of(round(seconds / 60), "minute")


# -- labels on the requester's buttons and forms ----------------------------------------------------

REQUEST_REMOVAL_LABEL = "Request removal"
CHECK_PRIVATELY_LABEL = "Check privately"
ERASE_MY_DATA_LABEL = "Erase my data"
CANCEL_LABEL = "Cancel"
NOTE_LABEL = "Anything the reviewers should know?"
CHECK_IMAGE_HELP = "The picture to check (only you see it and the answer)"
TICKET_ID_HELP = "The request's id, e.g. K7M2QX"


def closeness(pdq_distance: int) -> str:
    """PDQ bits that differ, as words a person understands."""
    if pdq_distance <= 16:
        return "the same picture"
    if pdq_distance <= 48:
        return "a very close copy"
    return "a close copy (edited or cropped)"


def found_more(count: int) -> str:
    return f"and {count} more; a request covers all of them"


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
