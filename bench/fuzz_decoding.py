"""Hostile input against the decoding path: every input decodes or is refused with a sentence, in bounds.

Usage: python -m bench.fuzz_decoding [--seconds 600] [--seed 0] [--decode-only] [--max-pixels N]
       [--limit-seconds 5] [--json] [--replay INPUT_SEED]

Inputs are what a person could send: random bytes, random bytes behind a real format's magic, and
real pictures (a photograph saved as JPEG, progressive JPEG, CMYK JPEG, PNG with alpha, 16-bit PNG,
palette PNG, animated GIF and WebP, BMP, EXIF-rotated JPEG) mutated: truncated, bytes flipped,
runs zeroed, chunks repeated or cut out, headers declaring huge or zero dimensions (checksums
mended, so the header is believed), the wrong magic, or spliced with another picture. Each goes
through ``bot.checking.hash_submitted_picture`` (what the desk's hashing worker runs: decode, then
hash) or, with ``--decode-only``, ``bot.decoding.decode_picture``.

It prints the inputs tried, the outcomes (accepted, or refused by reason code), the slowest input
and its kind, the peak resident memory of the process, and every input that escaped with another
exception or took longer than ``--limit-seconds``: those are bugs (exit status 1). The same
generators drive the CI-sized property test ``tests/bot/test_decoding_fuzz.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import random
import resource
import struct
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
from PIL import Image

from bench import REPO
from bot.checking import hash_submitted_picture
from bot.config import Settings, load_settings
from bot.decoding import ImageRejectedError, decode_picture

MAGIC = {
    "jpeg": b"\xff\xd8\xff\xe0",
    "png": b"\x89PNG\r\n\x1a\n",
    "gif": b"GIF89a",
    "webp": b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    "bmp": b"BM",
    "tiff": b"II*\x00",  # not allowed: must be refused, never handed to the TIFF plugin
    "psd": b"8BPS",
}
# Declared sizes: zero, one, the pixel cap's edges (50 MP), the format's maximum, very thin strips.
# (1999 and 2001 are the edges of the CI test's 4 MP cap.)
HUGE_SIDES = [
    (0, 0),
    (1, 1),
    (1999, 1999),
    (2001, 2001),
    (7071, 7071),
    (7072, 7072),
    (65535, 65535),
    (2**31 - 1, 2**31 - 1),
    (100_000, 1),
]


def _encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


@cache
def seed_pictures() -> dict[str, bytes]:
    """Real pictures in every accepted format and mode, small enough to mutate quickly."""
    photo = Image.open(REPO / "samples" / "dataset" / "coffee.jpg").convert("RGB")
    photo.thumbnail((160, 160))
    frames = [photo.rotate(angle) for angle in (0, 90, 180)]
    rgba = photo.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(photo.size))
    grey16 = Image.fromarray(np.asarray(photo.convert("L"), dtype=np.uint16) * 257)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° on display
    return {
        "jpeg": _encode(photo, "JPEG", quality=85),
        "jpeg_progressive": _encode(photo, "JPEG", progressive=True),
        "jpeg_cmyk": _encode(photo.convert("CMYK"), "JPEG"),
        "jpeg_exif": _encode(photo, "JPEG", exif=exif),
        "png": _encode(photo, "PNG"),
        "png_alpha": _encode(rgba, "PNG"),
        "png_16bit": _encode(grey16, "PNG"),
        "png_palette": _encode(photo.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        "gif_animated": _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50),
        "webp": _encode(photo, "WEBP"),
        "webp_animated": _encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=50),
        "bmp": _encode(photo, "BMP"),
    }


def _with_dimensions(data: bytes, width: int, height: int) -> bytes:
    """``data`` whose header declares ``width`` x ``height`` (checksums mended where the format has
    them, so the lie is believed); unchanged if the header is not found."""
    out = bytearray(data)
    w16, h16 = min(width, 0xFFFF), min(height, 0xFFFF)
    if out.startswith(MAGIC["png"]) and out[12:16] == b"IHDR":
        out[16:24] = struct.pack(">II", min(width, 2**31 - 1), min(height, 2**31 - 1))
        out[29:33] = struct.pack(">I", zlib.crc32(bytes(out[12:29])))
    elif out.startswith(b"GIF"):
        out[6:10] = struct.pack("<HH", w16, h16)
        descriptor = out.find(b"\x2c", 13)  # the first image descriptor
        if descriptor > 0 and descriptor + 9 <= len(out):
            out[descriptor + 5 : descriptor + 9] = struct.pack("<HH", w16, h16)
    elif out.startswith(b"BM") and len(out) >= 26:
        out[18:26] = struct.pack("<ii", min(width, 2**31 - 1), min(height, 2**31 - 1))
    elif out.startswith(b"\xff\xd8"):
        for marker in (b"\xff\xc0", b"\xff\xc2"):
            at = out.find(marker)
            if at > 0 and at + 9 <= len(out):
                out[at + 5 : at + 9] = struct.pack(">HH", h16, w16)
                break
    elif out[:4] == b"RIFF" and out[8:12] == b"WEBP":
        chunk = bytes(out[12:16])
        w14, h14 = max(min(width, 1 << 14), 1), max(min(height, 1 << 14), 1)
        if chunk == b"VP8X":
            w24, h24 = (max(min(side, 1 << 24), 1) - 1 for side in (width, height))
            out[24:30] = w24.to_bytes(3, "little") + h24.to_bytes(3, "little")
        elif chunk == b"VP8 ":
            out[26:30] = struct.pack("<HH", w14 & 0x3FFF, h14 & 0x3FFF)
        elif chunk == b"VP8L":
            bits = (w14 - 1) | ((h14 - 1) << 14) | (int.from_bytes(out[21:25], "little") & ~((1 << 28) - 1))
            out[21:25] = (bits & 0xFFFFFFFF).to_bytes(4, "little")
    return bytes(out)


# Each mutation: (seed bytes, rng) -> bytes. Names are the "kind" the figures report.
def _truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(0, len(data))]


def _flip(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice((1, 2, 8, 64))):
        # the header is where a flip does the most: aim half of them at the first 64 bytes
        at = rng.randrange(min(64, len(out))) if rng.random() < 0.5 else rng.randrange(len(out))
        out[at] ^= 1 << rng.randrange(8)
    return bytes(out)


def _zero_run(data: bytes, rng: random.Random) -> bytes:
    start = rng.randrange(len(data))
    length = rng.randrange(1, max(2, len(data) // 4))
    return data[:start] + bytes(min(length, len(data) - start)) + data[start + length :]


def _repeat_chunk(data: bytes, rng: random.Random) -> bytes:
    start = rng.randrange(len(data))
    chunk = data[start : start + rng.randrange(1, 512)]
    return data[:start] + chunk * rng.choice((2, 16, 256)) + data[start:]


def _cut_chunk(data: bytes, rng: random.Random) -> bytes:
    start = rng.randrange(len(data))
    return data[:start] + data[start + rng.randrange(1, 256) :]


def _huge_dimensions(data: bytes, rng: random.Random) -> bytes:
    width, height = rng.choice(HUGE_SIDES)
    if rng.random() < 0.3:
        width, height = height, width
    return _with_dimensions(data, width, height)


def _wrong_magic(data: bytes, rng: random.Random) -> bytes:
    magic = rng.choice(list(MAGIC.values()))
    return magic + data[len(magic) :]


def _splice(data: bytes, rng: random.Random) -> bytes:
    other = rng.choice(list(seed_pictures().values()))
    return data[: rng.randrange(len(data))] + other[rng.randrange(len(other)) :]


MUTATIONS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "truncated": _truncate,
    "flipped": _flip,
    "zeroed": _zero_run,
    "repeated": _repeat_chunk,
    "cut": _cut_chunk,
    "huge_dimensions": _huge_dimensions,
    "wrong_magic": _wrong_magic,
    "spliced": _splice,
}


def generate(rng: random.Random) -> tuple[str, bytes]:
    """One hostile input and its kind."""
    roll = rng.random()
    if roll < 0.05:
        return "zeros", bytes(rng.choice((0, 1, 16, 4096)))
    if roll < 0.15:
        return "random", rng.randbytes(rng.randrange(0, 4096))
    if roll < 0.25:
        name, magic = rng.choice(list(MAGIC.items()))
        return f"random_behind_{name}", magic + rng.randbytes(rng.randrange(0, 4096))
    seed_name, data = rng.choice(list(seed_pictures().items()))
    kinds = rng.sample(list(MUTATIONS), k=rng.choice((1, 1, 2, 3)))
    for kind in kinds:
        if data:
            data = MUTATIONS[kind](data, rng)
    return f"{'+'.join(kinds)}:{seed_name}", data


@dataclass
class Outcome:
    """What one input came to: ``accepted``, a refusal's reason code, or ``escaped`` (a bug)."""

    result: str
    seconds: float
    error: BaseException | None = None


def try_input(data: bytes, settings: Settings, *, decode_only: bool = False) -> Outcome:
    """Run ``data`` through the desk's path; a refusal must be an ImageRejectedError with a sentence."""
    started = time.perf_counter()
    try:
        if decode_only:
            decode_picture(data, settings.decoding)
        else:
            hash_submitted_picture(data, settings)
    except ImageRejectedError as refused:
        seconds = time.perf_counter() - started
        if not (refused.reason and refused.message.endswith(".") and str(refused) == refused.message):
            return Outcome("escaped", seconds, refused)
        return Outcome(refused.reason, seconds)
    except Exception as escaped:  # anything else is a bug: the person would get "something went wrong"
        return Outcome("escaped", time.perf_counter() - started, escaped)
    return Outcome("accepted", time.perf_counter() - started)


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


@dataclass
class Figures:
    tried: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    slowest: tuple[float, str] = (0.0, "")
    bugs: list[str] = field(default_factory=list)


def fuzz(
    seconds: float, seed: int, settings: Settings, *, decode_only: bool, limit_seconds: float
) -> Figures:
    rng = random.Random(seed)
    figures = Figures()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        input_seed = rng.randrange(2**63)
        kind, data = generate(random.Random(input_seed))
        outcome = try_input(data, settings, decode_only=decode_only)
        figures.tried += 1
        figures.outcomes[outcome.result] += 1
        if outcome.seconds > figures.slowest[0]:
            figures.slowest = (outcome.seconds, kind)
        if outcome.result == "escaped" or outcome.seconds > limit_seconds:
            figures.bugs.append(
                f"{kind} ({len(data):,} bytes, {outcome.seconds:.2f} s; "
                f"--replay {input_seed}): {outcome.error!r}"
            )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--decode-only", action="store_true", help="decode_picture only, no hashing")
    parser.add_argument("--limit-seconds", type=float, default=5.0, help="an input slower than this is a bug")
    parser.add_argument("--max-pixels", type=int, help="another pixel cap than [decoding] max_pixels")
    parser.add_argument("--replay", type=int, help="run the one input of this seed (a bug's --replay)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    settings = load_settings(with_deployment_files=False)
    if args.max_pixels:
        decoding = dataclasses.replace(settings.decoding, max_pixels=args.max_pixels)
        settings = dataclasses.replace(settings, decoding=decoding)
    if args.replay is not None:
        kind, data = generate(random.Random(args.replay))
        outcome = try_input(data, settings, decode_only=args.decode_only)
        print(f"{kind}, {len(data):,} bytes: {outcome.result} in {outcome.seconds:.3f} s")
        if outcome.error is not None:
            raise outcome.error
        return
    seed_pictures()
    baseline = peak_rss_bytes()
    figures = fuzz(
        args.seconds, args.seed, settings, decode_only=args.decode_only, limit_seconds=args.limit_seconds
    )
    result = {
        "seconds": args.seconds,
        "seed": args.seed,
        "max_pixels": settings.decoding.max_pixels,
        "path": "decode_picture" if args.decode_only else "hash_submitted_picture",
        "tried": figures.tried,
        "outcomes": dict(figures.outcomes.most_common()),
        "slowest_seconds": round(figures.slowest[0], 3),
        "slowest_kind": figures.slowest[1],
        "peak_rss_mib": round(peak_rss_bytes() / 2**20, 1),
        "peak_rss_before_mib": round(baseline / 2**20, 1),
        "bugs": figures.bugs,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['tried']:,} inputs in {args.seconds:.0f} s through {result['path']} (seed {args.seed})"
        )
        for reason, count in figures.outcomes.most_common():
            print(f"  {reason:24}{count:>8,}")
        print(f"slowest input: {result['slowest_seconds']:.3f} s ({result['slowest_kind']})")
        before = result["peak_rss_before_mib"]
        print(f"peak RSS: {result['peak_rss_mib']} MiB (before the first input: {before} MiB)")
        print(f"bugs (escaped or over {args.limit_seconds} s): {len(figures.bugs)}")
        for bug in figures.bugs[:20]:
            print(f"  {bug}")
    sys.exit(1 if figures.bugs else 0)


if __name__ == "__main__":
    main()
