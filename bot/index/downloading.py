"""Download one dataset entry's picture: with retries and backoff, within the concurrency and per-host
limits, capped in size, and honouring the same opt-out as img2dataset: a response whose
``X-Robots-Tag`` says ``noai``, ``noimageai``, ``noindex`` or ``noimageindex`` (for every agent, or for
ours by name) is skipped. Every failure is counted under a stable kind (see :data:`FAILURE_KINDS`).

The :class:`Downloader` runs on an event loop; :mod:`bot.index.download_thread` gives it one, in a
thread of its own, and feeds it the build's entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import random
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC

import aiohttp
from yarl import URL

from bot.config import DownloadSettings
from bot.index.sources import SourceItem
from bot.index.storage import DatasetEntry

# img2dataset's default disallowed_header_directives.
OPT_OUT_DIRECTIVES = frozenset({"noai", "noimageai", "noindex", "noimageindex"})

# Why a download gave no picture. ``http_<status>`` (e.g. ``http_404``, ``http_503``) covers every
# answer that is not 2xx; the others are listed here.
FAILURE_KINDS = (
    "bad_url",  # missing, unparsable, or not http(s) (also a redirect to such a URL)
    "opted_out",  # X-Robots-Tag asked not to be used (see OPT_OUT_DIRECTIVES)
    "too_large",  # Content-Length or the body read so far is over max_bytes
    "timeout",  # no connection within connect_timeout_s, or no full answer within read_timeout_s
    "dns",  # the host name does not resolve (dead domains are common in old lists; not retried)
    "connection",  # refused, reset or dropped mid-body
    "tls",  # the TLS handshake or certificate failed
    "too_many_redirects",
    "bad_response",  # the server's answer is not valid HTTP
)

_READ_CHUNK = 64 * 1024


def agent_token(user_agent: str) -> str:
    """The name a site uses to address us in ``X-Robots-Tag: <name>: noai``: the product name that
    starts the User-Agent (``removal-desk/0.1 (...)`` -> ``removal-desk``)."""
    return user_agent.split("/", 1)[0].strip().lower()


def opted_out(header_values: Iterable[str], token: str) -> bool:
    """Whether ``X-Robots-Tag`` values forbid using the picture, read the way img2dataset reads them:
    a value is ``directives`` (for every agent) or ``agent: directives`` (for that agent only, so a
    rule for another crawler does not apply to us). Directives are compared case-insensitively, and
    split on spaces as well as commas (img2dataset splits on commas only): when in doubt, honour."""
    for value in header_values:
        agent, colon, directives = value.partition(":")
        if not colon:
            agent, directives = "", value
        if agent.strip() and agent.strip().lower() != token:
            continue
        if any(word.lower() in OPT_OUT_DIRECTIVES for word in re.split(r"[\s,]+", directives)):
            return True
    return False


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """A ``Retry-After`` header as seconds from ``now`` (it is either seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def checked_url(url: str | None) -> URL | None:
    """``url`` when it is an absolute http(s) URL with a host, else None (counted as ``bad_url``)."""
    if not url:
        return None
    try:
        parsed = URL(url.strip())
    except (ValueError, TypeError):
        return None
    if parsed.scheme not in {"http", "https"} or not parsed.host:
        return None
    return parsed


@dataclass
class DownloadSummary:
    """What the downloads of one run gave, for the line a maintainer reads at the end of a build."""

    succeeded: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    retries: int = 0  # extra attempts made, successful or not
    downloaded_bytes: int = 0
    seconds: float = 0.0

    def record(self, item: SourceItem, retries: int) -> None:
        self.retries += retries
        if item.picture is not None:
            self.succeeded += 1
            self.downloaded_bytes += len(item.picture)
        else:
            self.failures[item.problem or "unknown"] += 1

    def describe(self) -> str:
        """One line, e.g. ``downloaded 950 of 1,000 pictures (48.2 MB in 31.0 s, 12 retries); failed:
        30 http_404, 20 opted_out``."""
        attempted = self.succeeded + sum(self.failures.values())
        line = (
            f"downloaded {self.succeeded:,} of {attempted:,} pictures "
            f"({self.downloaded_bytes / 1e6:.1f} MB in {self.seconds:.1f} s, {self.retries:,} retries)"
        )
        if self.failures:
            line += "; failed: " + ", ".join(f"{n:,} {kind}" for kind, n in self.failures.most_common())
        return line


@dataclass(frozen=True)
class _Failure:
    kind: str
    retryable: bool = False
    retry_after: float | None = None


class _HostSlots:
    """At most ``limit`` downloads per host name at once. A host's semaphore lives only while some
    download for it exists: a LAION list names millions of hosts."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._slots: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @contextlib.asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        semaphore, users = self._slots.get(host, (None, 0))
        semaphore = semaphore or asyncio.Semaphore(self._limit)
        self._slots[host] = (semaphore, users + 1)
        try:
            async with semaphore:
                yield
        finally:
            semaphore, users = self._slots[host]
            if users == 1:
                del self._slots[host]
            else:
                self._slots[host] = (semaphore, users - 1)

    def __len__(self) -> int:
        return len(self._slots)


class Downloader:
    """Downloads one entry's picture, with retries; runs on the download thread's event loop
    (:mod:`bot.index.download_thread`)."""

    def __init__(self, settings: DownloadSettings, session: aiohttp.ClientSession) -> None:
        self._settings = settings
        self._session = session
        self._token = agent_token(settings.user_agent)
        self._hosts = _HostSlots(settings.limit_per_host)
        # Taken after the host slot, so downloads waiting for a busy host do not hold a slot that a
        # download for another host could use.
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._random = random.Random()

    async def fetch(self, entry: DatasetEntry) -> tuple[SourceItem, int]:
        """The entry with its picture or its failure kind, and the number of retries it took."""
        url = checked_url(entry.url)
        if url is None or url.host is None:
            return SourceItem(entry=entry, problem="bad_url"), 0
        retries = 0
        while True:
            async with self._hosts.slot(url.host), self._slots:
                outcome = await self._attempt(url)
            if isinstance(outcome, bytes):
                return SourceItem(entry=entry, picture=outcome), retries
            wait = self._retry_wait(outcome, retries)
            if wait is None:
                return SourceItem(entry=entry, problem=outcome.kind), retries
            retries += 1
            await asyncio.sleep(wait)  # outside the slots: a waiting retry leaves them to others

    def _retry_wait(self, failure: _Failure, retries: int) -> float | None:
        """Seconds to wait before the next attempt, or None to give up."""
        if not failure.retryable or retries >= self._settings.retries:
            return None
        if failure.retry_after is not None:
            return None if failure.retry_after > self._settings.retry_after_cap_s else failure.retry_after
        return self._settings.backoff_base_s * 2**retries * self._random.uniform(0.5, 1.5)

    async def _attempt(self, url: URL) -> bytes | _Failure:
        try:
            async with self._session.get(url) as response:
                return await self._read(response)
        except TimeoutError:  # before ClientConnectionError: aiohttp's timeouts are both
            return _Failure("timeout", retryable=True)
        except aiohttp.TooManyRedirects:
            return _Failure("too_many_redirects")
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError):  # also as a redirect's target
            return _Failure("bad_url")
        except aiohttp.ClientConnectorDNSError:
            return _Failure("dns")
        except aiohttp.ClientSSLError:
            return _Failure("tls")
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError):
            return _Failure("connection", retryable=True)
        except aiohttp.ClientError:
            return _Failure("bad_response")

    async def _read(self, response: aiohttp.ClientResponse) -> bytes | _Failure:
        status = response.status
        if not 200 <= status < 300:
            retryable = status == 429 or status >= 500  # Too Many Requests, or the server's trouble
            wait = retry_after_seconds(response.headers.get("Retry-After"), time.time())
            return _Failure(f"http_{status}", retryable=retryable, retry_after=wait)
        if opted_out(response.headers.getall("X-Robots-Tag", []), self._token):
            return _Failure("opted_out")
        limit = self._settings.max_bytes
        if response.content_length is not None and response.content_length > limit:
            response.close()  # drop the connection rather than drain a body we will not use
            return _Failure("too_large")
        body = bytearray()
        async for chunk in response.content.iter_chunked(_READ_CHUNK):
            body += chunk
            if len(body) > limit:
                response.close()
                return _Failure("too_large")
        return bytes(body)
