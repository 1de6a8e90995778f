"""``hash-lists scan``: a list's hashes against an index built from known pictures.

The index is built by ``index build`` from six of the sample pictures, with the whole-picture
hashes the build keeps (bot.whole_picture: python-threatexchange's PDQ of the file, bit for bit),
so the scan is tested on what a real index holds. The lists are hashed as a partner hashes:
python-threatexchange's PDQ of the file (of the pictures, of copies re-encoded and resized),
imagehash's pHash of the file.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image
from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_bytes

from bot.cli import main
from bot.config import load_settings
from bot.hashlists.scan import (
    PDQ_MAX_DISTANCE,
    PDQ_MIN_QUALITY,
    ListHash,
    MD5Matcher,
    ScanReport,
    UnscannableShardError,
    column_pairs,
    hash_words,
    scan_index,
    whole_columns,
)
from bot.index.build import build_index
from bot.index.parts import open_part, write_parts
from bot.index.storage import MD5_FILE, WHOLE_FILES, Manifest
from bot.signals import PDQ
from tests.made_up import jpeg, photo

DATASET = Path(__file__).resolve().parents[3] / "samples" / "dataset"
INDEXED = ("astronaut.jpg", "brick.jpg", "camera.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg")
UNRELATED = ("clock.jpg", "grass.jpg", "hubble.jpg")


@dataclass
class Built:
    index: Path
    entries: dict[str, str]  # file name -> PART/SHARD/ROW of its entry (picture row)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Built:
    root = tmp_path_factory.mktemp("scan")
    source = root / "source"
    source.mkdir()
    for name in INDEXED:
        shutil.copy(DATASET / name, source / name)
    out = root / "index"
    build_index([source], out, load_settings(with_deployment_files=False), workers=1, show_progress=False)
    entries = {}
    for shard in open_part(out).shards:
        keys = [shard.record(n).key for n in range(shard.entries)]
        names = [next(name for name in INDEXED if key.endswith(name)) for key in keys]
        rows = np.load(shard.path / "rows.npy")  # the samples' entries have parts: rows != entries
        for number, name in enumerate(names):
            entries[name] = f"{shard.name}/{int(np.flatnonzero(rows[:, 0] == number)[0])}"
    assert len(entries) == len(INDEXED)
    return Built(out, entries)


def copies(data: bytes) -> list[bytes]:
    """The picture re-encoded harder and resized (never cropped), as a partner may have seen it."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    found = [jpeg(image, quality=50)]
    for scale in (0.5, 0.8, 1.5):
        size = (round(image.width * scale), round(image.height * scale))
        found.append(jpeg(image.resize(size, Image.Resampling.LANCZOS), quality=85))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return [*found, buffer.getvalue()]


def partner_pdq(data: bytes) -> str:
    """The PDQ a partner's list holds: python-threatexchange's, of the file as it is (whatever its
    quality: clock.jpg's is 34, and a list may hold such a hash)."""
    return pdq_from_bytes(data)[0]


def partner_phash(data: bytes) -> str:
    return str(imagehash.phash(Image.open(io.BytesIO(data))))


def listed(signal: str, hashes: list[str]) -> list[ListHash]:
    return [ListHash(1, line, signal, value, f"id-{line}") for line, value in enumerate(hashes, start=1)]


def found(report: ScanReport) -> set[tuple[int, str]]:
    return {(hit.list_hash.line, hit.entry) for hit in report.hits}


# brick.jpg is a fine, nearly periodic texture: shrunk, it aliases and its PDQ moves 34-56 bits,
# past the hash-only rule's 31 (test_a_shrunk_texture_is_the_rules_price). Its other copies count.
TEXTURE = "brick.jpg"


def kept_copies(name: str, data: bytes) -> list[bytes]:
    made = copies(data)
    return [made[0], made[3], made[4]] if name == TEXTURE else made


def test_a_pdq_list_of_the_pictures_and_their_copies_finds_each_entry_and_nothing_else(built) -> None:
    hashes, expected = [], set()
    for name in INDEXED:
        data = (DATASET / name).read_bytes()
        for picture in (data, *kept_copies(name, data)):
            hashes.append(partner_pdq(picture))
            expected.add((len(hashes), built.entries[name]))
    report = scan_index(built.index, listed("pdq", hashes))
    assert found(report) == expected
    assert report.complete
    assert report.entries == len(INDEXED)
    assert report.hashes == {"pdq": len(hashes)}
    assert all(hit.distance <= PDQ_MAX_DISTANCE for hit in report.hits)
    assert {hit.key.rsplit("/", 1)[-1] for hit in report.hits} == set(INDEXED)


def test_a_list_of_unrelated_pictures_finds_nothing(built) -> None:
    pictures = [(DATASET / name).read_bytes() for name in UNRELATED]
    pictures += [jpeg(photo(seed)) for seed in range(5)]
    pdq = listed("pdq", [partner_pdq(data) for data in pictures])
    phash = listed("phash", [partner_phash(data) for data in pictures])
    report = scan_index(built.index, pdq + phash)
    assert report.hits == []
    assert report.hashes == {"pdq": len(pictures), "phash": len(pictures)}


def test_a_shrunk_texture_is_the_rules_price(built) -> None:
    data = (DATASET / TEXTURE).read_bytes()
    shrunk = copies(data)[1:3]
    report = scan_index(built.index, listed("pdq", [partner_pdq(picture) for picture in shrunk]))
    assert report.hits == []
    whole = whole_columns(open_part(built.index).shards[0])
    distances = [int(PDQ.distances(hash_words(partner_pdq(p)), whole.pdq).min()) for p in shrunk]
    assert min(distances) > PDQ_MAX_DISTANCE


def test_a_phash_list_of_the_pictures_and_their_copies_finds_each_entry(built) -> None:
    hashes, expected = [], set()
    for name in INDEXED:
        data = (DATASET / name).read_bytes()
        for picture in (data, *copies(data)):
            hashes.append(partner_phash(picture))
            expected.add((len(hashes), built.entries[name]))
    report = scan_index(built.index, listed("phash", hashes))
    assert found(report) == expected


def shard_of(built: Built, index: Path | None = None) -> Path:
    return (index or built.index) / "shards" / built.entries[INDEXED[0]].split("/")[0]


def flipped(words: np.ndarray, bits: int, seed: int) -> str:
    """``words``' hash with ``bits`` bits flipped (chosen at random), as hex."""
    flat = np.unpackbits(words.astype(">u8").view(np.uint8))
    flat[np.random.default_rng(seed).choice(len(flat), bits, replace=False)] ^= 1
    return np.packbits(flat).tobytes().hex()


@pytest.mark.parametrize("padding", [0, 6], ids=["numpy", "faiss"])
def test_distance_31_is_a_hit_and_32_is_not(built, padding) -> None:
    whole = whole_columns(open_part(built.index).shards[0])
    number = 2
    entry_words = np.asarray(whole.pdq[number])
    hashes = [flipped(entry_words, 31, seed=1), flipped(entry_words, 32, seed=2)]
    rng = np.random.default_rng(3)
    hashes += [rng.bytes(32).hex() for _ in range(padding)]  # a longer list goes through faiss
    assert PDQ.distances(hash_words(hashes[0]), entry_words) == 31
    report = scan_index(built.index, listed("pdq", hashes))
    assert [(hit.list_hash.line, hit.distance) for hit in report.hits] == [(1, 31)]
    assert report.hits[0].entry.startswith(f"{open_part(built.index).shards[0].name}/")


@pytest.mark.parametrize("quality", [PDQ_MIN_QUALITY - 1, PDQ_MIN_QUALITY])
def test_entries_under_the_quality_cut_off_never_match_a_pdq_list(built, tmp_path, quality) -> None:
    index = tmp_path / "index"
    shutil.copytree(built.index, index)
    name = INDEXED[1]
    shard = open_part(index).shards[0]
    number = next(n for n in range(shard.entries) if shard.record(n).key.endswith(name))
    qualities = np.load(shard.path / "whole_quality.npy")
    assert qualities[number] > quality
    qualities[number] = quality
    np.save(shard.path / "whole_quality.npy", qualities)
    data = (DATASET / name).read_bytes()
    report = scan_index(index, listed("pdq", [partner_pdq(data)]) + listed("phash", [partner_phash(data)]))
    usable = quality >= PDQ_MIN_QUALITY
    assert [hit.list_hash.signal for hit in report.hits] == (["pdq", "phash"] if usable else ["phash"])
    assert report.low_quality == (0 if usable else 1)


def as_written_before_whole_hashes(
    built, index: Path, files: tuple[str, ...] = tuple(WHOLE_FILES.values())
) -> None:
    """Make ``index``'s shard look as one written before whole-picture hashes (or ``files``) were
    kept: no files, and a manifest that does not list them."""
    for file in files:
        (shard_of(built, index) / file).unlink()
    manifest = Manifest.read(index)
    for shard_files in manifest.files.values():
        for file in files:
            shard_files.pop(file, None)
    manifest.write(index)


def test_parts_are_scanned_and_a_shard_without_whole_hashes_is_reported(built, tmp_path) -> None:
    served = tmp_path / "served"
    for part in ("parts/a", "parts/b"):
        shutil.copytree(built.index, served / part)
    write_parts(served, ["parts/a", "parts/b"])
    as_written_before_whole_hashes(built, served / "parts/b")
    name = INDEXED[0]
    report = scan_index(served, listed("pdq", [partner_pdq((DATASET / name).read_bytes())]))
    assert [hit.entry for hit in report.hits] == [f"parts/a/{built.entries[name]}"]
    shard = f"parts/b/{built.entries[name].split('/')[0]}"
    assert list(report.unscannable) == [shard]
    assert "rebuild" in report.unscannable[shard]
    assert not report.complete
    assert report.entries == len(INDEXED)
    with pytest.raises(UnscannableShardError):
        whole_columns(open_part(served / "parts/b").shards[0])


def tickets_in(db: Path) -> int:
    with closing(sqlite3.connect(db)) as connection:
        return int(connection.execute("SELECT count(*) FROM tickets").fetchone()[0])


def run(capsys, *argv: object) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_command_scans_a_sources_imported_lists(built, tmp_path, capsys) -> None:
    db = tmp_path / "tickets.sqlite3"
    name = INDEXED[3]
    data = (DATASET / name).read_bytes()
    unrelated = (DATASET / UNRELATED[0]).read_bytes()
    path = tmp_path / "list.csv"
    path.write_text(
        "hash,signal_type,id\n"
        f"{partner_pdq(copies(data)[1])},pdq,case-7\n{partner_pdq(unrelated)},pdq,case-8\n"
        f"{partner_phash(data)},phash,case-9\n"
    )
    imported = run(
        capsys, "hash-lists", "import", path, "--index", built.index, "--db", db, "--source", "iwf"
    )
    assert imported[0] == 0
    out_file = tmp_path / "hits.json"
    code, out, _ = run(
        capsys, "hash-lists", "scan", "--index", built.index, "--db", db, "--source", "iwf", "--json",
        "--out", out_file,
    )  # fmt: skip
    assert code == 0
    report = json.loads(out)
    assert json.loads(out_file.read_text()) == report
    assert report["hashes"] == {"pdq": 2, "phash": 1}
    assert report["hit_count"] == 2
    assert {(hit["list_entry_id"], hit["entry"]) for hit in report["hits"]} == {
        ("case-7", built.entries[name]),
        ("case-9", built.entries[name]),
    }
    assert report["hits"][0]["key"].endswith(name)
    assert report["filed"] is None  # nothing stored without --file
    assert tickets_in(db) == 0
    code, text, _ = run(capsys, "hash-lists", "scan", "--index", built.index, "--db", db, "--source", "iwf")
    assert code == 0
    assert "2 hit(s)" in text
    assert "nothing filed" in text
    assert built.entries[name] in text
    code, _, err = run(capsys, "hash-lists", "scan", "--index", built.index, "--db", db, "--source", "ncmec")
    assert code == 1
    assert "no hash list" in err


def test_the_command_fails_when_a_shard_cannot_be_scanned(built, tmp_path, capsys) -> None:
    index = tmp_path / "index"
    shutil.copytree(built.index, index)
    as_written_before_whole_hashes(built, index)
    db = tmp_path / "tickets.sqlite3"
    path = tmp_path / "list.txt"
    path.write_text(f"pdq {partner_pdq((DATASET / INDEXED[0]).read_bytes())}\n")
    assert run(capsys, "hash-lists", "import", path, "--index", index, "--db", db, "--source", "c3p")[0] == 0
    code, text, _ = run(capsys, "hash-lists", "scan", "--index", index, "--db", db, "--list", 1)
    assert code == 1
    assert "INCOMPLETE" in text
    assert "not scannable" in text
    assert "0 hit(s)" in text


def md5_hex(data: bytes) -> str:
    """The MD5 a partner's list holds: of the file's bytes, as hex."""
    return hashlib.md5(data).hexdigest()


def one_byte_changed(data: bytes) -> bytes:
    changed = bytearray(data)
    changed[len(changed) // 2] ^= 0x01
    return bytes(changed)


def test_an_md5_list_finds_each_entry_by_its_files_md5_and_no_changed_file(built) -> None:
    hashes, expected = [], set()
    for name in INDEXED:
        data = (DATASET / name).read_bytes()
        hashes.append(md5_hex(data))
        expected.add((len(hashes), built.entries[name]))
        hashes += [md5_hex(one_byte_changed(data)), md5_hex(copies(data)[0])]  # never found
    hashes.append(md5_hex((DATASET / INDEXED[0]).read_bytes()))  # the same MD5 again: a hit of its own
    expected.add((len(hashes), built.entries[INDEXED[0]]))
    hashes += [md5_hex((DATASET / name).read_bytes()) for name in UNRELATED]
    report = scan_index(built.index, listed("md5", hashes))
    assert found(report) == expected
    assert {(hit.list_hash.signal, hit.distance) for hit in report.hits} == {("md5", 0)}
    assert (report.complete, report.entries, report.hashes) == (True, len(INDEXED), {"md5": len(hashes)})


def test_md5s_that_share_their_first_eight_bytes_are_told_apart() -> None:
    column = np.random.default_rng(5).integers(0, 256, (3 * 65_536, 16), dtype=np.uint8)
    twin = column[10].copy()
    twin[15] ^= 1  # the same first 8 bytes, another MD5
    matcher = MD5Matcher(np.stack([twin, column[10], column[150_000], column[10]]))
    assert sorted(column_pairs(matcher, column)) == [(10, 1, 0), (10, 3, 0), (150_000, 2, 0)]


def test_a_shard_without_md5s_is_reported_and_md5s_need_no_whole_picture_hashes(built, tmp_path) -> None:
    served = tmp_path / "served"
    for part in ("parts/a", "parts/b"):
        shutil.copytree(built.index, served / part)
    write_parts(served, ["parts/a", "parts/b"])
    as_written_before_whole_hashes(built, served / "parts/a")  # MD5s kept, whole-picture hashes not
    as_written_before_whole_hashes(built, served / "parts/b", (MD5_FILE,))
    name = INDEXED[2]
    report = scan_index(served, listed("md5", [md5_hex((DATASET / name).read_bytes())]))
    assert [hit.entry for hit in report.hits] == [f"parts/a/{built.entries[name]}"]
    shard = f"parts/b/{built.entries[name].split('/')[0]}"
    assert report.unscannable == {shard: "not scannable for MD5: no file MD5s kept; rebuild it"}
    assert (report.complete, report.entries) == (False, len(INDEXED))

    data = (DATASET / name).read_bytes()
    report = scan_index(
        served, [ListHash(1, 1, "md5", md5_hex(data)), ListHash(1, 2, "pdq", partner_pdq(data))]
    )
    assert [(hit.list_hash.signal, hit.entry) for hit in report.hits] == [
        ("md5", f"parts/a/{built.entries[name]}"),  # part a: by MD5 only
        ("pdq", f"parts/b/{built.entries[name]}"),  # part b: by PDQ only
    ]
    assert set(report.unscannable) == {shard.replace("parts/b", "parts/a"), shard}
    assert "no whole-picture hashes" in report.unscannable[shard.replace("parts/b", "parts/a")]


def test_the_command_imports_and_scans_an_md5_list(built, tmp_path, capsys) -> None:
    db = tmp_path / "tickets.sqlite3"
    name = INDEXED[4]
    path = tmp_path / "list.txt"
    path.write_text(f"md5 {md5_hex((DATASET / name).read_bytes())}\n{md5_hex(b'another file')}\n")
    code, out, _ = run(
        capsys, "hash-lists", "import", path, "--index", built.index, "--db", db, "--source", "s"
    )
    assert (code, out) == (0, "imported hash list 1 from s (te): 2 entries (md5 2)\n")
    code, out, _ = run(
        capsys, "hash-lists", "scan", "--index", built.index, "--db", db, "--list", 1, "--json"
    )
    assert code == 0
    report = json.loads(out)
    assert (report["hashes"], report["not_scanned"], report["complete"]) == ({"md5": 2}, 0, True)
    assert [(hit["line"], hit["signal"], hit["entry"], hit["distance"]) for hit in report["hits"]] == [
        (1, "md5", built.entries[name], 0)
    ]
