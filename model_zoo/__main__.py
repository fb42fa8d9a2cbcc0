"""Command line for the model zoo: list and show models.

Usage::

    python -m model_zoo list     [--kind segmentation|diagnosis] [--json] [--workspace W]

``list`` prints one flat row per model (current marked ``*``, created, encoder or target,
the parent it was fine-tuned from, the summary figures); ``--json`` prints the full cards.
    python -m model_zoo show     MODEL_ID [--json] [--workspace W]

Promote and roll back moved to ``python -m training promote|rollback``: they are rules (the
weights are checked, a new current model queues re-scoring), and the zoo only stores files,
cards and the current pointer. Asked here, they answer with where they went (exit status 2).

Exit status: 0 done, 1 refused (unknown id), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from dataset.cliutil import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, common_parser, report_error
from model_zoo.card import KINDS, ModelCard, flat_metrics
from model_zoo.zoo import Zoo, ZooError, default_workspace, summary_rows

MOVED = {"promote": "promote MODEL_ID", "rollback": "rollback [--kind KIND]"}


def format_models(cards: Sequence[ModelCard], current_ids: set[str]) -> str:
    """A text table of ``cards``: one flat row each (:func:`model_zoo.zoo.summary_rows`), the
    current model marked ``*``. The full card is under ``show`` or ``--json``."""
    if not cards:
        return "  (no models yet)"
    rows = summary_rows(cards, current_ids)
    header = ["", *list(rows[0])[1:]]
    table = [header, *([*row.values()] for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return "\n".join(
        "  "
        + "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in table
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
        f"parent:         {card.parent or '- (trained from scratch)'}",
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
    common = common_parser()
    common.add_argument("--kind", choices=KINDS, default=argparse.SUPPRESS)

    parser = argparse.ArgumentParser(
        prog="python -m model_zoo",
        description="List and inspect trained models (promote, roll back: python -m training).",
        parents=[common],
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", parents=[common], help="list models, current marked with *")
    show = commands.add_parser("show", parents=[common], help="show one model card")
    show.add_argument("model_id")
    # Moved to python -m training; kept so the old command names say where they went.
    for name in MOVED:
        moved = commands.add_parser(
            name, parents=[common], help=f"moved: python -m training {name}"
        )
        moved.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    as_json = getattr(args, "json", False)
    if args.command in MOVED:
        return report_error(
            "promote and rollback moved to the training package, which checks the weights "
            f"and queues re-scoring: run python -m training {MOVED[args.command]}",
            EXIT_USAGE,
            as_json,
        )
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
    except ZooError as exc:
        return report_error(exc, EXIT_REFUSED, as_json)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
