"""Files that are either whole or absent: written aside, flushed to disk, then renamed into place.

An index shard, its search tables, a removal list and a cleaned metadata file are all read by
other processes (the bot, a dataset's users) and may be written while a machine can lose power.
A reader must never see half of one. So each is written to a temporary path beside its final one,
every file is fsynced, the temporary is renamed over the final path (atomic within one file
system), and the folder holding it is fsynced so the rename itself survives a crash.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # a platform that cannot open folders (Windows): the rename is what it can do
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def replace_durably(temporary: Path, final: Path) -> None:
    """Flush ``temporary`` (a file, or a folder's files) to disk and rename it to ``final``. A
    folder cannot replace a folder that holds files: the caller removes an old one first."""
    if temporary.is_dir():
        for child in temporary.iterdir():
            if child.is_file():
                _fsync(child)
        _fsync_folder(temporary)
    else:
        _fsync(temporary)
    os.replace(temporary, final)
    _fsync_folder(final.parent)


@contextmanager
def written_aside(final: Path) -> Iterator[Path]:
    """The temporary path to write ``final``'s content to; on success it replaces ``final``
    durably, on any failure it is removed and ``final`` is left as it was."""
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(final.name + ".tmp")
    try:
        yield temporary
        replace_durably(temporary, final)
    except BaseException:
        if temporary.is_dir():
            shutil.rmtree(temporary, ignore_errors=True)
        else:
            temporary.unlink(missing_ok=True)
        raise


def write_text_durably(final: Path, text: str) -> None:
    """``final`` holds ``text`` (UTF-8), whole, or keeps what it held."""
    with written_aside(final) as temporary:
        temporary.write_text(text, encoding="utf-8")
