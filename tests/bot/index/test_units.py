"""Work units (bot.index.units): cutting sources into numbered slices, their read tasks, reading a task
with the reader its source needs, and the ledger of finished units."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bot.config import Settings
from bot.index.sources import SourceError, SourceItem, iter_folder_pictures, iter_hash_parquet, list_folder
from bot.index.storage import DatasetEntry
from bot.index.units import (
    HASH_ROWS_PER_TASK,
    LEDGER_NAME,
    PICTURES_PER_TASK,
    URL_ROWS_PER_TASK,
    ReadTask,
    UnitKind,
    UnitLedger,
    WorkUnit,
    plan_units,
    read_task,
    source_units,
)
from tests.bot.index.test_sources import DATASET, TAR_SAMPLES, photo, write_webdataset_tar


def read_source(source: Path, settings: Settings, unit_size: int = 1_000) -> list[SourceItem]:
    """Every entry of ``source`` as a build reads it: its units in order, each unit's tasks in order."""
    return [
        item
        for unit in source_units(source, unit_size)
        for task in unit.tasks()
        for item in read_task(task, settings)
    ]


def picture_folder(folder: Path, names: list[str]) -> Path:
    """A folder of files named like pictures (planning looks at names, never at the bytes)."""
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"planning never reads this")
    return folder


def hash_file(path: Path, rows: int) -> Path:
    keys = [f"key-{n}" for n in range(rows)]
    pq.write_table(
        pa.table({"key": keys, "phash": [f"{n:016x}" for n in range(rows)], "pdq": ["00" * 32] * rows}), path
    )
    return path


# --- reading a source the way a build does ------------------------------------------------------


def test_folder_reads_the_tar_shards_it_contains_after_its_pictures(tmp_path, settings: Settings):
    root = tmp_path / "dataset"
    (root / "shards").mkdir(parents=True)
    write_webdataset_tar(root / "shards" / "00000.tar")
    shutil.copy(DATASET / "grass.jpg", root / "zz-last-by-name.jpg")

    items = read_source(root, settings)

    assert [item.entry.key for item in items] == ["zz-last-by-name.jpg"] + [k for k, _, _ in TAR_SAMPLES]
    assert items[0].picture == photo("grass")
    assert items[1].entry.url == "https://example.org/pictures/000000000.jpg"
    assert items[4].problem == "no_picture"


def test_source_that_is_neither_folder_tar_parquet_nor_url_list_is_refused(tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("key,url\n")

    with pytest.raises(SourceError, match="not a folder"):
        source_units(other, 10)
    with pytest.raises(SourceError, match="does not exist"):
        source_units(tmp_path / "missing", 10)


def test_each_kind_of_source_is_read_by_its_own_reader(tmp_path, settings: Settings):
    folder = tmp_path / "pictures"
    folder.mkdir()
    for name in ("coffee", "chelsea", "rocket"):
        shutil.copy(DATASET / f"{name}.jpg", folder / f"{name}.jpg")
    hashes = hash_file(tmp_path / "hashes.parquet", 5)

    from_folder = read_source(folder, settings, unit_size=2)
    from_hashes = read_source(hashes, settings, unit_size=2)

    assert [item.entry for item in from_folder] == [
        item.entry for item in iter_folder_pictures(folder, list_folder(folder)[0])
    ]
    assert all(item.picture is not None for item in from_folder)
    assert [(item.entry, item.hashes.phash if item.hashes else None) for item in from_hashes] == [
        (item.entry, item.hashes.phash if item.hashes else None) for item in iter_hash_parquet(hashes)
    ]


def test_a_url_list_task_downloads_its_own_rows(tmp_path, settings: Settings):
    """Rows whose URL no download is tried for (not http): each comes back as ``bad_url``, in order,
    under the key from the list's id column, and only the task's rows."""
    path = tmp_path / "list.csv"
    path.write_text("key,url\n" + "".join(f"row-{n},ftp://example.org/{n}.jpg\n" for n in range(6)))
    (unit,) = source_units(path, 10)
    (task,) = unit.tasks()
    later = ReadTask(task.kind, task.path, 2, 5)

    items = list(read_task(later, settings))

    assert [(item.entry.key, item.problem) for item in items] == [(f"row-{n}", "bad_url") for n in (2, 3, 4)]


def test_a_pictures_task_reads_only_its_own_files_in_its_own_order(tmp_path, settings: Settings):
    folder = tmp_path / "folder"
    folder.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(DATASET / "coffee.jpg", folder / f"{name}.jpg")
    task = ReadTask(UnitKind.PICTURES, str(folder), files=("c.jpg", "a.jpg"))

    assert [item.entry for item in read_task(task, settings)] == [
        DatasetEntry("c.jpg"),
        DatasetEntry("a.jpg"),
    ]


# --- planning -----------------------------------------------------------------------------------


def test_a_folder_is_cut_into_units_of_unit_size_pictures_then_one_unit_per_tar(tmp_path):
    names = ["b.jpg", "a.png", "sub/c.jpeg", "sub/d.jpg", "e.webp", "notes.txt"]
    folder = picture_folder(tmp_path / "folder", names)
    for tar in ("z.tar", "sub/y.tar"):
        (folder / tar).write_bytes(b"")

    units = source_units(folder, 2)

    pictures, tars = list_folder(folder)
    assert [unit.kind for unit in units] == [UnitKind.PICTURES] * 3 + [UnitKind.WEBDATASET] * 2
    assert [unit.files for unit in units[:3]] == [tuple(pictures[i : i + 2]) for i in range(0, 5, 2)]
    assert [(unit.start, unit.stop, unit.size) for unit in units[:3]] == [(0, 2, 2), (2, 4, 2), (4, 5, 1)]
    assert [unit.path for unit in units[3:]] == [str(tar) for tar in tars]
    assert [(unit.start, unit.stop, unit.size) for unit in units[3:]] == [(0, None, None)] * 2
    assert {unit.root for unit in units} == {str(folder)}


def test_rows_of_a_hash_file_or_a_url_list_are_cut_by_unit_size(tmp_path):
    hashes = hash_file(tmp_path / "hashes.parquet", 10)
    url_parquet = tmp_path / "urls.parquet"
    pq.write_table(pa.table({"URL": [f"https://example.org/{n}.jpg" for n in range(7)]}), url_parquet)
    url_csv = tmp_path / "urls.tsv"
    url_csv.write_text("url\n" + "".join(f"https://example.org/{n}.jpg\n" for n in range(3)))

    def cuts(path: Path) -> list[tuple[UnitKind, int, int | None]]:
        return [(unit.kind, unit.start, unit.stop) for unit in source_units(path, 4)]

    assert cuts(hashes) == [(UnitKind.HASHES, 0, 4), (UnitKind.HASHES, 4, 8), (UnitKind.HASHES, 8, 10)]
    assert cuts(url_parquet) == [(UnitKind.URLS, 0, 4), (UnitKind.URLS, 4, 7)]
    assert cuts(url_csv) == [(UnitKind.URLS, 0, 3)]


def test_the_same_source_gives_the_same_units_and_only_changed_slices_get_new_ids(tmp_path):
    folder = picture_folder(tmp_path / "folder", ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"])
    hashes = hash_file(tmp_path / "hashes.parquet", 6)
    before = [unit.id for unit in plan_units([folder, hashes], 2)]

    assert [unit.id for unit in plan_units([folder, hashes], 2)] == before
    picture_folder(folder, ["f.jpg"])  # lands in the last unit of the folder
    hash_file(hashes, 6)
    os.utime(hashes, ns=(0, 1_000_000_000))  # rewritten: another modification time
    after = [unit.id for unit in plan_units([folder, hashes], 2)]

    assert after[:2] == before[:2]  # the folder's first two units hold the same files
    assert after[2] != before[2]  # its last one now holds one more
    assert set(after[3:]).isdisjoint(before[3:])  # every unit of the rewritten hash file


def test_a_source_named_twice_is_planned_once(tmp_path, monkeypatch):
    folder = picture_folder(tmp_path / "folder", ["a.jpg", "b.jpg", "c.jpg"])
    hashes = hash_file(tmp_path / "hashes.parquet", 3)
    monkeypatch.chdir(tmp_path)

    units = plan_units([folder, hashes, Path("folder"), folder], 2)

    assert units == source_units(folder, 2) + source_units(hashes, 2)


# --- tasks --------------------------------------------------------------------------------------


def test_a_unit_is_split_into_tasks_that_cover_it_exactly():
    files = tuple(f"{n:04}.jpg" for n in range(2 * PICTURES_PER_TASK + 5))
    pictures = WorkUnit("r", UnitKind.PICTURES, "folder", 0, len(files), "f", files)
    urls = WorkUnit("r", UnitKind.URLS, "list.csv", 100, 100 + 3 * URL_ROWS_PER_TASK, "f")
    hashes = WorkUnit("r", UnitKind.HASHES, "hashes.parquet", 0, HASH_ROWS_PER_TASK + 1, "f")
    tar = WorkUnit("r", UnitKind.WEBDATASET, "shard.tar", 0, None, "f")

    for scale in (1, 2):
        picture_tasks = pictures.tasks(scale)
        assert [len(task.files) for task in picture_tasks[:-1]] == [PICTURES_PER_TASK * scale] * (
            len(picture_tasks) - 1
        )
        assert tuple(name for task in picture_tasks for name in task.files) == files
        url_tasks = urls.tasks(scale)
        assert [(task.start, task.stop) for task in url_tasks] == [
            (start, min(start + URL_ROWS_PER_TASK * scale, urls.stop))
            for start in range(urls.start, urls.stop, URL_ROWS_PER_TASK * scale)
        ]
        # hash rows cost microseconds: a task is one Parquet batch at any scale
        assert [(task.start, task.stop) for task in hashes.tasks(scale)] == [
            (0, HASH_ROWS_PER_TASK),
            (HASH_ROWS_PER_TASK, HASH_ROWS_PER_TASK + 1),
        ]
        assert [(task.kind, task.path, task.stop) for task in tar.tasks(scale)] == [
            (UnitKind.WEBDATASET, "shard.tar", None)
        ]


def test_a_unit_describes_its_slice_and_its_id_follows_its_identity():
    unit = WorkUnit("/data", UnitKind.PICTURES, "/data", 4, 8, "f1", ("a.jpg",))
    rows = WorkUnit("/data/l.csv", UnitKind.URLS, "/data/l.csv", 1000, 2000, "f1")
    tar = WorkUnit("/data", UnitKind.WEBDATASET, "/data/s.tar", 0, None, "f1")

    assert unit.describe() == "/data (pictures 4-7)"
    assert rows.describe() == "/data/l.csv (rows 1,000-1,999)"
    assert tar.describe() == "/data/s.tar"
    # the file list is not part of the identity: the fingerprint already stands for it
    assert WorkUnit("/data", UnitKind.PICTURES, "/data", 4, 8, "f1", ("other.jpg",)).id == unit.id
    assert WorkUnit("/data", UnitKind.PICTURES, "/data", 4, 8, "f2").id != unit.id
    assert WorkUnit("/data", UnitKind.PICTURES, "/data", 4, 9, "f1").id != unit.id


# --- the ledger ---------------------------------------------------------------------------------


def test_the_ledger_says_which_listed_shards_hold_which_units(tmp_path):
    units = [WorkUnit("/d", UnitKind.HASHES, "/d/h.parquet", n, n + 1, "f") for n in range(3)]
    ledger = UnitLedger(tmp_path)
    for number, unit in enumerate(units):
        ledger.record(unit, f"{number:05}")

    again = UnitLedger(tmp_path)

    assert again.shard_of == {unit.id: f"{n:05}" for n, unit in enumerate(units)}
    # a unit whose shard the manifest does not list is not done
    assert again.done(["00000", "00002"]) == {
        units[0].id: units[0].identity(),
        units[2].id: units[2].identity(),
    }
    assert again.unrecorded(["00000", "00007", "00002", "00009"]) == ["00007", "00009"]


def test_no_ledger_file_is_an_empty_ledger(tmp_path):
    ledger = UnitLedger(tmp_path)
    assert (ledger.shard_of, ledger.done(["00000"]), ledger.unrecorded(["00000"])) == ({}, {}, ["00000"])
    assert not (tmp_path / LEDGER_NAME).exists()
