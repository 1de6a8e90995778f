"""The person's buttons and forms: Request removal, the panel's Check privately, /forget-me's
confirmation, and the request form. Each keeps working after a restart: its ``custom_id`` says
what it is for (``DynamicItem``), and a form submitted after a restart is answered from what the
submit carries."""

from __future__ import annotations

import re
import time
from typing import Any, Protocol, runtime_checkable

import discord

from bot import messages
from bot.desk import TryAgainError
from bot.tickets.lifecycle import TicketError
from cogs.host import DeskModal, desk_bot
from cogs.locales import of_interaction


class RequestRemovalButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"rd:request:(?P<token>[\w-]+)"
):
    """Persistent: after a restart the button still answers (that the check expired). Its label is
    in the language of the answer it is under (rebuilt from its ``custom_id``, it is never shown)."""

    def __init__(self, token: str, locale: str | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=messages.text("label.request_removal", locale),
                style=discord.ButtonStyle.danger,
                custom_id=f"rd:request:{token}",
            )
        )
        self.token = token

    @classmethod
    async def from_custom_id(
        cls, _interaction: discord.Interaction, _item: discord.ui.Item[Any], match: Any
    ) -> RequestRemovalButton:
        return cls(match["token"])

    async def callback(self, interaction: discord.Interaction) -> None:
        bot = desk_bot(interaction)
        locale = of_interaction(interaction)
        if bot.desk.recall(self.token, interaction.user.id) is None:
            filed = bot.desk.filed_ticket(self.token, interaction.user.id)
            text = (
                messages.already_requested(filed, locale=locale)
                if filed
                else messages.check_expired(locale=locale)
            )
            await interaction.response.send_message(text, ephemeral=True)
            return
        await interaction.response.send_modal(
            RequestModal(self.token, timeout=bot.desk.settings.discord.pending_check_seconds, locale=locale)
        )


REQUEST_FORM = re.compile(r"rd:request-modal:(?P<token>[\w-]+)")


class RequestModal(DeskModal, title=messages.REQUEST_REMOVAL_LABEL):
    """The request form, in the language of the person who pressed Request removal."""

    def __init__(self, token: str, timeout: float, locale: str | None = None) -> None:
        # A dismissed modal is never submitted; the timeout lets it go with the check it belongs to.
        super().__init__(
            title=messages.text("label.request_removal", locale),
            custom_id=f"rd:request-modal:{token}",
            timeout=timeout,
        )
        self.token = token
        self.note: discord.ui.TextInput[RequestModal] = discord.ui.TextInput(
            label=messages.text("label.note", locale),
            style=discord.TextStyle.paragraph,
            required=False,
            max_length=1000,
            placeholder=messages.text("note_warning", locale)[:100],
            custom_id="rd:note",
        )
        self.add_item(self.note)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        expired = messages.check_expired(locale=of_interaction(interaction))
        await submit_request(interaction, self.token, self.note.value or None, expired)


async def submit_request(
    interaction: discord.Interaction, token: str, note: str | None, expired: str
) -> None:
    """File the request behind a submitted form (the live modal, or one from before a restart)."""
    bot = desk_bot(interaction)
    locale = of_interaction(interaction)
    wait = bot.desk.request_cooldown.try_acquire(interaction.user.id)
    if wait:
        await interaction.response.send_message(
            messages.requests_slow_down(wait, locale=locale), ephemeral=True
        )
        return
    await interaction.response.defer(ephemeral=True, thinking=True)
    try:
        ticket = await bot.desk.request_removal(token, interaction.user.id, note)
    except (TicketError, TryAgainError) as refused:  # TryAgainError: the index could not be read now
        await interaction.followup.send(messages.error_text(refused, locale), ephemeral=True)
        return
    if ticket is None:
        filed = bot.desk.filed_ticket(token, interaction.user.id)  # the form sent twice
        await interaction.followup.send(
            messages.already_requested(filed, locale=locale) if filed else expired, ephemeral=True
        )
        return
    await interaction.followup.send(messages.ticket_created(ticket, locale=locale), ephemeral=True)
    await bot.relay.run_once()  # its review card appears now, not at the next relay tick


PANEL_CUSTOM_ID = "rd:panel:dm"


class PanelButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=PANEL_CUSTOM_ID):
    """The privacy channel's pinned panel: opens a direct message with the bot."""

    def __init__(self, locale: str | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=messages.text("label.check_privately", locale),
                style=discord.ButtonStyle.primary,
                custom_id=PANEL_CUSTOM_ID,
            )
        )

    @classmethod
    async def from_custom_id(
        cls, _interaction: discord.Interaction, _item: discord.ui.Item[Any], _match: Any
    ) -> PanelButton:
        return cls()

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)  # a DM can take > 3 s
        locale = of_interaction(interaction)  # the DM it leads to is in the presser's language too
        try:
            await interaction.user.send(messages.text("send_picture_here", locale))
        except discord.HTTPException:
            await interaction.followup.send(messages.text("cannot_dm", locale), ephemeral=True)
            return
        await interaction.followup.send(messages.text("dm_sent", locale), ephemeral=True)


def panel_view(locale: str | None = None) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(PanelButton(locale))
    return view


# How long the /forget-me question may be answered. The deadline travels in the buttons' custom_id,
# so a press after a restart (or from a client still showing the buttons) is answered too.
FORGET_CONFIRM_SECONDS: float = 120


def wall_clock() -> float:
    """Seconds since the epoch: a deadline that must hold across restarts (not the monotonic clock)."""
    return time.time()


@runtime_checkable
class ExpiringQuestions(Protocol):
    """The cog that edits an unanswered /forget-me question when its time runs out (cogs.intake)."""

    def answered(self, question: discord.Message) -> None: ...


class ForgetButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"rd:forget:(?P<choice>erase|keep):(?P<owner>\d+):(?P<until>\d+)",
):
    """Erase my data / Cancel under the /forget-me question: stateless, so it answers after a
    restart as before it (and says the question expired once its deadline passed)."""

    def __init__(self, choice: str, owner: int, until: int, locale: str | None = None) -> None:
        erase = choice == "erase"
        super().__init__(
            discord.ui.Button(
                label=messages.text("label.erase_my_data" if erase else "label.cancel", locale),
                style=discord.ButtonStyle.danger if erase else discord.ButtonStyle.secondary,
                custom_id=f"rd:forget:{choice}:{owner}:{until}",
            )
        )
        self.choice, self.owner, self.until = choice, owner, until

    @classmethod
    async def from_custom_id(
        cls, _interaction: discord.Interaction, _item: discord.ui.Item[Any], match: Any
    ) -> ForgetButton:
        return cls(match["choice"], int(match["owner"]), int(match["until"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        bot = desk_bot(interaction)
        locale = of_interaction(interaction)
        if interaction.user.id != self.owner:
            await interaction.response.send_message(messages.text("not_your_button", locale), ephemeral=True)
            return
        intake = bot.get_cog("Intake")
        if isinstance(intake, ExpiringQuestions) and interaction.message is not None:
            intake.answered(interaction.message)
        if wall_clock() > self.until:
            await interaction.response.edit_message(
                content=messages.text("forget_expired", locale), view=None
            )
            return
        if self.choice != "erase":
            await interaction.response.edit_message(
                content=messages.text("nothing_erased", locale), view=None
            )
            return
        count = await bot.desk.store.forget(str(self.owner))
        await interaction.response.edit_message(content=messages.forgotten(count, locale=locale), view=None)


def forget_view(owner: int, until: int, locale: str | None = None) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(ForgetButton("erase", owner, until, locale))
    view.add_item(ForgetButton("keep", owner, until, locale))
    return view


class ResultView(discord.ui.View):
    """A check's answer: the Request removal button for the remembered check ``token``."""

    def __init__(self, token: str, locale: str | None = None) -> None:
        super().__init__(timeout=None)
        self.token = token
        self.add_item(RequestRemovalButton(token, locale))
