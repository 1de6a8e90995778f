"""URL lists (bot.index.url_lists): reading LAION-style Parquet and CSV/TSV by row range."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bot.index.sources import SourceError
from bot.index.storage import DatasetEntry
from bot.index.url_lists import UrlListColumns, count_url_rows, find_url_columns, is_url_list, iter_url_rows


def laion_table(rows: int) -> pa.Table:
    """LAION's metadata layout: float64 SAMPLE_ID, URL, TEXT and columns this reader ignores."""
    return pa.table(
        {
            "SAMPLE_ID": pa.array([float(1_000_000_000 + n) for n in range(rows)], pa.float64()),
            "URL": [f"https://example.org/{n}.jpg" for n in range(rows)],
            "TEXT": [f"caption {n}" for n in range(rows)],
            "HEIGHT": list(range(rows)),
            "similarity": [0.3] * rows,
        }
    )


def laion_entries(start: int, stop: int) -> list[DatasetEntry]:
    return [
        DatasetEntry(key=str(1_000_000_000 + n), url=f"https://example.org/{n}.jpg", caption=f"caption {n}")
        for n in range(start, stop)
    ]


@pytest.fixture
def laion_parquet(tmp_path: Path) -> Path:
    path = tmp_path / "part-00000.parquet"
    pq.write_table(laion_table(30), path, row_group_size=7)  # groups: 0-6, 7-13, 14-20, 21-27, 28-29
    return path


@pytest.mark.parametrize(("start", "stop"), [(0, 30), (5, 19), (7, 14), (13, 15), (28, 40), (30, 30), (3, 3)])
def test_parquet_rows_are_read_by_range_across_row_groups(laion_parquet: Path, start: int, stop: int) -> None:
    assert list(iter_url_rows(laion_parquet, start, stop)) == laion_entries(start, min(stop, 30))


def test_parquet_reads_only_the_row_groups_it_needs(
    laion_parquet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[list[int]] = []
    real_iter_batches = pq.ParquetFile.iter_batches

    def recording_iter_batches(
        self: pq.ParquetFile, *args: object, **kwargs: object
    ) -> Iterator[pa.RecordBatch]:
        asked.append(list(kwargs["row_groups"]))  # type: ignore[call-overload]
        return real_iter_batches(self, *args, **kwargs)  # type: ignore[arg-type]

    def no_whole_file(*args: object, **kwargs: object) -> None:
        raise AssertionError("the whole file was read")

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", recording_iter_batches)
    monkeypatch.setattr(pq.ParquetFile, "read", no_whole_file)
    monkeypatch.setattr(pq, "read_table", no_whole_file)
    assert list(iter_url_rows(laion_parquet, 12, 16)) == laion_entries(12, 16)
    assert asked == [[1, 2]]


def test_a_laion_parquet_is_a_url_list_and_counted_from_its_footer(laion_parquet: Path) -> None:
    assert is_url_list(laion_parquet)
    assert count_url_rows(laion_parquet) == 30
    assert find_url_columns(pq.read_schema(laion_parquet).names, laion_parquet) == UrlListColumns(
        url="URL", key="SAMPLE_ID", caption="TEXT"
    )


def test_a_parquet_with_hashes_or_without_urls_is_no_url_list(tmp_path: Path) -> None:
    hashes = tmp_path / "hashes.parquet"
    pq.write_table(
        pa.table({"key": ["a"], "url": ["https://x/a.jpg"], "phash": ["00"], "pdq": ["00"]}), hashes
    )
    no_url = tmp_path / "captions.parquet"
    pq.write_table(pa.table({"key": ["a"], "caption": ["c"]}), no_url)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    assert not is_url_list(hashes)
    assert not is_url_list(no_url)
    assert not is_url_list(broken)
    assert not is_url_list(folder)
    assert not is_url_list(tmp_path / "shard.tar")
    with pytest.raises(SourceError, match="no URL column"):
        list(iter_url_rows(no_url, 0, 1))


def test_img2dataset_style_lowercase_columns_and_int64_or_missing_ids(tmp_path: Path) -> None:
    path = tmp_path / "list.parquet"
    table = pa.table(
        {
            "url": ["https://a/1.jpg", None, "https://a/3.jpg"],
            "key": pa.array([17, None, 19], pa.int64()),
            "caption": ["one", "two", None],
        }
    )
    pq.write_table(table, path)
    assert list(iter_url_rows(path, 0, 3)) == [
        DatasetEntry(key="17", url="https://a/1.jpg", caption="one"),
        DatasetEntry(key="1", url=None, caption="two"),  # no id: the row number
        DatasetEntry(key="19", url="https://a/3.jpg", caption=None),
    ]
    only_urls = tmp_path / "urls.parquet"
    pq.write_table(pa.table({"Url": ["https://a/1.jpg", "https://a/2.jpg"]}), only_urls)
    assert list(iter_url_rows(only_urls, 1, 2)) == [DatasetEntry(key="1", url="https://a/2.jpg")]


def test_a_nan_sample_id_falls_back_to_the_row_number(tmp_path: Path) -> None:
    path = tmp_path / "list.parquet"
    pq.write_table(pa.table({"SAMPLE_ID": [5.0, float("nan")], "URL": ["https://a/1", "https://a/2"]}), path)
    assert [entry.key for entry in list(iter_url_rows(path, 0, 2))] == ["5", "1"]


LAION_CSV = (
    "\ufeffSAMPLE_ID,URL,TEXT,WIDTH\n"
    "1000000000.0,https://example.org/0.jpg,caption 0,10\n"
    '1000000001,https://example.org/1.jpg,"a caption, with a comma\nand a line break",10\n'
    "\n"
    '1000000002,https://example.org/2.jpg,"""quoted""",10\n'
    ",https://example.org/3.jpg,,10\n"
    "1000000004,https://example.org/4.jpg,caption 4,10\n"
)
LAION_CSV_ENTRIES = [
    DatasetEntry(key="1000000000", url="https://example.org/0.jpg", caption="caption 0"),
    DatasetEntry(
        key="1000000001", url="https://example.org/1.jpg", caption="a caption, with a comma\nand a line break"
    ),
    DatasetEntry(key="1000000002", url="https://example.org/2.jpg", caption='"quoted"'),
    DatasetEntry(key="3", url="https://example.org/3.jpg", caption=""),
    DatasetEntry(key="1000000004", url="https://example.org/4.jpg", caption="caption 4"),
]


@pytest.fixture
def laion_csv(tmp_path: Path) -> Path:
    path = tmp_path / "list.csv"
    path.write_text(LAION_CSV, encoding="utf-8")
    return path


def test_a_csv_is_read_record_by_record(laion_csv: Path) -> None:
    assert is_url_list(laion_csv)
    assert count_url_rows(laion_csv) == 5
    assert list(iter_url_rows(laion_csv, 0, 5)) == LAION_CSV_ENTRIES
    assert list(iter_url_rows(laion_csv, 1, 3)) == LAION_CSV_ENTRIES[1:3]
    assert list(iter_url_rows(laion_csv, 4, 99)) == LAION_CSV_ENTRIES[4:]


def test_csv_ranges_read_one_after_another_or_out_of_order_agree(laion_csv: Path) -> None:
    in_steps = [
        entry for start in range(0, 6, 2) for entry in list(iter_url_rows(laion_csv, start, start + 2))
    ]
    assert in_steps == LAION_CSV_ENTRIES
    assert list(iter_url_rows(laion_csv, 3, 5)) == LAION_CSV_ENTRIES[3:5]
    assert list(iter_url_rows(laion_csv, 0, 2)) == LAION_CSV_ENTRIES[0:2]  # back to the start
    assert list(iter_url_rows(laion_csv, 2, 3)) == LAION_CSV_ENTRIES[2:3]


def test_a_csv_changed_between_reads_is_read_afresh(laion_csv: Path) -> None:
    assert list(iter_url_rows(laion_csv, 0, 2)) == LAION_CSV_ENTRIES[:2]
    laion_csv.write_text(
        LAION_CSV.replace("SAMPLE_ID,URL", "SAMPLE_ID,EXTRA,URL").replace(",https", ",x,https")
    )
    os.utime(laion_csv, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    assert list(iter_url_rows(laion_csv, 2, 5)) == LAION_CSV_ENTRIES[2:5]


def test_a_tsv_with_img2dataset_columns(tmp_path: Path) -> None:
    path = tmp_path / "list.tsv"
    path.write_text("key\tcaption\turl\nk1\ta, b\thttps://a/1.jpg\nk2\t\thttps://a/2.jpg\n", encoding="utf-8")
    assert is_url_list(path)
    assert list(iter_url_rows(path, 0, 2)) == [
        DatasetEntry(key="k1", url="https://a/1.jpg", caption="a, b"),
        DatasetEntry(key="k2", url="https://a/2.jpg", caption=""),
    ]


def test_a_csv_without_a_url_column_or_empty_is_refused(tmp_path: Path) -> None:
    no_url = tmp_path / "no-url.csv"
    no_url.write_text("key,caption\na,b\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(SourceError, match="no URL column"):
        list(iter_url_rows(no_url, 0, 1))
    with pytest.raises(SourceError, match="empty"):
        count_url_rows(empty)


def test_a_bad_row_range_is_refused(laion_csv: Path) -> None:
    with pytest.raises(ValueError, match="row range"):
        list(iter_url_rows(laion_csv, 3, 2))
