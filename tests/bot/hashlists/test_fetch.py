"""``removal-desk hash-lists fetch``, driven through ``bot.cli.main`` against fakes of StopNCII,
NCMEC and ThreatExchange on 127.0.0.1 that speak what python-threatexchange's clients expect
(StopNCII's JSON ``FetchHashes`` with ``nextPageToken``; NCMEC's XML ``/v2/entries`` with a
relative ``paging/next``; the Graph API's ``/<group>/threat_updates/`` with an absolute
``paging.next``): what is stored, pages followed, the checkpoint resumed, the same content again,
refused and missing credentials, malformed hashes, deletions, and nothing secret or hashed in the log.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from xml.sax.saxutils import escape

import pytest

from bot.config import load_settings
from bot.hashlist_cli import matchable_kinds
from tests.bot.hashlists import test_import
from tests.bot.hashlists.test_import import rows, run
from tests.bot.hashlists.test_reading import MD5, hexes

SUBSCRIPTION_KEY, FETCH_KEY = "subscription-key-0123", "fetch-key-4567"
NCMEC_USER, NCMEC_PASSWORD = "esp-user", "esp-password-89"
TE_TOKEN = "1234567890|" + "abcdefghijklmnopqrstuvwx"
PRIVACY_GROUP = 303
PAGE = 2  # records per page: every test's feed spans pages
T0 = 1_700_000_000  # the feeds' timestamps: well before now, as NCMEC's range ends near now
index_dir = test_import.index_dir  # the import tests' two-picture index, a fixture by this name
index_without_md5 = test_import.index_without_md5  # the same as built before file MD5s were kept
PREFIXES = {"stopncii": "v1", "ncmec": "ncmec", "threatexchange": "te"}  # where each fake answers
NCMEC_DATE = "%Y-%m-%dT%H:%M:%SZ"  # as the client writes it (local time, though it says Z)


def pdq(n: int) -> str:
    return hexes(f"fetched-pdq-{n}", 64)


@dataclass
class FakeExchanges:
    """One HTTP server answering as the three exchanges, from the records a test puts in."""

    stopncii: list[dict[str, Any]] = field(default_factory=list)
    ncmec: list[dict[str, Any]] = field(default_factory=list)
    threat_updates: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    failing: int | None = None  # an HTTP status every request is answered with
    port: int = 0

    def url(self, exchange: str) -> str:
        return f"http://127.0.0.1:{self.port}/{PREFIXES[exchange]}"

    def asked(self, path: str) -> list[dict[str, str]]:
        return [query for asked_path, query in self.requests if asked_path == path]


class _Handler(BaseHTTPRequestHandler):
    fake: FakeExchanges

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        self.fake.requests.append((parts.path, query))
        if self.fake.failing is not None:
            self._send(self.fake.failing, "text/plain", b"failing")
        elif parts.path == "/v1/FetchHashes":
            self._stopncii(query)
        elif parts.path == "/ncmec/v2/entries":
            self._ncmec(query)
        elif parts.path == f"/te/{PRIVACY_GROUP}/threat_updates/":
            self._threat_updates(query)
        else:
            self._send(404, "text/plain", b"no such path")

    def _send(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _stopncii(self, query: dict[str, str]) -> None:
        if (self.headers["x-functions-key"], self.headers["Ocp-Apim-Subscription-Key"]) != (
            FETCH_KEY, SUBSCRIPTION_KEY,
        ):  # fmt: skip
            self._send(401, "application/json", b'{"message": "Access denied"}')
            return
        start, offset = int(query["startTimestamp"]), int(query.get("nextPageToken", "0"))
        chosen = [record for record in self.fake.stopncii if record["lastModtimestamp"] >= start]
        more = offset + PAGE < len(chosen)
        page = {
            "count": len(chosen[offset : offset + PAGE]),
            "nextPageToken": str(offset + PAGE) if more else None,
            "nextSetTimestamp": max((r["lastModtimestamp"] for r in chosen), default=start - 1) + 1,
            "hasMoreRecords": more,
            "hashRecords": chosen[offset : offset + PAGE],
        }
        self._send(200, "application/json", json.dumps(page).encode())

    def _ncmec(self, query: dict[str, str]) -> None:
        expected = base64.b64encode(f"{NCMEC_USER}:{NCMEC_PASSWORD}".encode()).decode()
        if self.headers["Authorization"] != f"Basic {expected}":
            self._send(401, "text/plain", b"Unauthorized")
            return
        since, until = (datetime.strptime(query[key], NCMEC_DATE).timestamp() for key in ("from", "to"))
        chosen = [entry for entry in self.fake.ncmec if since <= entry["ts"] < until]
        offset = int(query.get("start", "0"))
        page = chosen[offset : offset + PAGE]
        xml = ['<?xml version="1.0" encoding="UTF-8"?>']
        xml.append('<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">')
        if page:
            latest = datetime.fromtimestamp(max(entry["ts"] for entry in page)).strftime(NCMEC_DATE)
            xml.append(f'<images count="{len(page)}" maxTimestamp="{latest}">')
            xml.extend(_ncmec_entry(entry) for entry in page if entry["kind"] == "image")
            xml.append("</images>")
            videos = [entry for entry in page if entry["kind"] == "video"]
            if videos:
                xml.append(f'<videos count="{len(videos)}" maxTimestamp="{latest}">')
                xml.extend(_ncmec_entry(entry) for entry in videos)
                xml.append("</videos>")
        if offset + PAGE < len(chosen):
            following = urlencode(
                {"from": query["from"], "to": query["to"], "start": offset + PAGE, "size": PAGE,
                 "max": len(chosen)}
            )  # fmt: skip
            xml.append(f"<paging><next>{escape('/v2/entries?' + following)}</next></paging>")
        xml.append("</queryResult>")
        self._send(200, "application/xml", "".join(xml).encode())

    def _threat_updates(self, query: dict[str, str]) -> None:
        if query.get("access_token") != TE_TOKEN:
            body = {
                "error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}
            }
            self._send(401, "application/json", json.dumps(body).encode())
            return
        start = int(query.get("start_time", "0"))
        # Inclusive, the pessimistic reading: the record at the checkpoint comes again.
        chosen = [update for update in self.fake.threat_updates if update["last_updated"] >= start]
        offset = int(query.get("after", "0"))
        answer: dict[str, Any] = {"data": chosen[offset : offset + PAGE]}
        if offset + PAGE < len(chosen):
            following = {**query, "after": str(offset + PAGE)}
            answer["paging"] = {"next": f"{self.fake.url('threatexchange')}{urlsplit(self.path).path[3:]}"
                                f"?{urlencode(following)}"}  # fmt: skip
        self._send(200, "application/json", json.dumps(answer).encode())


def _ncmec_entry(entry: dict[str, Any]) -> str:
    tag = ("deleted" + entry["kind"].capitalize()) if entry.get("deleted") else entry["kind"]
    inner = [f'<member id="{entry["member"]}">Member {entry["member"]}</member>', f"<id>{entry['id']}</id>"]
    if not entry.get("deleted"):
        inner.append(f"<classification>{entry['classification']}</classification>")
        inner.append(
            "<fingerprints>"
            + "".join(f"<{kind}>{value}</{kind}>" for kind, value in entry["fingerprints"].items())
            + "</fingerprints>"
        )
    return f"<{tag}>{''.join(inner)}</{tag}>"


@pytest.fixture
def fake() -> Iterator[FakeExchanges]:
    exchanges = FakeExchanges()
    handler = type("Handler", (_Handler,), {"fake": exchanges})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    exchanges.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield exchanges
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def credentials(monkeypatch) -> None:
    """Every exchange's credentials in the environment; a test takes one away or changes it."""
    for name, value in (
        ("REMOVAL_DESK_STOPNCII_SUBSCRIPTION_KEY", SUBSCRIPTION_KEY),
        ("REMOVAL_DESK_STOPNCII_FETCH_KEY", FETCH_KEY),
        ("REMOVAL_DESK_NCMEC_USER", NCMEC_USER),
        ("REMOVAL_DESK_NCMEC_PASSWORD", NCMEC_PASSWORD),
        ("REMOVAL_DESK_THREATEXCHANGE_TOKEN", TE_TOKEN),
    ):
        monkeypatch.setenv(name, value)


@dataclass
class Desk:
    """The command line with a throw-away ticket database, the small index and the fakes."""

    capsys: Any
    fake: FakeExchanges
    index: Path
    db: Path
    md5: bool  # whether the index keeps file MD5s, so that MD5 fingerprints are stored

    def run(self, *argv: object) -> tuple[int, str, str]:
        return run(self.capsys, *argv)

    def fetch(self, exchange: str, *extra: object) -> tuple[int, dict[str, Any] | None, str]:
        """``hash-lists fetch EXCHANGE --json`` from the fake; (exit code, report, stderr)."""
        options = ["--privacy-group", PRIVACY_GROUP] if exchange == "threatexchange" else []
        code, out, err = self.run(
            "hash-lists", "fetch", exchange, "--index", self.index, "--db", self.db,
            "--base-url", self.fake.url(exchange), *options, *extra, "--json",
        )  # fmt: skip
        return code, json.loads(out) if out.strip() else None, err


@pytest.fixture(params=["index_dir", "index_without_md5"])
def desk(request, capsys, fake, tmp_path: Path) -> Desk:
    """Every fetch test against an index that keeps file MD5s and one built before it did: what
    is stored of an exchange's MD5s depends on it."""
    index: Path = request.getfixturevalue(request.param)
    md5 = "md5" in matchable_kinds(index, load_settings(with_deployment_files=False))
    assert md5 == (request.param == "index_dir")
    return Desk(capsys, fake, index, tmp_path / "db" / "tickets.sqlite3", md5)


def stored(db: Path) -> list[tuple[Any, ...]]:
    return rows(
        db,
        "SELECT l.id, l.source, l.format, e.line, e.signal_type, e.hash, e.entry_id, e.category, "
        "e.list_source FROM hash_list_entries e JOIN hash_lists l ON l.id = e.list_id ORDER BY l.id, e.line",
    )


def stopncii_record(value: str, at: int, kind: str = "ImagePDQ", status: str = "Active") -> dict[str, Any]:
    return {"lastModtimestamp": at, "signalType": kind, "hashValue": value, "hashStatus": status,
            "caseNumbers": {"case-1": status}, "CSPFeedbacks": []}  # fmt: skip


def test_stopncii_pages_are_followed_and_the_image_hashes_stored(desk) -> None:
    desk.fake.stopncii = [
        stopncii_record(pdq(1), T0 + 1),
        stopncii_record(pdq(2), T0 + 2),
        stopncii_record(MD5, T0 + 3, kind="VideoMD5"),
        stopncii_record(pdq(3), T0 + 4, status="Withdrawn"),
        stopncii_record(pdq(4), T0 + 5),
        stopncii_record(pdq(5), T0 + 6, kind="NeuralHash"),  # a type the library does not know
    ]
    code, report, _ = desk.fetch("stopncii")
    assert code == 0
    assert report["status"] == "stored"
    assert (report["pages"], report["records"], report["deleted"], report["unreadable"]) == (3, 5, 1, 1)
    assert report["not_matchable"] == {"VideoMD5": 1}
    assert report["entries"] == {"pdq": 3 - 1 + 1}  # the withdrawn one is not listed
    assert report["checkpoint"] == {"before": None, "after": T0 + 7}
    assert [query.get("nextPageToken") for query in desk.fake.asked("/v1/FetchHashes")] == [None, "2", "4"]
    list_id = report["list"]["id"]
    assert stored(desk.db) == [
        (list_id, "stopncii", "stopncii", 1, "pdq", pdq(1), None, None, None),
        (list_id, "stopncii", "stopncii", 2, "pdq", pdq(2), None, None, None),
        (list_id, "stopncii", "stopncii", 3, "pdq", pdq(4), None, None, None),
    ]


def test_the_checkpoint_resumes_and_a_deletion_is_counted_not_applied(desk) -> None:
    desk.fake.stopncii = [stopncii_record(pdq(1), T0 + 1), stopncii_record(pdq(2), T0 + 2)]
    code, first, _ = desk.fetch("stopncii")
    assert (code, first["status"], first["checkpoint"]["after"]) == (0, "stored", T0 + 3)

    desk.fake.stopncii += [
        stopncii_record(pdq(5), T0 + 10),
        stopncii_record(pdq(1), T0 + 11, status="Deleted"),
    ]
    code, second, _ = desk.fetch("stopncii")
    assert code == 0
    assert desk.fake.asked("/v1/FetchHashes")[-1]["startTimestamp"] == str(T0 + 3)
    assert (second["records"], second["deleted"], second["relisted"]) == (2, 1, 0)
    assert second["checkpoint"] == {"before": T0 + 3, "after": T0 + 12}
    # The new list holds only what came after the checkpoint; the deleted hash stays in the first.
    assert [(row[0], row[5]) for row in stored(desk.db)] == [
        (first["list"]["id"], pdq(1)), (first["list"]["id"], pdq(2)), (second["list"]["id"], pdq(5)),
    ]  # fmt: skip

    code, third, _ = desk.fetch("stopncii")
    assert (code, third["status"], third["records"], third["stored"]) == (0, "nothing new", 0, False)
    assert third["checkpoint"] == {"before": T0 + 12, "after": T0 + 12}


def test_the_same_content_fetched_again_stores_nothing(desk) -> None:
    desk.fake.stopncii = [stopncii_record(pdq(n), T0 + n) for n in range(1, 4)]
    code, first, _ = desk.fetch("stopncii")
    assert (code, first["status"]) == (0, "stored")
    code, again, _ = desk.fetch("stopncii", "--restart")
    assert desk.fake.asked("/v1/FetchHashes")[-1]["startTimestamp"] == "10"  # the library's start
    assert (code, again["status"], again["stored"], again["relisted"]) == (0, "already imported", False, 3)
    assert again["list"]["id"] == first["list"]["id"]
    assert rows(desk.db, "SELECT COUNT(*) FROM hash_lists") == [(1,)]
    # Under another source the same content is another list, as with import.
    code, other, _ = desk.fetch("stopncii", "--source", "stopncii-eu")
    assert (code, other["status"], other["source"]) == (0, "stored", "stopncii-eu")


@pytest.mark.parametrize(
    ("exchange", "variable"),
    [("stopncii", "REMOVAL_DESK_STOPNCII_FETCH_KEY"), ("ncmec", "REMOVAL_DESK_NCMEC_PASSWORD"),
     ("threatexchange", "REMOVAL_DESK_THREATEXCHANGE_TOKEN")],
)  # fmt: skip
def test_refused_credentials_are_a_clear_error_and_store_nothing(
    desk, monkeypatch, exchange, variable
) -> None:
    wrong = "9876543210|" + "zyxwvutsrqponmlkjihgfedc" if exchange == "threatexchange" else "wrong-secret-42"
    monkeypatch.setenv(variable, wrong)
    desk.fake.stopncii = [stopncii_record(pdq(1), T0 + 1)]
    code, report, err = desk.fetch(exchange)
    assert code == 2
    assert report is None
    assert "refused the credentials (HTTP 401)" in err
    assert variable in err
    assert "nothing stored" in err
    assert wrong not in err
    assert wrong.rsplit("|", maxsplit=1)[-1] not in err
    assert desk.fake.requests  # the fake was asked, and said no
    assert rows(desk.db, "SELECT COUNT(*) FROM hash_lists") == [(0,)]
    assert rows(desk.db, "SELECT COUNT(*) FROM counters WHERE name LIKE 'hash-list checkpoint%'") == [(0,)]


@pytest.mark.parametrize(
    ("exchange", "variable"),
    [("stopncii", "REMOVAL_DESK_STOPNCII_SUBSCRIPTION_KEY"), ("ncmec", "REMOVAL_DESK_NCMEC_USER"),
     ("threatexchange", "REMOVAL_DESK_THREATEXCHANGE_TOKEN")],
)  # fmt: skip
def test_a_missing_credential_is_named_and_nothing_is_asked(desk, monkeypatch, exchange, variable) -> None:
    monkeypatch.delenv(variable)
    code, report, err = desk.fetch(exchange)
    assert (code, report) == (2, None)
    assert f"error: {variable} is not set" in err
    assert "environment only" in err
    assert desk.fake.requests == []


def test_malformed_hashes_are_counted_bad_like_import(desk) -> None:
    desk.fake.stopncii = [
        stopncii_record(pdq(1), T0 + 1),
        stopncii_record("zz" + pdq(2)[2:], T0 + 2),
        stopncii_record(pdq(3)[:60], T0 + 3),
        stopncii_record(pdq(4), T0 + 4),
    ]
    code, refused, _ = desk.fetch("stopncii")
    assert (code, refused["status"], refused["stored"]) == (1, "refused", False)
    assert refused["bad"] == {
        "not hex": {"count": 1, "lines": [2]},
        "wrong length": {"count": 1, "lines": [3]},
    }
    assert refused["checkpoint"] == {"before": None, "after": None}
    assert rows(desk.db, "SELECT COUNT(*) FROM hash_lists") == [(0,)]

    code, kept, _ = desk.fetch("stopncii", "--skip-bad")
    assert desk.fake.asked("/v1/FetchHashes")[-1]["startTimestamp"] == "10"  # the refusal did not move it
    assert (code, kept["status"], kept["bad_lines"]) == (0, "stored", 2)
    assert [row[5] for row in stored(desk.db)] == [pdq(1), pdq(4)]
    assert rows(desk.db, "SELECT bad_lines FROM hash_lists") == [(2,)]


def test_the_text_report_names_the_bad_hashes_by_position(desk) -> None:
    desk.fake.stopncii = [stopncii_record(pdq(1), T0 + 1), stopncii_record("not-a-hash", T0 + 2)]
    code, out, err = desk.run(
        "hash-lists", "fetch", "stopncii", "--index", desk.index, "--db", desk.db,
        "--base-url", desk.fake.url("stopncii"),
    )  # fmt: skip
    assert code == 1
    assert "error: 1 bad hash(es), numbered in the order stopncii sent them; nothing stored" in err
    assert "not hex: 1 (line 2)" in err
    assert pdq(1) not in out + err


def ncmec_entry(entry_id: str, at: int, kind: str = "image", **fingerprints: str) -> dict[str, Any]:
    return {"id": entry_id, "ts": at, "kind": kind, "member": 42, "classification": "A1",
            "fingerprints": fingerprints}  # fmt: skip


def test_ncmec_entries_pages_and_deletions(desk) -> None:
    desk.fake.ncmec = [
        ncmec_entry("image1", T0 + 1, pdq=pdq(1), md5=MD5, sha1="a1" * 20),
        ncmec_entry("image2", T0 + 2, pdq=pdq(2), md5=MD5),
        ncmec_entry("video1", T0 + 3, kind="video", md5=MD5),
        {"id": "image2", "ts": T0 + 4, "kind": "image", "member": 42, "deleted": True},
        ncmec_entry("image3", T0 + 5, pdq=pdq(3)),
    ]
    code, report, _ = desk.fetch("ncmec")
    assert code == 0
    assert (report["pages"], report["records"], report["deleted"]) == (3, 5, 1)
    assert report["feed"] == "ncmec Industry"
    asked = desk.fake.asked("/ncmec/v2/entries")
    assert [query.get("start") for query in asked] == [None, "2", "4"]
    # The next fetch asks from where this one's range ended.
    assert desk.fetch("ncmec")[0] == 0
    resumed = datetime.strptime(desk.fake.asked("/ncmec/v2/entries")[-1]["from"], NCMEC_DATE)
    assert int(resumed.timestamp()) == report["checkpoint"]["after"]
    list_id = report["list"]["id"]
    if desk.md5:  # an index that keeps file MD5s takes an image's MD5 too
        assert report["not_matchable"] == {"image sha1": 1, "video md5": 1}
        assert [row[3:7] for row in stored(desk.db)] == [
            (1, "pdq", pdq(1), "42-image1"), (2, "md5", MD5, "42-image1"), (3, "pdq", pdq(3), "42-image3"),
        ]  # fmt: skip
        return
    assert report["not_matchable"] == {"image md5": 1, "image sha1": 1, "video md5": 1}
    assert stored(desk.db) == [
        (list_id, "ncmec", "ncmec", 1, "pdq", pdq(1), "42-image1", "A1", "42"),
        (list_id, "ncmec", "ncmec", 2, "pdq", pdq(3), "42-image3", "A1", "42"),
    ]


def threat_update(value: str, at: int, kind: str = "HASH_PDQ", delete: bool = False) -> dict[str, Any]:
    update: dict[str, Any] = {"id": str(at), "indicator": value, "type": kind, "last_updated": at,
                              "should_delete": delete}  # fmt: skip
    if not delete:
        update["descriptors"] = {"data": [{"id": "77", "owner": {"id": "555"}, "status": "MALICIOUS",
                                           "tags": ["nsfw"]}]}  # fmt: skip
    return update


def test_threatexchange_updates_pages_and_resume(desk) -> None:
    desk.fake.threat_updates = [
        threat_update(pdq(1), T0 + 1),
        threat_update("https://example.org/x", T0 + 2, kind="URI"),
        threat_update(pdq(2), T0 + 3, delete=True),
        threat_update(pdq(3), T0 + 4),
        threat_update(MD5, T0 + 5, kind="HASH_MD5"),
    ]
    code, report, _ = desk.fetch("threatexchange")
    assert code == 0
    assert (report["pages"], report["records"], report["deleted"]) == (3, 5, 1)
    assert report["not_matchable"] == ({"URI": 1} if desk.md5 else {"URI": 1, "HASH_MD5": 1})
    assert report["checkpoint"] == {"before": None, "after": T0 + 5}
    assert [query.get("after") for query in desk.fake.asked(f"/te/{PRIVACY_GROUP}/threat_updates/")] == [
        None,
        "2",
        "4",
    ]
    list_id = report["list"]["id"]
    assert stored(desk.db) == [
        (list_id, "threatexchange", "threatexchange", 1, "pdq", pdq(1), str(T0 + 1), "MALICIOUS", "555"),
        (list_id, "threatexchange", "threatexchange", 2, "pdq", pdq(3), str(T0 + 4), "MALICIOUS", "555"),
    ] + ([(list_id, "threatexchange", "threatexchange", 3, "md5", MD5, str(T0 + 5), "MALICIOUS", "555")]
         if desk.md5 else [])  # fmt: skip
    desk.fake.threat_updates.append(threat_update(pdq(6), T0 + 9))
    code, resumed, _ = desk.fetch("threatexchange")
    assert desk.fake.asked(f"/te/{PRIVACY_GROUP}/threat_updates/")[-1]["start_time"] == str(T0 + 5)
    # The update at the checkpoint's second (the MD5) comes again: this fake reads start_time inclusively.
    assert (code, resumed["records"]) == (0, 2)
    assert resumed["entries"] == ({"pdq": 1, "md5": 1} if desk.md5 else {"pdq": 1})
    assert [row[5] for row in stored(desk.db)][-1:] == [pdq(6)]


def test_threatexchange_needs_a_privacy_group(desk) -> None:
    code, _, err = desk.run(
        "hash-lists", "fetch", "threatexchange", "--index", desk.index, "--db", desk.db,
        "--base-url", desk.fake.url("threatexchange"),
    )  # fmt: skip
    assert code == 2
    assert "--privacy-group" in err
    assert desk.fake.requests == []


def test_an_unreachable_exchange_is_a_clear_error(desk) -> None:
    code, _, err = desk.run(
        "hash-lists", "fetch", "threatexchange", "--index", desk.index, "--db", desk.db,
        "--privacy-group", PRIVACY_GROUP, "--base-url", "http://127.0.0.1:9/te",
    )  # fmt: skip
    assert code == 2
    assert "could not reach threatexchange at 127.0.0.1:9" in err
    assert TE_TOKEN.split("|")[1] not in err


def test_a_failing_exchange_is_retried_then_a_clear_error(desk) -> None:
    desk.fake.failing = 503
    code, report, err = desk.fetch("stopncii")
    assert (code, report) == (2, None)
    assert "kept answering with server errors" in err
    assert len(desk.fake.requests) == 5  # the client's own retries: 4 after the first
    desk.fake.failing = 400
    code, _, err = desk.fetch("stopncii")
    assert (code, err.strip()) == (
        2,
        f"error: stopncii at 127.0.0.1:{desk.fake.port} answered HTTP 400; nothing stored",
    )


def test_nothing_secret_or_hashed_reaches_the_log_at_debug(desk, monkeypatch) -> None:
    monkeypatch.setenv("REMOVAL_DESK_LOGGING_LEVEL", "DEBUG")
    desk.fake.stopncii = [stopncii_record(pdq(n), T0 + n) for n in range(1, 4)]
    desk.fake.threat_updates = [threat_update(pdq(n), T0 + n) for n in range(4, 7)]
    desk.fake.ncmec = [ncmec_entry(f"image{n}", T0 + n, pdq=pdq(n)) for n in range(7, 10)]
    log = ""
    for exchange in ("stopncii", "threatexchange", "ncmec"):
        code, _, err = desk.fetch(exchange)
        assert code == 0
        log += err
    assert "imported hash list" in log  # the log was on, at DEBUG
    for secret in (*(pdq(n) for n in range(1, 10)), SUBSCRIPTION_KEY, FETCH_KEY, NCMEC_PASSWORD, TE_TOKEN,
                   TE_TOKEN.split("|")[1], "access_token"):  # fmt: skip
        assert secret not in log


def test_a_fetched_list_is_scanned_as_an_imported_one(desk) -> None:
    from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_bytes

    coffee = pdq_from_bytes((test_import.DATASET / "coffee.jpg").read_bytes())[0]
    desk.fake.ncmec = [ncmec_entry("coffee", T0 + 1, pdq=coffee), ncmec_entry("other", T0 + 2, pdq=pdq(1))]
    code, report, _ = desk.fetch("ncmec")
    assert (code, report["entries"]) == (0, {"pdq": 2})
    code, out, _ = desk.run(
        "hash-lists", "scan", "--index", desk.index, "--db", desk.db, "--source", "ncmec", "--json"
    )
    scan = json.loads(out)
    assert code == 0
    assert [(hit["list_entry_id"], hit["key"], hit["distance"]) for hit in scan["hits"]] == [
        ("42-coffee", "coffee.jpg", 0)
    ]
