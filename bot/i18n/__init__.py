"""The languages a requester is answered in: one catalogue per language, keyed by message id.

Each catalogue (``bot/i18n/en.py``, ``bot/i18n/de.py``) is plain data: a message id maps to a
``str.format`` template, or for a sentence that depends on a number to its plural forms
(``{"one": ..., "other": ...}``, chosen by the ``count`` placeholder). :func:`text` picks the
language from a Discord locale (``"de"``, ``"en-US"``, ``"pt-BR"``); a locale without a catalogue,
or a message a catalogue lacks, falls back to English, so a person is never left without an answer.

Numbers are formatted for the language: ``{count:,}`` is "1,204" in English and "1.204" in German.

What requesters read goes through here; what maintainers read (review cards, ``/tickets``, the log
channel) stays English in :mod:`bot.messages`: the team shares one working language, and the audit
log must read the same to all of them. Kept free of Discord types, like :mod:`bot.messages`.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from typing import Any

from bot.i18n import de, en

Template = str | Mapping[str, str]

DEFAULT = "en"
CATALOGUES: dict[str, Mapping[str, Template]] = {"en": en.MESSAGES, "de": de.MESSAGES}
# The plural forms each language uses, and which one a number takes (CLDR's cardinal rules).
PLURAL_FORMS: dict[str, tuple[str, ...]] = {"en": ("one", "other"), "de": ("one", "other")}
_PLURAL_RULES: dict[str, Callable[[int], str]] = {
    "en": lambda n: "one" if n == 1 else "other",
    "de": lambda n: "one" if n == 1 else "other",
}
# Digit grouping and decimal mark, as ``format`` writes them (",", ".") swapped where needed.
_NUMBER_MARKS: dict[str, tuple[str, str]] = {"en": (",", "."), "de": (".", ",")}


def language(locale: object) -> str:
    """The catalogue for a Discord locale (``discord.Locale`` or its value): an exact match
    (``"pt-BR"``), else its language (``"de-AT"`` -> ``"de"``), else English."""
    name = str(getattr(locale, "value", locale) or "").strip().lower()
    if name in CATALOGUES:
        return name
    base = name.split("-")[0]
    return base if base in CATALOGUES else DEFAULT


class _Formatter(string.Formatter):
    """``str.format`` with numbers written the language's way."""

    def __init__(self, lang: str) -> None:
        self.group, self.decimal = _NUMBER_MARKS.get(lang, (",", "."))

    def format_field(self, value: Any, format_spec: str) -> str:
        written = super().format_field(value, format_spec)
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and (self.group, self.decimal) != (",", ".")
        ):
            swap = {",": self.group, ".": self.decimal}
            written = "".join(swap.get(char, char) for char in written)
        return written


def template(key: str, locale: object = None, count: int | None = None) -> str:
    """The raw template of ``key`` in ``locale``'s language (English if that language lacks it);
    for a plural message, the form ``count`` takes."""
    lang = language(locale)
    found = CATALOGUES[lang].get(key)
    if found is None:
        lang, found = DEFAULT, CATALOGUES[DEFAULT][key]  # a KeyError here is a programming error
    if isinstance(found, str):
        return found
    if count is None:
        raise TypeError(f"message {key!r} has plural forms: pass count")
    return found[_PLURAL_RULES[lang](count)]


def text(key: str, locale: object = None, /, **placeholders: Any) -> str:
    """Message ``key`` in the language of ``locale``, its ``{placeholders}`` filled in. A plural
    message takes its form from the ``count`` placeholder."""
    count = placeholders.get("count")
    chosen = template(key, locale, count if isinstance(count, int) else None)
    lang = language(locale) if key in CATALOGUES[language(locale)] else DEFAULT
    return _Formatter(lang).format(chosen, **placeholders)


def ordinal(number: int, locale: object = None) -> str:
    """1st, 2nd, 3rd, 11th, 21st in English; 1., 2., 3. in German."""
    if language(locale) == "de":
        return f"{number}."
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def listed(items: list[str], locale: object = None) -> str:
    """ "a", "a and b", "a, b and c" (in German "a, b und c")."""
    if len(items) == 1:
        return items[0]
    return f"{', '.join(items[:-1])} {text('list.and', locale)} {items[-1]}"


def placeholders(template_text: str) -> set[str]:
    """The ``{names}`` a template uses (for the tests that compare languages)."""
    return {
        field.split(".")[0].split("[")[0]
        for _, field, _, _ in string.Formatter().parse(template_text)
        if field
    }
