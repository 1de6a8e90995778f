"""A crowd: many people running ``/check`` at the same moment, through the real cogs.

Usage: python -m bench.load [--checks 200] [--bound 16] [--workers 1] [--unbounded] [--json]

The bot is the real ``RemovalDeskBot`` over a real desk (a sample index of ``samples/dataset``, a
ticket store in a temporary folder), driven through discord.py's own dispatch against the fake
Discord of the tests (``tests/discord/fake_discord.py``, an aiohttp server in this process: its
work shares the event loop with the bot's, as a proxy would not). ``--checks`` people, each with a
picture of their own (``samples/queries/coffee__mirrored.jpg``, ~0.5 s of hashing), send
``/check`` in the same instant. For each run it prints:

* **ack**: from the interaction's dispatch to Discord receiving its acknowledgement (the defer),
  p50 / p99 / max; Discord's deadline is 3 s;
* **loop lag**: how late a task that sleeps 10 ms wakes, p50 / p99 / max, over the whole run;
* **peak pictures**: the most pictures admitted at once (downloading, queued, hashing, searching);
* **answers**: checks answered with the match, told "busy, try again in N s", anything else
  (errors, silence: every interaction must get exactly one answer);
* the wall time until the last answer.

Runs: the bot as it runs (hashing in a process pool of ``--workers``, at most ``--bound``
pictures), the **baseline** beside it (the same bound, hashing on the event loop), and with
``--unbounded`` the pool with no bound (every picture admitted: the memory the bound saves).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from bench import REPO
from bot import messages
from bot.checking import hash_submitted_picture
from bot.config import Settings, load_settings
from bot.desk import Desk
from bot.index.build import build_index
from bot.index.search import HashIndex
from bot.tickets.store import TicketStore
from cogs.app import RemovalDeskBot
from tests.discord.fake_discord import BotHarness, FakeDiscord, Person, World, running_bot

PICTURE = REPO / "samples" / "queries" / "coffee__mirrored.jpg"
CALLBACK = r"/interactions/(\d+)/[^/]+/callback"
FOLLOWUP = r"/webhooks/\d+/[^/]+"
TICK_SECONDS = 0.010
DEADLINE_SECONDS = 3.0
FIRST_PERSON_ID = 1_300_000_000_000_100_000


class OnTheLoop(Executor):
    """The baseline: runs the hashing where it is submitted, on the event loop's thread."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


@dataclasses.dataclass
class CrowdFigures:
    checks: int
    acks: list[float]  # seconds from dispatch to the acknowledgement, one per acknowledged check
    lags: list[float]  # seconds a 10 ms sleep overslept
    peak_pictures: int
    matched: int
    busy: int
    other: list[str]  # answers that were neither, and "no answer" for silence
    seconds: float

    def summary(self) -> dict[str, Any]:
        def quantiles(values: list[float]) -> dict[str, float]:
            if not values:
                return {"p50": 0.0, "p99": 0.0, "max": 0.0}
            cuts = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
            return {"p50": statistics.median(values), "p99": cuts[98], "max": max(values)}

        return {
            "checks": self.checks,
            "acknowledged": len(self.acks),
            "late_acks": sum(ack > DEADLINE_SECONDS for ack in self.acks),
            "ack_s": quantiles(self.acks),
            "loop_lag_s": quantiles(self.lags),
            "peak_pictures": self.peak_pictures,
            "matched": self.matched,
            "busy": self.busy,
            "other": len(self.other),
            "seconds": self.seconds,
        }


def crowd(count: int) -> list[Person]:
    """``count`` members of the world's guild, none a maintainer, each with a DM channel."""
    return [
        Person(FIRST_PERSON_ID + i, f"person{i}", dm_channel_id=FIRST_PERSON_ID + 10_000 + i)
        for i in range(count)
    ]


async def run_crowd(harness: BotHarness, desk: Desk, people: list[Person], picture: bytes) -> CrowdFigures:
    """Every person sends ``/check`` with ``picture`` at once; wait for every handler to finish."""
    fake, world = harness.fake, harness.world
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            before = loop.time()
            await asyncio.sleep(TICK_SECONDS)
            lags.append(max(0.0, loop.time() - before - TICK_SECONDS))

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(TICK_SECONDS * 3)
    since = fake.mark()
    dispatched: dict[int, float] = {}
    started = time.monotonic()
    for person in people:
        attachment = fake.add_attachment(picture, "me.jpg", "image/jpeg")
        payload = world.command_interaction("check", options={"image": attachment}, invoker=person)
        dispatched[int(payload["id"])] = time.monotonic()
        harness.dispatch_interaction(payload)
    await harness.idle(timeout=600)
    seconds = time.monotonic() - started
    stop.set()
    await ticking

    acks = []
    for request in fake.find("POST", CALLBACK, since=since):
        match = request.match(CALLBACK)
        assert match is not None
        acks.append(request.received - dispatched[int(match[1])])
    answers = [request.json["content"] for request in fake.find("POST", FOLLOWUP, since=since)]
    matched = sum(answer == messages.matches_found(1) for answer in answers)
    busy = sum(answer.startswith(messages.busy(1).split(" Please")[0]) for answer in answers)
    other = [answer for answer in answers if answer != messages.matches_found(1)]
    other = [answer for answer in other if not answer.startswith(messages.busy(1).split(" Please")[0])]
    other += ["no answer"] * (len(people) - len(answers))
    return CrowdFigures(len(people), acks, lags, desk.peak_admitted, matched, busy, other, seconds)


def desk_settings(
    base: Settings, world: World, index: Path, folder: Path, *, bound: int, workers: int
) -> Settings:
    return world.bot_settings(
        base, index, folder / "tickets.sqlite3", max_checks_in_memory=bound, hash_workers=workers
    )


async def one_run(
    settings: Settings, executor: Executor, people: list[Person], picture: bytes
) -> CrowdFigures:
    world = World()
    store = await TicketStore.open(settings.tickets.database_path, settings.tickets)
    try:
        # Start the workers (a new process imports the hashing code) before the crowd arrives.
        await asyncio.get_running_loop().run_in_executor(executor, hash_submitted_picture, picture, settings)
        desk = Desk(settings, HashIndex(Path(settings.discord.index)), store, executor)
        async with (
            FakeDiscord(application_id=world.application_id) as fake,
            running_bot(
                fake, world=world, bot_factory=lambda _intents: RemovalDeskBot(settings, desk)
            ) as harness,
        ):
            await harness.idle()
            figures = await run_crowd(harness, desk, people, picture)
            if harness.errors:
                figures.other += [f"error: {record.getMessage()}" for record in harness.errors]
            return figures
    finally:
        await store.close()


def _line(name: str, summary: dict[str, Any]) -> str:
    ack, lag = summary["ack_s"], summary["loop_lag_s"]
    return (
        f"{name:<34} ack p50 {ack['p50'] * 1000:6.0f} ms  p99 {ack['p99'] * 1000:6.0f} ms  max "
        f"{ack['max'] * 1000:6.0f} ms ({summary['acknowledged']}/{summary['checks']} acknowledged, "
        f"{summary['late_acks']} over 3 s) | loop lag p50 {lag['p50'] * 1000:5.1f} ms  p99 "
        f"{lag['p99'] * 1000:6.1f} ms  max {lag['max'] * 1000:6.0f} ms | peak pictures "
        f"{summary['peak_pictures']:3d} | matched {summary['matched']}, busy {summary['busy']}, "
        f"other {summary['other']} | {summary['seconds']:.1f} s"
    )


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    base = load_settings(with_deployment_files=False)
    picture = PICTURE.read_bytes()
    people = crowd(args.checks)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="removal-desk-load-") as temporary:
        folder = Path(temporary)
        index = folder / "index"
        build_index([REPO / "samples" / "dataset"], index, base, workers=1, show_progress=False)
        runs: list[tuple[str, int, Callable[[], Executor]]] = [
            (f"pool of {args.workers}, bound {args.bound}", args.bound, lambda: _pool(args.workers)),
            (f"baseline: on the loop, bound {args.bound}", args.bound, OnTheLoop),
        ]
        if args.unbounded:
            runs.append((f"pool of {args.workers}, no bound", args.checks, lambda: _pool(args.workers)))
        for number, (name, bound, make) in enumerate(runs):
            run_folder = folder / f"run{number}"
            run_folder.mkdir()
            settings = desk_settings(base, World(), index, run_folder, bound=bound, workers=args.workers)
            executor = make()
            try:
                figures = await one_run(settings, executor, people, picture)
            finally:
                executor.shutdown(wait=True, cancel_futures=True)
            results[name] = figures.summary()
            if not args.json:
                print(_line(name, results[name]), flush=True)
                for answer in sorted(set(figures.other))[:5]:
                    print(f"    other answer: {answer[:160]!r}")
    return results


def _pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=200, help="people sending /check at once")
    bound = load_settings(with_deployment_files=False).discord.max_checks_in_memory
    parser.add_argument("--bound", type=int, default=bound, help="[discord] max_checks_in_memory")
    parser.add_argument("--workers", type=int, default=1, help="[discord] hash_workers")
    parser.add_argument("--unbounded", action="store_true", help="also run the pool with no bound")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if not args.json:
        print(
            f"{args.checks} people send /check at once with {PICTURE.name} ({PICTURE.stat().st_size} bytes)"
        )
    results = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
