"""bench/hashlist.py at a small size: both searches find the same pairs, the planted ones exactly,
and the MD5 search exactly the planted MD5s."""

from __future__ import annotations

import json

from bench.hashlist import PLANTED_DISTANCES, main


def test_the_bench_finds_the_planted_hashes_both_ways(tmp_path, capsys) -> None:
    code = main(
        [
            "--entries",
            "200000",
            "--list-hashes",
            "40",
            "--baseline-hashes",
            "3",
            "--md5-list-hashes",
            "1000",
            "--data",
            str(tmp_path),
            "--json",
        ]
    )
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert result["same_hits_as_baseline"] is True
    assert result["planted_found_exactly"] is True
    assert result["hits"] == sum(1 for distance in PLANTED_DISTANCES if distance <= 31)
    assert (tmp_path / "whole_pdq.npy").stat().st_size > 200_000 * 32
    assert result["md5_planted_found_exactly"] is True
    assert result["md5_list_hashes"] == 1000
    assert (tmp_path / "md5.npy").stat().st_size > 200_000 * 16
