"""Resuming an interrupted build, appending to an index, and refusing what would corrupt it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bot.config import Settings
from bot.index import batches
from bot.index.build import build_index
from bot.index.search import HashIndex
from bot.index.storage import IndexFormatError, Manifest, hashing_parameters
from bot.index.units import LEDGER_NAME, UnitLedger
from tests.bot.index.test_build import DATASET, PHOTOS, all_arrays, make_source, run, shard_files, write_tar

ROOT = Path(__file__).resolve().parents[3]


def small_units(settings: Settings, size: int) -> Settings:
    return replace(settings, index=replace(settings.index, shard_size=size))


def photo_folder(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True)
    for name in names:
        shutil.copy(DATASET / name, folder / name)
    return folder


def listed_shard_files(out: Path) -> dict[str, dict[str, tuple[bytes, int, int]]]:
    """Every listed shard's files with their bytes, mtime and inode: a redone shard changes them."""
    return {name: shard_files(out, name) for name in Manifest.read(out).shards}


def assert_same_entries(index: Path, reference: Path) -> None:
    got, expected = all_arrays(index), all_arrays(reference)
    for name, array in expected.items():
        np.testing.assert_array_equal(got[name], array, err_msg=name)


# --- a build killed at a random point -----------------------------------------------------------


def test_build_killed_mid_way_resumes_without_redoing_finished_shards(tmp_path, capsys, monkeypatch):
    source = make_source(tmp_path / "source", copies=4)  # 36 photos and 2 damaged files
    out = tmp_path / "index"
    argv = ["index", "build", str(source), "--out", str(out), "--workers", "1", "--quiet"]
    env = {**os.environ, "REMOVAL_DESK_INDEX_SHARD_SIZE": "2"}  # 19 units: the kill lands mid-build

    build = subprocess.Popen([sys.executable, "-m", "bot", *argv], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        while build.poll() is None and time.monotonic() < deadline:
            if (out / "manifest.json").exists() and Manifest.read(out).shards:
                break
            time.sleep(0.002)  # polling the manifest, not waiting for a guessed moment
    finally:
        build.kill()  # SIGKILL: no clean-up of any kind
        build.wait()
    finished = listed_shard_files(out)
    assert 1 <= len(finished) < 19, "the build must be killed after its first shard and before its last"

    monkeypatch.setenv("REMOVAL_DESK_INDEX_SHARD_SIZE", "2")
    code, stdout, _ = run(capsys, argv)

    assert code == 0
    assert f"skipped {len(finished)} of 19 unit(s) already in the index" in stdout
    assert {name: shard_files(out, name) for name in finished} == finished  # not rewritten
    assert len(Manifest.read(out).shards) == 19
    reference = tmp_path / "reference"  # uninterrupted, in one unit: the same entries in the same order
    monkeypatch.delenv("REMOVAL_DESK_INDEX_SHARD_SIZE")
    assert run(capsys, [*argv[:3], "--out", str(reference), *argv[5:]])[0] == 0
    assert_same_entries(out, reference)
    failures = sum((Counter(shard.summary()["failures"]) for shard in HashIndex(out).shards), Counter())
    assert failures == Counter(HashIndex(reference).shards[0].summary()["failures"])


def test_rerunning_a_finished_build_changes_nothing_and_says_so(tmp_path, capsys):
    source = photo_folder(tmp_path / "source", PHOTOS[:3])
    out = tmp_path / "index"
    argv = ["index", "build", str(source), "--out", str(out), "--workers", "1", "--quiet"]
    assert run(capsys, argv)[0] == 0
    before = listed_shard_files(out)
    ledger_before = (out / LEDGER_NAME).read_bytes()

    code, stdout, _ = run(capsys, argv)

    assert code == 0
    assert "indexed 0 entries into 0 new shard(s)" in stdout
    assert "skipped 1 of 1 unit(s) already in the index" in stdout
    assert f"already indexed, skipped: {source.absolute()}" in stdout
    assert listed_shard_files(out) == before
    assert (out / LEDGER_NAME).read_bytes() == ledger_before


def test_index_left_empty_by_a_build_killed_before_its_first_shard_resumes(tmp_path, settings: Settings):
    source = photo_folder(tmp_path / "source", PHOTOS[:2])
    out = tmp_path / "index"
    out.mkdir()
    Manifest(hashing=hashing_parameters(settings)).write(out)  # what a build writes before any shard

    report = build_index([source], out, settings, workers=1, show_progress=False)

    assert (report.entries, report.shards) == (2, ["00000"])


def test_unit_committed_but_not_yet_in_the_manifest_is_redone(tmp_path, settings: Settings):
    """Killed between the ledger line and the manifest: the unit is not done, its shard is skipped over."""
    source = photo_folder(tmp_path / "source", PHOTOS)
    small = small_units(settings, 4)
    out, reference = tmp_path / "index", tmp_path / "reference"
    build_index([source], reference, small, workers=1, show_progress=False)
    build_index([source], out, small, workers=1, show_progress=False)
    manifest = Manifest.read(out)
    manifest.shards.pop()  # the last unit: shard and ledger line written, manifest not
    manifest.write(out)
    kept = listed_shard_files(out)

    report = build_index([source], out, small, workers=1, show_progress=False)

    assert (report.skipped_units, report.shards) == (2, ["00003"])
    assert listed_shard_files(out) == {**kept, "00003": shard_files(out, "00003")}
    assert_same_entries(out, reference)


def test_torn_last_ledger_line_is_ignored_and_cut_before_the_next(tmp_path, settings: Settings):
    first, second = photo_folder(tmp_path / "a", PHOTOS[:2]), photo_folder(tmp_path / "b", PHOTOS[2:4])
    out = tmp_path / "index"
    build_index([first], out, settings, workers=1, show_progress=False)
    with (out / LEDGER_NAME).open("ab") as ledger:
        ledger.write(b'{"id": "0123456789abcdef", "shard": "000')  # killed mid-line

    report = build_index([first, second], out, settings, workers=1, append=True, show_progress=False)

    assert (report.skipped_units, report.shards, report.already_indexed) == (1, ["00001"], [str(first)])
    lines = (out / LEDGER_NAME).read_bytes().splitlines()
    assert [json.loads(line)["shard"] for line in lines] == ["00000", "00001"]
    assert UnitLedger(out).done(["00000", "00001"]).keys() == {json.loads(line)["id"] for line in lines}


# --- appending ----------------------------------------------------------------------------------


def test_append_adds_new_sources_and_skips_those_already_indexed(tmp_path, capsys):
    first = photo_folder(tmp_path / "first", PHOTOS[:4])
    second = photo_folder(tmp_path / "second", PHOTOS[4:])
    out = tmp_path / "index"
    assert run(capsys, ["index", "build", str(first), "--out", str(out), "--workers", "1", "--quiet"])[0] == 0
    before = listed_shard_files(out)
    argv = ["index", "build", str(first), str(second), "--out", str(out), "--append", "--quiet"]

    code, stdout, _ = run(capsys, [*argv, "--workers", "2"])

    assert code == 0
    assert f"indexed {len(PHOTOS) - 4} entries into 1 new shard(s)" in stdout
    assert f"already indexed, skipped: {first.absolute()}" in stdout
    assert listed_shard_files(out)["00000"] == before["00000"]
    index = HashIndex(out)
    keys = [shard.record(number).key for shard in index.shards for number in range(shard.entries)]
    assert keys == PHOTOS  # nothing twice
    assert [shard.summary()["sources"] for shard in index.shards] == [[str(first)], [str(second)]]


def test_append_of_a_source_that_changed_since_it_was_indexed_is_refused(tmp_path, settings: Settings):
    source = photo_folder(tmp_path / "source", PHOTOS[:6])
    (source / "shards").mkdir()
    write_tar(source / "shards" / "0.tar")
    out = tmp_path / "index"
    small = small_units(settings, 4)
    build_index([source], out, small, workers=1, show_progress=False)
    manifest_before = (out / "manifest.json").read_bytes()

    shutil.copy(DATASET / PHOTOS[-1], source / "zz-added-later.jpg")  # into the last unit of 4
    with pytest.raises(IndexFormatError, match="has changed since part of it was indexed"):
        build_index([source], out, small, workers=1, append=True, show_progress=False)
    (source / "zz-added-later.jpg").unlink()
    tar = source / "shards" / "0.tar"
    written = tar.stat()
    write_tar(tar)  # the same bytes, rewritten: another modification time
    os.utime(tar, ns=(1, 1))
    with pytest.raises(IndexFormatError, match=r"0\.tar is not what it was"):
        build_index([source], out, small, workers=1, show_progress=False)
    os.utime(tar, ns=(written.st_atime_ns, written.st_mtime_ns))
    assert build_index([source], out, small, workers=1, show_progress=False).skipped_units == 3
    with pytest.raises(IndexFormatError, match="has changed"):  # nor with another unit size
        build_index([source], out, small_units(settings, 5), workers=1, show_progress=False)

    assert (out / "manifest.json").read_bytes() == manifest_before


# --- sources that cannot be read ----------------------------------------------------------------


def test_unreadable_tar_is_reported_and_only_it_is_redone_once_fixed(tmp_path, capsys):
    source = photo_folder(tmp_path / "source", PHOTOS[:3])
    (source / "shards").mkdir()
    (source / "shards" / "broken.tar").write_bytes(b"this is not a tar archive" * 40)
    out = tmp_path / "index"
    argv = ["index", "build", str(source), "--out", str(out), "--workers", "2", "--quiet"]

    code, stdout, stderr = run(capsys, argv)

    assert code == 1
    assert "indexed 3 entries into 1 new shard(s)" in stdout
    assert "1 unit(s) could not be read" in stderr
    assert "broken.tar" in stderr
    before = listed_shard_files(out)
    write_tar(source / "shards" / "broken.tar")

    code, stdout, stderr = run(capsys, argv)

    assert (code, stderr) == (0, "")
    assert "indexed 1 entries into 1 new shard(s)" in stdout
    assert "skipped 1 of 2 unit(s)" in stdout
    assert listed_shard_files(out)["00000"] == before["00000"]


def test_a_picture_that_kills_its_hashing_process_is_one_failure_not_the_end_of_the_build(
    tmp_path, monkeypatch, settings: Settings
):
    source = photo_folder(tmp_path / "source", PHOTOS)
    small = small_units(settings, 4)
    real_hash_item = batches.hash_item

    def hash_or_die(item, item_settings=None):
        if item.entry.key == "rocket.jpg":  # a decoder that crashes, or the system out of memory
            os._exit(9)
        return real_hash_item(item, item_settings)

    monkeypatch.setattr(batches, "hash_item", hash_or_die)  # the forked workers inherit it

    report = build_index([source], tmp_path / "index", small, workers=2, show_progress=False)

    assert dict(report.failures) == {"hashing_process_died": 1}
    assert report.entries == len(PHOTOS) - 1
    index = HashIndex(tmp_path / "index")
    keys = [shard.record(number).key for shard in index.shards for number in range(shard.entries)]
    assert keys == [name for name in PHOTOS if name != "rocket.jpg"]
    assert index.shards[-1].summary()["failure_examples"] == [
        {"key": "rocket.jpg", "reason": "hashing_process_died"}
    ]
    monkeypatch.setattr(batches, "hash_item", real_hash_item)
    reference = tmp_path / "reference"
    build_index([source], reference, small, workers=1, show_progress=False)
    expected = all_arrays(reference, wholes_only=True)
    got = all_arrays(tmp_path / "index", wholes_only=True)
    rocket = sorted(PHOTOS).index("rocket.jpg")
    for name in ("phash.npy", "pdq.npy", "quality.npy"):
        np.testing.assert_array_equal(got[name], np.delete(expected[name], rocket, axis=0), err_msg=name)
