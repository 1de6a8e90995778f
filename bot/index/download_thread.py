"""Index a dataset straight from its URL list: the build is synchronous, so this bridges it to an
event loop in a thread of its own that downloads each entry's picture (:mod:`bot.index.downloading`)
and hands the bytes back, in list order, to be hashed in memory. No picture is ever written to disk,
and none is logged: a URL list is how most datasets are published, and a removal index must not
become one more copy of the pictures it exists to help remove.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections import deque
from collections.abc import Generator, Iterable

import aiohttp

from bot.config import DownloadSettings
from bot.index.downloading import Downloader, DownloadSummary
from bot.index.sources import SourceItem
from bot.index.storage import DatasetEntry


class _DownloadThread:
    """An event loop with one aiohttp session, in a thread of its own: the build is synchronous and
    hands entries over one by one, getting a future for each."""

    def __init__(self, settings: DownloadSettings) -> None:
        self._settings = settings
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._downloader: Downloader | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="removal-desk-downloads", daemon=True)

    def __enter__(self) -> _DownloadThread:
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            self._thread.join()
            raise self._failure
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()

    def submit(self, entry: DatasetEntry) -> concurrent.futures.Future[tuple[SourceItem, int]]:
        assert self._loop is not None, "submit() inside the with block only"
        assert self._downloader is not None
        return asyncio.run_coroutine_threadsafe(self._downloader.fetch(entry), self._loop)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # handed to the thread that started us
            self._failure = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        settings = self._settings
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        connector = aiohttp.TCPConnector(
            limit=settings.concurrency, limit_per_host=settings.limit_per_host, ttl_dns_cache=300
        )
        async with aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=settings.read_timeout_s, sock_connect=settings.connect_timeout_s
            ),
            headers={"User-Agent": settings.user_agent},
            cookie_jar=aiohttp.DummyCookieJar(),  # millions of hosts' cookies: no use, and memory
        ) as session:
            self._downloader = Downloader(settings, session)
            self._ready.set()
            await self._stop.wait()
            downloads = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in downloads:
                task.cancel()
            await asyncio.gather(*downloads, return_exceptions=True)


def _check(settings: DownloadSettings) -> None:
    for name in ("concurrency", "limit_per_host", "max_bytes"):
        if getattr(settings, name) < 1:
            raise ValueError(f"download.{name} must be at least 1, not {getattr(settings, name)}")
    if settings.retries < 0:
        raise ValueError(f"download.retries must be 0 or more, not {settings.retries}")


def iter_url_pictures(
    entries: Iterable[DatasetEntry], settings: DownloadSettings, summary: DownloadSummary | None = None
) -> Generator[SourceItem, None, None]:
    """Download the picture of each entry: ``SourceItem(entry, picture=bytes)``, or
    ``SourceItem(entry, problem=kind)`` (see :data:`bot.index.downloading.FAILURE_KINDS`), in the
    order of ``entries`` so that the same list always gives the same index.

    Up to ``settings.concurrency`` downloads run at once, in a background thread's event loop. A
    slow picture holds back the ones after it: at most ``2 * concurrency`` entries are pulled from
    ``entries`` ahead of the one being waited for, so at most that many pictures sit in memory.
    Closing the generator cancels the downloads in flight and ends the thread. ``summary``, when
    given, counts what was yielded."""
    _check(settings)
    summary = summary if summary is not None else DownloadSummary()
    ahead = 2 * settings.concurrency
    started = time.monotonic()
    with _DownloadThread(settings) as downloads:
        pending: deque[concurrent.futures.Future[tuple[SourceItem, int]]] = deque()
        try:
            for entry in entries:
                pending.append(downloads.submit(entry))
                if len(pending) >= ahead:
                    yield _collect(pending.popleft(), summary)
            while pending:
                yield _collect(pending.popleft(), summary)
        finally:
            for future in pending:
                future.cancel()
            summary.seconds += time.monotonic() - started


def _collect(
    future: concurrent.futures.Future[tuple[SourceItem, int]], summary: DownloadSummary
) -> SourceItem:
    item, retries = future.result()
    summary.record(item, retries)
    return item
