"""Pen strokes to grayscale pictures (numpy only): what a drawing pad hands to
:func:`~pynq_neuro.data.prepare_digit`.

A *stroke* is a polyline, a sequence of ``(x, y)`` points in canvas pixels (``x`` to the right,
``y`` down, the origin at the top left corner of pixel (0, 0), as a browser canvas reports
mouse positions); a stroke of one point is a dot. :func:`render_strokes` draws strokes with a
round pen of a given width, anti-aliased: each pixel gets the share of its area that the pen
covers, approximated by a one-pixel linear ramp across the edge of the pen. The picture is
white ink on black, uint8, like an MNIST digit before it is scaled and centred.

:data:`EXAMPLES` holds one hand-drawn-like stroke set for every digit, in a unit square;
:func:`transform_strokes` places them on a canvas at any size and offset.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .idx import DataError

__all__ = ["EXAMPLES", "MAX_POINTS", "MAX_SIDE", "MAX_WORK", "cell_strokes", "check_strokes",
           "render_strokes", "transform_strokes"]

MAX_SIDE = 4096          # largest canvas side, in pixels
MAX_POINTS = 100_000     # most points in one drawing
MAX_WIDTH = 1024.0       # widest pen, in pixels
MAX_WORK = 50_000_000    # most pixel updates (the segments' boxes) in one drawing

Point = Sequence[float]
Strokes = Sequence[Sequence[Point]]


def check_strokes(strokes: Strokes) -> list[np.ndarray]:
    """The strokes as float64 arrays (n, 2) of ``(x, y)`` points; empty strokes are dropped.
    Raises :class:`DataError` for anything but finite coordinate pairs, or too many points."""
    if isinstance(strokes, (str, bytes)) or not isinstance(strokes, (Sequence, np.ndarray)):
        raise DataError(f"strokes must be a sequence of polylines, got {type(strokes).__name__}")
    out: list[np.ndarray] = []
    total = 0
    for i, stroke in enumerate(strokes):
        if isinstance(stroke, (str, bytes)):
            raise DataError(f"stroke {i} is a string, not a sequence of (x, y) points")
        try:
            points = np.asarray(stroke, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"stroke {i} is not a sequence of (x, y) number pairs") from None
        if points.size == 0:
            continue
        if points.ndim != 2 or points.shape[1] != 2:
            raise DataError(f"stroke {i} must hold (x, y) pairs, got an array of shape "
                            f"{points.shape}")
        bad = np.flatnonzero(~np.isfinite(points).all(axis=1))
        if len(bad):
            raise DataError(f"stroke {i}, point {int(bad[0])}: coordinates must be finite, got "
                            f"{tuple(points[bad[0]].tolist())}")
        total += len(points)
        if total > MAX_POINTS:
            raise DataError(f"the drawing has more than {MAX_POINTS} points")
        out.append(points)
    return out


def _check_canvas(size: tuple[int, int], width: float) -> tuple[int, int, float]:
    try:
        h, w = size
    except (TypeError, ValueError):
        raise DataError(f"size must be (height, width), got {size!r}") from None
    for name, v in (("height", h), ("width", w)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= v <= MAX_SIDE:
            raise DataError(f"canvas {name} must be an integer 1..{MAX_SIDE}, got {v!r}")
    if isinstance(width, bool) or not isinstance(width, (int, float, np.integer, np.floating)) \
            or not 0.0 < float(width) <= MAX_WIDTH:
        raise DataError(f"pen width must be a number of pixels in (0, {MAX_WIDTH:g}], got "
                        f"{width!r}")
    return int(h), int(w), float(width)


def render_strokes(strokes: Strokes, size: tuple[int, int] = (280, 280),
                   width: float = 20.0) -> np.ndarray:
    """``strokes`` drawn with a round pen ``width`` pixels wide on a black canvas of ``size``
    (height, width): uint8 (height, width), 255 where the pen covers a pixel, anti-aliased at
    the edges. Points may lie outside the canvas (the ink is clipped). No strokes give a black
    picture. Raises :class:`DataError` for bad strokes, size or width, and for a drawing whose
    segments' boxes hold more than ``MAX_WORK`` pixels in all."""
    h, w, pen = _check_canvas(size, width)
    reach = pen / 2 + 0.5   # distance from the pen's centre line at which coverage ends
    segments = []           # (a, b, rows, columns) of every segment that reaches the canvas
    work = 0
    for points in check_strokes(strokes):
        if len(points) == 1:
            points = np.repeat(points, 2, axis=0)
        for a, b in zip(points[:-1], points[1:]):
            c0 = max(int(np.floor(min(a[0], b[0]) - reach)), 0)
            c1 = min(int(np.ceil(max(a[0], b[0]) + reach)), w)
            r0 = max(int(np.floor(min(a[1], b[1]) - reach)), 0)
            r1 = min(int(np.ceil(max(a[1], b[1]) + reach)), h)
            if c0 < c1 and r0 < r1:
                segments.append((a, b, slice(r0, r1), slice(c0, c1)))
                work += (r1 - r0) * (c1 - c0)
    if work > MAX_WORK:
        raise DataError(f"the drawing takes {work} pixel updates to render, more than "
                        f"{MAX_WORK}: use fewer points, a smaller canvas or a thinner pen")
    cover = np.zeros((h, w))
    for a, b, rows, cols in segments:
        px = np.arange(cols.start, cols.stop) + 0.5
        py = (np.arange(rows.start, rows.stop) + 0.5)[:, None]
        d = b - a
        length2 = float(d @ d)
        t = 0.0 if length2 == 0.0 else \
            np.clip(((px - a[0]) * d[0] + (py - a[1]) * d[1]) / length2, 0.0, 1.0)
        dist = np.hypot(px - (a[0] + t * d[0]), py - (a[1] + t * d[1]))
        np.maximum(cover[rows, cols], np.clip(reach - dist, 0.0, 1.0), out=cover[rows, cols])
    return np.rint(cover * 255.0).astype(np.uint8)


def transform_strokes(strokes: Strokes, scale: float = 1.0,
                      offset: tuple[float, float] = (0.0, 0.0)) -> list[np.ndarray]:
    """Each point ``p`` of the strokes moved to ``p * scale + offset`` (``offset`` is (x, y))."""
    try:
        factor = float(scale)
        shift = np.asarray(offset, np.float64)
    except (TypeError, ValueError):
        factor, shift = float("nan"), np.zeros(0)
    if not np.isfinite(factor) or shift.shape != (2,) or not np.isfinite(shift).all():
        raise DataError(f"scale and offset (x, y) must be finite numbers, got {scale!r}, "
                        f"{offset!r}")
    return [p * factor + shift for p in check_strokes(strokes)]


def cell_strokes(cells: np.ndarray, cell: float) -> list[np.ndarray]:
    """One dot at the centre of every set cell of a grid (a pad of toggle buttons), each cell
    ``cell`` pixels wide: the strokes of a drawing on a canvas of ``cells.shape * cell``."""
    grid = np.asarray(cells)
    if grid.ndim != 2:
        raise DataError(f"cells must be a 2-D grid, got shape {grid.shape}")
    if not np.isfinite(cell) or cell <= 0:
        raise DataError(f"cell size must be a positive number of pixels, got {cell!r}")
    rows, cols = np.nonzero(grid)
    return [np.array([[(c + 0.5) * cell, (r + 0.5) * cell]]) for r, c in zip(rows, cols)]


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float,
         n: int = 12) -> list[tuple[float, float]]:
    """Points on an elliptic arc, angles in degrees (0: right, 90: down)."""
    t = np.radians(np.linspace(start, stop, n))
    return [(round(float(cx + rx * np.cos(a)), 3), round(float(cy + ry * np.sin(a)), 3))
            for a in t]


# One drawing of each digit in the unit square (x right, y down), written the way most people
# draw them: one or two strokes, corners slightly rounded.
EXAMPLES: dict[int, list[list[tuple[float, float]]]] = {
    0: [_arc(0.5, 0.5, 0.3, 0.45, -90, 275, 24)],
    1: [[(0.42, 0.18), (0.56, 0.05), (0.54, 0.5), (0.52, 0.95)]],
    2: [_arc(0.5, 0.3, 0.3, 0.25, 190, 370, 10) + [(0.7, 0.55), (0.2, 0.95), (0.85, 0.93)]],
    3: [_arc(0.48, 0.27, 0.3, 0.22, 200, 450, 12) + _arc(0.48, 0.72, 0.32, 0.23, -90, 160, 12)],
    4: [[(0.55, 0.05), (0.15, 0.62), (0.85, 0.62)], [(0.65, 0.3), (0.63, 0.95)]],
    5: [[(0.8, 0.05), (0.3, 0.05), (0.25, 0.45)] + _arc(0.48, 0.66, 0.32, 0.29, -120, 150, 12)],
    6: [[(0.7, 0.05), (0.4, 0.3)] + _arc(0.5, 0.7, 0.28, 0.25, 195, 555, 18)],
    7: [[(0.15, 0.08), (0.85, 0.08), (0.6, 0.5), (0.4, 0.95)]],
    8: [_arc(0.5, 0.27, 0.25, 0.22, 90, 450, 14) + _arc(0.5, 0.72, 0.3, 0.23, -90, 270, 14)],
    9: [_arc(0.48, 0.3, 0.28, 0.25, 0, 365, 16) + [(0.75, 0.45), (0.7, 0.95)]],
}
