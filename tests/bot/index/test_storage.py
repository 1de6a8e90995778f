"""The on-disk index format (bot.index.storage): shards written aside and renamed in, read back
memory-mapped row for row, and the manifest that lists them."""

from __future__ import annotations

import dataclasses

import numpy as np

from bot.index.storage import ShardReader
from bot.verification import has_thumbnail
from tests.bot.test_verification import entry, write_entries


def test_entry_thumbnails_read_back_from_a_shard_match_what_was_written(tmp_path):
    """ShardReader maps the thumbnails; an entry added without one reads back as all zero."""
    folder = tmp_path / "written"
    write_entries(folder, [entry("coffee.jpg"), dataclasses.replace(entry("chelsea.jpg"), thumbnail=None)])

    shard = ShardReader(folder / "shards" / "00000")

    assert shard.thumbnail is not None
    assert shard.thumbnail.shape == (2, 16, 16)
    np.testing.assert_array_equal(shard.thumbnail[0], entry("coffee.jpg").thumbnail)
    assert has_thumbnail(np.asarray(shard.thumbnail)).tolist() == [True, False]
