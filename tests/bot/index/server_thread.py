"""An aiohttp server on its own event loop in a thread, for tests of code that runs its own loop.

The URL downloader is synchronous from the outside (it starts a loop in a thread of its own), so
the server it talks to cannot share pytest's loop: each test server subclasses this and writes
``_start`` (build the app, set ``self._runner``, start sites).
"""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web


class ServerThread:
    """Start and stop an aiohttp runner on a private event loop thread."""

    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name)
        self._runner: web.AppRunner | None = None

    async def _start(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)

    def stop(self) -> None:
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
