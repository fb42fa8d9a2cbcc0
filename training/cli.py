"""``python -m training``: train, promote and roll back, follow jobs, suggest, analyse, evaluate.

The workspace comes from ``--workspace``, else ``SMEARLAB_WORKSPACE``, else ``./workspace``.
``--json`` prints one JSON document, and errors as JSON on stderr. Exit codes
(:mod:`dataset.cliutil`): 0 success, 1 refused input or a failed job, 2 usage error,
3 conflict (a training run is already queued or running).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from dataset.cliutil import (
    EXIT_CONFLICT,
    EXIT_OK,
    EXIT_REFUSED,
    common_parser,
    json_flag,
    report_error,
    workspace_flag,
)
from dataset.settings import get_settings


def _workspace(args: argparse.Namespace) -> Path:
    return get_settings(workspace=workspace_flag(args)).workspace


def _print(args: argparse.Namespace, payload: object, text: str) -> None:
    print(json.dumps(payload, default=str) if json_flag(args) else text)


def _model_ref(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError("give 'current' or a model id (python -m model_zoo list)")
    return value.strip()


def _segment(args: argparse.Namespace) -> int:
    from dataset.roles import COMMAND_LINE
    from training.job_report import report
    from training.jobs.runner import JobRunner
    from training.jobs.spec import JobState
    from training.service import submit_training, submit_update

    settings = {
        k: v
        for k, v in {
            "encoder": args.encoder,
            "epochs": args.epochs,
            "time_budget_min": args.time_budget_min,
            "seed": args.seed,
            "batch_size": args.batch_size,
            "patch_size": args.patch_size,
            "lr": args.lr,
            "device": args.device,
            "workers": args.workers,
        }.items()
        if v is not None
    }
    if args.stain_jitter:
        from training.augment import STAIN_JITTER

        settings["augment"] = STAIN_JITTER.model_dump()
    ws = _workspace(args)
    if args.init_from is None:
        job_id = submit_training(ws, settings, actor=COMMAND_LINE)
    else:  # the Train page's "Update the current model", with the flags given overriding it
        job_id = submit_update(ws, args.init_from, settings, actor=COMMAND_LINE)
    queued = f"queued training job {job_id}"
    if args.init_from is not None:  # say which model, and that its architecture is kept
        from training.jobs.folder import read_spec
        from training.segment import SegTrainConfig
        from training.service import start_note

        spec = read_spec(Path(ws) / "jobs" / job_id)
        queued += f": {start_note(SegTrainConfig(**spec.params['config']))}"
    if not args.wait:
        _print(args, {"job_id": job_id, "state": "queued"}, queued)
        return 0
    if not json_flag(args):
        print(queued, flush=True)

    shown: list[str] = []

    def show(status) -> None:
        line = f"[{status.state}] {report(ws, status).message}"
        if not json_flag(args) and (not shown or shown[-1] != line):
            shown.append(line)
            print(line, flush=True)

    status = JobRunner(ws).wait(job_id, on_progress=show, poll_s=1.0)
    payload = status.model_dump(mode="json", exclude={"history"})
    final = report(ws, status)
    text = "\n".join(
        [f"job {job_id} {status.state}: {final.message}", *(n.text for n in final.notes)]
    )
    _print(args, payload, text)
    return EXIT_OK if status.state == JobState.DONE else EXIT_REFUSED


def _auto_update(args: argparse.Namespace) -> int:
    from training.service import auto_update

    done = auto_update(_workspace(args))
    text = f"queued update job {done.job_id}" if done.job_id else f"no update: {done.reason}"
    _print(args, done.to_json(), text)
    return EXIT_OK


def _promote(args: argparse.Namespace) -> int:
    from dataset.roles import COMMAND_LINE
    from training.service import promote_model

    change = promote_model(_workspace(args), args.model_id, actor=COMMAND_LINE)
    return _pointer(args, change, "is now current")


def _rollback(args: argparse.Namespace) -> int:
    from dataset.roles import COMMAND_LINE
    from training.service import rollback_model

    change = rollback_model(_workspace(args), args.kind, actor=COMMAND_LINE)
    return _pointer(args, change, "is current again (rolled back)")


def _pointer(args: argparse.Namespace, change, what: str) -> int:
    text = f"{change.card.kind}: {change.card.model_id} {what} (was {change.previous or 'none'})"
    if change.rescoring:
        text += f"\nqueued re-scoring job {change.rescoring}"
    _print(args, change.to_json(), text)
    return 0


def _jobs(args: argparse.Namespace) -> int:
    from training.jobs.cli import cli_jobs

    return cli_jobs(_workspace(args), json_flag(args), args.limit, job_id=args.job_id)


def _cancel(args: argparse.Namespace) -> int:
    from training.jobs.cli import cli_cancel

    return cli_cancel(_workspace(args), args.job_id, wait_s=args.wait_s, as_json=json_flag(args))


def _loaded(args: argparse.Namespace, ws: Path):
    from training.service import load_model

    return load_model(ws, getattr(args, "model", None))


def _suggest(args: argparse.Namespace) -> int:
    from dataset.store import Store
    from training.service import measured_default, suggest

    ws = _workspace(args)
    # Unset options follow the shipped measurement, as the Suggestions page does.
    measured = measured_default()
    strategy = args.strategy or measured.strategy
    diversity = measured.diversity if args.diversity is None else args.diversity or None
    loaded = None if strategy == "random" else _loaded(args, ws)
    found = suggest(Store.open(ws), strategy, args.top, loaded=loaded, diversity=diversity)
    text = "\n".join(f"{r.score:8.4f}  {r.tile_id}" for r in found) or "no unlabelled tiles"
    if found.note:
        text = f"note: {found.note}\n{text}"
    _print(args, found.to_json(), text)
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from dataset.store import Store
    from training.service import analyze_smear, model_quality

    ws = _workspace(args)
    loaded = None if args.labels else _loaded(args, ws)
    analysis, _, model_id = analyze_smear(Store.open(ws), args.smear_id, loaded)
    rows = analysis.to_rows()
    text = "\n".join(
        f"{r['class_name']:>14}  pixels {r['pixel_share'] or 0:6.1%}  count {r['count']}"
        for r in rows
    )
    if analysis.labelled_pixels == 0:
        text = "no labelled pixels on this smear yet: label its tiles, or analyse with a model"
    source = f"model {model_id}" if model_id else "saved labels"
    payload = {"smear_id": args.smear_id, "source": source, "model_id": model_id, "classes": rows}
    if loaded is not None:
        quality = model_quality(loaded.card)
        payload["validation"] = quality.to_json()
        figures = ", ".join(
            f"{c} {'-' if v is None else f'{v:.3f}'}" for c, v in quality.iou.items()
        )
        miou = "-" if quality.miou is None else f"{quality.miou:.3f}"
        text += f"\nvalidation of {model_id}: mean IoU {miou} ({figures})"
        text += "".join(f"\nwarning: {w}" for w in quality.warnings)
        if quality.note:
            text += f"\nnote: {quality.note}"
    _print(args, payload, f"{args.smear_id} ({source})\n{text}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from dataset.imports import read_pairs_csv
    from training.service import evaluate_pairs

    ws = _workspace(args)
    loaded = _loaded(args, ws)
    if loaded is None:
        return report_error("no segmentation model yet; train one first.", 1, json_flag(args))
    report = evaluate_pairs(
        read_pairs_csv(Path(args.pairs)),
        args.levels,
        loaded,
        tolerance=args.level_tolerance,
        lenient=args.levels_lenient,
    )
    lines = [
        f"{c:>14}  IoU {v['iou'] if v['iou'] is not None else float('nan'):.3f}"
        f"  Dice {v['dice'] if v['dice'] is not None else float('nan'):.3f}"
        for c, v in report["per_class"].items()
    ]
    lines.append(f"{'mean':>14}  IoU {report['mean_iou']:.3f}  Dice {report['mean_dice']:.3f}")
    lines.append(f"grey levels within ±{report['level_tolerance']} of a listed level count as it")
    for name, found in (report["unmatched"] or {}).items():
        counts = ", ".join(f"level {k}: {v} px" for k, v in found.items())
        lines.append(f"{name}: left out as unlabelled (no level explains them): {counts}")
    _print(args, report, "\n".join(lines))
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = common_parser()
    parser = argparse.ArgumentParser(
        prog="python -m training", description=__doc__, parents=[common]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("segment", parents=[common], help="train the segmentation U-Net (a job)")
    p.add_argument("--encoder", help="mobilenet_v2 (default), resnet18, resnet34, efficientnet-b0")
    p.add_argument("--epochs", type=int)
    p.add_argument("--time-budget-min", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--patch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--device", help="torch device, e.g. cuda (default: SMEARLAB_DEVICE, cpu)")
    p.add_argument(
        "--workers",
        type=int,
        help="data-parallel workers on Ray (default 1; more than 1 needs the ray_address "
        "setting, see README 'Past one machine: Ray')",
    )
    p.add_argument(
        "--stain-jitter",
        action="store_true",
        help="colour jitter while training, for smears of several stains or microscopes "
        "(off by default: it scored lower on one lab's smears in the same time)",
    )
    p.add_argument(
        "--from",
        dest="init_from",
        type=_model_ref,
        metavar="current|MODEL_ID",
        help="fine-tune this model (same classes, its architecture) with its own settings, for "
        "a short budget unless --time-budget-min is given: the Train page's Update button",
    )
    p.add_argument("--wait", action="store_true", help="block until the job ends")
    p.set_defaults(func=_segment)

    p = sub.add_parser(
        "auto-update",
        parents=[common],
        help="update the current model if auto_update_every new tiles are labelled (as after a "
        "label is saved)",
    )
    p.set_defaults(func=_auto_update)

    p = sub.add_parser(
        "promote", parents=[common], help="make a model current (weights checked, re-scores)"
    )
    p.add_argument("model_id")
    p.set_defaults(func=_promote)
    p = sub.add_parser("rollback", parents=[common], help="return to the previous current model")
    p.add_argument("--kind", choices=("segmentation", "diagnosis"), default="segmentation")
    p.set_defaults(func=_rollback)

    p = sub.add_parser("jobs", parents=[common], help="list recent jobs, or show one")
    p.add_argument("job_id", nargs="?", help="show this job and the end of its log")
    p.add_argument("--limit", type=int, default=20, help="at most this many jobs (default 20)")
    p.set_defaults(func=_jobs)
    p = sub.add_parser("cancel", parents=[common], help="cancel a queued or running job")
    p.add_argument("job_id")
    p.add_argument("--wait-s", type=float, default=None, help="wait this long for it to stop")
    p.set_defaults(func=_cancel)

    p = sub.add_parser("suggest", parents=[common], help="next tiles to label")
    p.add_argument(
        "--strategy",
        help="random, entropy, margin, tta (default: the measured default, as on the page)",
    )
    p.add_argument("--top", type=int, default=10)
    p.add_argument(
        "--diversity",
        help="per_smear, feature_spread or '' for none (default: the measured default)",
    )
    p.add_argument("--model", help="model id (default: the current model)")
    p.set_defaults(func=_suggest)

    p = sub.add_parser("analyze", parents=[common], help="cell counts and class shares")
    p.add_argument("smear_id")
    p.add_argument("--model", help="model id (default: the current model)")
    p.add_argument("--labels", action="store_true", help="analyse saved labels, not a model")
    p.set_defaults(func=_analyze)

    p = sub.add_parser("evaluate", parents=[common], help="IoU/Dice on external image/mask pairs")
    p.add_argument("--pairs", required=True, help="CSV with columns image,mask")
    p.add_argument("--levels", required=True, help='e.g. "0=background,128=cytoplasm"')
    p.add_argument("--model", help="model id (default: the current model)")
    p.add_argument(
        "--level-tolerance",
        type=int,
        choices=range(256),
        metavar="0..255",
        help="grey levels either side of a listed level that count as it (default 40)",
    )
    p.add_argument(
        "--levels-lenient",
        action="store_true",
        help="leave greys that no level explains out of the scores (counted per file) "
        "instead of refusing the mask",
    )
    p.set_defaults(func=_evaluate)

    from training.diagnosis.cli import add_parser as add_diagnosis

    add_diagnosis(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from dataset.audit import AuditError
    from model_zoo import ZooError
    from training.service import RunConflictError

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    as_json = json_flag(args)
    try:
        return int(args.func(args))
    except RunConflictError as exc:
        return report_error(exc, EXIT_CONFLICT, as_json)
    except (ZooError, AuditError) as exc:
        return report_error(exc, EXIT_REFUSED, as_json)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        return report_error(message, EXIT_REFUSED, as_json)
