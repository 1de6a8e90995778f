"""What the bench tests share."""

from __future__ import annotations

import numpy as np

from bot.config import MatchingSettings, load_settings


def default_rule() -> MatchingSettings:
    return load_settings(with_deployment_files=False).matching


def one_triple_per_pair(phash: np.ndarray, pdq: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Triples (query, entry, variant, pHash, PDQ), one per pair, with the given pHash distances and
    one PDQ distance; and the photograph of each picture (each its own)."""
    count = len(phash)
    triples = np.column_stack(
        [np.arange(count), np.arange(count) + count, np.zeros(count), phash, np.full(count, pdq)]
    ).astype(np.int64)
    return triples, np.arange(2 * count)
