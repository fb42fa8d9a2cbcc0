"""Page <-> command-line parity: each UI action and its CLI twin store the same thing.

Every test builds twin workspaces from one fixture, runs the page action through AppTest on
workspace A and the CLI command on workspace B, then compares what was stored: every table's
rows (without the moments they were written and the seconds a person spent), mask bytes
included, the zoo's pointer and history, the jobs queued, release manifests (without their
dates). A difference means a rule lives in one front end only; the rule belongs in the package
both call.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from dataset import audit
from dataset import cli as dataset_cli
from dataset.accounts import ACCOUNTS_TABLE, EVENTS_TABLE, has_accounts
from dataset.release.pseudonyms import pseudonym_secret
from dataset.store import Store
from model_zoo import KINDS, Zoo
from tests._accounts import add_account, sign_in
from tests._segfixtures import CLASSES, make_workspace
from training import cli as training_cli
from training.jobs import JobRunner

PAGE_ONLY = {"patient_open", "sign_in", "sign_in_failed", "sign_out", "user_add", "user_change"}

ROOT = Path(__file__).resolve().parents[1]
NAME = "tester"  # the signed-in account on the page, SMEARLAB_ANNOTATOR / --by on the CLI
# Columns that differ between any two runs, whoever writes them.
RELEASED_AT = re.compile(r"Released \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")
VOLATILE = {"created_at", "confirmed_at", "set_at", "seconds", "manifest_sha256", "job_id"}


# ------------------------------------------------------------------------------ what is stored
def _plain(value: object) -> object:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def stored(ws: Path) -> dict[str, object]:
    """Everything a workspace holds that an action may change, without volatile fields."""
    store = Store.open(ws)
    if store.is_initialised():
        # A smear's split is stored the first time anything asks for it (the Train page's
        # counts do; the CLI's run would when it starts), hashed from its patient: ask for
        # every one, so both sides compare the same assignment, not who asked first.
        store.splits_of([s.smear_id for s in store.smears()])
    found: dict[str, object] = {}
    for table in sorted(p.name for p in (ws / "tables").iterdir() if p.is_dir()):
        if table in (ACCOUNTS_TABLE, EVENTS_TABLE):
            continue  # the page's side signs in first; the command names its account
        if table == audit.TABLE:
            # Both front ends audit the same actions. Who differs by design (the page's name,
            # "cli" for a command without a person option), and so does opening a patient:
            # the page records it when it shows one, the CLI when `diagnosis show` does; and
            # only the page's side signs in (and adds the account it signs in with).
            found["audit"] = sorted(r.action for r in audit.read(ws) if r.action not in PAGE_ONLY)
            continue
        rows = [_plain(r) for r in store.tables.read(table).to_pylist()]
        found[f"table {table}"] = sorted(rows, key=lambda r: json.dumps(r, default=repr))
    zoo = Zoo(ws)
    for kind in KINDS:
        current = zoo.current(kind)
        found[f"zoo {kind}"] = {
            "current": current.model_id if current else None,
            "history": [e.model_dump(exclude={"at"}) for e in zoo.history(kind)],
            "models": [c.model_id for c in zoo.list(kind)],
        }
    found["jobs"] = sorted(
        (j.kind, j.target, j.state.value, _job_params(ws, j.job_id)) for j in JobRunner(ws).list()
    )
    for path in sorted(ws.glob("releases/*/manifest.json")):
        manifest = _plain(json.loads(path.read_text(encoding="utf-8")))
        # Patient keys are salted afresh for every release (by design), so the data files'
        # checksums differ between any two releases; their rows are compared instead.
        manifest["files"] = {k: v for k, v in manifest["files"].items() if k.endswith(".md")}
        # The card says when the release was made, to the minute: compare its text without
        # that (two releases a few seconds apart may fall in different minutes).
        for name in list(manifest["files"]):
            text = (path.parent / name).read_text(encoding="utf-8")
            assert RELEASED_AT.search(text), f"{name} no longer says when it was released"
            manifest["files"][name] = RELEASED_AT.sub("Released <when> UTC", text)
        found[f"release {path.relative_to(ws)}"] = manifest
        for data in sorted(path.parent.glob("data/*.parquet")):
            found[f"release {data.relative_to(ws)}"] = _release_rows(data)
    return found


def _job_params(ws: Path, job_id: str) -> str:
    """What a job was asked to do: the ``params`` of its ``spec.json`` (training.jobs)."""
    spec = json.loads((ws / "jobs" / job_id / "spec.json").read_text(encoding="utf-8"))
    return json.dumps(_plain(spec["params"]), sort_keys=True)


def _release_rows(path: Path) -> list[dict]:
    """A release data file's rows, each patient key replaced by its order of appearance."""
    import pyarrow.parquet as pq

    rows = pq.read_table(path).to_pylist()
    keys: dict[str, int] = {}
    for row in rows:
        if row["patient_key"] is not None:
            row["patient_key"] = keys.setdefault(row["patient_key"], len(keys))
    return [_plain(r) for r in rows]


def assert_same(a: Path, b: Path) -> None:
    left, right = stored(a), stored(b)
    # A table nobody wrote to may exist on one side only (reading creates it empty).
    for key in left.keys() | right.keys():
        assert left.get(key, []) == right.get(key, []), key


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> Path:
    """Four smears of 2x2 tiles, three tiles of each labelled (``tests/_segfixtures``)."""
    ws = make_workspace(tmp_path_factory.mktemp("parity") / "ws")
    # Copies of one workspace share its release pseudonym secret, so the twins' releases
    # carry the same annotator keys.
    pseudonym_secret(ws)
    return ws


@pytest.fixture(autouse=True)
def quiet(monkeypatch) -> None:
    """No job worker starts; nobody's own settings leak in."""
    monkeypatch.setattr(JobRunner, "ensure_worker", lambda self: False)
    for name in ("SMEARLAB_ANNOTATOR", "SMEARLAB_DEVICE", "SMEARLAB_GLUCOSE_UNIT"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def twins(tmp_path: Path) -> Callable[[Path | None], tuple[Path, Path]]:
    def make(template: Path | None) -> tuple[Path, Path]:
        a, b = tmp_path / "page", tmp_path / "cli"
        if template is None:
            return a, b
        return Path(shutil.copytree(template, a)), Path(shutil.copytree(template, b))

    return make


def _account(ws: Path) -> None:
    """The admin account NAME, in a workspace without accounts."""
    if not has_accounts(ws):
        add_account(ws, NAME, "admin")


def page(ws: Path, path: str, monkeypatch) -> AppTest:
    """``path`` opened through app.py on workspace ``ws``, signed in as NAME."""
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(ws))
    _account(ws)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page(path).run()
    sign_in(at, NAME)
    assert not at.exception, at.exception
    return at


def cli(main: Callable[[list[str]], int], ws: Path, *argv: str, monkeypatch) -> None:
    """A CLI command on ``ws`` run as its ``main``, its account taken from SMEARLAB_ANNOTATOR.

    The workspace a page opened before is set back afterwards: a page's next run reads it
    (and its signed session is valid in that workspace only).
    """
    before = os.environ.get("SMEARLAB_WORKSPACE")
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(ws))
    monkeypatch.setenv("SMEARLAB_ANNOTATOR", NAME)
    _account(ws)
    assert main([*argv, "--workspace", str(ws)]) == 0, argv
    if before is not None:
        monkeypatch.setenv("SMEARLAB_WORKSPACE", before)


@pytest.fixture
def env(monkeypatch) -> Iterator[pytest.MonkeyPatch]:
    """The monkeypatch the page and CLI helpers set the workspace and name with."""
    return monkeypatch


def _png(seed: int, side: int = 96) -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG")
    return out.getvalue()


# ------------------------------------------------------------------------------ dataset
def test_upload_and_ingest_store_the_same_smears(twins, tmp_path: Path, env) -> None:
    a, b = twins(None)
    for ws in (a, b):
        Store.open(ws).init(CLASSES, tile_size=64)
    files = {"first.png": _png(1), "second.png": _png(2)}
    at = page(a, "pages/upload.py", env)
    at.file_uploader[0].set_value([(n, data, "image/png") for n, data in files.items()])
    at.text_input[0].input("P-7")  # patient pseudonym
    at.text_input[1].input("Giemsa")
    at.button(key="FormSubmitter:up_form-Add to workspace").click().run()
    assert not at.exception, at.exception
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    paths = [str(folder / n) for n in files]
    cli(
        dataset_cli.main,
        b,
        "ingest",
        *paths,
        "--patient",
        "P-7",
        "--stain",
        "Giemsa",
        monkeypatch=env,
    )
    assert len(Store.open(a).smears()) == 2
    assert_same(a, b)


def test_saving_the_class_list_and_init_store_the_same_schema(twins, env) -> None:
    a, b = twins(None)
    at = page(a, "pages/upload.py", env)
    at.button(key="up_save_classes").click().run()
    assert not at.exception, at.exception
    names = ",".join(Store.open(a).schema().names)
    cli(dataset_cli.main, b, "init", "--classes", names, monkeypatch=env)
    assert_same(a, b)


def _draw_by_hand(at: AppTest, store: Store) -> AppTest:
    """Prefill off, leukocyte chosen, one rectangle drawn as the canvas reports it."""
    at.toggle(key="lbl_prefill").set_value(False).run()
    at.radio(key="lbl_class").set_value("leukocyte").run()
    colour = store.schema().colors[store.schema().index("leukocyte")]
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    rect = {
        "type": "Rect", "left": 40, "top": 80, "width": 200, "height": 120,
        "originX": "left", "originY": "top", "fill": f"rgba({r}, {g}, {b}, 0.6)",
        "stroke": None, "strokeWidth": 0,
    }  # fmt: skip
    at.session_state[at.session_state["lbl_canvas_key"]] = {
        "drawing": {"raw": {"objects": [rect]}, "data": None}
    }
    return at.run()


def test_a_label_page_save_and_annotate_record_the_same_revision(
    twins, labelled: Path, tmp_path: Path, env
) -> None:
    a, b = twins(labelled)
    at = page(a, "pages/label.py", env)
    tile_id = at.session_state["label_tile_id"]
    at = _draw_by_hand(at, Store.open(a))
    at.button(key="lbl_save").click().run()
    assert not at.exception, at.exception
    rev = Store.open(a).latest(tile_id)
    assert rev is not None and rev.annotator == NAME
    mask = tmp_path / "mask.png"
    Image.fromarray(Store.open(a).mask(tile_id)).save(mask)
    cli(dataset_cli.main, b, "annotate", tile_id, str(mask), monkeypatch=env)
    assert_same(a, b)


def test_a_label_page_skip_and_skip_record_the_same(twins, labelled: Path, env) -> None:
    a, b = twins(labelled)
    at = page(a, "pages/label.py", env)
    tile_id = at.session_state["label_tile_id"]
    at.button(key="lbl_skip").click().run()
    assert not at.exception, at.exception
    assert Store.open(a).is_skipped(tile_id)
    cli(dataset_cli.main, b, "skip", tile_id, monkeypatch=env)
    assert_same(a, b)


def test_a_dataset_page_release_and_release_write_the_same(twins, labelled: Path, env) -> None:
    a, b = twins(labelled)
    at = page(a, "pages/dataset.py", env)
    at.text_input[0].input("1.0.0")
    at.text_input[1].input("First release")
    at.button(key="FormSubmitter:ds_release-Create release").click().run()
    assert not at.exception, at.exception
    assert any("Release 1.0.0 created" in s.value for s in at.success)
    cli(dataset_cli.main, b, "release", "1.0.0", "-m", "First release", monkeypatch=env)
    assert_same(a, b)


def test_an_approved_only_release_by_page_and_by_command_write_the_same(
    twins, labelled: Path, env
) -> None:
    from dataset.roles import Actor

    a, b = twins(labelled)
    for ws in (a, b):
        store = Store.open(ws)
        tile_id = store.labelled_tile_ids()[0]
        store.approve(tile_id, store.latest(tile_id).revision, Actor("rita", "reviewer"))
    at = page(a, "pages/dataset.py", env)
    at.text_input[0].input("1.0.0")
    at.text_input[1].input("Approved")
    at.checkbox(key="ds_approved_only").check()
    at.button(key="FormSubmitter:ds_release-Create release").click().run()
    assert not at.exception, at.exception
    assert any("created with 1 tiles" in s.value for s in at.success)
    cli(dataset_cli.main, b, "release", "1.0.0", "-m", "Approved", "--approved-only",
        monkeypatch=env)  # fmt: skip
    assert_same(a, b)


def _double_labelled(ws: Path) -> str:
    """Every tile of ``ws`` in the double-labelled share; returns a tile labelled by "t"."""
    from dataset.settings import set_workspace_setting

    set_workspace_setting(ws, "double_label_share", 1.0)
    return sorted(Store.open(ws).labelled_tile_ids())[0]


def test_a_second_label_on_the_label_page_and_by_annotate_record_the_same(
    twins, labelled: Path, tmp_path: Path, env
) -> None:
    a, b = twins(labelled)
    tile_id = _double_labelled(a)
    assert _double_labelled(b) == tile_id
    at = page(a, "pages/label.py", env)
    at.session_state["label_tile_id"] = tile_id
    at.run()
    assert at.session_state["lbl_editing"].lane == "second"
    at = _draw_by_hand(at, Store.open(a))
    at.button(key="lbl_save").click().run()
    assert not at.exception, at.exception
    second = Store.open(a).second_label(tile_id)
    assert second is not None and second.annotator == NAME
    mask = tmp_path / "second.png"
    Image.fromarray(Store.open(a).second_mask(tile_id)).save(mask)
    cli(dataset_cli.main, b, "annotate", tile_id, str(mask), monkeypatch=env)
    assert_same(a, b)


def test_a_review_page_pick_and_review_pick_mask_record_the_same(
    twins, labelled: Path, env
) -> None:
    a, b = twins(labelled)
    for ws in (a, b):
        tile_id = _double_labelled(ws)
        store = Store.open(ws)
        store.save_label(tile_id, np.zeros_like(store.mask(tile_id)), annotator="bob")
    at = page(a, "pages/review.py", env)
    assert at.selectbox(key="rv_pick_tile").value == tile_id
    at.button(key="rv_pick_second").click().run()
    assert not at.exception, at.exception
    assert Store.open(a).mask_pick(tile_id).lane == "second"
    cli(dataset_cli.main, b, "review", "pick-mask", tile_id, "second", "--reviewer", NAME,
        monkeypatch=env)  # fmt: skip
    assert_same(a, b)


def test_a_settings_page_save_and_settings_set_record_the_same(twins, labelled: Path, env) -> None:
    a, b = twins(labelled)
    at = page(a, "pages/settings.py", env)
    at.selectbox(key="set_key").set_value("glucose_unit")
    at.text_input(key="set_value").input("mg/dL")
    at.button(key="set_go").click().run()
    assert not at.exception, at.exception
    cli(dataset_cli.main, b, "settings", "set", "glucose_unit", "mg/dL", monkeypatch=env)
    assert_same(a, b)


# ------------------------------------------------------------------------------ training
def test_start_training_and_segment_queue_the_same_run(twins, labelled: Path, env) -> None:
    """The run's settings, its device (SMEARLAB_DEVICE) included, are the service's to fill."""
    a, b = twins(labelled)
    env.setenv("SMEARLAB_DEVICE", "cuda")
    at = page(a, "pages/train.py", env)
    at.number_input[0].set_value(2)  # epochs
    at.checkbox(key="train_jitter").check()
    next(x for x in at.button if x.label == "Train from scratch").click()
    at.run()
    assert not at.exception, at.exception
    cli(training_cli.main, b, "segment", "--epochs", "2", "--time-budget-min", "30",
        "--stain-jitter", monkeypatch=env)  # fmt: skip
    assert_same(a, b)
    assert '"device": "cuda"' in stored(b)["jobs"][0][3]
    assert '"hue_deg": 10.0' in stored(b)["jobs"][0][3]


# ------------------------------------------------------------------------------ diagnosis
def test_diagnosis_page_and_cli_store_the_same_patient_visit_and_confirmation(
    twins, labelled: Path, env
) -> None:
    from training.diagnosis.registry import Registry

    a, b = twins(labelled)
    at = page(a, "pages/diagnosis.py", env)
    at.text_input(key="dx_new_id").input("P-0042")
    at.selectbox(key="dx_new_sex").set_value("female")
    at.number_input(key="dx_new_year").set_value(1970)
    at.button(key="dx_add_patient").click().run()
    assert not at.exception, at.exception
    at.date_input(key="dx_v_date").set_value(dt.date(2026, 3, 2))
    at.selectbox(key="dx_v_au").set_value("mmol/mol")
    at.selectbox(key="dx_v_gu").set_value("mg/dL")
    at.number_input(key="dx_v_a1c").set_value(50.0)
    at.number_input(key="dx_v_fpg").set_value(130.0)
    at.checkbox(key="dx_v_sym").check()
    at.checkbox(key="dx_v_anaemia").check()
    at.number_input(key="dx_v_bmi").set_value(31.5)
    at.button(key="dx_add_visit").click().run()
    assert not at.exception, at.exception
    (visit,) = Registry.open(a).visits("P-0042")
    assert visit.anaemia_or_hb_disorder
    at.selectbox(key="dx_c_diag").set_value("type 2")
    at.text_input(key="dx_c_note").input("second sample agreed")
    at.button(key="dx_confirm").click().run()
    assert not at.exception, at.exception

    run = training_cli.main
    cli(run, b, "diagnosis", "add-patient", "P-0042", "--sex", "female", "--birth-year",
        "1970", monkeypatch=env)  # fmt: skip
    cli(run, b, "diagnosis", "add-visit", "P-0042", "--date", "2026-03-02", "--hba1c", "50",
        "--hba1c-unit", "mmol/mol", "--fpg", "130", "--glucose-unit", "mg/dL", "--symptoms",
        "--anaemia", "--bmi", "31.5", "--by", NAME, monkeypatch=env)  # fmt: skip
    cli(run, b, "diagnosis", "confirm", "P-0042", visit.visit_id, "type 2", "--by", NAME,
        "--note", "second sample agreed", monkeypatch=env)  # fmt: skip
    assert_same(a, b)


# ------------------------------------------------------------------------------ models
@pytest.fixture(scope="module")
def two_models(labelled: Path, tmp_path_factory) -> tuple[Path, str, str]:
    """The labelled workspace with a tiny trained model (current) and a copy of it, not
    current; returns (workspace, current id, other id)."""
    from tests._segfixtures import train_tiny

    ws = Path(shutil.copytree(labelled, tmp_path_factory.mktemp("models") / "ws"))
    train_tiny(ws)
    zoo = Zoo(ws)
    current = zoo.current("segmentation")
    staging = zoo.staging_dir("segmentation")
    for name in ("config.json", "model.safetensors"):
        (staging / name).write_bytes((zoo.path(current.model_id) / name).read_bytes())
    other = zoo.add(
        "segmentation",
        staging,
        current.model_copy(update={"model_id": ""}),
        make_current=False,
    )
    return ws, current.model_id, other.model_id


def test_update_the_current_model_and_segment_from_current_queue_the_same_run(
    twins, two_models, env
) -> None:
    template, current, _ = two_models
    a, b = twins(template)
    at = page(a, "pages/train.py", env)
    at.button(key="train_update").click()
    at.run()
    assert not at.exception, at.exception
    cli(training_cli.main, b, "segment", "--from", "current", monkeypatch=env)
    assert_same(a, b)
    assert f'"init_from": "{current}"' in stored(b)["jobs"][0][3]


@pytest.mark.slow
def test_train_page_promote_and_roll_back_do_what_the_cli_does(twins, two_models, env) -> None:
    template, current, other = two_models
    a, b = twins(template)
    at = page(a, "pages/train.py", env)
    at.selectbox(key="train_model_pick").set_value(other).run()
    next(x for x in at.button if x.label == "Promote").click()
    at.run()
    assert not at.exception, at.exception
    cli(training_cli.main, b, "promote", other, monkeypatch=env)
    assert_same(a, b)
    next(x for x in at.button if x.label == "Roll back").click()
    at.run()
    assert not at.exception, at.exception
    cli(training_cli.main, b, "rollback", monkeypatch=env)
    assert_same(a, b)
    assert Zoo(a).current("segmentation").model_id == current
