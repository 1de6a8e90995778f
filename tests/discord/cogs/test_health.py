"""/healthz and /metrics of the running bot: ``run_bot`` as ``python -m bot run`` starts it (its own
index, ticket store and hashing process), on the fake Discord and the fake gateway, read with a real
HTTP client. A member checks a picture that matches, a file that is not a picture and one Discord
says is a PDF, and files a removal request; the metrics count each, the ticket shows by state, the
log channel's refusal shows as an undelivered message, and /healthz says the gateway is connected."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import discord.http
import pytest
from discord.gateway import DiscordWebSocket
from prometheus_client.parser import text_string_to_metric_families

from bot import messages
from bot.config import HealthSettings, Settings
from cogs.app import run_bot
from tests.discord.cogs.conftest import query_bytes
from tests.discord.fake_discord import FakeDiscord, RecordedRequest, World
from tests.discord.fake_gateway import FakeGateway

FOLLOWUP = r"/webhooks/\d+/{token}"
CALLBACK = r"/interactions/{id}/[^/]+/callback"
SLOW = 30.0  # the first check starts the bot's hashing process


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Member:
    """A member acting over the gateway, as Discord delivers interactions to a running bot."""

    def __init__(self, fake: FakeDiscord, world: World, gateway: FakeGateway) -> None:
        self.fake, self.world, self.gateway = fake, world, gateway

    async def send(self, payload: dict[str, Any], wait_for: str) -> RecordedRequest:
        since = self.fake.mark()
        self.fake.interactions[int(payload["id"])] = payload
        await self.gateway.dispatch("INTERACTION_CREATE", payload)
        path = wait_for.format(token=payload["token"], id=payload["id"])
        return await self.fake.wait_for("POST", path, since=since, timeout=SLOW)

    async def check(self, data: bytes, content_type: str = "image/jpeg") -> RecordedRequest:
        image = self.fake.add_attachment(data, "IMG_0001.jpg", content_type)
        return await self.send(self.world.command_interaction("check", options={"image": image}), FOLLOWUP)

    async def request_removal(self, answer: RecordedRequest) -> None:
        """Press Request removal under a check's answer and submit the form."""
        [[button]] = [row["components"] for row in answer.json["components"]]
        message = self.fake.find_message(int(answer.response["id"]))
        assert message is not None
        person = self.world.member
        modal = await self.send(
            self.world.component_interaction(button["custom_id"], message=message, invoker=person), CALLBACK
        )
        [[note]] = [row["components"] for row in modal.json["data"]["components"]]
        submit = self.world.modal_submit_from_callback(modal, {note["custom_id"]: "it is me"}, invoker=person)
        receipt = await self.send(submit, FOLLOWUP)
        assert re.search(r"\*\*([0-9A-Z]{6})\*\*", receipt.json["content"])


async def get(port: int, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        return response.status, await response.text()


async def metrics(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, body = await get(port, "/metrics")
    assert status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


@contextlib.asynccontextmanager
async def running_app(
    fake: FakeDiscord, world: World, desk_settings: Settings, port: int
) -> AsyncIterator[FakeGateway]:
    """``run_bot`` on the fake Discord and a fake gateway, its health server on ``port``; stopped
    (cancelled, as Ctrl-C stops ``asyncio.run``) at the end of the block."""
    for person in world.people:
        fake.add_user(person.user_payload())
        if person.dm_channel_id:
            fake.add_channel(world.dm_channel_payload(person))
    for channel in world.channel_payloads():
        fake.add_channel(channel)
    async with FakeGateway(world) as gateway:
        settings = dataclasses.replace(
            desk_settings,
            discord=dataclasses.replace(
                desk_settings.discord, api_base_url=fake.api_base, gateway_url=gateway.url
            ),
            health=HealthSettings(host="127.0.0.1", port=port),
        )
        running = asyncio.create_task(run_bot(settings))
        try:
            await gateway.wait_connected(SLOW)
            yield gateway
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running


async def until(port: int, path: str, done: Callable[[int, str], bool]) -> tuple[int, str]:
    """GET ``path`` until ``done(status, body)``, for a few seconds; the last answer."""
    for _ in range(200):
        status, body = await get(port, path)
        if done(status, body):
            break
        await asyncio.sleep(0.05)
    return status, body


async def test_the_running_bot_serves_health_and_metrics_of_what_it_did(
    fake: FakeDiscord, world: World, desk_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both are process-wide and set by the bot from its settings: restored after the test.
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    fake.fail("POST", rf"/channels/{world.log_channel_id}/messages", 403)  # the bot may not post there
    port = free_port()
    async with running_app(fake, world, desk_settings, port) as gateway:
        healthy = await until(port, "/healthz", lambda status, _: status == 200)  # READY parsed
        assert healthy == (200, '{"gateway": true, "index": true, "database": true}')
        member = Member(fake, world, gateway)

        found = await member.check(query_bytes("coffee__mirrored.jpg"))
        assert found.json["content"] == messages.matches_found(1)
        await member.check(b"%PDF-1.7 a scanned letter")
        await member.check(b"%PDF-1.7 a scanned letter", "application/pdf")
        await member.request_removal(found)
        await fake.wait_for("POST", rf"/channels/{world.review_channel_id}/messages", timeout=SLOW)

        # Until the relay has sent, or given up on, all it owes.
        await until(port, "/metrics", lambda _, body: "removal_desk_delivery_queue_depth 0.0" in body)
        counted = await metrics(port)
        assert counted[("removal_desk_checks_total", (("source", "command"),))] == 2
        assert counted[("removal_desk_checks_total", (("source", "channel"),))] == 0
        assert counted[("removal_desk_matches_total", ())] == 1
        assert counted[("removal_desk_refusals_total", (("reason", "not_an_image"),))] == 1
        assert counted[("removal_desk_refusals_total", (("reason", "not_a_picture"),))] == 1
        assert counted[("removal_desk_hashing_seconds_count", ())] == 1
        assert counted[("removal_desk_search_seconds_count", ())] == 1
        assert counted[("removal_desk_hashing_seconds_sum", ())] > 0
        assert counted[("removal_desk_tickets", (("state", "open"),))] == 1
        assert counted[("removal_desk_database_up", ())] == 1
        assert counted[("removal_desk_delivery_queue_depth", ())] == 0
        # The new ticket's line for the log channel, which the bot may not post in.
        assert counted[("removal_desk_undelivered_messages", ())] == 1
        assert fake.find("POST", rf"/channels/{world.log_channel_id}/messages")
        assert (await get(port, "/healthz"))[0] == 200
    with pytest.raises(aiohttp.ClientConnectionError):  # the server went with the bot
        await get(port, "/healthz")
