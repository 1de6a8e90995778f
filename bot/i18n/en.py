"""English: what a requester reads, and the slash commands they use. The reference catalogue: every
other language has the same message ids with the same ``{placeholders}``.

A message that depends on a number has its plural forms (``one``, ``other``), chosen by ``count``.
Command names follow Discord's rules: lowercase, 1-32 letters, digits, ``-`` or ``_``.
"""

from __future__ import annotations

from collections.abc import Mapping

MESSAGES: Mapping[str, str | Mapping[str, str]] = {
    # -- what happens to the picture -----------------------------------------------------------
    "picture.handled": (
        "Your picture was turned into a fingerprint (a hash) and then discarded: it was not saved."
    ),
    "picture.deleted": "I deleted your message so nobody else sees the picture.",
    "picture.not_deleted": "I could not delete your message: please delete it yourself, others can see it.",
    "send_picture_here": (
        "Send me the picture here, in this private conversation, and I will check it. It will be turned "
        "into a fingerprint (a hash) and then discarded: it is not saved."
    ),
    "cannot_dm": (
        "I cannot send you a private message. Use `/check` with the picture attached: only you see the "
        "answer."
    ),
    "dm_sent": "I sent you a private message.",
    "send_a_picture": "Send me a picture to check it (as an attachment).",
    "download_failed": "I could not download the file from Discord. Please try again.",
    "not_your_button": "This button is not for you.",
    "something_went_wrong": "Something went wrong on my side; nothing was saved. Please try again later.",
    # -- answers to a check ----------------------------------------------------------------------
    "dataset": {"one": "the one picture in the dataset", "other": "all {count:,} pictures in the dataset"},
    "no_match.removed": {
        "one": (
            "{handled}\n\nI compared it with {dataset} and found 1 copy of it, but it was already "
            "removed: a maintainer approved an earlier request, so the dataset's removal list names it "
            "and nothing is left to ask for."
        ),
        "other": (
            "{handled}\n\nI compared it with {dataset} and found {count:,} copies of it, but they were "
            "already removed: a maintainer approved an earlier request, so the dataset's removal list "
            "names them and nothing is left to ask for."
        ),
    },
    "no_match.unjudged": {
        "one": (
            "{handled}\n\nI compared it with {dataset}. 1 picture in it looks close to yours but is too "
            "plain (nearly one colour, or a smooth gradient) for me to tell whether it is a copy, so I "
            "cannot say either way. A maintainer can look into it; {reach}"
        ),
        "other": (
            "{handled}\n\nI compared it with {dataset}. {count:,} pictures in it look close to yours but "
            "are too plain (nearly one colour, or a smooth gradient) for me to tell whether they are a "
            "copy, so I cannot say either way. A maintainer can look into it; {reach}"
        ),
    },
    "no_match": (
        "{handled}\n\nI compared it with {dataset} and found no copy of it. Copies that were cropped or "
        "edited heavily can be missed: if you know the picture is in the dataset, a maintainer can still "
        "look into it; {reach}"
    ),
    "write_to_them": "write to them.",
    "matches_found": {
        "one": (
            "{handled}\n\nI found 1 copy of it in the dataset (listed below). If you want it removed, "
            "press **Request removal**. You do not need to say who you are."
        ),
        "other": (
            "{handled}\n\nI found {count:,} copies of it in the dataset (listed below). If you want them "
            "removed, press **Request removal**. You do not need to say who you are."
        ),
    },
    "found_entry": "{closeness}\nURL: {url}\nCaption: {caption}",
    "found_more": "and {count} more; a request covers all of them",
    "closeness.same": "the same picture",
    "closeness.very_close": "a very close copy",
    "closeness.close": "a close copy (edited or cropped)",
    "which_picture": "**Your {ordinal} picture (of {count}):**",
    # -- pictures that cannot be checked -----------------------------------------------------------
    "refused_picture": "I could not check this file. {reason}\nNothing was saved.",
    "too_big": (
        "This file is {size:.1f} MiB; I can check files up to {limit:.0f} MiB. A smaller copy or a "
        "screenshot of the picture works just as well. Nothing was saved."
    ),
    "not_a_picture": "This file is not a picture I can check: please send a JPEG, PNG, WebP, GIF or BMP.",
    "not_a_picture.typed": (
        "This file ({content_type}) is not a picture I can check: please send a JPEG, PNG, WebP, GIF or BMP."
    ),
    "decoding.empty": "The file is empty (0 bytes). Please send the picture itself.",
    "decoding.too_many_bytes": (
        "The file is {size:,} bytes; pictures up to {limit:,} bytes ({limit_mib:.1f} MiB) can be checked. "
        "A smaller copy works just as well."
    ),
    "decoding.not_an_image": (
        "This file is not a picture I can read. JPEG, PNG, WebP, GIF and BMP pictures are supported."
    ),
    "decoding.too_small": (
        "The picture is only {width}x{height} pixels; at least {min_side} pixels a side are needed to "
        "compare it reliably."
    ),
    "decoding.too_thin": (
        "The picture is {width}x{height} pixels, too long and thin to compare. A copy that shows the "
        "picture at its usual proportions works."
    ),
    "decoding.corrupt": (
        "This picture seems damaged or incomplete and cannot be read. Please try another copy of it."
    ),
    "decoding.too_many_pixels": (
        "The picture has more than {limit:,} pixels, more than can be checked safely. A smaller copy "
        "(for example a screenshot) works just as well."
    ),
    "checking.too_plain": (
        "This picture is too plain (nearly one colour, or a smooth gradient) to be compared reliably. If "
        "it is the picture you mean, a maintainer can still look at your request."
    ),
    # -- busy, slow down ---------------------------------------------------------------------------
    "seconds": {"one": "{count:,} second", "other": "{count:,} seconds"},
    "minutes": {"one": "{count:,} minute", "other": "{count:,} minutes"},
    "busy": (
        "Many people are checking pictures right now and I could not take yours; it was not saved. "
        "Please try again in {duration}."
    ),
    "slow_down": "You have checked several pictures in a short time. Please try again in {duration}.",
    "requests_slow_down": "You have made several requests in a short time. Please try again in {duration}.",
    "pictures_not_checked": {
        "one": (
            "I did not check your {places} picture (of {total}): you have checked several pictures in a "
            "short time. Please send it again in {duration}."
        ),
        "other": (
            "I did not check your {places} pictures (of {total}): you have checked several pictures in a "
            "short time. Please send them again in {duration}."
        ),
    },
    "list.and": "and",
    "hashing_worker_died": (
        "Something went wrong while I was checking this picture, and it was not saved. Please send it "
        "again; if the same picture fails twice, it may be a file I cannot read."
    ),
    "index_incomplete": (
        "I could not search the whole dataset index just now, so I cannot tell you whether it holds a "
        "copy of your picture. Nothing was saved. Please try again later."
    ),
    "store_busy": (
        "The ticket database is busy right now and nothing was saved. Please try again in a moment."
    ),
    "store_full": (
        "I could not save your request: the ticket database has no room left, and nothing was saved. "
        "Please try again later."
    ),
    # -- requests ----------------------------------------------------------------------------------
    "check_expired": (
        "This result has expired (results are kept only briefly, and only as fingerprints). Please check "
        "the picture again to make a request."
    ),
    "request_form_expired": (
        "I could not file this request: I restarted while you were writing, and the result it belongs to "
        "is gone (results are kept only briefly, and only as fingerprints). Nothing was saved. Please "
        "check the picture again to make a request."
    ),
    "request_form_expired.note": "What you wrote, to paste again:",
    "already_requested": (
        "You already asked for this: your request is **{id}**. In the server, `/mytickets` shows where "
        "it stands."
    ),
    "commands_hint": "In the server, `/mytickets` shows your requests and `/withdraw` takes one back.",
    "ticket_created.linked": (
        "Your request is **{id}**. Someone already asked to remove the same picture, so your request "
        "joins theirs; I will send you a private message when a maintainer decides. {hint}"
    ),
    "ticket_created.approved": (
        "Your request is **{id}**. This picture has already been removed from the dataset list."
    ),
    "ticket_created": (
        "Your request is **{id}**. A maintainer will review it; they see only the dataset's own entries, "
        "never your picture. I will send you a private message when they decide. {hint}"
    ),
    "too_many_requests": (
        "You already have {count} requests waiting for a decision (the most one person may have at once "
        "is {limit}). You can file another once one of them is decided."
    ),
    "repeated_request": "You already asked for these entries to be removed: ticket {id} is {state}.",
    "note_too_long": "The note is {length} characters long; at most {limit} fit.",
    "decision.approved": (
        "Good news about request **{id}**: a maintainer approved it. The matching entries are on the "
        "dataset's removal list, and the picture's fingerprint is blocked from future collections.\n"
        "Note from the maintainer: {reason}"
    ),
    "decision.rejected": (
        "About request **{id}**: a maintainer decided not to remove these entries.\nTheir reason: {reason}"
    ),
    "decision.other": "Your request **{id}** is now {state}.",
    "decision.contact": "If you think this is wrong, a maintainer can look at it again: {contact}",
    "state.open": "open",
    "state.claimed": "claimed",
    "state.approved": "approved",
    "state.rejected": "rejected",
    "state.withdrawn": "withdrawn",
    "state.linked": "linked",
    "entries": {"one": "{count:,} entry", "other": "{count:,} entries"},
    "ticket_line.claimed_by": "claimed by {who}",
    "ticket_line.flagged": "flagged",
    "no_requests": "You have no removal requests.",
    "withdrawn": "Request {id} is withdrawn.",
    "not_yours": "Ticket {id} was not filed by you, so you cannot withdraw it.",
    "no_such_ticket": "There is no ticket {id}.",
    "cannot_withdraw": "Ticket {id} cannot be withdrawn: it is already {state}.",
    # -- /forget-me --------------------------------------------------------------------------------
    "forget_confirm": (
        "This erases your Discord id, your notes and your pictures' fingerprints from all your requests. "
        "Requests still waiting will still be decided, but nobody (not even you) can follow them any "
        "more. Continue?"
    ),
    "forgotten.none": "Done. I had no request of yours, so there was nothing to erase.",
    "forgotten": {
        "one": "Done. Your data was erased from {count:,} request.",
        "other": "Done. Your data was erased from {count:,} requests.",
    },
    "nothing_erased": "Nothing was erased.",
    "forget_expired": (
        "This question expired and nothing was erased. Run `/forget-me` again (in the server) to erase "
        "your data."
    ),
    # -- in the privacy channel --------------------------------------------------------------------
    "dm_failed_notice": (
        "{mention} I deleted your message so nobody else sees it, but Discord would not deliver my answer "
        "to you just now. Use `/check` here (only you see the answer), or post the picture again in a few "
        "minutes."
    ),
    "dm_closed_notice": (
        "{mention} I deleted your message so nobody else sees it, but I cannot send you my answer in a "
        "private message. Use `/check` here (only you see the answer), or allow direct messages from this "
        "server."
    ),
    "panel": (
        "**Ask for a picture of you to be removed from this dataset**\n"
        "Post a picture here and I will delete it at once, check it against the dataset and answer you "
        "privately. Until I delete it, others in this channel could see it. Fully private ways:\n"
        "• `/check` with the picture attached: only you see it and the answer;\n"
        "• send me the picture in a direct message.\n"
        "Pictures are never saved: only a fingerprint is used to find copies."
    ),
    # -- labels on buttons and forms (at most 45 characters: a form's title) ---------------------
    "label.request_removal": "Request removal",
    "label.check_privately": "Check privately",
    "label.erase_my_data": "Erase my data",
    "label.cancel": "Cancel",
    "label.note": "Anything the reviewers should know?",
    "note_warning": (
        "Optional. Please do not write names, contact details or anything else that identifies you."
    ),
    # -- slash commands: names (lowercase, 1-32 characters), descriptions (1-100 characters) ---
    "command.check": "check",
    "command.check.description": "Check privately whether a picture is in the dataset",
    "command.check.image": "image",
    "command.check.image.description": "The picture to check (only you see it and the answer)",
    "command.mytickets": "mytickets",
    "command.mytickets.description": "Your removal requests and where they stand",
    "command.withdraw": "withdraw",
    "command.withdraw.description": "Take back one of your removal requests",
    "command.withdraw.ticket": "ticket",
    "command.withdraw.ticket.description": "The request's id, e.g. K7M2QX",
    "command.forget-me": "forget-me",
    "command.forget-me.description": "Erase your Discord id and data from all your requests",
}
