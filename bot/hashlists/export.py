"""The approved pictures' PDQ hashes as a list the field's tools read (``removals export --te-pdq``).

One ``pdq HASH`` line per distinct approved picture, sorted: the text format python-threatexchange's
file exchange (``LocalFileSignalExchangeAPI``) reads and writes, so a platform can add the file
as a collaboration in ``threatexchange`` or in HMA (built on the same library) and match its own
uploads against the dataset's removals. Nothing else goes in: no key, URL, ticket or date.

The hash is each entry's *whole-picture* PDQ (bot.whole_picture), as a platform computes it for
the same picture: the index's own PDQ of an entry's central region lies ~126 bits from it, useless
to a platform. A ticket keeps the whole-picture PDQ when the index had it at filing; an approved
entry without one (filed before it was kept, or from a shard built without it) is left out and
counted, never replaced by the central-region hash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from threatexchange.signal_type.pdq.signal import PdqSignal

from bot.durable import written_aside
from bot.tickets.models import RemovalRow


@dataclass(frozen=True)
class TePdqExport:
    hashes: int  # distinct whole-picture PDQs written
    without_whole_pdq: int  # approved entries left out: no whole-picture PDQ kept for them


def te_pdq_lines(rows: Sequence[RemovalRow]) -> list[str]:
    """``pdq HASH`` for each distinct whole-picture PDQ among the approved rows, checked as the
    library checks it."""
    name = PdqSignal.get_name()
    pdqs = {row.whole_pdq for row in rows if row.whole_pdq}
    return [f"{name} {PdqSignal.validate_signal_str(pdq)}" for pdq in sorted(pdqs)]


def write_te_pdq(path: Path, rows: Sequence[RemovalRow]) -> TePdqExport:
    """Write the list to ``path`` atomically; say how many hashes it holds and how many entries
    it could not carry."""
    lines = te_pdq_lines(rows)
    with written_aside(path) as temporary:
        temporary.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return TePdqExport(len(lines), sum(1 for row in rows if not row.whole_pdq))
