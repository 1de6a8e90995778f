"""Dataset sources: folders, img2dataset ``files`` folders, webdataset tars and Parquet hash files."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from bot.config import Settings
from bot.index.batches import hash_item
from bot.index.sources import (
    SourceError,
    SourceItem,
    iter_folder_pictures,
    iter_hash_parquet,
    iter_webdataset,
    list_folder,
)

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
DATASET = SAMPLES / "dataset"


def photo(name: str) -> bytes:
    return (DATASET / f"{name}.jpg").read_bytes()


def img2dataset_record(key: str, url: str, caption: str | None, status: str = "success") -> dict:
    """The ``.json`` sidecar img2dataset writes next to each sample."""
    record: dict[str, object] = {
        "key": key,
        "url": url,
        "status": status,
        "error_message": None if status == "success" else "Error: HTTP 404",
        "width": 512 if status == "success" else None,
        "height": 341 if status == "success" else None,
        "original_width": 1024 if status == "success" else None,
        "original_height": 682 if status == "success" else None,
        "exif": '{"Image Make": "Canon"}' if status == "success" else None,
        "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    }
    if caption is not None:
        record["caption"] = caption
    return record


def add_member(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 1_700_000_000
    archive.addfile(info, io.BytesIO(data))


# (key, picture bytes or None for a failed download, caption)
TAR_SAMPLES: list[tuple[str, bytes | None, str | None]] = [
    ("000000000", photo("coffee"), "a cup of coffee on a table"),
    ("000000001", photo("chelsea"), "a tabby cat"),
    ("000000002", b"\xff\xd8\xff\xe0 this is not really a jpeg", "garbage bytes"),
    ("000000003", None, "the download of this one failed"),
    ("000000004", photo("rocket"), "a rocket on its launch pad"),
]


def write_webdataset_tar(path: Path) -> None:
    """A shard shaped like img2dataset's ``webdataset`` output: adjacent members per sample."""
    with tarfile.open(path, "w") as archive:
        for key, picture, caption in TAR_SAMPLES:
            url = f"https://example.org/pictures/{key}.jpg"
            if picture is None:
                record = img2dataset_record(key, url, caption, status="failed_to_download")
                add_member(archive, f"{key}.json", json.dumps(record).encode())
                continue
            add_member(archive, f"{key}.jpg", picture)
            add_member(archive, f"{key}.json", json.dumps(img2dataset_record(key, url, caption)).encode())
            add_member(archive, f"{key}.txt", (caption or "").encode())


# --- a folder of pictures ---------------------------------------------------------------------------


def test_folder_keys_are_posix_paths_relative_to_the_folder_and_other_files_are_ignored(tmp_path):
    root = tmp_path / "pictures"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty").mkdir()
    shutil.copy(DATASET / "coffee.jpg", root / "a.jpg")
    shutil.copy(DATASET / "chelsea.jpg", root / "sub" / "b.JPG")
    shutil.copy(DATASET / "rocket.jpg", root / "sub" / "aa.jpeg")
    Image.open(DATASET / "camera.jpg").save(root / "sub" / "deeper" / "c.png")
    for name in ("README.md", "notes.txt", "list.csv", ".DS_Store", "sub/x.json", "sub/deeper/d.jpg.bak"):
        (root / name).write_bytes(b"not a picture at all")

    items = list(iter_folder_pictures(root, list_folder(root)[0]))

    assert [item.entry.key for item in items] == ["a.jpg", "sub/aa.jpeg", "sub/b.JPG", "sub/deeper/c.png"]
    assert items[0].picture == (root / "a.jpg").read_bytes()
    assert items[3].picture == (root / "sub" / "deeper" / "c.png").read_bytes()
    for item in items:
        assert item.entry.url is None
        assert item.entry.caption is None
        assert item.hashes is None
        assert item.problem is None


def test_folder_of_img2dataset_files_output_takes_key_url_and_caption_from_sidecars(tmp_path):
    root = tmp_path / "files"
    (root / "00000").mkdir(parents=True)
    (root / "00001").mkdir()
    # one sample with both sidecars; the json's caption wins
    shutil.copy(DATASET / "coffee.jpg", root / "00000" / "000000000.jpg")
    record = img2dataset_record("000000000", "https://example.org/coffee.jpg", "coffee, from the json")
    (root / "00000" / "000000000.json").write_text(json.dumps(record))
    (root / "00000" / "000000000.txt").write_text("coffee, from the txt")
    # the json has no caption (no caption column was given): the .txt supplies it
    shutil.copy(DATASET / "chelsea.jpg", root / "00000" / "000000001.jpg")
    record = img2dataset_record("000000001", "https://example.org/cat.jpg", None)
    (root / "00000" / "000000001.json").write_text(json.dumps(record))
    (root / "00000" / "000000001.txt").write_text("a tabby cat")
    # only a .txt sidecar: the key stays the relative path
    shutil.copy(DATASET / "rocket.jpg", root / "00001" / "000010000.jpg")
    (root / "00001" / "000010000.txt").write_text("a rocket")
    # what img2dataset writes beside the pictures is not a picture
    pq.write_table(
        pa.table({"key": ["000000000"], "url": ["https://example.org/coffee.jpg"]}), root / "00000.parquet"
    )
    (root / "00000_stats.json").write_text(json.dumps({"count": 2, "successes": 2}))

    items = list(iter_folder_pictures(root, list_folder(root)[0]))

    assert [(item.entry.key, item.entry.url, item.entry.caption) for item in items] == [
        ("000000000", "https://example.org/coffee.jpg", "coffee, from the json"),
        ("000000001", "https://example.org/cat.jpg", "a tabby cat"),
        ("00001/000010000.jpg", None, "a rocket"),
    ]
    assert items[1].picture == photo("chelsea")


def test_folder_sidecar_of_a_dotted_file_name_is_its_own(tmp_path):
    shutil.copy(DATASET / "coffee.jpg", tmp_path / "cat.1.jpg")
    shutil.copy(DATASET / "chelsea.jpg", tmp_path / "cat.2.jpg")
    shutil.copy(DATASET / "rocket.jpg", tmp_path / "cat.jpg")
    (tmp_path / "cat.json").write_text(json.dumps({"key": "cat", "url": "https://example.org/cat.jpg"}))

    keys = [item.entry.key for item in iter_folder_pictures(tmp_path, list_folder(tmp_path)[0])]

    assert keys == ["cat.1.jpg", "cat.2.jpg", "cat"]


# --- a webdataset tar shard ------------------------------------------------------------------------


def test_webdataset_tar_gives_one_entry_per_sample_with_sidecar_metadata(tmp_path, settings: Settings):
    shard = tmp_path / "00000.tar"
    write_webdataset_tar(shard)

    items = list(iter_webdataset(shard))

    assert [item.entry.key for item in items] == [key for key, _, _ in TAR_SAMPLES]
    for item, (key, picture, caption) in zip(items, TAR_SAMPLES, strict=True):
        assert item.entry.url == f"https://example.org/pictures/{key}.jpg"
        assert item.entry.caption == caption
        assert item.picture == picture
        assert item.hashes is None
    assert [item.problem for item in items] == [None, None, None, "no_picture", None]
    # the garbage picture is a per-entry failure when hashed, not a source error
    entry, hashes, problem = hash_item(items[2], settings)
    assert (entry.key, hashes, problem) == ("000000002", None, "not_an_image")
    entry, hashes, problem = hash_item(items[0], settings)
    assert problem is None
    assert hashes is not None
    assert hashes.pdq.shape == (4,)


def test_webdataset_tar_without_json_falls_back_to_member_names(tmp_path):
    shard = tmp_path / "plain.tar"
    with tarfile.open(shard, "w") as archive:
        add_member(archive, "sample-a.jpg", photo("coffee"))
        add_member(archive, "sample-a.txt", b"caption a")
        add_member(archive, "sample-b.png", photo("brick"))  # suffix says png: still a picture

    items = list(iter_webdataset(shard))

    assert [(i.entry.key, i.entry.url, i.entry.caption) for i in items] == [
        ("sample-a", None, "caption a"),
        ("sample-b", None, None),
    ]
    assert items[1].picture == photo("brick")


def test_unreadable_tar_is_a_source_error(tmp_path):
    shard = tmp_path / "broken.tar"
    shard.write_bytes(b"this is not a tar archive" * 40)

    with pytest.raises(SourceError, match=r"broken\.tar"):
        list(iter_webdataset(shard))


# --- a Parquet file of precomputed hashes -----------------------------------------------------------

PHASHES = [0x0123_4567_89AB_CDEF, 0xFFFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, 0, 0xF2B2_CCCF_762B_1058]


def pdq_words(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**64, size=4, dtype=np.uint64)


def pdq_bytes(words: np.ndarray) -> bytes:
    return b"".join(int(word).to_bytes(8, "big") for word in words)


def as_int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def hash_table(phash: pa.Array, pdq: pa.Array, **extra: pa.Array) -> pa.Table:
    keys = [f"key-{i}" for i in range(len(phash))]
    urls = [f"https://example.org/{i}.jpg" for i in range(len(phash))]
    captions = [f"caption {i}" for i in range(len(phash))]
    return pa.table({"key": keys, "url": urls, "caption": captions, "phash": phash, "pdq": pdq, **extra})


def check_parsed(items: list[SourceItem], qualities: list[int] | None = None) -> None:
    assert [item.entry.key for item in items] == [f"key-{i}" for i in range(len(PHASHES))]
    for i, item in enumerate(items):
        assert item.problem is None
        assert item.picture is None
        assert item.entry.url == f"https://example.org/{i}.jpg"
        assert item.entry.caption == f"caption {i}"
        assert item.hashes is not None
        assert item.hashes.phash == PHASHES[i]
        assert item.hashes.pdq.dtype == np.uint64
        np.testing.assert_array_equal(item.hashes.pdq, pdq_words(i))
        assert item.hashes.quality == (100 if qualities is None else qualities[i])


def test_parquet_with_hex_strings(tmp_path):
    path = tmp_path / "hashes.parquet"
    phash = pa.array([f"{value:016x}" for value in PHASHES])
    pdq = pa.array([pdq_bytes(pdq_words(i)).hex() for i in range(len(PHASHES))])
    pq.write_table(hash_table(phash, pdq), path)

    check_parsed(list(iter_hash_parquet(path)))


def test_parquet_with_int64_phash_and_binary_pdq(tmp_path):
    path = tmp_path / "hashes.parquet"
    signed = [as_int64(value) for value in PHASHES]
    assert min(signed) < 0  # the hashes with the top bit set are stored as negative int64
    phash = pa.array(signed, type=pa.int64())
    pdq = pa.array([pdq_bytes(pdq_words(i)) for i in range(len(PHASHES))], type=pa.binary(32))
    qualities = [100, 0, 49, 50, 87]
    pq.write_table(hash_table(phash, pdq, quality=pa.array(qualities, type=pa.uint8())), path)

    check_parsed(list(iter_hash_parquet(path)), qualities)


def test_parquet_with_variable_length_binary_pdq_read_in_small_batches(tmp_path):
    path = tmp_path / "hashes.parquet"
    phash = pa.array([f"{value:016X}" for value in PHASHES])
    pdq = pa.array([pdq_bytes(pdq_words(i)) for i in range(len(PHASHES))], type=pa.binary())
    pq.write_table(hash_table(phash, pdq), path, row_group_size=2)

    check_parsed(list(iter_hash_parquet(path, batch_rows=2)))


def test_parquet_with_only_the_required_columns(tmp_path):
    path = tmp_path / "hashes.parquet"
    table = pa.table(
        {"key": [7, 8], "phash": ["00000000000000ff", "ff00000000000000"], "pdq": ["ab" * 32] * 2}
    )
    pq.write_table(table, path)

    items = list(iter_hash_parquet(path))

    assert [(i.entry.key, i.entry.url, i.entry.caption) for i in items] == [
        ("7", None, None),
        ("8", None, None),
    ]
    assert [i.hashes.phash for i in items if i.hashes] == [0xFF, 0xFF00_0000_0000_0000]
    assert all(i.hashes is not None and i.hashes.quality == 100 for i in items)


@pytest.mark.parametrize(
    ("phash", "pdq"),
    [
        ("not hexadecimal", "00" * 32),
        (None, "00" * 32),
        ("00000000000000ff", "00" * 31),  # 62 hex digits
        ("00000000000000ff", "0" * 63),  # odd number of digits
        ("00000000000000ff", "zz" * 32),
        ("00000000000000ff", None),
    ],
)
def test_parquet_row_with_a_bad_hash_value_is_a_problem_not_an_error(tmp_path, phash, pdq):
    path = tmp_path / "hashes.parquet"
    table = pa.table(
        {
            "key": ["good-before", "bad", "good-after"],
            "phash": pa.array(["0000000000000001", phash, "0000000000000002"], type=pa.string()),
            "pdq": pa.array(["11" * 32, pdq, "22" * 32], type=pa.string()),
        }
    )
    pq.write_table(table, path)

    items = list(iter_hash_parquet(path))

    assert [(i.entry.key, i.problem) for i in items] == [
        ("good-before", None),
        ("bad", "bad_hash_value"),
        ("good-after", None),
    ]
    assert items[1].hashes is None
    assert [i.hashes.phash for i in (items[0], items[2]) if i.hashes] == [1, 2]


def test_parquet_binary_pdq_of_the_wrong_length_is_a_bad_hash_value(tmp_path):
    path = tmp_path / "hashes.parquet"
    table = pa.table(
        {
            "key": ["short", "ok"],
            "phash": [1, 2],
            "pdq": pa.array([b"\x01" * 31, b"\x01" * 32], type=pa.binary()),
        }
    )
    pq.write_table(table, path)

    assert [i.problem for i in iter_hash_parquet(path)] == ["bad_hash_value", None]


@pytest.mark.parametrize(
    ("phash", "quality"),
    [
        ("1ffffffffffffffff", 100),  # 17 hex digits: 65 bits
        ("-1", 100),
        ("00000000000000ff", 300),
        ("00000000000000ff", -1),
    ],
)
def test_parquet_values_out_of_range_are_bad_hash_values(tmp_path, phash, quality):
    path = tmp_path / "hashes.parquet"
    table = pa.table({"key": ["k"], "phash": [phash], "pdq": ["00" * 32], "quality": [quality]})
    pq.write_table(table, path)

    assert [i.problem for i in iter_hash_parquet(path)] == ["bad_hash_value"]


@pytest.mark.parametrize(
    ("columns", "missing"),
    [
        (["key", "phash"], "pdq"),
        (["key", "pdq"], "phash"),
        (["url", "pdq"], "key, phash"),
    ],
)
def test_parquet_without_a_required_column_is_a_source_error(tmp_path, columns, missing):
    values = {"key": ["k"], "url": ["u"], "phash": ["00000000000000ff"], "pdq": ["00" * 32]}
    path = tmp_path / "hashes.parquet"
    pq.write_table(pa.table({name: values[name] for name in columns}), path)

    with pytest.raises(SourceError, match=f"lacks the column\\(s\\) {missing} "):
        list(iter_hash_parquet(path))


def test_file_that_is_not_parquet_is_a_source_error(tmp_path):
    path = tmp_path / "hashes.parquet"
    path.write_bytes(b"key,phash,pdq\n")

    with pytest.raises(SourceError, match="cannot read Parquet"):
        list(iter_hash_parquet(path))
