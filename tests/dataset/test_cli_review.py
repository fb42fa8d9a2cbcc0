"""``python -m dataset review ...`` and the release's review flags: exit codes, JSON, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dataset.cli import main
from dataset.images import encode_png_lossless, smear_id_for
from dataset.store import NewSmear, Store
from tests._accounts import add_account

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ws(store: Store, make_smear, monkeypatch) -> tuple[Path, list[str]]:
    """Three tiles saved by ana (two) and rita (one), in that order."""
    monkeypatch.delenv("SMEARLAB_WORKSPACE", raising=False)
    rgb = make_smear(192, 64, seed=4).rgb
    sid = smear_id_for(rgb)
    store.add_smear(NewSmear(sid, encode_png_lossless(rgb), 192, 64, label="s.png"))
    ids = [t.tile_id for t in store.tiles(sid)]
    for tid, who in zip(ids, ("ana", "ana", "rita"), strict=True):
        store.save_mask(tid, np.ones((64, 64), np.uint8), annotator=who)
    for name, role in (("ana", "annotator"), ("rita", "reviewer"), ("rob", "reviewer")):
        add_account(store.root, name, role)
    return store.root, ids


def run(capsys, *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_queue_approve_and_a_second_approval_is_a_conflict(ws, capsys) -> None:
    root, ids = ws
    code, out, _ = run(capsys, "review", "queue", "--workspace", root, "--json")
    doc = json.loads(out)
    assert code == 0 and [q["tile_id"] for q in doc["queue"]] == ids
    assert doc["counts"] == {"unreviewed": 3, "approved": 0, "changes_requested": 0}
    code, out, _ = run(capsys, "--workspace", root, "review", "queue", "--reviewer", "rita")
    assert code == 0 and ids[2] not in out  # her own labelling is not hers to approve
    code, out, _ = run(
        capsys, "--workspace", root, "review", "approve", ids[0], "--reviewer", "rita"
    )
    assert code == 0 and f"Approved revision 1 of {ids[0]}" in out
    code, _, err = run(
        capsys, "--workspace", root, "review", "approve", ids[0], "--reviewer", "rob", "--json"
    )
    assert code == 3 and "already approved by rita" in json.loads(err)["error"]
    code, out, _ = run(capsys, "--workspace", root, "review", "state", ids[0], "--json")
    doc = json.loads(out)
    assert (doc["state"], doc["reviewer"], len(doc["history"])) == ("approved", "rita", 1)


def test_request_changes_needs_a_comment_and_reaches_the_annotator(ws, capsys) -> None:
    root, ids = ws
    base = ("--workspace", root, "review", "request-changes", ids[1], "--reviewer", "rita")
    assert run(capsys, *base)[0] == 2  # --comment is required
    code, _, err = run(capsys, *base, "--comment", "  ")
    assert code == 1 and "needs a comment" in err and err.count("\n") == 1
    code, out, _ = run(capsys, *base, "--comment", "nucleus too small")
    assert code == 0 and "nucleus too small" in out
    code, out, _ = run(capsys, "--workspace", root, "review", "sent-back", "ana", "--json")
    assert [(d["tile_id"], d["comment"]) for d in json.loads(out)] == [
        (ids[1], "nucleus too small")
    ]


def test_refusals_own_labelling_a_stale_revision_and_a_role_without_review(
    ws, capsys, monkeypatch
) -> None:
    root, ids = ws
    code, _, err = run(
        capsys, "--workspace", root, "review", "approve", ids[2], "--reviewer", "rita"
    )
    assert code == 1 and "may not approve their own labelling" in err
    Store.open(root).save_mask(
        ids[0], np.zeros((64, 64), np.uint8), annotator="ana", on_latest=True
    )
    code, _, err = run(
        capsys,
        *("--workspace", root, "review", "approve", ids[0]),
        *("--reviewer", "rita", "--revision", "1"),
    )
    assert code == 3 and "changed while you reviewed it" in err
    # An annotator's account may not review; a name without an account may not either.
    code, _, err = run(
        capsys, "--workspace", root, "review", "approve", ids[1], "--reviewer", "ana"
    )
    assert code == 1 and "needs the admin or reviewer role" in err
    code, _, err = run(
        capsys, "--workspace", root, "review", "approve", ids[1], "--reviewer", "mallory"
    )
    assert code == 1 and "--reviewer mallory" in err
    assert Store.open(root).reviews(ids[1]) == []


def test_review_and_approved_only_release_as_subprocesses(ws) -> None:
    root, ids = ws
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

    done = cli("review", "approve", ids[1], "--reviewer", "rita", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["state"] == "approved"
    again = cli("review", "approve", ids[1], "--reviewer", "rob")
    assert again.returncode == 3 and again.stderr.startswith("error: ")
    done = cli("release", "1.0.0", "-m", "reviewed", "--approved-only", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["n_tiles"] == 1
    done = cli("release", "1.1.0", "-m", "named", "--name-annotators")
    assert done.returncode == 0, done.stderr
    card = (root / "releases" / "1.1.0" / "README.md").read_text()
    assert "| annotator | ana | 2 |" in card and "| reviewer | rita | 1 |" in card
