"""Every entry of an index keeps the MD5 of its file's bytes (md5.npy, (N, 16) uint8), as img2dataset
writes it with ``compute_hash="md5"``, for hash-list scans only: computed by the build from the bytes
it reads, or taken from a hash Parquet file's ``md5`` column; a shard written before has none and
says so."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bot.config import Settings, load_settings
from bot.index.build import build_index
from bot.index.search import HashIndex
from bot.index.storage import MD5_FILE, IndexFormatError, Manifest
from tests.bot.index.test_build import DATASET, PHOTOS, run
from tests.bot.index.test_whole_hashes import files_checks_open, hash_table


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("md5")
    source = root / "source"
    source.mkdir()
    for name in PHOTOS:
        shutil.copy(DATASET / name, source / name)
    build_index([source], root / "index", load_settings(with_deployment_files=False), show_progress=False)
    return source, root / "index"


def without_md5(index: Path, copy: Path) -> Path:
    """``index`` as a build before file MD5s were kept wrote it: no md5.npy, none in the manifest."""
    shutil.copytree(index, copy)
    manifest = Manifest.read(copy)
    for name in manifest.shards:
        (copy / "shards" / name / MD5_FILE).unlink()
        manifest.files[name].pop(MD5_FILE)
    manifest.write(copy)
    return copy


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_every_entry_keeps_the_md5_of_its_file(built) -> None:
    source, index = built
    shard = HashIndex(index).shards[0]
    assert shard.has_md5
    assert shard.md5 is not None
    assert (shard.md5.shape, shard.md5.dtype) == ((shard.entries, 16), np.uint8)
    assert len(shard) > shard.entries  # one row per entry, not per hashed region
    kept = {shard.record(n).key: shard.md5[n].tobytes().hex() for n in range(shard.entries)}
    assert kept == {name: md5_of(source / name) for name in PHOTOS}
    assert MD5_FILE in Manifest.read(index).files[shard.name]  # checksummed like every shard file
    assert (shard.path / MD5_FILE).stat().st_size - 128 == 16 * shard.entries  # 16 bytes an entry


def test_a_persons_check_never_opens_the_md5_file(built, monkeypatch, settings: Settings) -> None:
    _, index = built
    opened_index, opened = files_checks_open(index, monkeypatch, settings)
    assert "pdq.npy" in opened
    assert MD5_FILE not in opened
    assert opened_index.shards[0].md5 is not None  # what a hash-list scan reads: watched too
    assert MD5_FILE in opened


def test_an_index_built_before_opens_and_index_info_says_it_lacks_them(built, tmp_path, capsys) -> None:
    _, index = built
    old = without_md5(index, tmp_path / "old")
    shard = HashIndex(old).shards[0]
    assert (shard.has_md5, shard.md5) == (False, None)
    code, out, _ = run(capsys, ["index", "info", str(old)])
    assert code == 0
    assert "file MD5s: in 0 of 1 shard(s) (a hash list's MD5s are matched only there; rebuild" in out
    code, out, _ = run(capsys, ["index", "info", str(index), "--json"])
    assert json.loads(out)["md5_shards"] == 1
    code, out, _ = run(capsys, ["index", "info", str(index)])
    assert "file MD5s: in 1 of 1 shard(s)\n" in out


def test_index_verify_finds_a_damaged_md5_file_and_opening_a_wrong_shape_refuses(built, tmp_path) -> None:
    _, index = built
    copy = tmp_path / "index"
    shutil.copytree(index, copy)
    path = copy / "shards" / "00000" / MD5_FILE
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # one bit of the last entry's MD5: same size, only the checksum tells
    path.write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match=r"md5\.npy"):
        HashIndex(copy).verify()

    unlisted = without_md5(index, tmp_path / "unlisted")  # so that only its shape can tell
    np.save(unlisted / "shards" / "00000" / MD5_FILE, np.zeros((len(PHOTOS), 8), np.uint8))
    shard = HashIndex(unlisted).shards[0]
    with pytest.raises(IndexFormatError, match="not 16 bytes an entry"):
        _ = shard.md5


def md5_table(built_index: Path, source: Path, md5: list[object] | None) -> pa.Table:
    """The built index's entries as a hash Parquet file, with ``md5`` as its md5 column (None: the
    files' own MD5s as img2dataset writes them, lower-case hex)."""
    table = hash_table(built_index, whole=False)
    keys = table.column("key").to_pylist()
    values = [md5_of(source / key) for key in keys] if md5 is None else md5
    return table.append_column("md5", pa.array(values))


def test_a_hash_parquet_files_md5_column_is_kept(built, tmp_path, settings: Settings) -> None:
    source, index = built
    pq.write_table(md5_table(index, source, None), tmp_path / "hashes.parquet")
    report = build_index([tmp_path / "hashes.parquet"], tmp_path / "index", settings, show_progress=False)
    assert (report.entries, dict(report.failures)) == (len(PHOTOS), {})
    original, shard = HashIndex(index).shards[0], HashIndex(tmp_path / "index").shards[0]
    assert shard.md5 is not None
    assert original.md5 is not None
    np.testing.assert_array_equal(shard.md5, original.md5)

    pq.write_table(hash_table(index, whole=False), tmp_path / "plain.parquet")
    build_index([tmp_path / "plain.parquet"], tmp_path / "plain", settings, show_progress=False)
    assert not HashIndex(tmp_path / "plain").shards[0].has_md5  # no column: no md5.npy


def test_a_bad_md5_in_a_hash_parquet_file_is_a_failure_named_for_it(
    built, tmp_path, settings: Settings
) -> None:
    source, index = built
    good = md5_table(index, source, None).column("md5").to_pylist()
    bad = [*good[:2], "not an md5", good[3][:-1] + "x", None, *good[5:]]
    pq.write_table(md5_table(index, source, bad), tmp_path / "hashes.parquet")
    report = build_index([tmp_path / "hashes.parquet"], tmp_path / "index", settings, show_progress=False)
    assert (report.entries, dict(report.failures)) == (len(PHOTOS) - 3, {"bad_md5": 3})
    shard = HashIndex(tmp_path / "index").shards[0]
    assert shard.md5 is not None
    assert [shard.md5[n].tobytes().hex() for n in range(shard.entries)] == [*good[:2], *good[5:]]
    examples = shard.summary()["failure_examples"]
    assert {example["reason"] for example in examples} == {"bad_md5"}


def test_a_build_without_whole_picture_hashes_still_keeps_the_md5s(built, tmp_path, capsys) -> None:
    source, index = built
    out = tmp_path / "without"
    argv = ["index", "build", str(source), "--out", str(out), "--workers", "1", "--quiet"]
    code, _, _ = run(capsys, [*argv, "--without-whole-picture"])
    assert code == 0
    shard, full = HashIndex(out).shards[0], HashIndex(index).shards[0]
    assert (shard.has_whole, shard.has_md5) == (False, True)
    assert shard.md5 is not None
    assert full.md5 is not None
    np.testing.assert_array_equal(shard.md5, full.md5)
