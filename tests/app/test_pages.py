"""Page wiring through Streamlit's AppTest: every page runs on an empty and a demo workspace,
and the Label page turns a canvas drawing into a saved revision.

Pages are reached through ``app.py`` and ``switch_page``, as in the running app (a page run
as the main script would put ``pages/`` on ``sys.path``, where ``pages/dataset.py`` would
shadow the ``dataset`` package), so every run also runs the shared sidebar.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dataset.demo import load_demo
from dataset.ingest import ingest_files
from dataset.schema import DEFAULT_CLASSES, UNLABELLED
from dataset.store import Store
from tests._accounts import open_page

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(p.name for p in (ROOT / "pages").glob("*.py") if not p.name.startswith("_"))
OWN_PAGES = ("upload.py", "label.py", "dataset.py")  # these also must show no error box
TIMEOUT = 60


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "workspace"
    store = Store.open(root)
    # The four default classes: the demo's white cells come in as leukocyte, painted here.
    store.init(list(DEFAULT_CLASSES))
    load_demo(store, actor="tester")
    return root


@pytest.fixture
def demo_ws(demo_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the demo workspace, so tests that save never see each other."""
    root = tmp_path / "workspace"
    shutil.copytree(demo_template, root)
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(root))
    return root


@pytest.fixture
def empty_ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "empty"
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(root))
    return root


def _open(page: str, annotator: str = "tester") -> AppTest:
    """``page`` signed in as the admin account ``annotator``."""
    return open_page(f"pages/{page}", annotator, timeout=TIMEOUT)


def test_the_core_pages_exist() -> None:
    assert set(OWN_PAGES) <= set(PAGES)


@pytest.mark.parametrize("page", PAGES)
def test_page_runs_on_an_empty_workspace(empty_ws: Path, page: str) -> None:
    at = _open(page)
    assert at.title, f"{page} shows no title"
    if page in OWN_PAGES:
        assert not at.error, [e.value for e in at.error]


@pytest.mark.parametrize("page", PAGES)
def test_page_runs_on_the_demo_workspace(demo_ws: Path, page: str) -> None:
    at = _open(page)
    assert at.title, f"{page} shows no title"
    if page in OWN_PAGES:
        assert not at.error, [e.value for e in at.error]


def test_the_sidebar_names_the_signed_in_account_and_no_one_else(
    demo_ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The free-text name is gone: neither SMEARLAB_ANNOTATOR nor the session state makes
    someone else the one who saves (issue 12)."""
    monkeypatch.setenv("SMEARLAB_ANNOTATOR", "Dr Ada")
    at = _open("label.py", annotator="bob")
    assert not at.sidebar.text_input, "no name box"
    assert "Signed in as **bob** (admin)" in [m.value for m in at.sidebar.markdown]
    assert any(str(demo_ws) in c.value for c in at.sidebar.caption)
    at.session_state["annotator"] = "mallory"  # what the old name box set
    at = _draw(_select_leukocyte(at), [_leukocyte_rect(Store.open(demo_ws), 0, 0, 20, 20)])
    tile_id = at.session_state["label_tile_id"]
    at.button(key="lbl_save").click().run()
    assert not at.exception, at.exception
    assert Store.open(demo_ws).latest(tile_id).annotator == "bob"


def test_empty_workspace_offers_the_demo(empty_ws: Path) -> None:
    at = _open("upload.py")
    at.button(key="up_demo").click().run()
    assert not at.exception, at.exception
    store = Store.open(empty_ws)
    assert len(store.smears()) >= 10
    assert any("smears added" in s.value for s in at.success)
    assert "up_demo" not in [b.key for b in at.button]


# ------------------------------------------------------------------------------ Label page
def _rect(colour: str, left: float, top: float, width: float, height: float) -> dict:
    """A filled fabric rect in a brush colour (``#rrggbb``), as the canvas sends it."""
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


def _leukocyte_rect(store: Store, left: float, top: float, width: float, height: float) -> dict:
    schema = store.schema()
    return _rect(schema.colors[schema.index("leukocyte")], left, top, width, height)


def _draw(at: AppTest, objects: list[dict]) -> AppTest:
    """Feed a drawing to the live canvas the way the component reports one."""
    key = at.session_state["lbl_canvas_key"]
    at.session_state[key] = {"drawing": {"raw": {"objects": objects}, "data": None}}
    return at.run()


def _select_leukocyte(at: AppTest) -> AppTest:
    return at.radio(key="lbl_class").set_value("leukocyte").run()


def _by_hand(at: AppTest) -> AppTest:
    """Turn "Start from a prediction" off: tiles without a mask open blank."""
    return at.toggle(key="lbl_prefill").set_value(False).run()


def _working_mask(at: AppTest) -> np.ndarray:
    return at.session_state["lbl_editing"].mask


def test_label_page_saves_a_drawn_rectangle_as_a_revision(demo_ws: Path) -> None:
    at = _select_leukocyte(_open("label.py"))
    at = _by_hand(at)
    tile_id = at.session_state["label_tile_id"]
    store = Store.open(demo_ws)
    assert store.latest(tile_id) is None, "unlabelled tiles come first"
    assert any(
        "No mask saved yet: you start from an unlabelled tile" in m.value for m in at.markdown
    )
    assert (_working_mask(at) == UNLABELLED).all()

    # 512-px canvas over a 256-px tile: canvas (40..240, 80..200) is tile (20..120, 40..100).
    _draw(at, [_leukocyte_rect(Store.open(demo_ws), 40, 80, 200, 120)])
    assert any("1 shape not saved yet" in m.value for m in at.markdown)
    at.button(key="lbl_save").click().run()
    assert not at.exception, at.exception
    assert any("Saved revision 1" in s.value for s in at.success)

    rev = store.latest(tile_id)
    assert rev is not None and rev.revision == 1
    assert (rev.annotator, rev.source, rev.base_revision) == ("tester", "manual", None)
    assert rev.model_id is None
    assert rev.seconds is not None and rev.seconds >= 0
    mask = store.mask(tile_id)
    leukocyte = store.schema().index("leukocyte")
    expected = np.full_like(mask, UNLABELLED)
    expected[40:100, 20:120] = leukocyte
    np.testing.assert_array_equal(mask, expected)
    assert any("Editing revision 1" in m.value and "tester" in m.value for m in at.markdown)


def test_fill_rest_and_eraser(demo_ws: Path) -> None:
    at = _by_hand(_select_leukocyte(_open("label.py")))
    tile_id = at.session_state["label_tile_id"]
    _draw(at, [_leukocyte_rect(Store.open(demo_ws), 0, 0, 100, 100)])
    at.button(key="lbl_fill").click().run()
    assert not at.exception, at.exception
    # The fill bakes the stroke into the working mask and starts a clean canvas.
    at.radio(key="lbl_class").set_value("eraser").run()
    _draw(at, [_rect("#ffffff", 500, 500, 12, 12)])  # white: no default class uses it
    at.button(key="lbl_save").click().run()
    assert not at.exception, at.exception

    store = Store.open(demo_ws)
    schema = store.schema()
    mask = store.mask(tile_id)
    assert (mask[:50, :50] == schema.index("leukocyte")).all()
    assert (mask[250:, 250:] == UNLABELLED).all()
    rest = np.ones_like(mask, dtype=bool)
    rest[:50, :50] = False
    rest[250:, 250:] = False
    assert (mask[rest] == schema.index("background")).all()


def test_conflict_offers_reload_or_save_on_top(demo_ws: Path) -> None:
    at = _select_leukocyte(_open("label.py", annotator="ada"))
    tile_id = at.session_state["label_tile_id"]
    store = Store.open(demo_ws)
    theirs = np.zeros_like(store.mask(tile_id))  # all background, saved by someone else
    store.save_mask(tile_id, theirs, annotator="bob")

    _draw(at, [_leukocyte_rect(Store.open(demo_ws), 0, 0, 20, 20)])
    at.button(key="lbl_save").click().run()
    assert not at.exception, at.exception
    assert not any("Saved" in s.value for s in at.success)
    assert any("bob" in w.value and "revision 1" in w.value for w in at.warning)

    at.button(key="lbl_conflict_force").click().run()
    assert not at.exception, at.exception
    history = store.history(tile_id)
    assert [(r.revision, r.annotator) for r in history] == [(1, "bob"), (2, "ada")]
    assert history[1].base_revision is None
    assert store.mask(tile_id)[0, 0] == store.schema().index("leukocyte")
    assert any("Saved revision 2" in s.value for s in at.success)


def test_save_mine_on_top_cut_short_by_a_rerun_is_finished_once(demo_ws: Path) -> None:
    at = _select_leukocyte(_open("label.py", annotator="ada"))
    tile_id = at.session_state["label_tile_id"]
    store = Store.open(demo_ws)
    store.save_mask(tile_id, np.zeros_like(store.mask(tile_id)), annotator="bob")
    _draw(at, [_leukocyte_rect(Store.open(demo_ws), 0, 0, 20, 20)])
    at.button(key="lbl_save").click().run()
    conflict = at.session_state["lbl_conflict"]
    # "Save mine on top" reached the store, then a re-run ended the script before the page
    # knew: the next run finishes it, without a second revision and without the box.
    store.save_mask(tile_id, conflict.mask, annotator="ada", base_revision=1, force=True)
    at.session_state["lbl_pending"] = SimpleNamespace(
        move="save", editing=conflict.editing, mask=conflict.mask, unsaved=True, name="ada",
        target=None, leave=True, seconds=1.0, force=True,
    )  # fmt: skip
    at.run()
    assert not at.exception, at.exception
    assert [r.annotator for r in store.history(tile_id)] == ["bob", "ada"], "saved once"
    assert "lbl_conflict" not in at.session_state
    assert not any("bob" in w.value for w in at.warning)
    assert any("Saved revision 2" in s.value for s in at.success)


def test_conflict_reload_takes_their_version(demo_ws: Path) -> None:
    at = _select_leukocyte(_open("label.py", annotator="ada"))
    tile_id = at.session_state["label_tile_id"]
    store = Store.open(demo_ws)
    store.save_mask(tile_id, np.zeros_like(store.mask(tile_id)), annotator="bob")
    _draw(at, [_leukocyte_rect(Store.open(demo_ws), 0, 0, 20, 20)])
    at.button(key="lbl_save").click().run()
    at.button(key="lbl_conflict_reload").click().run()
    assert not at.exception, at.exception
    assert [r.annotator for r in store.history(tile_id)] == ["bob"]
    assert any("Editing revision 1" in m.value and "bob" in m.value for m in at.markdown)


# ------------------------------------------------------------------------------ pre-fill
def _rules_prefill(store: Store, tile_id: str) -> np.ndarray:
    from training.service import prefill

    start = prefill(store, tile_id)
    assert (start.source, start.model_id) == ("rules", None)
    return start.mask


def test_an_unlabelled_tile_opens_with_the_colour_rules_and_saves_as_prefill(
    demo_ws: Path,
) -> None:
    at = _select_leukocyte(_open("label.py"))
    assert at.toggle(key="lbl_prefill").value, "pre-fill is on by default"
    assert any("colour rules' pre-fill (no model yet)" in c.value for c in at.caption)
    tile_id = at.session_state["label_tile_id"]
    store = Store.open(demo_ws)
    assert store.latest(tile_id) is None
    rules = _rules_prefill(store, tile_id)
    assert (rules != UNLABELLED).sum() > 1000, "the rules find cells on a demo tile"
    np.testing.assert_array_equal(_working_mask(at), rules)
    assert any("pre-fill of the colour rules" in m.value for m in at.markdown)
    assert any("Pre-fill not saved yet" in m.value for m in at.markdown)

    # Correct it: a leukocyte rectangle over tile (20..120, 40..100), then save.
    _draw(at, [_leukocyte_rect(store, 40, 80, 200, 120)])
    at.button(key="lbl_save").click().run()
    assert not at.exception, at.exception
    assert any("Saved revision 1" in s.value for s in at.success)
    rev = store.latest(tile_id)
    assert (rev.source, rev.model_id, rev.base_revision) == ("prefill", "colour-rules", None)
    assert rev.seconds is not None and rev.seconds >= 0
    expected = rules.copy()
    expected[40:100, 20:120] = store.schema().index("leukocyte")
    np.testing.assert_array_equal(store.mask(tile_id), expected)
    assert any(
        "Editing revision 1" in m.value and "pre-filled by the colour rules" in m.value
        for m in at.markdown
    )
    # Edits on top of a saved revision are the annotator's own again.
    assert at.session_state["lbl_editing"].source == "manual"


def test_an_untouched_prefill_is_accepted_by_save_and_left_without_asking(demo_ws: Path) -> None:
    at = _open("label.py")
    first = at.session_state["label_tile_id"]
    at.button(key="lbl_next").click().run()
    second = at.session_state["label_tile_id"]
    assert second != first, "an untouched pre-fill is no unsaved paint"
    assert not any("unsaved paint" in w.value for w in at.warning)

    at.button(key="lbl_save").click().run()
    assert not at.exception, at.exception
    store = Store.open(demo_ws)
    rev = store.latest(second)
    assert (rev.source, rev.model_id) == ("prefill", "colour-rules")
    np.testing.assert_array_equal(store.mask(second), _rules_prefill(store, second))
    assert store.latest(first) is None


def test_the_toggle_restarts_an_untouched_tile(demo_ws: Path) -> None:
    at = _open("label.py")
    tile_id = at.session_state["label_tile_id"]
    rules = _rules_prefill(Store.open(demo_ws), tile_id)
    _by_hand(at)
    assert (_working_mask(at) == UNLABELLED).all()
    assert any("Tiles without a saved mask open blank" in c.value for c in at.caption)
    at.toggle(key="lbl_prefill").set_value(True).run()
    np.testing.assert_array_equal(_working_mask(at), rules)
    assert at.session_state["label_tile_id"] == tile_id

    # Baked-in work (fill the rest) is never replaced by flipping the toggle.
    at.button(key="lbl_fill").click().run()
    filled = _working_mask(at).copy()
    _by_hand(at)
    np.testing.assert_array_equal(_working_mask(at), filled)


def test_replace_with_prediction_on_a_labelled_tile_and_discard(demo_ws: Path) -> None:
    store = Store.open(demo_ws)
    tile_id = next(iter(store.latest_revisions()))
    saved = store.mask(tile_id)
    at = _open("label.py")
    at.session_state["label_tile_id"] = tile_id
    at.run()
    assert any("Editing revision 1" in m.value for m in at.markdown)
    np.testing.assert_array_equal(_working_mask(at), saved)  # a revision opens as saved

    at.button(key="lbl_replace").click().run()
    assert not at.exception, at.exception
    rules = _rules_prefill(store, tile_id)
    assert not np.array_equal(rules, saved)
    np.testing.assert_array_equal(_working_mask(at), rules)
    assert any("Unsaved changes" in m.value for m in at.markdown)
    at.button(key="lbl_discard").click().run()
    np.testing.assert_array_equal(_working_mask(at), saved)
    assert at.session_state["lbl_editing"].source == "manual"

    at.button(key="lbl_replace").click().run()
    at.button(key="lbl_save").click().run()
    assert not at.exception, at.exception
    rev = store.latest(tile_id)
    assert (rev.revision, rev.base_revision) == (2, 1)
    assert (rev.source, rev.model_id) == ("prefill", "colour-rules")
    np.testing.assert_array_equal(store.mask(tile_id), rules)


def test_next_with_unsaved_paint_asks_first(demo_ws: Path) -> None:
    at = _select_leukocyte(_open("label.py"))
    first = at.session_state["label_tile_id"]
    _draw(at, [_leukocyte_rect(Store.open(demo_ws), 0, 0, 20, 20)])
    at.button(key="lbl_next").click().run()
    assert at.session_state["label_tile_id"] == first
    assert any("unsaved paint" in w.value for w in at.warning)
    at.button(key="lbl_next").click().run()
    assert at.session_state["label_tile_id"] != first
    assert Store.open(demo_ws).latest(first) is None


def test_skip_marks_the_tile_and_moves_on(demo_ws: Path) -> None:
    at = _open("label.py")
    first = at.session_state["label_tile_id"]
    at.button(key="lbl_skip").click().run()
    assert not at.exception, at.exception
    assert Store.open(demo_ws).is_skipped(first)
    assert at.session_state["label_tile_id"] != first


def test_save_and_next_saves_the_tile_and_opens_the_next(demo_ws: Path) -> None:
    at = _open("label.py")
    first = at.session_state["label_tile_id"]
    at.button(key="lbl_save_next").click().run()
    assert not at.exception, at.exception
    second = at.session_state["label_tile_id"]
    assert second != first
    store = Store.open(demo_ws)
    assert store.latest(first).source == "prefill"
    assert store.latest(second) is None
    assert any("Saved revision 1 of the previous tile" in s.value for s in at.success)
    assert any(second in m.value for m in at.markdown), "the page names the tile it shows"


def test_an_action_cut_short_by_a_rerun_is_finished_once(demo_ws: Path) -> None:
    """Streamlit can end a run at any session access; the next run finishes the action."""
    from types import SimpleNamespace

    at = _open("label.py")
    first = at.session_state["label_tile_id"]
    editing = at.session_state["lbl_editing"]
    at.button(key="lbl_next").click().run()
    second = at.session_state["label_tile_id"]
    at.button(key="lbl_prev").click().run()
    assert at.session_state["label_tile_id"] == first
    store = Store.open(demo_ws)
    # The save reached the store, then the run was cut short: no move, no "Saved".
    store.save_mask(first, editing.mask, annotator="tester", source="prefill", model_id="x")
    at.session_state["lbl_pending"] = SimpleNamespace(
        move="save_next",
        editing=editing,
        mask=editing.mask,
        unsaved=True,
        name="tester",
        target=second,
        leave=True,
        seconds=1.0,
        force=False,
    )
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["label_tile_id"] == second
    assert [r.revision for r in store.history(first)] == [1], "saved once"
    assert any("Saved revision 1 of the previous tile" in s.value for s in at.success)
    assert "lbl_pending" not in at.session_state


# ------------------------------------------------------------------------------ Upload page
def _png(seed: int, side: int = 64) -> bytes:
    import io

    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 255, (side, side, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def test_upload_reports_one_row_per_file(empty_ws: Path) -> None:
    at = _open("upload.py")
    at.file_uploader[0].set_value(
        [
            ("a.png", _png(1), "image/png"),
            ("b.png", _png(2), "image/png"),
            ("a-again.png", _png(1), "image/png"),
            ("broken.png", b"not an image at all", "image/png"),
        ]
    )
    at.text_input[0].input("P-007")  # patient pseudonym
    at.text_input[1].input("Giemsa")
    at.button(key="FormSubmitter:up_form-Add to workspace").click().run()
    assert not at.exception, at.exception

    table = at.dataframe[0].value
    assert list(table["File"]) == ["a.png", "b.png", "a-again.png", "broken.png"]
    assert list(table["Result"]) == ["added", "added", "duplicate", "rejected"]
    assert list(table["Tiles"][:3]) == [1, 1, 1]
    assert "broken.png" in table["Details"][3]
    assert any("2 smears added" in w.value and "1 rejected" in w.value for w in at.warning)
    smears = Store.open(empty_ws).smears()
    assert len(smears) == 2
    assert {(s.patient, s.stain) for s in smears} == {("P-007", "Giemsa")}


def test_classes_are_editable_until_the_first_save(empty_ws: Path) -> None:
    at = _open("upload.py")
    at.button(key="up_save_classes").click().run()
    assert not at.exception, at.exception
    store = Store.open(empty_ws)
    assert store.schema().names == ("background", "erythrocyte", "leukocyte", "platelet")

    ingest_files(store, [("a.png", _png(1))], actor="tester")
    tile = store.tiles()[0].tile_id
    store.save_mask(tile, np.zeros_like(store.mask(tile)), annotator="ada", check_base=False)
    at.run()
    assert "up_save_classes" not in [b.key for b in at.button]
    assert any("Frozen" in c.value for c in at.caption)


# ------------------------------------------------------------------------------ Dataset page
def test_dataset_page_creates_a_release(demo_ws: Path) -> None:
    at = _open("dataset.py")
    labels = [m.label for m in at.metric]
    assert labels[:4] == ["Smears", "Tiles", "Labelled", "Skipped"]
    assert at.metric[0].value == "12"
    at.text_input[0].input("1.0.0")
    at.text_input[1].input("First demo release")
    at.button(key="FormSubmitter:ds_release-Create release").click().run()
    assert not at.exception, at.exception
    assert any("Release 1.0.0 created" in s.value for s in at.success)
    releases = next(d.value for d in at.dataframe if "Version" in d.value.columns)
    assert list(releases["Version"]) == ["1.0.0"]
    assert {"ds_dl_zip", "ds_dl_png"} <= {b.key for b in at.get("download_button")}


def test_dataset_page_shows_each_smears_split(demo_ws: Path) -> None:
    at = _open("dataset.py")
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "Split" in d.value.columns)
    store = Store.open(demo_ws)
    smears = store.smears()
    assert list(table["Smear"]) == [s.label for s in smears]
    assert list(table["Split"]) == [store.split_of(s.smear_id) for s in smears]
    assert set(table["Split"]) == {"train", "validation", "test"}  # the demo fills every split
    assert table["Labelled"].sum() == len(store.labelled_tile_ids())
    n_val = len(store.labelled_tile_ids("validation"))
    assert n_val > 0 and any(f"{n_val} validation" in c.value for c in at.caption)


def test_a_handed_over_queue_becomes_the_tile_order(demo_ws: Path) -> None:
    tiles = [t.tile_id for t in Store.open(demo_ws).tiles()]
    ranked = [tiles[5], tiles[2], tiles[9]]
    at = _open("label.py")
    at.session_state["label_queue"] = ("entropy", ranked)
    at.session_state["label_tile_id"] = ranked[0]
    at.run()
    assert at.selectbox(key="lbl_order").value == "Suggested: entropy"
    assert any("tile 1 of 3" in m.value for m in at.markdown)
    at.button(key="lbl_next").click().run()
    assert at.session_state["label_tile_id"] == ranked[1]


def test_dataset_open_button_shows_the_tile_on_the_label_page(demo_ws: Path) -> None:
    at = _open("dataset.py")
    opener = next(b for b in at.button if b.key and b.key.startswith("ds_open_"))
    tile_id = opener.key.removeprefix("ds_open_")
    opener.click().run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Label"]
    assert at.session_state["label_tile_id"] == tile_id
    assert any("Editing revision 1" in m.value for m in at.markdown)


def _workspace_with_a_smear(root: Path, make_smear) -> tuple[Store, list]:
    from dataset.images import encode_png_lossless, smear_id_for
    from dataset.store import NewSmear

    store = Store.open(root)
    store.init(tile_size=64)
    rgb = make_smear(384, 128, seed=4).rgb  # 6 x 2 tiles
    sid = smear_id_for(rgb)
    store.add_smear(NewSmear(sid, encode_png_lossless(rgb), 384, 128, label="s.png"))
    return store, store.tiles(sid)


def test_dataset_page_labelling_time_before_any_save(empty_ws: Path, make_smear) -> None:
    _workspace_with_a_smear(empty_ws, make_smear)
    at = _open("dataset.py")
    assert not at.error, [e.value for e in at.error]
    assert any("**Labelling time**" in m.value for m in at.markdown)
    assert any("No timed first labellings yet" in c.value for c in at.caption)
    assert not at.table


def test_dataset_page_shows_labelling_time_by_how_tiles_were_started(
    empty_ws: Path, make_smear
) -> None:
    from dataset.leadtime import NOTE

    store, tiles = _workspace_with_a_smear(empty_ws, make_smear)
    mask = np.zeros((64, 64), dtype=np.uint8)
    for i, tile in enumerate(tiles[:10]):
        prefill = i % 2 == 1
        store.save_mask(
            tile.tile_id,
            mask,
            annotator="tester",
            source="prefill" if prefill else "manual",
            model_id="m1" if prefill else None,
            seconds=10.0 + i if prefill else 40.0 + i,
        )
    at = _open("dataset.py")
    assert not at.error, [e.value for e in at.error]
    assert any("**Labelling time**" in m.value for m in at.markdown)
    table = at.table[0].value
    assert list(table["Tiles"]) == [5, 5, 0, 5]  # hand, model, colour rules, model m1
    assert table.index[-1] == "model m1"
    assert any("took 0.34× the median time" in m.value for m in at.markdown)
    captions = [c.value for c in at.caption]
    assert NOTE in captions
    assert any("Too few tiles to compare a colour-rule pre-fill" in c for c in captions)
    assert at.get("vega_lite_chart")
