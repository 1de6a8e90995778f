"""``pdqhash.compute``, bit for bit, in a fifth of its time on a full-size photo.

Why: an index build hashes every picture twice with PDQ, on its work picture and on the whole file
at full size (:mod:`bot.whole_picture`), and pdqhash took ~20 ms of a 1024 px photo's ~42 ms. Its
time goes to the grey conversion and the blur before the 64 x 64 samples; those are done by
:mod:`bot.signals.pdq_kernel` with the same float arithmetic. The rest -- the quality metric, the
DCT, the median and the bits -- is still pdqhash's own C++: its ``pdqHash256FromFloatLuma`` is
handed the 64 x 64 samples, which it takes as they are (a 64 x 64 picture is not blurred), so the
DCT matrix, the float sums' order and the median are the library's by construction, not copies.

That function is reached through ctypes in pdqhash's compiled module (its symbol is exported;
pdqhash is pinned in requirements.txt). Wherever that is not possible -- the symbol is missing in
another pdqhash, or an array the kernel is not written for (not uint8 with 3+ channels, under 5
pixels a side) -- :func:`compute` is ``pdqhash.compute`` itself, errors included.
tests/bot/test_pdq_fast.py compares the two on real photos and on made arrays of awkward sizes.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable

import numpy as np
import pdqhash
import pdqhash.bindings

# facebook::pdq::hashing::pdqHash256FromFloatLuma(float*, float*, int, int, float[64][64],
# float[16][64], float[16][16], Hash256&, int&), as g++ names it.
_HASH_FROM_LUMA = "_ZN8facebook3pdq7hashing23pdqHash256FromFloatLumaEPfS2_iiPA64_fS4_PA16_fRNS1_7Hash256ERi"
_MIN_SIDE = 5  # pdq_kernel.MIN_SIDE, PDQ's MIN_HASHABLE_DIM (importing the kernel loads numba)
_BIT_NUMBERS = np.arange(256)


@functools.cache
def _hash_from_luma() -> Callable[..., None] | None:
    """pdqhash's C++ entry point, or None where this pdqhash does not export it."""
    try:
        function = ctypes.CDLL(pdqhash.bindings.__file__)[_HASH_FROM_LUMA]
    except (OSError, AttributeError):
        return None
    pointer = ctypes.c_void_p
    function.argtypes = [pointer, pointer, ctypes.c_int, ctypes.c_int, *[pointer] * 5]
    function.restype = None
    return function  # type: ignore[no-any-return]


def available() -> bool:
    """Whether :func:`compute` takes the fast path (else it is ``pdqhash.compute``)."""
    return _hash_from_luma() is not None


def load() -> None:
    """Load (compiling on the first run) the kernel now: a build does it before forking its
    workers, so each inherits it instead of loading numba itself."""
    if available():
        from bot.signals.pdq_kernel import downsample

        downsample(np.zeros((_MIN_SIDE, _MIN_SIDE, 3), np.uint8))


def compute(pixels: np.ndarray) -> tuple[np.ndarray, int]:
    """What ``pdqhash.compute(pixels)`` returns: the 256 bits (first of pdqhash's order first) and
    the quality 0-100."""
    hash_from_luma = _hash_from_luma()
    if (
        hash_from_luma is None
        or pixels.dtype != np.uint8
        or pixels.ndim != 3  # rows, columns, channels
        or pixels.shape[2] < 3  # pdqhash reads the first three channels
        or min(pixels.shape[:2]) < _MIN_SIDE
    ):
        return pdqhash.compute(pixels)  # type: ignore[no-any-return]
    from bot.signals.pdq_kernel import PDQ_SIDE, downsample

    samples = np.ascontiguousarray(downsample(pixels))
    scratch = np.empty((PDQ_SIDE, PDQ_SIDE), np.float32)
    dct_in = np.empty((PDQ_SIDE, PDQ_SIDE), np.float32)
    dct_half = np.empty((16, PDQ_SIDE), np.float32)
    dct_out = np.empty((16, 16), np.float32)
    words = np.zeros(16, np.uint16)  # Hash256: sixteen 16-bit words, bit k in word k // 16
    quality = np.zeros(1, np.intc)
    hash_from_luma(
        samples.ctypes.data,
        scratch.ctypes.data,
        PDQ_SIDE,
        PDQ_SIDE,
        dct_in.ctypes.data,
        dct_half.ctypes.data,
        dct_out.ctypes.data,
        words.ctypes.data,
        quality.ctypes.data,
    )
    # pdqhash's hash_to_vector: bit k of the hash at position 255 - k
    bits = ((words[_BIT_NUMBERS >> 4] >> (_BIT_NUMBERS & 15)) & 1)[::-1].astype(np.uint8)
    return bits, int(quality[0])
