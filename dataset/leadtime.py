"""Lead time per tile: how long a person took to label a tile, by how the tile was started.

Promises:
- Each tile counts once, by its first labelling: its first revision that is not an import
  (imports are other people's masks, timed by no one here). Later corrections of a
  labelled tile never count as a first labelling.
- The first labelling is grouped as hand-painted (a manual save on a blank tile), a corrected
  model pre-fill, or a corrected colour-rule pre-fill; a first labelling without recorded
  seconds (e.g. ``python -m dataset annotate`` without ``--seconds``) or a manual correction
  of an imported mask is counted beside the groups, never in them.
- A ratio of medians is given only when both groups have at least :data:`MIN_TILES` tiles;
  otherwise the report says there are too few to compare. No figure is ever made up.
- Only the revision metadata is read, never the mask PNGs.

The comparison is observational: tiles are not randomised between conditions. Annotators
choose when to switch the pre-fill on, and practice, tile difficulty or the model's quality
at the time all differ between the groups, so a ratio is a description, not a controlled
effect. A lab wanting a fair comparison should alternate the pre-fill toggle between tiles
(or sessions) on a planned schedule; the report carries this caveat as its ``note``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from dataset.store import RULES_MODEL_ID

if TYPE_CHECKING:
    from dataset.store import Store

HAND = "hand-painted"
MODEL = "corrected model pre-fill"
RULES = "corrected colour-rule pre-fill"
GROUPS = (HAND, MODEL, RULES)
Group = Literal["hand-painted", "corrected model pre-fill", "corrected colour-rule pre-fill"]

UNRECORDED_MODEL = "unrecorded"
MIN_TILES = 5

NOTE = (
    "Observational: tiles were not assigned at random to a pre-filled or a blank start "
    "(annotators chose, and practice, tile difficulty and the model of the day differ between "
    "the groups), so these times describe what happened, not a controlled effect. For a fair "
    "comparison, alternate the pre-fill toggle on the Label page between tiles or sessions on a "
    "fixed schedule."
)

_COLUMNS = [
    "tile_id",
    "revision",
    "source",
    "base_revision",
    "seconds",
    "model_id",
    "n_labelled_px",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class FirstLabelling(_Frozen):
    """The first time a person labelled one tile."""

    tile_id: str
    revision: int
    group: Group
    model_id: str | None
    seconds: float
    n_labelled_px: int


class TimeSummary(_Frozen):
    """Labelling time of a set of tiles (a group, or the tiles one model pre-filled).

    The seconds fields are None when ``tiles`` is 0.
    """

    name: str
    tiles: int
    median_seconds: float | None
    q1_seconds: float | None
    q3_seconds: float | None
    iqr_seconds: float | None
    mean_labelled_px: float | None


class Comparison(_Frozen):
    """A pre-fill group against hand-painting: the ratio of medians, or why there is none.

    Attributes:
        ratio: pre-fill median / hand-painted median (below 1: the pre-fill was faster);
            None when either group has fewer than :data:`MIN_TILES` tiles.
        sentence: The comparison, or the reason there is none, in words.
    """

    prefill_group: Group
    prefill_tiles: int
    hand_tiles: int
    ratio: float | None
    sentence: str


class LeadTimeReport(_Frozen):
    """Labelling time per tile by how the tile was started (see the module docstring).

    Attributes:
        groups: One summary per group, in :data:`GROUPS` order, empty groups included.
        models: One summary per model id of the model pre-fills, most tiles first.
        comparisons: The model and the colour-rule pre-fill each against hand-painting.
        untimed: Tiles whose first labelling has no recorded seconds.
        corrected_imports: Tiles first labelled by a manual correction of an imported mask.
        note: The caveat that the comparison is observational.
        first_labellings: Every counted tile (left out of JSON dumps: it grows with the store).
    """

    groups: tuple[TimeSummary, ...]
    models: tuple[TimeSummary, ...]
    comparisons: tuple[Comparison, ...]
    untimed: int
    corrected_imports: int
    note: str = NOTE
    first_labellings: tuple[FirstLabelling, ...] = Field(default=(), exclude=True, repr=False)

    def group(self, name: str) -> TimeSummary:
        """The summary of group ``name`` (one of :data:`GROUPS`)."""
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(f"No group {name!r}; use one of {', '.join(GROUPS)}.")


def lead_times(store: Store) -> LeadTimeReport:
    """Compare labelling time per tile by how the tile was started.

    Args:
        store: The workspace; only the revision metadata columns are read.

    Returns:
        The per-group and per-model summaries, the comparisons and the observational caveat.
    """
    rows = store.tables.read("revisions", columns=_COLUMNS).to_pylist()
    return report_from_revisions(rows)


def report_from_revisions(rows: Iterable[dict]) -> LeadTimeReport:
    """The report from revision rows (dicts with the ``revisions`` table's metadata columns)."""
    first: dict[str, dict] = {}
    for row in rows:
        if row["source"] == "import":
            continue
        seen = first.get(row["tile_id"])
        if seen is None or row["revision"] < seen["revision"]:
            first[row["tile_id"]] = row
    counted: list[FirstLabelling] = []
    untimed = corrected_imports = 0
    for row in sorted(first.values(), key=lambda r: r["tile_id"]):
        group = _group_of(row)
        if group is None:
            corrected_imports += 1
        elif row["seconds"] is None:
            untimed += 1
        else:
            counted.append(
                FirstLabelling(
                    tile_id=row["tile_id"],
                    revision=row["revision"],
                    group=group,
                    model_id=row["model_id"] or (UNRECORDED_MODEL if group == MODEL else None),
                    seconds=float(row["seconds"]),
                    n_labelled_px=int(row["n_labelled_px"]),
                )
            )
    groups = tuple(_summary(g, [f for f in counted if f.group == g]) for g in GROUPS)
    by_model: dict[str, list[FirstLabelling]] = {}
    for f in counted:
        if f.group == MODEL:
            by_model.setdefault(f.model_id or UNRECORDED_MODEL, []).append(f)
    models = tuple(
        sorted(
            (_summary(name, fs) for name, fs in by_model.items()),
            key=lambda s: (-s.tiles, s.name),
        )
    )
    hand = groups[0]
    return LeadTimeReport(
        groups=groups,
        models=models,
        comparisons=tuple(_compare(g, hand) for g in groups[1:]),
        untimed=untimed,
        corrected_imports=corrected_imports,
        first_labellings=tuple(counted),
    )


def _group_of(row: dict) -> str | None:
    if row["source"] == "prefill":
        return RULES if row["model_id"] == RULES_MODEL_ID else MODEL
    # A manual first labelling on top of an import corrected someone else's mask: neither a
    # blank start nor a pre-fill.
    return HAND if not row["base_revision"] else None


def _summary(name: str, tiles: Sequence[FirstLabelling]) -> TimeSummary:
    if not tiles:
        return TimeSummary(
            name=name,
            tiles=0,
            median_seconds=None,
            q1_seconds=None,
            q3_seconds=None,
            iqr_seconds=None,
            mean_labelled_px=None,
        )
    q1, median, q3 = np.percentile([t.seconds for t in tiles], [25, 50, 75])
    return TimeSummary(
        name=name,
        tiles=len(tiles),
        median_seconds=float(median),
        q1_seconds=float(q1),
        q3_seconds=float(q3),
        iqr_seconds=float(q3 - q1),
        mean_labelled_px=float(np.mean([t.n_labelled_px for t in tiles])),
    )


def _compare(prefill: TimeSummary, hand: TimeSummary) -> Comparison:
    what = prefill.name.removeprefix("corrected ")
    few = prefill.tiles < MIN_TILES or hand.tiles < MIN_TILES
    ratio = None
    if few:
        sentence = (
            f"Too few tiles to compare a {what} with hand-painting: {prefill.tiles} "
            f"{_tiles(prefill.tiles)} started from a {what} and {hand.tiles} hand-painted; "
            f"at least {MIN_TILES} of each are needed."
        )
    elif not hand.median_seconds:
        sentence = (
            f"Cannot compare a {what} with hand-painting: the hand-painted tiles' median time "
            "is 0 s; check that the Label page records seconds."
        )
    else:
        ratio = float(prefill.median_seconds / hand.median_seconds)
        sentence = (
            f"Tiles started from a {what} took {ratio:.2f}× the median time of hand-painted "
            f"tiles ({prefill.median_seconds:.0f} s vs {hand.median_seconds:.0f} s; "
            f"{prefill.tiles} and {hand.tiles} tiles)."
        )
    return Comparison(
        prefill_group=prefill.name,
        prefill_tiles=prefill.tiles,
        hand_tiles=hand.tiles,
        ratio=ratio,
        sentence=sentence,
    )


def _tiles(n: int) -> str:
    return "tile" if n == 1 else "tiles"
