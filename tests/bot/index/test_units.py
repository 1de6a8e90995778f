"""Work units (bot.index.units): reading a source the way a build does, with the reader its kind needs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bot.config import Settings
from bot.index.sources import SourceError, SourceItem, iter_folder_pictures, iter_hash_parquet, list_folder
from bot.index.units import read_task, source_units
from tests.bot.index.test_sources import DATASET, TAR_SAMPLES, photo, write_webdataset_tar


def read_source(source: Path, settings: Settings, unit_size: int = 1_000) -> list[SourceItem]:
    """Every entry of ``source`` as a build reads it: its units in order, each unit's tasks in order."""
    return [
        item
        for unit in source_units(source, unit_size)
        for task in unit.tasks()
        for item in read_task(task, settings)
    ]


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
