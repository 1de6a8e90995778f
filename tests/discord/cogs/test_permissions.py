"""Everything the bot registers, pressed by a member without the maintainer role: refused, nothing changes.

The commands are found by walking the command tree the bot builds (groups and their subcommands),
and the buttons by reading the ``DynamicItem`` templates and persistent views it registers, so a
command or button added later is tried too: unless it is on the person-facing allow-list below, it
must answer ``messages.MAINTAINERS_ONLY`` privately, write nothing to Discord and change nothing in
the ticket store. A new kind of button fails :func:`test_every_registered_button_is_known_to_this_test`
until it is given a sample ``custom_id`` here (and so is tried).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import discord
from discord import app_commands

from bot import messages
from bot.desk import Desk
from bot.tickets.models import Ticket
from tests.discord.cogs.conftest import settle
from tests.discord.cogs.test_review import (
    card_of,
    decide,
    desk_bot,
    file_entries,
    snapshot,
    take_check_failures,
    writes,
)
from tests.discord.fake_discord import EPHEMERAL, BotHarness, Person, RecordedRequest

__all__ = ["desk_bot"]  # the fixture, imported so this module can use it

# Commands for anyone: each checks who is asking itself (their own tickets, their own data).
PERSON_COMMANDS = {"check", "mytickets", "withdraw", "forget-me"}
# Buttons for anyone: Request removal (the check's owner only, by its token) and the panel's DM button.
# /forget-me's buttons carry their owner and deadline: pressed by anyone else they erase nothing.
PERSON_BUTTONS = {
    "rd:request:token-of-someone-else",
    "rd:panel:dm",
    "rd:forget:erase:1300000000000000001:4102444800",
}
# A sample custom_id for every maintainer button; {id} is a ticket id.
MAINTAINER_BUTTONS = {
    f"rd:ticket:{name}:{{id}}" for name in ("claim", "release", "approve", "reject", "reopen")
}


def leaf_commands(harness: BotHarness) -> Iterator[app_commands.Command[Any, ..., Any]]:
    """Every command a person can invoke, global and guild ones, subcommands of groups included."""
    guild = discord.Object(id=harness.world.guild_id)
    seen: set[str] = set()  # sync copies the global commands to the guild: each once
    for tree_commands in (harness.bot.tree.walk_commands(), harness.bot.tree.walk_commands(guild=guild)):
        for command in tree_commands:
            assert not isinstance(command, app_commands.ContextMenu), "teach this test context menus"
            if isinstance(command, app_commands.Command) and command.qualified_name not in seen:
                seen.add(command.qualified_name)
                yield command


def options_for(command: app_commands.Command[Any, ..., Any], ticket: Ticket) -> dict[str, Any]:
    """A plausible value for every parameter, so the command would act if the check let it."""
    options: dict[str, Any] = {}
    for parameter in command.parameters:
        annotation = parameter.type
        if annotation is discord.AppCommandOptionType.string:
            choices = [choice.value for choice in parameter.choices]
            options[parameter.name] = choices[0] if choices else ticket.id
        elif annotation is discord.AppCommandOptionType.integer:
            options[parameter.name] = 1
        elif annotation is discord.AppCommandOptionType.boolean:
            options[parameter.name] = True
        elif parameter.required:
            raise AssertionError(
                f"/{command.qualified_name}: give {parameter.name} ({annotation}) a value here"
            )
    return options


async def tickets_in_every_state(harness: BotHarness, desk: Desk) -> dict[str, tuple[Ticket, dict[str, Any]]]:
    """An open, a claimed and an approved ticket with their cards, so each button has one it could act on."""
    world = harness.world
    made: dict[str, tuple[Ticket, dict[str, Any]]] = {}
    for n, state in enumerate(("open", "claimed", "approved"), start=1):
        ticket = await file_entries(desk, str(world.member.id), (n,), note=f"note of the {state} ticket")
        card = await card_of(harness, desk, ticket)
        if state == "claimed":
            await press(harness, "claim", ticket.id, world.maintainer, card)
        elif state == "approved":
            await decide(harness, "approve", ticket.id, world.maintainer, card, reason="ok")
        made[state] = (await desk.store.get(ticket.id), card)
    await harness.bot.relay.run_once()  # type: ignore[attr-defined]
    return made


async def callback_of(harness: BotHarness, payload: dict[str, Any]) -> RecordedRequest:
    """Deliver an interaction; its callback (the role check answers in it, before anything else)."""
    harness.dispatch_interaction(payload)
    await settle(harness)
    return harness.fake.last("POST", rf"/interactions/{payload['id']}/[^/]+/callback")


async def press(
    harness: BotHarness, action: str, ticket_id: str, invoker: Person, card: Any
) -> RecordedRequest:
    custom_id = f"rd:ticket:{action}:{ticket_id}"
    return await callback_of(
        harness, harness.world.component_interaction(custom_id, message=card, invoker=invoker)
    )


async def run_command(
    harness: BotHarness, name: str, invoker: Person, options: dict[str, Any], *, dm: bool
) -> RecordedRequest:
    channel_id = None if dm else harness.world.privacy_channel_id  # where a member can type it
    payload = harness.world.command_interaction(
        name, options=options, invoker=invoker, dm=dm, channel_id=channel_id
    )
    return await callback_of(harness, payload)


def refusal_problem(callback: RecordedRequest) -> str | None:
    """None if the callback is the private refusal, else what was answered instead."""
    body = callback.json or {}
    data = body.get("data") or {}
    refused = body.get("type") == 4 and int(data.get("flags") or 0) & EPHEMERAL
    if refused and data.get("content") == messages.MAINTAINERS_ONLY:
        return None
    return f"answered {body}"


async def unguarded_commands(harness: BotHarness, desk: Desk, invoker: Person) -> dict[str, str]:
    """Every maintainer command ``invoker`` was not refused, or that changed something: name -> what."""
    ticket = await file_entries(desk, str(harness.world.member.id), (9,), note="a note")
    await desk.store.approve(ticket.id, "alice", "ok")  # something an export, a log or a queue shows
    await harness.bot.relay.run_once()  # type: ignore[attr-defined]
    problems: dict[str, str] = {}
    for command in leaf_commands(harness):
        name = command.qualified_name
        if name in PERSON_COMMANDS:
            continue
        for dm in (False, True):
            where = f"/{name} ({'DM' if dm else 'guild'})"
            before, mark = await snapshot(desk), harness.fake.mark()
            callback = await run_command(harness, name, invoker, options_for(command, ticket), dm=dm)
            if problem := refusal_problem(callback):
                problems[where] = problem
            elif await snapshot(desk) != before:
                problems[where] = "changed the ticket store"
            elif written := writes(harness.fake, mark):
                problems[where] = f"wrote to Discord: {[str(r) for r in written]}"
    take_check_failures(harness)
    return problems


async def test_every_maintainer_command_refuses_a_member_without_the_role(
    desk_bot: BotHarness, desk: Desk
) -> None:
    names = {command.qualified_name for command in leaf_commands(desk_bot)}
    assert names >= PERSON_COMMANDS, "a person-facing command is gone: update the allow-list"
    assert {"tickets queue", "removals export"} <= names  # the walk does reach subcommands

    assert await unguarded_commands(desk_bot, desk, desk_bot.world.member) == {}
    assert take_check_failures(desk_bot) == []


async def test_a_command_added_without_the_check_is_caught(desk_bot: BotHarness, desk: Desk) -> None:
    """The walk finds what a later change adds: here, an unguarded command and an unguarded subcommand."""

    @app_commands.command(name="purge-all", description="oops: no role check")
    async def purge_all(interaction: discord.Interaction) -> None:
        await desk.store.purge_expired()
        await interaction.response.send_message("done", ephemeral=True)

    class Sneaky(app_commands.Group, name="sneaky", description="a group without MaintainerCommands"):
        @app_commands.command(name="queue", description="oops")
        async def queue(self, interaction: discord.Interaction) -> None:
            await interaction.response.send_message(str(await desk.store.review_queue()), ephemeral=True)

    desk_bot.bot.tree.add_command(purge_all)
    desk_bot.bot.tree.add_command(Sneaky())

    problems = await unguarded_commands(desk_bot, desk, desk_bot.world.member)

    assert set(problems) == {
        "/purge-all (guild)",
        "/purge-all (DM)",
        "/sneaky queue (guild)",
        "/sneaky queue (DM)",
    }


def registered_buttons(harness: BotHarness) -> list[re.Pattern[str]]:
    """The custom_id patterns of every button that works after a restart: DynamicItem templates (the
    view store's table; discord.py has no public accessor) and items of persistent views."""
    store = harness.bot._connection._view_store
    patterns = list(store._dynamic_items)
    for view in harness.bot.persistent_views:
        for item in view.children:
            custom_id = getattr(item, "custom_id", None)
            if custom_id:
                patterns.append(re.compile(re.escape(custom_id)))
    return patterns


async def test_every_registered_button_is_known_to_this_test(desk_bot: BotHarness) -> None:
    samples = PERSON_BUTTONS | {sample.format(id="0ABCDE") for sample in MAINTAINER_BUTTONS}
    patterns = registered_buttons(desk_bot)
    assert patterns, "no persistent buttons found: has discord.py's view store moved?"
    unknown = [p.pattern for p in patterns if not any(p.fullmatch(sample) for sample in samples)]
    assert unknown == [], "new buttons: add a sample custom_id (person or maintainer) to this test"
    for sample in MAINTAINER_BUTTONS:  # and no sample is stale
        assert any(p.fullmatch(sample.format(id="0ABCDE")) for p in patterns), sample


async def test_every_maintainer_button_refuses_a_member_without_the_role(
    desk_bot: BotHarness, desk: Desk
) -> None:
    world = desk_bot.world
    tickets = await tickets_in_every_state(desk_bot, desk)
    where_allowed = {
        "claim": "open",
        "approve": "open",
        "reject": "open",
        "release": "claimed",
        "reopen": "approved",
    }
    problems: dict[str, str] = {}
    for sample in sorted(MAINTAINER_BUTTONS):
        action = sample.split(":")[2]
        ticket, card = tickets[where_allowed[action]]
        before, mark = await snapshot(desk), desk_bot.fake.mark()
        callback = await press(desk_bot, action, ticket.id, world.member, card)
        if problem := refusal_problem(callback):
            problems[action] = problem
        elif await snapshot(desk) != before:
            problems[action] = "changed the ticket store"
        elif writes(desk_bot.fake, mark):
            problems[action] = "wrote to Discord"
    assert problems == {}  # every press answered messages.MAINTAINERS_ONLY (assert_refused)
