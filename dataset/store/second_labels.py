"""Double labelling: an independent second label on a share of tiles, and the pick between the two.

Where the second mask lives: in its own append-only table, ``second_masks``, beside the
``revisions`` table that holds a tile's ordinary revisions (its *first* label). The second
label has revisions of its own, numbered per tile from 1, and nothing that trains, releases
or reviews reads that table. So a second annotator saves on a blank base without the
:class:`~dataset.store.records.RevisionConflict` an ordinary second save on a blank base
raises, and the first mask is never the base of the second.

Promises:
- The workspace setting ``double_label_share`` (default 0.05) names the share of tiles to be
  labelled twice. Which tiles is decided by a hash of the tile id alone
  (:func:`in_double_share`): the same on every machine and every run, and a tile in the share
  stays in when the share grows.
- :meth:`SecondLabelsPart.label_lane` says which label a person works on: the second label
  (``"second"``) for a double-labelled tile that someone else labelled first, while the person
  never saved one of its ordinary revisions, nobody else gave the second label, and no
  reviewer picked; else the ordinary revisions (``"first"``).
- The second annotator never sees the first mask: :meth:`SecondLabelsPart.label_base`, what
  the Label page and ``annotate`` start from, hands them their own second mask or a blank
  tile. The Label page offers no pre-fill for a second label: a model trained on the first
  mask would carry it.
- :meth:`SecondLabelsPart.awaiting_second` lists the tiles waiting for someone's second label,
  so the Label page brings them forward (after the tiles a reviewer sent back).
- Refused with a :class:`~dataset.store.records.StoreError` that says what to do: a second
  label on a tile outside the share or with no first label yet, by someone who saved one of
  the tile's ordinary revisions (one person is never both annotators of a tile), a third
  independent label, and a second label after a reviewer picked.
- Until a reviewer picks, training and releases use the first label (the ordinary revisions;
  they read nothing else). :meth:`SecondLabelsPart.pick_mask` records the pick once per tile,
  by a reviewer who is neither annotator; picking the second saves its mask as a new ordinary
  revision in the second annotator's name, so training and releases follow it with no change
  of theirs. Every second-label save is audited as ``save`` (detail ``lane: second``), every
  pick as ``pick_mask``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc

from dataset import audit
from dataset.png import decode_mask, encode_mask
from dataset.roles import Actor, PermissionDenied
from dataset.schema import UNLABELLED
from dataset.store._base import StoreBase, front_first

# The second labels' table has the revisions' schema (dataset._delta.MASK_REVISIONS).
from dataset.store.records import _REV_COLUMNS, Revision, RevisionConflict, StoreError, _now
from dataset.store.reviews import ReviewConflict

__all__ = [
    "FIRST",
    "LANES",
    "SECOND",
    "LabelBase",
    "MaskPick",
    "SecondLabelsPart",
    "in_double_share",
    "share_point",
]

FIRST, SECOND = "first", "second"
LANES = (FIRST, SECOND)
_SALT = b"smearlab-double-label:"


def share_point(tile_id: str) -> float:
    """Where a tile falls in [0, 1): the first 8 bytes of a SHA-256 of its id, scaled."""
    digest = hashlib.sha256(_SALT + tile_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def in_double_share(tile_id: str, share: float) -> bool:
    """Whether a tile is among the double-labelled ``share`` of tiles (0..1)."""
    return share_point(tile_id) < share


@dataclass(frozen=True)
class LabelBase:
    """What a person starts from on a tile: which label, its revision, and its mask.

    Attributes:
        lane: ``"first"`` (the tile's ordinary revisions) or ``"second"``.
        revision: The revision of that label to edit on (None: a blank tile).
        mask: Its mask, all unlabelled when ``revision`` is None.

    Shape:
        mask: (h, w) uint8, 255 = unlabelled.
    """

    lane: str
    revision: Revision | None
    mask: np.ndarray


@dataclass(frozen=True)
class MaskPick:
    """A reviewer's choice of the label that goes into releases; ``revision`` is the ordinary
    revision that holds it."""

    tile_id: str
    lane: str
    reviewer: str
    revision: int
    created_at: dt.datetime


class SecondLabelsPart(StoreBase):
    """The double-labelled share, second labels, and the reviewer's pick."""

    # ------------------------------------------------------------------------ the share
    def double_label_share(self) -> float:
        """The workspace's ``double_label_share`` setting (0..1)."""
        from dataset.settings import get_settings

        return get_settings(workspace=self.root).double_label_share

    def is_double_labelled(self, tile_id_: str) -> bool:
        """Whether the tile is in the double-labelled share."""
        return in_double_share(tile_id_, self.double_label_share())

    # ------------------------------------------------------------------------ reads
    def _second_latest(self) -> dict[str, Revision]:
        def build() -> dict[str, Revision]:
            out: dict[str, Revision] = {}
            for row in self.tables.read("second_masks", _REV_COLUMNS).to_pylist():
                cur = out.get(row["tile_id"])
                if cur is None or row["revision"] > cur.revision:
                    out[row["tile_id"]] = Revision(**row)
            return out

        return self._memo("second_masks", ("second_masks",), build)

    def second_labels(self) -> dict[str, Revision]:
        """The latest second-label revision of every tile that has one."""
        return dict(self._second_latest())

    def second_label(self, tile_id_: str) -> Revision | None:
        """The tile's latest second-label revision, None without one."""
        return self._second_latest().get(tile_id_)

    def second_mask(self, tile_id_: str, revision: int | None = None) -> np.ndarray:
        """The second label's mask at ``revision`` (default its latest).

        Shape:
            (h, w) uint8, 255 = unlabelled.

        Raises:
            StoreError: the tile has no such second-label revision.
        """
        if revision is None:
            rev = self.second_label(tile_id_)
            if rev is None:
                raise StoreError(f"Tile {tile_id_} has no second label.")
            revision = rev.revision
        flt = (pc.field("tile_id") == tile_id_) & (pc.field("revision") == revision)
        t = self.tables.read("second_masks", ["mask_png"], flt)
        if t.num_rows == 0:
            raise StoreError(f"Tile {tile_id_} has no second-label revision {revision}.")
        return decode_mask(t.column("mask_png")[0].as_py())

    def first_label(self, tile_id_: str) -> Revision | None:
        """The first annotator's latest ordinary revision of the tile (the first annotator is
        whoever saved revision 1), None when the tile has none."""
        history = self.history(tile_id_)
        if not history:
            return None
        first = history[0].annotator
        return [r for r in history if r.annotator == first][-1]

    def mask_picks(self) -> dict[str, MaskPick]:
        """Every reviewer's pick by tile id (the first recorded; there is one)."""

        def build() -> dict[str, MaskPick]:
            out: dict[str, MaskPick] = {}
            rows = self.tables.read("mask_picks").to_pylist()
            for row in sorted(rows, key=lambda r: r["created_at"]):
                out.setdefault(row["tile_id"], MaskPick(**row))
            return out

        return dict(self._memo("mask_picks", ("mask_picks",), build))

    def mask_pick(self, tile_id_: str) -> MaskPick | None:
        return self.mask_picks().get(tile_id_)

    def awaiting_pick(self, reviewer: str | None = None) -> list[str]:
        """Tiles with both labels and no pick yet, the oldest second label first; given a
        reviewer, less the tiles they labelled (they may not pick there)."""
        picks = self.mask_picks()
        out = []
        for tile_id, second in sorted(
            self.second_labels().items(), key=lambda kv: kv[1].created_at
        ):
            if tile_id in picks:
                continue
            first = self.first_label(tile_id)
            if first is None or reviewer in (first.annotator, second.annotator):
                continue
            out.append(tile_id)
        return out

    def awaiting_second(self, annotator: str) -> list[str]:
        """Tiles waiting for a second label that ``annotator`` may give: in the share, labelled
        first by others only, with no second label and no pick yet; the earliest first label
        first. (:meth:`label_lane` says ``"second"`` for each of them.)"""
        share = self.double_label_share()
        if not annotator or share <= 0:
            return []
        seconds, picks = self._second_latest(), self.mask_picks()
        open_ = [
            t
            for t in self.latest_revisions()
            if t not in seconds and t not in picks and in_double_share(t, share)
        ]
        labellers = self._labellers()  # read after the latest revisions: it holds their tiles
        waiting = [t for t in open_ if annotator not in labellers[t][1]]
        return sorted(waiting, key=lambda t: (labellers[t][0], t))

    def _labellers(self) -> dict[str, tuple[dt.datetime, frozenset[str]]]:
        """Per tile with ordinary revisions: when its first was saved, and everyone who saved
        one. Read once per version of the revisions table, not on every page run."""

        def build() -> dict[str, tuple[dt.datetime, frozenset[str]]]:
            first_at: dict[str, dt.datetime] = {}
            who: dict[str, set[str]] = {}
            for row in self.tables.read(
                "revisions", ["tile_id", "annotator", "created_at"]
            ).to_pylist():
                tile_id, at = row["tile_id"], row["created_at"]
                first_at[tile_id] = min(first_at.get(tile_id, at), at)
                who.setdefault(tile_id, set()).add(row["annotator"])
            return {t: (first_at[t], frozenset(who[t])) for t in first_at}

        return self._memo("labellers", ("revisions",), build)

    def second_labels_first(self, order: list[str], annotator: str) -> list[str]:
        """``order`` with the tiles of :meth:`awaiting_second` for ``annotator`` moved to the
        front (the earliest first label first); the other tiles keep their order."""
        return front_first(order, self.awaiting_second(annotator))

    # ------------------------------------------------------------------------ who labels what
    def label_lane(self, tile_id_: str, annotator: str) -> str:
        """Which label ``annotator`` works on for this tile: ``"second"`` or ``"first"``
        (see the module's promises)."""
        if not annotator or not self.is_double_labelled(tile_id_):
            return FIRST
        if self.mask_pick(tile_id_) is not None:
            return FIRST
        second = self.second_label(tile_id_)
        if second is not None:
            return SECOND if second.annotator == annotator else FIRST
        if self.latest(tile_id_) is None:
            return FIRST
        if annotator in self._labellers()[tile_id_][1]:
            return FIRST
        return SECOND

    def label_base(self, tile_id_: str, annotator: str) -> LabelBase:
        """What ``annotator`` starts from on this tile: on a second label their own second
        mask or a blank tile (never the first mask); else the latest ordinary revision."""
        tile = self.tile(tile_id_)
        lane = self.label_lane(tile_id_, annotator)
        rev = self.second_label(tile_id_) if lane == SECOND else self.latest(tile_id_)
        if rev is None:
            mask = np.full((tile.h, tile.w), UNLABELLED, dtype=np.uint8)
        elif lane == SECOND:
            mask = self.second_mask(tile_id_, rev.revision)
        else:
            mask = self.mask(tile_id_, rev.revision)
        return LabelBase(lane, rev, mask)

    # ------------------------------------------------------------------------ saves
    def save_label(
        self,
        tile_id_: str,
        mask: np.ndarray,
        *,
        annotator: str,
        lane: str | None = None,
        source: str = "manual",
        base_revision: int | None = None,
        seconds: float | None = None,
        model_id: str | None = None,
        force: bool = False,
        on_latest: bool = False,
    ) -> tuple[str, Revision]:
        """Save what a person painted, on the label they work on (the Label page, ``annotate``).

        Args:
            lane: ``"first"`` or ``"second"``; None: :meth:`label_lane` decides when the save
                takes place (a person who opened a blank tile that someone else saved
                meanwhile then gives its second label instead of meeting a conflict).
            base_revision: The revision of that label the person started from.

        Returns:
            The lane saved on, and the new revision.

        Raises:
            StoreError: as :meth:`save_second_mask` and :meth:`save_mask`; a blank-base save
                on a double-labelled tile that already has both labels is refused as a third
                independent label.
            RevisionConflict: someone saved the same label after ``base_revision``.
        """
        if lane is not None and lane not in LANES:
            raise StoreError(f"Unknown label {lane!r}; use one of {', '.join(LANES)}.")
        if lane is None:
            lane = self.label_lane(tile_id_, annotator)
            blank = not base_revision and not on_latest
            if lane == FIRST and blank and self.latest(tile_id_) is not None:
                second = self.second_label(tile_id_)
                if self.is_double_labelled(tile_id_) and second is not None:
                    first = self.first_label(tile_id_)
                    raise StoreError(self._third_label(tile_id_, first, second))
        if lane == SECOND:
            rev = self.save_second_mask(
                tile_id_,
                mask,
                annotator=annotator,
                source=source,
                model_id=model_id,
                base_revision=base_revision,
                seconds=seconds,
                force=force,
                on_latest=on_latest,
            )
            return SECOND, rev
        rev = self.save_mask(
            tile_id_,
            mask,
            annotator=annotator,
            source=source,
            base_revision=base_revision,
            seconds=seconds,
            model_id=model_id,
            force=force,
            on_latest=on_latest,
        )
        return FIRST, rev

    @staticmethod
    def _third_label(tile_id_: str, first: Revision | None, second: Revision) -> str:
        by = f"{first.annotator} and by {second.annotator}" if first else second.annotator
        return (
            f"Tile {tile_id_} already has its two independent labels, by {by}; a third "
            "independent label is not taken. Open the tile again to correct its mask instead."
        )

    def _check_second(self, tile_id_: str, annotator: str) -> None:
        """Refuse a second label that the module's promises rule out."""
        if not self.is_double_labelled(tile_id_):
            share = self.double_label_share()
            raise StoreError(
                f"Tile {tile_id_} is not among the double-labelled tiles (double_label_share "
                f"{share:g}); save it as its ordinary label."
            )
        pick = self.mask_pick(tile_id_)
        if pick is not None:
            raise StoreError(
                f"{pick.reviewer} already picked the {pick.lane} label of tile {tile_id_} for "
                "releases, so its second label is closed; edit the tile's mask as usual."
            )
        history = self.history(tile_id_)
        if not history:
            raise StoreError(
                f"Tile {tile_id_} has no first label yet: save yours as its ordinary label; "
                "the second label is for a second annotator after the first."
            )
        mine = [r.revision for r in history if r.annotator == annotator]
        if mine:
            raise StoreError(
                f"{annotator} saved revision {mine[0]} of tile {tile_id_}, so cannot also "
                "give its independent second label: one person is never both annotators of "
                "a tile. Another annotator gives the second label."
            )
        second = self.second_label(tile_id_)
        if second is not None and second.annotator != annotator:
            raise StoreError(self._third_label(tile_id_, self.first_label(tile_id_), second))

    def save_second_mask(
        self,
        tile_id_: str,
        mask: np.ndarray,
        *,
        annotator: str,
        source: str = "manual",
        model_id: str | None = None,
        base_revision: int | None = None,
        seconds: float | None = None,
        force: bool = False,
        on_latest: bool = False,
    ) -> Revision:
        """Save a revision of the tile's independent second label; returns once durable.

        Args:
            base_revision: The second-label revision the annotator started from (None or 0:
                blank).
            on_latest: Save on top of the latest second-label revision, whatever it is.

        Raises:
            StoreError: no annotator; a mask that does not fit; or a second label the module's
                promises refuse (outside the share, no first label, the first annotator, a
                third label, after a pick).
            RevisionConflict: the annotator saved this second label after ``base_revision``
                (another tab or device).
        """
        if not str(annotator or "").strip():
            raise StoreError(
                f"A mask for {tile_id_} needs the name of whoever drew it; give an annotator."
            )
        mask, class_px = self._checked_mask(tile_id_, mask)
        png = encode_mask(mask)
        with self.tables.lock("second_masks"):
            self._check_second(tile_id_, annotator)
            latest = self.second_label(tile_id_)
            if on_latest:
                base_revision = latest.revision if latest else None
            if not force and latest is not None and (base_revision or 0) != latest.revision:
                raise RevisionConflict(tile_id_, base_revision, latest)
            rev = Revision(
                tile_id=tile_id_,
                revision=(latest.revision if latest else 0) + 1,
                annotator=annotator,
                created_at=_now(),
                source=source,
                base_revision=base_revision or None,
                seconds=seconds,
                model_id=model_id,
                n_labelled_px=sum(class_px),
            )
            self.tables.append(
                "second_masks", [{**rev.__dict__, "mask_png": png, "class_px": class_px}]
            )
        audit.record(
            self,
            actor=annotator,
            action="save",
            object_id=tile_id_,
            before=latest.revision if latest else None,
            after=rev.revision,
            detail={"lane": SECOND, "source": source},
        )
        return rev

    # ------------------------------------------------------------------------ the pick
    def pick_mask(self, tile_id_: str, lane: str, actor: Actor) -> MaskPick:
        """A reviewer picks which of the tile's two labels goes into releases and training.

        Raises:
            PermissionDenied: the actor may not review, or is one of the two annotators.
            ReviewConflict: a pick was recorded for the tile already (one pick per tile).
            StoreError: an unknown lane, or a tile without both labels.
        """
        actor.require("review")
        if lane not in LANES:
            raise StoreError(f"Pick {' or '.join(LANES)}, not {lane!r}.")
        self.tile(tile_id_)
        with self.tables.lock("mask_picks"):
            done = self.mask_pick(tile_id_)
            if done is not None:
                raise ReviewConflict(
                    tile_id_,
                    done.revision,
                    f"{done.reviewer} already picked the {done.lane} label of tile {tile_id_} "
                    f"at {done.created_at:%Y-%m-%d %H:%M:%S} UTC; a tile's pick is made once. "
                    "Correct its mask on the Label page if it needs changes.",
                )
            first, second = self.first_label(tile_id_), self.second_label(tile_id_)
            if first is None or second is None:
                raise StoreError(
                    f"Tile {tile_id_} has no second label yet, so there is nothing to pick; "
                    "the first label is used."
                )
            if actor.name in (first.annotator, second.annotator):
                raise PermissionDenied(
                    f"{actor.name} labelled tile {tile_id_} and may not pick between its two "
                    "labels: another reviewer must."
                )
            if lane == SECOND:
                rev = self.save_mask(
                    tile_id_,
                    self.second_mask(tile_id_, second.revision),
                    annotator=second.annotator,
                    source=second.source,
                    model_id=second.model_id,
                    on_latest=True,
                    actor=actor.name,
                )
            else:
                rev = self.latest(tile_id_)
            pick = MaskPick(tile_id_, lane, actor.name, rev.revision, _now())
            self.tables.append("mask_picks", [pick.__dict__])
        audit.record(
            self,
            actor=actor.name,
            action="pick_mask",
            object_id=tile_id_,
            after=lane,
            detail={
                "revision": rev.revision,
                "first": first.annotator,
                "second": second.annotator,
            },
        )
        return pick
