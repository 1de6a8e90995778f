"""``index build`` of URL lists: pictures downloaded from a local server, hashed in memory, indexed."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from aiohttp import web

from bot.config import Settings
from bot.decoding import decode_picture
from bot.hashing import hash_entry
from bot.index.build import build_index
from bot.index.search import HashIndex
from tests.bot.index.server_thread import ServerThread
from tests.bot.index.test_build import DATASET, all_arrays, run

# (path on the server, caption); the server answers each as its handler says
ROWS = [
    ("/photo/coffee.jpg", "a cup of coffee"),
    ("/gone/1.jpg", "a picture that was deleted"),
    ("/photo/chelsea.jpg", "a cat"),
    ("/opted-out/rocket.jpg", "a rocket, served with X-Robots-Tag: noai"),
    ("/html/2.jpg", "a page instead of a picture"),
    ("/photo/astronaut.jpg", "an astronaut"),
]
GOOD = ["coffee.jpg", "chelsea.jpg", "astronaut.jpg"]


class PhotoServer(ServerThread):
    """aiohttp on 127.0.0.1 in a thread of its own: the sample photos, a 404, an opt-out, HTML."""

    def __init__(self) -> None:
        super().__init__("test-photo-server")
        self.port = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _start(self) -> None:
        app = web.Application()
        app.add_routes(
            [
                web.get("/photo/{name}", self._photo),
                web.get("/opted-out/{name}", self._opted_out),
                web.get("/html/{name}", self._html),
            ]
        )  # anything else: aiohttp's 404
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _photo(self, request: web.Request) -> web.Response:
        return web.Response(
            body=(DATASET / request.match_info["name"]).read_bytes(), content_type="image/jpeg"
        )

    async def _opted_out(self, request: web.Request) -> web.Response:
        body = (DATASET / request.match_info["name"]).read_bytes()
        return web.Response(body=body, content_type="image/jpeg", headers={"X-Robots-Tag": "noai"})

    async def _html(self, _request: web.Request) -> web.Response:
        return web.Response(text="<html>moved</html>", content_type="text/html")


@pytest.fixture(scope="module")
def server() -> Iterator[PhotoServer]:
    running = PhotoServer()
    running.start()
    yield running
    running.stop()


def write_laion_parquet(path: Path, server: PhotoServer) -> None:
    """LAION's column names: SAMPLE_ID (float64, as LAION ships it), URL, TEXT, and one it has."""
    table = pa.table(
        {
            "SAMPLE_ID": pa.array([1000.0 + i for i in range(len(ROWS))], type=pa.float64()),
            "URL": [server.url(url_path) for url_path, _ in ROWS],
            "TEXT": [caption for _, caption in ROWS],
            "similarity": [0.3] * len(ROWS),
        }
    )
    pq.write_table(table, path, row_group_size=4)


def write_csv(path: Path, server: PhotoServer) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["key", "url", "caption"])
        for number, (url_path, caption) in enumerate(ROWS):
            writer.writerow([f"row-{number}", server.url(url_path), caption])


def quick_downloads(settings: Settings) -> Settings:
    download = dataclasses.replace(settings.download, connect_timeout_s=2.0, read_timeout_s=5.0, retries=0)
    return dataclasses.replace(settings, download=download)


def test_cli_builds_an_index_from_a_laion_parquet_url_list(tmp_path, capsys, server, settings: Settings):
    urls = tmp_path / "part-00000.parquet"
    write_laion_parquet(urls, server)
    out = tmp_path / "index"

    code, stdout, _ = run(
        capsys, ["index", "build", str(urls), "--out", str(out), "--workers", "1", "--quiet"]
    )

    assert code == 0
    assert f"indexed {len(GOOD)} entries into 1 new shard(s)" in stdout
    index = HashIndex(out)
    [shard] = index.shards
    described = [shard.record(number) for number in range(shard.entries)]
    assert [(e.key, e.url, e.caption) for e in described] == [
        (str(1000 + number), server.url(path), caption)
        for number, (path, caption) in enumerate(ROWS)
        if path.startswith("/photo/")
    ]
    assert shard.summary()["failures"] == {"http_404": 1, "opted_out": 1, "not_an_image": 1}
    assert {(e["key"], e["reason"]) for e in shard.summary()["failure_examples"]} == {
        ("1001", "http_404"),
        ("1003", "opted_out"),
        ("1004", "not_an_image"),
    }
    wholes = [row for row in range(len(shard)) if shard.part_box(row) is None]  # not cores, panels
    assert len(wholes) == len(GOOD)
    for row, name in zip(wholes, GOOD, strict=True):  # hashed in memory exactly as a local copy
        picture = decode_picture((DATASET / name).read_bytes(), settings.decoding)
        expected = hash_entry(picture.image, settings.hashing)
        assert int(shard.phash[row]) == expected.phash
        np.testing.assert_array_equal(shard.pdq[row], expected.pdq)


def test_csv_url_list_in_units_on_two_workers_equals_one_unit_and_resumes(
    tmp_path, server, settings: Settings
):
    urls = tmp_path / "list.csv"
    write_csv(urls, server)
    whole = quick_downloads(settings)
    small = dataclasses.replace(whole, index=dataclasses.replace(whole.index, shard_size=2))

    reference = build_index([urls], tmp_path / "one-unit", whole, workers=1, show_progress=False)
    report = build_index([urls], tmp_path / "units", small, workers=2, show_progress=False)
    again = build_index([urls], tmp_path / "units", small, workers=2, show_progress=False)

    assert (report.entries, report.shards) == (len(GOOD), ["00000", "00001", "00002"])
    assert report.failures == reference.failures
    assert dict(report.failures) == {"http_404": 1, "opted_out": 1, "not_an_image": 1}
    for name, array in all_arrays(tmp_path / "one-unit").items():
        np.testing.assert_array_equal(all_arrays(tmp_path / "units")[name], array, err_msg=name)
    assert (again.shards, again.skipped_units, again.already_indexed) == ([], 3, [str(urls)])
