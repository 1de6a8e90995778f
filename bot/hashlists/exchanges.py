"""The hash exchanges a partner list can be fetched from, through python-threatexchange's clients.

Each exchange here turns its client's answers into :class:`FeedRecord`\\ s (a record's identity,
its fingerprints, whether it is a deletion) and a checkpoint (an integer: the next fetch starts
there), so :mod:`bot.hashlists.fetching` treats the three alike:

* StopNCII (``StopNCIIAPI.fetch_hashes_iter``): hash records from ``startTimestamp`` on, paged by
  ``nextPageToken``; the checkpoint is the last page's ``nextSetTimestamp``. A record whose
  ``hashStatus`` is Withdrawn or Deleted is a deletion.
* NCMEC (``NCMECHashAPI.get_entries_iter``): the entries changed from the checkpoint up to five
  seconds ago (NCMEC does not answer in time order, so only a whole range is a checkpoint), paged
  by ``next``; a ``deletedImage`` / ``deletedVideo`` is a deletion of that member's entry id.
* Meta ThreatExchange (``ThreatExchangeAPI.get_threat_updates``): a privacy group's
  ``/threat_updates`` from ``start_time`` on, paged by ``paging.next``; the checkpoint is the
  latest ``last_updated`` seen; ``should_delete`` is a deletion.

Credentials come only from the environment (:data:`CREDENTIALS`), never from the command line, and
are never printed or logged: an HTTP error is reported by its status and the exchange's host,
never by the library's message (which names the URL, and ThreatExchange's URL carries the token),
and :func:`quiet_library_logs` keeps the clients' own log lines (whole responses, with every hash,
at DEBUG; urllib3's request lines with the token) out of the log while a fetch runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
import threatexchange
from threatexchange.exchanges.clients.fb_threatexchange.api import ThreatExchangeAPI, is_valid_app_token
from threatexchange.exchanges.clients.fb_threatexchange.threat_updates import ThreatUpdateJSON
from threatexchange.exchanges.clients.ncmec.hash_api import NCMECEnvironment, NCMECHashAPI
from threatexchange.exchanges.clients.stopncii.api import StopNCIIAPI, StopNCIICaseStatus

from bot.errors import RemovalDeskError

EXCHANGES = ("stopncii", "ncmec", "threatexchange")

# The environment variables each exchange's credentials are read from, in the order asked for.
CREDENTIALS: dict[str, tuple[str, ...]] = {
    "stopncii": ("REMOVAL_DESK_STOPNCII_SUBSCRIPTION_KEY", "REMOVAL_DESK_STOPNCII_FETCH_KEY"),
    "ncmec": ("REMOVAL_DESK_NCMEC_USER", "REMOVAL_DESK_NCMEC_PASSWORD"),
    "threatexchange": ("REMOVAL_DESK_THREATEXCHANGE_TOKEN",),
}


def base_url_variable(exchange: str) -> str:
    """The environment variable that points ``exchange``'s client elsewhere (a test server)."""
    return f"REMOVAL_DESK_{exchange.upper()}_BASE_URL"


# The fingerprint types of each exchange that are hashes of a still picture, by this project's
# list signal names (bot.hashlists.signals). Any other type (a video's MD5, SHA-1, PhotoDNA,
# TMK...) is counted as one the index cannot match and not stored.
STOPNCII_TYPES = {"ImagePDQ": "pdq"}
NCMEC_IMAGE_TYPES = {"pdq": "pdq", "md5": "md5"}
THREATEXCHANGE_TYPES = {"HASH_PDQ": "pdq", "HASH_MD5": "md5"}
# NCMEC orders its answers by entry, not by time: stop a little before now so that an entry
# changed while we fetch falls into the next range (python-threatexchange's NCMEC exchange does).
NCMEC_END_MARGIN_SECONDS = 5
THREATEXCHANGE_PAGE_SIZE = 500


class ExchangeError(RemovalDeskError, RuntimeError):
    """An exchange could not be asked (no credentials) or refused or failed to answer."""


@dataclass(frozen=True)
class FeedHash:
    """One fingerprint of a record: the exchange's type name, ours (None: not a type we take)."""

    exchange_type: str
    signal: str | None
    value: str


@dataclass(frozen=True)
class FeedRecord:
    """One record of a feed. A later record with the same ``key`` replaces this one."""

    key: str
    deleted: bool
    hashes: tuple[FeedHash, ...] = ()
    entry_id: str | None = None
    category: str | None = None
    list_source: str | None = None


@dataclass
class Fetched:
    """What one fetch received, page by page, and where the next fetch starts."""

    records: list[FeedRecord] = field(default_factory=list)
    pages: int = 0
    checkpoint: int | None = None
    unreadable: int = 0  # records the library could not read and left out (it logs them)


class Exchange(Protocol):
    """What the fetch command needs of an exchange, whichever it is."""

    @property
    def name(self) -> str: ...

    @property
    def feed(self) -> str:
        """Which of the exchange's feeds: a checkpoint belongs to one."""

    def fetch(self, since: int | None) -> Fetched: ...


@dataclass
class StopNCII:
    """StopNCII's hash records; the checkpoint is the last page's ``nextSetTimestamp``."""

    client: StopNCIIAPI
    name: str = "stopncii"
    feed: str = "stopncii"

    def fetch(self, since: int | None) -> Fetched:
        fetched = Fetched()
        start = StopNCIIAPI.DEFAULT_START_TIME if since is None else since
        for page in self.client.fetch_hashes_iter(start_timestamp=start):
            fetched.pages += 1
            fetched.checkpoint = page.nextSetTimestamp
            for record in page.hashRecords:
                kind = record.signalType.value
                fetched.records.append(
                    FeedRecord(
                        f"{kind} {record.hashValue}",
                        record.hashStatus in (StopNCIICaseStatus.Withdrawn, StopNCIICaseStatus.Deleted),
                        (FeedHash(kind, STOPNCII_TYPES.get(kind), record.hashValue),),
                    )
                )
        return fetched


@dataclass
class NCMEC:
    """One NCMEC database's entries; the checkpoint is the end of the range read whole."""

    client: NCMECHashAPI
    environment: str
    name: str = "ncmec"

    @property
    def feed(self) -> str:
        return f"ncmec {self.environment}"

    def fetch(self, since: int | None) -> Fetched:
        fetched = Fetched()
        end = int(time.time()) - NCMEC_END_MARGIN_SECONDS
        for page in self.client.get_entries_iter(start_timestamp=since or 0, end_timestamp=end):
            fetched.pages += 1
            for entry in page.updates:
                types = NCMEC_IMAGE_TYPES if entry.entry_type.value == "image" else {}
                fetched.records.append(
                    FeedRecord(
                        f"{entry.member_id}-{entry.id}",
                        entry.deleted,
                        tuple(
                            FeedHash(f"{entry.entry_type.value} {kind}", types.get(kind), value)
                            for kind, value in entry.fingerprints.items()
                        ),
                        f"{entry.member_id}-{entry.id}",
                        entry.classification,
                        str(entry.member_id),
                    )
                )
        fetched.checkpoint = end  # only now: the whole range was read
        return fetched


@dataclass
class ThreatExchange:
    """A privacy group's ``/threat_updates``; the checkpoint is the latest update's time."""

    client: ThreatExchangeAPI
    privacy_group: int
    name: str = "threatexchange"

    @property
    def feed(self) -> str:
        return f"threatexchange {self.privacy_group}"

    def fetch(self, since: int | None) -> Fetched:
        fetched = Fetched(checkpoint=since)
        cursor = self.client.get_threat_updates(
            self.privacy_group,
            start_time=since,
            page_size=THREATEXCHANGE_PAGE_SIZE,
            fields=ThreatUpdateJSON.te_threat_updates_fields(),
            decode_fn=ThreatUpdateJSON,
        )
        for page in cursor:
            fetched.pages += 1
            for update in page:
                fetched.checkpoint = max(fetched.checkpoint or 0, update.time)
                fetched.records.append(_threat_update(update))
        return fetched


def _threat_update(update: ThreatUpdateJSON) -> FeedRecord:
    raw = update.raw_json
    owned = [d for d in raw.get("descriptors", {}).get("data", []) if "owner" in d]
    return FeedRecord(
        f"{update.threat_type} {update.indicator}",
        update.should_delete,
        (FeedHash(update.threat_type, THREATEXCHANGE_TYPES.get(update.threat_type), update.indicator),),
        str(raw["id"]) if "id" in raw else None,
        # The first owner's verdict (MALICIOUS, NON_MALICIOUS...): what a reviewer wants to see.
        str(owned[0]["status"]) if owned and "status" in owned[0] else None,
        str(owned[0]["owner"]["id"]) if owned else None,
    )


def _required(environ: Mapping[str, str], exchange: str) -> list[str]:
    values = []
    for name in CREDENTIALS[exchange]:
        value = environ.get(name, "").strip()
        if not value:
            raise ExchangeError(
                f"{name} is not set: {exchange} credentials are read from the environment only "
                f"({', '.join(CREDENTIALS[exchange])}); see the README, 'Fetching lists from exchanges'"
            )
        values.append(value)
    return values


def open_exchange(
    exchange: str,
    environ: Mapping[str, str],
    base_url: str | None = None,
    ncmec_environment: str = "Industry",
    privacy_group: int | None = None,
) -> Exchange:
    """The client of ``exchange`` with the credentials in ``environ`` (ExchangeError naming the
    variable when one is missing); ``base_url`` (else ``$REMOVAL_DESK_<EXCHANGE>_BASE_URL``)
    replaces the exchange's own address."""
    base_url = (base_url or environ.get(base_url_variable(exchange), "")).rstrip("/") or None
    if exchange == "stopncii":
        subscription_key, fetch_key = _required(environ, exchange)
        return StopNCII(StopNCIIAPI(subscription_key, fetch_key, base_url_override=base_url))
    if exchange == "ncmec":
        if ncmec_environment not in NCMECEnvironment.__members__:
            raise ExchangeError(
                f"unknown NCMEC environment {ncmec_environment!r}: one of "
                f"{', '.join(NCMECEnvironment.__members__)}"
            )
        user, password = _required(environ, exchange)
        client = NCMECHashAPI(user, password, NCMECEnvironment[ncmec_environment])
        if base_url:  # the client takes no address but its environment's; it sends to _base_url
            client._base_url = base_url
        return NCMEC(client, ncmec_environment)
    if exchange == "threatexchange":
        if privacy_group is None:
            raise ExchangeError("threatexchange needs --privacy-group ID (the privacy group to fetch)")
        (token,) = _required(environ, exchange)
        if not is_valid_app_token(token):
            raise ExchangeError(
                f"{CREDENTIALS[exchange][0]} does not look like a ThreatExchange app access token "
                "(APP_ID|SECRET)"
            )
        return ThreatExchange(ThreatExchangeAPI(token, endpoint_override=base_url), privacy_group)
    raise ExchangeError(f"unknown exchange {exchange!r}: one of {', '.join(EXCHANGES)}")


def fetch(exchange: Exchange, since: int | None) -> Fetched:
    """Everything ``exchange`` changed since the checkpoint ``since`` (None: from the start).

    A failure is said as a sentence naming neither a credential nor a hash: the library's own
    messages carry the URL (ThreatExchange's with its token) or the whole response."""
    host = _host(exchange)
    with quiet_library_logs() as guard:
        try:
            fetched = exchange.fetch(since)
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            if status in (401, 403):
                raise ExchangeError(
                    f"{exchange.name} at {host} refused the credentials (HTTP {status}): check "
                    f"{' and '.join(CREDENTIALS[exchange.name])}; nothing stored"
                ) from None
            raise ExchangeError(f"{exchange.name} at {host} answered HTTP {status}; nothing stored") from None
        except requests.exceptions.RetryError:  # the client retries 429 and 5xx four times
            raise ExchangeError(
                f"{exchange.name} at {host} kept answering with server errors; nothing stored, "
                "try again later"
            ) from None
        except requests.RequestException as exc:
            raise ExchangeError(
                f"could not reach {exchange.name} at {host} ({type(exc).__name__}); nothing stored"
            ) from None
        except Exception as exc:  # a parse failure: NCMEC's quotes the whole response in its message
            raise ExchangeError(
                f"{exchange.name} at {host} sent an answer its client could not read "
                f"({type(exc).__name__}); nothing stored"
            ) from None
    fetched.unreadable = guard.errors
    return fetched


def _host(exchange: Exchange) -> str:
    client: Any = getattr(exchange, "client", None)
    return urlsplit(str(getattr(client, "_base_url", ""))).netloc or "?"


_LIBRARY = str(Path(threatexchange.__file__).parent)


class _LibraryRecords(logging.Filter):
    """Drops the records python-threatexchange's clients log through the root logger (whole
    responses at DEBUG; a record it could not read, with its hash, at ERROR), counting the latter."""

    def __init__(self) -> None:
        super().__init__()
        self.errors = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.pathname.startswith(_LIBRARY):
            return True
        self.errors += record.levelno >= logging.ERROR
        return False


@contextmanager
def quiet_library_logs() -> Iterator[_LibraryRecords]:
    """While a fetch runs: the clients' log lines dropped, urllib3 (whose request and retry lines
    name the URL with its query, ThreatExchange's token in it) held at ERROR."""
    root, urllib3 = logging.getLogger(), logging.getLogger("urllib3")
    guard, level = _LibraryRecords(), urllib3.level
    root.addFilter(guard)
    urllib3.setLevel(logging.ERROR)
    try:
        yield guard
    finally:
        root.removeFilter(guard)
        urllib3.setLevel(level)
