"""Read a partner hash list into entries and bad lines, each with its line number.

Formats (``--format``, default ``auto``):

* ``te``: python-threatexchange's text lines. ``SIGNAL_TYPE HASH`` per line, as its file
  exchange (``LocalFileSignalExchangeAPI``) reads and writes them and ``threatexchange dataset
  -P`` prints them (anything after the hash is that command's collaboration and metadata, and is
  ignored); or a bare ``HASH`` per line, as ``threatexchange match --hashes`` takes them (the type
  from the hash's length). A file named like its CLI's state files, ``simple.HASH_PDQ.te``, is
  CSV rows whose first field is the hash, of the type the name says. Blank lines are skipped.
* ``csv`` / ``tsv``: a header naming a ``hash`` column (or ``signal_str``, as ``threatexchange
  dataset -P --csv`` writes it), optionally ``signal_type`` (or ``type``), ``id`` (the list's
  entry id), ``category`` and ``source`` (or ``collab``). A row without a type is typed by its
  hash's length.

``auto`` takes the suffix (``.csv``, ``.tsv``), else a first line naming a hash column is a CSV or
TSV header, else ``te``. A UTF-8 byte-order mark and Windows line ends are accepted. Hashes are
checked by :func:`bot.hashlists.signals.parse_hash` (python-threatexchange's validation).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import RemovalDeskError
from bot.hashlists.signals import EMPTY, MALFORMED, BadHashError, parse_hash, signal_named

HASH_COLUMNS = ("hash", "signal_str", "signal", "indicator")
TYPE_COLUMNS = ("signal_type", "type", "indicator_type")
ID_COLUMNS = ("id", "entry_id", "indicator_id")
SOURCE_COLUMNS = ("source", "collab")
_STATE_FILE = re.compile(r"simple\.([^.]+)\.te")


class ListFormatError(RemovalDeskError, ValueError):
    """The file is not a hash list in the format asked for (a CSV without a hash column...)."""


@dataclass(frozen=True, slots=True)  # slots: a list may have millions
class ListEntry:
    """One good line: its hash (lower-case hex) and what the list says about it."""

    line: int
    signal: str
    hash: str
    entry_id: str | None = None
    category: str | None = None
    source: str | None = None


@dataclass
class ReadList:
    """A list file read: its good entries, and every bad line's number by reason."""

    format: str
    sha256: str
    entries: list[ListEntry] = field(default_factory=list)
    bad: dict[str, list[int]] = field(default_factory=dict)

    @property
    def bad_lines(self) -> int:
        return sum(len(lines) for lines in self.bad.values())

    def counts(self) -> dict[str, int]:
        """Good entries by signal type."""
        counted: dict[str, int] = {}
        for entry in self.entries:
            counted[entry.signal] = counted.get(entry.signal, 0) + 1
        return counted


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_list(path: Path, matchable: frozenset[str], kind: str = "auto") -> ReadList:
    """Read the list at ``path``; a hash of a type not in ``matchable`` is a bad line."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ListFormatError(f"{path.name} is not UTF-8 text (byte {exc.start})") from exc
    kind = _format(path, text) if kind == "auto" else kind
    read = ReadList(kind, file_sha256(data))
    state_file = _STATE_FILE.fullmatch(path.name)
    if kind == "te" and state_file:
        rows: Iterator[tuple[int, dict[str, str]]] = _state_rows(text, state_file.group(1))
    elif kind == "te":
        rows = _text_rows(text)
    else:
        rows = _table_rows(text, "," if kind == "csv" else "\t", path.name)
    for line, row in rows:
        try:
            if row.get("error"):
                raise BadHashError(row["error"])
            signal, value = parse_hash(row.get("hash", ""), row.get("type") or None, matchable)
        except BadHashError as bad:
            read.bad.setdefault(bad.reason, []).append(line)
            continue
        read.entries.append(
            ListEntry(
                line, signal.name, value, row.get("id") or None, row.get("category") or None,
                row.get("source") or None,
            )
        )  # fmt: skip
    return read


def _format(path: Path, text: str) -> str:
    suffix = path.suffix.lower()
    if suffix in {".csv", ".tsv"}:
        return suffix[1:]
    first = next((line for line in text.splitlines() if line.strip()), "")
    for kind, delimiter in (("tsv", "\t"), ("csv", ",")):
        names = {name.strip().lower() for name in first.split(delimiter)}
        if delimiter in first and names & set(HASH_COLUMNS):
            return kind
    return "te"


def _text_rows(text: str) -> Iterator[tuple[int, dict[str, str]]]:
    """``SIGNAL_TYPE HASH [ignored...]`` or ``HASH`` per line."""
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split()
        if not words:
            continue
        if len(words) == 1:
            try:  # a type with no hash after it
                signal_named(words[0])
            except BadHashError:
                yield number, {"hash": words[0]}
            else:
                yield number, {"type": words[0], "error": EMPTY}
            continue
        yield number, {"type": words[0], "hash": words[1]}


def _state_rows(text: str, indicator_type: str) -> Iterator[tuple[int, dict[str, str]]]:
    """python-threatexchange's CLI state file: CSV rows, the indicator (hash) first."""
    reader = csv.reader(io.StringIO(text, newline=""))
    for row in reader:
        if any(cell.strip() for cell in row):
            yield reader.line_num, {"type": indicator_type, "hash": row[0]}


def _table_rows(text: str, delimiter: str, name: str) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    columns = [cell.strip().lower() for cell in header or []]
    wanted = {
        "hash": _column(columns, HASH_COLUMNS),
        "type": _column(columns, TYPE_COLUMNS),
        "id": _column(columns, ID_COLUMNS),
        "category": _column(columns, ("category",)),
        "source": _column(columns, SOURCE_COLUMNS),
    }
    if wanted["hash"] is None:
        raise ListFormatError(
            f"{name}: the first line names no hash column (one of {', '.join(HASH_COLUMNS)})"
        )
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(columns):
            yield reader.line_num, {"error": MALFORMED}
            continue
        yield (
            reader.line_num,
            {
                key: row[index].strip() if index is not None and index < len(row) else ""
                for key, index in wanted.items()
            },
        )


def _column(columns: list[str], names: tuple[str, ...]) -> int | None:
    return next((columns.index(name) for name in names if name in columns), None)
