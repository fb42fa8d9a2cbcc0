"""``python -m dataset users`` and ``serve-check``, and commands that must name an account."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataset import accounts
from dataset.cli import main
from dataset.ingest import ingest_files

ROOT = Path(__file__).resolve().parents[2]
PW = "lab-password-1"


def cli(ws: Path, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """``python -m dataset`` as a process, stdin a pipe (no terminal to prompt on)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMEARLAB_")}
    return subprocess.run(
        [sys.executable, "-m", "dataset", *argv, "--workspace", str(ws)],
        cwd=ROOT,
        env=env,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_users_add_list_set_role_reset_disable_enable_as_processes(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    done = cli(ws, "users", "add", "lead", "--role", "admin", "--password-stdin", stdin=PW + "\n")
    assert done.returncode == 0, done.stderr
    assert "Added lead (admin)" in done.stdout
    done = cli(ws, "users", "add", "ana", "--role", "annotator", "--password-stdin", "--json",
               stdin=PW + "\n")  # fmt: skip
    assert done.returncode == 0 and json.loads(done.stdout)["role"] == "annotator"
    assert accounts.verify_sign_in(ws, "ana", PW, "t").name == "ana"  # the stdin line, no \n
    done = cli(ws, "users", "list", "--json")
    listed = json.loads(done.stdout)["accounts"]
    assert [(a["name"], a["role"], a["disabled"]) for a in listed] == [
        ("ana", "annotator", False),
        ("lead", "admin", False),
    ]
    assert "hash" not in done.stdout
    assert cli(ws, "users", "set-role", "ana", "reviewer").returncode == 0
    assert accounts.actor_for(ws, "ana").role == "reviewer"
    done = cli(ws, "users", "reset-password", "ana", "--password-stdin", stdin="new-password-2\n")
    assert done.returncode == 0, done.stderr
    assert accounts.verify_sign_in(ws, "ana", "new-password-2", "t").name == "ana"
    assert cli(ws, "users", "disable", "ana").returncode == 0
    with pytest.raises(accounts.AccountError, match="disabled"):
        accounts.actor_for(ws, "ana")
    assert cli(ws, "users", "enable", "ana").returncode == 0
    assert accounts.actor_for(ws, "ana").role == "reviewer"
    # Refusals: one sentence, exit 1.
    done = cli(ws, "users", "add", "ana", "--role", "annotator", "--password-stdin", stdin=PW)
    assert done.returncode == 1 and "exists already" in done.stderr
    done = cli(ws, "users", "disable", "lead")
    assert done.returncode == 1 and "last enabled admin" in done.stderr
    done = cli(ws, "users", "set-role", "ghost", "admin", "--json")
    assert done.returncode == 1 and "no account 'ghost'" in json.loads(done.stderr)["error"]


def test_a_password_is_never_taken_from_an_argument(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    done = cli(ws, "users", "add", "ana", "--role", "admin", "--password", PW)
    assert done.returncode == 2 and "never taken from the command line" in done.stderr
    done = cli(ws, "users", "add", "ana", PW, "--role", "admin")
    assert done.returncode == 2  # no place for it among the arguments either
    assert not accounts.has_accounts(ws)


def test_without_a_terminal_the_password_must_come_on_stdin(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    done = cli(ws, "users", "add", "ana", "--role", "admin")
    assert done.returncode == 2 and "--password-stdin" in done.stderr
    done = cli(ws, "users", "add", "ana", "--role", "admin", "--password-stdin", stdin="\n")
    assert done.returncode == 2 and "no password" in done.stderr
    done = cli(ws, "users", "add", "ana", "--role", "admin", "--password-stdin", stdin="short\n")
    assert done.returncode == 1 and "too short" in done.stderr
    assert not accounts.has_accounts(ws)


def test_the_prompt_asks_twice_and_refuses_two_different_passwords(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    import getpass

    ws = tmp_path / "ws"
    monkeypatch.delenv("SMEARLAB_WORKSPACE", raising=False)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    answers = iter([PW, "something-else"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt: next(answers))
    assert main(["users", "add", "ana", "--role", "admin", "--workspace", str(ws)]) == 1
    assert "differ" in capsys.readouterr().err and not accounts.has_accounts(ws)
    answers = iter([PW, PW])
    assert main(["users", "add", "ana", "--role", "admin", "--workspace", str(ws)]) == 0
    assert accounts.verify_sign_in(ws, "ana", PW, "t").name == "ana"


def test_serve_check_refuses_a_workspace_without_accounts(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    done = cli(ws, "serve-check")
    assert done.returncode == 1 and "no account yet" in done.stderr and "make run" in done.stderr
    accounts.add_account(ws, "lead", "admin", PW)
    done = cli(ws, "serve-check", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["enabled_accounts"] == 1


@pytest.fixture
def tile(store, make_smear, encode_image, tmp_path):
    """A workspace with one smear and a mask file for its first tile; returns (root, tile id,
    mask path)."""
    [res] = ingest_files(
        store, [("s.png", encode_image(make_smear(96, 80, seed=3).rgb))], actor="tester"
    )
    tile = store.tiles(res.smear_id)[0]
    path = tmp_path / "m.png"
    Image.fromarray(np.ones((tile.h, tile.w), np.uint8)).save(path)
    accounts.add_account(store.root, "ana", "annotator", PW)
    accounts.add_account(store.root, "dr-c", "clinician", PW)
    return store.root, tile.tile_id, path


@pytest.mark.parametrize(
    ("who", "says"),
    [
        ("ghost", "no account 'ghost'"),
        ("dr-c", "may not label"),  # a clinician does not label
        ("system", "reserved for automatic actions"),
    ],
)
def test_annotate_names_an_account_whose_role_may_label(tile, who, says) -> None:
    ws, tile_id, mask = tile
    done = cli(ws, "annotate", tile_id, str(mask), "--annotator", who)
    assert done.returncode == 1 and says in done.stderr, done.stderr
    assert done.stderr.startswith("error: --annotator") and done.stderr.count("\n") == 1


def test_import_masks_names_an_account_as_author(tile, make_smear, tmp_path) -> None:
    from dataset.store import Store

    ws, _, _ = tile
    image = make_smear(96, 80, seed=3).rgb  # the smear of the fixture
    Image.fromarray(image).save(tmp_path / "p.png")
    Image.fromarray(np.zeros(image.shape[:2], np.uint8)).save(tmp_path / "g.png")
    (tmp_path / "pairs.csv").write_text("image,mask\np.png,g.png\n")
    argv = ["import-masks", "--pairs", str(tmp_path / "pairs.csv"), "--levels", "0=background"]
    done = cli(ws, *argv, "--annotator", "ghost")
    assert done.returncode == 1 and "no account 'ghost'" in done.stderr
    assert Store.open(ws).latest_revisions() == {}
    assert cli(ws, *argv, "--annotator", "ana").returncode == 0
    assert {r.annotator for r in Store.open(ws).latest_revisions().values()} == {"ana"}


def test_annotate_and_skip_record_the_named_account(tile) -> None:
    from dataset.store import Store

    ws, tile_id, mask = tile
    assert cli(ws, "annotate", tile_id, str(mask), "--annotator", "ana").returncode == 0
    assert Store.open(ws).latest(tile_id).annotator == "ana"
    done = cli(ws, "skip", tile_id, "--annotator", "dr-c")
    assert done.returncode == 1 and "may not skip" in done.stderr
    accounts.disable(ws, "ana")
    done = cli(ws, "skip", tile_id, "--annotator", "ana")
    assert done.returncode == 1 and "disabled" in done.stderr
    accounts.enable(ws, "ana")
    assert cli(ws, "skip", tile_id, "--annotator", "ana").returncode == 0
    assert Store.open(ws).is_skipped(tile_id)
