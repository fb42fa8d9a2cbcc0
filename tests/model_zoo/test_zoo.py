"""Tests for the model zoo: registration, current pointer, promote/rollback, CLI."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from model_zoo import (
    ClassMismatchError,
    ModelCard,
    NothingToRollBackError,
    UnknownModelError,
    Zoo,
    ZooError,
)
from model_zoo import __main__ as cli

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ["background", "rbc", "wbc"]


def write_checkpoint(folder: Path, value: float = 0.0) -> Path:
    """Fill ``folder`` with a minimal checkpoint (not an smp model; the zoo does not care)."""
    (folder / "config.json").write_text(json.dumps({"kind": "fake"}))
    save_file({"w": np.full((2, 2), value, dtype=np.float32)}, str(folder / "model.safetensors"))
    return folder


def add_model(
    zoo: Zoo, *, kind: str = "segmentation", classes=CLASSES, iou=0.5, **choice
) -> ModelCard:
    staging = write_checkpoint(zoo.staging_dir(kind))
    metrics = {"mean_iou": iou, "iou": dict.fromkeys(classes, iou)}
    card = ModelCard(kind=kind, classes=list(classes), metrics=metrics)
    return zoo.add(kind, staging, card, **choice)


@pytest.fixture
def zoo(tmp_path: Path) -> Zoo:
    return Zoo(tmp_path / "ws")


def test_first_model_becomes_current_and_second_does_not(zoo: Zoo) -> None:
    assert zoo.current("segmentation") is None
    first = add_model(zoo)
    assert first.model_id
    assert zoo.current("segmentation") == first
    second = add_model(zoo)
    assert zoo.current("segmentation") == first
    assert [c.model_id for c in zoo.list("segmentation")] == [first.model_id, second.model_id]
    assert zoo.current("diagnosis") is None
    folder = zoo.path(second.model_id)
    assert sorted(p.name for p in folder.iterdir()) == [
        "card.json",
        "config.json",
        "model.safetensors",
    ]
    assert ModelCard.model_validate_json((folder / "card.json").read_text()) == second


def test_a_chosen_model_becomes_current_only_over_the_model_it_was_compared_with(
    zoo: Zoo,
) -> None:
    lost = add_model(zoo, make_current=False)
    assert zoo.current("segmentation") is None, "a model that lost to the rules stays aside"
    first = add_model(zoo, make_current=True, compared_with=None)
    assert zoo.current("segmentation") == first
    second = add_model(zoo, make_current=True, compared_with=first.model_id)
    assert zoo.current("segmentation") == second
    assert zoo.history("segmentation")[-1].previous == first.model_id
    # Someone promoted another model while the third run was being compared: theirs stands.
    zoo.promote(lost.model_id)
    add_model(zoo, make_current=True, compared_with=second.model_id)
    assert zoo.current("segmentation") == lost
    assert zoo.rollback("segmentation") == second
    assert len(zoo.list("segmentation")) == 4


def test_promote_then_rollback_keeps_history(zoo: Zoo) -> None:
    a, b, c = add_model(zoo), add_model(zoo), add_model(zoo)
    zoo.promote(b.model_id)
    zoo.promote(c.model_id)
    assert zoo.current("segmentation").model_id == c.model_id
    assert zoo.rollback("segmentation").model_id == b.model_id
    assert zoo.rollback("segmentation").model_id == a.model_id
    with pytest.raises(NothingToRollBackError, match="no earlier segmentation model"):
        zoo.rollback("segmentation")
    assert zoo.current("segmentation").model_id == a.model_id
    actions = [(e.action, e.model_id, e.previous) for e in zoo.history("segmentation")]
    assert actions == [
        ("add", a.model_id, None),
        ("promote", b.model_id, a.model_id),
        ("promote", c.model_id, b.model_id),
        ("rollback", b.model_id, c.model_id),
        ("rollback", a.model_id, b.model_id),
    ]
    # Every model is still there after rolling back.
    assert {m.model_id for m in zoo.list()} == {a.model_id, b.model_id, c.model_id}


def test_kinds_have_separate_current_models(zoo: Zoo) -> None:
    seg = add_model(zoo)
    dx = add_model(zoo, kind="diagnosis", classes=["healthy", "diabetic"])
    assert zoo.current("segmentation") == seg
    assert zoo.current("diagnosis") == dx
    assert [c.model_id for c in zoo.list("diagnosis")] == [dx.model_id]
    assert zoo.get(dx.model_id).kind == "diagnosis"


def test_promote_refused_when_classes_differ(zoo: Zoo) -> None:
    a = add_model(zoo)
    b = add_model(zoo, classes=["background", "rbc"])
    with pytest.raises(ClassMismatchError) as info:
        zoo.promote(b.model_id, classes=CLASSES)
    message = str(info.value)
    assert "['background', 'rbc']" in message
    assert "['background', 'rbc', 'wbc']" in message
    assert zoo.current("segmentation").model_id == a.model_id
    assert zoo.promote(b.model_id, classes=["background", "rbc"]).model_id == b.model_id


def test_unknown_id_lists_valid_ids(zoo: Zoo) -> None:
    a = add_model(zoo)
    with pytest.raises(UnknownModelError, match=a.model_id):
        zoo.promote("seg-nope")
    with pytest.raises(UnknownModelError):
        zoo.get("../../etc")


def test_list_ignores_a_crashed_staging_folder(zoo: Zoo) -> None:
    a = add_model(zoo)
    # A run that crashed after writing its files but before add().
    write_checkpoint(zoo.staging_dir("segmentation"))
    # A stray folder without a card (e.g. copied by hand) is not a model either.
    stray = zoo.root / "segmentation" / "half-copied"
    stray.mkdir()
    write_checkpoint(stray)
    assert [c.model_id for c in zoo.list()] == [a.model_id]
    removed = zoo.discard_stale_staging(max_age_s=-1)
    assert len(removed) == 1
    assert not removed[0].exists()


def test_add_from_an_outside_folder_copies_it(zoo: Zoo, tmp_path: Path) -> None:
    outside = tmp_path / "export"
    outside.mkdir()
    write_checkpoint(outside)
    card = zoo.add("segmentation", outside, ModelCard(kind="segmentation", classes=CLASSES))
    assert (zoo.path(card.model_id) / "model.safetensors").is_file()
    assert (outside / "model.safetensors").is_file()
    assert not (outside / "card.json").exists()


def test_add_refuses_incomplete_or_pickled_checkpoints(zoo: Zoo) -> None:
    staging = zoo.staging_dir("segmentation")
    (staging / "config.json").write_text("{}")
    card = ModelCard(kind="segmentation", classes=CLASSES)
    with pytest.raises(ZooError, match=r"lacks model\.safetensors"):
        zoo.add("segmentation", staging, card)
    write_checkpoint(staging)
    (staging / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(ZooError, match="pickled"):
        zoo.add("segmentation", staging, card)
    with pytest.raises(ZooError, match="kind"):
        zoo.add("diagnosis", staging, card)
    assert zoo.list() == []


def test_duplicate_model_id_is_refused(zoo: Zoo) -> None:
    a = add_model(zoo)
    staging = write_checkpoint(zoo.staging_dir("segmentation"))
    dup = ModelCard(model_id=a.model_id, kind="segmentation", classes=CLASSES)
    with pytest.raises(ZooError, match="already exists"):
        zoo.add("segmentation", staging, dup)


def test_concurrent_promotes_leave_a_valid_pointer(zoo: Zoo) -> None:
    a, b = add_model(zoo), add_model(zoo)
    rounds = 40
    script = (
        "import sys\n"
        "from model_zoo import Zoo\n"
        "zoo = Zoo(sys.argv[1])\n"
        f"for i in range({rounds}):\n"
        "    zoo.promote(sys.argv[2 + i % 2])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(zoo.workspace), *ids], env=env)
        for ids in ((a.model_id, b.model_id), (b.model_id, a.model_id))
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    pointer = json.loads((zoo.root / "segmentation" / "current.json").read_text())
    assert pointer["model_id"] in {a.model_id, b.model_id}
    events = zoo.history("segmentation")
    # No lost updates: one event per add and per promote call.
    assert len(events) == 1 + 2 * rounds
    # Each event's "previous" is the model the event before it made current.
    for before, after in itertools.pairwise(events):
        assert after.previous == before.model_id


# ---------------------------------------------------------------------- CLI


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_list_marks_current_and_shows_metrics(zoo: Zoo, capsys) -> None:
    a = add_model(zoo, iou=0.25)
    b = add_model(zoo, iou=0.75)
    ws = str(zoo.workspace)
    code, out, _ = run_cli(capsys, "list", "--kind", "segmentation", "--workspace", ws)
    assert code == 0
    lines = out.splitlines()
    header = next(line for line in lines if "created (UTC)" in line)
    assert header.split()[:4] == ["model", "created", "(UTC)", "encoder"]
    assert "mean IoU" in header
    assert "IoU rbc" in header
    assert "/" not in header
    row_a = next(line for line in lines if a.model_id in line)
    row_b = next(line for line in lines if b.model_id in line)
    assert row_a.split()[0] == "*"
    assert "0.250" in row_a
    assert row_b.split()[0] == b.model_id
    assert "0.750" in row_b

    code, out, _ = run_cli(capsys, "--workspace", ws, "list", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["model_id"], r["current"]) for r in rows] == [
        (a.model_id, True),
        (b.model_id, False),
    ]


def test_cli_list_is_flat_and_keeps_the_full_card_for_json(zoo: Zoo, capsys) -> None:
    """A trained card carries nested figures (``selection``: the run's comparison, ``dice``,
    counts); the text list shows flat, readable columns, ``--json`` the whole card."""
    staging = write_checkpoint(zoo.staging_dir("segmentation"))
    metrics = {
        "mean_iou": 0.5,
        "miou": 0.5,
        "n_pixels": 4096,
        "iou": {"background": 0.75, "rbc": 0.25},
        "dice": {"background": 0.8, "rbc": 0.4},
        "mean_dice": 0.6,
        "beats_rules": False,
        "selection": {"new_miou": 0.5, "rules_miou": 0.7, "tiles": 3, "reason": "lost"},
    }
    card = zoo.add(
        "segmentation",
        staging,
        ModelCard(
            kind="segmentation", classes=CLASSES, metrics=metrics, settings={"encoder": "r18"}
        ),
    )
    ws = str(zoo.workspace)
    code, out, _ = run_cli(capsys, "list", "--workspace", ws)
    assert code == 0
    lines = out.splitlines()
    header = next(line for line in lines if "created (UTC)" in line)
    assert "selection" not in out and "miou" not in header and "n_pixels" not in header
    assert "/" not in header
    row = next(line for line in lines if card.model_id in line)
    names = [c.strip() for c in header.split("  ") if c.strip()]
    starts = [header.index(name) for name in names] + [None]
    cells = [row[a:b].strip() for a, b in itertools.pairwise(starts)]
    assert dict(zip(names, cells, strict=True)) == {
        "model": card.model_id,
        "created (UTC)": f"{card.created_at:%Y-%m-%d %H:%M}",
        "encoder": "r18",
        "parent": "-",
        "mean IoU": "0.500",
        "IoU background": "0.750",
        "IoU rbc": "0.250",
        "mean Dice": "0.600",
        "beats rules": "no",
    }
    code, out, _ = run_cli(capsys, "list", "--json", "--workspace", ws)
    assert json.loads(out)[0]["metrics"]["selection"]["rules_miou"] == 0.7


def test_cards_record_their_parent_and_the_list_shows_lineage(zoo: Zoo, capsys) -> None:
    """A fine-tuned model's card names the model it started from; a card written before
    lineage was recorded (no ``parent`` key) still loads, as a start from scratch."""
    parent = add_model(zoo)
    staging = write_checkpoint(zoo.staging_dir("segmentation"))
    child = zoo.add(
        "segmentation",
        staging,
        ModelCard(kind="segmentation", classes=CLASSES, parent=parent.model_id),
    )
    assert zoo.get(child.model_id).parent == parent.model_id
    old = zoo.path(parent.model_id) / "card.json"
    written = json.loads(old.read_text())
    written.pop("parent")
    old.write_text(json.dumps(written))
    assert zoo.get(parent.model_id).parent is None

    ws = str(zoo.workspace)
    code, out, _ = run_cli(capsys, "list", "--workspace", ws)
    assert code == 0
    header = next(line for line in out.splitlines() if "created (UTC)" in line)
    column = header.index("parent")
    rows = {line.split()[0].strip("*") or line.split()[1]: line for line in out.splitlines()}
    assert rows[child.model_id][column:].split()[0] == parent.model_id
    assert (
        next(r for r in out.splitlines() if parent.model_id in r and r.startswith("  *"))[
            column:
        ].split()[0]
        == "-"
    )
    code, out, _ = run_cli(capsys, "show", child.model_id, "--workspace", ws)
    assert f"parent:         {parent.model_id}" in out
    code, out, _ = run_cli(capsys, "list", "--json", "--workspace", ws)
    assert [r["parent"] for r in json.loads(out)] == [None, parent.model_id]


def test_cli_show_marks_the_current_model(zoo: Zoo, capsys) -> None:
    a, b = add_model(zoo), add_model(zoo)
    ws = str(zoo.workspace)
    code, out, _ = run_cli(capsys, "show", a.model_id, "--workspace", ws)
    assert code == 0
    assert f"model_id:       {a.model_id}  (current)" in out
    code, out, _ = run_cli(capsys, "show", b.model_id, "--workspace", ws, "--json")
    assert code == 0 and json.loads(out)["current"] is False


def test_cli_promote_and_rollback_say_where_they_moved(zoo: Zoo, capsys) -> None:
    a, b = add_model(zoo), add_model(zoo)
    ws = str(zoo.workspace)
    code, _, err = run_cli(capsys, "promote", b.model_id, "--workspace", ws)
    assert code == 2 and "python -m training promote" in err
    code, _, err = run_cli(capsys, "rollback", "--workspace", ws)
    assert code == 2 and "python -m training rollback" in err
    assert zoo.current("segmentation").model_id == a.model_id  # nothing moved


def test_cli_refusals_and_usage(zoo: Zoo, capsys) -> None:
    a = add_model(zoo)
    b = add_model(zoo, classes=["background", "rbc"])
    ws = str(zoo.workspace)
    code, _, err = run_cli(capsys, "show", "nope", "--workspace", ws)
    assert code == 1
    assert a.model_id in err
    assert b.model_id in err
    assert run_cli(capsys, "frobnicate", "--workspace", ws)[0] == 2
    assert run_cli(capsys, "list", "--kind", "cats", "--workspace", ws)[0] == 2


def test_cli_runs_as_module(zoo: Zoo) -> None:
    add_model(zoo)
    done = subprocess.run(
        [sys.executable, "-m", "model_zoo", "list", "--json", "--workspace", str(zoo.workspace)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) == 1


def test_importing_model_zoo_leaves_torch_and_streamlit_out() -> None:
    code = (
        "import sys, model_zoo, model_zoo.__main__\n"
        "print('torch' in sys.modules, 'streamlit' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["False", "False"]
