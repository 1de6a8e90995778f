"""Which column of a dataset's metadata holds an entry's URL, id and caption.

Read in two places that must agree: building an index from a URL list (the id becomes the entry's
key) and applying a removal list to the dataset's metadata (the key finds the row again). With two
lists of names they disagreed on a file holding both ``key`` and ``SAMPLE_ID``, and a removal could
miss the row it was meant for.
"""

from __future__ import annotations

from collections.abc import Sequence

# Names recognised in order of preference, case-insensitively (LAION writes URL, SAMPLE_ID, TEXT;
# img2dataset url, key, caption).
URL_COLUMNS = ("url",)
KEY_COLUMNS = ("key", "sample_id", "id")
CAPTION_COLUMNS = ("caption", "text")


def pick_column(names: Sequence[str], wanted: Sequence[str]) -> str | None:
    """The first of ``wanted`` that ``names`` holds (as the file spells it), ignoring case; where
    two names differ only in case, the first in the file."""
    by_lower_name: dict[str, str] = {}
    for name in names:
        by_lower_name.setdefault(name.lower(), name)
    return next((by_lower_name[name] for name in wanted if name in by_lower_name), None)
