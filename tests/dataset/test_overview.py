"""Each smear's split and labelling progress, as the Dataset page lists them."""

from __future__ import annotations

import numpy as np

from dataset.images import encode_png_lossless, smear_id_for
from dataset.overview import smear_overview
from dataset.store import NewSmear, Store
from tests._segfixtures import disc_smear, patient_in


def test_overview_lists_split_tiles_labelled_and_skipped(tmp_path) -> None:
    store = Store.open(tmp_path / "ws")
    store.init(["background", "leukocyte"], tile_size=64)
    assert smear_overview(store) == []
    ids = []
    for seed, split in ((0, "train"), (1, "validation")):
        img, _ = disc_smear(seed)
        sid = smear_id_for(img)
        store.add_smear(
            NewSmear(
                sid, encode_png_lossless(img), 128, 128, label=f"s{seed}", patient=patient_in(split)
            )
        )
        ids.append(sid)
    first = store.tiles(ids[0])
    store.save_mask(first[0].tile_id, np.zeros((64, 64), np.uint8), annotator="t")
    store.save_mask(first[1].tile_id, np.ones((64, 64), np.uint8), annotator="t")
    store.skip(first[2].tile_id, annotator="tester")
    rows = smear_overview(store)
    assert [(r.label, r.split, r.tiles, r.labelled, r.skipped) for r in rows] == [
        ("s0", "train", 4, 2, 1),
        ("s1", "validation", 4, 0, 0),
    ]
    assert rows[0].patient == patient_in("train")
