"""The thread that feeds downloads to the build (bot.index.download_thread): read-ahead, closing early,
no thread left behind, nothing written to disk and no URL logged."""

from __future__ import annotations

import builtins
import io
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.index.download_thread import iter_url_pictures
from bot.index.storage import DatasetEntry
from tests.bot.index.picture_server import (
    SLOW_SECONDS,
    PictureServer,
    closed_port,
    download,
    download_settings,
    picture_bytes,
)


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
