"""Applying a removal list to LAION-style metadata (bot.removals.apply).

Proves, on multi-row-group Parquet files built here (LAION with an int64 SAMPLE_ID, LAION with a
float64 SAMPLE_ID, img2dataset's lowercase ``url``/``key``): the cleaned copies keep the schema
(column order, types, metadata) and exactly the rows not dropped, in order; a row is dropped when
its URL or its id is listed, and the summary names every dropped row with its reason and ticket;
results do not depend on the batch size, and files are streamed, never read whole; a list is read
alike from each export format; and bad input is refused with RemovalApplyError.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bot.index.url_lists import find_url_columns
from bot.removals import apply as apply_module
from bot.removals.apply import (
    SUMMARY_NAME,
    LoadedRemovalList,
    RemovalApplyError,
    apply_removal_list,
    load_removal_list,
)
from bot.removals.export import export_removal_list
from bot.tickets.models import RemovalRow

LAION_ROWS = 5_000
FLOAT_ROWS = 3_000
IMG2DATASET_ROWS = 2_000
LIST_VERSION = 7


def laion_url(i: int) -> str:
    return f"https://img{i % 7}.example.com/a/{i}.jpg"


def float_url(i: int) -> str:
    return f"https://cdn.example.org/b/{i}.png"


def img2dataset_url(i: int) -> str:
    return f"https://pics.example.net/c/{i}.webp"


def laion_id(i: int) -> int:
    return 10_000 + 3 * i


@dataclass(frozen=True)
class Metadata:
    folder: Path
    laion: Path
    laion_float: Path
    img2dataset: Path

    @property
    def files(self) -> list[Path]:
        return [self.laion, self.laion_float, self.img2dataset]


def write_laion(path: Path) -> None:
    """int64 SAMPLE_ID, a few missing URLs, 5 row groups, schema metadata of its own."""
    rng = np.random.default_rng(0)
    n = LAION_ROWS
    urls = [None if i % 997 == 500 else laion_url(i) for i in range(n)]
    table = pa.table(
        {
            "SAMPLE_ID": pa.array([laion_id(i) for i in range(n)], pa.int64()),
            "URL": pa.array(urls, pa.string()),
            "TEXT": pa.array([f"a photo, number {i}" for i in range(n)], pa.string()),
            "HEIGHT": pa.array(rng.integers(64, 2048, n), pa.int32()),
            "WIDTH": pa.array(rng.integers(64, 2048, n), pa.int64()),
            "similarity": pa.array(rng.random(n), pa.float64()),
            "NSFW": pa.array([("UNLIKELY", "UNSURE", "NSFW", None)[i % 4] for i in range(n)], pa.string()),
        }
    ).replace_schema_metadata({b"origin": b"laion-test"})
    pq.write_table(table, path, row_group_size=1_000)


def write_laion_float(path: Path) -> None:
    """SAMPLE_ID as float64 (as some LAION releases ship it), a few missing ids, 5 row groups."""
    rng = np.random.default_rng(1)
    n = FLOAT_ROWS
    ids = [None if i % 1_000 == 999 else float(50_000 + i) for i in range(n)]
    table = pa.table(
        {
            "SAMPLE_ID": pa.array(ids, pa.float64()),
            "URL": pa.array([float_url(i) for i in range(n)], pa.string()),
            "TEXT": pa.array([f"caption {i}" for i in range(n)], pa.string()),
            "HEIGHT": pa.array(rng.integers(64, 2048, n), pa.int64()),
            "WIDTH": pa.array(rng.integers(64, 2048, n), pa.int64()),
            "similarity": pa.array(rng.random(n), pa.float32()),
            "NSFW": pa.array(["UNLIKELY"] * n, pa.string()),
        }
    )
    pq.write_table(table, path, row_group_size=700)


def write_img2dataset(path: Path) -> None:
    """img2dataset's lowercase columns, ``key`` not first; one row repeats a LAION URL."""
    n = IMG2DATASET_ROWS
    urls = [laion_url(17) if i == 300 else img2dataset_url(i) for i in range(n)]
    table = pa.table(
        {
            "url": pa.array(urls, pa.string()),
            "caption": pa.array([f"c{i}" for i in range(n)], pa.string()),
            "key": pa.array([f"{i:09d}" for i in range(n)], pa.string()),
            "status": pa.array(["success"] * n, pa.string()),
            "width": pa.array([256] * n, pa.int32()),
        }
    )
    pq.write_table(table, path, row_group_size=512)


@pytest.fixture(scope="module")
def metadata(tmp_path_factory: pytest.TempPathFactory) -> Metadata:
    folder = tmp_path_factory.mktemp("metadata")
    files = Metadata(
        folder, folder / "part-00000.parquet", folder / "part-00001.parquet", folder / "i2d.parquet"
    )
    write_laion(files.laion)
    write_laion_float(files.laion_float)
    write_img2dataset(files.img2dataset)
    return files


def listed(number: int, key: str, url: str | None) -> RemovalRow:
    return RemovalRow(
        key=key,
        url=url,
        phash=f"{number:016x}",
        pdq=f"{number:064x}",
        quality=80,
        ticket_id=f"TKT{number:03d}",
        decided_at="2024-06-01T12:00:00.000000Z",
        added_in=1 + number % LIST_VERSION,
    )


def list_rows() -> list[RemovalRow]:
    rows: list[tuple[str, str | None]] = []
    # LAION (int ids): URL and id listed / id listed, picture moved to another URL / URL listed, other key
    rows += [(str(laion_id(i)), laion_url(i)) for i in (0, 17, 999, 1_000, 2_500, 4_999)]
    rows += [(str(laion_id(i)), f"https://moved.example/{i}.jpg") for i in (5, 1_234)]
    rows += [(f"crawl-{i}", laion_url(i)) for i in (42, 3_001)]
    # LAION (float ids): ids listed as digits, and one URL
    rows += [(str(50_000 + i), None) for i in (3, 1_500, 2_998)]
    rows += [("crawl-float", float_url(10))]
    # img2dataset keys and URLs
    rows += [(f"{i:09d}", img2dataset_url(i)) for i in (0, 7, 1_999)]
    rows += [(f"{100:09d}", None), ("crawl-i2d", img2dataset_url(200))]
    # on the list, in no file
    rows += [("999999999999", "https://nowhere.example/x.jpg")]
    return [listed(number, key, url) for number, (key, url) in enumerate(rows)]


@pytest.fixture(scope="module")
def removal_list(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("list") / "removals.parquet"
    export_removal_list(LIST_VERSION, list_rows(), out, "parquet", hashing={})
    return out


def as_key(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def expected_result(
    source: Path, loaded: LoadedRemovalList, match: Sequence[str] = ("url", "key")
) -> tuple[pa.Table, list[dict[str, Any]]]:
    """The plain rule, row by row: the kept table and the dropped rows as the summary lists them."""
    table = pq.ParquetFile(source).read()
    url_column = next(name for name in ("URL", "url") if name in table.column_names)
    key_column = next(name for name in ("SAMPLE_ID", "key") if name in table.column_names)
    keep, dropped = [], []
    for number, row in enumerate(table.to_pylist()):
        url, key = row[url_column], as_key(row[key_column])
        reasons = []
        if "url" in match and url in loaded.by_url:
            reasons.append("url")
        if "key" in match and key in loaded.by_key:
            reasons.append("key")
        keep.append(not reasons)
        if reasons:
            ticket = loaded.by_url[url] if "url" in reasons else loaded.by_key[key]
            dropped.append(
                {"file": source.name, "row": number, "key": key, "url": url, "reason": "+".join(reasons),
                 "ticket_id": ticket}
            )  # fmt: skip
    return table.filter(pa.array(keep)), dropped


def read_whole(path: Path) -> pa.Table:
    return pq.ParquetFile(path).read()


# --- applying -----------------------------------------------------------------------------------


def test_cleaned_copies_keep_the_schema_and_every_row_not_listed(
    metadata: Metadata, removal_list: Path, tmp_path: Path
):
    loaded = load_removal_list(removal_list)
    out = tmp_path / "clean"

    report = apply_removal_list(loaded, metadata.files, out)

    assert sorted(path.name for path in out.iterdir()) == sorted(
        [*(path.name for path in metadata.files), SUMMARY_NAME]
    )  # no temporary file left behind
    all_dropped: list[dict[str, Any]] = []
    for source, file_report in zip(metadata.files, report.files, strict=True):
        expected_table, expected_dropped = expected_result(source, loaded)
        output = out / source.name
        assert pq.read_schema(output).equals(pq.read_schema(source), check_metadata=True)
        assert read_whole(output).equals(expected_table)
        reasons = Counter(row["reason"] for row in expected_dropped)
        assert file_report.to_dict() == {
            "source": str(source),
            "output": str(output),
            "rows": read_whole(source).num_rows,
            "kept": expected_table.num_rows,
            "dropped": len(expected_dropped),
            "dropped_by_reason": dict(sorted(reasons.items())),
        }
        all_dropped += expected_dropped
    assert report.dropped_rows == all_dropped
    assert report.list_version == LIST_VERSION
    assert report.list_path == str(removal_list)
    summary = json.loads((out / SUMMARY_NAME).read_text(encoding="utf-8"))
    assert summary == report.to_dict()
    assert (summary["rows"], summary["kept"], summary["dropped"]) == (
        LAION_ROWS + FLOAT_ROWS + IMG2DATASET_ROWS,
        LAION_ROWS + FLOAT_ROWS + IMG2DATASET_ROWS - len(all_dropped),
        len(all_dropped),
    )


def test_the_right_rows_are_dropped_for_the_right_reason(
    metadata: Metadata, removal_list: Path, tmp_path: Path
):
    """The same facts as above, stated by hand for the rows the list was built from."""
    report = apply_removal_list(load_removal_list(removal_list), metadata.files, tmp_path / "clean")

    laion, laion_float, img2dataset = (f.to_dict() for f in report.files)
    assert laion["dropped_by_reason"] == {"key": 2, "url": 2, "url+key": 6}
    assert (laion["rows"], laion["kept"]) == (LAION_ROWS, LAION_ROWS - 10)
    assert laion_float["dropped_by_reason"] == {"key": 3, "url": 1}
    assert img2dataset["dropped_by_reason"] == {"key": 1, "url": 2, "url+key": 3}
    by_place = {(row["file"], row["row"]): row for row in report.dropped_rows}
    tickets = {(row.key, row.url): row.ticket_id for row in list_rows()}
    assert by_place[("part-00000.parquet", 5)] == {
        "file": "part-00000.parquet", "row": 5, "key": str(laion_id(5)), "url": laion_url(5),
        "reason": "key", "ticket_id": tickets[(str(laion_id(5)), "https://moved.example/5.jpg")],
    }  # fmt: skip
    assert by_place[("part-00000.parquet", 4_999)]["reason"] == "url+key"
    assert by_place[("part-00000.parquet", 42)]["ticket_id"] == tickets[("crawl-42", laion_url(42))]
    # float ids are matched (and reported) as their digits, without ".0"
    assert by_place[("part-00001.parquet", 1_500)]["key"] == "51500"
    assert by_place[("part-00001.parquet", 2_998)]["reason"] == "key"
    # the LAION URL repeated in the img2dataset file is dropped there too, with the same ticket
    assert by_place[("i2d.parquet", 300)]["ticket_id"] == tickets[(str(laion_id(17)), laion_url(17))]
    assert by_place[("i2d.parquet", 100)]["reason"] == "key"
    kept = read_whole(tmp_path / "clean" / "part-00000.parquet")
    assert laion_id(5) not in kept.column("SAMPLE_ID").to_pylist()
    assert laion_id(6) in kept.column("SAMPLE_ID").to_pylist()
    assert kept.column("URL").null_count == read_whole(metadata.laion).column("URL").null_count
    kept_float = read_whole(tmp_path / "clean" / "part-00001.parquet")
    assert kept_float.column("SAMPLE_ID").null_count == 3  # rows without an id are kept


def test_matching_by_url_only_ignores_listed_keys(metadata: Metadata, removal_list: Path, tmp_path: Path):
    loaded = load_removal_list(removal_list)

    report = apply_removal_list(loaded, metadata.files, tmp_path / "clean", match=("url",))

    assert {row["reason"] for row in report.dropped_rows} == {"url"}
    assert report.files[1].to_dict()["dropped_by_reason"] == {"url": 1}  # the float ids are not used
    for source in metadata.files:
        expected_table, expected_dropped = expected_result(source, loaded, match=("url",))
        assert read_whole(tmp_path / "clean" / source.name).equals(expected_table)
        got = [row for row in report.dropped_rows if row["file"] == source.name]
        assert got == expected_dropped  # the key still names each dropped row, though unmatched
    assert ("part-00000.parquet", 5) not in {(r["file"], r["row"]) for r in report.dropped_rows}


def test_matching_by_key_only_ignores_listed_urls(metadata: Metadata, removal_list: Path, tmp_path: Path):
    loaded = load_removal_list(removal_list)

    report = apply_removal_list(loaded, metadata.files, tmp_path / "clean", match=("key",))

    assert {row["reason"] for row in report.dropped_rows} == {"key"}
    for source in metadata.files:
        expected_table, _ = expected_result(source, loaded, match=("key",))
        assert read_whole(tmp_path / "clean" / source.name).equals(expected_table)
    assert report.files[0].to_dict()["dropped_by_reason"] == {"key": 8}


def test_an_empty_list_copies_every_row(metadata: Metadata, tmp_path: Path):
    export_removal_list(0, [], tmp_path / "empty.csv", "csv", hashing={})

    report = apply_removal_list(
        load_removal_list(tmp_path / "empty.csv"), [metadata.laion], tmp_path / "clean"
    )

    assert report.dropped_rows == []
    assert report.to_dict()["kept"] == LAION_ROWS
    assert read_whole(tmp_path / "clean" / metadata.laion.name).equals(read_whole(metadata.laion))


# --- streaming ----------------------------------------------------------------------------------


def test_small_batches_give_the_same_result_and_nothing_is_read_whole(
    metadata: Metadata, removal_list: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    default = apply_removal_list(load_removal_list(removal_list), metadata.files, tmp_path / "default")

    def read_whole_file(*args: object, **kwargs: object) -> None:
        raise AssertionError("a metadata file or the list was read whole")

    batch_sizes: list[int | None] = []
    iter_batches = pq.ParquetFile.iter_batches

    def spy(self: pq.ParquetFile, *args: Any, **kwargs: Any) -> Any:
        batch_sizes.append(kwargs.get("batch_size"))
        return iter_batches(self, *args, **kwargs)

    monkeypatch.setattr(apply_module, "_BATCH_ROWS", 100)
    monkeypatch.setattr(pq, "read_table", read_whole_file)
    monkeypatch.setattr(pq.ParquetFile, "read", read_whole_file)
    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    small = apply_removal_list(load_removal_list(removal_list), metadata.files, tmp_path / "small")
    monkeypatch.undo()

    assert batch_sizes == [100] * 4  # the list, then each metadata file
    assert small.dropped_rows == default.dropped_rows
    assert [f.to_dict() | {"output": ""} for f in small.files] == [
        f.to_dict() | {"output": ""} for f in default.files
    ]
    for source in metadata.files:
        assert read_whole(tmp_path / "small" / source.name).equals(
            read_whole(tmp_path / "default" / source.name)
        )
        written = pq.ParquetFile(tmp_path / "small" / source.name).metadata
        groups = [written.row_group(i).num_rows for i in range(written.num_row_groups)]
        assert max(groups) <= 100  # written batch by batch as well
        assert sum(groups) == read_whole(tmp_path / "default" / source.name).num_rows


# --- reading a list -----------------------------------------------------------------------------


@pytest.mark.parametrize(("suffix", "kind"), [("csv", "csv"), ("jsonl", "jsonl"), ("ndjson", "jsonl")])
def test_every_export_format_loads_alike(tmp_path: Path, removal_list: Path, suffix: str, kind: str):
    reference = load_removal_list(removal_list)
    path = tmp_path / f"removals.{suffix}"
    export_removal_list(LIST_VERSION, list_rows(), path, kind, hashing={})

    loaded = load_removal_list(path)

    assert loaded.path == path
    assert (loaded.version, loaded.by_url, loaded.by_key) == (
        LIST_VERSION,
        reference.by_url,
        reference.by_key,
    )
    assert reference.by_key[f"{100:09d}"] == "TKT017"
    assert "https://nowhere.example/x.jpg" in reference.by_url
    assert len(reference.by_key) == len(list_rows())
    assert len(reference.by_url) == len([row for row in list_rows() if row.url])


@pytest.mark.parametrize("kind", ["parquet", "csv", "jsonl"])
def test_the_version_comes_from_the_sidecar(tmp_path: Path, kind: str):
    path = tmp_path / f"removals.{kind}"
    export_removal_list(12, list_rows()[:3], path, kind, hashing={})
    assert load_removal_list(path).version == 12

    path.with_name(path.name + ".meta.json").unlink()

    loaded = load_removal_list(path)
    assert loaded.version is None
    assert len(loaded.by_key) == 3


# --- refusals -----------------------------------------------------------------------------------


def test_an_output_that_would_overwrite_its_input_is_refused(
    metadata: Metadata, removal_list: Path, tmp_path: Path
):
    source = tmp_path / "meta" / "part.parquet"
    source.parent.mkdir()
    source.write_bytes(metadata.laion.read_bytes())
    before = source.read_bytes()
    loaded = load_removal_list(removal_list)

    for out in (source.parent, tmp_path / "meta" / "sub" / ".."):
        with pytest.raises(RemovalApplyError, match="overwrite its input"):
            apply_removal_list(loaded, [source], out)

    assert source.read_bytes() == before
    assert not (source.parent / SUMMARY_NAME).exists()


def test_two_metadata_files_of_one_name_are_refused(metadata: Metadata, removal_list: Path, tmp_path: Path):
    other = tmp_path / "other" / metadata.laion.name
    other.parent.mkdir()
    other.write_bytes(metadata.laion.read_bytes())

    with pytest.raises(RemovalApplyError, match="share a name"):
        apply_removal_list(load_removal_list(removal_list), [metadata.laion, other], tmp_path / "clean")


def test_metadata_without_url_or_id_column_is_refused(removal_list: Path, tmp_path: Path):
    source = tmp_path / "captions.parquet"
    pq.write_table(pa.table({"TEXT": ["a", "b"], "HEIGHT": [1, 2]}), source)

    with pytest.raises(RemovalApplyError, match="neither a URL column") as refused:
        apply_removal_list(load_removal_list(removal_list), [source], tmp_path / "clean")
    assert str(source) in str(refused.value)
    assert not (tmp_path / "clean" / source.name).exists()


def test_matching_by_url_a_file_without_urls_is_refused(removal_list: Path, tmp_path: Path):
    source = tmp_path / "ids.parquet"
    pq.write_table(pa.table({"SAMPLE_ID": [1, 2]}), source)

    with pytest.raises(RemovalApplyError, match="nothing to match"):
        apply_removal_list(load_removal_list(removal_list), [source], tmp_path / "clean", match=("url",))


@pytest.mark.parametrize("content", [b"SAMPLE_ID,URL\n1,https://x\n", b"", None])
def test_metadata_that_is_not_parquet_is_refused(removal_list: Path, tmp_path: Path, content: bytes | None):
    source = tmp_path / "part.parquet"
    if content is not None:
        source.write_bytes(content)

    with pytest.raises(RemovalApplyError, match="cannot read metadata"):
        apply_removal_list(load_removal_list(removal_list), [source], tmp_path / "clean")
    assert not (tmp_path / "clean" / SUMMARY_NAME).exists()


def test_a_list_of_an_unknown_kind_is_refused(tmp_path: Path):
    path = tmp_path / "removals.txt"
    path.write_text("key,url,ticket_id\nk,https://x,T1\n")

    with pytest.raises(RemovalApplyError, match=r"\.parquet, \.csv or \.jsonl"):
        load_removal_list(path)


def write_list(path: Path, records: list[dict[str, Any]]) -> None:
    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(records), path)
    elif path.suffix == ".csv":
        names = list(records[0])
        body = [",".join(str(record[name]) for name in names) for record in records]
        path.write_text("\n".join([",".join(names), *body]) + "\n")
    else:
        path.write_text("".join(json.dumps(record) + "\n" for record in records))


@pytest.mark.parametrize("suffix", ["parquet", "csv", "jsonl"])
@pytest.mark.parametrize(
    "record",
    [
        {"url": "https://x.example/1.jpg"},
        {"key": "1", "url": "https://x.example/1.jpg"},
        {"ticket_id": "TKT001", "url": "https://x.example/1.jpg"},
    ],
)
def test_a_list_whose_rows_lack_key_or_ticket_is_refused(tmp_path: Path, suffix: str, record: dict[str, str]):
    path = tmp_path / f"removals.{suffix}"
    write_list(path, [record])

    with pytest.raises(RemovalApplyError, match="not a removal list"):
        load_removal_list(path)


def test_a_list_that_cannot_be_read_is_refused(tmp_path: Path):
    broken = tmp_path / "removals.parquet"
    broken.write_bytes(b"PAR1 not really")
    with pytest.raises(RemovalApplyError, match="cannot read removal list"):
        load_removal_list(broken)
    with pytest.raises(RemovalApplyError, match="cannot read removal list"):
        load_removal_list(tmp_path / "missing.csv")

    lines = tmp_path / "removals.jsonl"
    lines.write_text('{"key": "1", "ticket_id": "T"}\n{not json\n')
    with pytest.raises(RemovalApplyError, match="line 2 is not JSON"):
        load_removal_list(lines)


def _parquet_named_csv(tmp_path: Path) -> Path:
    """`removals export --format parquet --out removals.csv` writes exactly this."""
    path = tmp_path / "removals.csv"
    export_removal_list(1, list_rows()[:2], path, "parquet", hashing={})
    return path


def _json_line_not_an_object(tmp_path: Path) -> Path:
    path = tmp_path / "removals.jsonl"
    path.write_text('{"key": "1", "ticket_id": "T"}\n42\n')
    return path


def _broken_sidecar(tmp_path: Path) -> Path:
    path = tmp_path / "removals.csv"
    export_removal_list(1, list_rows()[:2], path, "csv", hashing={})
    path.with_name(path.name + ".meta.json").write_text("{half a json")
    return path


@pytest.mark.parametrize("make", [_parquet_named_csv, _json_line_not_an_object, _broken_sidecar])
def test_a_list_that_cannot_be_used_is_refused_with_its_name(tmp_path: Path, make: Any):
    path = make(tmp_path)

    with pytest.raises(RemovalApplyError) as refused:
        load_removal_list(path)
    assert str(path) in str(refused.value)


def test_metadata_corrupt_inside_is_refused_and_leaves_no_temporary_file(removal_list: Path, tmp_path: Path):
    source = tmp_path / "part.parquet"
    table = pa.table(
        {"SAMPLE_ID": pa.array(range(20_000), pa.int64()), "URL": [f"u{i}" for i in range(20_000)]}
    )
    pq.write_table(table, source, compression="snappy")
    damaged = bytearray(source.read_bytes())
    damaged[200:5_000] = b"\xff" * 4_800  # the first data pages; the footer stays readable
    source.write_bytes(bytes(damaged))
    assert pq.ParquetFile(source).metadata.num_rows == 20_000

    try:
        with pytest.raises(RemovalApplyError, match=r"part\.parquet"):
            apply_removal_list(load_removal_list(removal_list), [source], tmp_path / "clean")
    finally:
        assert not list((tmp_path / "clean").glob("*.tmp"))


def test_a_file_with_both_key_and_sample_id_is_matched_on_the_column_the_index_took_its_keys_from(
    tmp_path: Path,
):
    """img2dataset's output keeps LAION's SAMPLE_ID beside its own key: the index's entries were
    keyed by the column find_url_columns picks, so the removal list must find rows by that one."""
    names = ["SAMPLE_ID", "key", "url"]
    indexed_by = find_url_columns(names, tmp_path / "list.parquet").key
    assert indexed_by == "key"
    source = tmp_path / "meta" / "part.parquet"
    source.parent.mkdir()
    pq.write_table(
        pa.table({"SAMPLE_ID": [111.0, 222.0], "key": ["000000001", "000000002"], "url": ["a", "b"]}),
        source,
    )
    listed = tmp_path / "removals.jsonl"
    write_list(listed, [{"key": "000000002", "ticket_id": "TKT001", "url": None}])

    report = apply_removal_list(load_removal_list(listed), [source], tmp_path / "clean", match=("key",))

    assert [(row["row"], row["key"]) for row in report.dropped_rows] == [(1, "000000002")]
    assert read_whole(tmp_path / "clean" / source.name).column("key").to_pylist() == ["000000001"]
