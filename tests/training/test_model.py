"""Model construction: clear errors, local encoder weights, checkpoint folders."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from model_zoo import ModelCard, Zoo, ZooError
from training.model import (
    LIGHT_DECODER,
    build_model,
    checkpoint_architecture,
    input_multiple,
    load_model,
    load_segmentation_model,
    model_classes_count,
)
from training.segment import SegTrainConfig


def test_unknown_encoder_lists_the_tested_ones():
    with pytest.raises(ValueError, match="mobilenet_v2, resnet18, resnet34, efficientnet-b0"):
        build_model(4, "mobilenet_v9")


def test_shape_and_stride():
    model = build_model(4, encoder_depth=4)
    assert model_classes_count(model) == 4 and input_multiple(model) == 16


def test_the_decoder_width_is_chosen_and_read_back_from_a_checkpoint(tmp_path):
    light = build_model(3, decoder_channels=LIGHT_DECODER)
    standard = build_model(3)
    widths = [b.conv2[0].out_channels for b in light.decoder.blocks]
    assert widths == list(LIGHT_DECODER)
    count = lambda m: sum(p.numel() for p in m.decoder.parameters())  # noqa: E731
    assert count(light) < count(standard) / 2
    light.save_pretrained(str(tmp_path / "light"))
    arch = checkpoint_architecture(tmp_path / "light")
    assert arch == {
        "encoder": "mobilenet_v2",
        "encoder_depth": 5,
        "decoder_channels": LIGHT_DECODER,
        "classes": 3,
    }
    shallow = build_model(2, encoder_depth=3, decoder_channels=LIGHT_DECODER)
    assert [b.conv2[0].out_channels for b in shallow.decoder.blocks] == [128, 64, 32]
    with pytest.raises(ValueError, match="at least 4 positive widths"):
        build_model(2, encoder_depth=4, decoder_channels=(64, 32, 16))
    with pytest.raises(ValueError, match="at least 5 positive widths"):
        SegTrainConfig(decoder_channels=(64, 32, 16))
    assert SegTrainConfig(encoder_depth=3, decoder_channels=(64, 32, 16)).decoder_channels == (
        64,
        32,
        16,
    )


def test_local_encoder_weights_are_loaded(tmp_path):
    torch.manual_seed(1)
    source = build_model(2)
    path = tmp_path / "encoder.safetensors"
    save_file({k: v.contiguous() for k, v in source.encoder.state_dict().items()}, str(path))
    torch.manual_seed(2)
    model = build_model(3, encoder_weights=path)
    for key, value in source.encoder.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[key], value)
    with pytest.raises(ValueError, match="does not exist"):
        build_model(3, encoder_weights=tmp_path / "missing.safetensors")
    save_file({"nothing": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="same encoder"):
        build_model(3, encoder_weights=tmp_path / "other.safetensors")


def test_load_model_wants_a_checkpoint_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        load_model(tmp_path)


def test_load_segmentation_model_round_trip(tmp_path) -> None:
    smp = pytest.importorskip("segmentation_models_pytorch")
    zoo = Zoo(tmp_path / "ws")
    classes = ["background", "rbc", "wbc"]
    with pytest.raises(ZooError, match="no current segmentation model"):
        load_segmentation_model(zoo)
    torch.manual_seed(0)
    model = smp.Unet(
        "resnet18", encoder_weights=None, encoder_depth=3, decoder_channels=(16, 8, 4), classes=3
    ).eval()
    staging = zoo.staging_dir("segmentation")
    model.save_pretrained(staging)
    (staging / "README.md").unlink(missing_ok=True)
    card = zoo.add("segmentation", staging, ModelCard(kind="segmentation", classes=classes))

    loaded, loaded_card = load_segmentation_model(zoo)
    assert loaded_card == card
    assert not loaded.training
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(model(x), loaded(x))

    dx_staging = zoo.staging_dir("diagnosis")
    model.save_pretrained(dx_staging)
    (dx_staging / "README.md").unlink(missing_ok=True)
    dx = zoo.add("diagnosis", dx_staging, ModelCard(kind="diagnosis", classes=["a", "b"]))
    with pytest.raises(ZooError, match="not a segmentation model"):
        load_segmentation_model(zoo, dx.model_id)
    wrong = zoo.staging_dir("segmentation")
    model.save_pretrained(wrong)
    (wrong / "README.md").unlink(missing_ok=True)
    two = zoo.add("segmentation", wrong, ModelCard(kind="segmentation", classes=["a", "b"]))
    with pytest.raises(ZooError, match="predicts 3 classes but its card lists 2"):
        load_segmentation_model(zoo, two.model_id)
