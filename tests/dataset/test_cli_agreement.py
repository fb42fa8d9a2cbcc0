"""Double labelling by command: the share setting, ``annotate`` on the second label,
``review pick-mask`` and ``agreement --json`` (exit codes, JSON, errors)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataset import audit
from dataset.cli import main
from dataset.images import encode_png_lossless, smear_id_for
from dataset.store import NewSmear, Store
from tests._accounts import add_account

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ws(store: Store, make_smear, monkeypatch, tmp_path: Path) -> tuple[Path, list[str], Path]:
    """Two tiles ana labelled; accounts ana, bob (annotators), carl, rita (reviewer); a mask
    file of all erythrocyte with its right half unlabelled."""
    for name in ("SMEARLAB_WORKSPACE", "SMEARLAB_ANNOTATOR", "SMEARLAB_DOUBLE_LABEL_SHARE"):
        monkeypatch.delenv(name, raising=False)
    rgb = make_smear(128, 64, seed=4).rgb
    sid = smear_id_for(rgb)
    store.add_smear(NewSmear(sid, encode_png_lossless(rgb), 128, 64, label="s.png"))
    ids = [t.tile_id for t in store.tiles(sid)]
    for tid in ids:
        store.save_mask(tid, np.ones((64, 64), np.uint8), annotator="ana")
    for name, role in (("ana", "annotator"), ("bob", "annotator"), ("carl", "annotator")):
        add_account(store.root, name, role)
    add_account(store.root, "rita", "reviewer")
    mask = np.ones((64, 64), np.uint8)
    mask[:, 32:] = 255
    path = tmp_path / "half.png"
    Image.fromarray(mask).save(path)
    return store.root, ids, path


def run(capsys, *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_share_is_set_by_command_and_a_bad_value_is_refused_clearly(ws, capsys) -> None:
    root, _, _ = ws
    code, out, _ = run(capsys, "settings", "get", "double_label_share", "--workspace", root)
    assert code == 0 and "double_label_share = 0.05 (default)" in out
    code, _, err = run(capsys, "settings", "set", "double_label_share", "2", "--workspace", root)
    assert code == 1
    assert "'2' is not a valid double_label_share: Input should be less than or equal to 1" in err
    code, out, _ = run(capsys, "settings", "set", "double_label_share", "1", "--workspace", root)
    assert code == 0 and "double_label_share = 1.0 (workspace)" in out


def test_annotate_gives_the_second_label_and_the_pick_decides(ws, capsys) -> None:
    root, ids, half = ws
    tid = ids[0]
    w = ("--workspace", root)
    run(capsys, "settings", "set", "double_label_share", "1", *w)
    code, out, _ = run(capsys, "annotate", tid, half, "--annotator", "bob", "--json", *w)
    assert code == 0, out
    assert json.loads(out) == {
        "tile_id": tid,
        "revision": 1,
        "lane": "second",
        "n_labelled_px": 2048,
    }
    code, _, err = run(capsys, "annotate", tid, half, "--annotator", "carl", "--lane", "second", *w)
    assert code == 1 and "already has its two independent labels, by ana and by bob" in err
    code, _, err = run(capsys, "annotate", tid, half, "--annotator", "ana", "--lane", "second", *w)
    assert code == 1 and "never both annotators" in err
    code, out, _ = run(capsys, "review", "double-labelled", "--json", *w)
    assert json.loads(out) == [
        {"tile_id": tid, "first": "ana", "second": "bob", "picked": None, "picked_by": None}
    ]
    code, _, err = run(capsys, "review", "pick-mask", tid, "second", "--reviewer", "bob", *w)
    assert code == 1 and "may not review" in err
    code, out, _ = run(
        capsys, "review", "pick-mask", tid, "second", "--reviewer", "rita", "--json", *w
    )
    assert code == 0
    assert json.loads(out) == {"tile_id": tid, "lane": "second", "reviewer": "rita", "revision": 2}
    assert Store.open(root).latest(tid).annotator == "bob"
    code, _, err = run(capsys, "review", "pick-mask", tid, "first", "--reviewer", "rita", *w)
    assert code == 3 and "already picked the second label" in err
    assert [r.object_id for r in audit.read(root, action="pick_mask")] == [tid]


def test_agreement_as_a_subprocess_twice(ws, capsys) -> None:
    root, ids, half = ws
    run(capsys, "settings", "set", "double_label_share", "1", "--workspace", root)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SMEARLAB_WORKSPACE", None)

    def cli(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "dataset", "--workspace", str(root), *argv],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
        )

    empty = cli("agreement", "--json")
    assert empty.returncode == 0, empty.stderr
    assert json.loads(empty.stdout) == {
        "n_tiles": 0,
        "pairs": {},
        "rows": [],
        "double_label_share": 1.0,
    }
    saved = cli("annotate", ids[1], str(half), "--annotator", "bob")
    assert saved.returncode == 0 and "Saved second-label revision 1" in saved.stdout
    # ana: all 4096 pixels erythrocyte; bob: the left half erythrocyte, the right unlabelled.
    # Compared: the 2048 pixels of the left half, erythrocyte in both: Dice 1, IoU 1.
    done = cli("agreement", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == [
        {
            "annotator_a": "ana",
            "annotator_b": "bob",
            "class_name": "erythrocyte",
            "dice": 1.0,
            "iou": 1.0,
            "n_tiles": 1,
        }
    ]
    text = cli("agreement")
    assert (
        text.returncode == 0
        and "ana / bob  erythrocyte: Dice 1.000, IoU 1.000 (1 tile)" in text.stdout
    )


def test_awaiting_second_lists_what_the_label_page_brings_forward(ws, capsys) -> None:
    root, ids, _ = ws
    code, out, _ = run(capsys, "settings", "set", "double_label_share", "1", "--workspace", root)
    assert code == 0
    code, out, _ = run(capsys, "--workspace", root, "review", "awaiting-second", "bob", "--json")
    assert code == 0 and json.loads(out) == [{"tile_id": t} for t in ids]
    code, out, _ = run(capsys, "--workspace", root, "review", "awaiting-second", "ana")
    assert code == 0 and out.startswith("0 tile(s) wait for ana's independent second label")
