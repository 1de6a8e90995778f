"""Find the photographs inside a picture: the panels of a before-and-after picture or a grid, the
photo in a screenshot of a post or on a gallery page.

Such a picture is hashed as a whole by the index, and its whole-picture hashes say nothing about
any one of its photographs. Both sides of a search therefore ask this module where the photographs
are: the index hashes each panel of a dataset entry as one more row (only composites pay for
their panels), and a query hashes each of its own panels as more variants (a person's own
before/after picture finds both photographs).

Panels are found by recursive cuts (an XY-cut, as document layout analysis does it), on a small
grey copy:

* a **gutter** is a band of lines (rows or columns) that are each nearly one colour, with content
  on both sides: the gap between two photographs, a caption strip between a photo and its text;
* a **seam** is a line where two photographs pasted edge to edge meet: the pixels on either side
  differ along most of the line, far more than the lines around it differ from their neighbours
  (a photo's own edges rarely run straight across the whole of it);
* every region is first trimmed of uniform edges (as :mod:`bot.borders` trims a query), so the
  white beside a narrow photo in a stack or the page around a framed one falls away.

Leaves too small to hold a photograph (labels, a name line, a strip of UI) are dropped. A picture
with no cut gives no panels: for the ordinary photograph, the cost is this one look.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from bot.borders import border_depth

Box = tuple[int, int, int, int]  # left, top, right, bottom in the picture's pixels

# Cuts are searched on a grey copy of about this many pixels squared: a 8 px gap in a 4,000 px
# wide composite of four (decoded at 512 px) keeps a line, and a 2-panel picture costs a few milliseconds.
_PROBE_SIDE = 320
# A gutter line is one colour in this share of its pixels (within ``tolerance`` grey levels of
# its median): a line of small label text or JPEG ringing at the edge of a gap still counts.
_GUTTER_LINE_SHARE = 0.98
_GUTTER_TOLERANCE = 8
# A gutter in a JPEG rings near the photographs beside it and may carry a caption's text: a run
# of lines one colour only by the border trim's looser rule is a gutter too when one of its sides
# is a photograph's straight edge, where this share of the neighbouring line differs from the
# gutter (the other side may be a caption's text, which covers little of its lines).
_EDGE_SHARE = 0.5
# ...and when its pixels spread by no more than this (standard deviation, grey levels): a canvas's
# fill is flat under its ringing, a photograph's plain wall or a brick wall's joints are not.
_GUTTER_MAX_STD = 12.0
# A seam's line differs from its neighbour line by this many grey levels in the median pixel...
_SEAM_MIN_STEP = 18.0
# ...and by this many times more than the lines a few pixels either side differ from theirs.
_SEAM_CONTRAST = 4.0
# A seam is more than a line drawn across one picture (a table's rule, a sudoku's grid): the
# lines this far either side of it step as much, while a thin line has the same picture on both.
_SEAM_WIDE = 3
# Nor is it one of several steps close together (a stripe, a pole, a brick wall's joints): no other
# line this near steps along most of its length.
_SEAM_ALONE = 12
# Each side of a cut must keep this share of the region's extent along the cut's axis: a
# four-panel row keeps 25 % a panel; a photo's own uniform sky at its edge is a border, not a panel.
_MIN_SIDE_SHARE = 0.12
# Except at a strict gutter (a canvas's fill), which may cut off a strip this thin (probe lines):
# a screenshot's bar, a label line. Too small a piece to be a panel is dropped afterwards.
_MIN_STRIP = 2
# A panel is at least this share of the picture's area and this many probe pixels on its short
# side; smaller leaves are labels, captions or UI. Four panels of a grid are 25 % each.
_MIN_AREA_SHARE = 0.06
_MIN_SIDE_PIXELS = 24
# Recursion depth: three levels of cuts reach a 2x2 grid with labels, or four side by side.
_MAX_DEPTH = 3
# Regions kept as panels: a 2x2 grid's four and the two halves it was first cut into, or two
# photographs and the pieces of one that a straight edge of its own cut once more.
MAX_PANELS = 6
# A side counts as framed when this share of the picture was trimmed from it (see _framed).
_FRAME_MIN_SHARE = 0.02
# ...and its edge is straight: this share of the photograph's first line differs from the page.
_FRAME_EDGE_SHARE = 0.5
# ...and when its pixels spread by no more than this (standard deviation, grey levels): a canvas's
# fill is flat under its ringing, a photograph's plain wall or a brick wall's joints are not.
_GUTTER_MAX_STD = 12.0
# A region this large is the picture itself (inside a thin border), not one of its photographs.
_WHOLE_SHARE = 0.9


@dataclass(frozen=True)
class PanelLayout:
    """The photographs found in a picture; empty when it is one photograph (no cut was found)."""

    panels: tuple[Box, ...]

    @property
    def is_composite(self) -> bool:
        return len(self.panels) > 0


def find_panels(image: Image.Image, row_share: float, tolerance: int) -> PanelLayout:
    """The panels of ``image`` (largest first, at most :data:`MAX_PANELS`), or none.

    ``row_share`` and ``tolerance`` are the border trim's (``[hashing]`` ``border_*``), applied to
    every region before it is cut."""
    probe = image.convert("L")
    scale = min(1.0, _PROBE_SIDE / np.sqrt(image.width * image.height))
    probe = probe.resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.BOX
    )
    grey = np.asarray(probe, dtype=np.int16)
    height, width = grey.shape
    regions = _split(grey, (0, 0, width, height), 0, row_share, tolerance)
    minimum_area = _MIN_AREA_SHARE * width * height
    kept = [
        (depth, box)
        for number, (depth, box) in enumerate(regions)
        if (box[2] - box[0]) * (box[3] - box[1]) >= minimum_area
        and min(box[2] - box[0], box[3] - box[1]) >= _MIN_SIDE_PIXELS
        and (box[2] - box[0]) * (box[3] - box[1]) < _WHOLE_SHARE * width * height
        and (depth > 0 or (len(regions) == 1 and _framed(grey, box, tolerance)))
    ]
    # Shallow regions first (a panel before the pieces it was over-cut into), larger first.
    kept.sort(key=lambda item: (item[0], -(item[1][2] - item[1][0]) * (item[1][3] - item[1][1])))
    scale_x, scale_y = image.width / width, image.height / height
    panels = [
        (round(b[0] * scale_x), round(b[1] * scale_y), round(b[2] * scale_x), round(b[3] * scale_y))
        for _, b in kept[:MAX_PANELS]
    ]
    return PanelLayout(panels=tuple(sorted(panels, key=lambda b: (b[1], b[0]))))


def _framed(grey: np.ndarray, box: Box, tolerance: int) -> bool:
    """A picture trimmed on at least three sides along straight edges holds one photograph on a
    page (a frame, a screenshot of a post). Fewer sides are more often a photograph's own sky or
    floor, or letterbox bars, which the query's border trim (bot.borders) already handles; and an
    edge where the photograph's content barely touches the trimmed box (a clock on a plain wall,
    a galaxy on black) is no frame: a photograph's edge differs from the page along most of it."""
    height, width = grey.shape
    left, top, right, bottom = box
    sides = (
        (left / width, grey[top:bottom, left - 1], grey[top:bottom, left]),
        (top / height, grey[top - 1, left:right], grey[top, left:right]),
        ((width - right) / width, grey[top:bottom, min(right, width - 1)], grey[top:bottom, right - 1]),
        ((height - bottom) / height, grey[min(bottom, height - 1), left:right], grey[bottom - 1, left:right]),
    )
    framed = 0
    for margin, outside, inside in sides:
        if margin < _FRAME_MIN_SHARE:
            continue
        framed += (np.abs(inside - outside.mean()) > tolerance).mean() >= _FRAME_EDGE_SHARE
    return framed >= 2


def _split(grey: np.ndarray, box: Box, depth: int, row_share: float, tolerance: int) -> list[tuple[int, Box]]:
    """(depth, box) of every region under ``box``, itself included: trimmed of uniform edges, then
    cut at the best gutter or seam and each side split again.

    The regions between the root and the leaves are kept as well: a photograph with a straight
    edge of its own across it (a pole, a building's corner) is cut once more than it should be,
    and the region above that cut is the photograph."""
    trimmed = _trim(grey, box, row_share, tolerance)
    if trimmed is None:
        return []
    regions = [(depth, trimmed)]
    if depth == _MAX_DEPTH:
        return regions
    cut = _best_cut(grey, trimmed, row_share, tolerance)
    if cut is None:
        return regions
    for side in cut:
        regions += _split(grey, side, depth + 1, row_share, tolerance)
    return regions


def _trim(grey: np.ndarray, box: Box, row_share: float, tolerance: int) -> Box | None:
    """``box`` without its uniform edges (the border trim's rule, once), then without the edge
    lines that are one colour by the gutters' stricter rule, again while that finds more (a
    screenshot's coloured bar, then the white page under it); None when nothing is left."""
    left, top, right, bottom = box
    region = grey[top:bottom, left:right]
    if region.size == 0 or border_depth(region, row_share, tolerance) >= region.shape[0]:
        return None
    box = (
        left + border_depth(region.T, row_share, tolerance),
        top + border_depth(region, row_share, tolerance),
        right - border_depth(region.T[::-1], row_share, tolerance),
        bottom - border_depth(region[::-1], row_share, tolerance),
    )
    while box[2] - box[0] >= 2 and box[3] - box[1] >= 2:
        left, top, right, bottom = box
        region = grey[top:bottom, left:right]
        rows, columns = _uniform_lines(region), _uniform_lines(region.T)
        trimmed = (
            left + _leading(columns),
            top + _leading(rows),
            right - _leading(columns[::-1]),
            bottom - _leading(rows[::-1]),
        )
        if trimmed == box:
            return box
        box = trimmed
    return None


def _leading(flags: np.ndarray) -> int:
    """How many leading entries of ``flags`` are true."""
    false = np.flatnonzero(~flags)
    return int(false[0]) if false.size else len(flags)


def _uniform_lines(lines: np.ndarray) -> np.ndarray:
    """Which lines are one colour by the gutters' rule.

    Against the line's mean, not its median (a tenth of the cost): the few pixels of label text a
    gutter line may hold move its mean by a few grey levels only."""
    mean = lines.mean(axis=1, keepdims=True)
    return (np.abs(lines - mean) <= _GUTTER_TOLERANCE).mean(axis=1) >= _GUTTER_LINE_SHARE


def _best_cut(grey: np.ndarray, box: Box, row_share: float, tolerance: int) -> tuple[Box, Box] | None:
    """The widest gutter across ``box`` (either axis), else its strongest seam, else None."""
    left, top, right, bottom = box
    region = grey[top:bottom, left:right]
    candidates: list[tuple[int, float, Box, Box]] = []  # (kind: 1 gutter / 0 seam, strength, a, b)
    for axis in (0, 1):  # 0: cut between columns (side by side); 1: between rows (stacked)
        lines = region.T if axis == 0 else region
        for start, end, kind, strength in _gutters(lines, row_share, tolerance) + _seams(lines):
            if axis == 0:
                first, second = (left, top, left + start, bottom), (left + end, top, right, bottom)
            else:
                first, second = (left, top, right, top + start), (left, top + end, right, bottom)
            candidates.append((kind, strength, first, second))
    if not candidates:
        return None
    _, _, first, second = max(candidates, key=lambda c: (c[0], c[1]))
    return first, second


def _allowed(start: int, end: int, count: int) -> bool:
    """Both sides of a cut at lines [start, end) keep at least the minimum share."""
    return start >= _MIN_SIDE_SHARE * count and count - end >= _MIN_SIDE_SHARE * count


def _gutters(lines: np.ndarray, row_share: float, tolerance: int) -> list[tuple[int, int, int, float]]:
    """Runs of uniform lines (each nearly one colour) with content on both sides: strictly
    uniform, or uniform by the border trim's rule along a straight edge."""
    count = len(lines)
    strict = _uniform_lines(lines)
    mean = lines.mean(axis=1, keepdims=True)
    loose = (np.abs(lines - mean) <= tolerance).mean(axis=1) >= row_share
    runs = []
    for start, end in _runs(strict):
        if start >= _MIN_STRIP and count - end >= _MIN_STRIP:  # a canvas: even a thin strip goes
            runs.append((start, end, 1, float(end - start)))
    for start, end in _runs(loose):
        if not _allowed(start, end, count) or strict[start:end].any():
            continue
        colour = float(np.median(mean[start:end]))
        straight = any(
            (np.abs(lines[line] - colour) > tolerance).mean() >= _EDGE_SHARE for line in (start - 1, end)
        )
        if straight and float(lines[start:end].std()) <= _GUTTER_MAX_STD:
            runs.append((start, end, 1, float(end - start)))
    return runs


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of true flags."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _seams(lines: np.ndarray) -> list[tuple[int, int, int, float]]:
    """Lines where two pictures pasted edge to edge meet (see the module's docstring)."""
    count = len(lines)
    if count < 16:
        return []
    # The step across each boundary, two lines apart so a seam softened by resampling still shows:
    # a seam's median pixel steps by _SEAM_MIN_STEP (half its pixels do), and its mean step stands
    # out from those of the lines a few pixels either side.
    steps = np.abs(lines[2:] - lines[:-2])  # steps[i]: between lines i and i+2
    stepped = (steps >= _SEAM_MIN_STEP).mean(axis=1) >= 0.5
    strength = steps.mean(axis=1)
    # Alone: no other stepped line 3.._SEAM_ALONE away on either side (cumulative counts).
    counts = np.concatenate([[0], np.cumsum(stepped)])
    index = np.arange(len(stepped))

    def stepped_between(first: np.ndarray, last: np.ndarray) -> np.ndarray:
        first, last = np.clip(first, 0, len(stepped)), np.clip(last, 0, len(stepped))
        return counts[np.maximum(last, first)] - counts[first]

    alone = (
        stepped_between(index - _SEAM_ALONE, index - 2) + stepped_between(index + 3, index + _SEAM_ALONE + 1)
    ) == 0
    previous = np.concatenate([[-np.inf], strength[:-1]])
    following = np.concatenate([strength[1:], [-np.inf]])
    peak = (strength >= previous) & (strength > following)  # one line for a seam over two steps
    seams = []
    for i in np.flatnonzero(stepped & alone & peak).tolist():
        near = np.concatenate([strength[max(0, i - 8) : max(0, i - 3)], strength[i + 4 : i + 9]])
        if near.size == 0 or strength[i] < _SEAM_CONTRAST * max(float(np.median(near)), 1.0):
            continue
        boundary = i + 1
        low, high = i - _SEAM_WIDE + 1, i + _SEAM_WIDE + 1
        if not _allowed(boundary, boundary + 1, count) or low < 0 or high >= count:
            continue
        if (np.abs(lines[high] - lines[low]) >= _SEAM_MIN_STEP).mean() >= 0.5:
            seams.append((boundary, boundary + 1, 0, float(strength[i])))
    return seams
