"""Building, normalising for and loading the segmentation U-Net.

The promise of this module: one place decides how a model is built from a few plain
settings, how a uint8 RGB image becomes the tensor the model sees, and how a saved
checkpoint folder (smp's ``config.json`` + ``model.safetensors``) becomes a model again.
Training and inference both go through :func:`to_model_input`, so they can never disagree
about normalisation. Nothing here downloads weights unless asked for by name.
"""

from __future__ import annotations

import os
import platform
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "ENCODERS",
    "SegModel",
    "build_model",
    "check_checkpoint",
    "checkpoint_architecture",
    "decoder_stages",
    "input_multiple",
    "load_model",
    "model_classes_count",
    "promotion_check",
    "seed_everything",
    "to_model_input",
]

# Encoders offered in the UI; smp knows many more and build_model accepts any of them.
ENCODERS = ("mobilenet_v2", "resnet18", "resnet34", "efficientnet-b0")
# smp's U-Net decoder, widest stage first (the first ``encoder_depth`` are used).
DECODER_CHANNELS = (256, 128, 64, 32, 16)
# Half as wide: on 2 CPU cores a training step (batch 8 of 256 px) takes about 0.6 of the time
# of the standard decoder's, most of which goes on the last two stages at full and half
# resolution. Measured in the issue 11 note.
LIGHT_DECODER = (128, 64, 32, 16, 8)

# ImageNet statistics: harmless for randomly initialised encoders and right for pretrained ones.
_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

SegModel = torch.nn.Module  # an smp SegmentationModel; aliased so callers need not import smp


def build_model(
    n_classes: int,
    encoder: str = "mobilenet_v2",
    encoder_weights: str | Path | None = None,
    encoder_depth: int = 5,
    decoder_channels: Sequence[int] = DECODER_CHANNELS,
) -> SegModel:
    """A fresh ``smp.Unet`` with ``n_classes`` output channels (raw logits, no activation).

    Args:
        n_classes: Number of mask classes (unlabelled is not a class).
        encoder: Any smp encoder name; :data:`ENCODERS` are the tested ones.
        encoder_weights: ``None`` for random initialisation; a path to a local
            ``.safetensors`` file holding an encoder state dict; or an smp weight name such
            as ``"imagenet"``, which smp fetches (works offline only if already cached).
        encoder_depth: Number of encoder stages (3-5); fewer is faster and coarser.
        decoder_channels: Width of each decoder stage, widest first; the first
            ``encoder_depth`` are used.

    Raises:
        ValueError: The encoder name is unknown, the decoder has fewer stages than the encoder
            or a stage without channels, or the weights cannot be used.
    """
    import segmentation_models_pytorch as smp

    if n_classes < 1:
        raise ValueError(f"A model needs at least one class, got n_classes={n_classes}.")
    known = smp.encoders.get_encoder_names()
    if encoder not in known:
        raise ValueError(
            f"Unknown encoder {encoder!r}. Tested encoders: {', '.join(ENCODERS)} "
            f"(smp knows {len(known)} in all, see segmentation_models_pytorch.encoders)."
        )
    if not 3 <= encoder_depth <= 5:
        raise ValueError(f"encoder_depth must be 3, 4 or 5, got {encoder_depth}.")
    decoder = decoder_stages(decoder_channels, encoder_depth)
    local = encoder_weights is not None and Path(str(encoder_weights)).suffix == ".safetensors"
    smp_weights = None if encoder_weights is None or local else str(encoder_weights)
    try:
        model = smp.Unet(
            encoder_name=encoder,
            encoder_weights=smp_weights,
            encoder_depth=encoder_depth,
            decoder_channels=decoder,
            classes=n_classes,
        )
    except Exception as err:  # smp raises KeyError/OSError/HTTP errors for weights it cannot get
        if smp_weights is None:
            raise
        raise ValueError(
            f"Could not get encoder weights {smp_weights!r} for {encoder!r}: {err}. Use "
            "encoder_weights=None (random start) or a local .safetensors file of encoder weights."
        ) from err
    if local:
        _load_encoder_weights(model, Path(str(encoder_weights)))
    return model


def decoder_stages(decoder_channels: Sequence[int], encoder_depth: int) -> tuple[int, ...]:
    """The decoder widths a U-Net of ``encoder_depth`` stages uses: the first ``encoder_depth``.

    Raises:
        ValueError: Fewer widths than stages, or a width below 1.
    """
    decoder = tuple(int(c) for c in decoder_channels)[:encoder_depth]
    if len(decoder) < encoder_depth or min(decoder) < 1:
        raise ValueError(
            f"decoder_channels {list(decoder_channels)} must give at least {encoder_depth} "
            "positive widths, one per encoder stage, e.g. (256, 128, 64, 32, 16)."
        )
    return decoder


def _load_encoder_weights(model: SegModel, path: Path) -> None:
    from safetensors.torch import load_file

    if not path.is_file():
        raise ValueError(f"Encoder weights file {path} does not exist.")
    state = load_file(str(path))
    state = {k.removeprefix("encoder."): v for k, v in state.items()}
    own = model.encoder.state_dict()
    missing = own.keys() - state.keys()
    wrong = [k for k in own.keys() & state.keys() if own[k].shape != state[k].shape]
    if missing or wrong:
        raise ValueError(
            f"{path} does not hold weights for this encoder ({len(missing)} missing, "
            f"{len(wrong)} of the wrong shape); check that it was saved from the same encoder."
        )
    # Extra keys (e.g. an ImageNet classifier head) are ignored.
    model.encoder.load_state_dict({k: state[k] for k in own}, strict=True)


def _rebuild(folder: Path) -> SegModel:
    """The model of a checkpoint folder: rebuilt from ``config.json`` (smp's ``_model_class``
    plus init arguments) with no encoder weights to fetch, then filled strictly from
    ``model.safetensors``. ``smp.from_pretrained`` is not used because it would build the
    encoder with the saved ``encoder_weights`` first, which downloads ImageNet weights that the
    checkpoint then overwrites.

    Raises:
        ValueError: ``config.json`` names no smp model class.
    """
    import json

    import segmentation_models_pytorch as smp
    from safetensors.torch import load_file

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    class_name = config.get("_model_class")
    model_class = getattr(smp, str(class_name), None)
    if not isinstance(model_class, type) or not issubclass(model_class, torch.nn.Module):
        raise ValueError(
            f"{folder / 'config.json'} names model class {class_name!r}, which "
            "segmentation_models_pytorch does not have; save checkpoints with smp's save_pretrained"
        )
    kwargs = {k: v for k, v in config.items() if not k.startswith("_")}
    kwargs["encoder_weights"] = None  # every weight comes from the checkpoint file
    model = model_class(**kwargs)
    model.load_state_dict(load_file(str(folder / "model.safetensors"), device="cpu"), strict=True)
    return model


def load_model(path: Path | str, device: str | torch.device = "cpu") -> SegModel:
    """Load a checkpoint folder written by ``model.save_pretrained`` and put it in eval mode.

    The one loader of segmentation checkpoints (the zoo's current model, a bench's checkpoint,
    the promotion check): only ``config.json`` and ``model.safetensors`` are read; nothing is
    downloaded or unpickled.
    """
    folder = Path(path)
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise FileNotFoundError(
            f"{folder} is not a segmentation checkpoint: it needs config.json and "
            "model.safetensors (written by model.save_pretrained)."
        )
    return _rebuild(folder).to(device).eval()


def checkpoint_architecture(path: Path | str) -> dict:
    """What :func:`build_model` settings rebuild a checkpoint folder's model, read from its
    ``config.json`` alone (no weights loaded).

    Returns:
        ``{"encoder": ..., "encoder_depth": ..., "decoder_channels": (...), "classes": n}``.

    Raises:
        ValueError: The folder has no readable ``config.json``, or its model is not a U-Net
            :func:`build_model` builds (another smp class, or a decoder stage per encoder
            stage missing), so this trainer cannot continue it.
    """
    import json

    file = Path(path) / "config.json"
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
        encoder, depth = str(config["encoder_name"]), int(config.get("encoder_depth", 5))
        n_classes = int(config.get("classes", 1))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{file} cannot be read as an smp model config ({exc})") from None
    decoder = config.get("decoder_channels", DECODER_CHANNELS[:depth])
    if (
        config.get("_model_class") != "Unet"
        or not isinstance(decoder, list | tuple)
        or len(decoder) != depth
        or not all(isinstance(c, int) and c > 0 for c in decoder)
    ):
        raise ValueError(
            f"{file} describes a {config.get('_model_class')} with decoder channels {decoder}, "
            f"not a U-Net this trainer builds (one decoder stage per encoder stage, e.g. "
            f"{list(DECODER_CHANNELS[:depth])})"
        )
    return {
        "encoder": encoder,
        "encoder_depth": depth,
        "decoder_channels": tuple(decoder),
        "classes": n_classes,
    }


def load_segmentation_model(zoo, model_id: str | None = None, device: str = "cpu"):
    """Load a segmentation model of ``zoo`` (:class:`model_zoo.Zoo`) in eval mode.

    Args:
        model_id: Which model; the current segmentation model when None.
        device: Torch device to put the model on.

    Returns:
        ``(model, card)``.

    Raises:
        model_zoo.ZooError: No current model, the id is not a segmentation model, or the
            files disagree with the card.
    """
    from model_zoo import ZooError

    if model_id is None:
        card = zoo.current("segmentation")
        if card is None:
            raise ZooError("there is no current segmentation model yet; train one first")
    else:
        card = zoo.get(model_id)
    if card.kind != "segmentation":
        raise ZooError(f"model {card.model_id} is a {card.kind} model, not a segmentation model")
    try:
        model = load_model(zoo.path(card.model_id), device)
    except ValueError as exc:
        raise ZooError(str(exc)) from None
    if model_classes_count(model) != len(card.classes):
        raise ZooError(
            f"model {card.model_id} predicts {model_classes_count(model)} classes but its card "
            f"lists {len(card.classes)} ({card.classes}); the checkpoint is inconsistent"
        )
    return model, card


def check_checkpoint(path: Path | str, n_classes: int | None = None) -> None:
    """Load a checkpoint folder's weights and run one forward pass on a dummy tile.

    What ``training promote`` asks before a model becomes current: a checkpoint whose
    weights do not load, or whose output is not ``n_classes`` finite maps, would otherwise
    only fail later, in every page and command that uses the current model. The model is
    rebuilt from ``config.json`` with no encoder weights to fetch, then filled from
    ``model.safetensors`` (strictly: every tensor present, every shape right); nothing is
    downloaded or unpickled.

    Args:
        path: The checkpoint folder (``config.json`` + ``model.safetensors``).
        n_classes: The classes its card lists; the output must have that many channels.

    Raises:
        ValueError: The files are missing or unreadable, the weights do not fit the
            architecture, or the forward pass fails or gives the wrong or non-finite output.
    """
    folder = Path(path)
    try:
        model = _rebuild(folder)
    except Exception as exc:  # safetensors, json, torch and smp each raise their own types
        raise ValueError(
            f"the checkpoint in {folder} cannot be loaded ({type(exc).__name__}: {exc}); "
            "retrain the model or promote another one"
        ) from None
    side = 2 * input_multiple(model)
    try:
        with torch.inference_mode():
            out = model.eval()(to_model_input(np.zeros((side, side, 3), dtype=np.uint8)))
    except Exception as exc:
        raise ValueError(
            f"the checkpoint in {folder} loads but fails on a {side}x{side} tile "
            f"({type(exc).__name__}: {exc})"
        ) from None
    if out.shape != (1, n_classes or out.shape[1], side, side):
        raise ValueError(
            f"the checkpoint in {folder} gives output of shape {tuple(out.shape)} for a "
            f"{side}x{side} tile; its card lists {n_classes} classes"
        )
    if not bool(torch.isfinite(out).all()):
        raise ValueError(f"the checkpoint in {folder} gives non-finite scores (NaN or inf)")


def model_classes_count(model: SegModel) -> int:
    """Number of output classes of an smp model."""
    return int(model.segmentation_head[0].out_channels)


def input_multiple(model: SegModel) -> int:
    """Side lengths the model accepts must be multiples of this (its output stride)."""
    encoder = getattr(model, "encoder", None)
    return int(getattr(encoder, "output_stride", 32))


def to_model_input(images: np.ndarray | Sequence[np.ndarray], device: torch.device | str = "cpu"):
    """Normalised float tensor from uint8 RGB images of one size.

    Args:
        images: One image or a stack/list of images, uint8 RGB.
        device: Where the tensor should live.

    Shape:
        images: (H, W, 3) or (N, H, W, 3); returns (N, 3, H, W) float32.
    """
    batch = np.asarray(images) if not isinstance(images, np.ndarray) else images
    if batch.ndim == 3:
        batch = batch[None]
    if batch.ndim != 4 or batch.shape[-1] != 3 or batch.dtype != np.uint8:
        raise ValueError(
            f"Expected uint8 RGB images of shape (N, H, W, 3), got {batch.dtype} {batch.shape}."
        )
    x = torch.from_numpy(np.ascontiguousarray(batch)).to(device)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    return (x - _MEAN.to(x.device)) / _STD.to(x.device)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so a run can be repeated on the same machine."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def promotion_check(card) -> Callable[[Path], None] | None:
    """The check a model must pass before it becomes current, for ``Zoo.promote(verify=...)``.

    For a segmentation model: load its weights and run one forward pass
    (:func:`check_checkpoint`) with as many output maps as its card lists classes. The Train
    page's Promote button and ``python -m training promote`` both ask this, so neither can
    make an unloadable checkpoint current. Other kinds need no check here (``None``).
    """
    if card.kind != "segmentation":
        return None
    n_classes = len(card.classes)
    return lambda folder: check_checkpoint(folder, n_classes)


def describe_machine(device: str | None = None) -> str:
    """Describe where this process trains, e.g. ``"cpu: x86_64, 2 cores; torch 2.14.1"``.

    Args:
        device: The torch device training used (``"cpu"``, ``"cuda"``, ``"cuda:0"``); when it is a
            CUDA device and CUDA is available, the GPU name is given.
    """
    cpu = f"{platform.machine() or 'unknown cpu'}, {os.cpu_count() or '?'} cores"
    if device and device.startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device).index or 0
        return f"cuda: {torch.cuda.get_device_name(index)}; {cpu}; torch {torch.__version__}"
    return f"cpu: {cpu}; torch {torch.__version__}"
