"""The compiled part of the multi-index search (see :mod:`bot.index.mih`).

A module of its own so that importing the index (every command line call does) does not load
numba (~1 s); it is imported on the first search.
"""

from __future__ import annotations

import numba
import numpy as np

# Buckets touched ahead of the one being scanned. It mattered while the kernel was slow (p50 at
# 1e8 entries, 4 -> 8.5 ms, 128 -> 4.3); since the scan stopped growing its output array in the
# loop, 0 and 128 differ by less than this machine's run-to-run noise (whole queries 4-7 ms).
_LOOKAHEAD = 128


@numba.njit(cache=True, nogil=True)
def _popcount(word: np.uint64) -> np.uint64:  # pragma: no cover - compiled
    """Bits set in a 64-bit word (SWAR; LLVM turns it into one POPCNT instruction)."""
    word = word - ((word >> np.uint64(1)) & np.uint64(0x5555555555555555))
    word = (word & np.uint64(0x3333333333333333)) + ((word >> np.uint64(2)) & np.uint64(0x3333333333333333))
    word = (word + (word >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (word * np.uint64(0x0101010101010101)) >> np.uint64(56)


@numba.njit(cache=True, nogil=True)
def probe_table(  # noqa: PLR0917 - numba compiles positional parameters only
    query: np.ndarray,
    keys: np.ndarray,
    masks: np.ndarray,
    offsets: np.ndarray,
    values: np.ndarray,
    radius: int,
) -> np.ndarray:  # pragma: no cover - compiled
    """Hashes in the buckets ``keys[v] ^ mask`` that lie within ``radius`` of ``query[v]``.

    Compiled: a query probes thousands of buckets of a few dozen entries each, and numpy's
    per-call overhead and temporaries cost more than the comparisons themselves. The time goes
    to memory latency (every bucket is a random place in a multi-GB table), so the kernel works
    in two passes: first every bucket's bounds, independent loads the CPU overlaps; then the
    scans, each touching the bucket a few probes ahead so its first cache line is on the way.
    ``nogil`` lets other threads (the bot's event loop, a second search thread) run meanwhile.
    """
    probes = keys.size * masks.size
    starts = np.empty(probes, dtype=np.int64)
    ends = np.empty(probes, dtype=np.int64)
    targets = np.empty(probes, dtype=np.uint64)
    probe = 0
    scanned = 0
    for variant in range(keys.size):
        for mask in masks:
            key = keys[variant] ^ mask
            starts[probe] = offsets[key]
            ends[probe] = offsets[key + 1]
            targets[probe] = query[variant]
            scanned += ends[probe] - starts[probe]
            probe += 1
    # Room for every hash scanned, so the loop never grows the array: a buffer that may be
    # reallocated inside the loop made the kernel ten times slower (numba keeps reloading it),
    # while pages of this one that are never written are never touched.
    found = np.empty(scanned, dtype=np.uint64)
    count = 0
    limit = np.uint64(radius)
    touched = np.uint64(0)
    for probe in range(probes):
        ahead = probe + _LOOKAHEAD
        if ahead < probes and starts[ahead] < ends[ahead]:
            touched ^= values[starts[ahead]]
        target = targets[probe]
        for position in range(starts[probe], ends[probe]):
            value = values[position]
            if _popcount(value ^ target) <= limit:
                found[count] = value
                count += 1
    if touched == np.uint64(1) and count < 0:  # keeps the look-ahead loads from being removed
        count = 0
    return found[:count]
