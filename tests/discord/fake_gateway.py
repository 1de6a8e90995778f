"""A fake Discord gateway: just enough of the websocket protocol for discord.py to connect, lose
the connection and resume, so a test can drop the connection under a running bot.

``FakeDiscord`` feeds events straight into discord.py's parsers and has no gateway; this is a
second local aiohttp server that speaks the gateway (https://discord.com/developers/docs/events/
gateway): HELLO (op 10) on connect; IDENTIFY (op 2) answered with READY and the world's
GUILD_CREATE; RESUME (op 6) with RESUMED (the session and sequence carry over); heartbeats (op 1)
acknowledged (op 11). :meth:`FakeGateway.dispatch` sends an event (op 0) to the connected bot,
:meth:`FakeGateway.drop` closes the connection from Discord's side (code 4000, or no close frame at
all: the connection lost), as Discord does when it restarts a gateway node. Frames are plain JSON text:
discord.py asks for zlib-stream but reads uncompressed text frames too.

Point a bot at it with the ``gateway_url`` setting (which sets the process-wide
``DiscordWebSocket.DEFAULT_GATEWAY``; restore it afterwards) and start it with ``bot.connect()``
after ``bot.login()``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from tests.discord.fake_discord import World

HELLO, IDENTIFY, RESUME, HEARTBEAT, HEARTBEAT_ACK, DISPATCH = 10, 2, 6, 1, 11, 0


class FakeGateway:
    def __init__(self, world: World) -> None:
        self.world = world
        self.identifies = 0
        self.resumes: list[dict[str, Any]] = []  # the RESUME payloads received
        self.session_id = secrets.token_hex(8)
        self.sequence = 0
        self._socket: web.WebSocketResponse | None = None
        self._transport: asyncio.BaseTransport | None = None
        self._connected = asyncio.Event()
        app = web.Application()
        app.router.add_get("/", self._serve)
        self._server = TestServer(app)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._server.port}/"

    async def __aenter__(self) -> FakeGateway:
        await self._server.start_server()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._socket is not None:
            await self._socket.close()
        await self._server.close()

    async def wait_connected(self, timeout: float = 10.0) -> None:
        """Until a bot has identified or resumed on a live connection."""
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        assert self._socket is not None, "no bot is connected"
        assert not self._socket.closed, "the bot's connection is closed"
        self.sequence += 1
        await self._socket.send_str(json.dumps({"op": DISPATCH, "t": event, "s": self.sequence, "d": data}))

    async def drop(self, code: int | None = 4000) -> None:
        """Close the bot's connection from Discord's side with ``code``; None: cut it without a
        close frame (the TCP connection lost)."""
        assert self._socket is not None
        assert self._transport is not None
        self._connected.clear()
        if code is None:
            self._transport.abort()
        else:
            await self._socket.close(code=code, message=b"fake gateway went away")

    async def _serve(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        self._socket = socket
        self._transport = request.transport
        await socket.send_str(json.dumps({"op": HELLO, "d": {"heartbeat_interval": 41_250}}))
        async for message in socket:
            if message.type != WSMsgType.TEXT:
                continue
            payload = json.loads(message.data)
            op = payload.get("op")
            if op == HEARTBEAT:
                await socket.send_str(json.dumps({"op": HEARTBEAT_ACK}))
            elif op == IDENTIFY:
                self.identifies += 1
                await self._ready()
                self._connected.set()
            elif op == RESUME:
                self.resumes.append(payload["d"])
                await self.dispatch("RESUMED", {})
                self._connected.set()
        return socket

    async def _ready(self) -> None:
        world = self.world
        bot = world.bot
        await self.dispatch(
            "READY",
            {
                "v": 10,
                "user": bot.user_payload(),
                "guilds": [{"id": str(world.guild_id), "unavailable": True}],
                "session_id": self.session_id,
                "resume_gateway_url": self.url,
                "application": {"id": str(world.application_id), "flags": 0},
            },
        )
        await self.dispatch("GUILD_CREATE", world.guild_payload())
