"""decode_picture and hash_submitted_picture on untrusted bytes: what is accepted, what is refused, why.

Every input is built in memory. A refusal must always be an ImageRejectedError carrying a stable
``reason`` code and a sentence a person can read; nothing else may escape.
"""

from __future__ import annotations

import builtins
import dataclasses
import io
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from bot.checking import hash_submitted_picture
from bot.config import Settings
from bot.decoding import DecodedPicture, ImageRejectedError, decode_picture

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "samples" / "dataset").glob("*.jpg"))
# clock.jpg is scikit-image's motion-blurred clock: a real photograph, but a nearly plain one.
BLURRED_SAMPLES = [path for path in SAMPLES if path.stem == "clock"]
SHARP_SAMPLES = [path for path in SAMPLES if path not in BLURRED_SAMPLES]


# --- helpers -------------------------------------------------------------------------------------


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def textured(width: int, height: int, seed: int = 0) -> Image.Image:
    """A detailed RGB picture (smooth gradients plus noise) that survives JPEG and hashes well."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack(
        [
            127 + 100 * np.sin(x / (width / 7)),
            127 + 100 * np.cos(y / (height / 5)),
            127 + 100 * np.sin((x + y) / (width / 11)),
        ],
        axis=-1,
    )
    noise = rng.normal(0, 20, base.shape)
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), mode="RGB")


def pixels(picture: DecodedPicture) -> np.ndarray:
    return np.asarray(picture.image, dtype=np.int16)


def assert_readable(error: ImageRejectedError, fragment: str) -> None:
    """The message is a sentence for a person, contains ``fragment``, and is what str() shows."""
    assert fragment.lower() in error.message.lower(), error.message
    assert error.message[0].isupper()
    assert error.message.rstrip().endswith(".")
    assert len(error.message.split()) >= 6
    assert str(error) == error.message
    assert isinstance(error, ValueError)


def reject(data: bytes, settings, reason: str, fragment: str) -> ImageRejectedError:
    """decode_picture(data, settings) must refuse with ``reason``; return the error for more checks."""
    with pytest.raises(ImageRejectedError) as caught:
        decode_picture(data, settings)
    assert caught.value.reason == reason, caught.value.message
    assert_readable(caught.value, fragment)
    return caught.value


# --- size guards ---------------------------------------------------------------------------------


def test_zero_bytes_is_empty(settings: Settings) -> None:
    reject(b"", settings.decoding, "empty", "empty")


def test_more_than_max_bytes_is_refused_before_decoding(settings: Settings) -> None:
    data = encode(textured(64, 64), "PNG")
    small = dataclasses.replace(settings.decoding, max_bytes=len(data) - 1)
    reject(data, small, "too_many_bytes", "smaller copy")


def test_exactly_max_bytes_is_accepted(settings: Settings) -> None:
    data = encode(textured(64, 64), "PNG")
    exact = dataclasses.replace(settings.decoding, max_bytes=len(data))
    assert decode_picture(data, exact).source_size == (64, 64)


def test_too_many_bytes_message_names_the_limit(settings: Settings) -> None:
    data = b"\xff" * (3 * 1048576 + 1)
    limit = dataclasses.replace(settings.decoding, max_bytes=2 * 1048576)
    error = reject(data, limit, "too_many_bytes", "up to 2,097,152 bytes")
    assert "3,145,729 bytes" in error.message


# --- not a picture / not an allowed format -------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"Hello, this is not a picture at all.\n" * 20, id="text"),
        pytest.param(b"<!DOCTYPE html><html><body>nope</body></html>", id="html"),
        pytest.param(np.random.default_rng(7).bytes(4096), id="random-bytes"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, id="png-signature-only"),
    ],
)
def test_not_an_image(settings: Settings, data: bytes) -> None:
    reject(data, settings.decoding, "not_an_image", "not a picture I can read")


@pytest.mark.parametrize(
    ("fmt", "params"),
    [("TIFF", {}), ("ICO", {"sizes": [(64, 64)]}), ("PPM", {}), ("PCX", {}), ("TGA", {})],
)
def test_format_outside_allow_list_is_not_an_image(settings: Settings, fmt: str, params: dict) -> None:
    data = encode(textured(64, 64), fmt, **params)
    with Image.open(io.BytesIO(data)) as readable:  # Pillow itself would happily read it
        assert readable.format == fmt
    error = reject(data, settings.decoding, "not_an_image", "not a picture I can read")
    assert "JPEG, PNG" in error.message


# --- damaged files -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file_is_corrupt(settings: Settings, fmt: str) -> None:
    data = encode(textured(300, 200), fmt)
    assert decode_picture(data, settings.decoding).source_size == (300, 200)  # whole file is fine
    reject(data[: len(data) // 2], settings.decoding, "corrupt", "damaged or incomplete")


# --- pixel count guards --------------------------------------------------------------------------


def test_decompression_bomb_png_is_refused_from_its_header(settings: Settings) -> None:
    data = encode(Image.new("1", (12000, 12000)), "PNG")  # 144 MP in ~18 KB
    assert len(data) < 100_000
    reject(data, settings.decoding, "too_many_pixels", "more than 50,000,000 pixels")


def test_pixel_cap_follows_settings(settings: Settings) -> None:
    data = encode(textured(300, 200), "PNG")
    capped = dataclasses.replace(settings.decoding, max_pixels=300 * 200 - 1)
    reject(data, capped, "too_many_pixels", "smaller copy")
    at_cap = dataclasses.replace(settings.decoding, max_pixels=300 * 200)
    assert decode_picture(data, at_cap).source_size == (300, 200)


def _bomb_in_warning_band(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> bytes:
    """A 400x400 PNG while Pillow's limit is 100k pixels: Pillow alone would only warn about it."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)
    assert 100_000 < 400 * 400 < 2 * 100_000
    assert settings.decoding.max_pixels > 400 * 400  # our own cap is far above: only Pillow's can fire
    return encode(Image.new("RGB", (400, 400), "grey"), "PNG")


def _refused_without_warning(data: bytes, settings: Settings) -> None:
    with warnings.catch_warnings(record=True) as caught_warnings:
        reject(data, settings.decoding, "too_many_pixels", "smaller copy")
    bombs = [w for w in caught_warnings if issubclass(w.category, Image.DecompressionBombWarning)]
    assert bombs == []


def test_bomb_in_pillows_warning_band_is_refused_not_warned(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The filter bot.decoding installs when it is imported at the top of a program (as bot.cli is).
    data = _bomb_in_warning_band(monkeypatch, settings)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        _refused_without_warning(data, settings)


def test_bomb_in_pillows_warning_band_is_refused_whatever_the_warning_filters(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With the filters reset (pytest's collection, a host application) Pillow only warns: our own
    # check, which honours Pillow's limit when it is lower than ours, must still refuse the picture.
    data = _bomb_in_warning_band(monkeypatch, settings)
    with warnings.catch_warnings():
        warnings.resetwarnings()
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        reject(data, settings.decoding, "too_many_pixels", "more than 100,000 pixels")


@pytest.mark.parametrize("size", [(100_000, 20), (20, 100_000)], ids=["wide", "tall"])
def test_huge_dimension_is_refused_by_the_whole_check(settings: Settings, size: tuple[int, int]) -> None:
    data = encode(Image.new("1", size), "PNG")
    with pytest.raises(ImageRejectedError) as caught:
        hash_submitted_picture(data, settings)
    assert caught.value.reason in {"too_many_pixels", "too_small", "too_plain"}
    assert_readable(caught.value, "")


@pytest.mark.parametrize("size", [(100_000, 20), (20, 100_000)], ids=["wide", "tall"])
def test_huge_dimension_is_refused_by_decoding(settings: Settings, size: tuple[int, int]) -> None:
    rng = np.random.default_rng(3)
    noisy = Image.fromarray(rng.random(size[::-1]) > 0.5)  # detailed, not plain: only the shape is bad
    data = encode(noisy, "PNG")
    with pytest.raises(ImageRejectedError) as caught:
        decode_picture(data, settings.decoding)
    assert caught.value.reason in {"too_many_pixels", "too_small"}


def test_tiny_picture_is_too_small(settings: Settings) -> None:
    error = reject(encode(textured(8, 8), "PNG"), settings.decoding, "too_small", "only 8x8 pixels")
    assert f"at least {settings.decoding.min_side} pixels" in error.message


@pytest.mark.parametrize("size", [(16, 100), (100, 15)])
def test_min_side_boundary(settings: Settings, size: tuple[int, int]) -> None:
    data = encode(textured(*size), "PNG")
    if min(size) >= settings.decoding.min_side:
        assert decode_picture(data, settings.decoding).source_size == size
    else:
        reject(data, settings.decoding, "too_small", "pixels a side")


# --- modes, frames, orientation ------------------------------------------------------------------


def _frame(colour: tuple[int, int, int], stripe: tuple[int, int, int], offset: int) -> Image.Image:
    frame = Image.new("RGB", (96, 64), colour)
    for x in range(offset, 96, 24):
        frame.paste(stripe, (x, 0, x + 8, 64))
    return frame


def test_animated_gif_decodes_its_first_frame(settings: Settings) -> None:
    frames = [
        _frame((200, 30, 30), (255, 255, 255), 0),
        _frame((30, 160, 40), (0, 0, 0), 8),
        _frame((20, 40, 210), (250, 220, 0), 16),
    ]
    animated = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    picture = decode_picture(animated, settings.decoding)
    assert picture.frames == 3
    assert picture.source_format == "GIF"
    assert picture.image.mode == "RGB"
    stills = [decode_picture(encode(frame, "GIF"), settings.decoding) for frame in frames]
    assert all(still.frames == 1 for still in stills)
    assert np.array_equal(pixels(picture), pixels(stills[0]))
    for other in stills[1:]:
        assert not np.array_equal(pixels(picture), pixels(other))


def test_cmyk_jpeg_becomes_rgb_with_right_colours(settings: Settings) -> None:
    red = Image.new("CMYK", (64, 64), (0, 255, 255, 0))
    picture = decode_picture(encode(red, "JPEG", quality=95), settings.decoding)
    assert picture.image.mode == "RGB"
    r, g, b = pixels(picture).reshape(-1, 3).mean(axis=0)
    assert r > 200
    assert g < 60
    assert b < 60


def test_sixteen_bit_grey_png_is_scaled_not_clipped(settings: Settings) -> None:
    ramp = np.tile(np.linspace(0, 65535, 256).round().astype(np.uint16), (64, 1))
    image = Image.fromarray(ramp)
    assert image.mode == "I;16"
    picture = decode_picture(encode(image, "PNG"), settings.decoding)
    assert picture.image.mode == "RGB"
    grey = pixels(picture)[32]
    assert np.all(grey[:, 0] == grey[:, 1])
    assert np.all(grey[:, 1] == grey[:, 2])
    assert grey[0, 0] <= 2
    assert grey[-1, 0] >= 253
    assert 110 <= grey[128, 0] <= 145
    assert np.all(np.diff(grey[:, 0]) >= 0)
    assert (grey[:, 0] == 255).mean() < 0.05


def _half_transparent(mode: str) -> Image.Image:
    """Left half fully transparent (over black), right half opaque red (or mid grey)."""
    if mode == "P":
        image = Image.new("P", (64, 64), 0)
        image.putpalette([0, 0, 0, 255, 0, 0] + [0, 0, 0] * 254)
        image.paste(1, (32, 0, 64, 64))
        image.info["transparency"] = 0
        return image
    if mode == "LA":
        image = Image.new("LA", (64, 64), (0, 0))
        image.paste((128, 255), (32, 0, 64, 64))
        return image
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (32, 0, 64, 64))
    return image


@pytest.mark.parametrize("mode", ["P", "RGBA", "LA"])
def test_transparent_areas_become_white(settings: Settings, mode: str) -> None:
    data = encode(_half_transparent(mode), "PNG")
    with Image.open(io.BytesIO(data)) as reopened:
        assert reopened.mode == mode
    picture = decode_picture(data, settings.decoding)
    assert picture.image.mode == "RGB"
    rgb = pixels(picture)
    assert np.all(rgb[:, :32] == 255)
    expected = (128, 128, 128) if mode == "LA" else (255, 0, 0)
    assert np.all(rgb[:, 32:] == expected)


def test_semi_transparent_pixels_are_blended_on_white(settings: Settings) -> None:
    data = encode(Image.new("RGBA", (32, 32), (0, 0, 0, 128)), "PNG")
    rgb = pixels(decode_picture(data, settings.decoding))
    assert np.all(np.abs(rgb - 127) <= 2)


def test_exif_orientation_is_applied(settings: Settings) -> None:
    image = Image.new("RGB", (300, 200), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 150, 200))  # left half red, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    picture = decode_picture(encode(image, "JPEG", exif=exif, quality=95), settings.decoding)
    assert picture.source_size == (300, 200)
    assert picture.image.size == (200, 300)
    rgb = pixels(picture)
    top, bottom = rgb[:140].reshape(-1, 3).mean(axis=0), rgb[160:].reshape(-1, 3).mean(axis=0)
    assert top[0] > 200 > top[2]  # the stored left half is on top once turned clockwise
    assert bottom[2] > 200 > bottom[0]


def test_large_jpeg_is_drafted_while_decoding(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    drafted: list[tuple[int, int]] = []
    original_draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        result = original_draft(self, mode, size)
        drafted.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    work_side = settings.decoding.work_side
    picture = decode_picture(encode(textured(3000, 2000), "JPEG", quality=80), settings.decoding)
    assert picture.source_size == (3000, 2000)
    assert picture.source_format == "JPEG"
    assert max(picture.image.size) <= work_side
    assert picture.image.size == (work_side, round(work_side * 2000 / 3000))
    # libjpeg scaled while decoding, but never below the side the hashes need.
    assert len(drafted) == 1
    assert drafted[0][0] < 3000
    assert max(drafted[0]) >= work_side


def test_small_picture_is_not_enlarged(settings: Settings) -> None:
    picture = decode_picture(encode(textured(120, 80), "WEBP"), settings.decoding)
    assert picture.source_format == "WEBP"
    assert picture.image.size == (120, 80)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP"])
def test_every_allowed_format_decodes_to_rgb(settings: Settings, fmt: str) -> None:
    picture = decode_picture(encode(textured(90, 60), fmt), settings.decoding)
    assert picture.source_format == fmt
    assert picture.image.mode == "RGB"
    assert picture.image.size == picture.source_size == (90, 60)
    assert picture.frames == 1


# --- the whole check: decode + hash --------------------------------------------------------------


@pytest.mark.parametrize("path", SHARP_SAMPLES, ids=[path.stem for path in SHARP_SAMPLES])
def test_real_photo_decodes_and_hashes(settings: Settings, path: Path) -> None:
    data = path.read_bytes()
    picture = decode_picture(data, settings.decoding)
    assert picture.image.mode == "RGB"
    assert picture.frames == 1
    assert max(picture.image.size) <= settings.decoding.work_side
    query, _ = hash_submitted_picture(data, settings)
    assert query.quality >= settings.matching.pdq_min_quality
    assert len(query.variants) == len(query.phash) == len(query.pdq) > 0
    assert query.pdq.shape[1] == 4


@pytest.mark.parametrize("path", BLURRED_SAMPLES, ids=[path.stem for path in BLURRED_SAMPLES])
def test_blurred_real_photo_is_hashed_or_refused_as_plain(settings: Settings, path: Path) -> None:
    # A motion-blurred photograph sits near PDQ's quality cut-off: either outcome is a fair one, a
    # crash or any other refusal is not.
    data = path.read_bytes()
    assert decode_picture(data, settings.decoding).image.mode == "RGB"
    try:
        hash_submitted_picture(data, settings)
        outcome = "accepted"
    except ImageRejectedError as error:
        outcome = error.reason
    assert outcome in {"accepted", "too_plain"}


def test_samples_are_present() -> None:
    assert len(SHARP_SAMPLES) >= 5


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(encode(Image.new("RGB", (600, 400), (90, 140, 200)), "PNG"), id="flat-png"),
        pytest.param(encode(Image.new("RGB", (600, 400), (240, 240, 240)), "JPEG"), id="flat-jpeg"),
        pytest.param(encode(Image.new("L", (300, 300), 0), "GIF"), id="black-gif"),
    ],
)
def test_flat_picture_is_too_plain(settings: Settings, data: bytes) -> None:
    decode_picture(data, settings.decoding)  # decoding itself is fine
    with pytest.raises(ImageRejectedError) as caught:
        hash_submitted_picture(data, settings)
    assert caught.value.reason == "too_plain"
    assert_readable(caught.value, "too plain")


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"", "empty"), (b"GIF89a garbage", "not_an_image"), (encode(textured(8, 8), "PNG"), "too_small")],
)
def test_whole_check_passes_decoding_refusals_through(settings: Settings, data: bytes, reason: str) -> None:
    with pytest.raises(ImageRejectedError) as caught:
        hash_submitted_picture(data, settings)
    assert caught.value.reason == reason


# --- privacy: nothing touches the disk -----------------------------------------------------------


def test_nothing_is_written_or_opened_on_disk(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    photo = SHARP_SAMPLES[0].read_bytes()
    truncated = encode(textured(300, 200), "JPEG")[:3000]
    flat = encode(Image.new("RGB", (600, 400), (90, 140, 200)), "PNG")
    Image.init()  # load every Pillow plugin now, so only the calls under test run below
    opened: list[tuple[str, tuple]] = []

    def refuse(name: str):
        def fake(*args, **kwargs):
            opened.append((name, args))
            raise OSError(f"{name} is not allowed while checking a picture")

        return fake

    monkeypatch.setattr(builtins, "open", refuse("builtins.open"))
    monkeypatch.setattr(io, "open", refuse("io.open"))
    monkeypatch.setattr(os, "open", refuse("os.open"))
    try:
        picture = decode_picture(photo, settings.decoding)
        query, _ = hash_submitted_picture(photo, settings)
        with pytest.raises(ImageRejectedError) as corrupt:
            decode_picture(truncated, settings.decoding)
        with pytest.raises(ImageRejectedError) as plain:
            hash_submitted_picture(flat, settings)
    finally:
        monkeypatch.undo()
    assert opened == []
    assert picture.image.mode == "RGB"
    assert query.quality >= settings.matching.pdq_min_quality
    assert corrupt.value.reason == "corrupt"
    assert plain.value.reason == "too_plain"


@pytest.mark.parametrize(
    ("size", "fmt", "kept"),
    [
        ((1000, 700), "JPEG", True),  # under twice the work side: libjpeg does not scale it
        ((1100, 700), "JPEG", False),  # drafted to half size: not the file's own pixels
        ((1100, 700), "PNG", True),
        ((300, 200), "BMP", True),
        ((300, 200), "GIF", False),  # counting frames seeks through a GIF: decoded again instead
        ((300, 200), "WEBP", False),
    ],
)
def test_keep_full_keeps_the_decode_only_where_it_is_the_whole_file_at_its_size(
    settings: Settings, size: tuple[int, int], fmt: str, kept: bool
) -> None:
    data = encode(textured(*size), fmt)

    picture = decode_picture(data, settings.decoding, keep_full=True)

    assert (picture.full is not None) == kept
    if picture.full is not None:
        with Image.open(io.BytesIO(data)) as fresh:
            assert picture.full.size == size
            assert np.array_equal(np.asarray(picture.full), np.asarray(fresh))
    assert decode_picture(data, settings.decoding).full is None  # only when asked
