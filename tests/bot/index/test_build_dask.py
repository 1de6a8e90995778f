"""The Dask path: the same build with batches hashed on a distributed cluster (a LocalCluster here)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from distributed import LocalCluster

from bot.config import Settings
from bot.index import cluster, units
from bot.index.build import build_index
from bot.index.storage import WHOLE_FILES
from tests.bot.index.test_build import ARRAYS, PHOTOS, make_source, run, shard_files, write_tar
from tests.bot.index.test_build_resume import photo_folder


@pytest.fixture(scope="module")
def scheduler_address() -> Iterator[str]:
    """Two single-threaded worker processes: tasks are pickled and sent, as to remote machines."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def test_dask_build_equals_the_local_build_entry_for_entry(
    tmp_path, monkeypatch, settings: Settings, scheduler_address
):
    source = make_source(tmp_path / "source", copies=2)  # 18 photos, a garbage and a truncated file
    (source / "tars").mkdir()
    write_tar(source / "tars" / "00000.tar")
    small = replace(settings, index=replace(settings.index, shard_size=8))
    # several tasks per unit, finishing out of order
    monkeypatch.setattr(units, "PICTURES_PER_TASK", 3)
    monkeypatch.setattr(cluster, "_TASK_SCALE", 1)

    local = build_index([source], tmp_path / "local", small, workers=1, show_progress=False)
    remote = build_index(
        [source], tmp_path / "dask", small, dask_address=scheduler_address, show_progress=False
    )

    assert (remote.entries, remote.shards, remote.failures) == (local.entries, local.shards, local.failures)
    assert remote.entries == 2 * len(PHOTOS) + 1
    assert dict(remote.failures) == {"not_an_image": 2, "corrupt": 1, "no_picture": 1}
    assert remote.shards == ["00000", "00001", "00002", "00003"]  # 8 + 8 + 4 files, the tar
    for shard in local.shards:
        for name in (*ARRAYS, *WHOLE_FILES.values(), "meta.jsonl", "shard.json"):
            expected = (tmp_path / "local" / "shards" / shard / name).read_bytes()
            assert (tmp_path / "dask" / "shards" / shard / name).read_bytes() == expected, f"{shard}/{name}"
    for name in ("manifest.json", "units.jsonl"):
        assert (tmp_path / "dask" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()


def test_cli_dask_build_appends_and_skips_what_is_indexed(tmp_path, capsys, scheduler_address):
    first = photo_folder(tmp_path / "first", PHOTOS[:3])
    second = photo_folder(tmp_path / "second", PHOTOS[3:5])
    (second / "broken.jpg").write_bytes(b"not a picture")
    out = tmp_path / "index"
    assert run(capsys, ["index", "build", str(first), "--out", str(out), "--workers", "1", "--quiet"])[0] == 0
    before = shard_files(out, "00000")

    argv = ["index", "build", str(first), str(second), "--out", str(out), "--append", "--quiet"]

    code, stdout, _ = run(capsys, [*argv, "--dask", scheduler_address])

    assert code == 0
    assert "indexed 2 entries into 1 new shard(s)" in stdout
    assert "1 entries could not be hashed (not_an_image: 1)" in stdout
    assert f"already indexed, skipped: {first.absolute()}" in stdout
    assert shard_files(out, "00000") == before
