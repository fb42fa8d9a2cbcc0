"""``python -m dataset review ...``: the Review page's actions by command.

Usage::

    python -m dataset review queue [--reviewer NAME]
    python -m dataset review approve TILE_ID --reviewer NAME [--revision N]
    python -m dataset review request-changes TILE_ID --comment TEXT --reviewer NAME [--revision N]
    python -m dataset review state TILE_ID
    python -m dataset review sent-back ANNOTATOR
    python -m dataset review awaiting-second ANNOTATOR
    python -m dataset review pick-mask TILE_ID first|second --reviewer NAME
    python -m dataset review double-labelled

``--revision`` names the revision you looked at: a verdict on it is refused (exit 3) when the
tile was saved again since; without it the verdict is on the tile's latest revision. Exit
status as every SmearLab command: 1 refused (an annotator may not review, a reviewer may not
approve their own labelling, a request without a comment), 3 a conflict (someone reviewed or
saved the tile first). ``pick-mask`` chooses which of a double-labelled tile's two
independent labels goes into releases and training (the first until then); a tile's pick is
made once, by a reviewer who is neither annotator. ``awaiting-second`` lists the tiles waiting
for an annotator's independent second label (the Label page brings them forward).
``double-labelled`` lists the tiles that
have both labels and whether they were picked. This module only parses, calls the store and
formats.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from dataset.cliutil import EXIT_CONFLICT, EXIT_OK, EXIT_REFUSED
from dataset.roles import Actor, PermissionDenied
from dataset.store import Review, ReviewConflict, ReviewStatus, Store

__all__ = ["add_review_command", "reviewer_actor"]


def reviewer_actor(store: Store, name: str) -> Actor:
    """The account acting as reviewer on the command line: an existing, enabled account (its
    role is checked by the verdict itself, as on the page).

    Raises:
        PermissionDenied: no such account, or a disabled one.
    """
    from dataset.accounts import AccountError, actor_for

    try:
        return actor_for(store, name)
    except AccountError as exc:
        raise PermissionDenied(f"--reviewer {name}: {exc}") from None


def _status_doc(s: ReviewStatus) -> dict:
    r = s.review
    return {
        "tile_id": s.tile_id,
        "revision": s.revision.revision,
        "annotator": s.revision.annotator,
        "saved_at": s.revision.created_at.isoformat(),
        "state": s.state,
        "reviewer": r.reviewer if r else None,
        "comment": r.comment if r else None,
        "reviewed_at": r.created_at.isoformat() if r else None,
    }


def _status_line(s: ReviewStatus) -> str:
    line = (
        f"{s.tile_id}  revision {s.revision.revision} by {s.revision.annotator} "
        f"({s.revision.created_at:%Y-%m-%d %H:%M} UTC): {s.state.replace('_', ' ')}"
    )
    if s.review is not None:
        line += f" by {s.review.reviewer}"
        if s.review.comment:
            line += f': "{s.review.comment}"'
    return line


def _queue(args: argparse.Namespace, store: Store) -> tuple[object, str]:
    queue = store.review_queue(args.reviewer)
    counts = store.review_counts()
    doc = {"counts": counts, "queue": [_status_doc(s) for s in queue]}
    head = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items())
    lines = [f"Labelled tiles: {head}.", f"{len(queue)} to review, oldest save first:"]
    return doc, "\n".join(lines + [_status_line(s) for s in queue])


def _verdict(args: argparse.Namespace, store: Store) -> tuple[object, str]:
    actor = reviewer_actor(store, args.reviewer)
    revision = args.revision
    if revision is None:
        revision = store.review_state(args.tile_id).revision.revision
    review: Review
    if args.review_action == "approve":
        review = store.approve(args.tile_id, revision, actor)
        text = f"Approved revision {revision} of {args.tile_id}."
    else:
        review = store.request_changes(args.tile_id, revision, actor, args.comment)
        text = f"Sent revision {revision} of {args.tile_id} back: {review.comment}"
    return _status_doc(store.review_state(args.tile_id)), text


def _state(args: argparse.Namespace, store: Store) -> tuple[object, str]:
    status = store.review_state(args.tile_id)
    history = [
        {"revision": r.revision, "verdict": r.verdict, "reviewer": r.reviewer, "comment": r.comment}
        for r in store.reviews(args.tile_id)
    ]
    return _status_doc(status) | {"history": history}, _status_line(status)


def _sent_back(args: argparse.Namespace, store: Store) -> tuple[object, str]:
    sent = store.sent_back(args.annotator)
    lines = [f"{len(sent)} tile(s) sent back to {args.annotator}, oldest request first:"]
    return [_status_doc(s) for s in sent], "\n".join(lines + [_status_line(s) for s in sent])


def _awaiting_second(args: argparse.Namespace, store: Store) -> tuple[object, str]:
    waiting = store.awaiting_second(args.annotator)
    head = (
        f"{len(waiting)} tile(s) wait for {args.annotator}'s independent second label, the "
        "earliest first label first:"
    )
    return [{"tile_id": t} for t in waiting], "\n".join([head, *waiting])


def _pick(args: argparse.Namespace, store: Store) -> tuple[object, str]:
    actor = reviewer_actor(store, args.reviewer)
    pick = store.pick_mask(args.tile_id, args.lane, actor)
    doc = {
        "tile_id": pick.tile_id,
        "lane": pick.lane,
        "reviewer": pick.reviewer,
        "revision": pick.revision,
    }
    return doc, (
        f"Picked the {pick.lane} label of {pick.tile_id}: revision {pick.revision} goes into "
        "releases and training."
    )


def _double_labelled(args: argparse.Namespace, store: Store) -> tuple[object, str]:
    picks = store.mask_picks()
    rows = []
    for tile_id, second in sorted(store.second_labels().items()):
        first = store.first_label(tile_id)
        pick = picks.get(tile_id)
        rows.append(
            {
                "tile_id": tile_id,
                "first": first.annotator if first else None,
                "second": second.annotator,
                "picked": pick.lane if pick else None,
                "picked_by": pick.reviewer if pick else None,
            }
        )
    lines = [f"{len(rows)} tile(s) with two independent labels:"] + [
        f"{r['tile_id']}  first {r['first']}, second {r['second']}: "
        + (f"{r['picked']} picked by {r['picked_by']}" if r["picked"] else "not picked yet")
        for r in rows
    ]
    return rows, "\n".join(lines)


_ACTIONS: dict[str, Callable[[argparse.Namespace, Store], tuple[object, str]]] = {
    "queue": _queue,
    "approve": _verdict,
    "request-changes": _verdict,
    "state": _state,
    "sent-back": _sent_back,
    "awaiting-second": _awaiting_second,
    "pick-mask": _pick,
    "double-labelled": _double_labelled,
}


def add_review_command(
    sub: argparse._SubParsersAction,
    common: argparse.ArgumentParser,
    open_store: Callable[[argparse.Namespace], Store],
    emit: Callable[[argparse.Namespace, object, str], None],
    error: type[Exception],
) -> None:
    """Add ``review`` and its actions to the ``python -m dataset`` parser.

    ``open_store``, ``emit`` and ``error`` (``CliError(message, code)``) are the CLI's own,
    so the command opens, prints and fails as every other one.
    """

    def handler(args: argparse.Namespace) -> int:
        store = open_store(args)
        try:
            doc, text = _ACTIONS[args.review_action](args, store)
        except ReviewConflict as exc:
            raise error(str(exc), EXIT_CONFLICT) from None
        except PermissionDenied as exc:
            raise error(str(exc), EXIT_REFUSED) from None
        emit(args, doc, text)
        return EXIT_OK

    text = (
        "review masks: the queue, approve, request changes, a tile's state, and the pick "
        "between the two labels of a double-labelled tile"
    )
    p = sub.add_parser("review", parents=[common], help=text, description=text)
    p.set_defaults(handler=handler)
    actions = p.add_subparsers(dest="review_action", required=True, metavar="ACTION")

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        return actions.add_parser(name, parents=[common], help=help_text, description=help_text)

    def who(q: argparse.ArgumentParser, required: bool) -> None:
        q.add_argument(
            "--reviewer",
            required=required,
            metavar="ACCOUNT",
            help="the reviewer's account"
            + ("" if required else " (leaves out what they may not approve)"),
        )

    def revision(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--revision",
            type=_revision,
            help="the revision you reviewed (default: the latest); refused if saved since",
        )

    who(action("queue", "unreviewed labelled tiles, the oldest save first"), required=False)
    q = action("approve", "approve a tile's latest revision")
    q.add_argument("tile_id")
    who(q, required=True)
    revision(q)
    q = action("request-changes", "send a tile's latest revision back to its author")
    q.add_argument("tile_id")
    q.add_argument("--comment", required=True, help="what the annotator should change")
    who(q, required=True)
    revision(q)
    q = action("state", "a tile's review state and its verdict history")
    q.add_argument("tile_id")
    q = action("sent-back", "tiles sent back to an annotator, with the comments")
    q.add_argument("annotator")
    q = action("awaiting-second", "tiles waiting for an annotator's independent second label")
    q.add_argument("annotator")
    q = action(
        "pick-mask",
        "pick which of a double-labelled tile's two labels goes into releases and training",
    )
    q.add_argument("tile_id")
    q.add_argument("lane", choices=("first", "second"), help="the label to keep")
    who(q, required=True)
    action("double-labelled", "tiles with two independent labels, and whether one was picked")


def _revision(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a revision number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is no revision: revisions count from 1")
    return value
