"""`index build` speed: photos per second per core, the speed-up of parallel workers, and a baseline.

Usage: python -m bench.build [--photos DIR] [--count 768] [--workers 2] [--without-whole-picture] [--json]

Photos: 1024 px JPEGs (quality 90) made from the dev set's real photographs (``/tmp/devset/index``,
see ../shared/README.md; the sample photos in ``samples/dataset`` if it is missing): each original
upscaled to 1024 px on its long side at a few zoom levels and cropped back to that frame, so every
file is a different picture. ``--photos DIR`` measures your own files instead.

Measured, each over the same files:

* entry hashing in one process (``hash_item``: ``decode_picture`` + ``hash_entry``, what the build
  runs per picture), with the allocator settings the build's processes use and with glibc's
  defaults, and where its time goes (decode stages, PDQ, pHash);
* the whole ``build_index`` with 1 worker and with ``--workers`` worker processes: wall-clock rate,
  speed-up, and photos per CPU-second (all processes), which other load on the machine does not skew;
* the baseline in the same run: a plain ``imagehash.phash(Image.open(f))`` loop;
* the index's bytes per entry on disk, and how fast the client merges batch results into shards
  (the ceiling of a Dask build's client);
* what the whole-picture hashes cost (:mod:`bot.whole_picture`: the file decoded again at full
  size, PDQ and pHash of it): their time per photo; ``--without-whole-picture`` runs everything
  as ``index build --without-whole-picture`` does, for a with/without on the same tree and machine.

Rates per core are photos per CPU-second of the processes doing the work.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import multiprocessing
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest.mock import patch

import imagehash
import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin

from bench import DEVSET, REPO
from bot.config import Settings, load_settings
from bot.decoding import decode_picture
from bot.hashing import PDQ, EntryHashes, EntryPart, PHash, RowKind, inner_region
from bot.index.batches import BatchResult, hash_item, keep_freed_memory_for_reuse
from bot.index.build import build_index
from bot.index.sources import SourceItem
from bot.index.storage import DatasetEntry, ShardWriter
from bot.whole_picture import WholeColumns, hash_whole_picture

DEVSET_ORIGINALS = DEVSET / "index"
SAMPLE_PHOTOS = REPO / "samples" / "dataset"
SIDE = 1024
ZOOMS = tuple(1.0 + 0.15 * step for step in range(16))
BREAKDOWN_PHOTOS = 96  # the stage breakdown holds every stage's pictures in memory at once


def make_photos(folder: Path, count: int) -> list[Path]:
    """``count`` distinct 1024 px JPEGs: each original at several zooms, cropped to its 1024 frame."""
    originals = sorted(DEVSET_ORIGINALS.glob("*.jpg")) or sorted(SAMPLE_PHOTOS.glob("*.jpg"))
    folder.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    for zoom in ZOOMS:
        for original in originals:
            if len(made) == count:
                return made
            image = ImageOps.exif_transpose(Image.open(original)).convert("RGB")
            width, height = image.size
            scale = SIDE / max(width, height)
            frame = (round(width * scale), round(height * scale))
            zoomed = image.resize((round(frame[0] * zoom), round(frame[1] * zoom)), Image.Resampling.LANCZOS)
            left, top = (zoomed.width - frame[0]) // 3, (zoomed.height - frame[1]) // 2
            path = folder / f"{original.stem}-zoom{zoom:.2f}.jpg"
            zoomed.crop((left, top, left + frame[0], top + frame[1])).save(path, quality=90)
            made.append(path)
    return made


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (pool workers end with the build)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(run: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best wall time and its CPU time over ``repeat`` runs."""
    best = (math.inf, math.inf)
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), cpu_seconds()
        run()
        best = min(best, (time.perf_counter() - wall, cpu_seconds() - cpu))
    return best


def per_photo(datas: list[bytes], step: Callable[[bytes], object], repeat: int) -> dict[str, float]:
    wall, cpu = timed(lambda: [step(data) for data in datas], repeat)
    return {"ms_per_photo": 1000 * cpu / len(datas), "photos_per_cpu_s": len(datas) / cpu, "wall_s": wall}


def draft_requests(datas: list[bytes], settings: Settings) -> list[tuple[int, int] | None]:
    """The box decode_picture asks JPEG draft() for, per photo: watched, not guessed, so the stages
    below follow decode_picture whatever it asks."""
    asked: list[tuple[int, int] | None] = []
    original = JpegImagePlugin.JpegImageFile.draft

    def watch(
        image: JpegImagePlugin.JpegImageFile, mode: str | None, size: tuple[int, int] | None
    ) -> tuple[str, tuple[int, int, float, float]] | None:
        asked[-1] = size
        return original(image, mode, size)

    with patch.object(JpegImagePlugin.JpegImageFile, "draft", watch):
        for data in datas:
            asked.append(None)
            decode_picture(data, settings.decoding)
    return asked


def stage_breakdown(datas: list[bytes], settings: Settings, repeat: int) -> dict[str, float]:
    """Milliseconds per photo of each step of decode_picture + hash_entry, done as they do it."""
    side, margin = settings.decoding.work_side, settings.hashing.entry_margin
    boxes = draft_requests(datas, settings)
    opened: list[Image.Image] = []

    def load() -> None:
        opened.clear()
        for data, box in zip(datas, boxes, strict=True):
            image = Image.open(io.BytesIO(data))
            if box is not None:
                image.draft("RGB", box)
            image.load()
            opened.append(image)

    stages: dict[str, float] = {}
    stages["JPEG decode (drafted as decode_picture asks)"] = timed(load, repeat)[1]
    sizes = [Image.open(io.BytesIO(data)).size for data in datas]
    scaled = sum(image.size != size for image, size in zip(opened, sizes, strict=True))
    rgb: list[Image.Image] = []
    stages["orient + RGB copy"] = timed(
        lambda: rgb.__setitem__(slice(None), [ImageOps.exif_transpose(i).convert("RGB") for i in opened]),
        repeat,
    )[1]

    def thumbnails() -> list[Image.Image]:
        copies = [image.copy() for image in rgb]
        for image in copies:
            image.thumbnail((side, side), Image.Resampling.BILINEAR, reducing_gap=2.0)
        return copies

    stages["resize to the work side"] = (
        timed(thumbnails, repeat)[1] - timed(lambda: [image.copy() for image in rgb], repeat)[1]
    )
    regions = [inner_region(image, (margin,) * 4) for image in thumbnails()]
    stages["PDQ (work picture)"] = timed(lambda: [PDQ.compute_with_quality(r) for r in regions], repeat)[1]
    stages["pHash (imagehash)"] = timed(lambda: [PHash.compute(r) for r in regions], repeat)[1]
    result = {name: 1000 * seconds / len(datas) for name, seconds in stages.items()}
    result["share of photos libjpeg scaled while decoding"] = scaled / len(datas)
    return result


def build_rate(folder: Path, out: Path, settings: Settings, workers: int) -> dict[str, float]:
    shutil.rmtree(out, ignore_errors=True)
    wall, cpu = time.perf_counter(), cpu_seconds()
    report = build_index([folder], out, settings, workers=workers, show_progress=False)
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    return {
        "workers": workers,
        "entries": report.entries,
        "wall_s": wall,
        "photos_per_s": report.entries / wall,
        "photos_per_cpu_s": report.entries / cpu,
    }


def _spin(iterations: int) -> int:
    total = 0
    for i in range(iterations):
        total += i * i
    return total


def free_core_speed_up(workers: int, iterations: int = 10_000_000) -> float:
    """The speed-up of ``workers`` processes on a pure-Python loop: how many cores were free for this
    run (other programs on the machine lower it, and the build's speed-up with it)."""
    started = time.perf_counter()
    _spin(iterations)
    alone = time.perf_counter() - started
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        started = time.perf_counter()
        pool.map(_spin, [iterations] * workers)
        together = time.perf_counter() - started
    return workers * alone / together


def disk_bytes_per_entry(index: Path) -> dict[str, float]:
    sizes: dict[str, int] = {}
    entries = 0
    for shard in (index / "shards").iterdir():
        entries += json.loads((shard / "shard.json").read_text())["entries"]
        for path in shard.iterdir():
            if path.name != "shard.json":
                sizes[path.name] = sizes.get(path.name, 0) + path.stat().st_size
    return {name: size / entries for name, size in sorted(sizes.items())}


def _core_part(rng: np.random.Generator) -> EntryPart:
    hashes = EntryHashes(
        signals={"phash": int(rng.integers(0, 2**63)), "pdq": rng.integers(0, 2**63, 4, dtype=np.uint64)},
        quality=90,
        thumbnail=rng.integers(0, 256, (16, 16), dtype=np.uint8),
        chroma=rng.integers(-128, 128, (2, 8, 8), dtype=np.int8),
    )
    return EntryPart(box=(0.125, 0.125, 0.875, 0.875), hashes=hashes, kind=RowKind.CORE)


def merge_rate(out: Path, entries: int = 200_000) -> float:
    """Entries per second the client turns into shards (what bounds a Dask build's client)."""
    rng = np.random.default_rng(0)
    batch = 32
    results = [
        BatchResult(
            entries=[
                DatasetEntry(
                    key=f"{start + i:09d}",
                    url=f"https://images.example.org/photos/{start + i:09d}/original-1024x768.jpg",
                    caption="a photograph of a person standing in front of a building, in summer",
                )
                for i in range(batch)
            ],
            signals={
                "phash": rng.integers(0, 2**63, batch, dtype=np.uint64),
                "pdq": rng.integers(0, 2**63, (batch, 4), dtype=np.uint64),
            },
            quality=np.full(batch, 90, dtype=np.uint8),
            thumbnail=rng.integers(0, 256, (batch, 16, 16), dtype=np.uint8),
            chroma=rng.integers(-128, 128, (batch, 2, 8, 8), dtype=np.int8),
            failures=[],
            parts={row: (_core_part(rng),) for row in range(batch)},  # every entry keeps its core
            whole=WholeColumns(
                pdq=rng.integers(0, 2**63, (batch, 4), dtype=np.uint64),
                phash=rng.integers(0, 2**63, batch, dtype=np.uint64),
                quality=np.full(batch, 90, dtype=np.uint8),
            ),
        )
        for start in range(0, entries, batch)
    ]
    started = time.perf_counter()
    writer = ShardWriter(out, "00000")
    for result in results:
        for entry, hashes in result.hashes():
            writer.add(entry, hashes)
    writer.commit()
    return entries / (time.perf_counter() - started)


def baseline(files: list[Path], repeat: int) -> dict[str, float]:
    """The obvious script: imagehash.phash(Image.open(f)) per file (one 64-bit hash, no PDQ)."""
    wall, cpu = timed(lambda: [imagehash.phash(Image.open(path)) for path in files], repeat)
    return {"ms_per_photo": 1000 * cpu / len(files), "photos_per_cpu_s": len(files) / cpu, "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, help="a folder of JPEGs to measure instead of the made ones")
    parser.add_argument("--count", type=int, default=768, help="photos to make (default 768)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="the parallel build")
    parser.add_argument("--repeat", type=int, default=3, help="best of N for the per-photo loops")
    parser.add_argument(
        "--without-whole-picture",
        action="store_true",
        help="build without the whole-picture hashes (index build --without-whole-picture)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    settings = load_settings(with_deployment_files=False)
    if args.without_whole_picture:  # as `index build --without-whole-picture` builds
        settings = replace(settings, index=replace(settings.index, whole_picture_hashes=False))
    report(measure(args, settings), args)


def measure(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Every figure of the module docstring, over one set of photos."""
    with tempfile.TemporaryDirectory(prefix="bench-build-") as scratch:
        work = Path(scratch)
        if args.photos:
            folder, files = args.photos, sorted(args.photos.glob("*.jp*g"))
        else:
            folder = work / "photos"
            files = make_photos(folder, args.count)
        datas = [path.read_bytes() for path in files]
        sizes = [Image.open(io.BytesIO(data)).size for data in datas[:50]]
        figures: dict[str, Any] = {
            "photos": len(files),
            "median_long_side": float(np.median([max(size) for size in sizes])),
            "mean_file_kb": sum(map(len, datas)) / len(datas) / 1024,
            "cpus": os.cpu_count(),
            "whole_picture_hashes": not args.without_whole_picture,
        }
        hash_one = lambda data: hash_item(SourceItem(DatasetEntry("k"), picture=data), settings)  # noqa: E731
        # First the plain script and our hashing as any script would run it, then as the build's
        # processes run it (keep_freed_memory_for_reuse: a process-wide setting, so it comes last).
        figures["baseline_imagehash_phash"] = baseline(files, args.repeat)
        figures["entry_hashing_default_allocator"] = per_photo(datas, hash_one, args.repeat)
        keep_freed_memory_for_reuse()
        figures["entry_hashing"] = per_photo(datas, hash_one, args.repeat)
        figures["decode_only"] = per_photo(
            datas, lambda data: decode_picture(data, settings.decoding), args.repeat
        )
        figures["stages_ms"] = stage_breakdown(datas[:BREAKDOWN_PHOTOS], settings, args.repeat)
        if not args.without_whole_picture:
            # the fallback picture is hashed only where pdqhash refuses a file: never a JPEG here
            fallback = decode_picture(datas[0], settings.decoding).image
            figures["whole_picture_only"] = per_photo(
                datas, lambda data: hash_whole_picture(data, fallback), args.repeat
            )
        one = build_rate(folder, work / "index-1", settings, 1)
        many = build_rate(folder, work / f"index-{args.workers}", settings, args.workers)
        figures["build"] = [one, many]
        figures["speed_up"] = many["photos_per_s"] / one["photos_per_s"]
        figures["free_core_speed_up"] = free_core_speed_up(args.workers)
        figures["disk_bytes_per_entry"] = disk_bytes_per_entry(work / "index-1")
        figures["merge_entries_per_s"] = merge_rate(work / "merge")
    return figures


def report(figures: dict[str, Any], args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(figures, indent=1))
        return
    hashing, base = figures["entry_hashing"], figures["baseline_imagehash_phash"]
    print(
        f"{figures['photos']} JPEG photos, median long side {figures['median_long_side']:.0f} px, "
        f"{figures['mean_file_kb']:.0f} KB mean, {figures['cpus']} cores"
    )
    print(
        f"entry hashing as the build runs it (decode_picture + hash_entry, pHash + PDQ): "
        f"{hashing['ms_per_photo']:.2f} ms per photo = {hashing['photos_per_cpu_s']:.0f} photos/s per core"
    )
    default = figures["entry_hashing_default_allocator"]
    print(
        f"  the same with glibc's default allocator settings: {default['ms_per_photo']:.2f} ms "
        f"= {default['photos_per_cpu_s']:.0f} photos/s per core"
    )
    print(f"  of which decode_picture: {figures['decode_only']['ms_per_photo']:.2f} ms")
    if "whole_picture_only" in figures:
        print(
            f"  of which the whole-picture hashes (full-size decode, PDQ, pHash): "
            f"{figures['whole_picture_only']['ms_per_photo']:.2f} ms"
        )
    else:
        print("  (without the whole-picture hashes: index build --without-whole-picture)")
    for stage, value in figures["stages_ms"].items():
        unit = "" if stage.startswith("share") else " ms"
        print(f"    {stage}: {value:.2f}{unit}")
    print(
        f"baseline imagehash.phash(Image.open(f)) (pHash only): {base['ms_per_photo']:.2f} ms per photo "
        f"= {base['photos_per_cpu_s']:.0f} photos/s per core"
    )
    for run in figures["build"]:
        print(
            f"build_index, {run['workers']} worker(s): {run['photos_per_s']:.0f} photos/s "
            f"({run['wall_s']:.1f} s wall, {run['photos_per_cpu_s']:.0f} photos per CPU-second)"
        )
    print(
        f"speed-up {args.workers} workers / 1: {figures['speed_up']:.2f}x (a pure-Python loop in "
        f"{args.workers} processes, same run: {figures['free_core_speed_up']:.2f}x, i.e. the cores free)"
    )
    disk = figures["disk_bytes_per_entry"]
    print(
        "bytes per entry on disk: "
        + ", ".join(f"{name} {value:.1f}" for name, value in disk.items())
        + f" (total {sum(disk.values()):.1f}; meta.jsonl holds this set's short keys, no URL or caption)"
    )
    print(f"client merge (batch results -> shard files): {figures['merge_entries_per_s']:,.0f} entries/s")


if __name__ == "__main__":
    main()
