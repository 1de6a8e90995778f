"""A dataset picture's whole-picture hashes are those a partner hash list holds for it: the PDQ
python-threatexchange computes from the file (bot/whole_picture.py), RGB conversion and all."""

from __future__ import annotations

import io
from pathlib import Path

import imagehash
import pytest
from PIL import Image
from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_bytes

from bot.config import Settings
from bot.decoding import decode_picture
from bot.signals import PDQ
from bot.whole_picture import WholeColumns, hash_whole_picture

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
REAL_PICTURES = sorted((SAMPLES / "dataset").glob("*.jpg")) + sorted((SAMPLES / "queries").glob("*.jpg"))


def whole(data: bytes, settings: Settings):  # type: ignore[no-untyped-def]
    """As the build hashes a file (bot.index.batches.hash_item): decode_picture's full-size decode
    reused where there is one."""
    picture = decode_picture(data, settings.decoding, keep_full=True)
    return hash_whole_picture(data, picture.image, picture.full)


@pytest.mark.parametrize("path", REAL_PICTURES, ids=lambda path: path.name)
def test_whole_picture_pdq_is_python_threatexchanges(path: Path, settings: Settings):
    data = path.read_bytes()
    expected_hex, expected_quality = pdq_from_bytes(data)

    got = whole(data, settings)

    assert PDQ.to_hex(got.pdq) == expected_hex
    assert got.quality == expected_quality
    assert got.phash == int(str(imagehash.phash(Image.open(path))), 16)


@pytest.mark.parametrize("path", REAL_PICTURES, ids=lambda path: path.name)
def test_a_reused_decode_gives_what_decoding_the_file_again_gives(path: Path, settings: Settings):
    data = path.read_bytes()
    picture = decode_picture(data, settings.decoding, keep_full=True)
    assert picture.full is not None  # every sample is under twice the work side
    reused, again = (
        hash_whole_picture(data, picture.image, picture.full),
        hash_whole_picture(data, picture.image),
    )

    assert (PDQ.to_hex(reused.pdq), reused.phash, reused.quality) == (
        PDQ.to_hex(again.pdq),
        again.phash,
        again.quality,
    )


def test_a_photo_libjpeg_scales_while_decoding_is_decoded_again_at_full_size(settings: Settings):
    """Over twice the work side, decode_picture's decode is scaled (JPEG draft): not the file's
    pixels, so none is kept, and the whole picture is decoded again, as the library decodes it."""
    source = Image.open(SAMPLES / "dataset" / "hubble.jpg")
    buffer = io.BytesIO()
    source.resize((source.width * 2, source.height * 2), Image.Resampling.LANCZOS).save(buffer, "JPEG")
    data = buffer.getvalue()
    assert decode_picture(data, settings.decoding, keep_full=True).full is None

    got = whole(data, settings)

    assert (PDQ.to_hex(got.pdq), got.quality) == pdq_from_bytes(data)
    assert got.phash == int(str(imagehash.phash(Image.open(io.BytesIO(data)))), 16)


def test_pictures_larger_than_the_work_size_are_hashed_at_full_size(settings: Settings):
    """PDQ of the 512 px work picture is not the library's: the whole picture is decoded again."""
    data = (SAMPLES / "dataset" / "hubble.jpg").read_bytes()  # 640 x 558
    work = decode_picture(data, settings.decoding).image
    assert max(work.size) == settings.decoding.work_side < 640
    work_hex = PDQ.to_hex(PDQ.compute(work))

    assert work_hex != pdq_from_bytes(data)[0] == PDQ.to_hex(whole(data, settings).pdq)


@pytest.mark.parametrize(
    ("mode", "file_format"),
    [
        ("RGBA", "PNG"),
        ("LA", "PNG"),
        ("L", "PNG"),
        ("P", "PNG"),
        ("P", "GIF"),
        ("CMYK", "JPEG"),
        ("I;16", "PNG"),
    ],
)
def test_every_mode_is_converted_as_the_library_converts_it(mode: str, file_format: str, settings: Settings):
    """Transparency is not flattened, a palette's indices are what the library hashes, CMYK is
    not turned into RGB: whatever the library hands pdqhash, so is handed here."""
    source = Image.open(SAMPLES / "dataset" / "rocket.jpg")
    picture = source.convert("L").convert("I;16") if mode == "I;16" else source.convert(mode)
    buffer = io.BytesIO()
    picture.save(buffer, file_format)
    data = buffer.getvalue()

    got = whole(data, settings)

    assert (PDQ.to_hex(got.pdq), got.quality) == pdq_from_bytes(data)


def test_columns_are_kept_only_when_every_entry_has_its_values(settings: Settings):
    values = [whole(path.read_bytes(), settings) for path in REAL_PICTURES[:3]]

    columns = WholeColumns.stack(values)

    assert columns is not None
    assert columns.pdq.shape == (3, 4)
    assert columns.phash.shape == (3,)
    assert [columns.row(row).phash for row in range(3)] == [value.phash for value in values]
    assert WholeColumns.stack([values[0], None]) is None


def test_a_file_pdqhash_refuses_is_hashed_from_the_work_picture(monkeypatch, settings: Settings):
    """No list can hold the library's hash of such a file (the library fails on it too); the entry
    still gets values, so its shard keeps whole-picture hashes for every entry."""
    data = (SAMPLES / "dataset" / "hubble.jpg").read_bytes()
    work = decode_picture(data, settings.decoding).image

    def refuse(image):  # type: ignore[no-untyped-def]
        raise ValueError("Buffer dtype mismatch")  # what pdqhash says of an array it cannot take

    monkeypatch.setattr("bot.whole_picture.library_array", refuse)
    got = hash_whole_picture(data, work)

    words, quality = PDQ.compute_rated(work)
    assert (PDQ.to_hex(got.pdq), got.quality) == (PDQ.to_hex(words), quality)
    assert PDQ.to_hex(got.pdq) != pdq_from_bytes(data)[0]
