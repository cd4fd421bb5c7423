"""Pen strokes to pictures (``pynq_neuro.data.strokes``): the geometry of the rasteriser, its
refusals, and drawn digits at many sizes, places and pen widths classified by the shipped
hardware model (golden model) after ``prepare_digit``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import run_numpy_only

from pynq_neuro import zoo
from pynq_neuro.data import DataError, prepare_digit
from pynq_neuro.data.strokes import (
    EXAMPLES,
    MAX_POINTS,
    MAX_SIDE,
    cell_strokes,
    render_strokes,
    transform_strokes,
)
from pynq_neuro.golden import run


@pytest.fixture(scope="module")
def net():
    return zoo.load_network(zoo.hardware_default())


# (canvas height, width), digit size in pixels, where its box starts (x, y), pen width as a
# share of the digit size
PLACEMENTS = [
    ((280, 280), 240, (20, 20), 0.08),
    ((280, 280), 120, (10, 150), 0.12),
    ((280, 280), 60, (200, 30), 0.16),
    ((200, 320), 180, (120, 5), 0.06),
    ((280, 280), 200, (-10, 60), 0.10),   # the box reaches off the canvas, the drawing not
    ((56, 56), 48, (4, 4), 0.15),
    ((28, 28), 24, (2, 2), 0.18),
]


@pytest.mark.parametrize("digit", sorted(EXAMPLES))
def test_drawn_digits_are_classified_as_drawn(digit, net):
    pictures = []
    for (shape, size, offset, pen) in PLACEMENTS:
        strokes = transform_strokes(EXAMPLES[digit], size, offset)
        pictures.append(prepare_digit(render_strokes(strokes, shape, pen * size)))
    classes = run(net, np.stack(pictures)).classes
    assert classes.tolist() == [digit] * len(PLACEMENTS)


def test_drawn_digit_on_a_toggle_grid_is_classified(net):
    """The fallback pad: a 16x16 grid of cells set where a drawing passes."""
    grid = 16
    for digit, strokes in EXAMPLES.items():
        coarse = render_strokes(transform_strokes(strokes, 13, (1.5, 1.5)), (grid, grid), 1.2)
        cells = coarse >= 128
        picture = render_strokes(cell_strokes(cells, 20.0), (grid * 20, grid * 20), 28.0)
        assert run(net, prepare_digit(picture)[None]).classes[0] == digit


def test_line_is_as_wide_as_the_pen_with_soft_edges():
    img = render_strokes([[(20.0, 50.3), (80.0, 50.3)]], (100, 100), 10.0)
    column = img[:, 50].astype(float)
    assert abs(column.sum() / 255 - 10.0) < 0.05          # ink across the line = pen width
    assert (column == 255).sum() == 9                      # rows 46..54 fully covered
    assert ((column > 0) & (column < 255)).sum() == 2      # one soft pixel on each side
    assert np.flatnonzero(column).tolist() == list(range(45, 56))
    assert img[50, 15] > 250 and img[50, 84] > 250           # round caps reach 5 px beyond
    assert not img[:, :15].any() and not img[:, 85:].any()  # the ends, no further


def test_ink_grows_with_the_pen_and_a_dot_is_a_disc():
    sums = [int(render_strokes([[(60, 60), (140, 100)]], (200, 200), w).sum())
            for w in (1, 2, 4, 8, 16, 32)]
    assert sums == sorted(sums) and len(set(sums)) == len(sums)
    dot = render_strokes([[(50.0, 50.0)]], (100, 100), 20.0).astype(float) / 255
    assert abs(dot.sum() - np.pi * 10 ** 2) < 0.02 * np.pi * 10 ** 2
    assert np.array_equal(dot, dot.T) and np.array_equal(dot, dot[::-1]) \
        and np.array_equal(dot, dot[:, ::-1])


def test_moving_the_strokes_moves_the_picture():
    strokes = transform_strokes(EXAMPLES[3], 100, (40, 40))
    base = render_strokes(strokes, (200, 200), 9.0)
    for dx, dy in [(13, 0), (0, -21), (30, 25)]:
        moved = render_strokes(transform_strokes(strokes, 1.0, (dx, dy)), (200, 200), 9.0)
        diff = moved.astype(int) - np.roll(base, (dy, dx), axis=(0, 1))
        assert np.abs(diff).max() <= 1 and moved.sum() > 0  # equal up to rounding


def test_ink_off_the_canvas_is_clipped():
    inside = render_strokes([[(-50, 10), (50, 10)]], (40, 40), 6.0)
    assert inside[10, :36].min() == 255 and not inside[20:].any()
    assert not render_strokes([[(-50, -50), (-10, -5)], [(100, 100)]], (40, 40), 6.0).any()


def test_an_empty_drawing_is_black_and_refused_as_blank():
    for strokes in ([], [[]], [[], []]):
        img = render_strokes(strokes, (50, 60), 5.0)
        assert img.shape == (50, 60) and img.dtype == np.uint8 and not img.any()
    with pytest.raises(DataError, match="blank"):
        prepare_digit(render_strokes([], (280, 280), 20.0))


def test_cell_strokes_put_a_dot_in_every_set_cell():
    cells = np.zeros((4, 5), bool)
    cells[1, 3] = cells[2, 0] = True
    strokes = cell_strokes(cells, 10.0)
    assert sorted(s.tolist() for s in strokes) == [[[5.0, 25.0]], [[35.0, 15.0]]]
    img = render_strokes(strokes, (40, 50), 10.0)
    assert img[15, 35] == 255 and img[25, 5] == 255 and img[5, 5] == 0
    with pytest.raises(DataError, match="2-D grid"):
        cell_strokes(np.zeros(4), 10.0)
    with pytest.raises(DataError, match="cell size"):
        cell_strokes(cells, 0.0)


BAD_STROKES = [
    ([[(1.0, float("nan"))]], "finite"),
    ([[(0.0, 0.0), (float("inf"), 2.0)]], "stroke 0, point 1"),
    ([[(0, 0)], [(1, 2, 3)]], "stroke 1 must hold"),
    ([[(0, 0), (1,)]], "stroke 0 is not"),
    ([[("a", "b")]], "stroke 0 is not"),
    ([["xy"]], "stroke 0 is not"),
    (["ab"], "is a string"),
    ("strokes", "sequence of polylines"),
    (None, "sequence of polylines"),
    (42, "sequence of polylines"),
    ([np.zeros((MAX_POINTS + 1, 2))], "more than"),
]


@pytest.mark.parametrize("strokes, message", BAD_STROKES)
def test_bad_strokes_are_refused(strokes, message):
    with pytest.raises(DataError, match=message):
        render_strokes(strokes, (20, 20), 3.0)


@pytest.mark.parametrize("size, width, message", [
    ((0, 20), 3.0, "height must be"),
    ((20, MAX_SIDE + 1), 3.0, "width must be an integer"),
    ((20.0, 20), 3.0, "height must be"),
    ((True, 20), 3.0, "height must be"),
    ((20,), 3.0, r"size must be \(height, width\)"),
    (20, 3.0, r"size must be \(height, width\)"),
    ((20, 20), 0.0, "pen width"),
    ((20, 20), -1.0, "pen width"),
    ((20, 20), float("nan"), "pen width"),
    ((20, 20), 1e9, "pen width"),
    ((20, 20), True, "pen width"),
    ((20, 20), "5", "pen width"),
])
def test_bad_canvas_or_pen_is_refused(size, width, message):
    with pytest.raises(DataError, match=message):
        render_strokes([[(5, 5), (10, 10)]], size, width)


def test_a_drawing_too_costly_to_render_is_refused():
    """Segments that each span the canvas: refused before any pixel is computed."""
    zigzag = [[(0, 0), (999, 999)] * 100]
    with pytest.raises(DataError, match="pixel updates to render, more than"):
        render_strokes(zigzag, (1000, 1000), 4.0)
    assert render_strokes(zigzag, (100, 100), 4.0).any()   # the same strokes on a small canvas


def test_bad_transform_is_refused():
    for scale, offset in [(float("nan"), (0, 0)), (1.0, (0, float("inf"))), (1.0, (1, 2, 3))]:
        with pytest.raises(DataError, match="finite"):
            transform_strokes(EXAMPLES[1], scale, offset)


def test_examples_stay_in_the_unit_square():
    for digit, strokes in EXAMPLES.items():
        points = np.concatenate([np.asarray(s) for s in strokes])
        assert points.min() >= 0.0 and points.max() <= 1.0, digit


def test_strokes_render_with_numpy_only():
    r = run_numpy_only("""
        import json
        from pynq_neuro.data import prepare_digit
        from pynq_neuro.data.strokes import EXAMPLES, render_strokes, transform_strokes
        img = render_strokes(transform_strokes(EXAMPLES[7], 200, (40, 40)), (280, 280), 16)
        print(json.dumps({'ink': int((prepare_digit(img) > 0).sum()),
                          'torch': [m for m in sys.modules if m.split('.')[0] == 'torch']}))
    """)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["torch"] == [] and out["ink"] > 50

