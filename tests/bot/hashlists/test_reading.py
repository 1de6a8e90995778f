"""Reading partner hash lists (bot.hashlists.reading): every format the field writes, each bad line
counted under its reason with its line number, types named or told by length.

Hashes are made up per line (sha256 of a seed), so a test's expected entries come from the lines it
wrote, never from the reader.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from bot.hashlists.reading import ListEntry, ListFormatError, read_list
from bot.hashlists.signals import EMPTY, MALFORMED, NOT_HEX, NOT_IN_INDEX, UNKNOWN_TYPE, WRONG_LENGTH

INDEX_KINDS = frozenset({"pdq", "phash"})  # what today's index carries: no MD5


def hexes(seed: str, digits: int) -> str:
    return (hashlib.sha256(seed.encode()).hexdigest() * 2)[:digits]


PDQ1, PDQ2 = hexes("pdq-1", 64), hexes("pdq-2", 64)
PHASH1 = hexes("phash-1", 16)
MD5 = hexes("md5-1", 32)


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def entries(
    path: Path, kinds: frozenset[str] = INDEX_KINDS, kind: str = "auto"
) -> list[tuple[int, str, str]]:
    return [(e.line, e.signal, e.hash) for e in read_list(path, kinds, kind).entries]


def test_te_text_lines_named_as_the_library_names_them(tmp_path: Path) -> None:
    """`pdq HASH` (LocalFileSignalExchangeAPI), `HASH_PDQ HASH` (the ThreatExchange indicator type),
    and what `threatexchange dataset -P` prints after the hash (collab, metadata) ignored."""
    path = write(
        tmp_path,
        "list.txt",
        f"pdq {PDQ1}\nHASH_PDQ {PDQ2.upper()}\n\nphash {PHASH1} 'Sample Collab' FetchedSignalMetadata()\n",
    )
    read = read_list(path, INDEX_KINDS)
    assert read.format == "te"
    assert [(e.line, e.signal, e.hash) for e in read.entries] == [
        (1, "pdq", PDQ1),
        (2, "pdq", PDQ2),  # upper case normalised to lower-case hex
        (4, "phash", PHASH1),
    ]
    assert read.bad == {}
    assert read.counts() == {"pdq": 2, "phash": 1}


def test_bare_hashes_are_typed_by_their_length(tmp_path: Path) -> None:
    """As `threatexchange match --hashes` takes them: one hash per line, no type."""
    path = write(tmp_path, "hashes.te", f"{PDQ1}\n{PHASH1}\n{MD5}\n")
    read = read_list(path, INDEX_KINDS | {"md5"})
    assert [(e.signal, e.hash) for e in read.entries] == [("pdq", PDQ1), ("phash", PHASH1), ("md5", MD5)]


def test_the_cli_state_file_takes_its_type_from_its_name(tmp_path: Path) -> None:
    """python-threatexchange's CLI keeps `simple.HASH_PDQ.te`: CSV rows, the indicator first."""
    path = write(tmp_path, "simple.HASH_PDQ.te", f'{PDQ1},1234,2024-01-01,"tag1,tag2"\n{PDQ2},99,,\n')
    assert entries(path, kind="te") == [(1, "pdq", PDQ1), (2, "pdq", PDQ2)]


def test_csv_with_every_optional_column(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "list.csv",
        f"id,hash,signal_type,category,source\ne-1,{PDQ1},pdq,csam,ncmec\ne-2,{PHASH1},phash,ncii,stopncii\n",
    )
    read = read_list(path, INDEX_KINDS)
    assert read.format == "csv"
    assert read.entries == [
        ListEntry(2, "pdq", PDQ1, "e-1", "csam", "ncmec"),
        ListEntry(3, "phash", PHASH1, "e-2", "ncii", "stopncii"),
    ]


def test_csv_with_only_a_hash_column_is_typed_by_length(tmp_path: Path) -> None:
    path = write(tmp_path, "list.csv", f"hash\n{PDQ1}\n{PHASH1}\n")
    assert read_list(path, INDEX_KINDS).entries == [
        ListEntry(2, "pdq", PDQ1),
        ListEntry(3, "phash", PHASH1),
    ]


def test_tsv_with_a_type_column_called_type(tmp_path: Path) -> None:
    path = write(tmp_path, "list.tsv", f"Hash\tType\tCategory\n{PDQ1}\tPDQ\tterror\n{PHASH1}\t\t\n")
    read = read_list(path, INDEX_KINDS)
    assert read.format == "tsv"
    assert read.entries == [ListEntry(2, "pdq", PDQ1, None, "terror"), ListEntry(3, "phash", PHASH1)]


def test_the_csv_threatexchange_dataset_prints_is_read_by_its_header(tmp_path: Path) -> None:
    """`threatexchange dataset -P --csv`: signal_type, signal_str, collab, category, tags; found by
    its header even with a .txt name."""
    path = write(
        tmp_path,
        "dataset.txt",
        "signal_type,signal_str,collab,category,tags\n"
        f"pdq,{PDQ1},Sample Collab,POSITIVE_CLASS,a b\n"
        f"video_md5,{MD5},Sample Collab,POSITIVE_CLASS,\n",
    )
    read = read_list(path, INDEX_KINDS | {"md5"})
    assert read.format == "csv"
    assert read.entries == [
        ListEntry(2, "pdq", PDQ1, None, "POSITIVE_CLASS", "Sample Collab"),
        ListEntry(3, "md5", MD5, None, "POSITIVE_CLASS", "Sample Collab"),
    ]


def test_each_bad_line_is_counted_under_its_reason_with_its_line_number(tmp_path: Path) -> None:
    lines = [
        f"pdq {PDQ1}",  # 1 good
        f"pdq {PDQ1[:-1]}g",  # 2 not hex
        f"pdq {PDQ1[:-2]}",  # 3 wrong length for PDQ
        f"phash {PDQ1}",  # 4 a PDQ's length named pHash
        f"sha1 {hexes('x', 40)}",  # 5 a type nobody matches
        f"video_md5 {MD5}",  # 6 MD5: the index has none
        "pdq",  # 7 a type and no hash
        f"{hexes('y', 40)}",  # 8 a bare hash of no known length
        "",  # 9 blank: skipped, not a bad line
        f"phash {PHASH1}",  # 10 good
    ]
    read = read_list(write(tmp_path, "list.txt", "\n".join(lines) + "\n"), INDEX_KINDS)
    assert [(e.line, e.signal) for e in read.entries] == [(1, "pdq"), (10, "phash")]
    assert read.bad == {
        NOT_HEX: [2],
        WRONG_LENGTH: [3, 4, 8],
        UNKNOWN_TYPE: [5],
        NOT_IN_INDEX: [6],
        EMPTY: [7],
    }
    assert read.bad_lines == 7


def test_md5_is_taken_when_the_index_can_match_it(tmp_path: Path) -> None:
    path = write(tmp_path, "list.txt", f"md5 {MD5}\n")
    assert read_list(path, INDEX_KINDS).bad == {NOT_IN_INDEX: [1]}
    assert entries(path, INDEX_KINDS | {"md5"}) == [(1, "md5", MD5)]


def test_csv_bad_rows_empty_hash_and_too_many_fields(tmp_path: Path) -> None:
    path = write(tmp_path, "list.csv", f"hash,id\n{PDQ1},a\n,b\n{PDQ2},c,extra\nnothex!,d\n")
    read = read_list(path, INDEX_KINDS)
    assert [e.line for e in read.entries] == [2]
    assert read.bad == {EMPTY: [3], MALFORMED: [4], NOT_HEX: [5]}


def test_a_byte_order_mark_and_windows_line_ends(tmp_path: Path) -> None:
    text = f"hash,category\r\n{PDQ1},a\r\n{PHASH1},b\r\n"
    path = write(tmp_path, "list.csv", text, encoding="utf-8-sig")
    assert read_list(path, INDEX_KINDS).entries == [
        ListEntry(2, "pdq", PDQ1, None, "a"),
        ListEntry(3, "phash", PHASH1, None, "b"),
    ]
    te = write(tmp_path, "list.txt", f"pdq {PDQ1}\r\npdq {PDQ2}\r\n", encoding="utf-8-sig")
    assert entries(te) == [(1, "pdq", PDQ1), (2, "pdq", PDQ2)]


def test_a_table_without_a_hash_column_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ListFormatError, match="no hash column"):
        read_list(write(tmp_path, "list.csv", f"digest,id\n{PDQ1},1\n"), INDEX_KINDS)


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ListFormatError, match="not UTF-8"):
        read_list(write(tmp_path, "list.txt", "pdq \xff\xfe\n", encoding="latin-1"), INDEX_KINDS)


def test_a_large_list_of_good_lines(tmp_path: Path) -> None:
    """200,000 lines read in one pass (no timing asserted: the test suite would notice a slow one)."""
    count = 200_000
    path = tmp_path / "big.txt"
    path.write_text("".join(f"pdq {n:064x}\n" for n in range(count)))
    read = read_list(path, INDEX_KINDS)
    assert read.counts() == {"pdq": count}
    assert read.bad == {}
    assert read.entries[-1] == ListEntry(count, "pdq", f"{count - 1:064x}")
