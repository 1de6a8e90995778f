"""A damaged index is refused with a sentence, never answered from (bot.index.storage, HashIndex).

A build records every shard file's size and SHA-256 in the manifest. Opening compares the sizes (a
truncated file, or two shards' files swapped, is refused at once); ``HashIndex.verify`` (run by
``index verify`` and at the bot's start) compares the checksums too (garbled bytes of the same
size). An index written before checksums were kept opens with a warning.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

import pytest

from bot.cli import main
from bot.index.build import build_index
from bot.index.search import HashIndex
from bot.index.storage import IndexFormatError

SAMPLES = Path(__file__).resolve().parents[3] / "samples" / "dataset"
DAMAGED = "the index is damaged or was changed by hand"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of two sample pictures, one a shard."""
    from bot.config import load_settings

    settings = load_settings(with_deployment_files=False)
    settings = dataclasses.replace(settings, index=dataclasses.replace(settings.index, shard_size=1))
    source = tmp_path_factory.mktemp("dataset")
    for name in ("coffee.jpg", "chelsea.jpg"):
        (source / name).write_bytes((SAMPLES / name).read_bytes())
    out = tmp_path_factory.mktemp("index") / "index"
    build_index([source], out, settings, workers=1, show_progress=False)
    return out


@pytest.fixture
def index(built: Path, tmp_path: Path) -> Path:
    """A fresh copy of the built index, to damage."""
    copy = tmp_path / "index"
    for path in built.rglob("*"):
        target = copy / path.relative_to(built)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    return copy


def test_a_build_records_every_shard_file_and_an_untouched_index_verifies(index: Path) -> None:
    manifest = json.loads((index / "manifest.json").read_text())
    assert manifest["shards"] == ["00000", "00001"]
    for name in manifest["shards"]:
        on_disk = {path.name for path in (index / "shards" / name).iterdir()}
        assert set(manifest["files"][name]) == on_disk
        assert {"phash.npy", "pdq.npy", "meta.jsonl", "shard.json"} <= on_disk
    assert HashIndex(index).verify() == 2


@pytest.mark.parametrize("name", ["phash.npy", "meta.jsonl", "thumbnail.npy"])
def test_a_truncated_file_is_refused_at_open(index: Path, name: str) -> None:
    path = index / "shards" / "00001" / name
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 7])
    with pytest.raises(IndexFormatError, match=DAMAGED) as refused:
        HashIndex(index)
    assert f"{path} has {len(data) - 7} bytes where the manifest says {len(data)}" in str(refused.value)


def test_two_shards_swapped_are_refused(index: Path) -> None:
    shards = index / "shards"
    (shards / "00000").rename(shards / "swap")
    (shards / "00001").rename(shards / "00000")
    (shards / "swap").rename(shards / "00001")
    with pytest.raises(IndexFormatError, match=DAMAGED):
        HashIndex(index).verify()


def test_two_files_of_the_same_size_swapped_are_refused_by_their_checksums(index: Path) -> None:
    first, second = index / "shards" / "00000" / "phash.npy", index / "shards" / "00001" / "phash.npy"
    a, b = first.read_bytes(), second.read_bytes()
    assert len(a) == len(b)
    first.write_bytes(b)
    second.write_bytes(a)
    opened = HashIndex(index)  # sizes agree: opening is free and cannot tell
    with pytest.raises(IndexFormatError, match="its checksum differs"):
        opened.verify()


@pytest.mark.parametrize("name", ["pdq.npy", "meta.jsonl", "rows.npy", "quality.npy"])
def test_garbled_bytes_are_refused_by_index_verify_and_at_the_bots_start(
    index: Path, name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = index / "shards" / "00000" / name
    if not path.exists():
        pytest.skip(f"this sample's shard has no {name}")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x5A  # the last byte: always data, never the .npy header
    path.write_bytes(bytes(data))

    assert main(["index", "verify", str(index)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: the index file {path} does not hold the bytes that were written")
    assert "rebuild it (python -m bot index build)" in error

    monkeypatch.setenv("DISCORD_TOKEN", "fake-token")
    monkeypatch.setenv("REMOVAL_DESK_DISCORD_REVIEW_CHANNEL_ID", "1")
    monkeypatch.setenv("REMOVAL_DESK_DISCORD_MAINTAINER_ROLE_ID", "1")
    monkeypatch.setenv("REMOVAL_DESK_DISCORD_INDEX", str(index))
    assert main(["run"]) == 2  # refused before anything connects to Discord
    assert capsys.readouterr().err.startswith(f"error: the index file {path}")


def test_a_truncated_array_in_an_index_without_checksums_is_refused_with_a_sentence(
    index: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manifest = json.loads((index / "manifest.json").read_text())
    del manifest["files"]
    (index / "manifest.json").write_text(json.dumps(manifest))
    with caplog.at_level(logging.WARNING):
        assert HashIndex(index).verify() == 0
    assert "2 of 2 shard(s)" in caplog.text
    assert "were written before checksums were kept" in caplog.text

    path = index / "shards" / "00000" / "pdq.npy"
    os.truncate(path, path.stat().st_size // 2)
    with pytest.raises(IndexFormatError, match=DAMAGED):
        HashIndex(index)
