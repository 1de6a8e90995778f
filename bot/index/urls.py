"""Index a dataset straight from its URL list (LAION-style metadata): read the rows, download each
picture, and hand its bytes to the build, which hashes them in memory. No picture is ever written to
disk, and none is logged: a URL list is how most datasets are published, and a removal index must not
become one more copy of the pictures it exists to help remove.

A URL list is a Parquet or CSV/TSV file with a URL column and, optionally, an id and a caption column
(LAION's ``URL``, ``SAMPLE_ID``, ``TEXT``; img2dataset's ``url``, ``key``, ``caption``; any case).

Downloads honour the same opt-out as img2dataset: a response whose ``X-Robots-Tag`` says ``noai``,
``noimageai``, ``noindex`` or ``noimageindex`` (for every agent, or for ours by name) is skipped.
Every failure is counted under a stable kind (see :data:`FAILURE_KINDS`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import csv
import email.utils
import math
import random
import re
import threading
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import IO

import aiohttp
import pyarrow.parquet as pq
from yarl import URL

from bot.columns import CAPTION_COLUMNS, KEY_COLUMNS, URL_COLUMNS, pick_column
from bot.config import DownloadSettings
from bot.index.sources import SourceError, SourceItem, parquet_row_batches
from bot.index.storage import DatasetEntry

CSV_DELIMITERS = {".csv": ",", ".tsv": "\t"}

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
_PARQUET_BATCH_ROWS = 65_536
# A CSV written from a float column (pandas does this to LAION's SAMPLE_ID) says "123.0".
_INTEGRAL_FLOAT_TEXT = re.compile(r"^-?\d+\.0*$")


# ---------------------------------------------------------------------------------------------
# Reading URL lists


@dataclass(frozen=True)
class UrlListColumns:
    """The columns of a URL list that were found (their names as the file spells them)."""

    url: str
    key: str | None
    caption: str | None


def find_url_columns(names: Sequence[str], path: Path) -> UrlListColumns:
    """Which of ``names`` hold the URL, the id and the caption; no URL column is an error."""
    url = pick_column(names, URL_COLUMNS)
    if url is None:
        raise SourceError(f"{path} has no URL column (columns: {', '.join(names) or 'none'})")
    return UrlListColumns(
        url=url, key=pick_column(names, KEY_COLUMNS), caption=pick_column(names, CAPTION_COLUMNS)
    )


def is_url_list(path: Path) -> bool:
    """A CSV/TSV file, or a Parquet file with a URL column and no ``phash`` column (a Parquet file
    with hashes is a precomputed-hash file, read by :func:`bot.index.sources.iter_hash_parquet`)."""
    if not path.is_file():
        return False
    suffix = path.suffix.lower()
    if suffix in CSV_DELIMITERS:
        return True
    if suffix != ".parquet":
        return False
    try:
        names = {name.lower() for name in pq.read_schema(path).names}
    except (OSError, ValueError):  # not Parquet at all: the hash-file reader says so clearly
        return False
    return "url" in names and "phash" not in names


def count_url_rows(path: Path) -> int:
    """Rows in a URL list: from the footer for Parquet, by reading the file through for CSV (a
    quoted caption may span lines, so lines are not rows)."""
    if path.suffix.lower() == ".parquet":
        return _open_parquet(path).metadata.num_rows
    return _count_csv_rows(path)


def read_url_rows(path: Path, start: int, stop: int) -> list[DatasetEntry]:
    """Rows ``[start, stop)`` of a URL list, as entries to download."""
    return list(iter_url_rows(path, start, stop))


def iter_url_rows(path: Path, start: int = 0, stop: int | None = None) -> Iterator[DatasetEntry]:
    """Rows ``[start, stop)`` of a URL list, streamed: Parquet by batches of the row groups that hold
    them, CSV record by record. Without an id column an entry's key is its row number."""
    if start < 0 or (stop is not None and stop < start):
        raise ValueError(f"bad row range [{start}, {stop})")
    if path.suffix.lower() == ".parquet":
        return _iter_parquet_rows(path, start, stop)
    return _iter_csv_rows(path, start, stop)


def _key_text(value: object, row_number: int) -> str:
    """An id as text, the same whether the list stores it as int64, float64 or CSV text."""
    if value is None or value == "":
        return str(row_number)
    if isinstance(value, float):
        if math.isnan(value):
            return str(row_number)
        if value.is_integer():
            return str(int(value))
    if isinstance(value, str) and _INTEGRAL_FLOAT_TEXT.match(value):
        return value.split(".", 1)[0]
    return str(value)


def _entry(row_number: int, url: object, key: object, caption: object) -> DatasetEntry:
    return DatasetEntry(
        key=_key_text(key, row_number),
        url=None if url is None else str(url),
        caption=None if caption is None else str(caption),
    )


def _open_parquet(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (OSError, ValueError) as exc:
        raise SourceError(f"cannot read Parquet file {path}: {exc}") from exc


def _iter_parquet_rows(path: Path, start: int, stop: int | None) -> Iterator[DatasetEntry]:
    parquet = _open_parquet(path)
    columns = find_url_columns(parquet.schema_arrow.names, path)
    wanted = [name for name in (columns.url, columns.key, columns.caption) if name is not None]
    row = start
    for data in parquet_row_batches(parquet, wanted, _PARQUET_BATCH_ROWS, start, stop):
        urls = data[columns.url]
        keys = data[columns.key] if columns.key else [None] * len(urls)
        captions = data[columns.caption] if columns.caption else [None] * len(urls)
        for offset, url in enumerate(urls):
            yield _entry(row + offset, url, keys[offset], captions[offset])
        row += len(urls)


class _CountedLines:
    """Decoded lines of a binary file that remember the byte offset after the last line handed out:
    the csv module reads a record's lines only as it needs them, so after each record this is where
    the next one starts."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self.offset = handle.tell()

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = self._handle.readline()
        if not line:
            raise StopIteration
        self.offset += len(line)
        return line.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class _CsvBookmark:
    """Where a CSV read stopped, so that reading the next range does not parse the file from the
    top again (a build reads a long list range after range)."""

    size: int
    mtime_ns: int
    row: int
    offset: int


_csv_bookmarks: dict[Path, _CsvBookmark] = {}
_MAX_CSV_BOOKMARKS = 64


def _csv_reader(lines: _CountedLines, path: Path) -> Iterator[list[str]]:
    return csv.reader(lines, delimiter=CSV_DELIMITERS.get(path.suffix.lower(), ","))


def _read_header(reader: Iterator[list[str]], path: Path) -> list[str]:
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise SourceError(f"cannot read the header of {path}: {exc}") from exc
    if not header:
        raise SourceError(f"{path} is empty: a URL list needs a header row naming its URL column")
    header[0] = header[0].removeprefix("\ufeff")  # a byte-order mark written by spreadsheet programs
    return header


def _count_csv_rows(path: Path) -> int:
    with path.open("rb") as handle:
        reader = _csv_reader(_CountedLines(handle), path)
        _read_header(reader, path)
        try:
            return sum(1 for record in reader if record)
        except csv.Error as exc:
            raise SourceError(f"{path}: {exc}") from exc


def _iter_csv_rows(path: Path, start: int, stop: int | None) -> Iterator[DatasetEntry]:
    status = path.stat()
    with path.open("rb") as handle:
        lines = _CountedLines(handle)
        reader = _csv_reader(lines, path)
        header = _read_header(reader, path)
        columns = find_url_columns(header, path)
        positions = (
            header.index(columns.url),
            header.index(columns.key) if columns.key else None,
            header.index(columns.caption) if columns.caption else None,
        )
        row = 0
        bookmark = _csv_bookmarks.get(path.resolve())
        same_file = bookmark is not None and (bookmark.size, bookmark.mtime_ns) == (
            status.st_size,
            status.st_mtime_ns,
        )
        if bookmark is not None and same_file and bookmark.row <= start:
            handle.seek(bookmark.offset)
            lines = _CountedLines(handle)
            reader = _csv_reader(lines, path)
            row = bookmark.row
        readable = True
        try:
            while stop is None or row < stop:
                try:
                    record = next(reader, None)
                except csv.Error as exc:
                    readable = False
                    raise SourceError(f"{path}: cannot read the row after row {row}: {exc}") from exc
                if record is None:
                    break
                if not record:  # a blank line is no row
                    continue
                number, row = row, row + 1
                if number >= start:
                    yield _entry(number, *(_field(record, position) for position in positions))
        finally:
            if readable:  # also when the reader of these rows stopped early: `row` counts what was read
                if len(_csv_bookmarks) >= _MAX_CSV_BOOKMARKS:
                    _csv_bookmarks.clear()
                _csv_bookmarks[path.resolve()] = _CsvBookmark(
                    status.st_size, status.st_mtime_ns, row, lines.offset
                )


def _field(record: list[str], position: int | None) -> str | None:
    return record[position] if position is not None and position < len(record) else None


# ---------------------------------------------------------------------------------------------
# Downloading


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


class _Downloader:
    """Downloads one entry's picture, with retries; runs on the download thread's event loop."""

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


class _DownloadThread:
    """An event loop with one aiohttp session, in a thread of its own: the build is synchronous and
    hands entries over one by one, getting a future for each."""

    def __init__(self, settings: DownloadSettings) -> None:
        self._settings = settings
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._downloader: _Downloader | None = None
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
            self._downloader = _Downloader(settings, session)
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
    ``SourceItem(entry, problem=kind)`` (see :data:`FAILURE_KINDS`), in the order of ``entries`` so
    that the same list always gives the same index.

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
