"""A served index searched on a Dask cluster answers exactly as in one process, or not at all.

One LocalCluster of three single-threaded worker processes (with nannies, which replace a worker
whose process dies) serves the module: tasks are pickled and sent, as to other machines.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dask
import numpy as np
import pytest
from distributed import Client, LocalCluster, get_worker

from bot.checking import hash_submitted_picture
from bot.cli import main
from bot.config import load_settings
from bot.hashing import EntryHashes
from bot.index.build import build_index
from bot.index.describe import describe_served
from bot.index.parts import PartedIndex, write_parts
from bot.index.search import HashIndex, LookUp
from bot.index.served import DaskIndex, IncompleteSearchError, dask_index
from bot.index.serving import answers, verify, warm
from tests.bot.index.test_parts import (
    RULES,
    Served,
    append_shard,
    as_one_index,
    make_served,
    queries,
    same_hashes,
    write_index,
)
from tests.bot.index.test_search import WORDS_PDQ, make_query, random_words
from tests.made_up import jpeg, photo


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    # no work stealing: a task waiting on a worker about to die stays there (the case tested)
    with (
        dask.config.set({"distributed.scheduler.work-stealing": False}),
        LocalCluster(n_workers=3, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as connected,
    ):
        yield connected


@pytest.fixture
def served(tmp_path) -> Served:
    return make_served(tmp_path)


def wait_for_workers(client: Client, count: int, gone: str | None = None) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        workers = client.nthreads()
        if len(workers) == count and gone not in workers:
            return
        time.sleep(0.1)
    raise AssertionError(f"the cluster did not get back to {count} workers")


def kill(client: Client, worker: str) -> None:
    """End a worker's process at once, as a crash or an out-of-memory kill would."""
    client.run(os._exit, 1, workers=[worker], on_error="ignore")


def test_the_cluster_answers_as_one_process_and_as_one_index(client, served):
    one, here = HashIndex(served.one), PartedIndex(served.served)
    remote = DaskIndex(client, served.served)
    assert remote.open() == len(one)
    assert len(set(remote._assigned.values())) == 2  # two parts, on two of the three workers
    found = 0
    for rule in RULES:
        for query in queries(served, 6, seed=10):
            expected = here.look_up(query, rule, views=None)
            assert remote.look_up(query, rule, views=None) == expected
            assert as_one_index(expected, served.renamed) == one.look_up(query, rule, views=None)
            found += len(expected.found)
    assert found > 10


def test_queries_from_several_threads_at_once_answer_as_one_process(client, served):
    """The bot looks up from a thread per check: concurrent queries share one DaskIndex."""
    from concurrent.futures import ThreadPoolExecutor

    here, remote = PartedIndex(served.served), DaskIndex(client, served.served)
    checked = queries(served, 8, seed=14)
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda query: remote.look_up(query, RULES[0], views=None), checked))
    assert answers == [here.look_up(query, RULES[0], views=None) for query in checked]
    assert any(answer.found for answer in answers)
    assert len(set(remote._assigned.values())) == 2


def test_entry_hashes_are_read_by_the_parts_worker(client, served):
    here, remote = PartedIndex(served.served), DaskIndex(client, served.served)
    items = [
        item
        for query in queries(served, 4, seed=11)
        for item in here.look_up(query, RULES[0], views=None).found
    ]
    assert items
    for item in items:
        assert same_hashes(remote.entry_hashes(item.match), here.entry_hashes(item.match))


def test_a_killed_worker_is_replaced_and_the_next_answer_is_whole(client, served):
    remote = DaskIndex(client, served.served)
    remote.open()
    checked = queries(served, 4, seed=12)
    expected = [PartedIndex(served.served).look_up(query, RULES[1], views=None) for query in checked]
    victim = remote._assigned["parts/001"]

    kill(client, victim)
    answers = [remote.look_up(query, RULES[1], views=None) for query in checked]  # at once, while replaced

    assert answers == expected
    wait_for_workers(client, 3, gone=victim)
    assert [remote.look_up(query, RULES[1], views=None) for query in checked] == expected
    assert victim not in remote._assigned.values()  # re-assigned to the workers alive
    assert set(remote._assigned.values()) <= set(client.nthreads())


def test_a_worker_killed_while_a_query_waits_on_it_leaves_the_answer_whole(client, served):
    remote = DaskIndex(client, served.served)
    remote.open()
    query = queries(served, 1, seed=13)[0]
    expected = PartedIndex(served.served).look_up(query, RULES[1], views=None)
    assert expected.found
    victim = remote._assigned["parts/000"]
    # the worker's one thread is busy until it ends its own process: the part's task waits there
    blocker = client.submit(_die_after, 0.5, workers=[victim], pure=False)
    answer: list[LookUp] = []
    asking = threading.Thread(target=lambda: answer.append(remote.look_up(query, RULES[1], views=None)))
    started = time.monotonic()
    asking.start()
    asking.join(timeout=60)

    assert answer == [expected]
    assert time.monotonic() - started > 0.3  # the query did wait for the worker that died
    blocker.cancel()
    wait_for_workers(client, 3, gone=victim)


def _die_after(seconds: float) -> None:
    time.sleep(seconds)
    os._exit(1)


def test_a_part_that_cannot_be_read_refuses_the_answer_and_names_the_part(client, served, tmp_path):
    remote = DaskIndex(client, served.served, timeout=30)
    query = queries(served, 1, seed=14)[0]
    assert remote.look_up(query, RULES[1], views=None).found
    shutil.move(served.served / "parts" / "001", tmp_path / "elsewhere")

    with pytest.raises(IncompleteSearchError, match="parts/001") as refused:
        remote.look_up(query, RULES[1], views=None)

    assert list(refused.value.failures) == ["parts/001"]
    # searched on stale knowledge, the worker finds no manifest; when the workers were just asked
    # which parts they can read, none is given the part at all
    assert any(
        reason in refused.value.failures["parts/001"]
        for reason in ("no manifest.json", "no worker can read its folder")
    )
    shutil.move(tmp_path / "elsewhere", served.served / "parts" / "001")
    assert remote.look_up(query, RULES[1], views=None) == PartedIndex(served.served).look_up(
        query, RULES[1], views=None
    )


def test_a_part_on_one_machines_own_disk_is_searched_there_or_refused(client, served, tmp_path):
    """A part copied to one machine's own disk is given to that machine's worker only. Here each
    worker process sees its own working folder through /proc/self/cwd: that stands for its disk."""
    own_disk = tmp_path / "own-disk"
    shutil.copytree(served.served / "parts" / "000", own_disk / "part")
    layout = tmp_path / "on-disks"
    (layout / "parts").mkdir(parents=True)
    (layout / "parts" / "000").symlink_to("/proc/self/cwd/part", target_is_directory=True)
    (layout / "parts" / "001").symlink_to(served.served / "parts" / "001", target_is_directory=True)
    write_parts(layout, ["parts/000", "parts/001"])
    holder = sorted(client.nthreads())[-1]
    client.run(os.chdir, str(own_disk), workers=[holder])
    checked = queries(served, 4, seed=15)
    expected = [PartedIndex(served.served).look_up(query, RULES[1], views=None) for query in checked]
    try:
        remote = DaskIndex(client, layout, timeout=5)
        remote.open()
        assert remote._assigned["parts/000"] == holder
        assert [remote.look_up(query, RULES[1], views=None) for query in checked] == expected

        before = set(client.nthreads())
        kill(client, holder)  # the one machine holding the part is lost; its replacement has no copy
        wait_for_workers(client, 3, gone=holder)
        with pytest.raises(IncompleteSearchError, match="parts/000"):
            remote.look_up(checked[0], RULES[1], views=None)  # waited on the lost worker, or none holds it
        with pytest.raises(IncompleteSearchError) as refused:
            remote.look_up(checked[0], RULES[1], views=None)
        assert refused.value.failures == {"parts/000": "no worker can read its folder"}

        replacement = sorted(set(client.nthreads()) - before)
        client.run(os.chdir, str(own_disk), workers=replacement)  # the part copied to the new machine
        remote._checked_at = -float("inf")
        assert [remote.look_up(query, RULES[1], views=None) for query in checked] == expected
        assert remote._assigned["parts/000"] in replacement
    finally:
        client.run(os.chdir, os.getcwd())


def test_appended_shards_new_parts_and_approved_removals_are_served_without_a_restart(client, served):
    remote = DaskIndex(client, served.served)
    remote.open()
    rng = np.random.default_rng(15)
    new = [
        EntryHashes(phash=int(random_words(rng, 1)[0]), pdq=random_words(rng, WORDS_PDQ), quality=100)
        for _ in range(2)
    ]
    first = make_query([new[0].phash], [new[0].pdq])
    assert remote.look_up(first, RULES[0], views=None).found == []

    append_shard(served.served / "parts" / "001", [("appended", new[0])])  # the workers hold 001 open
    found = remote.look_up(first, RULES[0], views=None).found
    assert [(item.entry.key, item.match.shard) for item in found] == [("appended", "parts/001/00001")]

    write_index(served.served / "parts" / "002", [[("new-part", new[1])]], tables=True)
    write_parts(served.served, ["parts/000", "parts/001", "parts/002"])
    second = make_query([new[1].phash], [new[1].pdq])
    found = remote.look_up(second, RULES[0], views=None).found
    assert [(item.entry.key, item.match.shard) for item in found] == [("new-part", "parts/002/00000")]

    approved = {("appended", "https://example.org/appended")}
    refused = remote.look_up(first, RULES[0], approved, views=None)
    assert (refused.found, refused.removed) == ([], 1)


def test_what_the_bot_asks_besides_a_look_up_is_answered_by_each_parts_worker(client, served):
    """Warm, verify, "still there" and /index info: each part's own answer, from its worker."""
    remote, here = DaskIndex(client, served.served), PartedIndex(served.served)
    assert warm(remote) == warm(here) == len(HashIndex(served.one))
    assert verify(remote) == verify(here) == 3
    assert answers(remote)
    assert answers(here)
    settings = load_settings(with_deployment_files=False)
    assert describe_served(remote, settings, 2) == describe_served(here, settings, 2)
    workers = {worker for _, worker in remote.each_part(lambda _index: get_worker().address)}
    assert workers == set(remote._assigned.values())
    assert len(workers) == 2


SIZE = (320, 240)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Eight made-up photographs as one index and as two parts of four (same keys: file names)."""
    root = tmp_path_factory.mktemp("photos")
    settings = load_settings(with_deployment_files=False)
    for number in range(8):
        data = jpeg(photo(900 + number, SIZE))
        for folder in ("all", f"half{number // 4}"):
            (root / folder).mkdir(exist_ok=True)
            (root / folder / f"photo{number}.jpg").write_bytes(data)
    build_index([root / "all"], root / "one", settings, workers=1, show_progress=False)
    for half in range(2):
        build_index(
            [root / f"half{half}"], root / "served" / f"{half}", settings, workers=1, show_progress=False
        )
    write_parts(root / "served", ["0", "1"])
    return root


def test_checks_of_pictures_verified_on_the_cluster_equal_one_index(client, photos):
    settings = load_settings(with_deployment_files=False)
    one = HashIndex(photos / "one")
    here = PartedIndex(photos / "served")
    with dask_index(client.scheduler.address, photos / "served") as remote:
        copies = [photo(900 + number, SIZE).crop((16, 12, 300, 228)) for number in (1, 6)]
        keys = []
        for picture in [*copies, photo(42, SIZE)]:  # two copies, and a stranger
            query, views = hash_submitted_picture(jpeg(picture, quality=75), settings)
            expected = here.look_up(query, settings.matching, views=views)
            assert remote.look_up(query, settings.matching, views=views) == expected
            single = one.look_up(query, settings.matching, views=views)
            assert [(i.entry, i.match.distance, i.match.variant, i.part) for i in expected.found] == [
                (i.entry, i.match.distance, i.match.variant, i.part) for i in single.found
            ]
            assert (expected.unjudged, expected.removed) == (single.unjudged, single.removed)
            keys.append([item.entry.key for item in expected.found])
    assert keys == [["photo1.jpg"], ["photo6.jpg"], []]


def check(capsys, argv: list[str]) -> tuple[int, list[dict[str, object]], str]:
    code = main(["check", "--json", *argv])
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err


def test_check_on_the_cluster_prints_what_one_index_prints_or_refuses(client, photos, tmp_path, capsys):
    pictures = []
    for number, picture in enumerate([photo(903, SIZE).crop((20, 0, 320, 240)), photo(43, SIZE)]):
        pictures.append(tmp_path / f"query{number}.jpg")
        pictures[-1].write_bytes(jpeg(picture, quality=80))
    address = client.scheduler.address
    _, alone, _ = check(capsys, ["--index", str(photos / "one"), *map(str, pictures)])
    code, here, _ = check(capsys, ["--index", str(photos / "served"), *map(str, pictures)])
    assert code == 0
    code, remote, _ = check(
        capsys, ["--index", str(photos / "served"), "--dask", address, *map(str, pictures)]
    )
    assert code == 0
    assert remote == here
    assert [record["matches"][0]["key"] for record in remote if record["matches"]] == ["photo3.jpg"]
    assert remote[0]["matches"][0]["entry_id"].startswith("0/00000/")  # part 0, its shard, the row
    without_ids = [[{**m, "entry_id": None} for m in record["matches"]] for record in remote]
    assert without_ids == [[{**m, "entry_id": None} for m in record["matches"]] for record in alone]

    listed = (photos / "served" / "parts.json").read_text()
    write_parts(photos / "served", ["0", "1", "gone"])
    try:
        code, printed, stderr = check(
            capsys, ["--index", str(photos / "served"), "--dask", address, str(pictures[0])]
        )
    finally:
        (photos / "served" / "parts.json").write_text(listed)
    assert code == 2
    assert printed == []
    assert "could not reach every part" in stderr
    assert "'gone'" in stderr


def test_a_part_not_searched_in_time_refuses_the_answer(client, served):
    remote = DaskIndex(client, served.served, timeout=0.3)
    remote.open()
    query = queries(served, 1, seed=16)[0]
    workers = sorted(client.nthreads())
    # every worker's one thread busy for longer than the query may wait
    busy = [client.submit(time.sleep, 1.5, workers=[worker], pure=False) for worker in workers]

    with pytest.raises(IncompleteSearchError, match=r"no answer within 0\.3 s") as refused:
        remote.look_up(query, RULES[1], views=None)

    assert sorted(refused.value.failures) == ["parts/000", "parts/001"]
    client.gather(busy)
    assert remote.look_up(query, RULES[1], views=None) == PartedIndex(served.served).look_up(
        query, RULES[1], views=None
    )


def test_a_part_whose_workers_keep_dying_refuses_the_answer(served):
    """With no retries allowed, the first worker that dies holding the part's task ends its search."""
    with (
        dask.config.set(
            {"distributed.scheduler.allowed-failures": 0, "distributed.scheduler.work-stealing": False}
        ),
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as fragile,
    ):
        remote = DaskIndex(fragile, served.served)
        remote.open()
        victim = remote._assigned["parts/000"]
        fragile.submit(_die_after, 0.5, workers=[victim], pure=False)  # busy, then gone
        with pytest.raises(IncompleteSearchError, match="kept dying") as refused:
            remote.look_up(queries(served, 1, seed=17)[0], RULES[1], views=None)
        assert list(refused.value.failures) == ["parts/000"]


def test_run_with_dask_verifies_every_part_on_its_worker_before_the_bot_starts(
    client, served, capsys, monkeypatch
):
    import cogs.app

    started: list[str] = []
    monkeypatch.setattr(cogs.app, "run", lambda settings, **_: started.append(settings.discord.dask) or 0)
    monkeypatch.setenv("DISCORD_TOKEN", "fake-token")
    monkeypatch.setenv("REMOVAL_DESK_DISCORD_REVIEW_CHANNEL_ID", "1")
    monkeypatch.setenv("REMOVAL_DESK_DISCORD_MAINTAINER_ROLE_ID", "1")
    monkeypatch.setenv("REMOVAL_DESK_DISCORD_INDEX", str(served.served))
    address = client.scheduler.address

    assert main(["run", "--dask", address]) == 0
    assert started == [address]

    damaged = served.served / "parts" / "001" / "shards" / "00000" / "pdq.npy"
    data = bytearray(damaged.read_bytes())
    data[-1] ^= 0x5A
    damaged.write_bytes(bytes(data))
    assert main(["run", "--dask", address]) == 2  # refused before anything connects to Discord
    assert main(["run"]) == 2  # and in one process alike
    assert started == [address]
    # (the workers' own logs go to the same stderr: only the command's lines are read)
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert all(str(damaged) in error for error in errors)
