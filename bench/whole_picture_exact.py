"""Whether the whole-picture hashes an index keeps are exactly what partner lists compute, on every
picture of the dev sets hashed as the build hashes it (``hash_item``): python-threatexchange's
``pdq_hasher.pdq_from_bytes`` (PDQ and quality) and ``imagehash.phash(Image.open(f))``; and
whether bot.signals.pdq_fast gives pdqhash.compute's bits and quality on each decoded picture,
whole and as the work picture (decode_picture's).

Usage: python -m bench.whole_picture_exact [--json] [FOLDER ...]
(default: every file under /tmp/devset and /tmp/hardset, see ../shared/README.md).

Any difference is a bug: the command exits 1 and names the files.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import imagehash
import numpy as np
import pdqhash
from PIL import Image
from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_bytes

from bench import DEVSET, HARDSET
from bot.config import load_settings
from bot.decoding import decode_picture
from bot.index.batches import hash_item
from bot.index.sources import SourceItem
from bot.index.storage import DatasetEntry
from bot.signals import PDQ, pdq_fast
from bot.whole_picture import library_array

PICTURE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp"}


def pictures(folders: list[Path]) -> list[Path]:
    return sorted(
        path for folder in folders for path in folder.rglob("*") if path.suffix.lower() in PICTURE_SUFFIXES
    )


def compare(files: list[Path]) -> dict[str, object]:
    settings = load_settings(with_deployment_files=False)
    counts = {"files": len(files), "whole_equal": 0, "kernel_equal": 0, "work_equal": 0, "refused": 0}
    differ: list[str] = []
    seconds = {"library": 0.0, "fast": 0.0}
    for path in files:
        data = path.read_bytes()
        _, hashes, _ = hash_item(SourceItem(DatasetEntry(path.name), picture=data), settings)
        if hashes is None or hashes.whole is None:
            counts["refused"] += 1  # by decode_picture: too small, too thin, ...
            continue
        got, work = hashes.whole, decode_picture(data, settings.decoding).image
        expected_hex, expected_quality = pdq_from_bytes(data)
        expected_phash = int(str(imagehash.phash(Image.open(path))), 16)
        if (PDQ.to_hex(got.pdq), got.quality, got.phash) == (expected_hex, expected_quality, expected_phash):
            counts["whole_equal"] += 1
        else:
            differ.append(f"{path}: whole picture")
        pixels = library_array(Image.open(io.BytesIO(data)))
        started = time.process_time()
        library = pdqhash.compute(pixels)
        seconds["library"] += time.process_time() - started
        started = time.process_time()
        fast = pdq_fast.compute(pixels)
        seconds["fast"] += time.process_time() - started
        if np.array_equal(library[0], fast[0]) and library[1] == fast[1]:
            counts["kernel_equal"] += 1
        else:
            differ.append(f"{path}: pdq_fast on the full-size picture")
        work_pixels = np.ascontiguousarray(np.asarray(work))
        library, fast = pdqhash.compute(work_pixels), pdq_fast.compute(work_pixels)
        if np.array_equal(library[0], fast[0]) and library[1] == fast[1]:
            counts["work_equal"] += 1
        else:
            differ.append(f"{path}: pdq_fast on the work picture")
    compared = counts["files"] - counts["refused"]
    return {
        **counts,
        "compared": compared,
        "differ": differ,
        "full_size_pdq_ms": {name: 1000 * value / max(compared, 1) for name, value in seconds.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path, default=[DEVSET, HARDSET])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    missing = [folder for folder in args.folders if not folder.is_dir()]
    if missing:
        sys.exit(f"missing {', '.join(map(str, missing))}: build the dev sets first (../shared/README.md)")
    pdq_fast.load()
    figures = compare(pictures(args.folders))
    if args.json:
        print(json.dumps(figures, indent=1))
    else:
        timing = figures["full_size_pdq_ms"]
        assert isinstance(timing, dict)
        print(
            f"{figures['compared']} pictures compared ({figures['refused']} refused by decode_picture): "
            f"whole-picture PDQ + quality + pHash equal to python-threatexchange / imagehash: "
            f"{figures['whole_equal']}; pdq_fast equal to pdqhash.compute at full size: "
            f"{figures['kernel_equal']}, on the work picture: {figures['work_equal']}"
        )
        print(
            f"full-size PDQ per picture: pdqhash {timing['library']:.2f} ms, pdq_fast {timing['fast']:.2f} ms"
        )
        for line in figures["differ"]:  # type: ignore[attr-defined]
            print("DIFFERS", line)
    if figures["differ"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
