"""A small HTTP server for whoever runs the bot: ``/healthz`` for a supervisor, ``/metrics`` for
Prometheus. Off unless ``[health] port`` is set; bound to 127.0.0.1 unless ``[health] host`` says
otherwise (0.0.0.0 only inside a container whose port is published on purpose).

``/healthz`` answers 200 with ``{"gateway": true, "index": true, "database": true}`` when the bot
is connected to Discord's gateway, the hash index answers and the ticket database can be read;
503 with the same object, the failing parts false, otherwise. Neither endpoint says anything about
a person: the health is three booleans, the metrics are counts under fixed labels
(:mod:`bot.metrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.config import HealthSettings
from bot.desk import Desk
from bot.index.parts import IncompleteSearchError
from bot.index.search import Searchable
from bot.index.serving import answers
from bot.tickets.store import TicketStore

log = logging.getLogger(__name__)

# A health check that takes longer than this counts as failed: a supervisor polling /healthz
# wants an answer, and a database locked past it is not healthy either.
CHECK_SECONDS = 2.0

HealthCheck = Callable[[], Awaitable[bool]]


async def database_reachable(store: TicketStore) -> bool:
    """A trivial read through the store's reader connection."""
    async with store.database.reader.execute("SELECT COUNT(*) FROM tickets WHERE 0") as cursor:
        return await cursor.fetchone() is not None


async def index_open(index: Searchable) -> bool:
    """Every part of the served index opens and its files are there (:func:`answers`: asked of
    each part's worker on a Dask cluster); a part gone (IncompleteSearchError) fails it."""
    return await asyncio.to_thread(answers, index)


def desk_checks(desk: Desk, gateway_connected: Callable[[], bool]) -> dict[str, HealthCheck]:
    """The three checks of ``/healthz`` for a running desk; ``gateway_connected`` comes from the
    Discord side (``bot.is_ready() and not bot.is_closed()``)."""

    async def gateway() -> bool:
        return gateway_connected()

    async def index() -> bool:
        return await index_open(desk.index)

    async def database() -> bool:
        return await database_reachable(desk.store)

    return {"gateway": gateway, "index": index, "database": database}


async def _passes(name: str, check: HealthCheck) -> bool:
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            return bool(await check())
    except IncompleteSearchError as failed:  # names the parts unreachable (folders, never a person)
        log.warning("health check %s failed: %s", name, failed)
        return False
    except Exception as failed:  # any failure is "not healthy"; its type is enough for the log
        log.warning("health check %s failed (%s)", name, type(failed).__name__)
        return False


class HealthServer:
    """``/healthz`` and ``/metrics`` for one desk. :meth:`start` binds; :meth:`stop` releases."""

    def __init__(
        self, desk: Desk, checks: Mapping[str, HealthCheck], *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.desk = desk
        self.checks = dict(checks)
        self.host = host
        self.port = port  # 0 before start: any free port (the tests); the bound one after
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])  # the one bound, when asked for any (0)
        log.info("health and metrics on http://%s:%d/ (/healthz, /metrics)", self.host, self.port)

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def __aenter__(self) -> HealthServer:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def health(self) -> dict[str, bool]:
        names = list(self.checks)
        results = await asyncio.gather(*(_passes(name, self.checks[name]) for name in names))
        return dict(zip(names, results, strict=True))

    async def _healthz(self, _request: web.Request) -> web.Response:
        parts = await self.health()
        return web.json_response(parts, status=200 if all(parts.values()) else 503)

    async def _metrics(self, _request: web.Request) -> web.Response:
        metrics = self.desk.metrics
        await metrics.refresh(self.desk.store)
        response = web.Response(body=generate_latest(metrics.registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response


@contextlib.asynccontextmanager
async def serving_health(
    settings: HealthSettings, desk: Desk, gateway_connected: Callable[[], bool]
) -> AsyncIterator[HealthServer | None]:
    """The health server for ``desk`` while the block runs, if ``settings.port`` asks for one."""
    if not settings.port:
        yield None
        return
    async with HealthServer(
        desk, desk_checks(desk, gateway_connected), host=settings.host, port=settings.port
    ) as server:
        yield server
