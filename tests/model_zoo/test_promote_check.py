"""Promote loads the weights and runs a forward pass before the pointer moves (issue #9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_zoo import ModelCard, Zoo
from model_zoo import __main__ as cli
from training.model import build_model, check_checkpoint

CLASSES = ["background", "rbc", "wbc"]


def add_tiny(zoo: Zoo, n_classes: int = 3) -> ModelCard:
    staging = zoo.staging_dir("segmentation")
    build_model(n_classes, encoder="resnet18", encoder_depth=3).save_pretrained(str(staging))
    return zoo.add("segmentation", staging, ModelCard(kind="segmentation", classes=CLASSES))


def test_check_checkpoint_accepts_a_model_and_names_what_is_wrong(tmp_path: Path) -> None:
    zoo = Zoo(tmp_path / "ws")
    good = zoo.path(add_tiny(zoo).model_id)
    check_checkpoint(good, n_classes=3)
    with pytest.raises(ValueError, match=r"output of shape \(1, 3, \d+, \d+\) .* 4 classes"):
        check_checkpoint(good, n_classes=4)
    (good / "model.safetensors").write_bytes(b"\x00" * 100)  # truncated / overwritten
    with pytest.raises(ValueError, match=r"cannot be loaded \(SafetensorError"):
        check_checkpoint(good, n_classes=3)


def test_cli_promote_refuses_weights_that_do_not_load_and_keeps_the_pointer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zoo = Zoo(tmp_path / "ws")
    first = add_tiny(zoo)  # current: the first model of its kind
    broken = add_tiny(zoo)
    weights = zoo.path(broken.model_id) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    code = cli.main(["promote", broken.model_id, "--workspace", str(zoo.workspace)])
    err = capsys.readouterr().err.splitlines()[-1]  # after a note: no workspace classes
    assert code == 1 and err.startswith("error: ") and "Traceback" not in err
    assert f"model {broken.model_id} was not promoted" in err and "cannot be loaded" in err
    assert zoo.current("segmentation").model_id == first.model_id

    good = add_tiny(zoo)
    assert cli.main(["promote", good.model_id, "--workspace", str(zoo.workspace)]) == 0
    assert zoo.current("segmentation").model_id == good.model_id
