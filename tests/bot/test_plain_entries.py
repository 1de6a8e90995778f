"""Entries too plain for their hashes (PDQ quality under the gate): an exact copy is never told
"no copy" because of them. The central region falls back to the whole frame when only that has
detail, and an entry that stays too plain is judged by its pixels or reported as unjudged."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from bot import messages
from bot.checking import check_picture, hash_submitted_picture
from bot.config import Settings
from bot.decoding import decode_picture
from bot.hashing import hash_entry
from bot.index.build import build_index
from bot.index.search import HashIndex
from bot.index.storage import DatasetEntry, Manifest, ShardWriter
from tests.made_up import photo


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def detail_only_at_the_edges(seed: int) -> Image.Image:
    """A photograph whose central region (10 % in from each side) is one flat colour."""
    image = photo(seed, (480, 360))
    ImageDraw.Draw(image).rectangle((40, 30, 440, 330), fill=(120, 130, 125))
    return image


def test_its_exact_copy_is_found(tmp_path: Path, settings: Settings):
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "edges.jpg").write_bytes(jpeg(detail_only_at_the_edges(301)))
    (tmp_path / "dataset" / "other.jpg").write_bytes(jpeg(photo(302, (480, 360))))
    build_index([tmp_path / "dataset"], tmp_path / "index", settings, workers=1)
    data = (tmp_path / "dataset" / "edges.jpg").read_bytes()
    found = check_picture(data, HashIndex(tmp_path / "index"), settings).found
    assert [Path(item.entry.key).stem for item in found] == ["edges"]


@pytest.fixture
def plain_index(tmp_path: Path, settings: Settings) -> tuple[HashIndex, bytes]:
    """Two entries with the query's own hashes but a quality under the gate: one keeps the
    query's own thumbnail (a copy its pixels confirm), one an unrelated picture's."""
    picture = photo(310, (480, 360))
    data = jpeg(picture)
    own = hash_entry(decode_picture(data, settings.decoding).image, settings.hashing)
    other = hash_entry(photo(311, (480, 360)), settings.hashing)
    writer = ShardWriter(tmp_path, "00000")
    writer.add(DatasetEntry(key="copy"), replace(own, quality=30))
    writer.add(DatasetEntry(key="lookalike"), replace(own, quality=30, thumbnail=other.thumbnail))
    writer.commit()
    Manifest(hashing={}, shards=["00000"]).write(tmp_path)
    return HashIndex(tmp_path), data


def test_a_plain_entry_is_matched_only_when_its_pixels_confirm_it(plain_index, settings: Settings):
    index, data = plain_index
    result = check_picture(data, index, settings)
    assert [item.entry.key for item in result.found] == ["copy"]
    assert result.unjudged == 1  # the lookalike: near in both hashes, too plain, not confirmed


def test_hashes_alone_never_match_a_plain_entry_but_count_it(plain_index, settings: Settings):
    index, data = plain_index
    query, _ = hash_submitted_picture(data, settings)
    assert index.search(query, settings.matching) == []
    looked_up = index.look_up(query, settings.matching, views=None)
    assert looked_up.found == []
    assert looked_up.unjudged == 2


def test_the_answer_never_says_no_copy_when_entries_could_not_be_judged():
    answer = messages.no_match(1_000, "", unjudged=2)
    assert "no copy" not in answer
    assert "2 pictures" in answer
    assert "no copy" in messages.no_match(1_000, "", unjudged=0)


def test_unjudged_entries_whose_removal_was_approved_are_not_counted(plain_index, settings: Settings):
    index, data = plain_index
    query, views = hash_submitted_picture(data, settings)
    looked_up = index.look_up(query, settings.matching, {("lookalike", "")}, views=views)
    assert looked_up.unjudged == 0
    assert np.all([item.entry.key == "copy" for item in looked_up.found])


def small_blob_thumbnail() -> np.ndarray:
    """A 16x16 thumbnail of a small bright subject on black: its contrast in a few cells."""
    thumbnail = np.zeros((16, 16), dtype=np.uint8)
    thumbnail[6:8, 9:11] = 220
    thumbnail[8, 9] = 120
    return thumbnail


def test_an_entry_whose_contrast_sits_in_a_few_cells_is_unjudgeable(settings: Settings):
    from bot.verification import spread, thumbnail, unjudgeable

    blob = small_blob_thumbnail()
    assert spread(blob) < settings.matching.verify_unjudgeable_below
    assert unjudgeable(blob, settings.matching)
    assert not unjudgeable(thumbnail(photo(320, (480, 360))), settings.matching)


def test_a_near_entry_too_sparse_to_judge_is_counted_never_matched(tmp_path: Path, settings: Settings):
    """The query's own hashes with a sparse thumbnail: near in both hashes, but no alignment of so
    few cells can say it is a copy. The same hashes with the query's thumbnail match."""
    data = jpeg(photo(321, (480, 360)))
    own = hash_entry(decode_picture(data, settings.decoding).image, settings.hashing)
    writer = ShardWriter(tmp_path, "00000")
    writer.add(DatasetEntry(key="sparse"), replace(own, thumbnail=small_blob_thumbnail(), parts=()))
    writer.add(DatasetEntry(key="copy"), replace(own, parts=()))
    writer.commit()
    Manifest(hashing={}, shards=["00000"]).write(tmp_path)

    result = check_picture(data, HashIndex(tmp_path), settings)

    assert [item.entry.key for item in result.found] == ["copy"]
    assert result.unjudged == 1
    lenient = replace(settings, matching=replace(settings.matching, verify_unjudgeable_below=0.0))
    assert check_picture(data, HashIndex(tmp_path), lenient).unjudged == 0
