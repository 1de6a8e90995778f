"""The approved pictures' PDQ hashes as a list the field's tools read (``removals export --te-pdq``).

One ``pdq HASH`` line per distinct approved picture, sorted: the text format python-threatexchange's
file exchange (``LocalFileSignalExchangeAPI``) reads and writes, so a platform can add the file
as a collaboration in ``threatexchange`` or in HMA (built on the same library) and match its own
uploads against the dataset's removals. Nothing else goes in: no key, URL, ticket or date.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from threatexchange.signal_type.pdq.signal import PdqSignal

from bot.durable import written_aside
from bot.tickets.models import RemovalRow


def te_pdq_lines(rows: Sequence[RemovalRow]) -> list[str]:
    """``pdq HASH`` for each distinct PDQ among the approved rows, checked as the library checks it."""
    name = PdqSignal.get_name()
    return [f"{name} {PdqSignal.validate_signal_str(pdq)}" for pdq in sorted({row.pdq for row in rows})]


def write_te_pdq(path: Path, rows: Sequence[RemovalRow]) -> int:
    """Write the list to ``path`` atomically; return how many hashes it holds."""
    lines = te_pdq_lines(rows)
    with written_aside(path) as temporary:
        temporary.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines)
