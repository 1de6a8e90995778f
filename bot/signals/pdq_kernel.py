"""The compiled part of PDQ (see :mod:`bot.signals.pdq_fast`): a picture's luma, blurred and cut
down to the 64 x 64 samples PDQ's DCT reads, with the float operations of pdqhash's C++.

pdqhash (0.2.8, Meta's ``pdq/cpp``) spends ~80% of a full-size picture's time here: its grey
conversion is numpy in float64 over the whole picture, and its blur (the Jarosz filter: a running
box sum along each row, then each column, twice) walks one line at a time, so every pixel waits
for the addition before it (~8 cycles a pixel and pass). This module does the same arithmetic on
the same values in the same order *within each line* -- the luma in float64 as numpy evaluates
``R*0.299 + G*0.587 + B*0.114`` then rounded to float32; each box sum a float32 ``sum += in[r];
sum -= in[l]`` divided by the window's length as a float32 -- so every value is bit-for-bit the
library's; only independent lines run side by side (the column pass over a whole row of columns
at once, which the compiler turns into vector instructions). No ``fastmath``: numba's default
neither reorders nor fuses float operations (no FMA), which exactness needs.

A module of its own so that importing :mod:`bot.signals` does not load numba (~1 s).
"""

from __future__ import annotations

import numba
import numpy as np

PDQ_SIDE = 64  # the samples PDQ's DCT reads, along each side
JAROSZ_PASSES = 2  # PDQ_NUM_JAROSZ_XY_PASSES: two box passes make a tent filter
MIN_SIDE = 5  # MIN_HASHABLE_DIM: pdqhash gives a zero hash of quality 0 under it
ROWS_AT_ONCE = 4  # the row pass's interleave: 1.45 -> 1.04 ms a 1024 x 684 pass (8: no better)


# Each channel value's product with its luma weight, as numpy forms it for pdqhash (a uint8 times a
# Python float is that value as a float64 times the weight): looked up, not multiplied, which
# halves the grey conversion's time and gives the same float64s.
_RED = np.arange(256) * 0.299
_GREEN = np.arange(256) * 0.587
_BLUE = np.arange(256) * 0.114


@numba.njit(cache=True, nogil=True)
def _luma(pixels: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """pdqhash's grey: ``(image[:, :, 0]*0.299 + image[:, :, 1]*0.587 + image[:, :, 2]*0.114)
    .astype('float32')``, each product and sum in float64 as numpy does them, left to right."""
    rows, cols = pixels.shape[0], pixels.shape[1]
    luma = np.empty((rows, cols), np.float32)
    for i in range(rows):
        for j in range(cols):
            value = _RED[pixels[i, j, 0]] + _GREEN[pixels[i, j, 1]]
            luma[i, j] = np.float32(value + _BLUE[pixels[i, j, 2]])
    return luma


@numba.njit(cache=True, nogil=True)
def _box_along_rows(source: np.ndarray, target: np.ndarray, window: int) -> None:  # pragma: no cover
    """``boxAlongRowsFloat``: each row through ``box1DFloat``'s four phases (growing window,
    full window, shrinking window), the running sum a float32 as in the C++.

    Four rows at a time: one row's sums wait on each other (~8 cycles a pixel), four rows' do
    not. Needs 4+ rows (the fast path's pictures have 5+); the last block overlaps the one
    before it when the rows do not divide by four, which writes the same values again."""
    rows, cols = source.shape
    half = (window + 2) // 2
    totals = np.zeros(ROWS_AT_ONCE, np.float32)
    for block in range(0, rows, ROWS_AT_ONCE):
        first = min(block, rows - ROWS_AT_ONCE)
        totals[:] = 0.0
        count = 0
        for right in range(half - 1):
            for r in range(ROWS_AT_ONCE):
                totals[r] += source[first + r, right]
            count += 1
        out = 0
        for right in range(half - 1, window):
            count += 1
            size = np.float32(count)
            for r in range(ROWS_AT_ONCE):
                total = totals[r] + source[first + r, right]
                totals[r] = total
                target[first + r, out] = total / size
            out += 1
        full = np.float32(count)
        for left in range(cols - window):
            for r in range(ROWS_AT_ONCE):
                total = totals[r] + source[first + r, left + window]
                total = total - source[first + r, left]
                totals[r] = total
                target[first + r, out] = total / full
            out += 1
        for left in range(cols - window, cols - window + half - 1):
            count -= 1
            size = np.float32(count)
            for r in range(ROWS_AT_ONCE):
                total = totals[r] - source[first + r, left]
                totals[r] = total
                target[first + r, out] = total / size
            out += 1


@numba.njit(cache=True, nogil=True)
def _box_along_columns(source: np.ndarray, target: np.ndarray, window: int) -> None:  # pragma: no cover
    """``boxAlongColsFloat``: ``box1DFloat`` down each column, every column's running sum kept
    side by side and advanced a row at a time (the inner loop over columns vectorises; each
    column still sees its own additions in the C++'s order)."""
    rows, cols = source.shape
    half = (window + 2) // 2
    totals = np.zeros(cols, np.float32)
    count = 0
    for right in range(half - 1):
        for j in range(cols):
            totals[j] += source[right, j]
        count += 1
    out = 0
    for right in range(half - 1, window):
        count += 1
        size = np.float32(count)
        for j in range(cols):
            total = totals[j] + source[right, j]
            totals[j] = total
            target[out, j] = total / size
        out += 1
    full = np.float32(count)
    for left in range(rows - window):
        for j in range(cols):
            total = totals[j] + source[left + window, j]
            total = total - source[left, j]
            totals[j] = total
            target[out, j] = total / full
        out += 1
    for left in range(rows - window, rows - window + half - 1):
        count -= 1
        size = np.float32(count)
        for j in range(cols):
            total = totals[j] - source[left, j]
            totals[j] = total
            target[out, j] = total / size
        out += 1


@numba.njit(cache=True, nogil=True)
def downsample(pixels: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """The (64, 64) float32 buffer ``pdqFloat256FromFloatLuma`` hands its quality metric and DCT,
    for an (rows, cols, >= 3) uint8 array of at least 5 x 5 pixels: luma, the Jarosz filter with
    ``computeJaroszFilterWindowSize``'s windows, then ``decimateFloat``'s sample centres (a
    64 x 64 picture is taken as it is, as the C++ does)."""
    if pixels.shape[0] < MIN_SIDE or pixels.shape[1] < MIN_SIDE:
        raise ValueError("PDQ's kernel takes pictures of 5 x 5 pixels or more")
    luma = _luma(pixels)
    rows, cols = luma.shape
    if rows == PDQ_SIDE and cols == PDQ_SIDE:
        return luma
    along_rows = (cols + 2 * PDQ_SIDE - 1) // (2 * PDQ_SIDE)
    along_columns = (rows + 2 * PDQ_SIDE - 1) // (2 * PDQ_SIDE)
    scratch = np.empty_like(luma)
    for _ in range(JAROSZ_PASSES):
        _box_along_rows(luma, scratch, along_rows)
        _box_along_columns(scratch, luma, along_columns)
    samples = np.empty((PDQ_SIDE, PDQ_SIDE), np.float32)
    for i in range(PDQ_SIDE):
        row = int(((i + 0.5) * rows) / PDQ_SIDE)
        for j in range(PDQ_SIDE):
            samples[i, j] = luma[row, int(((j + 0.5) * cols) / PDQ_SIDE)]
    return samples
