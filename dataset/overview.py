"""Each smear at a glance: which split it is in and how far its labelling has come.

Promises: :func:`smear_overview` lists every stored smear, oldest first, with its split (the
one training and releases use, assigned on first sight like everywhere else), its tiles and
its labelled and skipped tiles, from the store as it is now. Nothing here imports Streamlit.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from dataset.store import Store

__all__ = ["SmearSummary", "smear_overview"]


@dataclass(frozen=True)
class SmearSummary:
    """One smear's row on the Dataset page."""

    smear_id: str
    label: str
    patient: str | None
    split: str
    tiles: int
    labelled: int
    skipped: int


def smear_overview(store: Store) -> list[SmearSummary]:
    """Every smear with its split and labelling progress, oldest first."""
    smears = store.smears()
    if not smears:
        return []
    splits = store.splits_of([s.smear_id for s in smears])
    smear_of = {t.tile_id: t.smear_id for t in store.tiles()}
    skipped = store.skipped_tile_ids()
    labelled = Counter(smear_of[t] for t in store.labelled_tile_ids() if t in smear_of)
    skips = Counter(smear_of[t] for t in skipped if t in smear_of)
    return [
        SmearSummary(
            smear_id=s.smear_id,
            label=s.label,
            patient=s.patient,
            split=splits[s.smear_id],
            tiles=s.n_tiles,
            labelled=labelled[s.smear_id],
            skipped=skips[s.smear_id],
        )
        for s in smears
    ]
