"""The health and metrics server (bot.health_server, bot.metrics) on its own, over a real desk, read
with a real HTTP client on a port the system chose: /healthz names what fails with a 503, /metrics
counts what the desk did and reads the tickets from the database, and nothing personal shows."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from bot.config import HealthSettings, Settings
from bot.decoding import ImageRejectedError
from bot.desk import Desk, DeskBusyError
from bot.health_server import HealthServer, desk_checks, serving_health
from bot.index.parts import PartedIndex, write_parts
from bot.index.search import HashIndex
from bot.tickets.store import TicketStore
from tests.made_up import index_of_photos, jpeg, photo

SIZE = (320, 240)
SEEDS = range(700, 702)


@pytest.fixture(scope="module")
def index_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return index_of_photos(tmp_path_factory.mktemp("health"), SEEDS, SIZE).folder


@pytest.fixture
def hash_executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=1) as executor:
        yield executor


@pytest.fixture
def desk(
    settings: Settings, index_folder: Path, store: TicketStore, hash_executor: ThreadPoolExecutor
) -> Desk:
    return Desk(settings, HashIndex(index_folder), store, hash_executor)


class Gateway:
    """What the Discord side would say: connected or not."""

    connected = True

    def __call__(self) -> bool:
        return self.connected


@pytest.fixture
def gateway() -> Gateway:
    return Gateway()


@pytest.fixture
async def server(desk: Desk, gateway: Gateway) -> AsyncIterator[HealthServer]:
    async with HealthServer(desk, desk_checks(desk, gateway), port=0) as running:
        assert running.port > 0
        yield running


async def get(server: HealthServer, path: str) -> tuple[int, str, str]:
    """(status, content type, body) of a GET, through a real HTTP client."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{server.port}{path}") as response,
    ):
        return response.status, response.headers["Content-Type"], await response.text()


async def health(server: HealthServer) -> tuple[int, dict[str, bool]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{server.port}/healthz") as response,
    ):
        return response.status, await response.json()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by (name, sorted labels)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def scrape(server: HealthServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, content_type, body = await get(server, "/metrics")
    assert status == 200
    assert content_type == CONTENT_TYPE_LATEST
    return samples(body)


async def test_healthz_is_200_when_gateway_index_and_database_hold(server: HealthServer) -> None:
    assert await health(server) == (200, {"gateway": True, "index": True, "database": True})


async def test_healthz_is_503_naming_the_gateway_when_the_bot_is_disconnected(
    server: HealthServer, gateway: Gateway
) -> None:
    gateway.connected = False
    assert await health(server) == (503, {"gateway": False, "index": True, "database": True})


async def test_healthz_is_503_when_the_database_is_closed_and_metrics_still_answer(
    settings: Settings,
    index_folder: Path,
    tmp_path: Path,
    hash_executor: ThreadPoolExecutor,
    gateway: Gateway,
) -> None:
    store = await TicketStore.open(tmp_path / "closing.sqlite3", settings.tickets)
    desk = Desk(settings, HashIndex(index_folder), store, hash_executor)
    async with HealthServer(desk, desk_checks(desk, gateway)) as server:
        before = await scrape(server)
        assert before[("removal_desk_database_up", ())] == 1
        await store.close()
        assert await health(server) == (503, {"gateway": True, "index": True, "database": False})
        after = await scrape(server)
    assert after[("removal_desk_database_up", ())] == 0
    assert ("removal_desk_tickets", (("state", "open"),)) not in after  # not stale figures
    assert ("removal_desk_checks_total", (("source", "command"),)) in after  # the counters still


async def test_healthz_is_503_when_the_index_is_gone_from_under_the_bot(
    settings: Settings, index_folder: Path, store: TicketStore, tmp_path: Path, gateway: Gateway
) -> None:
    moved = tmp_path / "index"
    shutil.copytree(index_folder, moved)
    desk = Desk(settings, HashIndex(moved), store, None)
    async with HealthServer(desk, desk_checks(desk, gateway)) as server:
        assert (await health(server))[0] == 200
        moved.rename(tmp_path / "unmounted")
        assert await health(server) == (503, {"gateway": True, "index": False, "database": True})


async def test_healthz_is_503_naming_the_index_when_a_part_is_gone(  # noqa: PLR0917
    settings: Settings,
    index_folder: Path,
    store: TicketStore,
    tmp_path: Path,
    gateway: Gateway,
    caplog: pytest.LogCaptureFixture,
) -> None:
    served = tmp_path / "served"
    for name in ("000", "001"):
        shutil.copytree(index_folder, served / "parts" / name)
    write_parts(served, ["parts/000", "parts/001"])
    desk = Desk(settings, PartedIndex(served), store, None)
    async with HealthServer(desk, desk_checks(desk, gateway)) as server:
        assert (await health(server))[0] == 200
        (served / "parts" / "001").rename(tmp_path / "unmounted")
        assert await health(server) == (503, {"gateway": True, "index": False, "database": True})
    assert "health check index failed" in caplog.text
    assert "parts/001" in caplog.text


async def test_metrics_count_checks_matches_refusals_latency_and_read_tickets_from_the_database(
    server: HealthServer, desk: Desk
) -> None:
    empty = await scrape(server)
    assert empty[("removal_desk_checks_total", (("source", "dm"),))] == 0
    assert empty[("removal_desk_refusals_total", (("reason", "not_an_image"),))] == 0
    assert empty[("removal_desk_tickets", (("state", "open"),))] == 0
    assert empty[("removal_desk_decision_seconds_count", ())] == 0

    copy = await desk.check(jpeg(photo(SEEDS[1], SIZE), quality=80), source="dm")
    assert copy.found
    with pytest.raises(ImageRejectedError):
        await desk.check(b"%PDF-1.7 a private letter", source="command")
    await desk.check(jpeg(photo(9_999, SIZE)), source="channel")  # matches nothing
    token = desk.remember(4242, copy)
    ticket = await desk.request_removal(token, 4242, "this is my own private note")
    assert ticket is not None

    counted = await scrape(server)
    assert counted[("removal_desk_checks_total", (("source", "dm"),))] == 1
    assert counted[("removal_desk_checks_total", (("source", "command"),))] == 1
    assert counted[("removal_desk_checks_total", (("source", "channel"),))] == 1
    assert counted[("removal_desk_matches_total", ())] == 1
    assert counted[("removal_desk_matched_entries_total", ())] == len(copy.found)
    assert counted[("removal_desk_refusals_total", (("reason", "not_an_image"),))] == 1
    assert counted[("removal_desk_hashing_seconds_count", ())] == 2  # the refused one is not timed
    assert counted[("removal_desk_search_seconds_count", ())] == 2
    assert 0 < counted[("removal_desk_search_seconds_sum", ())] < 10
    assert counted[("removal_desk_tickets", (("state", "open"),))] == 1
    assert counted[("removal_desk_pictures_in_desk", ())] == 0

    await desk.store.approve(ticket.id, "alice", "confirmed")
    decided = await scrape(server)
    assert decided[("removal_desk_tickets", (("state", "open"),))] == 0
    assert decided[("removal_desk_tickets", (("state", "approved"),))] == 1
    assert decided[("removal_desk_decision_seconds_count", ())] == 1
    assert decided[("removal_desk_decision_seconds_bucket", (("le", "3600.0"),))] == 1

    await desk.store.reopen(ticket.id, "alice", "approved by mistake")
    reopened = await scrape(server)  # read again, not the figures of the last scrape
    assert reopened[("removal_desk_decision_seconds_count", ())] == 0
    assert reopened[("removal_desk_tickets", (("state", "approved"),))] == 0


async def test_metrics_carry_nothing_personal(server: HealthServer, desk: Desk) -> None:
    copy = await desk.check(jpeg(photo(SEEDS[0], SIZE), quality=80), source="command")
    ticket = await desk.request_removal(desk.remember(987654321, copy), 987654321, "my-secret-note")
    assert ticket is not None
    _, _, body = await get(server, "/metrics")
    for personal in ("987654321", "my-secret-note", ticket.id, *(found.entry.key for found in copy.found)):
        assert personal not in body
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            assert set(sample.labels) <= {"source", "reason", "state", "le"}


async def test_a_label_outside_the_fixed_set_is_counted_as_other(server: HealthServer, desk: Desk) -> None:
    desk.metrics.refused("Alice's holiday.jpg")
    desk.metrics.checked("someone@example.org")
    counted = await scrape(server)
    assert counted[("removal_desk_refusals_total", (("reason", "other"),))] == 1
    assert counted[("removal_desk_checks_total", (("source", "other"),))] == 1


async def test_two_desks_count_apart(settings: Settings, desk: Desk, index_folder: Path) -> None:
    other = Desk(settings, HashIndex(index_folder), desk.store, None)
    desk.metrics.refused("busy")
    assert desk.metrics.registry.get_sample_value("removal_desk_refusals_total", {"reason": "busy"}) == 1
    assert other.metrics.registry.get_sample_value("removal_desk_refusals_total", {"reason": "busy"}) == 0


async def test_port_0_serves_nothing_and_a_port_serves_on_the_host_given(
    desk: Desk, gateway: Gateway
) -> None:
    async with serving_health(HealthSettings(host="127.0.0.1", port=0), desk, gateway) as none:
        assert none is None
    async with HealthServer(desk, desk_checks(desk, gateway)) as probe:
        free = probe.port  # a port that was free a moment ago
    async with serving_health(HealthSettings(host="127.0.0.1", port=free), desk, gateway) as served:
        assert served is not None
        assert served.port == free
        assert (await health(served))[0] == 200


async def test_refusals_by_the_per_person_limit_and_a_full_desk_are_counted(
    server: HealthServer, desk: Desk, settings: Settings
) -> None:
    person = 31337
    waits = [desk.check_cooldown.try_acquire(person) for _ in range(settings.discord.check_uses + 2)]
    assert [wait > 0 for wait in waits].count(True) == 2
    with contextlib.ExitStack() as places:
        for _ in range(settings.discord.max_checks_in_memory):
            places.enter_context(desk.admit(another=True))
        assert (await scrape(server))[
            ("removal_desk_pictures_in_desk", ())
        ] == settings.discord.max_checks_in_memory
        with pytest.raises(DeskBusyError), desk.admit(another=True):
            pass
    counted = await scrape(server)
    assert counted[("removal_desk_refusals_total", (("reason", "rate_limited"),))] == 2
    assert counted[("removal_desk_refusals_total", (("reason", "busy"),))] == 1
    assert counted[("removal_desk_pictures_in_desk", ())] == 0


async def test_the_images_health_check_passes_only_when_healthz_says_healthy(
    server: HealthServer, gateway: Gateway
) -> None:
    """The Dockerfile's HEALTHCHECK command, run as Docker runs it, against this server (its port
    put in for the image's): exit 0 when healthy, not 0 on a 503 or with nothing listening."""
    dockerfile = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()
    found = re.search(r"^HEALTHCHECK .*\n\s+CMD (\[.*\])$", dockerfile, re.MULTILINE)
    assert found
    command = json.loads(found.group(1).replace("127.0.0.1:8080", f"127.0.0.1:{server.port}"))
    assert command[0] == "python"

    async def exit_code() -> int:
        process = await asyncio.create_subprocess_exec(
            sys.executable, *command[1:], stderr=asyncio.subprocess.DEVNULL
        )
        return await process.wait()

    assert await exit_code() == 0
    gateway.connected = False
    assert await exit_code() != 0
    gateway.connected = True
    await server.stop()
    assert await exit_code() != 0
