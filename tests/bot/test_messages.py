"""The sentences a person reads: what they promise about the picture, and lists cut to fit Discord."""

from __future__ import annotations

import inspect

import pytest

from bot import i18n, messages
from bot.tickets.lifecycle import MAINTAINER_ACTIONS, TicketState
from bot.tickets.models import Ticket
from bot.times import human_time


def test_telling_a_person_where_to_send_the_picture_says_it_is_not_kept():
    assert "private conversation" in messages.SEND_PICTURE_HERE
    assert "discarded: it is not saved" in messages.SEND_PICTURE_HERE
    assert "/check" in messages.CANNOT_DM


# Discord's limits on what is not a message: a button label 80 characters, a text input's label
# (and a modal's title) 45, an embed field's name 256, an option's description 100.
_NOT_SENTENCES = ("_LABEL", "_FIELD", "_HELP")
_LIMITS = {"_LABEL": 45, "_FIELD": 256, "_HELP": 100}


def test_every_label_field_name_and_help_text_fits_where_discord_puts_it():
    checked = 0
    for name, text in inspect.getmembers(messages):
        for suffix, limit in _LIMITS.items():
            if name.isupper() and name.endswith(suffix):
                assert 0 < len(text) <= limit, name
                checked += 1
    assert checked >= 10
    for action, label in messages.ACTION_LABELS.items():
        # The reason form's title is the label and the six-character ticket id.
        assert len(f"{label} K7M2QX") <= 45, action


def test_every_maintainer_action_has_a_button_label():
    assert set(messages.ACTION_LABELS) == {str(action) for action in MAINTAINER_ACTIONS}


def test_closeness_words_get_weaker_as_the_pdq_distance_grows():
    words = [messages.closeness(distance) for distance in (0, 16, 17, 48, 49, 256)]
    assert words[0] == words[1] == "the same picture"
    assert words[2] == words[3] != words[1]
    assert words[4] == words[5] not in words[:4]


def test_the_review_card_and_export_sentences_carry_their_figures():
    assert messages.card_title("K7M2QX", "open") == "Removal request K7M2QX: open"
    assert messages.card_filed("2026-12-01", "discord").startswith("Filed 2026-12-01 via discord.")
    assert "never kept" in messages.card_filed("2026-12-01", "discord")
    assert messages.removal_list_sent(3, 12, 5) == "Removal list version 3: 12 entries, 5 picture hashes."
    assert messages.ticket_now("K7M2QX", "claimed") == "Ticket K7M2QX is now claimed."


def test_every_fixed_sentence_fits_a_discord_message_and_ends_as_a_sentence():
    sentences = {
        name: value
        for name, value in inspect.getmembers(messages)
        if name.isupper() and isinstance(value, str) and not name.endswith(_NOT_SENTENCES)
    }
    assert len(sentences) >= 15
    for name, text in sentences.items():
        assert 0 < len(text) <= messages.MESSAGE_LIMIT, name
        assert text.rstrip()[-1] in ".:!?)", name


def test_fit_keeps_whole_lines_best_first_and_says_how_many_were_left_out():
    lines = [f"ticket {number:03d} " + "x" * 80 for number in range(100)]
    text = messages.fit(lines)
    shown = text.splitlines()
    assert len(text) <= messages.MESSAGE_LIMIT
    assert shown[0] == lines[0]
    assert shown[-1] == f"… {100 - (len(shown) - 1)} more not shown"
    assert shown[:-1] == lines[: len(shown) - 1]


def test_fit_keeps_the_newest_lines_of_a_log_oldest_first():
    lines = [f"event {number:03d} " + "y" * 80 for number in range(100)]
    shown = messages.fit(lines, newest_last=True).splitlines()
    assert shown[-1] == lines[-1]
    assert shown[1:] == lines[-(len(shown) - 1) :]
    assert shown[0] == f"… {100 - (len(shown) - 1)} more not shown"


@pytest.mark.parametrize("newest_last", [False, True])
def test_fit_leaves_a_short_list_alone_and_cuts_a_single_overlong_line(newest_last):
    assert messages.fit(["a", "b"], newest_last=newest_last) == "a\nb"
    assert messages.fit([], newest_last=newest_last) == ""
    long = messages.fit(["z" * 5000], newest_last=newest_last)
    assert long == "z" * (messages.MESSAGE_LIMIT - 40)


def test_ordinals_and_which_picture_name_a_picture_by_its_place():
    assert [messages.ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th",
    ]  # fmt: skip
    assert messages.which_picture(2, 5) == "**Your 2nd picture (of 5):**"


def test_pictures_not_checked_lists_them_and_says_when_to_send_them_again():
    one = messages.pictures_not_checked([6], 6, 30)
    assert one == (
        "I did not check your 6th picture (of 6): you have checked several pictures in a short time. "
        "Please send it again in 30 seconds."
    )
    many = messages.pictures_not_checked([6, 7, 8], 8, 60)
    assert "your 6th, 7th and 8th pictures (of 8)" in many
    assert many.endswith("send them again in 60 seconds.")


def test_an_expired_forget_me_question_says_nothing_was_erased_and_how_to_ask_again():
    assert "nothing was erased" in messages.FORGET_EXPIRED
    assert "`/forget-me`" in messages.FORGET_EXPIRED


def test_a_request_form_lost_to_a_restart_gives_the_note_back_to_paste():
    text = messages.request_form_expired("line one\nline two")
    assert "Nothing was saved" in text
    assert text.endswith("to paste again:\n> line one\n> line two")
    assert "paste" not in messages.request_form_expired(None)


def test_counts_take_the_right_noun_everywhere():
    assert messages.count_of(1, "copy", "copies") == "1 copy"
    assert messages.count_of(1204, "entry", "entries") == "1,204 entries"
    assert "I found 1 copy of it" in messages.matches_found(1)
    assert "If you want it removed" in messages.matches_found(1)
    assert "I found 2 copies of it" in messages.matches_found(2)
    assert "If you want them removed" in messages.matches_found(2)
    assert messages.entries(1) == "1 entry"
    assert messages.more_entries(1).startswith("and 1 more entry ")
    assert messages.more_entries(3).startswith("and 3 more entries ")
    assert messages.removal_list_sent(1, 1, 1) == "Removal list version 1: 1 entry, 1 picture hash."
    assert messages.commands_synced(1) == "Synced 1 command."
    assert messages.forgotten(1) == "Done. Your data was erased from 1 request."
    assert messages.forgotten(2) == "Done. Your data was erased from 2 requests."
    assert "(s)" not in messages.forgotten(0)
    assert messages.slow_down(1).endswith("in 1 second.")
    assert messages.slow_down(30).endswith("in 30 seconds.")
    assert "the one picture in the dataset" in messages.no_match(1)
    one_plain = messages.no_match(1_000, "", unjudged=1)
    assert "1 picture in it looks close to yours but is too plain" in one_plain


def test_a_picture_whose_copies_were_removed_is_told_so_not_no_copy():
    one = messages.no_match(3, "", removed=1)
    assert "found 1 copy of it, but it was already removed" in one
    assert "no copy" not in one
    assert "2 copies of it, but they were already removed" in messages.no_match(3, "", removed=2)


def test_people_read_times_in_a_human_form_never_raw_iso():
    assert human_time("2026-12-04T02:49:08.486407Z") == "2026-12-04 02:49 UTC"
    assert human_time("2026-12-04T03:49:08+01:00") == "2026-12-04 02:49 UTC"
    assert human_time("not a time") == "not a time"


def test_a_rejection_says_how_to_reach_a_maintainer_only_with_a_contact():
    fields = dict.fromkeys(Ticket.__dataclass_fields__)
    ticket = Ticket(**{**fields, "id": "K7M2QX", "state": TicketState.REJECTED, "decision_reason": "No."})
    assert "write to" not in messages.decision(ticket)
    assert messages.decision(ticket).endswith("Their reason: No.")
    assert messages.decision(ticket, "ask in #help.").endswith("can look at it again: ask in #help.")


def test_the_person_is_told_where_the_commands_work_and_which_request_they_already_made():
    assert "In the server, `/mytickets`" in messages.already_requested("K7M2QX")
    assert "**K7M2QX**" in messages.already_requested("K7M2QX")


def test_the_bot_speaks_as_i_never_we():
    sentences = [v for n, v in inspect.getmembers(messages) if n.isupper() and isinstance(v, str)]
    sentences += [messages.no_match(3), messages.matches_found(2), messages.forget_confirm()]
    for text in sentences:
        words = text.lower().replace(",", " ").replace(".", " ").split()
        assert not {"we", "our", "us"} & set(words), text


def test_the_card_guidance_covers_entries_without_a_url():
    assert "without one" in messages.CARD_GUIDANCE
    assert "key" in messages.CARD_GUIDANCE


@pytest.mark.parametrize("locale", sorted(i18n.CATALOGUES))
def test_every_requester_message_fits_discord_in_every_language_even_at_its_longest(locale):
    """The longest each composed message gets (a 1,000-character note, a long contact, ten
    pictures, large numbers) still fits one Discord message, and its labels fit their places."""
    contact = "write to #removal-help or mail removals@example.org (" + "x" * 150 + ")"
    fields = dict.fromkeys(Ticket.__dataclass_fields__)
    reason = "r" * 1000  # the reason form's limit
    longest = [
        messages.request_form_expired("n" * 1000, locale=locale),
        messages.no_match(123_456_789, contact, unjudged=9_999, locale=locale),
        messages.no_match(123_456_789, contact, removed=9_999, locale=locale),
        messages.no_match(123_456_789, contact, locale=locale),
        messages.matches_found(10_000, locale=locale),
        messages.pictures_not_checked(list(range(2, 11)), 10, 3600, locale=locale),
        messages.too_big(2**31, 10 * 2**20, locale=locale),
        messages.refused_picture(
            i18n.text("decoding.too_many_bytes", locale, size=2**31, limit=10 * 2**20, limit_mib=10.0),
            locale=locale,
        ),
        messages.dm_closed_notice("<@123456789012345678>", locale=locale),
        messages.forget_confirm(locale=locale),
    ]
    for state in TicketState:
        ticket = Ticket(**{**fields, "id": "K7M2QX", "state": state, "decision_reason": reason})
        longest += [
            messages.ticket_created(ticket, locale=locale),
            messages.decision(ticket, contact, locale=locale),
        ]
    for text in longest:
        assert 0 < len(text) <= messages.MESSAGE_LIMIT, text[:80]
    labels = [messages.text(key, locale) for key in i18n.CATALOGUES[locale] if key.startswith("label.")]
    for label in labels:  # a form's title and a text input's label: 45 characters
        assert 0 < len(label) <= 45, label
    assert len(messages.found_more(10_000, locale=locale)) <= 2048  # an embed's footer
    assert len(messages.found_entry("x" * 60, "u" * 300, "c" * 200, locale=locale)) <= 1024  # a field's value
