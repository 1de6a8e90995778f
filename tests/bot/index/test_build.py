"""Building an index (bot.index.build and ``python -m bot index build``), opening it, and ``check``."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from bot.checking import check_picture
from bot.cli import main
from bot.config import Settings, load_settings
from bot.decoding import decode_picture
from bot.hashing import hash_entry
from bot.index import units
from bot.index.build import build_index
from bot.index.search import HashIndex
from bot.index.storage import WHOLE_FILES, IndexFormatError, ShardReader

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
DATASET = SAMPLES / "dataset"
QUERIES = SAMPLES / "queries"
PHOTOS = sorted(path.name for path in DATASET.glob("*.jpg"))
ARRAYS = ("phash.npy", "pdq.npy", "quality.npy", "meta.offsets.npy")

# (query, the dataset key it must find first)
COPIES = [
    ("coffee__mirrored.jpg", "coffee.jpg"),
    ("astronaut__cropped.jpg", "astronaut.jpg"),
    ("chelsea__gray.jpg", "chelsea.jpg"),
    ("rocket__letterbox.jpg", "rocket.jpg"),
]
UNRELATED = ["unrelated_gravel.jpg", "unrelated_retina.jpg"]


def make_source(folder: Path, *, copies: int = 1) -> Path:
    """The sample photos (``copies`` times, in subfolders after the first), a garbage and a truncated JPEG."""
    folder.mkdir(parents=True)
    for name in PHOTOS:
        shutil.copy(DATASET / name, folder / name)
    for copy in range(1, copies):
        shutil.copytree(DATASET, folder / f"copy{copy}")
    (folder / "broken.jpg").write_bytes(b"this is not a picture")
    data = (DATASET / "coffee.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    return folder


def add_member(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def write_tar(path: Path) -> None:
    """An img2dataset-like shard: one good sample, one garbage picture, one failed download."""
    with tarfile.open(path, "w") as archive:
        for key, picture in (("000000000", (DATASET / "grass.jpg").read_bytes()), ("000000001", b"garbage")):
            add_member(archive, f"{key}.jpg", picture)
            record = {
                "key": key,
                "url": f"https://example.org/{key}.jpg",
                "caption": "c",
                "status": "success",
            }
            add_member(archive, f"{key}.json", json.dumps(record).encode())
            add_member(archive, f"{key}.txt", b"c")
        record = {"key": "000000002", "url": "https://example.org/gone.jpg", "status": "failed_to_download"}
        add_member(archive, "000000002.json", json.dumps(record).encode())


def shard_files(index: Path, shard: str) -> dict[str, tuple[bytes, int, int]]:
    folder = index / "shards" / shard
    return {
        path.name: (path.read_bytes(), path.stat().st_mtime_ns, path.stat().st_ino)
        for path in sorted(folder.iterdir())
    }


def all_arrays(index: Path, *, wholes_only: bool = False) -> dict[str, np.ndarray]:
    """Every shard's arrays concatenated in shard order, plus the metadata lines; with
    ``wholes_only``, only the rows of whole pictures (not the photographs inside composites)."""
    opened = HashIndex(index)

    def rows(shard) -> list[int]:  # type: ignore[no-untyped-def]
        return [row for row in range(len(shard)) if not wholes_only or shard.part_box(row) is None]

    result = {
        name: np.concatenate([np.load(shard.path / name)[rows(shard)] for shard in opened.shards])
        for name in ("phash.npy", "pdq.npy", "quality.npy")
    }
    lines = b"".join((shard.path / "meta.jsonl").read_bytes() for shard in opened.shards)
    result["meta"] = np.frombuffer(lines, dtype=np.uint8)
    return result


def run(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def sample_index(tmp_path_factory) -> Path:
    """The sample photos plus two damaged pictures, built once with build_index."""
    root = tmp_path_factory.mktemp("sample")
    out = root / "index"
    report = build_index([make_source(root / "source")], out, load_settings(), workers=1, show_progress=False)
    assert report.entries == len(PHOTOS)
    return out


# --- building ---------------------------------------------------------------------------------------


def test_cli_build_then_info_reports_entries_and_failures(tmp_path, capsys):
    source = make_source(tmp_path / "source")
    (source / "tars").mkdir()
    write_tar(source / "tars" / "00000.tar")
    (source / "README.md").write_text("not a picture, not read")
    out = tmp_path / "index"

    code, stdout, _ = run(
        capsys, ["index", "build", str(source), "--out", str(out), "--workers", "1", "--quiet"]
    )

    assert code == 0
    entries = len(PHOTOS) + 1  # the photos and the tar's one good sample
    # one unit (and shard) for the folder's pictures, one for the tar inside it
    assert f"indexed {entries} entries into 2 new shard(s)" in stdout
    assert "4 entries could not be hashed" in stdout
    assert f"read {entries + 4} entries in " in stdout
    code, stdout, _ = run(capsys, ["index", "info", str(out), "--json"])
    assert code == 0
    info = json.loads(stdout)
    assert info["entries"] == entries
    assert info["shards"] == [
        {"name": "00000", "entries": len(PHOTOS), "failures": {"not_an_image": 1, "corrupt": 1}},
        {"name": "00001", "entries": 1, "failures": {"not_an_image": 1, "no_picture": 1}},
    ]
    assert info["hashing"]["entry_margin"] == load_settings().hashing.entry_margin
    summaries = [ShardReader(out / "shards" / name).summary() for name in ("00000", "00001")]
    assert [{(e["key"], e["reason"]) for e in s["failure_examples"]} for s in summaries] == [
        {("broken.jpg", "not_an_image"), ("truncated.jpg", "corrupt")},
        {("000000001", "not_an_image"), ("000000002", "no_picture")},
    ]
    index = HashIndex(out)
    keys = [shard.record(number).key for shard in index.shards for number in range(shard.entries)]
    assert keys == [*PHOTOS, "000000000"]
    assert index.shards[1].entry(0).url == "https://example.org/000000000.jpg"
    code, stdout, _ = run(capsys, ["index", "info", str(out)])
    assert code == 0
    assert f"{entries} entries in 2 shard(s)" in stdout
    assert "2 failed" in stdout


def test_source_of_only_bad_pictures_gives_an_empty_shard_that_opens(tmp_path, settings: Settings):
    source = tmp_path / "source"
    source.mkdir()
    (source / "a.jpg").write_bytes(b"nope")
    (source / "b.png").write_bytes(b"")

    report = build_index([source], tmp_path / "index", settings, workers=1, show_progress=False)

    assert report.entries == 0
    assert report.shards == ["00000"]
    assert dict(report.failures) == {"not_an_image": 1, "empty": 1}
    index = HashIndex(tmp_path / "index")
    assert len(index) == 0
    assert check_picture((QUERIES / "coffee__mirrored.jpg").read_bytes(), index, settings).found == []


def test_build_into_an_existing_index_needs_append(tmp_path, capsys, settings: Settings):
    first = tmp_path / "first"
    first.mkdir()
    for name in PHOTOS[:3]:
        shutil.copy(DATASET / name, first / name)
    second = tmp_path / "second"
    second.mkdir()
    for name in PHOTOS[3:]:
        shutil.copy(DATASET / name, second / name)
    out = tmp_path / "index"
    assert run(capsys, ["index", "build", str(first), "--out", str(out), "--workers", "1", "--quiet"])[0] == 0
    before = shard_files(out, "00000")
    manifest_before = (out / "manifest.json").read_bytes()

    with pytest.raises(IndexFormatError, match="--append"):
        build_index([second], out, settings, workers=1, show_progress=False)
    code, stdout, stderr = run(capsys, ["index", "build", str(second), "--out", str(out), "--quiet"])
    assert code == 2
    assert stdout == ""
    assert "already holds an index" in stderr
    assert "--append" in stderr
    assert (out / "manifest.json").read_bytes() == manifest_before
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["00000"]

    argv = ["index", "build", str(second), "--out", str(out), "--append", "--workers", "1", "--quiet"]
    code, stdout, _ = run(capsys, argv)

    assert code == 0
    assert f"indexed {len(PHOTOS) - 3} entries into 1 new shard(s)" in stdout
    assert shard_files(out, "00000") == before  # same bytes, same mtime, same file
    index = HashIndex(out)
    assert index.manifest.shards == ["00000", "00001"]
    assert [shard.entries for shard in index.shards] == [3, len(PHOTOS) - 3]
    assert [shard.entry(0).key for shard in index.shards] == [PHOTOS[0], PHOTOS[3]]
    code, stdout, _ = run(capsys, ["index", "info", str(out), "--json"])
    assert json.loads(stdout)["entries"] == len(PHOTOS)


def _one_photo_index(tmp_path: Path, settings: Settings) -> tuple[Path, Path]:
    """A source folder holding one photo, and an index built from it."""
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(DATASET / "coffee.jpg", source / "coffee.jpg")
    out = tmp_path / "index"
    build_index([source], out, settings, workers=1, show_progress=False)
    return source, out


def test_append_with_other_hashing_parameters_is_refused(tmp_path, settings: Settings):
    source, out = _one_photo_index(tmp_path, settings)
    other = replace(settings, hashing=replace(settings.hashing, entry_margin=0.05))

    with pytest.raises(IndexFormatError, match="incomparable"):
        build_index([source], out, other, workers=1, append=True, show_progress=False)
    assert HashIndex(out).manifest.shards == ["00000"]


def test_shard_size_cuts_a_folder_into_units_of_that_many_files(tmp_path, sample_index, settings: Settings):
    small = replace(settings, index=replace(settings.index, shard_size=4))
    out = tmp_path / "index"

    report = build_index([make_source(tmp_path / "source")], out, small, workers=1, show_progress=False)

    assert report.shards == ["00000", "00001", "00002"]
    assert report.entries == len(PHOTOS)
    assert dict(report.failures) == {"not_an_image": 1, "corrupt": 1}
    index = HashIndex(out)
    # 11 files sorted by name, 4 per unit: broken.jpg falls in the first, truncated.jpg in the last
    assert [shard.entries for shard in index.shards] == [3, 4, 2]
    failures = [shard.summary()["failures"] for shard in index.shards]
    assert failures == [{"not_an_image": 1}, {}, {"corrupt": 1}]
    split, whole = all_arrays(out), all_arrays(sample_index)
    for name, array in whole.items():
        np.testing.assert_array_equal(split[name], array, err_msg=name)


def test_entries_equal_hashing_each_picture_on_its_own(sample_index, settings: Settings):
    """The build's batches and workers change nothing: each entry is hash_entry(decode_picture())."""
    index = HashIndex(sample_index)
    shard = index.shards[0]

    wholes = [row for row in range(len(shard)) if shard.part_box(row) is None]
    assert len(wholes) == shard.entries
    for row in wholes:
        picture = decode_picture((DATASET / shard.entry(row).key).read_bytes(), settings.decoding)
        expected = hash_entry(picture.image, settings.hashing)
        parts = [other for other in range(len(shard)) if shard.entry_number(other) == shard.entry_number(row)]
        assert [int(shard.phash[other]) for other in parts] == [expected.phash] + [
            part.hashes.phash for part in expected.parts
        ]
        assert int(shard.phash[row]) == expected.phash
        np.testing.assert_array_equal(shard.pdq[row], expected.pdq)
        assert int(shard.quality[row]) == expected.quality


@pytest.mark.parametrize("workers", [1, 2])
def test_any_worker_count_builds_exactly_the_same_index(tmp_path, monkeypatch, settings: Settings, workers):
    source = make_source(tmp_path / "source", copies=3)  # 29 pictures, 2 of them damaged
    (source / "tars").mkdir()
    write_tar(source / "tars" / "00000.tar")
    small = replace(settings, index=replace(settings.index, shard_size=10))
    # several batches per unit, and units that end mid-batch of the next: the order must hold
    monkeypatch.setattr(units, "PICTURES_PER_TASK", 3)

    reference = build_index([source], tmp_path / "reference", small, workers=1, show_progress=False)
    monkeypatch.setattr(units, "PICTURES_PER_TASK", 4)
    other = build_index([source], tmp_path / "other", small, workers=workers, show_progress=False)

    assert (other.entries, other.shards, other.failures) == (
        reference.entries,
        reference.shards,
        reference.failures,
    )
    assert reference.entries == 3 * len(PHOTOS) + 1
    assert dict(reference.failures) == {"not_an_image": 2, "corrupt": 1, "no_picture": 1}
    assert reference.shards == ["00000", "00001", "00002", "00003"]  # 10 + 10 + 9 files, the tar
    for shard in reference.shards:
        for name in (*ARRAYS, *WHOLE_FILES.values(), "meta.jsonl", "shard.json"):
            first = (tmp_path / "reference" / "shards" / shard / name).read_bytes()
            assert first == (tmp_path / "other" / "shards" / shard / name).read_bytes(), f"{shard}/{name}"
    for name in ("manifest.json", "units.jsonl"):
        assert (tmp_path / "reference" / name).read_bytes() == (tmp_path / "other" / name).read_bytes()


def test_failed_build_with_a_missing_source_can_be_rerun(tmp_path, capsys):
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(DATASET / "coffee.jpg", source / "coffee.jpg")
    out = tmp_path / "index"

    code, _, stderr = run(capsys, ["index", "build", str(tmp_path / "typo"), "--out", str(out), "--quiet"])
    assert code == 2
    assert "does not exist" in stderr
    code, _, stderr = run(capsys, ["index", "build", str(source), "--out", str(out), "--quiet"])

    assert (code, stderr) == (0, "")


def test_append_after_a_build_killed_before_the_manifest_update(tmp_path, settings: Settings):
    _, out = _one_photo_index(tmp_path, settings)
    shutil.copytree(out / "shards" / "00000", out / "shards" / "00001")  # the orphan shard
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(DATASET / "rocket.jpg", other / "rocket.jpg")

    report = build_index([other], out, settings, workers=1, append=True, show_progress=False)

    assert report.shards == ["00002"]  # past the orphan, which stays unlisted
    index = HashIndex(out)
    assert index.manifest.shards == ["00000", "00002"]
    assert [shard.entry(0).key for shard in index.shards] == ["coffee.jpg", "rocket.jpg"]


# --- opening ----------------------------------------------------------------------------------------


def test_index_opens_memory_mapped(sample_index):
    index = HashIndex(sample_index)

    assert len(index) == len(PHOTOS)
    for shard in index.shards:
        for array in (shard.phash, shard.pdq, shard.quality):
            assert isinstance(array, np.memmap)
            assert not array.flags.writeable
        assert shard.phash.dtype == np.uint64
        assert shard.pdq.shape == (len(shard), 4)
        assert shard.quality.dtype == np.uint8


@pytest.mark.parametrize(
    ("field", "value"),
    [("format", "some-other-index"), ("version", 2), ("version", "1"), ("format", None)],
)
def test_manifest_of_another_format_or_version_is_refused(tmp_path, capsys, sample_index, field, value):
    out = tmp_path / "index"
    shutil.copytree(sample_index, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest[field] = value
    (out / "manifest.json").write_text(json.dumps(manifest))

    with pytest.raises(IndexFormatError, match="this program reads 'removal-desk-index' version 1"):
        HashIndex(out)
    code, stdout, stderr = run(capsys, ["index", "info", str(out)])
    assert (code, stdout) == (2, "")
    assert stderr.startswith("error: ")
    query = str(QUERIES / "coffee__mirrored.jpg")
    assert run(capsys, ["check", "--index", str(out), "--json", query])[0] == 2


def test_folder_without_manifest_is_not_an_index(tmp_path, capsys):
    with pytest.raises(IndexFormatError, match=r"no manifest\.json"):
        HashIndex(tmp_path)
    assert run(capsys, ["index", "info", str(tmp_path), "--json"])[0] == 2


# --- checking ---------------------------------------------------------------------------------------


def test_check_json_gives_one_line_per_picture_in_order_and_goes_on_after_errors(
    tmp_path, capsys, sample_index
):
    not_a_picture = tmp_path / "notes.jpg"
    not_a_picture.write_text("these are notes, not a picture")
    flat = tmp_path / "flat.png"
    Image.new("RGB", (200, 200), (128, 128, 128)).save(flat)
    images = [
        QUERIES / COPIES[0][0],
        tmp_path / "missing.jpg",
        QUERIES / COPIES[1][0],
        not_a_picture,
        QUERIES / UNRELATED[0],
        flat,
        QUERIES / COPIES[2][0],
        QUERIES / UNRELATED[1],
        tmp_path,  # a folder is not a picture either
        QUERIES / COPIES[3][0],
    ]

    code, stdout, _ = run(capsys, ["check", "--index", str(sample_index), "--json", *map(str, images)])

    assert code == 1
    records = [json.loads(line) for line in stdout.splitlines()]
    assert [record["query"] for record in records] == [str(image) for image in images]
    assert all(set(record) == {"query", "matches", "unjudged", "error"} for record in records)
    errors = [record["error"] is not None for record in records]
    assert errors == [False, True, False, True, False, True, False, False, True, False]
    assert all(record["matches"] == [] for record in records if record["error"])
    assert "cannot read" in records[1]["error"]
    assert "not a picture" in records[3]["error"]
    assert "too plain" in records[5]["error"]
    firsts = {Path(r["query"]).name: r["matches"][0]["key"] for r in records if r["matches"]}
    assert firsts == dict(COPIES)
    assert records[4]["matches"] == records[7]["matches"] == []


def test_check_match_records_describe_the_entry(capsys, sample_index, settings: Settings):
    queries = [str(QUERIES / query) for query, _ in COPIES]

    code, stdout, _ = run(capsys, ["check", "--index", str(sample_index), "--json", *queries])

    assert code == 0
    index = HashIndex(sample_index)
    rule = settings.matching
    for line, (_, key) in zip(stdout.splitlines(), COPIES, strict=True):
        record = json.loads(line)
        assert record["error"] is None
        [match] = record["matches"]  # the sample photos are unrelated to each other
        shard, row = match["entry_id"].split("/")
        assert index.shards[index.manifest.shards.index(shard)].entry(int(row)).key == key == match["key"]
        assert match["distance"] == match["pdq_distance"] <= rule.pdq_max_distance
        assert 0 <= match["phash_distance"] <= rule.phash_max_distance
        assert (match["url"], match["caption"]) == (None, None)
    mirrored = json.loads(stdout.splitlines()[0])["matches"][0]
    assert mirrored["variant"].startswith("as-sent+mirrored@")


def test_check_text_output(capsys, sample_index):
    queries = [str(QUERIES / COPIES[0][0]), str(QUERIES / UNRELATED[0])]

    code, stdout, _ = run(capsys, ["check", "--index", str(sample_index), *queries])

    assert code == 0
    lines = stdout.splitlines()
    assert lines[0] == f"{queries[0]}: 1 match(es)"
    assert lines[1].strip().startswith("coffee.jpg  pdq ")
    assert lines[2] == f"{queries[1]}: no match"


# --- an index of precomputed hashes -----------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_hashes() -> list[tuple[str, int, np.ndarray, int]]:
    settings = load_settings()
    hashes = []
    for name in PHOTOS:
        picture = decode_picture((DATASET / name).read_bytes(), settings.decoding)
        entry = hash_entry(picture.image, settings.hashing)
        hashes.append((name, entry.phash, entry.pdq, entry.quality))
    return hashes


@pytest.mark.parametrize("encoding", ["hex", "int64-and-binary"])
def test_index_from_parquet_hashes_answers_like_the_folder_index(
    tmp_path, sample_index, sample_hashes, settings: Settings, encoding
):
    keys = [name for name, _, _, _ in sample_hashes]
    pdq_bytes = [b"".join(int(w).to_bytes(8, "big") for w in pdq) for _, _, pdq, _ in sample_hashes]
    if encoding == "hex":
        phash = pa.array([f"{value:016x}" for _, value, _, _ in sample_hashes])
        pdq = pa.array([raw.hex() for raw in pdq_bytes])
    else:
        signed = [value - (1 << 64) if value >> 63 else value for _, value, _, _ in sample_hashes]
        phash = pa.array(signed, type=pa.int64())
        pdq = pa.array(pdq_bytes, type=pa.binary(32))
    table = pa.table(
        {
            "key": keys,
            "url": pa.array([None] * len(keys), type=pa.string()),
            "caption": pa.array([None] * len(keys), type=pa.string()),
            "phash": phash,
            "pdq": pdq,
            "quality": [quality for _, _, _, quality in sample_hashes],
        }
    )
    pq.write_table(table, tmp_path / "hashes.parquet")

    report = build_index([tmp_path / "hashes.parquet"], tmp_path / "index", settings, show_progress=False)

    assert (report.entries, dict(report.failures)) == (len(PHOTOS), {})
    from_parquet, from_folder = HashIndex(tmp_path / "index"), HashIndex(sample_index)
    # a list of hashes has one row per entry: the photographs inside composites are not in it
    for name, array in all_arrays(sample_index, wholes_only=True).items():
        np.testing.assert_array_equal(all_arrays(tmp_path / "index")[name], array, err_msg=name)
    found_any = False
    for query in [*(q for q, _ in COPIES), *UNRELATED]:
        data = (QUERIES / query).read_bytes()
        expected = [
            (item.entry, item.match.distance, item.match.variant)
            for item in check_picture(data, from_folder, settings).found
        ]
        got = check_picture(data, from_parquet, settings).found
        assert [(item.entry, item.match.distance, item.match.variant) for item in got] == expected
        found_any = found_any or bool(expected)
    assert found_any


def test_hash_parquet_in_units_across_row_groups_gives_the_same_entries(
    tmp_path, sample_index, sample_hashes, settings: Settings
):
    table = pa.table(
        {
            "key": [name for name, _, _, _ in sample_hashes],
            "phash": [f"{value:016x}" for _, value, _, _ in sample_hashes],
            "pdq": [b"".join(int(w).to_bytes(8, "big") for w in pdq).hex() for _, _, pdq, _ in sample_hashes],
            "quality": [quality for _, _, _, quality in sample_hashes],
        }
    )
    pq.write_table(table, tmp_path / "hashes.parquet", row_group_size=2)  # units of 4 start mid-group
    small = replace(settings, index=replace(settings.index, shard_size=4))

    report = build_index(
        [tmp_path / "hashes.parquet"], tmp_path / "index", small, workers=2, show_progress=False
    )

    assert report.shards == ["00000", "00001", "00002"]
    assert [shard.entries for shard in HashIndex(tmp_path / "index").shards] == [4, 4, 1]
    for name, array in all_arrays(sample_index, wholes_only=True).items():
        np.testing.assert_array_equal(all_arrays(tmp_path / "index")[name], array, err_msg=name)
