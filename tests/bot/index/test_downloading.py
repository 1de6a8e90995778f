"""Downloading one entry's picture (bot.index.downloading): failure kinds, retries and Retry-After,
opt-out headers, the size cap, bad URLs and the concurrency limits, against a local server."""

from __future__ import annotations

import io
import time
from collections import Counter

import pytest
from PIL import Image

from bot.config import Settings
from bot.index.downloading import DownloadSummary, agent_token, opted_out, retry_after_seconds
from bot.index.sources import SourceItem
from bot.index.storage import DatasetEntry
from tests.bot.index.picture_server import (
    MAX_BYTES,
    PictureServer,
    closed_port,
    download,
    download_settings,
    outcome,
    picture_bytes,
)


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


def test_the_default_settings_download(server: PictureServer, unique: str, settings: Settings) -> None:
    items, summary = download([server.url(f"/picture/{unique}.jpg")], settings.download)
    assert items[0].picture == picture_bytes(f"{unique}.jpg")
    assert summary.succeeded == 1
    assert server.user_agents >= {settings.download.user_agent}


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
