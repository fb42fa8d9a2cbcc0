"""Canvas drawings re-drawn as class indices: the fabric.js objects of
``streamlit-drawable-canvas`` at tile resolution, without anti-aliasing.

Promises:

* :func:`rasterize_canvas` places each object as fabric.js 7 does (origin, scale, flip, skew,
  angle, ``pathOffset``), flattens its curves and fills and strokes it with exact
  pixel-centre tests, so no stroke edge ever takes a third class and a pixel is painted
  exactly when its centre is inside a shape. Later objects win.
* Pure: nothing here reads or writes the store. :func:`dataset.masks.apply_paint` lays the
  result over a tile's mask.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dataset._colors import _palette, _parse_color, _rgb_to_hex
from dataset.schema import UNLABELLED

__all__ = ["rasterize_canvas"]

_ORIGIN = {"left": -0.5, "top": -0.5, "center": 0.0, "right": 0.5, "bottom": 0.5}
_ERASE = 256  # drawn as class + 1 into an int raster; 0 = untouched, 256 = erase to 255
_SUPPORTED = ("path", "polyline", "polygon", "rect", "labeledrect", "circle", "ellipse", "line")


def rasterize_canvas(
    objects: Sequence[Mapping[str, Any]],
    *,
    canvas_size: tuple[int, int],
    tile_size: tuple[int, int],
    color_to_class: Mapping[str, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Re-draw ``streamlit-drawable-canvas`` objects at tile resolution, without anti-aliasing.

    Follows fabric.js 7 (the library inside streamlit-drawable-canvas 0.13): each object is
    placed by ``left``/``top`` at its ``originX``/``originY`` (default ``center``), with
    ``scaleX``/``scaleY``, ``flipX``/``flipY``, ``skewX``/``skewY`` and ``angle`` about its
    centre; path and polygon coordinates are taken relative to ``pathOffset`` (recomputed as
    fabric does when the JSON lacks it), so nothing is offset twice. Freehand paths are
    flattened (quadratic and cubic segments) and stroked at ``strokeWidth`` with round joins
    and caps; rectangles, polygons, circles and ellipses are filled and stroked, in
    ``paintFirst`` order. A pixel is painted when its centre is inside a shape, and objects
    are drawn in list order, so later strokes win. Dashes and rounded rectangle corners are
    not reproduced, and fills use the non-zero rule; a non-uniformly scaled stroke takes the
    geometric mean of the scales.

    Args:
        objects: ``json_data["objects"]`` of the canvas.
        canvas_size: Canvas (width, height) in canvas pixels.
        tile_size: Tile (width, height) in pixels; the canvas shows the tile stretched over it.
        color_to_class: Stroke/fill colour (``#rrggbb``, ``rgb()``, ``rgba()`` or a CSS name;
            alpha is ignored) to class index; 255 marks the eraser, which paints
            "unlabelled". Fully transparent fills and strokes paint nothing.

    Returns:
        ``(values, touched)``: the painted class per pixel (255 where erased or untouched)
        and which pixels any object covered. Apply with :func:`apply_paint`.

    Raises:
        ValueError: An object of an unsupported type, a colour missing from
            ``color_to_class``, or malformed geometry.

    Shape:
        values: (tile_h, tile_w), uint8. touched: (tile_h, tile_w), bool.
    """
    cw, ch = _positive_size(canvas_size, "canvas_size")
    tw, th = _positive_size(tile_size, "tile_size")
    palette = _palette(color_to_class)
    scale = np.array([tw / cw, th / ch])
    pen_scale = math.sqrt(scale[0] * scale[1])
    raster = _Raster(tw, th)
    for number, obj in enumerate(objects):
        kind = str(obj.get("type", "")).lower()
        if kind not in _SUPPORTED:
            raise ValueError(
                f"Canvas object {number} is of type {obj.get('type')!r}; SmearLab turns only "
                f"these into mask pixels: {', '.join(_SUPPORTED)}."
            )
        if obj.get("visible") is False or _num(obj, "opacity", 1) <= 0:
            continue
        try:
            shapes, closed_area = _local_geometry(obj, kind)
            matrix = _object_matrix(obj)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ValueError(f"Canvas object {number} ({kind}) is malformed: {exc!r}.") from None
        if abs(np.linalg.det(matrix[:, :2])) < 1e-12:
            continue  # scaled to nothing: fabric draws nothing either
        placed = [(_transform(matrix, pts) * scale, closed) for pts, closed in shapes]
        fill = _paint_value(obj.get("fill"), palette, number, "fill") if closed_area else None
        stroke = _paint_value(obj.get("stroke"), palette, number, "stroke")
        width = _num(obj, "strokeWidth", 1)
        if not obj.get("strokeUniform"):
            width *= math.sqrt(abs(np.linalg.det(matrix[:, :2])))
        width *= pen_scale
        # A brush thinner than a tile pixel still leaves a one-pixel trace.
        half = max(width / 2, 0.5)
        order = ("stroke", "fill") if obj.get("paintFirst") == "stroke" else ("fill", "stroke")
        for step in order:
            if step == "fill" and fill is not None:
                for pts, _ in placed:
                    raster.polygon(pts, fill)
            if step == "stroke" and stroke is not None and width > 0:
                cap = obj.get("strokeLineCap") or "butt"
                join = obj.get("strokeLineJoin") or "miter"
                limit = _num(obj, "strokeMiterLimit", 4)
                for pts, closed in placed:
                    _stroke(raster, pts, closed, half, cap, join, limit, stroke)
    painted = raster.pixels
    touched = painted > 0
    values = np.where(touched, painted - 1, UNLABELLED).clip(0, 255).astype(np.uint8)
    return values, touched


# --- fabric.js geometry ------------------------------------------------------------------------


def _positive_size(size: tuple[int, int], what: str) -> tuple[int, int]:
    width, height = (int(v) for v in size)
    if width <= 0 or height <= 0:
        raise ValueError(f"{what} must be a positive (width, height), got {size}.")
    return width, height


def _paint_value(colour: Any, palette: Mapping[str, int], number: int, what: str) -> int | None:
    """Raster value for a stroke/fill colour: class + 1, _ERASE for the eraser, None for none."""
    parsed = _parse_color(colour)
    if parsed is None or parsed[1] <= 0:
        return None
    key = _rgb_to_hex(parsed[0])
    if key not in palette:
        raise ValueError(
            f"Canvas object {number} has {what} colour {colour!r}, which is not a class colour; "
            f"known colours: {', '.join(sorted(palette))}."
        )
    index = palette[key]
    return _ERASE if index == UNLABELLED else index + 1


def _num(obj: Mapping[str, Any], key: str, default: float) -> float:
    value = obj.get(key)
    return float(default) if value is None else float(value)


def _origin(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value) - 0.5
    return _ORIGIN[str(value)]


def _object_matrix(obj: Mapping[str, Any]) -> np.ndarray:
    """Object plane -> canvas, as fabric's calcOwnMatrix; (2, 3)."""
    sx, sy = _num(obj, "scaleX", 1), _num(obj, "scaleY", 1)
    skew_x = math.tan(math.radians(_num(obj, "skewX", 0)))
    skew_y = math.tan(math.radians(_num(obj, "skewY", 0)))
    scale_only = np.diag([sx, sy])
    skews = np.array([[1.0, skew_x], [0.0, 1.0]]) @ np.array([[1.0, 0.0], [skew_y, 1.0]])
    flips = np.diag([-1.0 if obj.get("flipX") else 1.0, -1.0 if obj.get("flipY") else 1.0])
    linear = scale_only @ flips @ skews
    # Size used to move from the origin point to the centre (_getTransformedDimensions).
    stroke = _num(obj, "strokeWidth", 1)
    uniform = bool(obj.get("strokeUniform"))
    width = _num(obj, "width", 0) + (0.0 if uniform else stroke)
    height = _num(obj, "height", 0) + (0.0 if uniform else stroke)
    if skew_x == 0 and skew_y == 0:
        dims = np.array([width * sx, height * sy])
    else:
        corners = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]]) * [width / 2, height / 2]
        moved = corners @ (scale_only @ skews).T
        dims = moved.max(axis=0) - moved.min(axis=0)
    if uniform:
        dims = dims + stroke
    anchor = np.array([_num(obj, "left", 0), _num(obj, "top", 0)])
    shift = -np.array(
        [_origin(obj.get("originX", "center")), _origin(obj.get("originY", "center"))]
    )
    angle = math.radians(_num(obj, "angle", 0))
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    centre = anchor + rotation @ (shift * dims)
    return np.hstack([rotation @ linear, centre[:, None]])


def _transform(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def _local_geometry(
    obj: Mapping[str, Any], kind: str
) -> tuple[list[tuple[np.ndarray, bool]], bool]:
    """Outlines in the object's own plane (centre at 0) and whether they enclose a fill."""
    if kind in ("rect", "labeledrect"):
        w, h = float(obj["width"]) / 2, float(obj["height"]) / 2
        return [(np.array([[-w, -h], [w, -h], [w, h], [-w, h]]), True)], True
    if kind == "circle":
        r = float(obj["radius"])
        start, end = _num(obj, "startAngle", 0), _num(obj, "endAngle", 360)
        sweep = (end - start) % 360
        if sweep == 0:
            return [(_arc(r, r, 0.0, 360.0), True)], True
        if obj.get("counterClockwise"):
            sweep -= 360
        return [(_arc(r, r, start, start + sweep), False)], True
    if kind == "ellipse":
        return [(_arc(float(obj["rx"]), float(obj["ry"]), 0.0, 360.0), True)], True
    if kind == "line":
        pts = np.array([[obj["x1"], obj["y1"]], [obj["x2"], obj["y2"]]], dtype=float)
        return [(pts, False)], False
    if kind in ("polyline", "polygon"):
        pts = np.array([[float(p["x"]), float(p["y"])] for p in obj["points"]], dtype=float)
        if len(pts) == 0:
            return [], False
        offset = _path_offset(obj, pts.min(axis=0), pts.max(axis=0))
        return [(pts - offset, kind == "polygon")], kind == "polygon"
    subpaths, bounds = _flatten_path(obj["path"])
    if not subpaths:
        return [], True
    offset = _path_offset(obj, *bounds)
    return [(pts - offset, closed) for pts, closed in subpaths], True


def _path_offset(obj: Mapping[str, Any], low: np.ndarray, high: np.ndarray) -> np.ndarray:
    given = obj.get("pathOffset")
    if isinstance(given, Mapping) and "x" in given and "y" in given:
        return np.array([float(given["x"]), float(given["y"])])
    return (np.asarray(low, dtype=float) + np.asarray(high, dtype=float)) / 2


def _arc(rx: float, ry: float, start_deg: float, end_deg: float) -> np.ndarray:
    steps = max(16, math.ceil(abs(end_deg - start_deg) / 360 * 2 * math.pi * max(rx, ry)))
    full = abs(end_deg - start_deg) >= 360
    angles = np.radians(np.linspace(start_deg, end_deg, steps, endpoint=not full))
    return np.stack([rx * np.cos(angles), ry * np.sin(angles)], axis=1)


_Point = tuple[float, float]


def _cubic_extrema_bounds(p0: _Point, p1: _Point, p2: _Point, p3: _Point) -> list[_Point]:
    """Points bounding a cubic Bézier, found as fabric's getBoundsOfCurve finds them."""
    ts = []
    for axis in range(2):
        a0, a1, a2, a3 = p0[axis], p1[axis], p2[axis], p3[axis]
        b = 6 * a0 - 12 * a1 + 6 * a2
        a = -3 * a0 + 9 * a1 - 9 * a2 + 3 * a3
        c = 3 * a1 - 3 * a0
        if abs(a) < 1e-12:
            if abs(b) >= 1e-12 and 0 < -c / b < 1:
                ts.append(-c / b)
            continue
        disc = b * b - 4 * c * a
        if disc < 0:
            continue
        root = math.sqrt(disc)
        ts.extend(t for t in ((-b + root) / (2 * a), (-b - root) / (2 * a)) if 0 < t < 1)
    return [_cubic_point(p0, p1, p2, p3, t) for t in ts] + [p0, p3]


def _cubic_point(p0: _Point, p1: _Point, p2: _Point, p3: _Point, t: float) -> _Point:
    u = 1 - t
    w0, w1, w2, w3 = u * u * u, 3 * u * u * t, 3 * u * t * t, t * t * t
    return (
        w0 * p0[0] + w1 * p1[0] + w2 * p2[0] + w3 * p3[0],
        w0 * p0[1] + w1 * p1[1] + w2 * p2[1] + w3 * p3[1],
    )


_FLATNESS = 0.2  # path units (canvas pixels): how far a flattened curve may stray


def _curve_steps(*points: _Point) -> int:
    """Chords needed to stay within _FLATNESS of a Bézier (its second differences bound it)."""
    bend = max(
        math.hypot(a[0] - 2 * b[0] + c[0], a[1] - 2 * b[1] + c[1])
        for a, b, c in zip(points, points[1:], points[2:], strict=False)
    )
    return max(1, min(64, math.ceil(math.sqrt(0.75 * bend / _FLATNESS))))


def _flatten_path(
    commands: Sequence[Sequence[Any]],
) -> tuple[list[tuple[np.ndarray, bool]], tuple[np.ndarray, np.ndarray]]:
    """Subpaths as polylines (absolute, in path coordinates) and fabric's path bounds."""
    subpaths: list[tuple[np.ndarray, bool]] = []
    bounds: list[_Point] = []
    current: list[_Point] = []
    pen = start = (0.0, 0.0)

    def finish(closed: bool) -> None:
        # A subpath without any segment paints nothing on a canvas.
        if len(current) >= 2:
            subpaths.append((np.array(current, dtype=float), closed))

    for command in commands:
        op, args = str(command[0]), [float(v) for v in command[1:]]
        if op == "M":
            finish(False)
            pen = start = (args[0], args[1])
            current = [pen]
        elif op in ("L", "H", "V"):
            if op == "H":
                pen = (args[0], pen[1])
            elif op == "V":
                pen = (pen[0], args[0])
            else:
                pen = (args[0], args[1])
            bounds.extend((start, pen))  # fabric pairs L ends with the subpath start
            current.append(pen)
        elif op == "Q":
            control, end = (args[0], args[1]), (args[2], args[3])
            bounds.extend(_cubic_extrema_bounds(pen, control, control, end))
            steps = _curve_steps(pen, control, end)
            for k in range(1, steps + 1):
                t = k / steps
                u = 1 - t
                current.append(
                    (
                        u * u * pen[0] + 2 * u * t * control[0] + t * t * end[0],
                        u * u * pen[1] + 2 * u * t * control[1] + t * t * end[1],
                    )
                )
            pen = end
        elif op == "C":
            c1, c2, end = (args[0], args[1]), (args[2], args[3]), (args[4], args[5])
            bounds.extend(_cubic_extrema_bounds(pen, c1, c2, end))
            steps = _curve_steps(pen, c1, c2, end)
            current.extend(_cubic_point(pen, c1, c2, end, k / steps) for k in range(1, steps + 1))
            pen = end
        elif op in ("Z", "z"):
            finish(True)
            pen = start
            current = [start]
        else:
            raise ValueError(
                f"path command {op!r} is not one fabric emits (M, L, H, V, Q, C, Z expected)"
            )
    finish(False)
    if not bounds:
        bounds = [tuple(p) for pts, _ in subpaths for p in pts] or [(0.0, 0.0)]
    stacked = np.array(bounds, dtype=float)
    return subpaths, (stacked.min(axis=0), stacked.max(axis=0))


class _Raster:
    """Integer raster painted by exact pixel-centre tests: pixel (r, c) is covered when its
    centre (c + 0.5, r + 0.5) lies inside the shape, as a canvas samples without
    anti-aliasing. (Pillow's ImageDraw truncates vertex coordinates and fills inclusively,
    which grew a 14 px dot to 16 px.)"""

    def __init__(self, width: int, height: int) -> None:
        self.pixels = np.zeros((height, width), dtype=np.int32)

    def _span(self, low: float, high: float, size: int) -> tuple[int, int]:
        """First and last pixel index whose centre lies in [low, high], clipped."""
        return max(0, math.ceil(low - 0.5)), min(size - 1, math.floor(high - 0.5))

    def polygon(self, points: np.ndarray, value: int) -> None:
        """Fill a closed polygon by the non-zero winding rule (fabric's default)."""
        if len(points) < 3:
            return
        height, width = self.pixels.shape
        r0, r1 = self._span(points[:, 1].min(), points[:, 1].max(), height)
        c0, c1 = self._span(points[:, 0].min(), points[:, 0].max(), width)
        if r0 > r1 or c0 > c1:
            return
        centres_y = np.arange(r0, r1 + 1)[:, None] + 0.5
        start, end = points, np.roll(points, -1, axis=0)
        y0, y1 = start[:, 1][None, :], end[:, 1][None, :]
        upward = (y0 <= centres_y) & (y1 > centres_y)
        downward = (y1 <= centres_y) & (y0 > centres_y)
        rows, edges = np.nonzero(upward | downward)
        if len(rows) == 0:
            return
        a, b = start[edges], end[edges]
        t = (centres_y[rows, 0] - a[:, 1]) / (b[:, 1] - a[:, 1])
        crossing_x = a[:, 0] + t * (b[:, 0] - a[:, 0])
        # A pixel is right of a crossing when its centre is: first such column.
        first = np.clip(np.ceil(crossing_x - 0.5).astype(int) - c0, 0, c1 - c0 + 1)
        delta = np.zeros((r1 - r0 + 1, c1 - c0 + 2), dtype=np.int32)
        direction = np.where(upward[rows, edges], 1, -1)
        np.add.at(delta, (rows, first), direction)
        inside = np.cumsum(delta, axis=1)[:, :-1] != 0
        self.pixels[r0 : r1 + 1, c0 : c1 + 1][inside] = value

    def chain(self, points: np.ndarray, radius: float, value: int, chunk: int = 16) -> None:
        """Pixels within ``radius`` of a polyline: its round-joined, round-capped stroke.

        Segments are tested a chunk at a time over the chunk's bounding box, which keeps
        both the Python overhead and the box small for freehand strokes.
        """
        height, width = self.pixels.shape
        for first in range(0, len(points) - 1, chunk):
            part = points[first : first + chunk + 1]
            low, high = part.min(axis=0) - radius, part.max(axis=0) + radius
            r0, r1 = self._span(low[1], high[1], height)
            c0, c1 = self._span(low[0], high[0], width)
            if r0 > r1 or c0 > c1:
                continue
            ys = (np.arange(r0, r1 + 1) + 0.5)[:, None, None]
            xs = (np.arange(c0, c1 + 1) + 0.5)[None, :, None]
            a, d = part[:-1], np.diff(part, axis=0)
            length2 = np.maximum((d * d).sum(axis=1), 1e-12)
            t = np.clip(((xs - a[:, 0]) * d[:, 0] + (ys - a[:, 1]) * d[:, 1]) / length2, 0, 1)
            dist2 = (xs - a[:, 0] - t * d[:, 0]) ** 2 + (ys - a[:, 1] - t * d[:, 1]) ** 2
            inside = dist2.min(axis=2) <= radius * radius
            self.pixels[r0 : r1 + 1, c0 : c1 + 1][inside] = value

    def capsule(self, a: np.ndarray, b: np.ndarray, radius: float, value: int) -> None:
        """Pixels within ``radius`` of segment ab: a segment with round ends (a disc if a = b)."""
        height, width = self.pixels.shape
        r0, r1 = self._span(min(a[1], b[1]) - radius, max(a[1], b[1]) + radius, height)
        c0, c1 = self._span(min(a[0], b[0]) - radius, max(a[0], b[0]) + radius, width)
        if r0 > r1 or c0 > c1:
            return
        ys = np.arange(r0, r1 + 1)[:, None] + 0.5 - a[1]
        xs = np.arange(c0, c1 + 1)[None, :] + 0.5 - a[0]
        dx, dy = b[0] - a[0], b[1] - a[1]
        length2 = dx * dx + dy * dy
        t = np.clip((xs * dx + ys * dy) / length2, 0.0, 1.0) if length2 > 0 else 0.0
        inside = (xs - t * dx) ** 2 + (ys - t * dy) ** 2 <= radius * radius
        self.pixels[r0 : r1 + 1, c0 : c1 + 1][inside] = value


def _stroke(
    raster: _Raster,
    points: np.ndarray,
    closed: bool,
    half: float,
    cap: str,
    join: str,
    miter_limit: float,
    value: int,
) -> None:
    """Stroke a polyline as a canvas does: segments, then joins and caps."""
    keep = np.ones(len(points), dtype=bool)
    keep[1:] = np.linalg.norm(np.diff(points, axis=0), axis=1) > 1e-9
    pts = points[keep]
    if closed and len(pts) > 1 and np.linalg.norm(pts[0] - pts[-1]) <= 1e-9:
        pts = pts[:-1]
    if len(pts) == 0:
        return
    if len(pts) == 1:
        if cap == "round":
            raster.capsule(pts[0], pts[0], half, value)
        elif cap == "square":
            raster.polygon(pts[0] + half * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]), value)
        return
    ring = np.vstack([pts, pts[:1]]) if closed else pts
    if join == "round" and (closed or cap == "round"):
        # Round joins and caps: the stroke is exactly the union of round-ended segments.
        raster.chain(ring, half, value)
        return
    directions = np.diff(ring, axis=0)
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    normals = np.stack([-directions[:, 1], directions[:, 0]], axis=1)
    for a, b, n in zip(ring[:-1], ring[1:], normals, strict=True):
        raster.polygon(np.array([a + n * half, b + n * half, b - n * half, a - n * half]), value)
    count = len(directions)
    for k in range(count) if closed else range(1, count):
        vertex = ring[k]
        if join == "round":
            raster.capsule(vertex, vertex, half, value)
            continue
        d_in, d_out = directions[k - 1], directions[k]
        if abs(d_in[0] * d_out[1] - d_in[1] * d_out[0]) < 1e-9:
            continue
        n_in, n_out = normals[k - 1], normals[k]
        side = 1.0 if float(np.dot(d_out, n_in)) < 0 else -1.0
        outer_in, outer_out = vertex + side * half * n_in, vertex + side * half * n_out
        summed = n_in + n_out
        ratio = 2.0 / max(float(np.linalg.norm(summed)), 1e-12)
        if join == "miter" and ratio <= miter_limit:
            tip = vertex + side * summed * half / (1.0 + float(np.dot(n_in, n_out)))
            raster.polygon(np.array([vertex, outer_in, tip, outer_out]), value)
        else:
            raster.polygon(np.array([vertex, outer_in, outer_out]), value)
    if not closed:
        for end, direction in ((pts[0], -directions[0]), (pts[-1], directions[-1])):
            if cap == "round":
                raster.capsule(end, end, half, value)
            elif cap == "square":
                normal = np.array([-direction[1], direction[0]])
                far = end + direction * half
                corners = [end + normal * half, far + normal * half, far - normal * half]
                raster.polygon(np.array([*corners, end - normal * half]), value)
