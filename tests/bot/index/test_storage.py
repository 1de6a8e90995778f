"""The on-disk index format (bot.index.storage): shards written aside and renamed in, read back
memory-mapped row for row, and the manifest that lists them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from bot.hashing import EntryHashes, EntryPart, RowKind
from bot.index.storage import DatasetEntry, IndexFormatError, Manifest, ShardReader, ShardWriter
from bot.verification import CHROMA_SIDE, THUMBNAIL_SIDE, has_thumbnail
from tests.bot.test_verification import entry, write_entries


def test_entry_thumbnails_read_back_from_a_shard_match_what_was_written(tmp_path):
    """ShardReader maps the thumbnails; an entry added without one reads back as all zero."""
    folder = tmp_path / "written"
    write_entries(folder, [entry("coffee.jpg"), dataclasses.replace(entry("chelsea.jpg"), thumbnail=None)])

    shard = ShardReader(folder / "shards" / "00000")

    assert shard.thumbnail is not None
    assert shard.thumbnail.shape == (2, 16, 16)
    np.testing.assert_array_equal(shard.thumbnail[0], entry("coffee.jpg").thumbnail)
    assert has_thumbnail(np.asarray(shard.thumbnail)).tolist() == [True, False]


# --- shards ---------------------------------------------------------------------------------------


def made_up_hashes(seed: int, **changes: object) -> EntryHashes:
    rng = np.random.default_rng(seed)
    hashes = EntryHashes(
        phash=int(rng.integers(0, 2**63)) * 2 + 1,  # the top bit set on some: the full uint64 range
        pdq=rng.integers(0, 2**64, size=4, dtype=np.uint64),
        quality=int(rng.integers(50, 101)),
        thumbnail=rng.integers(0, 256, size=(THUMBNAIL_SIDE, THUMBNAIL_SIDE), dtype=np.uint8),
        chroma=rng.integers(-128, 128, size=(2, CHROMA_SIDE, CHROMA_SIDE), dtype=np.int8),
    )
    return dataclasses.replace(hashes, **changes)  # type: ignore[arg-type]


def write_shard(folder: Path, entries: list[tuple[DatasetEntry, EntryHashes]], name: str = "00000") -> Path:
    writer = ShardWriter(folder, name)
    for dataset_entry, hashes in entries:
        writer.add(dataset_entry, hashes)
    writer.commit()
    return folder / "shards" / name


def test_a_shard_reads_back_row_for_row_with_each_part_pointing_at_its_entry(tmp_path):
    core = EntryPart(box=(0.2, 0.2, 0.8, 0.8), hashes=made_up_hashes(2, thumbnail=None), kind=RowKind.CORE)
    photograph = EntryPart(box=(0.5, 0.0, 1.0, 0.75), hashes=made_up_hashes(3, chroma=None))
    written = [
        (DatasetEntry("plain", url="https://example.org/1.jpg", caption="a plain photo"), made_up_hashes(1)),
        (
            DatasetEntry("before-after", caption="avant / après, 東京"),
            made_up_hashes(4, parts=(core, photograph)),
        ),
        (DatasetEntry("last"), made_up_hashes(5)),
    ]
    rows = [written[0][1], written[1][1], core.hashes, photograph.hashes, written[2][1]]

    shard = ShardReader(write_shard(tmp_path, written))

    assert (len(shard), shard.entries) == (5, 3)
    assert shard.phash.tolist() == [hashes.phash for hashes in rows]
    np.testing.assert_array_equal(shard.pdq, np.stack([hashes.pdq for hashes in rows]))
    assert shard.quality.tolist() == [hashes.quality for hashes in rows]
    assert [shard.entry_number(row) for row in range(5)] == [0, 1, 1, 1, 2]
    assert [shard.entry(row) for row in range(5)] == [written[n][0] for n in (0, 1, 1, 1, 2)]
    assert [shard.part_box(row) for row in range(5)] == [None, None, core.box, photograph.box, None]
    kinds = [RowKind.PICTURE, RowKind.PICTURE, RowKind.CORE, RowKind.PICTURE, RowKind.PICTURE]
    assert [shard.row_kind(row) for row in range(5)] == kinds
    assert shard.kinds.tolist() == [int(kind) for kind in kinds]
    assert shard.thumbnail is not None
    assert shard.chroma is not None
    assert not shard.thumbnail[2].any()  # no thumbnail kept: all zero, as has_thumbnail reads it
    assert not shard.chroma[3].any()
    np.testing.assert_array_equal(shard.chroma[0], written[0][1].chroma)
    for array in (shard.phash, shard.pdq, shard.quality, shard.thumbnail, shard.chroma):
        assert isinstance(array, np.memmap)
        assert not array.flags.writeable
    assert (shard.summary()["entries"], shard.summary()["rows"]) == (3, 5)


def test_a_shard_of_whole_pictures_has_one_row_per_entry_and_no_rows_file(tmp_path):
    written = [(DatasetEntry(f"k{n}"), made_up_hashes(n)) for n in range(3)]

    shard = ShardReader(write_shard(tmp_path, written))

    assert not (shard.path / "rows.npy").exists()
    assert [(shard.entry_number(row), shard.part_box(row), shard.row_kind(row)) for row in range(3)] == [
        (row, None, RowKind.PICTURE) for row in range(3)
    ]
    assert shard.kinds.tolist() == [0, 0, 0]


def test_a_part_box_outside_the_picture_is_clamped_to_it(tmp_path):
    part = EntryPart(box=(-0.1, 0.25, 0.5, 1.3), hashes=made_up_hashes(7))
    shard = ShardReader(write_shard(tmp_path, [(DatasetEntry("k"), made_up_hashes(6, parts=(part,)))]))
    assert shard.part_box(1) == (0.0, 0.25, 0.5, 1.0)


def test_shards_written_before_row_kinds_read_every_row_as_a_picture(tmp_path):
    core = EntryPart(box=(0.2, 0.2, 0.8, 0.8), hashes=made_up_hashes(9), kind=RowKind.CORE)
    path = write_shard(tmp_path, [(DatasetEntry("k"), made_up_hashes(8, parts=(core,)))])
    np.save(path / "rows.npy", np.load(path / "rows.npy")[:, :5])  # the five columns of old shards

    shard = ShardReader(path)

    assert shard.kinds.tolist() == [0, 0]
    assert shard.row_kind(1) == RowKind.PICTURE
    assert shard.part_box(1) == core.box


def test_an_empty_shard_opens(tmp_path):
    shard = ShardReader(write_shard(tmp_path, []))
    assert (len(shard), shard.entries, shard.pdq.shape) == (0, 0, (0, 4))


def test_failures_are_counted_with_the_first_twenty_examples(tmp_path):
    writer = ShardWriter(tmp_path, "00000")
    for number in range(25):
        writer.add_failure(DatasetEntry(f"bad-{number}"), "corrupt" if number % 5 else "not_an_image")
    writer.add(DatasetEntry("good"), made_up_hashes(1))
    writer.commit()

    summary = ShardReader(tmp_path / "shards" / "00000").summary()

    assert summary["failures"] == {"corrupt": 20, "not_an_image": 5}
    assert [example["key"] for example in summary["failure_examples"]] == [f"bad-{n}" for n in range(20)]
    assert len(writer) == 1


def test_commit_writes_aside_and_leaves_no_temporary_folder(tmp_path):
    leftover = tmp_path / "shards" / ".tmp-00000"  # from a build killed mid-commit
    leftover.mkdir(parents=True)
    (leftover / "phash.npy").write_bytes(b"half a file")

    path = write_shard(tmp_path, [(DatasetEntry("k"), made_up_hashes(1))])

    assert [child.name for child in (tmp_path / "shards").iterdir()] == ["00000"]
    assert ShardReader(path).phash.tolist() == [made_up_hashes(1).phash]


def test_a_shard_whose_arrays_disagree_is_refused(tmp_path):
    path = write_shard(tmp_path, [(DatasetEntry(f"k{n}"), made_up_hashes(n)) for n in range(3)])
    np.save(path / "quality.npy", np.load(path / "quality.npy")[:2])
    with pytest.raises(IndexFormatError, match="differ in length"):
        ShardReader(path)

    part = EntryPart(box=(0.0, 0.0, 0.5, 1.0), hashes=made_up_hashes(9))
    path = write_shard(tmp_path, [(DatasetEntry("k"), made_up_hashes(8, parts=(part,)))], name="00001")
    rows = np.load(path / "rows.npy")
    rows[1, 0] = 1  # a part of an entry the shard does not have
    np.save(path / "rows.npy", rows)
    with pytest.raises(IndexFormatError, match="points past its entries"):
        ShardReader(path)


# --- the manifest ---------------------------------------------------------------------------------


def test_the_manifest_reads_back_what_was_written(tmp_path):
    written = Manifest(hashing={"entry_margin": 0.1, "regions": [[0, 0, 0, 0]]}, shards=["00000", "00001"])
    written.write(tmp_path)
    assert Manifest.read(tmp_path) == written


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, r"not an index \(no manifest\.json\)"),
        ('{"format": "removal-desk-index", "ver', "cannot be read"),
        (b"\xff\xfe not text", "cannot be read"),
        ('["removal-desk-index", 1]', "not an index manifest"),
        ('{"format": "removal-desk-index", "version": 1, "hashing": {}}', "not a whole manifest"),
        (
            '{"format": "removal-desk-index", "version": 1, "hashing": 3, "shards": []}',
            "not a whole manifest",
        ),
    ],
    ids=["missing", "cut-short", "not-utf8", "not-an-object", "no-shards", "hashing-not-a-table"],
)
def test_a_manifest_that_cannot_be_used_is_refused_with_what_to_do(tmp_path, text, message):
    if isinstance(text, str):
        (tmp_path / "manifest.json").write_text(text, encoding="utf-8")
    elif text is not None:
        (tmp_path / "manifest.json").write_bytes(text)
    with pytest.raises(IndexFormatError, match=message) as refused:
        Manifest.read(tmp_path)
    if text is not None:
        assert "rebuild" in str(refused.value)
