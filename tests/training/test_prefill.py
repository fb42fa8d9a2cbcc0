"""Classical pre-fill on a synthetic Giemsa-like smear with known truth."""

from __future__ import annotations

import numpy as np
import pytest

from dataset.schema import UNLABELLED
from training.prefill import match_classes, prefill_mask

CLASSES = ["background", "erythrocyte", "leukocyte", "platelet"]
PLASMA, RBC, PALLOR = (226, 228, 220), (200, 135, 140), (214, 196, 196)
NUCLEUS, CYTOPLASM = (115, 85, 200), (212, 192, 216)
RBC_CENTRES = [(25, 25), (25, 80), (90, 30), (140, 40), (150, 100), (30, 140)]
PLATELETS = [(70, 150), (110, 70), (165, 160)]


def _disc(h: int, w: int, cy: int, cx: int, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


@pytest.fixture(scope="module")
def smear():
    """Image plus truth: 0-3 as CLASSES, 4 = cytoplasm (no class, must stay unsure)."""
    h = w = 180
    image = np.empty((h, w, 3), np.float64)
    image[:] = PLASMA
    truth = np.zeros((h, w), np.uint8)
    for cy, cx in RBC_CENTRES:
        image[_disc(h, w, cy, cx, 14)] = RBC
        image[_disc(h, w, cy, cx, 5)] = PALLOR
        truth[_disc(h, w, cy, cx, 14)] = 1
    image[_disc(h, w, 100, 120, 24)] = CYTOPLASM
    truth[_disc(h, w, 100, 120, 24)] = 4
    image[_disc(h, w, 100, 120, 12)] = NUCLEUS
    truth[_disc(h, w, 100, 120, 12)] = 2
    for cy, cx in PLATELETS:
        image[_disc(h, w, cy, cx, 3)] = NUCLEUS
        truth[_disc(h, w, cy, cx, 3)] = 3
    noise = np.random.default_rng(0).normal(0, 3, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8), truth


def test_prefill_labels_what_it_is_sure_of(smear):
    image, truth = smear
    mask = prefill_mask(image, CLASSES)
    labelled = mask != UNLABELLED
    wrong = labelled & (mask != truth)
    assert wrong.sum() <= 0.01 * labelled.sum()
    assert labelled.mean() > 0.6
    core = {
        "background": truth == 0,
        "erythrocyte": np.logical_or.reduce([_disc(180, 180, y, x, 11) for y, x in RBC_CENTRES]),
        "leukocyte": _disc(180, 180, 100, 120, 10),
    }
    for i, name in enumerate(CLASSES[:3]):
        region = core[name] & (truth == i if name == "background" else True)
        assert (mask[region] == i).mean() > 0.85, name
    for cy, cx in PLATELETS:
        assert mask[cy, cx] == 3
    assert (mask[truth == 4] != 1).all()  # white-cell cytoplasm is never called a red cell


def test_pale_centres_of_red_cells_are_not_plasma(smear):
    image, _ = smear
    mask = prefill_mask(image, CLASSES)
    for cy, cx in RBC_CENTRES:
        centre = mask[_disc(180, 180, cy, cx, 4)]
        assert (centre != 0).all()


def test_unknown_classes_are_never_filled(smear):
    image, _ = smear
    assert (prefill_mask(image, ["artefact", "parasite"]) == UNLABELLED).all()


def test_classes_are_mapped_by_name_and_order(smear):
    image, truth = smear
    mask = prefill_mask(image, ["RBC", "plasma"])
    assert set(np.unique(mask)) == {0, 1, UNLABELLED}
    assert (mask[truth == 2] == UNLABELLED).all() and (mask[truth == 3] == UNLABELLED).all()
    zheng = prefill_mask(image, ["background", "cytoplasm", "nucleus"])
    assert (zheng[_disc(180, 180, 100, 120, 10)] == 2).mean() > 0.85
    assert not (zheng == 1).any()
    assert match_classes(["Red blood cell", "WBC", "thrombocyte"]) == {
        "erythrocyte": 0,
        "leukocyte": 1,
        "platelet": 2,
    }


def test_plasma_only_tile_gets_no_cells():
    image = np.clip(np.random.default_rng(1).normal(PLASMA, 3, (64, 64, 3)), 0, 255).astype(
        np.uint8
    )
    mask = prefill_mask(image, CLASSES)
    assert not np.isin(mask, [1, 2, 3]).any()


def test_rejects_non_rgb_input():
    with pytest.raises(ValueError, match="uint8 RGB"):
        prefill_mask(np.zeros((8, 8), np.uint8), CLASSES)
