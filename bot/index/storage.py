"""The on-disk index format: a folder of shards of memory-mapped arrays, described by a manifest.

Layout (documented in docs/architecture.md, "Index format"). A shard's arrays have one row per
hashed region (R rows): the whole picture of each of its N entries, and each photograph inside a
composite (:mod:`bot.panels`), which is a row of its own pointing at its entry. One file per kind
of hash (:mod:`bot.signals`: ``NAME.npy``, one word a row for a 64-bit kind, ``bits // 64`` for a
wider one, first hash bit = MSB)::

    DIR/manifest.json                 format, version, how entries were hashed, list of shards
    DIR/history.json                  when the index was first built and a shard last added
    DIR/shards/NNNNN/phash.npy        uint64 (R,)    pHash of each row
    DIR/shards/NNNNN/pdq.npy          uint64 (R, 4)  PDQ, 256 bits as 4 words
    DIR/shards/NNNNN/quality.npy      uint8  (R,)    the lowest rating of the row's hashes (PDQ's
                                      quality, 0-100)
    DIR/shards/NNNNN/thumbnail.npy    uint8  (N, 16, 16) grey thumbnail of the hashed region, for
                                      verifying candidates (bot.verification); all 0 = none kept
    DIR/shards/NNNNN/chroma.npy       int8   (N, 2, 8, 8) opponent colours of the same region,
                                      compared where both pictures have colour; all 0 = grey/none
    DIR/shards/NNNNN/rows.npy         uint32 (R, 6)  per row: its entry (meta line), the box of
                                      the photograph it hashes, in 1/10000 of the picture
                                      (0, 0, 10000, 10000: the whole), and its RowKind (0 a
                                      picture's central region, 1 its core; (R, 5): all 0).
                                      Absent: one row per entry
    DIR/shards/NNNNN/whole_pdq.npy    uint64 (N, 4)  PDQ of each ENTRY's whole picture as partner
                                      hash lists compute it (bot.whole_picture), for hash-list
                                      scans only; with whole_phash.npy (N,) uint64 and
                                      whole_quality.npy (N,) uint8. All three or none: absent in
                                      a shard written before, or from a hash Parquet file
                                      without the whole_* columns
    DIR/shards/NNNNN/md5.npy          uint8  (N, 16) MD5 of each ENTRY's file bytes, as img2dataset
                                      writes it (``compute_hash="md5"``) and partner lists carry
                                      it, for hash-list scans only; absent in a shard written
                                      before, or from a hash Parquet file without an md5 column
    DIR/shards/NNNNN/meta.jsonl       one JSON object per entry: key, url, caption
    DIR/shards/NNNNN/meta.offsets.npy uint64 (N+1,)  byte offset of each entry's line in meta.jsonl
    DIR/shards/NNNNN/shard.json       entry and row counts, sources, failures by kind with examples

Arrays are plain ``.npy`` files opened with ``mmap_mode="r"``: opening an index reads only the
manifest and the array headers, whatever its size, and nothing is ever unpickled.

The manifest lists every file of every shard with its size and SHA-256 (``files``), taken when
the shard is written. Opening compares the sizes (a truncated or swapped file is refused at
once, free); :meth:`Manifest.verify_shard` also compares the checksums (a garbled or swapped
file of the same size), which reads every byte: ~1.1 s per GB on one core, so ~1 s per 1e6
entries with thumbnails; ``index verify`` and the bot's start-up run it. An index written before
checksums were kept opens with a warning and is checked for what can be checked. A shard is
written under a temporary name and renamed into place, then the manifest is replaced atomically,
so an interrupted build never leaves a half-written shard in the index; adding shards later
never touches the existing ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bot.config import Settings
from bot.durable import replace_durably, write_text_durably
from bot.errors import RemovalDeskError
from bot.hashing import EntryHashes, RowKind
from bot.signals import SignalValues, signal_kinds
from bot.verification import CHROMA_SIDE, THUMBNAIL_SIDE
from bot.whole_picture import WholeColumns, WholeHashes

# A part's box is stored in these units of the picture's width and height.
BOX_SCALE = 10_000
WHOLE_PICTURE = (0, 0, BOX_SCALE, BOX_SCALE)
# rows.npy's columns: entry, box (4), RowKind. Shards written before the kind had 5: all pictures.
ROW_COLUMNS = 6

log = logging.getLogger(__name__)

FORMAT_NAME = "removal-desk-index"
FORMAT_VERSION = 1
# The whole-picture files of a shard (bot.whole_picture), by ShardReader attribute.
WHOLE_FILES = {name: f"{name}.npy" for name in ("whole_pdq", "whole_phash", "whole_quality")}
# Each entry's MD5 of its file bytes (bot.hashing.EntryHashes.md5): 16 bytes an entry.
MD5_FILE = "md5.npy"
MD5_BYTES = 16
_MAX_FAILURE_EXAMPLES = 20


class IndexFormatError(RemovalDeskError, ValueError):
    """The folder is not an index this version can read, or does not fit the request."""


def hashing_parameters(settings: Settings) -> dict[str, object]:
    """What must be equal for two sets of entry hashes to be comparable; pinned in the manifest."""
    return {
        "kinds": {kind.name: kind.bits for kind in signal_kinds()},
        "entry_margin": settings.hashing.entry_margin,
        "work_side": settings.decoding.work_side,
    }


@dataclass(frozen=True)
class DatasetEntry:
    """What a dataset says about one picture: its key, where it was found, and its caption."""

    key: str
    url: str | None = None
    caption: str | None = None


def stack_md5(values: list[bytes | None]) -> np.ndarray | None:
    """(N, 16) uint8 of the entries' MD5s; None unless every entry has one (a shard keeps them for
    all its entries or for none, as it does the whole-picture hashes)."""
    if any(value is None for value in values):
        return None
    column = np.frombuffer(b"".join(v for v in values if v is not None), dtype=np.uint8)
    return column.reshape(len(values), MD5_BYTES)


def _write_json_atomically(path: Path, document: dict[str, Any]) -> None:
    write_text_durably(path, json.dumps(document, indent=1, sort_keys=True))


# A shard's files as the manifest records them: file name -> {"size": bytes, "sha256": hex}.
ShardFiles = dict[str, dict[str, Any]]


def describe_files(shard: Path) -> ShardFiles:
    """Every file of a shard folder with its size and SHA-256 (reads each file once)."""
    files: ShardFiles = {}
    for path in sorted(shard.iterdir()):
        if path.is_file():
            files[path.name] = {"size": path.stat().st_size, "sha256": _sha256(path)}
    return files


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _refuse(path: Path, what: str) -> IndexFormatError:
    return IndexFormatError(
        f"the index file {path} {what}: the index is damaged or was changed by hand, and is not "
        "used. Restore the index folder from a copy or rebuild it (python -m bot index build)"
    )


@dataclass
class Manifest:
    """The index's table of contents; ``hashing`` pins how entries were hashed; ``files`` has
    each shard's files with sizes and checksums (absent for shards written before they were kept)."""

    hashing: dict[str, Any]
    shards: list[str] = field(default_factory=list)
    files: dict[str, ShardFiles] = field(default_factory=dict)

    def check_shard(self, folder: Path, name: str, *, checksums: bool = False) -> None:
        """Raise IndexFormatError unless shard ``name``'s files are those the manifest lists: each
        present with its size, and with ``checksums`` its SHA-256 too."""
        listed = self.files.get(name)
        if listed is None:
            return
        shard = folder / "shards" / name
        for file_name, recorded in sorted(listed.items()):
            path = shard / file_name
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                raise _refuse(path, "is missing") from None
            if size != recorded["size"]:
                raise _refuse(path, f"has {size} bytes where the manifest says {recorded['size']}")
            if checksums and _sha256(path) != recorded["sha256"]:
                raise _refuse(path, "does not hold the bytes that were written (its checksum differs)")

    def unverifiable(self) -> list[str]:
        """Shards the manifest has no checksums for (written before they were kept)."""
        return [name for name in self.shards if name not in self.files]

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / "manifest.json"
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise IndexFormatError(f"{folder} is not an index (no manifest.json)") from exc
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IndexFormatError(f"{path} cannot be read ({exc}): restore it or rebuild the index") from exc
        if not isinstance(document, dict):
            raise IndexFormatError(f"{path} is not an index manifest: restore it or rebuild the index")
        if document.get("format") != FORMAT_NAME or document.get("version") != FORMAT_VERSION:
            raise IndexFormatError(
                f"{folder} holds format {document.get('format')!r} version {document.get('version')!r}; "
                f"this program reads {FORMAT_NAME!r} version {FORMAT_VERSION}"
            )
        try:
            files = {
                str(name): {
                    str(file): {"size": int(v["size"]), "sha256": str(v["sha256"])}
                    for file, v in listed.items()
                }
                for name, listed in dict(document.get("files", {})).items()
            }
            shards = [str(name) for name in document["shards"]]
            return cls(hashing=dict(document["hashing"]), shards=shards, files=files)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise IndexFormatError(
                f"{path} is not a whole manifest ({exc!r}): restore it or rebuild"
            ) from exc

    def write(self, folder: Path) -> None:
        document = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "hashing": self.hashing,
            "shards": self.shards,
            "files": {name: self.files[name] for name in self.shards if name in self.files},
        }
        _write_json_atomically(folder / "manifest.json", document)


HISTORY_NAME = "history.json"


@dataclass(frozen=True)
class IndexHistory:
    """When the index was first built and when a shard was last added (UTC, to the second), for a
    maintainer asking (``index info``). Kept apart from the manifest, which stays a function of
    the sources alone: the same sources give the same index, byte for byte, whenever built. None:
    an index built before this was recorded. Informational only: a missing or unreadable file is
    "unknown", never a reason to refuse the index."""

    built_at: str | None = None
    last_added_at: str | None = None

    @staticmethod
    def now() -> str:
        return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    @classmethod
    def read(cls, folder: Path) -> IndexHistory:
        try:
            document = json.loads((folder / HISTORY_NAME).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return cls()
        if not isinstance(document, dict):
            return cls()
        built, added = document.get("built_at"), document.get("last_added_at")
        return cls(
            built_at=built if isinstance(built, str) else None,
            last_added_at=added if isinstance(added, str) else None,
        )

    def write(self, folder: Path) -> None:
        _write_json_atomically(folder / HISTORY_NAME, dataclasses.asdict(self))


_NO_THUMBNAIL = np.zeros((THUMBNAIL_SIDE, THUMBNAIL_SIDE), dtype=np.uint8)
_NO_CHROMA = np.zeros((2, CHROMA_SIDE, CHROMA_SIDE), dtype=np.int8)  # zero: grey, nothing to compare


class ShardWriter:
    """Collects entries for one shard, then writes it under a temporary name and renames it in."""

    def __init__(self, folder: Path, name: str) -> None:
        self.final_path = folder / "shards" / name
        self.name = name
        self._signals: dict[str, list[Any]] = {kind.name: [] for kind in signal_kinds()}
        self._quality: list[int] = []
        self._thumbnail: list[np.ndarray] = []
        self._chroma: list[np.ndarray] = []
        self._meta: list[bytes] = []
        self._rows: list[tuple[int, ...]] = []  # (entry, box in BOX_SCALE units, RowKind)
        self._whole: list[WholeHashes | None] = []  # one per entry
        self._md5: list[bytes | None] = []  # one per entry
        self.failures: Counter[str] = Counter()
        self.failure_examples: list[dict[str, str]] = []
        self.sources: list[str] = []
        self.files: ShardFiles = {}  # set by commit()

    def __len__(self) -> int:
        """Entries (not rows: a composite's photographs are rows of their own)."""
        return len(self._meta)

    def add(self, entry: DatasetEntry, hashes: EntryHashes) -> None:
        number = len(self._meta)
        self._add_row(hashes, (number, *WHOLE_PICTURE, RowKind.PICTURE))
        for part in hashes.parts:
            box = tuple(min(BOX_SCALE, max(0, round(v * BOX_SCALE))) for v in part.box)
            self._add_row(part.hashes, (number, *box, part.kind))
        self._whole.append(hashes.whole)
        if hashes.md5 is not None and len(hashes.md5) != MD5_BYTES:
            raise ValueError(f"an MD5 is {MD5_BYTES} bytes, not {len(hashes.md5)}")
        self._md5.append(hashes.md5)
        line = {"key": entry.key, "url": entry.url, "caption": entry.caption}
        self._meta.append(json.dumps(line, ensure_ascii=False).encode("utf-8") + b"\n")

    def _add_row(self, hashes: EntryHashes, row: tuple[int, ...]) -> None:
        for name, value in hashes.signals.items():
            self._signals[name].append(value)
        self._quality.append(hashes.quality)
        self._thumbnail.append(_NO_THUMBNAIL if hashes.thumbnail is None else hashes.thumbnail)
        self._chroma.append(_NO_CHROMA if hashes.chroma is None else hashes.chroma)
        self._rows.append(row)

    def add_failure(self, entry: DatasetEntry, reason: str) -> None:
        self.failures[reason] += 1
        if len(self.failure_examples) < _MAX_FAILURE_EXAMPLES:
            self.failure_examples.append({"key": entry.key, "reason": reason})

    def commit(self) -> None:
        temporary = self.final_path.with_name(f".tmp-{self.name}")
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
        count = len(self._rows)
        for kind in signal_kinds():
            np.save(temporary / f"{kind.name}.npy", kind.column(self._signals[kind.name]))
        if len(self._rows) > len(self._meta):  # some entry has parts; else one row per entry
            np.save(temporary / "rows.npy", np.array(self._rows, dtype=np.uint32).reshape(-1, ROW_COLUMNS))
        np.save(temporary / "quality.npy", np.array(self._quality, dtype=np.uint8))
        thumbnails = np.stack(self._thumbnail).astype(np.uint8) if count else _NO_THUMBNAIL[None][:0]
        np.save(temporary / "thumbnail.npy", thumbnails)
        chroma = np.stack(self._chroma).astype(np.int8) if count else _NO_CHROMA[None][:0]
        np.save(temporary / "chroma.npy", chroma)
        offsets = np.zeros(len(self._meta) + 1, dtype=np.uint64)
        with (temporary / "meta.jsonl").open("wb") as handle:
            for i, line in enumerate(self._meta):
                handle.write(line)
                offsets[i + 1] = offsets[i] + len(line)
        np.save(temporary / "meta.offsets.npy", offsets)
        self._save_whole(temporary)
        md5 = stack_md5(self._md5)
        if md5 is not None:
            np.save(temporary / MD5_FILE, md5)
        elif any(value is not None for value in self._md5):
            log.warning("shard %s: some entries came without an MD5; none kept", self.name)
        summary = {
            "entries": len(self._meta),
            "rows": count,
            "failures": dict(self.failures),
            "failure_examples": self.failure_examples,
            "sources": self.sources,
        }
        (temporary / "shard.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
        self.files = describe_files(temporary)  # for the manifest: read back while in the page cache
        replace_durably(temporary, self.final_path)

    def _save_whole(self, temporary: Path) -> None:
        """The whole-picture files, when every entry has its whole-picture hashes. A shard whose
        entries came some with and some without keeps none (one source gives one shard, so only
        a hand-made mix gets here): a scan then knows the shard needs rebuilding."""
        whole = WholeColumns.stack(self._whole)
        if whole is None:
            if any(value is not None for value in self._whole):
                log.warning("shard %s: some entries came without whole-picture hashes; none kept", self.name)
            return
        np.save(temporary / WHOLE_FILES["whole_pdq"], whole.pdq)
        np.save(temporary / WHOLE_FILES["whole_phash"], whole.phash)
        np.save(temporary / WHOLE_FILES["whole_quality"], whole.quality)


class ShardReader(SignalValues):
    """A shard opened memory-mapped: arrays are paged in by the OS only where a search looks.
    ``signals`` holds each kind's column (``shard.pdq``)."""

    def __init__(self, path: Path) -> None:
        try:
            self._open(path)
        except (OSError, ValueError, EOFError) as exc:  # a truncated or garbled .npy header
            if isinstance(exc, IndexFormatError):
                raise
            raise _refuse(path, f"cannot be read ({exc})") from exc

    def _open(self, path: Path) -> None:
        self.path = path
        self.name = path.name
        self.signals = {
            kind.name: np.load(path / f"{kind.name}.npy", mmap_mode="r") for kind in signal_kinds()
        }
        self.quality: np.ndarray = np.load(path / "quality.npy", mmap_mode="r")
        # Read only for the few candidates a search verifies. A shard written before thumbnails
        # were kept has none: its entries match on the hashes alone.
        thumbnail_path = path / "thumbnail.npy"
        self.thumbnail: np.ndarray | None = (
            np.load(thumbnail_path, mmap_mode="r") if thumbnail_path.exists() else None
        )
        chroma_path = path / "chroma.npy"
        self.chroma: np.ndarray | None = np.load(chroma_path, mmap_mode="r") if chroma_path.exists() else None
        self._offsets: np.ndarray = np.load(path / "meta.offsets.npy", mmap_mode="r")
        rows_path = path / "rows.npy"
        self._rows: np.ndarray | None = np.load(rows_path, mmap_mode="r") if rows_path.exists() else None
        size = (path / "meta.jsonl").stat().st_size
        self._meta = (
            np.memmap(path / "meta.jsonl", dtype=np.uint8, mode="r") if size else np.zeros(0, np.uint8)
        )
        lengths = {len(self.quality), *(len(column) for column in self.signals.values())}
        if self._rows is None:
            lengths.add(len(self._offsets) - 1)
        # Rows are written in entry order, so the last row's entry is the largest: reading it alone
        # keeps opening free (the column's maximum read all of rows.npy, 240 MB a shard at 1e7
        # rows: 12 GB to open a 2.5e8-entry index cold). Damage elsewhere is what checksums find.
        elif len(self._rows) and int(self._rows[-1, 0]) >= len(self._offsets) - 1:
            raise IndexFormatError(f"shard {path} is inconsistent: a row points past its entries")
        for optional in (self.thumbnail, self._rows, self.chroma):
            if optional is not None:
                lengths.add(len(optional))
        if len(lengths) != 1:
            raise IndexFormatError(f"shard {path} is inconsistent: its arrays differ in length")
        self._kinds: np.ndarray | None = None
        present = [name for name, file in WHOLE_FILES.items() if (path / file).exists()]
        if present and len(present) != len(WHOLE_FILES):
            raise IndexFormatError(f"shard {path} is inconsistent: it has only some whole-picture files")
        self.has_whole = bool(present)
        self._whole: dict[str, np.ndarray] = {}
        self.has_md5 = (path / MD5_FILE).exists()
        self._md5: np.ndarray | None = None

    # The whole-picture hashes (bot.whole_picture): mapped on first use, so a person's check,
    # which never reads them, never opens the files; None for a shard without them.
    @property
    def whole_pdq(self) -> np.ndarray | None:
        """(N, 4) uint64: each entry's whole-picture PDQ, in the words of :attr:`pdq`'s rows."""
        return self._whole_column("whole_pdq")

    @property
    def whole_phash(self) -> np.ndarray | None:
        """(N,) uint64: each entry's whole-picture pHash."""
        return self._whole_column("whole_phash")

    @property
    def whole_quality(self) -> np.ndarray | None:
        """(N,) uint8: each entry's whole-picture PDQ quality, 0-100."""
        return self._whole_column("whole_quality")

    def _whole_column(self, name: str) -> np.ndarray | None:
        if not self.has_whole:
            return None
        if name not in self._whole:
            path = self.path / WHOLE_FILES[name]
            try:
                column = np.load(path, mmap_mode="r")
            except (OSError, ValueError, EOFError) as exc:
                raise _refuse(path, f"cannot be read ({exc})") from exc
            if len(column) != self.entries:
                raise IndexFormatError(
                    f"shard {self.path} is inconsistent: {path.name} has not one row an entry"
                )
            self._whole[name] = column
        return self._whole[name]

    @property
    def md5(self) -> np.ndarray | None:
        """(N, 16) uint8: each entry's MD5 of its file bytes, mapped on first use (only a hash-list
        scan reads it); None for a shard without them."""
        if not self.has_md5:
            return None
        if self._md5 is None:
            path = self.path / MD5_FILE
            try:
                column = np.load(path, mmap_mode="r")
            except (OSError, ValueError, EOFError) as exc:
                raise _refuse(path, f"cannot be read ({exc})") from exc
            if column.shape != (self.entries, MD5_BYTES) or column.dtype != np.uint8:
                raise IndexFormatError(
                    f"shard {self.path} is inconsistent: {path.name} is not {MD5_BYTES} bytes an entry"
                )
            self._md5 = column
        return self._md5

    @property
    def kinds(self) -> np.ndarray:
        """(R,) uint8 RowKind of every row. Read on first use (a scan, a table build), not when
        the shard is opened: a column of rows.npy is a strided read of the whole file."""
        if self._kinds is None:
            if self._rows is None or self._rows.shape[1] < ROW_COLUMNS:
                self._kinds = np.zeros(len(self.quality), dtype=np.uint8)
            else:
                self._kinds = np.ascontiguousarray(self._rows[:, ROW_COLUMNS - 1], dtype=np.uint8)
        return self._kinds

    def row_kind(self, row: int) -> RowKind:
        if self._rows is None or self._rows.shape[1] < ROW_COLUMNS:
            return RowKind.PICTURE
        return RowKind(int(self._rows[row, ROW_COLUMNS - 1]))

    def __len__(self) -> int:
        """Rows: what the search goes through (an entry and each photograph inside a composite)."""
        return len(self.quality)

    @property
    def entries(self) -> int:
        return len(self._offsets) - 1

    def entry_number(self, row: int) -> int:
        """The entry (line of meta.jsonl) that ``row`` hashes all or part of."""
        return row if self._rows is None else int(self._rows[row, 0])

    def row_signals(self, row: int) -> dict[str, np.ndarray]:
        """Every kind's hash of ``row``."""
        return {name: column[row] for name, column in self.signals.items()}

    def part_box(self, row: int) -> tuple[float, float, float, float] | None:
        """Where in its entry's picture the photograph ``row`` hashes lies (fractions); None for
        the whole picture."""
        if self._rows is None:
            return None
        box = tuple(int(v) for v in self._rows[row, 1:5])
        if box == WHOLE_PICTURE:
            return None
        return tuple(v / BOX_SCALE for v in box)  # type: ignore[return-value]

    def entry(self, row: int) -> DatasetEntry:
        """The dataset's description of the entry ``row`` belongs to."""
        return self.record(self.entry_number(row))

    def record(self, number: int) -> DatasetEntry:
        """The dataset's description of the shard's ``number``-th entry."""
        start, end = int(self._offsets[number]), int(self._offsets[number + 1])
        record = json.loads(bytes(self._meta[start:end]))
        return DatasetEntry(key=record["key"], url=record.get("url"), caption=record.get("caption"))

    def summary(self) -> dict[str, Any]:
        return json.loads((self.path / "shard.json").read_text(encoding="utf-8"))
