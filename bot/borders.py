"""Find uniform borders (letterbox bars, a caption banner) so a query can be hashed without them.

Bars added around a copy shift and shrink the picture inside them, which moves every hash. A
border is found from the outside in: a row (or column) is border while nearly all of its pixels
share the colour of the outermost row.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# Borders are searched on a small grey copy: bars are large, and this keeps the cost negligible.
_PROBE_SIDE = 256
# A trimmed picture must keep at least this share of each side: more looks like a flat picture,
# not a bordered one, and nothing would be left to hash.
_MIN_KEPT_SHARE = 0.4
# Fewer border lines than this share of the side are noise (JPEG ringing at the edge), not bars.
_MIN_BORDER_SHARE = 0.02


def border_depth(lines: np.ndarray, row_share: float, tolerance: int) -> int:
    """How many leading lines of ``lines`` are (almost entirely) the colour of the first one."""
    reference = float(np.median(lines[0]))
    close_share = (np.abs(lines - reference) <= tolerance).mean(axis=1)
    not_border = np.flatnonzero(close_share < row_share)
    return int(not_border[0]) if not_border.size else len(lines)


def find_content_box(
    image: Image.Image, row_share: float, tolerance: int
) -> tuple[int, int, int, int] | None:
    """The box (left, top, right, bottom) inside uniform borders, or None when there are none."""
    probe = image.convert("L")
    probe.thumbnail((_PROBE_SIDE, _PROBE_SIDE))
    grey = np.asarray(probe, dtype=np.int16)
    height, width = grey.shape
    top = border_depth(grey, row_share, tolerance)
    bottom = border_depth(grey[::-1], row_share, tolerance)
    left = border_depth(grey.T, row_share, tolerance)
    right = border_depth(grey.T[::-1], row_share, tolerance)
    if height - top - bottom < height * _MIN_KEPT_SHARE or width - left - right < width * _MIN_KEPT_SHARE:
        return None
    if max(top, bottom) < height * _MIN_BORDER_SHARE and max(left, right) < width * _MIN_BORDER_SHARE:
        return None
    scale_x, scale_y = image.width / width, image.height / height
    return (
        round(left * scale_x),
        round(top * scale_y),
        image.width - round(right * scale_x),
        image.height - round(bottom * scale_y),
    )
