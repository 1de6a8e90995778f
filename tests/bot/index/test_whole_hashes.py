"""Every entry of an index keeps its whole picture's PDQ, quality and pHash (bot/whole_picture.py),
one row per entry in whole_*.npy, read by hash-list scans only: an index built before opens and
searches as it did, and a person's check never opens the files."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_bytes

from bot.checking import check_picture
from bot.config import Settings, load_settings
from bot.decoding import decode_picture
from bot.hashing import hash_entry
from bot.index.batches import hash_item
from bot.index.build import build_index
from bot.index.search import HashIndex
from bot.index.sources import SourceError, SourceItem, count_hash_rows
from bot.index.storage import WHOLE_FILES, DatasetEntry, IndexFormatError
from bot.signals import PDQ
from bot.whole_picture import hash_whole_picture
from tests.bot.index.test_build import COPIES, DATASET, PHOTOS, QUERIES, run
from tests.bot.test_composites import jpeg, side_by_side
from tests.made_up import photo

WHOLE = tuple(WHOLE_FILES.values())


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """The sample photos, a composite (two photographs: panels), a 1200 px photo and an RGBA PNG."""
    root = tmp_path_factory.mktemp("whole")
    source = root / "source"
    source.mkdir()
    for name in PHOTOS:
        shutil.copy(DATASET / name, source / name)
    pair = side_by_side(photo(304, (480, 360)), photo(305, (400, 360)), gap=16)
    (source / "pair.jpg").write_bytes(jpeg(pair))
    (source / "large.jpg").write_bytes(jpeg(photo(306, (1200, 800))))
    buffer = io.BytesIO()
    Image.open(DATASET / "rocket.jpg").convert("RGBA").save(buffer, "PNG")
    (source / "rocket.png").write_bytes(buffer.getvalue())
    build_index([source], root / "index", load_settings(with_deployment_files=False), show_progress=False)
    return source, root / "index"


def without_whole_files(index: Path, copy: Path) -> Path:
    """``index`` as a build before whole-picture hashes wrote it: no whole_*.npy, none listed."""
    shutil.copytree(index, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    for name, files in manifest["files"].items():
        for file in WHOLE:
            (copy / "shards" / name / file).unlink()
            del files[file]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def test_every_entry_keeps_its_whole_picture_hashes_once(built, settings: Settings):
    source, index = built
    shard = HashIndex(index).shards[0]
    assert len(shard) > shard.entries  # cores and the composite's photographs are rows of their own
    pair = next(n for n in range(shard.entries) if shard.record(n).key == "pair.jpg")
    panels = [r for r in range(len(shard)) if shard.entry_number(r) == pair and shard.part_box(r) is not None]
    assert len(panels) >= 2
    assert shard.whole_pdq is not None
    assert shard.whole_phash is not None
    assert shard.whole_quality is not None
    assert shard.whole_pdq.shape == (shard.entries, 4)
    assert shard.whole_pdq.dtype == np.uint64
    assert shard.whole_phash.shape == (shard.entries,)
    assert shard.whole_phash.dtype == np.uint64
    assert shard.whole_quality.shape == (shard.entries,)
    assert shard.whole_quality.dtype == np.uint8
    for number in range(shard.entries):
        data = (source / shard.record(number).key).read_bytes()
        expected = hash_whole_picture(data, decode_picture(data, settings.decoding).image)
        assert PDQ.to_hex(shard.whole_pdq[number]) == pdq_from_bytes(data)[0], shard.record(number).key
        assert int(shard.whole_quality[number]) == pdq_from_bytes(data)[1] == expected.quality
        assert int(shard.whole_phash[number]) == expected.phash
        # the whole picture's PDQ is not the entry's central region's, which the rows keep
        row = next(row for row in range(len(shard)) if shard.entry_number(row) == number)
        central = hash_entry(decode_picture(data, settings.decoding).image, settings.hashing)
        np.testing.assert_array_equal(shard.pdq[row], central.pdq)


def test_an_index_built_before_opens_searches_the_same_and_says_it_lacks_them(
    built, tmp_path, capsys, settings: Settings
):
    _, index = built
    old = without_whole_files(index, tmp_path / "old")
    shard = HashIndex(old).shards[0]
    assert (shard.has_whole, shard.whole_pdq, shard.whole_phash, shard.whole_quality) == (
        False,
        None,
        None,
        None,
    )
    for query, _ in COPIES:
        data = (QUERIES / query).read_bytes()
        expected = [
            (item.entry, item.match.distance)
            for item in check_picture(data, HashIndex(index), settings).found
        ]
        assert expected
        assert [
            (item.entry, item.match.distance) for item in check_picture(data, HashIndex(old), settings).found
        ] == expected

    code, out, _ = run(capsys, ["index", "info", str(old)])
    assert code == 0
    assert "whole-picture hashes: in 0 of 1 shard(s) (a hash-list scan needs them; rebuild the others)" in out
    code, out, _ = run(capsys, ["index", "info", str(index)])
    assert "whole-picture hashes: in 1 of 1 shard(s)\n" in out


def files_checks_open(index: Path, monkeypatch, settings: Settings) -> tuple[HashIndex, list[str]]:
    """The index opened, and the names of the files ``np.load`` opened while the sample copies
    were checked against it (the list keeps growing: later reads of the index are watched too)."""
    opened: list[str] = []
    load = np.load

    def watched_load(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(Path(file).name)
        return load(file, *args, **kwargs)

    monkeypatch.setattr(np, "load", watched_load)
    opened_index = HashIndex(index)
    for query, _ in COPIES:
        assert check_picture((QUERIES / query).read_bytes(), opened_index, settings).found
    return opened_index, opened


def test_a_persons_check_never_opens_the_whole_picture_files(built, monkeypatch, settings: Settings):
    _, index = built
    opened_index, opened = files_checks_open(index, monkeypatch, settings)
    assert "pdq.npy" in opened
    assert not set(WHOLE) & set(opened)

    assert opened_index.shards[0].whole_pdq is not None  # what a hash-list scan reads: watched too
    assert "whole_pdq.npy" in opened


def test_index_verify_finds_a_damaged_whole_picture_file(built, tmp_path):
    _, index = built
    copy = tmp_path / "index"
    shutil.copytree(index, copy)
    path = copy / "shards" / "00000" / "whole_pdq.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # one bit of the last entry's hash: same size, so only the checksum tells
    path.write_bytes(bytes(data))

    with pytest.raises(IndexFormatError, match=r"whole_pdq\.npy"):
        HashIndex(copy).verify()


def test_a_shard_missing_one_whole_picture_file_is_refused(built, tmp_path):
    _, index = built
    copy = without_whole_files(index, tmp_path / "index")
    shutil.copy(index / "shards" / "00000" / "whole_pdq.npy", copy / "shards" / "00000" / "whole_pdq.npy")

    with pytest.raises(IndexFormatError, match="only some whole-picture files"):
        HashIndex(copy)


def hash_table(built_index: Path, *, whole: bool) -> pa.Table:
    """The built index's entries as a hash Parquet file (their central regions' hashes), and
    with ``whole`` their whole-picture hashes: hex PDQ, integer pHash, quality."""
    shard = HashIndex(built_index).shards[0]
    rows = [next(r for r in range(len(shard)) if shard.entry_number(r) == n) for n in range(shard.entries)]
    columns = {
        "key": [shard.record(n).key for n in range(shard.entries)],
        "phash": [f"{int(shard.phash[row]):016x}" for row in rows],
        "pdq": [PDQ.to_hex(shard.pdq[row]) for row in rows],
        "quality": [int(shard.quality[row]) for row in rows],
    }
    if whole:
        assert shard.whole_pdq is not None
        assert shard.whole_phash is not None
        assert shard.whole_quality is not None
        columns["whole_pdq"] = [PDQ.to_hex(value) for value in shard.whole_pdq]
        signed = [int(v) - (1 << 64) if int(v) >> 63 else int(v) for v in shard.whole_phash]
        columns["whole_phash"] = pa.array(signed, type=pa.int64())  # type: ignore[assignment]
        columns["whole_quality"] = [int(value) for value in shard.whole_quality]
    return pa.table(columns)


@pytest.mark.parametrize("whole", [True, False], ids=["with-whole-columns", "without"])
def test_a_hash_parquet_file_brings_whole_picture_hashes_when_it_has_the_columns(
    built, tmp_path, settings: Settings, whole: bool
):
    _, index = built
    pq.write_table(hash_table(index, whole=whole), tmp_path / "hashes.parquet")

    report = build_index([tmp_path / "hashes.parquet"], tmp_path / "index", settings, show_progress=False)

    assert (report.entries, dict(report.failures)) == (len(PHOTOS) + 3, {})
    original, shard = HashIndex(index).shards[0], HashIndex(tmp_path / "index").shards[0]
    assert shard.has_whole is whole
    if whole:
        for name in WHOLE_FILES:
            np.testing.assert_array_equal(getattr(shard, name), getattr(original, name), err_msg=name)
    else:
        assert not {path.name for path in shard.path.iterdir()} & set(WHOLE)


def test_a_hash_parquet_row_with_a_bad_whole_picture_hash_is_a_failure(built, tmp_path, settings: Settings):
    _, index = built
    table = hash_table(index, whole=True)
    pdq = table.column("whole_pdq").to_pylist()
    pdq[2] = "not a hash"
    table = table.set_column(table.schema.get_field_index("whole_pdq"), "whole_pdq", pa.array(pdq))
    pq.write_table(table.drop_columns(["whole_quality"]), tmp_path / "hashes.parquet")

    report = build_index([tmp_path / "hashes.parquet"], tmp_path / "index", settings, show_progress=False)

    assert (report.entries, dict(report.failures)) == (len(PHOTOS) + 2, {"bad_hash_value": 1})
    shard = HashIndex(tmp_path / "index").shards[0]
    assert shard.whole_quality is not None
    assert set(shard.whole_quality.tolist()) == {100}
    assert shard.whole_phash is not None
    assert len(shard.whole_phash) == shard.entries


def test_a_hash_parquet_file_with_only_one_of_the_pair_is_refused(built, tmp_path):
    _, index = built
    pq.write_table(hash_table(index, whole=True).drop_columns(["whole_phash"]), tmp_path / "hashes.parquet")

    with pytest.raises(SourceError, match="whole_pdq but not whole_phash"):
        count_hash_rows(tmp_path / "hashes.parquet")


def test_the_setting_off_leaves_them_out_of_the_hashes(tmp_path):
    """``[index] whole_picture_hashes = false`` in a settings file: hash_item gives no whole-picture
    hashes, and the entry's own hashes are unchanged."""
    data = (DATASET / "rocket.jpg").read_bytes()
    override = tmp_path / "settings.toml"
    override.write_text("[index]\nwhole_picture_hashes = false\n")
    off = load_settings(override, with_deployment_files=False)
    on = load_settings(with_deployment_files=False)

    _, without, _ = hash_item(SourceItem(DatasetEntry("rocket"), picture=data), off)
    _, with_them, _ = hash_item(SourceItem(DatasetEntry("rocket"), picture=data), on)

    assert without is not None
    assert with_them is not None
    assert (without.whole, with_them.whole is not None) == (None, True)
    np.testing.assert_array_equal(without.pdq, with_them.pdq)
    assert without.phash == with_them.phash


def test_index_build_without_whole_picture_writes_shards_a_scan_cannot_read(built, tmp_path, capsys):
    source, index = built
    out = tmp_path / "without"

    code, _, _ = run(
        capsys,
        [
            "index",
            "build",
            str(source),
            "--out",
            str(out),
            "--workers",
            "1",
            "--quiet",
            "--without-whole-picture",
        ],
    )

    assert code == 0
    shard, full = HashIndex(out).shards[0], HashIndex(index).shards[0]
    assert not shard.has_whole
    folder = next((out / "shards").iterdir())
    assert not any((folder / file).exists() for file in WHOLE)
    np.testing.assert_array_equal(np.asarray(shard.pdq), np.asarray(full.pdq))  # the same rows
    code, text, _ = run(capsys, ["index", "info", str(out)])
    assert (
        "whole-picture hashes: in 0 of 1 shard(s) (a hash-list scan needs them; rebuild the others)" in text
    )
