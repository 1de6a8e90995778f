"""Which language a requester is answered in, and the slash commands' names in every language.

* An interaction (a command, a button, a form) carries the person's own Discord language
  (``interaction.locale``): its answers, and a DM it leads to, use that.
* A message is not an interaction and carries no language: a picture posted in the privacy
  channel, or sent by DM, is answered in the server's language (``guild.preferred_locale``), and
  so is a decision the relay sends later. A ticket does not remember its requester's language:
  it would be one more thing known about them, and the server's language is the rule.

The catalogues themselves are in :mod:`bot.i18n`; this module only reads Discord's locales.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from bot import i18n


def of_interaction(interaction: discord.Interaction) -> str:
    """The language the person who caused ``interaction`` uses Discord in ("de", "en-US")."""
    return str(interaction.locale.value)


def of_guild(client: discord.Client, guild: discord.Guild | None, guild_ids: tuple[Any, ...] = ()) -> str:
    """The server's language: ``guild``'s, or for a DM (no guild) that of the first configured
    server the bot is in (``[discord] guild_ids``); English when neither is known."""
    if guild is None:
        for guild_id in guild_ids:
            guild = client.get_guild(int(guild_id))
            if guild is not None:
                break
    if guild is None:
        return i18n.DEFAULT
    return str(guild.preferred_locale.value)


def command_str(key: str) -> app_commands.locale_str:
    """A command's name, description, or a parameter's, for a decorator: English as the default
    Discord shows, ``key`` for :class:`Translator` to find the other languages by."""
    return app_commands.locale_str(i18n.text(key), key=key)


class Translator(app_commands.Translator):
    """Slash commands in the requester's language: discord.py asks for each string marked by
    :func:`command_str` in every locale when it syncs the commands, and Discord shows each person
    the names in their client's language. English is the default and needs no localization."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,  # noqa: ARG002 (the same for every place)
    ) -> str | None:
        key = string.extras.get("key")
        if key is None:
            return None
        lang = i18n.language(locale)
        if lang == i18n.DEFAULT or key not in i18n.CATALOGUES[lang]:
            return None
        return i18n.text(key, locale)
