"""Who may see and decide tickets: members holding the configured maintainer role. One helper,
used by every maintainer command and button.

The rule is checked at run time on every command, button press and form submission (the role may
be taken away while a form is open). ``default_permissions`` only hides the commands from others
in the client, and server admins can change that; the check cannot be.
"""

from __future__ import annotations

from typing import TypeVar

import discord
from discord import app_commands

from bot import messages
from cogs.host import DeskBot, desk_bot


def is_maintainer(bot: DeskBot, user: discord.abc.User) -> bool:
    role_id = bot.desk.settings.discord.maintainer_role_id
    return isinstance(user, discord.Member) and any(role.id == role_id for role in user.roles)


async def require_maintainer(interaction: discord.Interaction) -> bool:
    """True for a maintainer; anyone else is told, privately, and the caller does nothing."""
    if is_maintainer(desk_bot(interaction), interaction.user):
        return True
    await interaction.response.send_message(messages.MAINTAINERS_ONLY, ephemeral=True)
    return False


class MaintainerCommands(app_commands.Group):
    """A command group only maintainers may use: the role is checked on every invocation."""

    def __init__(self, bot: DeskBot) -> None:
        super().__init__()
        self.bot = bot

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return await require_maintainer(interaction)


Group = TypeVar("Group", bound=type[MaintainerCommands])


def maintainers_only(group: Group) -> Group:
    """Hide a maintainers' command group from everyone else in the client (a hint admins can
    change) and keep it out of DMs; :class:`MaintainerCommands` does the check that counts."""
    return app_commands.guild_only()(app_commands.default_permissions(manage_messages=True)(group))
