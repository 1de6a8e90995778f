"""URL lists: reading LAION-style Parquet and CSV, and downloading their pictures from a local aiohttp
server that serves pictures, errors, slow answers, oversize bodies and opt-out headers."""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import io
import logging
import os
import socket
import threading
import time
import uuid
import zlib
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from aiohttp import web
from PIL import Image

from bot.config import DownloadSettings, Settings
from bot.index.sources import SourceError, SourceItem
from bot.index.storage import DatasetEntry
from bot.index.urls import (
    DownloadSummary,
    UrlListColumns,
    agent_token,
    count_url_rows,
    find_url_columns,
    is_url_list,
    iter_url_pictures,
    opted_out,
    read_url_rows,
    retry_after_seconds,
)
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


# ---------------------------------------------------------------------------------------------
# The local server


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


@pytest.fixture(scope="module")
def server() -> Iterator[PictureServer]:
    running = PictureServer()
    running.start()
    yield running
    running.stop()


@pytest.fixture
def unique() -> str:
    """A fresh path segment, so that one test's hit counts are not another's."""
    return uuid.uuid4().hex[:12]


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


# ---------------------------------------------------------------------------------------------
# Downloading


def test_pictures_come_back_byte_for_byte_in_list_order_with_every_failure_kind_counted(
    server: PictureServer, unique: str
) -> None:
    settings = download_settings(concurrency=10, limit_per_host=4, retries=1)  # slow ones hold the rest
    cases: list[tuple[str | None, bytes | str]] = [
        (server.url(f"/slow-headers/{unique}"), "timeout"),  # first, and slowest: order must hold
        (server.url(f"/picture/{unique}-a.jpg"), picture_bytes(f"{unique}-a.jpg")),
        (server.url(f"/picture/{unique}-b.png", host="127.0.0.2"), picture_bytes(f"{unique}-b.png")),
        (server.url(f"/status/404/{unique}"), "http_404"),
        (server.url(f"/status/403/{unique}"), "http_403"),
        (server.url(f"/always-500/{unique}"), "http_500"),
        (server.url(f"/status/503/{unique}"), "http_503"),
        (server.url(f"/flaky/{unique}"), picture_bytes(f"/flaky/{unique}")),
        (server.url(f"/slow-body/{unique}"), "timeout"),
        (server.url(f"/robots/{unique}?tag=noai"), "opted_out"),
        (server.url(f"/declared-large/{unique}"), "too_large"),
        (server.url(f"/endless/{unique}"), "too_large"),
        (server.url(f"/redirect-loop/{unique}"), "too_many_redirects"),
        (server.url(f"/redirect-ftp/{unique}"), "bad_url"),
        (f"http://127.0.0.1:{closed_port()}/picture.jpg", "connection"),
        ("ftp://127.0.0.1/picture.jpg", "bad_url"),
        (None, "bad_url"),
        # Decoding is the build's job: a body that is no picture is handed over as it came.
        (server.url(f"/not-a-picture/{unique}"), b"<html>gone</html>"),
    ]
    items, summary = download([url for url, _ in cases], settings)

    assert [item.entry.key for item in items] == [str(n) for n in range(len(cases))]
    assert [outcome(item) for item in items] == [expected for _, expected in cases]
    expected_failures = Counter(expected for _, expected in cases if isinstance(expected, str))
    assert summary.failures == expected_failures
    assert summary.succeeded == sum(1 for _, expected in cases if isinstance(expected, bytes))
    assert summary.downloaded_bytes == sum(len(e) for _, e in cases if isinstance(e, bytes))
    assert server.user_agents == {settings.user_agent}
    assert f"/endless/{unique}" not in server.finished_streams  # the client hung up at the cap
    for kind, count in expected_failures.items():
        assert f"{count:,} {kind}" in summary.describe()


def test_real_jpeg_and_png_bytes_arrive_intact(server: PictureServer, unique: str) -> None:
    names = [f"{unique}-{n}.{'png' if n % 2 else 'jpg'}" for n in range(6)]
    items, _ = download([server.url(f"/picture/{name}") for name in names], download_settings())
    assert [item.picture for item in items] == [picture_bytes(name) for name in names]
    assert all(Image.open(io.BytesIO(item.picture or b"")).size == (40, 30) for item in items)


@pytest.mark.parametrize(
    ("path", "hits", "retries"),
    [
        ("/flaky/{}", 2, 1),  # 500, then the picture
        ("/always-500/{}", 3, 2),  # gives up after `retries` extra attempts
        ("/status/502/{}", 3, 2),
        ("/slow-headers/{}", 3, 2),  # timeouts are retried
        ("/status/404/{}", 1, 0),  # never retried
        ("/status/403/{}", 1, 0),
        ("/status/410/{}", 1, 0),
        ("/robots/{}?tag=noai", 1, 0),
        ("/declared-large/{}", 1, 0),
    ],
)
def test_only_transient_failures_are_retried_and_only_up_to_the_limit(
    server: PictureServer, unique: str, path: str, hits: int, retries: int
) -> None:
    url = server.url(path.format(unique))
    _, summary = download([url], download_settings(retries=2))
    assert server.hits[path.format(unique).split("?")[0]] == hits
    assert summary.retries == retries


def test_retries_zero_makes_one_attempt(server: PictureServer, unique: str) -> None:
    items, summary = download([server.url(f"/flaky/{unique}")], download_settings(retries=0))
    assert outcome(items[0]) == "http_500"
    assert server.hits[f"/flaky/{unique}"] == 1
    assert summary.retries == 0


def test_a_refused_connection_is_retried(server: PictureServer) -> None:
    items, summary = download([f"http://127.0.0.1:{closed_port()}/x.jpg"], download_settings(retries=2))
    assert outcome(items[0]) == "connection"
    assert summary.retries == 2


def test_retry_after_is_waited_for(server: PictureServer, unique: str) -> None:
    path = f"/busy/1/{unique}"
    items, summary = download([server.url(path)], download_settings())
    assert items[0].picture == picture_bytes(path)
    assert summary.retries == 1
    first, second = server.hit_times[path]
    assert second - first >= 1.0  # the server asked for one second; backoff alone would be ~0.01 s


def test_a_retry_after_beyond_the_cap_gives_up_at_once(server: PictureServer, unique: str) -> None:
    path = f"/busy/3600/{unique}"
    started = time.monotonic()
    items, summary = download([server.url(path)], download_settings(retry_after_cap_s=2.0))
    assert outcome(items[0]) == "http_429"
    assert server.hits[path] == 1
    assert summary.retries == 0
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    ("tags", "skipped"),
    [
        (["noai"], True),
        (["noimageai"], True),
        (["noindex"], True),
        (["noimageindex"], True),
        (["NoImageAI"], True),
        (["NOINDEX"], True),
        (["noindex, nofollow"], True),
        (["nofollow,noimageindex"], True),
        (["noarchive noai"], True),
        (["nofollow", "noai"], True),  # two header lines, the second opts out
        (["removal-desk: noai"], True),  # addressed to us by name
        (["Removal-Desk: NoIndex"], True),
        (["otherbot: noindex"], False),  # a rule for another crawler
        (["googlebot: noai, noimageai"], False),
        (["nofollow"], False),
        (["noarchive, nosnippet"], False),
        ([], False),
    ],
)
def test_opt_out_headers_are_honoured_like_img2dataset_does(
    server: PictureServer, unique: str, tags: list[str], skipped: bool
) -> None:
    query = "&".join(f"tag={tag.replace(' ', '%20').replace(',', '%2C')}" for tag in tags)
    path = f"/robots/{unique}"
    items, summary = download([server.url(f"{path}?{query}")], download_settings())
    assert outcome(items[0]) == ("opted_out" if skipped else picture_bytes(path))
    assert summary.failures["opted_out"] == int(skipped)


def test_opt_out_parsing_follows_the_agent_named_in_the_user_agent() -> None:
    assert agent_token("removal-desk/0.1 (+https://example.org)") == "removal-desk"
    assert agent_token("MyBuild/2") == "mybuild"
    assert opted_out(["mybuild: noai"], "mybuild")
    assert not opted_out(["removal-desk: noai"], "mybuild")
    assert opted_out(["  noindex  "], "mybuild")
    assert not opted_out(["unavailable_after: 25 Jun 2010 15:00:00 PST"], "mybuild")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"/sized/{MAX_BYTES}/{{}}", b"\xd8" * MAX_BYTES),  # exactly the cap: kept
        (f"/sized/{MAX_BYTES + 1}/{{}}", "too_large"),  # one byte over, no Content-Length: dropped
        ("/declared-large/{}", "too_large"),  # Content-Length over the cap: not even read
    ],
)
def test_the_size_cap_holds_with_and_without_a_content_length(
    server: PictureServer, unique: str, path: str, expected: bytes | str
) -> None:
    items, _ = download([server.url(path.format(unique))], download_settings())
    assert outcome(items[0]) == expected


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "   ",
        "ftp://127.0.0.1/x.jpg",
        "file:///etc/passwd",
        "not a url",
        "http://",
        "//127.0.0.1/x.jpg",
        "http://[::1/x.jpg",
        "data:image/png;base64,AAAA",
    ],
)
def test_bad_urls_are_counted_without_a_request(server: PictureServer, url: str | None) -> None:
    hits_before = sum(server.hits.values())
    items, summary = download([url], download_settings())
    assert outcome(items[0]) == "bad_url"
    assert summary.failures == Counter({"bad_url": 1})
    assert sum(server.hits.values()) == hits_before


def test_concurrency_and_the_per_host_limit_hold(server: PictureServer, unique: str) -> None:
    settings = download_settings(concurrency=3, limit_per_host=2)
    # Runs of four on one host: without the per-host limit the first three would all go to one host.
    urls = [
        server.url(f"/picture/{unique}-{n}.jpg?delay=0.05", host=server.HOSTS[n // 4 % 2]) for n in range(24)
    ]
    server.reset_peaks()
    items, summary = download(urls, settings)
    assert summary.succeeded == 24
    assert [item.picture for item in items] == [picture_bytes(f"{unique}-{n}.jpg") for n in range(24)]
    # Reached, never passed: 3 at once in all, 2 at once on either host.
    assert server.peak["total"] == 3
    assert server.peak["127.0.0.1"] == 2
    assert server.peak["127.0.0.2"] == 2


def test_waiting_for_a_busy_host_does_not_count_against_the_timeout(
    server: PictureServer, unique: str
) -> None:
    """The timeout starts when the download does: four 0.2 s pictures from one host, one at a time,
    all arrive within a 0.5 s timeout although the last one waits 0.6 s for its turn."""
    settings = download_settings(limit_per_host=1, read_timeout_s=0.5, retries=0)
    urls = [server.url(f"/picture/{unique}-{n}.jpg?delay=0.2") for n in range(4)]
    server.reset_peaks()
    items, summary = download(urls, settings)
    assert summary.failures == Counter()
    assert [item.picture for item in items] == [picture_bytes(f"{unique}-{n}.jpg") for n in range(4)]
    assert server.peak["127.0.0.1"] == 1


def test_at_most_twice_the_concurrency_is_read_ahead_of_the_consumer(
    server: PictureServer, unique: str
) -> None:
    settings = download_settings(concurrency=3)
    pulled = 0

    def entries() -> Iterator[DatasetEntry]:
        nonlocal pulled
        for n in range(40):
            pulled += 1
            yield DatasetEntry(key=str(n), url=server.url(f"/picture/{unique}-{n}.jpg"))

    ahead = []
    for yielded, _ in enumerate(iter_url_pictures(entries(), settings), start=1):
        ahead.append(pulled - yielded)
    assert max(ahead) == 2 * settings.concurrency - 1  # one is handed out, the rest wait with it
    assert pulled == 40


def download_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "removal-desk-downloads"]


def test_closing_early_cancels_the_downloads_and_ends_the_thread(server: PictureServer, unique: str) -> None:
    threads_before = set(threading.enumerate())
    entries = [DatasetEntry(key="fast", url=server.url(f"/picture/{unique}.jpg"))] + [
        DatasetEntry(key=str(n), url=server.url(f"/slow-headers/{unique}-{n}")) for n in range(12)
    ]
    pictures = iter_url_pictures(entries, download_settings(read_timeout_s=SLOW_SECONDS * 2))
    first = next(pictures)
    assert first.picture == picture_bytes(f"{unique}.jpg")
    assert len(download_threads()) == 1
    started = time.monotonic()
    pictures.close()
    assert time.monotonic() - started < SLOW_SECONDS  # cancelled, not waited for
    assert download_threads() == []
    assert set(threading.enumerate()) <= threads_before  # the loop's resolver threads ended too


def test_a_consumer_that_stops_midway_leaves_no_thread(server: PictureServer, unique: str) -> None:
    urls = [server.url(f"/picture/{unique}-{n}.jpg") for n in range(30)]
    entries = (DatasetEntry(key=str(n), url=url) for n, url in enumerate(urls))
    for item in iter_url_pictures(entries, download_settings()):
        if item.entry.key == "5":
            break
    assert download_threads() == []


def test_the_default_settings_download(server: PictureServer, unique: str, settings: Settings) -> None:
    items, summary = download([server.url(f"/picture/{unique}.jpg")], settings.download)
    assert items[0].picture == picture_bytes(f"{unique}.jpg")
    assert summary.succeeded == 1
    assert server.user_agents >= {settings.download.user_agent}


def test_impossible_settings_are_refused() -> None:
    with pytest.raises(ValueError, match=r"download\.concurrency"):
        next(iter_url_pictures([], download_settings(concurrency=0)))
    with pytest.raises(ValueError, match=r"download\.retries"):
        next(iter_url_pictures([], download_settings(retries=-1)))


@pytest.fixture
def no_writes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[str]]:
    """Run from an empty folder with every way of opening a file for writing refused and recorded."""
    attempts: list[str] = []
    real_open, real_os_open = builtins.open, os.open

    def guarded_open(file: object, mode: str = "r", *args: object, **kwargs: object) -> object:
        if any(flag in mode for flag in "wax+"):
            attempts.append(f"open({file!r}, {mode!r})")
            raise PermissionError("this test forbids writing files")
        return real_open(file, mode, *args, **kwargs)  # type: ignore[call-overload]

    def guarded_os_open(path: object, flags: int, *args: object, **kwargs: object) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND):
            attempts.append(f"os.open({path!r})")
            raise PermissionError("this test forbids writing files")
        return real_os_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(io, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    yield attempts
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_nothing_is_written_to_disk_and_no_url_is_logged(
    server: PictureServer, unique: str, no_writes: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    urls = [
        server.url(f"/picture/{unique}-0.jpg"),
        server.url(f"/endless/{unique}"),
        server.url(f"/status/404/{unique}"),
        server.url(f"/robots/{unique}?tag=noai"),
        server.url(f"/flaky/{unique}"),
        server.url(f"/slow-body/{unique}"),
        f"http://127.0.0.1:{closed_port()}/{unique}.jpg",
    ]
    with caplog.at_level(logging.DEBUG):
        items, summary = download(urls, download_settings(retries=1))
    assert summary.succeeded == 2
    assert len(items) == len(urls)
    assert no_writes == []
    client_side = [record for record in caplog.records if not record.name.startswith("aiohttp.server")]
    assert not [record for record in client_side if unique in record.getMessage()]


# ---------------------------------------------------------------------------------------------
# Small parsers


def test_retry_after_is_read_as_seconds_or_as_a_date() -> None:
    now = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
    assert retry_after_seconds("7", now) == 7.0
    assert retry_after_seconds("Tue, 14 Nov 2023 22:13:50 GMT", now) == 30.0
    assert retry_after_seconds("Tue, 14 Nov 2023 22:00:00 GMT", now) == 0.0  # already past
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_the_summary_line_names_successes_and_each_failure_kind() -> None:
    summary = DownloadSummary()
    summary.record(SourceItem(entry=DatasetEntry(key="a"), picture=b"x" * 2_000_000), retries=1)
    for kind in ("http_404", "http_404", "opted_out"):
        summary.record(SourceItem(entry=DatasetEntry(key="b"), problem=kind), retries=0)
    assert summary.describe() == (
        "downloaded 1 of 4 pictures (2.0 MB in 0.0 s, 1 retries); failed: 2 http_404, 1 opted_out"
    )


# ---------------------------------------------------------------------------------------------
# Reading URL lists


def laion_table(rows: int) -> pa.Table:
    """LAION's metadata layout: float64 SAMPLE_ID, URL, TEXT and columns this reader ignores."""
    return pa.table(
        {
            "SAMPLE_ID": pa.array([float(1_000_000_000 + n) for n in range(rows)], pa.float64()),
            "URL": [f"https://example.org/{n}.jpg" for n in range(rows)],
            "TEXT": [f"caption {n}" for n in range(rows)],
            "HEIGHT": list(range(rows)),
            "similarity": [0.3] * rows,
        }
    )


def laion_entries(start: int, stop: int) -> list[DatasetEntry]:
    return [
        DatasetEntry(key=str(1_000_000_000 + n), url=f"https://example.org/{n}.jpg", caption=f"caption {n}")
        for n in range(start, stop)
    ]


@pytest.fixture
def laion_parquet(tmp_path: Path) -> Path:
    path = tmp_path / "part-00000.parquet"
    pq.write_table(laion_table(30), path, row_group_size=7)  # groups: 0-6, 7-13, 14-20, 21-27, 28-29
    return path


@pytest.mark.parametrize(("start", "stop"), [(0, 30), (5, 19), (7, 14), (13, 15), (28, 40), (30, 30), (3, 3)])
def test_parquet_rows_are_read_by_range_across_row_groups(laion_parquet: Path, start: int, stop: int) -> None:
    assert read_url_rows(laion_parquet, start, stop) == laion_entries(start, min(stop, 30))


def test_parquet_reads_only_the_row_groups_it_needs(
    laion_parquet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[list[int]] = []
    real_iter_batches = pq.ParquetFile.iter_batches

    def recording_iter_batches(
        self: pq.ParquetFile, *args: object, **kwargs: object
    ) -> Iterator[pa.RecordBatch]:
        asked.append(list(kwargs["row_groups"]))  # type: ignore[call-overload]
        return real_iter_batches(self, *args, **kwargs)  # type: ignore[arg-type]

    def no_whole_file(*args: object, **kwargs: object) -> None:
        raise AssertionError("the whole file was read")

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", recording_iter_batches)
    monkeypatch.setattr(pq.ParquetFile, "read", no_whole_file)
    monkeypatch.setattr(pq, "read_table", no_whole_file)
    assert read_url_rows(laion_parquet, 12, 16) == laion_entries(12, 16)
    assert asked == [[1, 2]]


def test_a_laion_parquet_is_a_url_list_and_counted_from_its_footer(laion_parquet: Path) -> None:
    assert is_url_list(laion_parquet)
    assert count_url_rows(laion_parquet) == 30
    assert find_url_columns(pq.read_schema(laion_parquet).names, laion_parquet) == UrlListColumns(
        url="URL", key="SAMPLE_ID", caption="TEXT"
    )


def test_a_parquet_with_hashes_or_without_urls_is_no_url_list(tmp_path: Path) -> None:
    hashes = tmp_path / "hashes.parquet"
    pq.write_table(
        pa.table({"key": ["a"], "url": ["https://x/a.jpg"], "phash": ["00"], "pdq": ["00"]}), hashes
    )
    no_url = tmp_path / "captions.parquet"
    pq.write_table(pa.table({"key": ["a"], "caption": ["c"]}), no_url)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    assert not is_url_list(hashes)
    assert not is_url_list(no_url)
    assert not is_url_list(broken)
    assert not is_url_list(folder)
    assert not is_url_list(tmp_path / "shard.tar")
    with pytest.raises(SourceError, match="no URL column"):
        read_url_rows(no_url, 0, 1)


def test_img2dataset_style_lowercase_columns_and_int64_or_missing_ids(tmp_path: Path) -> None:
    path = tmp_path / "list.parquet"
    table = pa.table(
        {
            "url": ["https://a/1.jpg", None, "https://a/3.jpg"],
            "key": pa.array([17, None, 19], pa.int64()),
            "caption": ["one", "two", None],
        }
    )
    pq.write_table(table, path)
    assert read_url_rows(path, 0, 3) == [
        DatasetEntry(key="17", url="https://a/1.jpg", caption="one"),
        DatasetEntry(key="1", url=None, caption="two"),  # no id: the row number
        DatasetEntry(key="19", url="https://a/3.jpg", caption=None),
    ]
    only_urls = tmp_path / "urls.parquet"
    pq.write_table(pa.table({"Url": ["https://a/1.jpg", "https://a/2.jpg"]}), only_urls)
    assert read_url_rows(only_urls, 1, 2) == [DatasetEntry(key="1", url="https://a/2.jpg")]


def test_a_nan_sample_id_falls_back_to_the_row_number(tmp_path: Path) -> None:
    path = tmp_path / "list.parquet"
    pq.write_table(pa.table({"SAMPLE_ID": [5.0, float("nan")], "URL": ["https://a/1", "https://a/2"]}), path)
    assert [entry.key for entry in read_url_rows(path, 0, 2)] == ["5", "1"]


LAION_CSV = (
    "\ufeffSAMPLE_ID,URL,TEXT,WIDTH\n"
    "1000000000.0,https://example.org/0.jpg,caption 0,10\n"
    '1000000001,https://example.org/1.jpg,"a caption, with a comma\nand a line break",10\n'
    "\n"
    '1000000002,https://example.org/2.jpg,"""quoted""",10\n'
    ",https://example.org/3.jpg,,10\n"
    "1000000004,https://example.org/4.jpg,caption 4,10\n"
)
LAION_CSV_ENTRIES = [
    DatasetEntry(key="1000000000", url="https://example.org/0.jpg", caption="caption 0"),
    DatasetEntry(
        key="1000000001", url="https://example.org/1.jpg", caption="a caption, with a comma\nand a line break"
    ),
    DatasetEntry(key="1000000002", url="https://example.org/2.jpg", caption='"quoted"'),
    DatasetEntry(key="3", url="https://example.org/3.jpg", caption=""),
    DatasetEntry(key="1000000004", url="https://example.org/4.jpg", caption="caption 4"),
]


@pytest.fixture
def laion_csv(tmp_path: Path) -> Path:
    path = tmp_path / "list.csv"
    path.write_text(LAION_CSV, encoding="utf-8")
    return path


def test_a_csv_is_read_record_by_record(laion_csv: Path) -> None:
    assert is_url_list(laion_csv)
    assert count_url_rows(laion_csv) == 5
    assert read_url_rows(laion_csv, 0, 5) == LAION_CSV_ENTRIES
    assert read_url_rows(laion_csv, 1, 3) == LAION_CSV_ENTRIES[1:3]
    assert read_url_rows(laion_csv, 4, 99) == LAION_CSV_ENTRIES[4:]


def test_csv_ranges_read_one_after_another_or_out_of_order_agree(laion_csv: Path) -> None:
    in_steps = [entry for start in range(0, 6, 2) for entry in read_url_rows(laion_csv, start, start + 2)]
    assert in_steps == LAION_CSV_ENTRIES
    assert read_url_rows(laion_csv, 3, 5) == LAION_CSV_ENTRIES[3:5]
    assert read_url_rows(laion_csv, 0, 2) == LAION_CSV_ENTRIES[0:2]  # back to the start
    assert read_url_rows(laion_csv, 2, 3) == LAION_CSV_ENTRIES[2:3]


def test_a_csv_changed_between_reads_is_read_afresh(laion_csv: Path) -> None:
    assert read_url_rows(laion_csv, 0, 2) == LAION_CSV_ENTRIES[:2]
    laion_csv.write_text(
        LAION_CSV.replace("SAMPLE_ID,URL", "SAMPLE_ID,EXTRA,URL").replace(",https", ",x,https")
    )
    os.utime(laion_csv, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    assert read_url_rows(laion_csv, 2, 5) == LAION_CSV_ENTRIES[2:5]


def test_a_tsv_with_img2dataset_columns(tmp_path: Path) -> None:
    path = tmp_path / "list.tsv"
    path.write_text("key\tcaption\turl\nk1\ta, b\thttps://a/1.jpg\nk2\t\thttps://a/2.jpg\n", encoding="utf-8")
    assert is_url_list(path)
    assert read_url_rows(path, 0, 2) == [
        DatasetEntry(key="k1", url="https://a/1.jpg", caption="a, b"),
        DatasetEntry(key="k2", url="https://a/2.jpg", caption=""),
    ]


def test_a_csv_without_a_url_column_or_empty_is_refused(tmp_path: Path) -> None:
    no_url = tmp_path / "no-url.csv"
    no_url.write_text("key,caption\na,b\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(SourceError, match="no URL column"):
        read_url_rows(no_url, 0, 1)
    with pytest.raises(SourceError, match="empty"):
        count_url_rows(empty)


def test_a_bad_row_range_is_refused(laion_csv: Path) -> None:
    with pytest.raises(ValueError, match="row range"):
        read_url_rows(laion_csv, 3, 2)
