"""The Label page's session logic, without Streamlit: walking an order, the view's crop, what
the canvas paints (strokes, wand clicks, through a zoomed crop), fill the rest, save records."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest

from dataset.schema import DEFAULT_CLASSES, UNLABELLED, ClassSchema
from pages import _label_session as session
from pages._label_session import View, Wand, opened, step

ORDER = ["a", "b", "c", "d"]


def test_the_session_module_needs_no_streamlit() -> None:
    import subprocess

    code = (
        "import sys, pages._label_session\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'streamlit'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("current", "move", "target"),
    [
        ("a", "next", "b"),
        ("b", "skip", "c"),
        ("d", "next", "a"),
        ("a", "previous", "d"),
        ("c", "previous", "b"),
        ("zz", "next", "a"),
        ("zz", "previous", "d"),
    ],
)
def test_step_moves_exactly_one_tile(current: str, move: str, target: str) -> None:
    assert step(ORDER, current, move) == target


def test_twenty_steps_forward_and_back_return_to_the_start() -> None:
    here = "b"
    seen = []
    for _ in range(20):
        here = step(ORDER, here, "next")
        seen.append(here)
    assert seen[:5] == ["c", "d", "a", "b", "c"]
    for _ in range(20):
        here = step(ORDER, here, "previous")
    assert here == "b"


def test_step_refuses_unknown_moves_and_empty_orders() -> None:
    with pytest.raises(ValueError, match="next, previous, skip"):
        step(ORDER, "a", "jump")
    with pytest.raises(ValueError, match="empty"):
        step([], "a", "next")


def test_a_suggested_order_keeps_its_ranking_without_unknown_tiles(store, make_smear) -> None:
    from dataset.images import encode_png_lossless, smear_id_for
    from dataset.store import NewSmear

    rgb = make_smear(192, 64, seed=3).rgb
    store.add_smear(NewSmear(smear_id_for(rgb), encode_png_lossless(rgb), 192, 64, label="s"))
    ids = session.store_order(store)
    assert len(ids) == 3
    assert session.suggested_order(store, [ids[2], "gone", ids[0], ids[2]]) == [ids[2], ids[0]]
    assert session.position([ids[2], ids[0]], ids[0]) == "tile 2 of 2"
    assert session.position([ids[2]], ids[1]) == "outside this order"


def test_views_crop_and_scale() -> None:
    assert View(2).window(256, 256, 256) == (0, 0, 256, 256)
    assert View(2).canvas_size(256, 256, 256) == (512, 512)
    assert View(1).canvas_size(256, 256, 256) == (256, 256)
    assert View(4, 500, 40).window(256, 256, 256) == (128, 40, 128, 128)
    assert View(4).canvas_size(256, 256, 256) == (512, 512)
    assert View(4).pannable(256, 256, 256) and not View(2).pannable(256, 256, 256)
    assert View(2).canvas_size(128, 256, 256) == (256, 512)  # an edge tile keeps the scale
    assert View(2).canvas_size(64, 64, 64) == (512, 512)  # small tiles still fill the canvas
    with pytest.raises(ValueError, match="Zoom 3"):
        session.view_for(3, 0, 0)


SCHEMA = ClassSchema.from_names(DEFAULT_CLASSES)


def _rect(colour: str, left: float, top: float, width: float, height: float) -> dict:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return {
        "type": "Rect",
        "left": left,
        "top": top,
        "width": width,
        "height": height,
        "originX": "left",
        "originY": "top",
        "fill": f"rgba({r}, {g}, {b}, 0.6)",
        "stroke": None,
        "strokeWidth": 0,
    }


def _editing(view: View | None = None, mask: np.ndarray | None = None) -> session.Editing:
    blank = np.full((256, 256), UNLABELLED, dtype=np.uint8)
    start = blank if mask is None else mask
    return opened("t", None, start, nonce=1, now=0.0, view=view or View())


def _colour(name: str) -> str:
    return session.paint_colors(SCHEMA)[name]


def test_strokes_through_a_zoomed_crop_land_on_tile_pixels() -> None:
    editing = _editing(View(4, 64, 32))  # tile (64..192, 32..160) on a 512 canvas
    rect = _rect(_colour("leukocyte"), 40, 80, 200, 120)  # canvas /4: tile +(10..60, 20..50)
    out = session.painted(editing, [rect], tile_size=256, colors=session.color_to_class(SCHEMA))
    expected = np.full((256, 256), UNLABELLED, dtype=np.uint8)
    expected[32 + 20 : 32 + 50, 64 + 10 : 64 + 60] = SCHEMA.index("leukocyte")
    np.testing.assert_array_equal(out.mask, expected)
    assert not out.erased.any()


def _point(colour: str, x: float, y: float, radius: float = 3, width: float = 2) -> dict:
    """A point-mode circle as the canvas places it: left edge at x - (r + w/2), centre at y."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    rgba = f"rgba({r}, {g}, {b}, 0.6)"
    return {
        "type": "Circle",
        "left": x - (radius + width / 2),
        "top": y,
        "originX": "left",
        "originY": "center",
        "radius": radius,
        "strokeWidth": width,
        "stroke": rgba,
        "fill": rgba,
    }


def test_a_wand_click_fills_the_region_and_strokes_keep_their_order() -> None:
    region = np.zeros((256, 256), dtype=bool)
    region[100:120, 50:90] = True
    clicks = []

    class FakeWand:
        def region(self, click):
            clicks.append((click.x, click.y))
            return region

    colors = session.color_to_class(SCHEMA)
    stroke = _rect(_colour("erythrocyte"), 0, 200, 200, 20)  # tile rows 100..110, cols 0..100
    out = session.painted(
        _editing(),
        [stroke, _point(_colour("leukocyte"), 141, 221)],
        tile_size=256,
        colors=colors,
        wand=FakeWand(),
    )
    assert clicks == [(70, 110)]
    assert (out.mask[region] == SCHEMA.index("leukocyte")).all()  # the later click wins
    assert (out.mask[100:110, 0:50] == SCHEMA.index("erythrocyte")).all()
    with pytest.raises(ValueError, match="wand"):
        session.painted(
            _editing(), [_point(_colour("leukocyte"), 10, 10)], tile_size=256, colors=colors
        )


def test_the_wand_prefers_the_models_cell_and_falls_back_to_colour() -> None:
    lab = np.zeros((4, 4, 3), dtype=np.float32)
    lab[:, 2:] = 50  # two colour halves
    prediction = np.zeros((4, 4), dtype=np.uint8)
    prediction[0:2, 0:2] = 2
    wand = Wand(lab, 10.0, prediction, background=0)
    from dataset.wand import Click

    np.testing.assert_array_equal(wand.region(Click(0, 0)), prediction == 2)
    # On background the model's component would be most of the tile: colour instead.
    np.testing.assert_array_equal(wand.region(Click(3, 3))[:, 2:], np.ones((4, 2), bool))
    assert not wand.region(Click(3, 3))[:, :2].any()


def test_fill_the_rest_leaves_erased_pixels_unless_asked() -> None:
    editing = _editing(mask=np.zeros((256, 256), dtype=np.uint8))  # all background, saved
    eraser = _rect(_colour(session.ERASER), 0, 0, 20, 20)  # tile (0..10, 0..10)
    colors = session.color_to_class(SCHEMA)
    paint = session.painted(editing, [eraser], tile_size=256, colors=colors)
    assert paint.erased[:10, :10].all() and paint.erased.sum() == 100
    baked = editing.baked(paint, nonce=2)
    assert baked.nonce == 2 and (baked.mask[:10, :10] == UNLABELLED).all()
    kept = session.fill_the_rest(baked.mask, baked.erased_px, 0)
    assert (kept[:10, :10] == UNLABELLED).all() and (kept[10:] == 0).all()
    assert (session.fill_the_rest(baked.mask, baked.erased_px, 0, erased_too=True) == 0).all()
    assert not baked.back_to_origin(3).erased_px.any()


def test_what_a_save_records() -> None:
    start = SimpleNamespace(mask=np.zeros((256, 256), dtype=np.uint8), model_id=None)
    blank = np.full((256, 256), UNLABELLED, dtype=np.uint8)
    editing = opened("t", None, blank, nonce=1, now=5.0, start=start)
    assert editing.record() == session.SaveRecord("prefill", session.RULES_ID, None)
    rev = SimpleNamespace(revision=3)
    after = editing.after_save(rev, editing.mask, nonce=2, now=9.0)
    assert after.record() == session.SaveRecord("manual", None, 3)
    assert (after.opened, after.canvas_key) == (9.0, "lbl_canvas_t_3_2")
    model = SimpleNamespace(mask=np.ones((256, 256), dtype=np.uint8), model_id="m7")
    assert editing.with_prefill(model, 4).record() == session.SaveRecord("prefill", "m7", None)
    # A tile with a saved revision opens from it, never from the pre-fill.
    opened_saved = opened("t", rev, blank, nonce=1, now=0.0, start=start)
    assert opened_saved.record() == session.SaveRecord("manual", None, 3)
    np.testing.assert_array_equal(opened_saved.mask, blank)
