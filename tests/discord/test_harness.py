"""Proof that the fake-Discord harness drives real discord.py code paths.

The cog, view and modal below live in this file on purpose (not in ``cogs/``): they are the smallest
things that exercise each path a real cog test needs - a slash command with an attachment option that
defers and follows up, role checks on the invoking member, a modal with a text input and a file upload, a
persistent view clicked after a restart, an ``on_message`` listener that deletes and DMs (and survives a
403 on the DM), ``channel.history()``, command sync, error collection, unknown routes and rate limits.
Read them as examples of how to write cog tests with ``tests/discord/fake_discord.py``.
"""

from __future__ import annotations

import io

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.discord.fake_discord import (
    CANNOT_DM,
    EPHEMERAL,
    BotHarness,
    FakeDiscord,
    World,
    default_intents,
    message_payload,
    running_bot,
    user_payload,
)

CALLBACK = r"/interactions/\d+/[^/]+/callback"
FOLLOWUP = r"/webhooks/\d+/[^/]+"


class ReviewPanel(discord.ui.View):
    """A persistent view: no timeout and a button with a stable ``custom_id``."""

    def __init__(self, clicks: list[int]) -> None:
        super().__init__(timeout=None)
        self.clicks = clicks

    @discord.ui.button(label="Claim", style=discord.ButtonStyle.primary, custom_id="review:claim")
    async def claim(self, interaction: discord.Interaction, _button: discord.ui.Button[ReviewPanel]) -> None:
        self.clicks.append(interaction.user.id)
        await interaction.response.send_message(f"claimed by {interaction.user.name}", ephemeral=True)


class ReportModal(discord.ui.Modal, title="Report a picture"):
    """A text input (sent in an action row) and a file upload (sent in a label)."""

    note: discord.ui.TextInput[ReportModal] = discord.ui.TextInput(
        label="What is it?", custom_id="report:note", style=discord.TextStyle.paragraph
    )
    picture: discord.ui.Label[ReportModal] = discord.ui.Label(
        text="The picture", component=discord.ui.FileUpload(custom_id="report:picture")
    )

    def __init__(self) -> None:
        super().__init__(custom_id="report:modal")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        upload = self.picture.component
        assert isinstance(upload, discord.ui.FileUpload)
        data = await upload.values[0].read()
        await interaction.response.send_message(f"{self.note.value}: {len(data)} bytes", ephemeral=True)


class Desk(commands.Cog):
    """The tiny cog under test."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.forbidden: list[discord.Forbidden] = []

    @app_commands.command(name="echo", description="Count the bytes of a picture.")
    async def echo(self, interaction: discord.Interaction, image: discord.Attachment) -> None:
        await interaction.response.defer(ephemeral=True)
        data = await image.read()
        await interaction.followup.send(f"{len(data)} bytes", ephemeral=True)

    @app_commands.command(name="whoami", description="Say whether you are a maintainer.")
    async def whoami(self, interaction: discord.Interaction) -> None:
        roles = interaction.user.roles if isinstance(interaction.user, discord.Member) else []
        is_maintainer = any(role.id == self.world.maintainer_role_id for role in roles)
        await interaction.response.send_message(
            "maintainer" if is_maintainer else "not a maintainer", ephemeral=True
        )

    @app_commands.command(name="report", description="Report a picture privately.")
    async def report(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(ReportModal())

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if (
            message.author.bot
            or message.channel.id != self.world.privacy_channel_id
            or not message.attachments
        ):
            return
        await message.delete()
        try:
            await message.author.send("I removed your picture from #privacy: send it to me here instead.")
        except discord.Forbidden as exc:
            self.forbidden.append(exc)
            await message.channel.send(
                f"{message.author.mention} I removed your picture; open your DMs to me."
            )


@pytest.fixture
async def desk(harness: BotHarness) -> Desk:
    cog = Desk(harness.world)
    await harness.bot.add_cog(cog)
    return cog


def requests_after_login(fake: FakeDiscord) -> list[str]:
    return [str(r) for r in fake.requests[2:]]


async def test_login_goes_through_the_fake_and_the_guild_is_cached(harness: BotHarness, world: World) -> None:
    login = harness.fake.requests[:2]
    assert [str(r) for r in login] == ["GET /users/@me -> 200", "GET /oauth2/applications/@me -> 200"]
    assert login[0].headers["Authorization"] == "Bot fake-token"
    bot = harness.bot
    assert bot.user is not None
    assert bot.user.id == bot.application_id == world.application_id
    assert bot.is_ready()

    guild = bot.get_guild(world.guild_id)
    assert guild is not None
    assert guild.me.id == world.application_id
    review = guild.get_channel(world.review_channel_id)
    assert isinstance(review, discord.TextChannel)
    assert [c.name for c in guild.text_channels] == ["privacy", "review", "log"]
    maintainer, member = guild.get_member(world.maintainer.id), guild.get_member(world.member.id)
    assert maintainer is not None
    assert member is not None
    assert [role.name for role in maintainer.roles] == ["@everyone", "Maintainer"]
    assert guild.get_member(world.outsider.id) is None
    assert review.permissions_for(maintainer).view_channel
    assert not review.permissions_for(member).view_channel
    assert review.permissions_for(guild.me).manage_messages
    # The World's own permission arithmetic (used in interaction payloads) agrees with discord.py's.
    for person, discord_member in ((world.maintainer, maintainer), (world.member, member)):
        for channel in guild.text_channels:
            assert world.permissions_in(person, channel.id) == channel.permissions_for(discord_member).value


@pytest.mark.parametrize("dm", [False, True], ids=["guild-member", "dm-outsider"])
async def test_echo_defers_ephemerally_reads_the_attachment_and_follows_up(
    harness: BotHarness, desk: Desk, world: World, dm: bool
) -> None:
    picture = harness.fake.add_attachment(b"\x89PNG" + bytes(96), "photo.png", "image/png")
    payload = world.command_interaction(
        "echo", options={"image": picture}, invoker=world.outsider if dm else world.member, dm=dm
    )
    harness.dispatch_interaction(payload)
    await harness.idle()

    assert requests_after_login(harness.fake) == [
        f"POST /interactions/{payload['id']}/{payload['token']}/callback -> 200",
        f"GET {picture['url'].split('?')[0].removeprefix(harness.fake.base_url)} -> 200",
        f"POST /webhooks/{world.application_id}/{payload['token']} -> 200",
    ]
    callback = harness.fake.last("POST", CALLBACK)
    assert callback.json == {"type": 5, "data": {"flags": EPHEMERAL}}
    assert harness.fake.last("GET", r"/attachments/.+").response == b"\x89PNG" + bytes(96)
    followup = harness.fake.last("POST", FOLLOWUP)
    assert followup.json["content"] == "100 bytes"
    assert followup.json["flags"] == EPHEMERAL
    assert followup.query["wait"] == "1"
    # Discord made the first follow-up the deferred "thinking" message, still ephemeral.
    assert followup.response["id"] == callback.response["resource"]["message"]["id"]
    assert followup.response["flags"] == EPHEMERAL
    assert harness.fake.channel_messages(int(payload["channel_id"])) == []  # ephemeral: not in history


@pytest.mark.parametrize(
    ("who", "answer"),
    [("maintainer", "maintainer"), ("member", "not a maintainer")],
    ids=["with-role", "without"],
)
async def test_command_sees_the_invoking_members_roles(
    harness: BotHarness, desk: Desk, world: World, who: str, answer: str
) -> None:
    harness.dispatch_interaction(world.command_interaction("whoami", invoker=getattr(world, who)))
    callback = await harness.fake.wait_for("POST", CALLBACK)
    assert callback.json["type"] == 4
    assert callback.json["data"]["content"] == answer
    assert callback.json["data"]["flags"] == EPHEMERAL


async def test_persistent_view_is_clicked_after_a_restart(fake: FakeDiscord, world: World) -> None:
    clicks: list[int] = []
    async with running_bot(fake, world=world) as first:
        sent = await first.text_channel(world.review_channel_id).send(
            "Ticket 7 needs a reviewer", view=ReviewPanel(clicks)
        )
        posted = fake.last("POST", rf"/channels/{world.review_channel_id}/messages")
        assert posted.json["components"][0]["components"][0]["custom_id"] == "review:claim"
        first.assert_no_errors()
    panel = fake.find_message(sent.id)
    assert panel is not None

    async with running_bot(fake, world=world) as second:  # a new process: only add_view knows the view
        second.bot.add_view(ReviewPanel(clicks))
        click = world.component_interaction("review:claim", message=panel, invoker=world.maintainer)
        second.dispatch_interaction(click)
        await second.idle()
        second.assert_no_errors()

    assert clicks == [world.maintainer.id]
    assert discord.http.Route.BASE == "https://discord.com/api/v10"  # restored after each bot
    callback = fake.last("POST", CALLBACK)
    assert callback.path == f"/interactions/{click['id']}/{click['token']}/callback"
    assert callback.json["type"] == 4
    assert callback.json["data"]["content"] == "claimed by maria"


async def test_modal_round_trip_with_text_and_file_upload(
    harness: BotHarness, desk: Desk, world: World
) -> None:
    harness.dispatch_interaction(world.command_interaction("report", invoker=world.member))
    await harness.idle()
    shown = harness.fake.last("POST", CALLBACK)
    assert shown.json["type"] == 9
    assert shown.json["data"]["custom_id"] == "report:modal"
    assert [c["type"] for c in shown.json["data"]["components"]] == [1, 18]  # action row, label

    picture = harness.fake.add_attachment(b"x" * 42, "me.jpg", "image/jpeg")
    submit = world.modal_submit_from_callback(shown, {"report:note": "my face", "report:picture": [picture]})
    harness.dispatch_interaction(submit)
    await harness.idle()

    answer = harness.fake.last("POST", CALLBACK)
    assert answer.path == f"/interactions/{submit['id']}/{submit['token']}/callback"
    assert answer.json["type"] == 4
    assert answer.json["data"]["content"] == "my face: 42 bytes"
    assert answer.json["data"]["flags"] == EPHEMERAL
    with pytest.raises(ValueError, match="required"):
        world.modal_submit_from_callback(shown, {"report:note": "no picture"})


async def test_on_message_deletes_the_picture_and_dms_the_author(
    harness: BotHarness, desk: Desk, world: World
) -> None:
    picture = harness.fake.add_attachment(
        b"jpeg", "me.jpg", "image/jpeg", channel_id=world.privacy_channel_id
    )
    posted = world.message_create("this is me", author=world.member, attachments=[picture])
    harness.dispatch_message(posted)
    dm = await harness.fake.wait_for("POST", rf"/channels/{world.member.dm_channel_id}/messages")

    assert requests_after_login(harness.fake) == [
        f"DELETE /channels/{world.privacy_channel_id}/messages/{posted['id']} -> 204",
        "POST /users/@me/channels -> 200",
        f"POST /channels/{world.member.dm_channel_id}/messages -> 200",
    ]
    assert harness.fake.last("POST", "/users/@me/channels").json == {"recipient_id": world.member.id}
    assert dm.json["content"].startswith("I removed your picture")
    assert harness.fake.channel_messages(world.privacy_channel_id) == []
    assert desk.forbidden == []


async def test_a_refused_dm_is_a_forbidden_the_listener_handles(
    harness: BotHarness, desk: Desk, world: World
) -> None:
    harness.fake.fail("POST", rf"/channels/{world.member.dm_channel_id}/messages", 403, CANNOT_DM)
    picture = harness.fake.add_attachment(
        b"jpeg", "me.jpg", "image/jpeg", channel_id=world.privacy_channel_id
    )
    harness.dispatch_message(world.message_create("this is me", author=world.member, attachments=[picture]))
    await harness.idle()

    assert [(e.status, e.code, e.text) for e in desk.forbidden] == [
        (403, 50007, "Cannot send messages to this user")
    ]
    fallback = harness.fake.last("POST", rf"/channels/{world.privacy_channel_id}/messages")
    assert fallback.json["content"] == f"{world.member.mention} I removed your picture; open your DMs to me."
    assert [m["content"] for m in harness.fake.channel_messages(world.privacy_channel_id)] == [
        fallback.json["content"]
    ]


async def test_history_pages_through_the_backlog(harness: BotHarness, world: World) -> None:
    channel_id = world.log_channel_id
    author = world.maintainer.user_payload()
    backlog = [
        message_payload(channel_id=channel_id, author=author, content=f"entry {i}") for i in range(150)
    ]
    harness.fake.add_history(channel_id, backlog)
    channel = harness.text_channel(channel_id)

    newest_first = [m async for m in channel.history(limit=None)]
    assert [m.content for m in newest_first] == [f"entry {i}" for i in reversed(range(150))]
    assert isinstance(newest_first[0].author, discord.Member)
    assert newest_first[0].author.id == world.maintainer.id
    pages = harness.fake.find("GET", rf"/channels/{channel_id}/messages")
    assert [p.query for p in pages] == [{"limit": "100"}, {"limit": "100", "before": backlog[50]["id"]}]

    after = [m.content async for m in channel.history(limit=5, after=discord.Object(int(backlog[139]["id"])))]
    assert after == [f"entry {i}" for i in range(140, 145)]


async def test_tree_sync_is_answered_with_ids(harness: BotHarness, desk: Desk, world: World) -> None:
    synced = await harness.bot.tree.sync()
    assert sorted(c.name for c in synced) == ["echo", "report", "whoami"]
    assert all(c.id and c.application_id == world.application_id for c in synced)
    sent = harness.fake.last("PUT", rf"/applications/{world.application_id}/commands")
    echo = next(c for c in sent.json if c["name"] == "echo")
    assert [(o["name"], o["type"]) for o in echo["options"]] == [("image", 11)]  # ATTACHMENT

    guild = discord.Object(world.guild_id)
    harness.bot.tree.copy_global_to(guild=guild)
    assert len(await harness.bot.tree.sync(guild=guild)) == 3
    assert harness.fake.find("PUT", rf"/applications/\d+/guilds/{world.guild_id}/commands")


async def test_handler_errors_are_collected(harness: BotHarness, desk: Desk, world: World) -> None:
    async def on_message(message: discord.Message) -> None:
        raise RuntimeError(f"boom: {message.content}")

    harness.bot.add_listener(on_message)
    harness.dispatch_message(world.message_create("hello"))
    await harness.idle()
    assert [str(e) for e in harness.exceptions] == ["boom: hello"]
    harness.errors.clear()  # expected: keep the harness fixture's teardown check quiet


async def test_unknown_routes_are_reported_and_can_be_added(harness: BotHarness, world: World) -> None:
    outsider = discord.Object(world.outsider.id)
    with pytest.raises(discord.NotFound):
        await harness.guild.fetch_ban(outsider)
    assert [r.path for r in harness.fake.unhandled] == [f"/guilds/{world.guild_id}/bans/{world.outsider.id}"]
    harness.fake.unhandled.clear()

    ban = {"user": user_payload(world.outsider.id, "olga"), "reason": "spam"}
    harness.fake.route("GET", rf"/guilds/{world.guild_id}/bans/\d+", (200, ban))
    assert (await harness.guild.fetch_ban(outsider)).reason == "spam"


async def test_rate_limits_are_retried_by_discord_py(harness: BotHarness, world: World) -> None:
    rule = harness.fake.fail("POST", rf"/channels/{world.log_channel_id}/messages", 429, times=1)
    sent = await harness.text_channel(world.log_channel_id).send("audit entry")
    assert rule.hits == 1
    statuses = [r.status for r in harness.fake.find("POST", rf"/channels/{world.log_channel_id}/messages")]
    assert statuses == [429, 200]
    assert harness.fake.find_message(sent.id) is not None


class Picker(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.select(
        custom_id="picker:size",
        options=[discord.SelectOption(label="small"), discord.SelectOption(label="large")],
    )
    async def size(self, interaction: discord.Interaction, select: discord.ui.Select[Picker]) -> None:
        await interaction.response.edit_message(content=f"picked {select.values[0]}", view=None)


async def test_select_updates_the_clicked_message(harness: BotHarness, world: World) -> None:
    sent = await harness.text_channel(world.review_channel_id).send("Which size?", view=Picker())
    panel = harness.fake.find_message(sent.id)
    assert panel is not None
    pick = world.component_interaction(
        "picker:size", message=panel, component_type=3, values=["large"], invoker=world.maintainer
    )
    harness.dispatch_interaction(pick)
    await harness.idle()

    callback = harness.fake.last("POST", CALLBACK)
    assert callback.json == {"type": 7, "data": {"tts": False, "content": "picked large", "components": []}}
    assert panel["content"] == "picked large"  # the fake updated the stored message
    assert panel["components"] == []


class Tickets(commands.GroupCog, group_name="ticket"):
    @app_commands.command(name="approve", description="Approve a ticket.")
    async def approve(
        self, interaction: discord.Interaction, ticket: int, reason: str, urgent: bool = False
    ) -> None:
        await interaction.response.send_message(f"ticket {ticket} approved ({reason}, urgent={urgent})")
        original = await interaction.original_response()
        await interaction.edit_original_response(content=original.content + " and logged")
        receipt = discord.File(io.BytesIO(b"ticket,reason\n"), "receipt.csv")
        await interaction.followup.send("receipt", file=receipt, ephemeral=True)


async def test_subcommand_options_original_response_and_a_file(harness: BotHarness, world: World) -> None:
    await harness.bot.add_cog(Tickets())
    approve = world.command_interaction(
        "ticket approve",
        options={"ticket": 7, "reason": "a private photo", "urgent": True},
        invoker=world.maintainer,
    )
    harness.dispatch_interaction(approve)
    await harness.idle()

    webhook = f"/webhooks/{world.application_id}/{approve['token']}"
    assert requests_after_login(harness.fake) == [
        f"POST /interactions/{approve['id']}/{approve['token']}/callback -> 200",
        f"GET {webhook}/messages/@original -> 200",
        f"PATCH {webhook}/messages/@original -> 200",
        f"POST {webhook} -> 200",
    ]
    stored = harness.fake.channel_messages(world.privacy_channel_id)
    assert [m["content"] for m in stored] == ["ticket 7 approved (a private photo, urgent=True) and logged"]
    followup = harness.fake.last("POST", FOLLOWUP)
    assert [(f.filename, f.data) for f in followup.files] == [("receipt.csv", b"ticket,reason\n")]
    assert followup.json["attachments"] == [{"id": 0, "filename": "receipt.csv"}]


async def test_without_message_content_guild_messages_arrive_empty(fake: FakeDiscord, world: World) -> None:
    intents = default_intents()
    intents.message_content = False
    async with running_bot(fake, world=world, intents=intents) as harness:
        desk = Desk(world)
        await harness.bot.add_cog(desk)
        picture = fake.add_attachment(b"jpeg", "me.jpg", "image/jpeg", channel_id=world.privacy_channel_id)
        harness.dispatch_message(world.message_create("this is me", attachments=[picture]))
        await harness.idle()
        harness.assert_no_errors()
    assert fake.find("DELETE") == []  # the listener saw no attachment, so it did nothing
