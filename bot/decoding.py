"""Turn untrusted bytes into a small RGB picture, or refuse them with a reason a person understands.

Everything happens in memory: the bytes a person sends are never written anywhere. The guards
run cheapest first — size, then the header (format allow-list, pixel cap) — so that hostile input
is turned away before any pixel is decoded.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from bot import i18n
from bot.config import DecodingSettings
from bot.errors import RemovalDeskError

# Only the formats people actually share. Image.open(formats=...) keeps every other Pillow
# plugin (and the CVEs of exotic formats) out of reach of untrusted bytes.
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")

# Pillow only *warns* between MAX_IMAGE_PIXELS and twice that; make the warning an error so a
# decompression bomb can never slip through in that band. We also check the pixel count ourselves.
warnings.simplefilter("error", Image.DecompressionBombWarning)

_SIXTEEN_BIT_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


class ImageRejectedError(RemovalDeskError, ValueError):
    """The bytes are not a picture we can safely compare. ``reason`` is a stable code for scripts."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __reduce__(self) -> tuple[type[ImageRejectedError], tuple[str, str], dict[str, object]]:
        # Hashing runs in a worker process; the refusal must cross back intact (its message id too).
        return (type(self), (self.reason, self.message), self.__dict__)


def rejected(reason: str, key: str, **params: object) -> ImageRejectedError:
    """A refusal with reason code ``reason``, its sentence the catalogue's message ``key``
    (:mod:`bot.i18n`): English in ``str()``, translatable for a requester."""
    return ImageRejectedError(reason, i18n.text(key, None, **params)).translatable(key, **params)


# Formats whose one frame decode_picture decodes exactly as a plain ``Image.open(...).load()``
# does when libjpeg is not asked to scale (GIF and WebP: counting frames seeks through the file).
_FULL_DECODE_FORMATS = ("JPEG", "PNG", "BMP")


@dataclass(frozen=True)
class DecodedPicture:
    """A decoded picture, oriented and flattened to RGB, no larger than the hashing work size.

    ``full``, asked for with ``keep_full``: the file's picture as decoded, before orientation and
    RGB, where that decode was of the whole file at its own size (a single-frame JPEG libjpeg did
    not scale, i.e. under twice the work side; a PNG or BMP) -- the very pixels a partner list's
    tools hash, so :func:`bot.whole_picture.hash_whole_picture` need not decode the file again.
    """

    image: Image.Image
    source_format: str
    source_size: tuple[int, int]
    frames: int
    full: Image.Image | None = None


def _to_rgb(image: Image.Image) -> Image.Image:
    """Flatten transparency on white, and bring every mode (palette, CMYK, 16-bit) to 8-bit RGB."""
    if image.mode in _SIXTEEN_BIT_MODES:
        # Pillow's convert() clips 16-bit values at 255 instead of scaling: scale by hand.
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if values.max(initial=0) > 255 else 255.0
        grey = np.clip(values * (255.0 / top), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    ):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def decode_picture(data: bytes, settings: DecodingSettings, *, keep_full: bool = False) -> DecodedPicture:
    """Decode ``data`` safely; raise :class:`ImageRejectedError` for anything we will not hash.
    ``keep_full``: keep the full-size decode where there is one (:class:`DecodedPicture`)."""
    if not data:
        raise rejected("empty", "decoding.empty")
    if len(data) > settings.max_bytes:
        raise rejected(
            "too_many_bytes",
            "decoding.too_many_bytes",
            size=len(data),
            limit=settings.max_bytes,
            limit_mib=settings.max_bytes / 1048576,
        )
    try:
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_many_pixels(settings.max_pixels) from exc
    except Exception as exc:  # Pillow raises many types for garbage; all mean the same to a person.
        raise rejected("not_an_image", "decoding.not_an_image") from exc
    width, height = image.size
    # Our own cap, and Pillow's if it is lower: this holds even if something reset the warning
    # filters above (pytest does, and so may a host application).
    pixel_cap = min(settings.max_pixels, Image.MAX_IMAGE_PIXELS or settings.max_pixels)
    if width * height > pixel_cap:
        raise _too_many_pixels(pixel_cap)
    if min(width, height) < settings.min_side:
        raise rejected(
            "too_small", "decoding.too_small", width=width, height=height, min_side=settings.min_side
        )
    if min(width, height) * settings.work_side < settings.min_side * max(width, height):
        # Scaled to the work size, such a strip would be under min_side across: nothing to compare.
        raise rejected("too_small", "decoding.too_thin", width=width, height=height)
    source_format = image.format or "unknown"
    full: Image.Image | None = None
    try:
        # Counting frames walks the whole file: a truncated animated GIF fails here (IndexError).
        frames = getattr(image, "n_frames", 1)
        if source_format == "JPEG":
            # Let libjpeg scale by 1/2, 1/4 or 1/8 while decoding: several times faster, and the
            # result is never smaller than the work picture the thumbnail below makes (its long
            # side work_side). Asking for work_side on BOTH sides would decode a 1024x684 photo
            # at full size and resize it: 16.6 ms against ~6 ms per photo (bench/build.py).
            width, height = image.size
            scale = settings.work_side / max(width, height)
            if scale < 1:
                image.draft("RGB", (max(1, int(width * scale)), max(1, int(height * scale))))
        image.seek(0)  # animated pictures: the first frame stands for the picture
        image.load()
        at_full_size = frames == 1 and source_format in _FULL_DECODE_FORMATS and image.size == (width, height)
        oriented = ImageOps.exif_transpose(image)
        rgb = _to_rgb(oriented)
        rgb.thumbnail((settings.work_side, settings.work_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
        if keep_full and at_full_size:
            full = image  # last, so that a failure above still closes it
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_many_pixels(settings.max_pixels) from exc
    except Exception as exc:  # truncated data, corrupt chunks, bad EXIF, ... all end here
        raise rejected("corrupt", "decoding.corrupt") from exc
    finally:
        if full is None:
            image.close()
    return DecodedPicture(
        image=rgb, source_format=source_format, source_size=(width, height), frames=frames, full=full
    )


def _too_many_pixels(limit: int) -> ImageRejectedError:
    return rejected("too_many_pixels", "decoding.too_many_pixels", limit=limit)
