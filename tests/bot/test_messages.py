"""The sentences a person reads: what they promise about the picture, and lists cut to fit Discord."""

from __future__ import annotations

import inspect

import pytest

from bot import messages


def test_telling_a_person_where_to_send_the_picture_says_it_is_not_kept():
    assert "private conversation" in messages.SEND_PICTURE_HERE
    assert "discarded: it is not saved" in messages.SEND_PICTURE_HERE
    assert "/check" in messages.CANNOT_DM


def test_every_fixed_sentence_fits_a_discord_message_and_ends_as_a_sentence():
    sentences = {
        name: value
        for name, value in inspect.getmembers(messages)
        if name.isupper() and isinstance(value, str)
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
