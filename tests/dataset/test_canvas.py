"""Tests for dataset.canvas: fabric.js objects re-drawn at tile resolution, crisp classes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dataset.canvas import rasterize_canvas
from dataset.masks import apply_paint
from dataset.schema import UNLABELLED

RED, BLUE, PURPLE, ERASER = "#e53935", "#1e88e5", "#7e57c2", "#ffffff"
COLOURS = {RED: 1, BLUE: 2, PURPLE: 3, ERASER: UNLABELLED}
CANVAS, TILE = (512, 512), (256, 256)


def freedraw(points: list[tuple[float, float]], width: float, colour: str) -> dict:
    """A path object as fabric 7's PencilBrush + Path constructor leave it in json_data.

    Points must lie on a horizontal or vertical line, so the path's bounding box is the
    points' box (fabric sizes curves by their extrema).
    """
    path: list[list] = [["M", *points[0]]]
    for here, nxt in itertools.pairwise(points):
        middle = ((here[0] + nxt[0]) / 2, (here[1] + nxt[1]) / 2)
        path.append(["Q", *here, *middle])
    path.append(["L", *points[-1]])
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return {
        "type": "Path",
        "version": "7.4.0",
        "originX": "center",
        "originY": "center",
        "left": (min(xs) + max(xs)) / 2,
        "top": (min(ys) + max(ys)) / 2,
        "width": max(xs) - min(xs),
        "height": max(ys) - min(ys),
        "fill": None,
        "stroke": colour,
        "strokeWidth": width,
        "strokeLineCap": "round",
        "strokeLineJoin": "round",
        "strokeMiterLimit": 10,
        "strokeUniform": False,
        "scaleX": 1,
        "scaleY": 1,
        "angle": 0,
        "flipX": False,
        "flipY": False,
        "opacity": 1,
        "visible": True,
        "skewX": 0,
        "skewY": 0,
        "paintFirst": "fill",
        "path": path,
    }


def paint(objects: list[dict], canvas=CANVAS, tile=TILE) -> tuple[np.ndarray, np.ndarray]:
    return rasterize_canvas(objects, canvas_size=canvas, tile_size=tile, color_to_class=COLOURS)


def extent(touched: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(touched)
    return int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())


# --- rasterisation -------------------------------------------------------------------


def test_freehand_path_at_canvas_scale_two():
    # Canvas 512 shows a 256 tile: a 20 px brush at canvas y=200 covers tile rows 95..104.
    values, touched = paint([freedraw([(100, 200), (250, 200), (400, 200)], 20, RED)])
    assert set(np.unique(values)) == {1, UNLABELLED}
    np.testing.assert_array_equal(touched, values != UNLABELLED)
    assert (values[96:104, 50:200] == 1).all()  # under the stroke
    assert not touched[:93].any() and not touched[107:].any()  # beyond the brush
    assert not touched[:, :43].any() and not touched[:, 207:].any()  # beyond the round caps
    assert extent(touched) == (45, 204, 95, 104)  # canvas x 90..410 with the caps, halved


def test_curved_path_is_placed_where_it_was_drawn():
    # fabric sizes a Q segment as the cubic (P0, C, C, P2): here its box reaches y = 187.5
    # while the curve itself bottoms out at y = 175. Left/top follow that box; the drawing
    # must still land where the user drew it.
    obj = freedraw([(100, 100), (150, 200), (200, 100)], 10, RED)
    ts = np.linspace(0, 1, 2001)[:, None]
    curve = (1 - ts) ** 3 * [125, 150] + 3 * (1 - ts) * ts * [150, 200] + ts**3 * [175, 150]
    box = np.vstack([curve, [[100, 100], [200, 100]]])
    obj["left"], obj["top"] = (box.min(axis=0) + box.max(axis=0)) / 2
    obj["height"] = float(box[:, 1].max() - box[:, 1].min())
    values, touched = paint([obj])
    assert set(np.unique(values)) == {1, UNLABELLED}
    _, _, y0, y1 = extent(touched)
    # Canvas 95 (round end caps) to 180 (curve bottom + 5), halved: rows 47.5 to 90, where
    # row 47 only grazes the caps between pixel centres.
    assert (y0, y1) == (48, 89)
    np.testing.assert_array_equal(touched[:, :150], touched[:, 149::-1])  # mirror about x=75
    assert touched[75, 62] and touched[75, 87]  # the Q midpoints (125, 150) and (175, 150)


def test_line_tool_object():
    # fabric Line keeps its end points relative to its centre (calcLinePoints).
    line = {
        "type": "Line",
        "left": 70,
        "top": 30,
        "width": 100,
        "height": 0,
        "x1": -50,
        "y1": 0,
        "x2": 50,
        "y2": 0,
        "fill": BLUE,
        "stroke": BLUE,
        "strokeWidth": 10,
        "strokeLineCap": "butt",
    }
    values, touched = paint([line], canvas=(256, 256))
    assert extent(touched) == (20, 119, 25, 34)
    assert set(np.unique(values)) == {2, UNLABELLED}


def test_origin_and_moves_are_not_applied_twice():
    centred = freedraw([(100, 200), (250, 200), (400, 200)], 20, RED)
    # The same object with a left/top origin (fabric 5's default): the corner of its box,
    # stroke included.
    cornered = dict(centred, originX="left", originY="top", left=250 - 160, top=200 - 10)
    np.testing.assert_array_equal(paint([cornered])[1], paint([centred])[1])
    moved = dict(centred, left=centred["left"] + 40, top=centred["top"] - 20)  # dragged in edit
    np.testing.assert_array_equal(
        paint([moved])[1], np.roll(paint([centred])[1], (-10, 20), axis=(0, 1))
    )
    # The JSON may carry pathOffset; it must agree with the recomputed one.
    with_offset = dict(centred, pathOffset={"x": 250, "y": 200})
    np.testing.assert_array_equal(paint([with_offset])[1], paint([centred])[1])


def test_later_stroke_wins_and_no_third_value_appears():
    horizontal = freedraw([(50, 256), (450, 256)], 30, RED)
    vertical = freedraw([(256, 50), (256, 450)], 30, BLUE)
    values, _ = paint([horizontal, vertical])
    assert set(np.unique(values)) == {1, 2, UNLABELLED}
    assert values[128, 128] == 2 and values[128, 60] == 1 and values[60, 128] == 2
    values, _ = paint([vertical, horizontal])
    assert values[128, 128] == 1
    # Crossing edges, anti-aliased on the canvas, stay pure here.
    assert set(np.unique(values[110:146, 110:146])) <= {1, 2, UNLABELLED}


def test_eraser_paints_unlabelled():
    stroke = freedraw([(50, 256), (450, 256)], 30, RED)
    eraser = freedraw([(256, 50), (256, 450)], 40, ERASER)
    values, touched = paint([stroke, eraser])
    assert values[128, 128] == UNLABELLED and touched[128, 128]
    assert values[128, 60] == 1
    base = np.full((256, 256), 3, dtype=np.uint8)
    new = apply_paint(base, values, touched)
    assert new[128, 128] == UNLABELLED  # erased
    assert new[128, 60] == 1  # painted
    assert new[10, 10] == 3  # untouched keeps the saved label
    assert new[60, 128] == UNLABELLED  # eraser alone clears saved labels too


def rect(**overrides) -> dict:
    # As drawable-canvas's rect tool creates it.
    base = {
        "type": "Rect",
        "originX": "left",
        "originY": "top",
        "left": 100,
        "top": 60,
        "width": 80,
        "height": 40,
        "fill": BLUE,
        "stroke": BLUE,
        "strokeWidth": 4,
        "strokeUniform": True,
        "scaleX": 1,
        "scaleY": 1,
        "angle": 0,
    }
    return base | overrides


def test_rect_tool_geometry():
    # strokeUniform: the outer edge starts at left/top and spans width + strokeWidth.
    values, touched = paint([rect()], canvas=(256, 256))
    assert set(np.unique(values)) == {2, UNLABELLED}
    assert extent(touched) == (100, 183, 60, 103)
    assert touched.sum() == 84 * 44
    # Scaling stretches the shape but not a uniform stroke: 40 × 2 + 4 spans as 80 + 4.
    _, scaled = paint([rect(width=40, scaleX=2)], canvas=(256, 256))
    assert extent(scaled) == extent(touched)
    _, rotated = paint([rect(angle=90, originX="center", originY="center", left=128, top=128)])
    assert extent(rotated) == (64 - 11, 64 + 10, 64 - 21, 64 + 20)  # 84 × 44 turned, halved


def test_polygon_fill():
    # fabric Polygon: absolute points, placed by its centre (default origin in fabric 7).
    points = [{"x": 100, "y": 100}, {"x": 300, "y": 100}, {"x": 100, "y": 300}]
    polygon = {
        "type": "Polygon",
        "left": 200,
        "top": 200,
        "width": 200,
        "height": 200,
        "points": points,
        "fill": PURPLE,
        "stroke": PURPLE,
        "strokeWidth": 2,
    }
    values, _ = paint([polygon])
    assert values[60, 60] == 3  # inside the triangle (canvas 120, 120)
    assert values[120, 120] == UNLABELLED  # beyond the hypotenuse (canvas 240, 240)
    assert values[40, 40] == UNLABELLED  # before its corner


def test_point_tool_circle_is_centred_on_the_click():
    radius, stroke = 6, 2
    circle = {
        "type": "Circle",
        "originX": "left",
        "originY": "center",
        "left": 300 - (radius + stroke / 2),
        "top": 140,
        "width": 2 * radius,
        "height": 2 * radius,
        "radius": radius,
        "fill": RED,
        "stroke": RED,
        "strokeWidth": stroke,
    }
    _, touched = paint([circle], canvas=(512, 512), tile=(512, 512))
    assert extent(touched) == (300 - 7, 300 + 6, 140 - 7, 140 + 6)  # 14 px across


@pytest.mark.parametrize(("join", "corner_painted"), [("miter", True), ("round", False)])
def test_polyline_joins_and_butt_caps(join, corner_painted):
    polyline = {
        "type": "Polyline",
        "left": 150,
        "top": 150,
        "width": 100,
        "height": 100,
        "points": [{"x": 100, "y": 100}, {"x": 200, "y": 100}, {"x": 200, "y": 200}],
        "fill": None,
        "stroke": RED,
        "strokeWidth": 20,
        "strokeLineCap": "butt",
        "strokeLineJoin": join,
    }
    values, touched = paint([polyline], canvas=(256, 256))
    assert values[100, 150] == 1 and values[150, 200] == 1
    assert bool(touched[90, 209]) is corner_painted  # outer corner of the bend
    assert not touched[100, 99] and not touched[200, 200]  # butt ends stop at the points
    assert touched[100, 100] and touched[199, 200]


def test_transparent_fill_paints_only_the_stroke_and_translucent_colours_match():
    hollow = rect(fill="rgba(0, 0, 0, 0)", stroke="rgba(229, 57, 53, 0.5)")
    values, _ = paint([hollow], canvas=(256, 256))
    assert values[80, 140] == UNLABELLED  # the middle is empty
    assert values[61, 140] == 1  # the outline is red's class


def test_unknown_colour_and_type_are_errors():
    with pytest.raises(ValueError, match=r"'#123456'.*not a class colour"):
        paint([freedraw([(0, 0), (10, 0)], 5, "#123456")])
    with pytest.raises(ValueError, match=r"'i-text'.*path"):
        paint([{"type": "i-text", "text": "hi"}])
