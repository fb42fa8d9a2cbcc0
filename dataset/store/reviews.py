"""Review: a reviewer approves a tile's latest revision, or sends it back with a comment.

Promises:
- A tile's review state belongs to its latest revision: ``unreviewed`` until a reviewer
  records a verdict on that revision, then ``approved`` or ``changes_requested``. A new
  revision (by anyone, the reviewer's own correction included) is ``unreviewed`` again.
- Verdicts are rows of the append-only ``reviews`` table keyed by tile id and revision;
  nothing is overwritten, so every verdict on every revision stays in the history.
- One verdict per revision. A verdict is recorded under the revisions table's lock and then
  the reviews table's, after checking that the revision is still the tile's latest and has
  no verdict yet: of two reviewers acting on one revision at once, one verdict is recorded
  and the other gets :class:`ReviewConflict` naming the first, never a lost update. A
  verdict on a revision that is no longer the latest is refused the same way.
- The role is checked here, on the server side: ``actor.require("review")`` comes first.
- Four eyes: nobody approves a mask that is wholly their own. The author of a revision may
  approve it only when it corrects someone else's revision (the reviewer's "edit, then
  approve"); a reviewer's own labelling needs another reviewer. Requesting changes on one's
  own revision is allowed (it is a note to oneself, and approves nothing).
- Only labelled tiles are reviewed: a latest revision with a labelled pixel, tile not
  skipped (the tiles a release can hold).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dataset import audit
from dataset.roles import Actor, PermissionDenied
from dataset.store._base import StoreBase, front_first
from dataset.store.records import Revision, RevisionConflict, StoreError, _now

__all__ = [
    "APPROVED",
    "CHANGES_REQUESTED",
    "REVIEW_STATES",
    "UNREVIEWED",
    "Review",
    "ReviewConflict",
    "ReviewStatus",
    "ReviewsPart",
]

UNREVIEWED, APPROVED, CHANGES_REQUESTED = "unreviewed", "approved", "changes_requested"
REVIEW_STATES = (UNREVIEWED, APPROVED, CHANGES_REQUESTED)
_VERDICTS = (APPROVED, CHANGES_REQUESTED)


@dataclass(frozen=True)
class Review:
    """One verdict on one revision of a tile."""

    tile_id: str
    revision: int
    verdict: str
    reviewer: str
    comment: str
    created_at: dt.datetime


@dataclass(frozen=True)
class ReviewStatus:
    """Where a tile stands: its latest revision, that revision's state, and the verdict."""

    tile_id: str
    revision: Revision
    state: str
    review: Review | None


class ReviewConflict(RevisionConflict):
    """A verdict on a revision that was reviewed or replaced since the reviewer looked."""

    def __init__(self, tile_id: str, revision: int, message: str) -> None:
        self.tile_id, self.base, self.latest = tile_id, revision, None
        StoreError.__init__(self, message)


class ReviewsPart(StoreBase):
    """Verdicts on revisions, the review queue, and what was sent back to whom."""

    def _reviews(self) -> dict[tuple[str, int], Review]:
        """Every verdict by (tile id, revision); the first recorded wins (there is one)."""

        def build() -> dict[tuple[str, int], Review]:
            out: dict[tuple[str, int], Review] = {}
            rows = self.tables.read("reviews").to_pylist()
            for r in sorted(rows, key=lambda r: r["created_at"]):
                out.setdefault((r["tile_id"], r["revision"]), Review(**r))
            return out

        return self._memo("reviews", ("reviews",), build)

    def reviews(self, tile_id_: str) -> list[Review]:
        """Every verdict on every revision of a tile, oldest first."""
        return sorted(
            (r for (t, _), r in self._reviews().items() if t == tile_id_),
            key=lambda r: r.created_at,
        )

    def _status(self, rev: Revision, reviews: dict[tuple[str, int], Review]) -> ReviewStatus:
        review = reviews.get((rev.tile_id, rev.revision))
        state = UNREVIEWED if review is None else review.verdict
        return ReviewStatus(rev.tile_id, rev, state, review)

    def _reviewable(self) -> dict[str, Revision]:
        """Latest revisions of the labelled tiles (a labelled pixel, not skipped)."""
        skipped = self.skipped_tile_ids()
        return {
            t: r
            for t, r in self.latest_revisions().items()
            if r.n_labelled_px > 0 and t not in skipped
        }

    def review_state(self, tile_id_: str) -> ReviewStatus:
        """The review state of a tile's latest revision.

        Raises:
            StoreError: unknown tile, or a tile with no saved mask yet.
        """
        self.tile(tile_id_)
        rev = self.latest(tile_id_)
        if rev is None:
            raise StoreError(
                f"Tile {tile_id_} has no saved mask yet, so there is nothing to review; "
                "label it first."
            )
        return self._status(rev, self._reviews())

    def review_statuses(self, tile_ids: Sequence[str] | None = None) -> dict[str, ReviewStatus]:
        """The state of every labelled tile (or of the given tiles that have a revision)."""
        latest = self._reviewable() if tile_ids is None else self.latest_revisions()
        ids = latest if tile_ids is None else [t for t in tile_ids if t in latest]
        return self.statuses_of({t: latest[t] for t in ids})

    def statuses_of(self, revisions: Mapping[str, Revision]) -> dict[str, ReviewStatus]:
        """The state of each given revision (tile id -> revision), e.g. a release's frozen
        snapshot of the latest revisions."""
        reviews = self._reviews()
        return {t: self._status(r, reviews) for t, r in revisions.items()}

    def review_counts(self, tile_ids: Sequence[str] | None = None) -> dict[str, int]:
        """How many labelled tiles (or of ``tile_ids``) are in each state of
        :data:`REVIEW_STATES`."""
        counts = dict.fromkeys(REVIEW_STATES, 0)
        for status in self.review_statuses(tile_ids).values():
            counts[status.state] += 1
        return counts

    def review_queue(self, reviewer: str | None = None) -> list[ReviewStatus]:
        """Unreviewed latest revisions of labelled tiles, the oldest save first.

        Args:
            reviewer: Who will review. Given, the queue leaves out what this reviewer may
                not approve (masks wholly their own) and puts their own corrections of
                someone else's revision first ("edit, then approve"), oldest first.
        """
        reviews = self._reviews()
        queue = [
            s
            for s in (self._status(r, reviews) for r in self._reviewable().values())
            if s.state == UNREVIEWED
        ]
        queue.sort(key=lambda s: (s.revision.created_at, s.tile_id))
        if reviewer is None:
            return queue
        mine = [s for s in queue if s.revision.annotator == reviewer]
        corrections = [s for s in mine if self._corrects_someone_else(s.revision)]
        others = [s for s in queue if s.revision.annotator != reviewer]
        return corrections + others

    def _corrects_someone_else(self, rev: Revision) -> bool:
        """Whether ``rev`` was saved on top of a revision by another person."""
        if not rev.base_revision:
            return False
        base = next((r for r in self.history(rev.tile_id) if r.revision == rev.base_revision), None)
        return base is not None and base.annotator != rev.annotator

    def approve(self, tile_id_: str, revision: int, actor: Actor) -> Review:
        """Approve revision ``revision`` of a tile, which must still be its latest.

        Raises:
            PermissionDenied: the actor's role may not review, or the revision is wholly the
                actor's own work (four eyes).
            ReviewConflict: the revision was reviewed meanwhile, or is no longer the latest.
            StoreError: unknown tile or revision.
        """
        return self._record(tile_id_, revision, actor, APPROVED, "")

    def request_changes(self, tile_id_: str, revision: int, actor: Actor, comment: str) -> Review:
        """Send revision ``revision`` back to its author with ``comment`` (what to change).

        Raises:
            PermissionDenied: the actor's role may not review.
            StoreError: an empty comment, an unknown tile or revision.
            ReviewConflict: as :meth:`approve`.
        """
        return self._record(tile_id_, revision, actor, CHANGES_REQUESTED, comment)

    def _record(
        self, tile_id_: str, revision: int, actor: Actor, verdict: str, comment: str
    ) -> Review:
        actor.require("review")
        assert verdict in _VERDICTS
        comment = (comment or "").strip()
        if verdict == CHANGES_REQUESTED and not comment:
            raise StoreError(
                f"Say what to change on tile {tile_id_}: a request for changes needs a comment "
                "for the annotator."
            )
        self.tile(tile_id_)
        # Revisions first, then reviews (every writer takes them in this order): no save
        # can slip in between the check that the revision is the latest and the verdict.
        with self.tables.lock("revisions"), self.tables.lock("reviews"):
            latest = self.latest(tile_id_)
            if latest is None or not any(r.revision == revision for r in self.history(tile_id_)):
                raise StoreError(
                    f"Tile {tile_id_} has no revision {revision}; "
                    + (
                        "it has no saved mask yet."
                        if latest is None
                        else f"its latest is {latest.revision}."
                    )
                )
            if latest.revision != revision:
                raise ReviewConflict(
                    tile_id_,
                    revision,
                    f"Tile {tile_id_} changed while you reviewed it: {latest.annotator} saved "
                    f"revision {latest.revision} at {latest.created_at:%Y-%m-%d %H:%M:%S} UTC "
                    f"after revision {revision}. Review the new revision instead.",
                )
            done = self._reviews().get((tile_id_, revision))
            if done is not None:
                what = "approved" if done.verdict == APPROVED else "sent back"
                raise ReviewConflict(
                    tile_id_,
                    revision,
                    f"Revision {revision} of tile {tile_id_} was already {what} by "
                    f"{done.reviewer} at {done.created_at:%Y-%m-%d %H:%M:%S} UTC; your "
                    "verdict was not recorded. A revision gets one verdict: a new revision "
                    "is reviewed afresh.",
                )
            if (
                verdict == APPROVED
                and latest.annotator == actor.name
                and not self._corrects_someone_else(latest)
            ):
                raise PermissionDenied(
                    f"{actor.name} saved revision {revision} of tile {tile_id_} and may not "
                    "approve their own labelling: another reviewer must. (You may approve "
                    "your own correction of someone else's mask.)"
                )
            review = Review(tile_id_, revision, verdict, actor.name, comment, _now())
            self.tables.append("reviews", [review.__dict__])
        audit.record(
            self,
            actor=actor.name,
            action="review",
            object_id=tile_id_,
            before=revision,
            after=verdict,
            detail={"comment": comment} if comment else None,
        )
        return review

    def sent_back(self, annotator: str) -> list[ReviewStatus]:
        """Tiles whose latest revision, saved by ``annotator``, has changes requested; the
        oldest request first."""
        sent = [
            s
            for s in self.review_statuses().values()
            if s.state == CHANGES_REQUESTED and s.revision.annotator == annotator
        ]
        return sorted(sent, key=lambda s: (s.review.created_at, s.tile_id))

    def sent_back_first(self, order: Sequence[str], annotator: str) -> list[str]:
        """``order`` with the tiles sent back to ``annotator`` moved to the front (the oldest
        request first); the other tiles keep their order."""
        front = [s.tile_id for s in self.sent_back(annotator)] if annotator else []
        return front_first(order, front)
