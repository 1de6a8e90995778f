"""Files written aside and renamed into place: whole or absent, never half."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.durable import replace_durably, write_text_durably, written_aside


def test_a_file_is_replaced_whole(tmp_path: Path):
    target = tmp_path / "deep" / "list.csv"
    write_text_durably(target, "one\n")
    write_text_durably(target, "two\n")
    assert target.read_text() == "two\n"
    assert sorted(path.name for path in target.parent.iterdir()) == ["list.csv"]


def test_a_failure_while_writing_leaves_the_old_file_and_no_temporary(tmp_path: Path):
    target = tmp_path / "list.csv"
    write_text_durably(target, "old\n")

    def write_half() -> None:
        with written_aside(target) as temporary:
            temporary.write_text("new, but only ha")
            raise RuntimeError("half way")

    with pytest.raises(RuntimeError, match="half way"):
        write_half()
    assert target.read_text() == "old\n"
    assert [path.name for path in tmp_path.iterdir()] == ["list.csv"]


def test_a_folder_is_renamed_into_place_with_its_files(tmp_path: Path):
    temporary = tmp_path / ".tmp-tables"
    temporary.mkdir()
    (temporary / "values.npy").write_bytes(b"\x00" * 64)
    replace_durably(temporary, tmp_path / "tables")
    assert (tmp_path / "tables" / "values.npy").read_bytes() == b"\x00" * 64
    assert not temporary.exists()


def test_a_folder_does_not_silently_replace_one_that_holds_files(tmp_path: Path):
    (tmp_path / "shard").mkdir()
    (tmp_path / "shard" / "old.npy").write_bytes(b"1")
    temporary = tmp_path / ".tmp-shard"
    temporary.mkdir()
    (temporary / "new.npy").write_bytes(b"2")
    with pytest.raises(OSError, match=r"not empty|exists"):
        replace_durably(temporary, tmp_path / "shard")
    assert (tmp_path / "shard" / "old.npy").read_bytes() == b"1"
