"""`removals apply` on LAION-sized metadata: rows per second and peak memory, streamed vs loaded.

Usage: python -m bench.apply [--rows 5000000] [--removed 10000] [--json]

Writes a LAION-style Parquet file (SAMPLE_ID, URL, TEXT, HEIGHT, WIDTH, similarity; one LAION-5B
part file holds ~18M rows at ~1.5 GB), a removal list of ``--removed`` of its URLs and keys, and
applies it in a child process that reports its peak resident memory. The baseline, in the same
run, is the obvious script: ``pyarrow.parquet.read_table`` of the whole file, filter, write.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bot.removals.export import export_removal_list
from bot.tickets.models import RemovalRow

_CHILD = """
import sys, time, json
from pathlib import Path
mode, list_path, metadata, out = sys.argv[1:5]
start = time.perf_counter()
if mode == "streamed":
    from bot.removals.apply import apply_removal_list, load_removal_list
    report = apply_removal_list(load_removal_list(Path(list_path)), [Path(metadata)], Path(out))
    dropped = report.to_dict()["dropped"]
else:
    import pyarrow.compute as pc, pyarrow.parquet as pq, pyarrow as pa
    from bot.removals.apply import load_removal_list
    listed = load_removal_list(Path(list_path))
    table = pq.read_table(metadata)
    hit = pc.or_(pc.is_in(table["URL"], value_set=pa.array(list(listed.by_url))),
                 pc.is_in(pc.cast(table["SAMPLE_ID"], pa.string()), value_set=pa.array(list(listed.by_key))))
    Path(out).mkdir(parents=True, exist_ok=True)
    pq.write_table(table.filter(pc.invert(hit)), Path(out) / Path(metadata).name)
    dropped = int(pc.sum(hit).as_py())
seconds = time.perf_counter() - start
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent through fork and exec.
status = Path("/proc/self/status").read_text()
peak = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")) / 1024
print(json.dumps({"seconds": seconds, "peak_rss_mb": peak, "dropped": dropped}))
"""


def make_metadata(path: Path, rows: int) -> None:
    rng = np.random.default_rng(0)
    with pq.ParquetWriter(path, _schema()) as writer:
        for start in range(0, rows, 1_000_000):
            ids = np.arange(start, min(rows, start + 1_000_000), dtype=np.int64)
            writer.write_table(
                pa.table(
                    {
                        "SAMPLE_ID": ids,
                        "URL": [f"https://img.example.org/{i:x}/photo-{i}.jpg" for i in ids.tolist()],
                        "TEXT": [f"a photo of thing number {i} on a table" for i in ids.tolist()],
                        "HEIGHT": rng.integers(256, 2048, len(ids)).astype(np.int32),
                        "WIDTH": rng.integers(256, 2048, len(ids)).astype(np.int32),
                        "similarity": rng.random(len(ids)),
                    },
                    schema=_schema(),
                )
            )


def _schema() -> pa.Schema:
    return pa.schema(
        [
            ("SAMPLE_ID", pa.int64()),
            ("URL", pa.string()),
            ("TEXT", pa.string()),
            ("HEIGHT", pa.int32()),
            ("WIDTH", pa.int32()),
            ("similarity", pa.float64()),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--removed", type=int, default=10_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        metadata = work / "part-00000.parquet"
        make_metadata(metadata, args.rows)
        chosen = np.random.default_rng(1).choice(args.rows, size=args.removed, replace=False).tolist()
        rows = [
            RemovalRow(
                key=str(i) if n % 2 else f"other-{i}",
                url=f"https://img.example.org/{i:x}/photo-{i}.jpg" if n % 2 == 0 else None,
                phash="00" * 8,
                pdq="00" * 32,
                quality=90,
                ticket_id="BENCH1",
                decided_at="2026-11-22T00:00:00.000000Z",
                added_in=1,
            )
            for n, i in enumerate(chosen)
        ]
        export_removal_list(1, rows, work / "removals.parquet", "parquet", hashing={})
        results = {}
        for mode in ("streamed", "read_table"):
            started = time.perf_counter()
            output = subprocess.run(
                [sys.executable, "-c", _CHILD, mode, str(work / "removals.parquet"),
                 str(metadata), str(work / f"out-{mode}")],
                check=True, capture_output=True, text=True,
            ).stdout  # fmt: skip
            result = json.loads(output)
            result["rows_per_s"] = args.rows / result["seconds"]
            result["wall_s"] = time.perf_counter() - started
            results[mode] = result
        file_mb = metadata.stat().st_size / 2**20
    document = {"rows": args.rows, "removed": args.removed, "file_mb": file_mb, **results}
    if args.json:
        print(json.dumps(document))
        return
    print(f"{args.rows:,} rows ({file_mb:.0f} MB Parquet), {args.removed:,} listed entries")
    for mode, result in results.items():
        print(
            f"  {mode:12} {result['rows_per_s'] / 1e6:6.2f} M rows/s"
            f"  peak RSS {result['peak_rss_mb']:7.0f} MB  dropped {result['dropped']:,}"
        )


if __name__ == "__main__":
    main()
