"""Accuracy of the matcher on both development sets, beside plain 64-bit pHash, and hashing time.

Usage: python -m bench.accuracy [--devset DIR] [--hardset DIR] [--hold 12] [--json]

The plain set (``make_devset.py``: re-encoded, resized, cropped, bannered, turned copies) and the
hard set (``make_hardset.py``: copies cut on one side or tight, turned 3-7 degrees, with a text
bar, a watermark, a page frame, inside a screenshot, mirrored crops, chains of edits, and
composites of 2-4 photographs) are built under /tmp when missing. The protocol is that of
../shared/devset/score.py (same held-back originals, twins, composite rules), run in-process so
both matchers see exactly the same decoded files:

* a positive query is found when its top match (composites holding its own photograph skipped)
  is its original or a twin of it; a wrong match is a positive whose top match is another picture;
* a false match is a negative query (held-back originals and their copies, ``neg/``) matching
  anything but its own twins or a composite that holds its photograph;
* hard set only: each of ``singles/`` (one photograph as a person holds it) must find the
  composite that holds it; each of ``mixed/`` (a person's own before/after picture) must find both
  of its photographs;
* refused: queries turned down as too plain to compare (reported per set: on photographs this
  must stay rare).

The baseline is what most dataset tools ship: imagehash.phash of the whole picture, Hamming
distance <= 6, nothing else, over the same entries and queries.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import imagehash
from PIL import Image

from bench import BASELINE_PHASH_MAX_DISTANCE, DEVSET, HARDSET, REPO
from bot.checking import check_picture
from bot.config import Settings, load_settings
from bot.decoding import ImageRejectedError, decode_picture
from bot.hashing import hash_entry, hash_query
from bot.index.build import build_index
from bot.index.search import HashIndex

SHARED = REPO.parent / "shared"
MAKERS = {"devset": "make_devset.py", "hardset": "make_hardset.py"}


def ensure_set(folder: Path, maker: str) -> None:
    if (folder / "truth.json").exists():
        return
    print(f"building {folder} with {maker} (~20 s)", file=sys.stderr)
    subprocess.run([sys.executable, str(SHARED / "devset" / maker), str(folder)], check=True)


def stem(name: str) -> str:
    return name.rsplit(".", 1)[0]


@dataclass
class DevSet:
    """One development set as score.py reads it: what is indexed, what is asked, what is true."""

    folder: Path
    hold: int
    truth: dict[str, str | None] = field(init=False)
    twins: list[list[str]] = field(init=False)
    composites: dict[str, dict[str, Any]] = field(init=False)
    held: set[str] = field(init=False)

    def __post_init__(self) -> None:
        self.truth = json.loads((self.folder / "truth.json").read_text())
        self.twins = json.loads((self.folder / "twins.json").read_text())
        composites_file = self.folder / "composites.json"
        self.composites = (
            json.loads(composites_file.read_text())
            if composites_file.exists()
            else {"members": {}, "singles": {}, "mixed": {}}
        )
        originals = sorted(stem(p.name) for p in (self.folder / "index").iterdir())
        self.held = set(sorted(originals, key=lambda s: hashlib.md5(s.encode()).hexdigest())[: self.hold])

    def same(self, name: str) -> set[str]:
        return next((set(group) for group in self.twins if name in group), {name})

    def entry_folders(self) -> list[Path]:
        folders = [self.folder / "distract"]
        if self.composites["members"]:
            folders.append(self.folder / "composites")
        return folders

    def indexed_originals(self) -> list[Path]:
        return [p for p in sorted((self.folder / "index").iterdir()) if stem(p.name) not in self.held]

    def queries(self) -> list[Path]:
        paths = [p for folder in ("pos", "neg") for p in sorted((self.folder / folder).iterdir())]
        paths += [self.folder / "singles" / name for name in sorted(self.composites["singles"])]
        paths += [self.folder / "mixed" / name for name in sorted(self.composites["mixed"])]
        return paths

    def score(self, results: dict[str, list[str] | None]) -> dict[str, object]:
        """score.py's figures for one matcher's answers (query name -> matched keys, None: refused)."""
        members, singles, mixed = (self.composites[k] for k in ("members", "singles", "mixed"))
        per: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
        found = wrong = false = positives = negatives = refused = 0
        singles_found = mixed_both = mixed_one = 0
        for name, answer in results.items():
            refused += answer is None
            keys = answer or []
            if name in singles:
                singles_found += singles[name] in keys
                continue
            if name in mixed:
                hits = sum(member in keys for member in mixed[name])
                mixed_one += hits >= 1
                mixed_both += hits == len(mixed[name])
                continue
            original = self.truth[name]
            mine = self.same(original if original is not None else name.rsplit("__", 1)[0])
            keys = [k for k in keys if not any(m in mine for m in members.get(k, ()))]
            if original is not None and original not in self.held:
                positives += 1
                transform = stem(name.rsplit("__", 1)[1])
                per[transform][1] += 1
                if keys and keys[0] in self.same(original):
                    found += 1
                    per[transform][0] += 1
                elif keys:
                    wrong += 1
            else:
                negatives += 1
                false += any(k not in mine for k in keys)
        report: dict[str, object] = {
            "recall": found / positives,
            "per_transform": {k: v[0] / v[1] for k, v in sorted(per.items())},
            "worst_transform": min(v[0] / v[1] for v in per.values()),
            "false_matches": false,
            "negatives": negatives,
            "wrong_matches": wrong,
            "positives": positives,
            "refused_share": refused / len(results),
        }
        if singles:
            report["composites_found"] = singles_found / len(singles)
            report["singles"] = len(singles)
            report["mixed_both_found"] = mixed_both / len(mixed)
            report["mixed_one_found"] = mixed_one / len(mixed)
            report["mixed"] = len(mixed)
        return report


def run_ours(devset: DevSet, settings: Settings) -> tuple[dict[str, list[str] | None], float]:
    """The real index, built and searched by the project's own code; and seconds per query."""
    answers: dict[str, list[str] | None] = {}
    with tempfile.TemporaryDirectory() as work:
        dataset = Path(work) / "dataset"
        dataset.mkdir()
        for path in devset.indexed_originals():
            (dataset / path.name).symlink_to(path)
        index_folder = Path(work) / "index"
        build_index(
            [dataset, *devset.entry_folders()], index_folder, settings, workers=1, show_progress=False
        )
        index = HashIndex(index_folder)
        queries = devset.queries()
        start = time.process_time()
        for query in queries:
            try:
                found = check_picture(query.read_bytes(), index, settings).found
                answers[query.name] = [stem(Path(f.entry.key).name) for f in found]
            except ImageRejectedError:
                answers[query.name] = None
        cpu_per_query = (time.process_time() - start) / len(queries)
    return answers, cpu_per_query


def run_baseline(devset: DevSet) -> dict[str, list[str] | None]:
    """Plain pHash of the whole picture, threshold 6, over the same entries."""
    entries = [*devset.indexed_originals(), *(p for f in devset.entry_folders() for p in sorted(f.iterdir()))]
    entry_hashes = {stem(p.name): imagehash.phash(Image.open(p)) for p in entries}
    answers: dict[str, list[str] | None] = {}
    for query in devset.queries():
        query_hash = imagehash.phash(Image.open(query))
        close = sorted(
            (query_hash - h, k)
            for k, h in entry_hashes.items()
            if query_hash - h <= BASELINE_PHASH_MAX_DISTANCE
        )
        answers[query.name] = [k for _, k in close]
    return answers


def time_hashing(paths: list[Path], settings: Settings) -> dict[str, float]:
    """Median milliseconds per picture: our entry and query hashing, and the plain pHash loop."""
    blobs = [p.read_bytes() for p in paths]

    def median_ms(step: Callable[[bytes], object]) -> float:
        samples = []
        for blob in blobs:
            start = time.perf_counter()
            step(blob)
            samples.append((time.perf_counter() - start) * 1000)
        return round(statistics.median(samples), 2)

    return {
        "baseline_phash_open_ms": median_ms(lambda b: imagehash.phash(Image.open(io.BytesIO(b)))),
        "entry_decode_and_hash_ms": median_ms(
            lambda b: hash_entry(decode_picture(b, settings.decoding).image, settings.hashing)
        ),
        "query_decode_and_hash_ms": median_ms(
            lambda b: hash_query(decode_picture(b, settings.decoding).image, settings.hashing)
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devset", type=Path, default=DEVSET)
    parser.add_argument("--hardset", type=Path, default=HARDSET)
    parser.add_argument("--hold", type=int, default=12)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    settings = load_settings()
    report: dict[str, object] = {}
    for name, folder in (("devset", args.devset), ("hardset", args.hardset)):
        ensure_set(folder, MAKERS[name])
        devset = DevSet(folder, args.hold)
        ours, cpu_per_query = run_ours(devset, settings)
        report[name] = {
            "ours": devset.score(ours),
            "baseline_phash6": devset.score(run_baseline(devset)),
            "check_cpu_s_per_query": round(cpu_per_query, 4),
        }
    report["timing_ms"] = time_hashing(DevSet(args.devset, args.hold).indexed_originals()[:30], settings)
    if args.json:
        print(json.dumps(report))
        return
    print_report(report)


def print_report(report: dict[str, Any]) -> None:
    for name in ("devset", "hardset"):
        ours, base = report[name]["ours"], report[name]["baseline_phash6"]
        print(f"== {name}")
        print(f"{'transformation':16s} {'removal-desk':>13s} {'pHash<=6':>10s}")
        for transform in ours["per_transform"]:
            ours_recall, base_recall = ours["per_transform"][transform], base["per_transform"][transform]
            print(f"{transform:16s} {ours_recall:13.3f} {base_recall:10.3f}")
        print(f"{'ALL (recall)':16s} {ours['recall']:13.3f} {base['recall']:10.3f}")
        print(f"{'worst transform':16s} {ours['worst_transform']:13.3f} {base['worst_transform']:10.3f}")
        for key, total in (("false_matches", "negatives"), ("wrong_matches", "positives")):
            label = key.replace("_", " ")
            print(f"{label:16s} {ours[key]:>9d}/{ours[total]:<3d} {base[key]:>6d}/{base[total]:<3d}")
        if "composites_found" in ours:
            for key in ("composites_found", "mixed_both_found", "mixed_one_found"):
                print(f"{key.replace('_', ' '):16s} {ours[key]:13.3f} {base[key]:10.3f}")
        print(f"{'refused (plain)':16s} {ours['refused_share']:13.3f}")
        print(f"check CPU per query: {report[name]['check_cpu_s_per_query'] * 1000:.0f} ms")
    print("hashing time per picture (median ms, 1024 px JPEG, one core):")
    for key, value in report["timing_ms"].items():
        print(f"  {key:28s} {value:8.2f}")


if __name__ == "__main__":
    main()
