"""The root of every error removal-desk raises on purpose.

Each part of the core raises its own kind (a bad setting, a refused picture, an index it cannot
read, a ticket action that is not allowed), and each says in its message what went wrong for the
person who reads it. Front ends catch :class:`RemovalDeskError` once to print that message instead
of a traceback; anything else that escapes is a bug.

The kinds that were ``ValueError`` or ``RuntimeError`` before this root existed still are, so code
that caught those keeps working.
"""

from __future__ import annotations

from typing import Self


class RemovalDeskError(Exception):
    """An error whose message is meant for the person running the command or the bot."""

    # The message's id in the requester's language catalogue (:mod:`bot.i18n`) and its
    # placeholders, for an error a requester may read: a front end that knows the reader's language
    # says it in that language (:func:`bot.messages.error_text`); ``str(error)`` stays English.
    message_key: str | None = None
    message_params: dict[str, object]

    def translatable(self, key: str, **params: object) -> Self:
        """This error, marked with catalogue message ``key`` and its ``params``."""
        self.message_key, self.message_params = key, params
        return self
