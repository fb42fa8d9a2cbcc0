"""Command line for the model zoo.

Usage::

    python -m model_zoo list     [--kind segmentation|diagnosis] [--json] [--workspace W]
    python -m model_zoo show     MODEL_ID [--json] [--workspace W]
    python -m model_zoo promote  MODEL_ID [--json] [--workspace W]
    python -m model_zoo rollback [--kind segmentation|diagnosis] [--json] [--workspace W]

Exit status: 0 done, 1 refused (unknown id, class mismatch, weights that do not load or run,
nothing to roll back), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from model_zoo.card import KINDS, ModelCard, flat_metrics
from model_zoo.zoo import Zoo, ZooError, default_workspace, metric_columns

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


def workspace_classes(workspace: Path) -> list[str] | None:
    """Class names of the workspace's schema; None when there is none to check against.

    That is when the dataset package is unavailable or the workspace has no class list yet
    (then a note goes to stderr and promotion is not checked).
    """
    try:
        from dataset.store import Store, StoreError
    except ImportError:
        return None
    try:
        return list(Store.open(workspace).schema().names)
    except StoreError as exc:
        print(f"note: class check skipped: {exc}", file=sys.stderr)
        return None


def weights_check(card: ModelCard) -> Callable[[Path], None] | None:
    """The promotion check of :func:`training.model.promotion_check`.

    Loading a model belongs to ``training``; the zoo imports it lazily, here only, until
    promotion moves into the training service.
    """
    from training.model import promotion_check

    return promotion_check(card)


def format_models(cards: Sequence[ModelCard], current_ids: set[str]) -> str:
    """A text table of ``cards``, key metrics side by side, the current model marked ``*``."""
    if not cards:
        return "  (no models yet)"
    columns = metric_columns(cards)
    header = ["", "model_id", "created (UTC)", *columns]
    rows = [header]
    for card in cards:
        metrics = flat_metrics(card.metrics)
        rows.append(
            [
                "*" if card.model_id in current_ids else "",
                card.model_id,
                f"{card.created_at:%Y-%m-%d %H:%M}",
                *(f"{metrics[c]:.3f}" if c in metrics else "-" for c in columns),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  "
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def format_card(card: ModelCard, current: bool) -> str:
    """A readable multi-line description of one card."""
    lines = [
        f"model_id:       {card.model_id}{'  (current)' if current else ''}",
        f"kind:           {card.kind}",
        f"created (UTC):  {card.created_at:%Y-%m-%d %H:%M:%S}",
        f"classes:        {', '.join(card.classes)} (schema v{card.schema_version})",
        f"seed:           {card.seed}",
        f"duration:       {card.duration_s:.1f} s",
        f"machine:        {card.machine or '-'}",
    ]
    if card.notes:
        lines.append(f"notes:          {card.notes}")
    for title, values in (
        ("metrics", flat_metrics(card.metrics)),
        ("settings", card.settings),
        ("data", card.data),
    ):
        lines.append(f"{title}:")
        lines.extend(f"  {key}: {_short(value)}" for key, value in values.items())
    return "\n".join(lines)


def _short(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _card_json(card: ModelCard, current: bool) -> dict:
    return {**card.model_dump(mode="json"), "current": current}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; options may come before or after the subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS so a subcommand's copy of an option does not reset one given before it.
    common.add_argument("--workspace", default=argparse.SUPPRESS, help="workspace folder")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    common.add_argument("--kind", choices=KINDS, default=argparse.SUPPRESS)

    parser = argparse.ArgumentParser(
        prog="python -m model_zoo",
        description="List, inspect, promote and roll back trained models.",
        parents=[common],
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", parents=[common], help="list models, current marked with *")
    show = commands.add_parser("show", parents=[common], help="show one model card")
    show.add_argument("model_id")
    promote = commands.add_parser("promote", parents=[common], help="make a model current")
    promote.add_argument("model_id")
    commands.add_parser("rollback", parents=[common], help="return to the previously current model")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    as_json = getattr(args, "json", False)
    kind = getattr(args, "kind", None)
    zoo = Zoo(default_workspace(getattr(args, "workspace", None)))
    try:
        if args.command == "list":
            kinds = (kind,) if kind else KINDS
            current_ids = {c.model_id for k in kinds if (c := zoo.current(k)) is not None}
            if as_json:
                cards = [card for k in kinds for card in zoo.list(k)]
                print(json.dumps([_card_json(c, c.model_id in current_ids) for c in cards]))
            else:
                blocks = [f"{k} models:\n{format_models(zoo.list(k), current_ids)}" for k in kinds]
                print(f"workspace: {zoo.workspace}\n" + "\n".join(blocks))
        elif args.command == "show":
            card = zoo.get(args.model_id)
            current = zoo.current(card.kind)
            is_current = current is not None and current.model_id == card.model_id
            print(
                json.dumps(_card_json(card, is_current))
                if as_json
                else format_card(card, is_current)
            )
        elif args.command == "promote":
            card = zoo.get(args.model_id)  # unknown ids fail before the workspace is touched
            previous = zoo.current(card.kind)
            card = zoo.promote(
                card.model_id,
                classes=workspace_classes(zoo.workspace),
                verify=weights_check(card),
            )
            was = previous.model_id if previous else None
            if as_json:
                print(json.dumps({"kind": card.kind, "current": card.model_id, "previous": was}))
            else:
                print(f"{card.kind}: {card.model_id} is now current (was {was or 'none'})")
        elif args.command == "rollback":
            kind = kind or "segmentation"
            previous = zoo.current(kind)
            card = zoo.rollback(kind)
            was = previous.model_id if previous else None
            if as_json:
                print(json.dumps({"kind": kind, "current": card.model_id, "previous": was}))
            else:
                print(f"{kind}: rolled back to {card.model_id} (was {was or 'none'})")
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
