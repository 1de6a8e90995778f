"""The person's side: /check, the privacy channel, direct messages, requests and one's own data.

Thin by design: every decision is made in ``bot/`` (Desk, TicketStore, messages); this cog reads
attachments, calls the desk and answers only to the person (ephemeral replies or DMs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import messages
from bot.decoding import ImageRejectedError
from bot.desk import TryAgainError
from bot.tickets.lifecycle import TicketError
from cogs import render
from cogs.host import DeskBot, lost_form, submitted_texts
from cogs.intake_views import (
    FORGET_CONFIRM_SECONDS,
    PANEL_CUSTOM_ID,
    REQUEST_FORM,
    ResultView,
    forget_view,
    panel_view,
    submit_request,
    wall_clock,
)
from cogs.locales import command_str, of_guild, of_interaction

log = logging.getLogger(__name__)

IMAGE_TYPES = ("image/",)
# Pictures checked per message: Discord's own limit (ten attachments), so every picture a person can
# post in one message is checked. Each costs one use of the per-person check limit; pictures past it
# are named in a last answer, with when to send them again.
MAX_ATTACHMENTS = 10
# Pauses between tries of an answer DM that Discord failed (5xx): the person is waiting for it.
DM_RETRY_PAUSES = (0.5, 1.5)
# What a person posts: a plain message or a reply (a picture posted as a reply is just as visible).
PERSON_MESSAGES = (discord.MessageType.default, discord.MessageType.reply)


class Intake(commands.Cog):
    def __init__(self, bot: DeskBot) -> None:
        self.bot = bot
        self.desk = bot.desk
        self._questions: dict[int, asyncio.Task[None]] = {}  # /forget-me questions still open

    # -- checking ------------------------------------------------------------------------------

    def _attachment_problem(self, attachment: discord.Attachment, locale: str) -> str | None:
        """Refuse before downloading: the size and type Discord reports."""
        limit = self.desk.settings.decoding.max_bytes
        if attachment.size > limit:
            self.desk.metrics.refused("too_big")
            return messages.too_big(attachment.size, limit, locale=locale)
        if attachment.content_type and not attachment.content_type.startswith(IMAGE_TYPES):
            self.desk.metrics.refused("not_a_picture")
            return messages.not_a_picture(attachment.content_type, locale=locale)
        return None

    async def _download(self, attachment: discord.Attachment, locale: str) -> bytes | str:
        """The attachment's bytes, or a sentence saying why not. Signed URLs expire: read at once,
        never keep the URL. The bytes stay in memory until they are hashed."""
        problem = self._attachment_problem(attachment, locale)
        if problem:
            return problem
        try:
            return await attachment.read()
        except discord.HTTPException:
            self.desk.metrics.refused("download_failed")
            return messages.text("download_failed", locale)

    async def _check_attachment(
        self, attachment: discord.Attachment, owner: int, locale: str
    ) -> tuple[str, discord.Embed | None, discord.ui.View | None]:
        """(text, embed, view) answering one attachment; its place in the desk is taken before the
        download, so the pictures in memory stay bounded."""
        try:
            with self.desk.admit():
                return await self._answer(await self._download(attachment, locale), owner, "command", locale)
        except TryAgainError as later:
            return messages.error_text(later, locale), None, None

    async def _answer(
        self, data: bytes | str, owner: int, source: str, locale: str
    ) -> tuple[str, discord.Embed | None, discord.ui.View | None]:
        """(text, embed, view) for downloaded bytes (or the sentence why there are none), in the
        reader's language ``locale``; ``source`` (command, channel, dm) is counted in the metrics."""
        if isinstance(data, str):
            return data, None, None
        try:
            result = await self.desk.check(data, source=source)
        except ImageRejectedError as rejected:
            return messages.refused_picture(messages.error_text(rejected, locale), locale=locale), None, None
        except TryAgainError as later:  # busy, or the hashing process died
            return messages.error_text(later, locale), None, None
        finally:
            del data
        if not result.found:
            settings = self.desk.settings.discord
            no_match = messages.no_match(
                result.entries, settings.contact, result.unjudged, result.removed, locale=locale
            )
            return no_match, None, None
        view = ResultView(self.desk.remember(owner, result), locale)
        embed = render.check_result(result.found, "", locale=locale)
        return messages.matches_found(len(result.found), locale=locale), embed, view

    @app_commands.command(
        name=command_str("command.check"), description=command_str("command.check.description")
    )
    @app_commands.rename(image=command_str("command.check.image"))
    @app_commands.describe(image=command_str("command.check.image.description"))
    async def check(self, interaction: discord.Interaction, image: discord.Attachment) -> None:
        locale = of_interaction(interaction)
        wait = self.desk.check_cooldown.try_acquire(interaction.user.id)
        if wait:
            await interaction.response.send_message(messages.slow_down(wait, locale=locale), ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        text, embed, view = await self._check_attachment(image, interaction.user.id, locale)
        kwargs: dict[str, Any] = {"ephemeral": True}
        if embed is not None:
            kwargs["embed"] = embed
        if view is not None:
            kwargs["view"] = view
        await interaction.followup.send(text, **kwargs)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.type not in PERSON_MESSAGES:
            return
        in_dm = message.guild is None
        in_privacy_channel = not in_dm and await self._in_privacy_channel(message.channel)
        if not (in_dm or in_privacy_channel):
            return
        await self.handle_submission(message, delete=in_privacy_channel)

    async def _in_privacy_channel(self, channel: Any) -> bool:
        """The privacy channel or a thread under it (a picture there is just as visible)."""
        privacy = self.desk.settings.discord.privacy_channel_id
        if not privacy:
            return False
        if channel.id == privacy:
            return True
        if isinstance(channel, discord.PartialMessageable):  # a thread the cache has not seen
            try:
                channel = await self.bot.fetch_channel(channel.id)
            except discord.HTTPException:
                return False
        return isinstance(channel, discord.Thread) and channel.parent_id == privacy

    async def handle_submission(self, message: discord.Message, *, delete: bool) -> None:
        """Read the pictures, delete the message at once, then check and answer privately.

        The bytes are read before the delete because a deleted message's attachments may stop
        being served; reading takes a moment, hashing (after the delete) takes longer. Each picture
        of a message gets its own answer, which says which picture it is about (by its place: the
        file name is the person's and is never echoed, logged or stored)."""
        attachments = list(message.attachments)
        author = message.author
        checked = attachments[:MAX_ATTACHMENTS]
        allowed, wait = 0, 0.0
        for _ in checked:
            wait = self.desk.check_cooldown.try_acquire(author.id)
            if wait:
                break
            allowed += 1
        locale = self.server_locale(message.guild)
        with contextlib.ExitStack() as places:  # each picture's place, from before its download
            downloads = [
                await self._download_in_place(attachment, places, locale) for attachment in checked[:allowed]
            ]
            await self._answer_submission(
                message, attachments, downloads, (allowed, wait), delete=delete, locale=locale
            )

    def server_locale(self, guild: discord.Guild | None) -> str:
        """The language a message (not an interaction) is answered in: the server's."""
        return of_guild(self.bot, guild, self.desk.settings.discord.guild_ids)

    async def _download_in_place(
        self, attachment: discord.Attachment, places: contextlib.ExitStack, locale: str
    ) -> bytes | str:
        """The picture's bytes once the desk has a place for it, or the sentence why not (busy)."""
        try:
            places.enter_context(self.desk.admit(another=True))
        except TryAgainError as later:
            return messages.error_text(later, locale)
        return await self._download(attachment, locale)

    async def _answer_submission(
        self,
        message: discord.Message,
        attachments: list[discord.Attachment],
        downloads: list[bytes | str],
        limit: tuple[int, float],
        *,
        delete: bool,
        locale: str,
    ) -> None:
        """``limit``: how many pictures the per-person limit allowed, and when the rest may come."""
        author, channel = message.author, message.channel
        allowed, wait = limit
        deleted = await self._delete(message) if delete else False
        if not attachments:
            if delete or not message.content.startswith("/"):
                await self._tell(author, channel, messages.text("send_a_picture", locale), delete, locale)
            return
        if not allowed:
            await self._tell(author, channel, messages.slow_down(wait, locale=locale), delete, locale)
            return
        count = len(attachments)
        for position, data in enumerate(downloads, 1):
            text, embed, view = await self._answer(data, author.id, "channel" if delete else "dm", locale)
            downloads[position - 1] = b""  # the picture is dropped as soon as it is checked
            if count > 1:
                text = f"{messages.which_picture(position, count, locale=locale)}\n{text}"
            if delete and position == 1:
                gone = messages.text("picture.deleted" if deleted else "picture.not_deleted", locale)
                text = f"{gone}\n{text}"
            if not await self._tell(author, channel, text, delete, locale, embed=embed, view=view):
                if isinstance(view, ResultView):
                    self.desk.drop(view.token)  # nobody can ever press its button
                return
        if allowed < count:
            left = list(range(allowed + 1, count + 1))
            unchecked = messages.pictures_not_checked(left, count, wait, locale=locale)
            await self._tell(author, channel, unchecked, delete, locale)

    async def _delete(self, message: discord.Message) -> bool:
        """Delete a submission; if Discord refuses, still answer the person (and log why)."""
        try:
            await message.delete()
        except discord.NotFound:
            return True  # already gone
        except discord.HTTPException as failed:
            log.warning("could not delete message %s in the privacy channel: %s", message.id, failed)
            return False
        return True

    async def _tell(
        self,
        author: discord.User | discord.Member,
        channel: Any,
        text: str,
        public_channel: bool,
        locale: str,
        **kwargs: Any,
    ) -> bool:
        """DM the person; in a public channel fall back to a short, self-deleting mention."""
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        notice = messages.dm_closed_notice
        for pause in (*DM_RETRY_PAUSES, None):
            try:
                await author.send(text, **kwargs)
                return True
            except discord.Forbidden:
                break
            except discord.HTTPException as failed:  # Discord's own trouble: worth another try
                log.warning(
                    "the answer DM failed (%s); %s", failed.status, "retrying" if pause else "giving up"
                )
                notice = messages.dm_failed_notice
                if pause is None:
                    break
                await asyncio.sleep(pause)
        if public_channel:
            await channel.send(
                notice(author.mention, locale=locale),
                delete_after=60,
                allowed_mentions=discord.AllowedMentions(users=[author], everyone=False, roles=False),
            )
        return False

    async def process_backlog(self) -> int:
        """Handle pictures posted in the privacy channel while the bot was offline; pin the panel."""
        channel_id = self.desk.settings.discord.privacy_channel_id
        channel = self.bot.get_channel(channel_id) if channel_id else None
        if not isinstance(channel, discord.TextChannel):
            return 0
        handled = 0
        panel: discord.Message | None = None  # the bot's panel from an earlier start, pinned or not
        try:  # never let a missing permission here stop the rest of the start-up (the relay)
            async for message in channel.history(limit=None, oldest_first=True):
                if self._is_panel(message):
                    panel = message
                if message.author.bot or message.pinned or message.type not in PERSON_MESSAGES:
                    continue
                try:
                    await self.handle_submission(message, delete=True)
                except discord.HTTPException as failed:
                    log.warning("could not handle message %s in the privacy channel: %s", message.id, failed)
                    continue
                handled += 1
            await self._ensure_panel(channel, panel)
        except discord.HTTPException as failed:
            log.warning(
                "privacy channel backlog or panel failed (the bot needs View Channel, Read Message "
                "History, Send Messages and Manage Messages there): %s",
                failed,
            )
        return handled

    def _is_panel(self, message: discord.Message) -> bool:
        """The bot's own panel: its message with the Check privately button (``rd:panel:dm``)."""
        me = self.bot.user
        if me is None or message.author.id != me.id:
            return False
        return any(
            getattr(child, "custom_id", None) == PANEL_CUSTOM_ID
            for row in message.components
            for child in getattr(row, "children", ())
        )

    async def _ensure_panel(self, channel: discord.TextChannel, panel: discord.Message | None) -> None:
        """One panel, pinned if the bot may: an earlier start's panel is reused (and pinned again if
        it is not), so a bot that cannot pin does not post another panel at every start."""
        if panel is not None and panel.pinned:
            return
        if panel is None:
            locale = self.server_locale(channel.guild)
            panel = await channel.send(messages.text("panel", locale), view=panel_view(locale))
        try:
            await panel.pin(reason="removal-desk: how to check a picture privately")
        except discord.Forbidden as refused:
            log.warning(
                "could not pin the panel in the privacy channel: the bot needs the Pin Messages "
                "permission there (since 2026-02-23 Discord no longer lets Manage Messages pin); "
                "the panel stays unpinned: %s",
                refused,
            )

    # -- one's own requests and data -----------------------------------------------------------

    @app_commands.command(
        name=command_str("command.mytickets"), description=command_str("command.mytickets.description")
    )
    async def mytickets(self, interaction: discord.Interaction) -> None:
        locale = of_interaction(interaction)
        tickets = await self.desk.store.list_tickets(requester=str(interaction.user.id))
        if not tickets:
            await interaction.response.send_message(messages.text("no_requests", locale), ephemeral=True)
            return
        lines = [render.ticket_line(ticket, locale=locale) for ticket in tickets]
        await interaction.response.send_message(messages.fit(lines), ephemeral=True)

    @app_commands.command(
        name=command_str("command.withdraw"), description=command_str("command.withdraw.description")
    )
    @app_commands.rename(ticket=command_str("command.withdraw.ticket"))
    @app_commands.describe(ticket=command_str("command.withdraw.ticket.description"))
    async def withdraw(self, interaction: discord.Interaction, ticket: str) -> None:
        locale = of_interaction(interaction)
        try:
            result = await self.desk.store.withdraw(ticket, str(interaction.user.id))
        except TicketError as refused:
            await interaction.response.send_message(messages.error_text(refused, locale), ephemeral=True)
            return
        answer = messages.withdrawn(result.ticket.id, locale=locale)
        await interaction.response.send_message(answer, ephemeral=True)

    @app_commands.command(
        name=command_str("command.forget-me"), description=command_str("command.forget-me.description")
    )
    async def forget_me(self, interaction: discord.Interaction) -> None:
        locale = of_interaction(interaction)
        until = int(wall_clock() + FORGET_CONFIRM_SECONDS)
        await interaction.response.send_message(
            messages.forget_confirm(locale=locale),
            view=forget_view(interaction.user.id, until, locale),
            ephemeral=True,
        )
        # Once the time is up the question says so, rather than leaving buttons that only refuse.
        self._questions[interaction.id] = asyncio.create_task(self._expire(interaction))

    async def _expire(self, question: discord.Interaction) -> None:
        await asyncio.sleep(FORGET_CONFIRM_SECONDS)
        if self._questions.pop(question.id, None) is None:
            return
        try:
            expired = messages.text("forget_expired", of_interaction(question))
            await question.edit_original_response(content=expired, view=None)
        except discord.HTTPException as failed:  # dismissed by the person, or Discord is down
            log.info("could not mark a /forget-me question as expired: %s", failed)

    def answered(self, question: discord.Message) -> None:
        """A button of the /forget-me question was pressed: it no longer needs to expire."""
        metadata = question.interaction_metadata
        task = self._questions.pop(metadata.id, None) if metadata is not None else None
        if task is not None:
            task.cancel()

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """A request form submitted after a restart: discord.py no longer knows it, so it is
        answered here from what the submit carries (filed if the check is still known)."""
        match = await lost_form(interaction, REQUEST_FORM)
        if match is None:
            return
        note = next((text for text in submitted_texts(interaction) if text), None)
        expired = messages.request_form_expired(note, locale=of_interaction(interaction))
        await submit_request(interaction, match["token"], note, expired)

    async def cog_unload(self) -> None:
        for task in self._questions.values():
            task.cancel()
        self._questions.clear()
