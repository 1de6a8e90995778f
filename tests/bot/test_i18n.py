"""The language catalogues (``bot/i18n``): every message in every language, with the same
placeholders and plural forms; the languages chosen from Discord locales; numbers written the
language's way; the slash commands' names and descriptions within Discord's rules; and refusals
that reach a requester from the core carried in their language."""

from __future__ import annotations

import pickle
import re
import unicodedata
from collections.abc import Mapping

import pytest

from bot import i18n, messages
from bot.decoding import ImageRejectedError, decode_picture
from bot.desk import DeskBusyError
from bot.tickets.lifecycle import IllegalTransitionError, TicketAction, TicketState

LANGUAGES = sorted(i18n.CATALOGUES)
OTHERS = [lang for lang in LANGUAGES if lang != i18n.DEFAULT]
ENGLISH = i18n.CATALOGUES[i18n.DEFAULT]
COMMAND_KEYS = [key for key in ENGLISH if key.startswith("command.")]
NAME_KEYS = [key for key in COMMAND_KEYS if not key.endswith(".description")]
DESCRIPTION_KEYS = [key for key in COMMAND_KEYS if key.endswith(".description")]


def forms(template: str | Mapping[str, str]) -> dict[str, str]:
    return {"": template} if isinstance(template, str) else dict(template)


def test_there_are_at_least_english_and_german():
    assert {"en", "de"} <= set(LANGUAGES)
    assert len(ENGLISH) >= 90


@pytest.mark.parametrize("lang", OTHERS)
def test_every_message_exists_in_every_language_and_no_other(lang: str):
    catalogue = i18n.CATALOGUES[lang]
    assert sorted(set(ENGLISH) - set(catalogue)) == []
    assert sorted(set(catalogue) - set(ENGLISH)) == []


@pytest.mark.parametrize("lang", OTHERS)
def test_the_placeholders_of_each_message_agree_between_languages(lang: str):
    """Form by form (a plural's "one" may say "1" where "other" says {count})."""
    compared = 0
    for key, english in ENGLISH.items():
        theirs = forms(i18n.CATALOGUES[lang][key])
        for form, text in forms(english).items():
            if form in theirs:  # a plural form either lacks fails the plural test
                assert i18n.placeholders(theirs[form]) == i18n.placeholders(text), f"{lang} {key} {form}"
                compared += 1
    assert compared > len(ENGLISH)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_plural_message_has_the_forms_its_language_uses(lang: str):
    plural = [key for key, value in ENGLISH.items() if not isinstance(value, str)]
    assert len(plural) >= 8
    for key in plural:
        value = i18n.CATALOGUES[lang][key]
        assert not isinstance(value, str), f"{lang} {key} has no plural forms"
        assert set(value) == set(i18n.PLURAL_FORMS[lang]), f"{lang} {key}"


@pytest.mark.parametrize("lang", OTHERS)
def test_every_sentence_is_translated_not_copied(lang: str):
    for key, english in ENGLISH.items():
        assert i18n.CATALOGUES[lang][key] != english, f"{lang} {key} is still English"


def test_a_plural_message_takes_its_form_from_the_count():
    assert i18n.text("forgotten", "de", count=1) == "Erledigt. Deine Daten wurden aus 1 Anfrage gelöscht."
    assert i18n.text("forgotten", "de", count=2) == "Erledigt. Deine Daten wurden aus 2 Anfragen gelöscht."
    assert messages.slow_down(1, locale="de").endswith("in 1 Sekunde noch einmal.")
    assert messages.slow_down(30, locale="de").endswith("in 30 Sekunden noch einmal.")
    assert messages.busy(600, locale="de").endswith("in 10 Minuten noch einmal.")
    with pytest.raises(TypeError, match="count"):
        i18n.text("forgotten", "de")


@pytest.mark.parametrize(
    ("locale", "lang"),
    [("de", "de"), ("DE", "de"), ("de-AT", "de"), ("en-US", "en"), ("en-GB", "en"), ("ja", "en"),
     ("pt-BR", "en"), ("", "en"), (None, "en")],
)  # fmt: skip
def test_a_discord_locale_picks_its_catalogue_and_anything_unknown_falls_back_to_english(
    locale: str | None, lang: str
):
    assert i18n.language(locale) == lang
    assert i18n.text("dm_sent", locale) == i18n.CATALOGUES[lang]["dm_sent"]


def test_numbers_are_written_the_languages_way():
    assert "all 1,204 pictures" in messages.no_match(1204)
    assert "allen 1.204 Bildern" in messages.no_match(1204, locale="de")
    assert "This file is 12.5 MiB" in messages.too_big(int(12.5 * 2**20), 10 * 2**20)
    assert "Diese Datei ist 12,5 MiB groß" in messages.too_big(int(12.5 * 2**20), 10 * 2**20, locale="de")
    # A ticket id or a contact is text and is never touched.
    assert "**K7M2.QX**" in messages.already_requested("K7M2.QX", locale="de")


def test_ordinals_and_lists_read_as_each_language_writes_them():
    assert messages.which_picture(2, 5, locale="de") == "**Dein 2. Bild (von 5):**"
    german = messages.pictures_not_checked([6, 7, 8], 8, 60, locale="de")
    assert german.startswith("Deine 6., 7. und 8. Bilder (von 8)")
    assert messages.pictures_not_checked([6], 6, 30, locale="de").startswith("Dein 6. Bild (von 6)")


# Discord's rule for a command or option name (the \p{L}, \p{N} classes, by Unicode category).
def _valid_name(name: str) -> bool:
    allowed = all(char in "-_" or unicodedata.category(char)[0] in "LN" for char in name)
    return allowed and 1 <= len(name) <= 32 and name == name.lower()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_command_names_and_descriptions_keep_discords_rules(lang: str):
    catalogue = i18n.CATALOGUES[lang]
    assert len(NAME_KEYS) >= 6
    for key in NAME_KEYS:
        assert _valid_name(catalogue[key]), f"{lang} {key}: {catalogue[key]!r}"
    for key in DESCRIPTION_KEYS:
        assert 1 <= len(catalogue[key]) <= 100, f"{lang} {key}"
    commands = [catalogue[key] for key in NAME_KEYS if key.count(".") == 1]
    assert len(set(commands)) == len(commands)  # no two commands share a name


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_command_named_in_a_sentence_is_that_languages_name_for_it(lang: str):
    catalogue = i18n.CATALOGUES[lang]
    names = {catalogue[key] for key in NAME_KEYS if key.count(".") == 1}
    mentioned = set()
    for value in catalogue.values():
        for text in forms(value).values():
            mentioned |= set(re.findall(r"`/([^`\s]+)", text))
    assert mentioned, lang
    assert mentioned <= names, f"{lang}: {sorted(mentioned - names)}"


# Discord's limits: a modal's title and a text input's label 45 characters (a button label 80), a
# text input's placeholder 100, a message 2,000 (the bot keeps to MESSAGE_LIMIT).
@pytest.mark.parametrize("lang", LANGUAGES)
def test_labels_and_fixed_sentences_fit_where_discord_puts_them_in_every_language(lang: str):
    catalogue = i18n.CATALOGUES[lang]
    labels = [key for key in catalogue if key.startswith("label.")]
    assert len(labels) >= 5
    for key in labels:
        assert 0 < len(catalogue[key]) <= 45, f"{lang} {key}"
    assert len(i18n.text("note_warning", lang)) <= 100
    for key, value in catalogue.items():
        for text in forms(value).values():
            assert 0 < len(text) <= messages.MESSAGE_LIMIT, f"{lang} {key}"
    assert (
        len(messages.pictures_not_checked(list(range(2, 11)), 10, 3600, locale=lang))
        <= messages.MESSAGE_LIMIT
    )


def test_english_callers_read_what_they_read_before():
    assert i18n.text("picture.handled", "en") == messages.PICTURE_HANDLED
    assert messages.REQUEST_REMOVAL_LABEL == "Request removal"
    assert "press **Request removal**" in messages.matches_found(1)
    assert "**Entfernung beantragen**" in messages.matches_found(1, locale="de")
    assert i18n.text("label.request_removal", "de") == "Entfernung beantragen"


def test_a_refused_picture_crosses_the_process_boundary_and_is_told_in_the_readers_language(settings):
    with pytest.raises(ImageRejectedError) as refused:
        decode_picture(b"", settings.decoding)
    crossed = pickle.loads(pickle.dumps(refused.value))  # as from the hashing process
    assert crossed.reason == "empty"
    assert messages.error_text(crossed, "de") == "Die Datei ist leer (0 Bytes). Bitte schick das Bild selbst."
    assert messages.error_text(crossed, "en-US") == str(crossed) == crossed.message
    busy = DeskBusyError(90)
    assert messages.error_text(busy, "de") == messages.busy(90, locale="de")
    assert messages.error_text(busy, None) == messages.busy(90)


def test_a_refused_withdrawal_names_the_state_in_the_readers_language():
    refused = IllegalTransitionError("K7M2QX", TicketAction.WITHDRAW, TicketState.APPROVED)
    assert messages.error_text(refused, "de") == (
        "Die Anfrage K7M2QX lässt sich nicht zurückziehen: Sie ist schon genehmigt."
    )
    assert messages.error_text(refused, "en") == str(refused)
    claim = IllegalTransitionError("K7M2QX", TicketAction.CLAIM, TicketState.APPROVED)
    assert messages.error_text(claim, "de") == str(claim)  # to maintainers: English
