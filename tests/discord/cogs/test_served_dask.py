"""``run_bot`` with ``[discord] dask`` set, as ``python -m bot run --dask ADDRESS`` starts it: the
index's parts searched on a LocalCluster of two worker processes, the Dask client made and closed in
a thread beside the bot's event loop. A member's check over the gateway is answered from the part
that holds the copy, /healthz asks every part's worker, and stopping the bot closes the client."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import discord.http
import pytest
from discord.gateway import DiscordWebSocket
from distributed import LocalCluster

from bot import messages
from bot.config import Settings
from tests.discord.cogs.test_health import Member, free_port, running_app, until
from tests.discord.cogs.test_served_index import QUERY, parts_folder, query_bytes
from tests.discord.fake_discord import FakeDiscord, World

__all__ = ["parts_folder"]  # the module's fixture, shared


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def loop_threads() -> set[threading.Thread]:
    """The threads that run a distributed event loop (the cluster's, a client's), alive now."""
    return {thread for thread in threading.enumerate() if "IO loop" in thread.name}


async def test_the_bot_answers_a_check_from_parts_on_a_dask_cluster(  # noqa: PLR0917
    fake: FakeDiscord,
    world: World,
    settings: Settings,
    parts_folder: Path,
    scheduler: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    served = Path(shutil.copytree(parts_folder, tmp_path / "served"))
    desk_settings = world.bot_settings(settings, served, tmp_path / "tickets.sqlite3", dask=scheduler)
    port = free_port()
    before = loop_threads()
    async with running_app(fake, world, desk_settings, port) as gateway:
        healthy = await until(port, "/healthz", lambda status, _: status == 200)
        assert healthy == (200, '{"gateway": true, "index": true, "database": true}')
        found = await Member(fake, world, gateway).check(query_bytes(QUERY))
        assert found.json["content"] == messages.matches_found(1)
        assert loop_threads() - before  # the client's own loop, beside the bot's

        shutil.rmtree(served / "parts" / "001")  # every worker reads the same folder
        missed = await Member(fake, world, gateway).check(query_bytes(QUERY))
        assert missed.json["content"] == messages.INDEX_INCOMPLETE
        status, _ = await until(port, "/healthz", lambda status, _: status == 503)
        assert status == 503
    assert loop_threads() == before  # the client was closed with the bot
