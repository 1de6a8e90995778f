"""A local aiohttp server for the download tests: pictures, errors, slow answers, oversize bodies and
opt-out headers, on two hosts, counting what it is asked; and small helpers to download from it."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import socket
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web
from PIL import Image

from bot.config import DownloadSettings
from bot.index.download_thread import iter_url_pictures
from bot.index.downloading import DownloadSummary
from bot.index.sources import SourceItem
from bot.index.storage import DatasetEntry
from tests.bot.index.server_thread import ServerThread

MAX_BYTES = 256 * 1024
SLOW_SECONDS = 3.0  # how long the slow endpoints stall: far beyond the tests' read timeout
ENDLESS_BYTES = 64 * 1024 * 1024


def download_settings(**changes: object) -> DownloadSettings:
    """Small limits and timeouts, so every failure shows up in well under a second."""
    base = DownloadSettings(
        concurrency=4,
        limit_per_host=2,
        connect_timeout_s=1.0,
        read_timeout_s=0.5,
        retries=2,
        backoff_base_s=0.01,
        retry_after_cap_s=2.0,
        max_bytes=MAX_BYTES,
        user_agent="removal-desk/test (+tests)",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def picture_bytes(name: str) -> bytes:
    """A real JPEG (or PNG, for names ending in .png), different for every name."""
    seed = zlib.crc32(name.encode())
    image = Image.new("RGB", (40, 30), (seed & 255, seed >> 8 & 255, seed >> 16 & 255))
    buffer = io.BytesIO()
    image.save(buffer, "PNG" if name.endswith(".png") else "JPEG")
    return buffer.getvalue()


class PictureServer(ServerThread):
    """An aiohttp server in a thread of its own, listening on 127.0.0.1 and 127.0.0.2 (two hosts, to
    see the per-host limit), that counts what it is asked."""

    HOSTS = ("127.0.0.1", "127.0.0.2")

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.hit_times: defaultdict[str, list[float]] = defaultdict(list)
        self.user_agents: set[str] = set()
        self.in_flight: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.finished_streams: set[str] = set()
        self.ports: dict[str, int] = {}
        super().__init__("test-picture-server")

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.ports[host]}{path}"

    def reset_peaks(self) -> None:
        self.peak.clear()

    async def _start(self) -> None:
        app = web.Application(middlewares=[self._count])
        app.add_routes(
            [
                web.get("/picture/{name}", self._picture),
                web.get("/status/{code}/{id}", self._status),
                web.get("/flaky/{id}", self._flaky),
                web.get("/always-500/{id}", self._always_500),
                web.get("/busy/{seconds}/{id}", self._busy),
                web.get("/slow-headers/{id}", self._slow_headers),
                web.get("/slow-body/{id}", self._slow_body),
                web.get("/robots/{id}", self._robots),
                web.get("/declared-large/{id}", self._declared_large),
                web.get("/sized/{size}/{id}", self._sized),
                web.get("/endless/{id}", self._endless),
                web.get("/redirect-loop/{id}", self._redirect_loop),
                web.get("/redirect-ftp/{id}", self._redirect_ftp),
                web.get("/not-a-picture/{id}", self._not_a_picture),
            ]
        )
        # handler_cancellation: a handler still sleeping when the client gave up stops at once.
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        for host in self.HOSTS:
            site = web.TCPSite(self._runner, host, 0)
            await site.start()
            self.ports[host] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    @web.middleware
    async def _count(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        host = request.transport.get_extra_info("sockname")[0]  # type: ignore[union-attr]
        self.hits[request.path] += 1
        self.hit_times[request.path].append(time.monotonic())
        self.user_agents.add(request.headers.get("User-Agent", ""))
        for counter in ("total", host):
            self.in_flight[counter] += 1
            self.peak[counter] = max(self.peak[counter], self.in_flight[counter])
        try:
            return await handler(request)
        finally:
            for counter in ("total", host):
                self.in_flight[counter] -= 1

    async def _picture(self, request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query.get("delay", "0")))
        name = request.match_info["name"]
        return web.Response(
            body=picture_bytes(name), content_type="image/png" if ".png" in name else "image/jpeg"
        )

    async def _status(self, request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="no")

    async def _flaky(self, request: web.Request) -> web.Response:
        if self.hits[request.path] == 1:
            return web.Response(status=500, text="try again")
        return web.Response(body=picture_bytes(request.path))

    async def _always_500(self, _request: web.Request) -> web.Response:
        return web.Response(status=500, text="broken")

    async def _busy(self, request: web.Request) -> web.Response:
        if self.hits[request.path] == 1:
            return web.Response(status=429, headers={"Retry-After": request.match_info["seconds"]})
        return web.Response(body=picture_bytes(request.path))

    async def _slow_headers(self, request: web.Request) -> web.Response:
        await asyncio.sleep(SLOW_SECONDS)
        return web.Response(body=picture_bytes(request.path))

    async def _slow_body(self, request: web.Request) -> web.StreamResponse:
        body = picture_bytes(request.path)
        response = web.StreamResponse(headers={"Content-Length": str(len(body))})
        await response.prepare(request)
        await response.write(body[:100])
        await asyncio.sleep(SLOW_SECONDS)
        await response.write(body[100:])
        return response

    async def _robots(self, request: web.Request) -> web.Response:
        response = web.Response(body=picture_bytes(request.path), content_type="image/jpeg")
        for tag in request.query.getall("tag", []):
            response.headers.add("X-Robots-Tag", tag)
        return response

    async def _declared_large(self, _request: web.Request) -> web.Response:
        return web.Response(body=b"\xff" * (MAX_BYTES + 1))

    async def _sized(self, request: web.Request) -> web.StreamResponse:
        """``size`` bytes, chunked: no Content-Length tells the client how much is coming."""
        return await self._stream(request, int(request.match_info["size"]))

    async def _endless(self, request: web.Request) -> web.StreamResponse:
        return await self._stream(request, ENDLESS_BYTES)

    async def _stream(self, request: web.Request, size: int) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for start in range(0, size, 65_536):
                await response.write(b"\xd8" * min(65_536, size - start))
            await response.write_eof()
        except ConnectionError:  # the client hung up
            return response
        self.finished_streams.add(request.path)
        return response

    async def _redirect_loop(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(request.path)

    async def _redirect_ftp(self, _request: web.Request) -> web.Response:
        raise web.HTTPFound("ftp://127.0.0.1/picture.jpg")

    async def _not_a_picture(self, _request: web.Request) -> web.Response:
        return web.Response(text="<html>gone</html>", content_type="text/html")


def closed_port() -> int:
    """A port nothing listens on: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def download(
    urls: Sequence[str | None], settings: DownloadSettings
) -> tuple[list[SourceItem], DownloadSummary]:
    summary = DownloadSummary()
    entries = [DatasetEntry(key=str(number), url=url) for number, url in enumerate(urls)]
    items = list(iter_url_pictures(entries, settings, summary))
    return items, summary


def outcome(item: SourceItem) -> bytes | str | None:
    return item.picture if item.picture is not None else item.problem
