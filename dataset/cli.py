"""Command line for the workspace: ``python -m dataset COMMAND ...``.

Usage::

    python -m dataset init --classes background,erythrocyte,leukocyte,platelet [--tile-size 256]
    python -m dataset ingest FILE_OR_DIR... [--patient ID] [--stain S] [--magnification M]
                                            [--um-per-px X] [--note N]
    python -m dataset import-masks --pairs PAIRS.csv --levels "0=unlabelled,155=leukocyte"
                                   [--level-tolerance 40] [--levels-lenient]
    python -m dataset annotate TILE_ID MASK.png [--annotator NAME]
                                                [--base-revision N [--force]] [--seconds S]
                                                [--lane first|second]
    python -m dataset skip TILE_ID [--annotator NAME]
    python -m dataset stats
    python -m dataset agreement          # Dice and IoU of the double-labelled tiles
    python -m dataset demo
    python -m dataset release VERSION -m MESSAGE [--seed N] [--approved-only] [--name-annotators]
    python -m dataset verify VERSION
    python -m dataset export VERSION --format zip|png-masks --out PATH
    python -m dataset settings get [KEY] | set KEY VALUE | unset KEY
    python -m dataset audit [--since DATE] [--until DATE] [--actor NAME] [--action A]
    python -m dataset review queue|approve TILE|request-changes TILE --comment TEXT|state TILE
                             |sent-back ANNOTATOR|pick-mask TILE first|second
                             [--reviewer ACCOUNT] (see dataset.cli_review)
    python -m dataset users add NAME --role ROLE [--password-stdin] | list
                            | set-role NAME ROLE | reset-password NAME [--password-stdin]
                            | disable NAME | enable NAME
    python -m dataset serve-check      # exit 1 unless an account exists (``make serve``)

Every command takes ``--workspace W`` (else ``SMEARLAB_WORKSPACE``, else ``./workspace``) and
``--json`` (print one JSON document). Exit status (:mod:`dataset.cliutil`): 0 done, 1 some
input was refused, 2 usage error, 3 a revision conflict. Errors go to stderr as one sentence,
or as one JSON document under ``--json``; no traceback.
This module only parses, calls the dataset package and formats.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from dataset import audit
from dataset.cliutil import (
    EXIT_CONFLICT,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    common_parser,
    json_flag,
    report_error,
)
from dataset.ingest import IngestResult, MetaError, SmearMeta
from dataset.masks import DEFAULT_LEVEL_TOLERANCE
from dataset.roles import COMMAND_LINE, PermissionDenied
from dataset.schema import SchemaError
from dataset.store import RevisionConflict, Store, StoreError
from dataset.wand import DEFAULT_TOLERANCE


class CliError(Exception):
    """A refusal to report in one sentence with an exit status."""

    def __init__(self, message: str, code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------- helpers
def _open_store(args: argparse.Namespace) -> Store:
    from dataset.settings import get_settings

    try:
        settings = get_settings(workspace=getattr(args, "workspace", None))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise CliError(
            f"The SMEARLAB_ settings are invalid ({problems}); fix the environment.", EXIT_USAGE
        ) from None
    args.settings = settings
    return Store.open(settings.workspace)


def _emit(args: argparse.Namespace, document: object, text: str) -> None:
    print(json.dumps(document, default=str) if getattr(args, "json", False) else text)


def _jsonable(obj: object) -> object:
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")  # type: ignore[union-attr]
    if hasattr(obj, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(obj)  # type: ignore[arg-type]
    return obj if isinstance(obj, str | int | float | bool | None) else str(obj)


def _progress(args: argparse.Namespace) -> Callable[[int, int], None] | None:
    if getattr(args, "json", False) or not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        end = "\n" if done == total else ""
        print(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end=end, file=sys.stderr
        )

    return show


def _report_results(
    args: argparse.Namespace,
    results: list[IngestResult],
    header: str | None = None,
    extra: dict | None = None,
) -> int:
    """Print one row per file; exit 1 when any was rejected."""
    lines = [header] if header else []
    for r in results:
        if r.status == "rejected":
            lines.append(f"rejected   {r.input}: {r.reason}")
            continue
        what = f"{r.smear_id}, {r.tiles} tile{'' if r.tiles == 1 else 's'}"
        if r.revisions is not None:
            what += f", {r.revisions} import revisions"
        lines.append(f"{r.status:<10} {r.input} ({what})")
        lines.extend(f"           warning: {w}" for w in r.warnings)
    counts = {s: sum(r.status == s for r in results) for s in ("added", "duplicate", "rejected")}
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items()) + ".")
    _emit(args, {**(extra or {}), "files": [r.to_json() for r in results]}, "\n".join(lines))
    return EXIT_REFUSED if counts["rejected"] else EXIT_OK


def _read_index_png(path: Path) -> np.ndarray:
    from dataset.png import PngError, decode_mask

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CliError(
            f"Cannot read mask file {str(path)!r} ({exc.strerror}); check the path."
        ) from None
    try:
        return decode_mask(data, palette_ok=True)
    except PngError as exc:
        if exc.mode is not None:
            raise CliError(
                f"Mask file {str(path)!r} is a {exc.mode} image; save it as a single-channel "
                "8-bit PNG of class indices (255 = unlabelled)."
            ) from None
        raise CliError(
            f"Mask file {str(path)!r} is not a readable PNG ({exc.detail}); save it as a "
            "single-channel 8-bit PNG of class indices."
        ) from None


# ---------------------------------------------------------------------------- commands
def cmd_init(args: argparse.Namespace) -> int:
    store = _open_store(args)
    classes = [c for c in args.classes.split(",") if c.strip()] if args.classes else None
    colors = [c.strip() for c in args.colors.split(",") if c.strip()] if args.colors else None
    schema = store.init(classes, tile_size=args.tile_size, colors=colors)
    size = store.tile_size()
    _emit(
        args,
        {
            "workspace": str(store.root),
            "classes": list(schema.names),
            "colors": list(schema.colors),
            "schema_version": schema.version,
            "tile_size": size,
        },
        f"Workspace {store.root}: classes {', '.join(schema.names)} "
        f"(schema version {schema.version}), tiles of {size} px.",
    )
    return EXIT_OK


def _meta(args: argparse.Namespace) -> SmearMeta:
    try:
        return SmearMeta(
            patient=args.patient,
            stain=args.stain,
            magnification=args.magnification,
            um_per_px=args.um_per_px,
            note=args.note,
        )
    except MetaError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def cmd_ingest(args: argparse.Namespace) -> int:
    from dataset.ingest import ingest_paths

    meta = _meta(args)
    store = _open_store(args)
    results = ingest_paths(
        store, [Path(p) for p in args.inputs], meta, _progress(args), actor=audit.CLI
    )
    return _report_results(args, results)


def cmd_import_masks(args: argparse.Namespace) -> int:
    from dataset.imports import import_masks, read_pairs_csv

    store = _open_store(args)
    # Masks made elsewhere are authored by "import", whoever runs the command; a person named
    # with --annotator as their author must be an enabled account that may label.
    named = bool((args.annotator or "").strip())
    annotator = _annotator(args) if named else "import"
    pairs = read_pairs_csv(args.pairs)
    results = import_masks(
        store,
        pairs,
        args.levels,
        annotator=annotator,
        on_progress=_progress(args),
        tolerance=args.level_tolerance,
        lenient=args.levels_lenient,
        actor=annotator if named else audit.CLI,
    )
    mode = "lenient: other greys imported as unlabelled" if args.levels_lenient else "strict"
    header = f"Levels {args.levels!r}, each ±{args.level_tolerance} grey levels ({mode})."
    extra = {"levels": args.levels, "tolerance": args.level_tolerance}
    return _report_results(args, results, header, extra | {"lenient": args.levels_lenient})


def _annotator(args: argparse.Namespace, action: str = "label") -> str:
    """Who acts: --annotator, else SMEARLAB_ANNOTATOR; it must name an existing, enabled
    account whose role may take ``action``, and an action without a name is refused."""
    from dataset.accounts import AccountError, actor_for
    from dataset.roles import PermissionDenied

    annotator = (args.annotator or args.settings.annotator or "").strip()
    if not annotator:
        raise CliError(
            "Say who does this: add --annotator ACCOUNT (or set SMEARLAB_ANNOTATOR).",
            EXIT_USAGE,
        )
    try:
        actor_for(args.settings.workspace, annotator).require(action)
    except (AccountError, PermissionDenied) as exc:
        raise CliError(f"--annotator {annotator}: {exc}") from None
    return annotator


def cmd_annotate(args: argparse.Namespace) -> int:
    if args.force and args.base_revision is None:
        raise CliError("--force only applies with --base-revision N.", EXIT_USAGE)
    store = _open_store(args)
    annotator = _annotator(args)
    mask = _read_index_png(Path(args.mask))
    tile = store.tile(args.tile_id)
    try:
        # The label this person works on, as the Label page opens it for them: a
        # double-labelled tile that someone else labelled takes their independent second
        # label (dataset.store.second_labels).
        lane, rev = store.save_label(
            tile.tile_id,
            mask,
            annotator=annotator,
            lane=args.lane,
            source="manual",
            base_revision=args.base_revision,
            seconds=args.seconds,
            force=args.force,
            # No base given: the user means "on top of what is there when it is saved",
            # read under the store's lock, so concurrent saves never look like conflicts.
            on_latest=args.base_revision is None,
        )
    except RevisionConflict as exc:
        raise CliError(
            f"{exc} (To save yours on top anyway, add --force.)", EXIT_CONFLICT
        ) from None
    what = "revision" if lane == "first" else "second-label revision"
    _emit(
        args,
        {
            "tile_id": rev.tile_id,
            "revision": rev.revision,
            "lane": lane,
            "n_labelled_px": rev.n_labelled_px,
        },
        f"Saved {what} {rev.revision} of {rev.tile_id} ({rev.n_labelled_px} labelled pixels).",
    )
    return EXIT_OK


def cmd_agreement(args: argparse.Namespace) -> int:
    """Agreement between the two labels of the double-labelled tiles, per pair and class."""
    from dataset.agreement import agreement

    store = _open_store(args)
    report = agreement(store)
    share = store.double_label_share()
    lines = [
        f"{report.n_tiles} double-labelled tile(s) with both labels (double_label_share {share:g})."
    ]
    lines += [
        f"{r.annotator_a} / {r.annotator_b}  {r.class_name}: Dice {r.dice:.3f}, "
        f"IoU {r.iou:.3f} ({r.n_tiles} tile{'' if r.n_tiles == 1 else 's'})"
        for r in report.rows
    ]
    _emit(args, report.model_dump(mode="json") | {"double_label_share": share}, "\n".join(lines))
    return EXIT_OK


def cmd_wand(args: argparse.Namespace) -> int:
    """The Label page's wand by command: clicks fill cells of the latest mask with a class."""
    from dataset.png import encode_mask
    from dataset.wand import Click, cell_region, to_lab

    if args.out is None and not args.save:
        raise CliError("Say where the mask goes: --out MASK.png, --save, or both.", EXIT_USAGE)
    store = _open_store(args)
    tile = store.tile(args.tile_id)
    value = store.schema().index(args.class_name)
    base = store.latest(tile.tile_id)
    mask = store.mask(tile.tile_id, base.revision if base else None).copy()
    lab = to_lab(np.asarray(store.tile_image(tile.tile_id)))
    filled = 0
    for x, y in args.at:
        region = cell_region(lab, Click(x=x, y=y), args.tolerance)
        filled += int((mask[region] != value).sum())
        mask[region] = value
    document: dict[str, object] = {"tile_id": tile.tile_id, "changed_px": filled}
    lines = [f"{len(args.at)} click(s) on {tile.tile_id} set {filled} pixels to {args.class_name}."]
    if args.out is not None:
        Path(args.out).write_bytes(encode_mask(mask))
        document["out"] = str(args.out)
        lines.append(f"Wrote {args.out}.")
    if args.save and filled == 0:
        lines.append("Nothing changed, so no revision was saved (as on the Label page).")
    elif args.save:
        annotator = _annotator(args)
        try:
            rev = store.save_mask(
                tile.tile_id,
                mask,
                annotator=annotator,
                source="manual",
                base_revision=base.revision if base else None,
            )
        except RevisionConflict as exc:
            raise CliError(
                f"{exc} Run the wand again on the new revision.", EXIT_CONFLICT
            ) from None
        document["revision"] = rev.revision
        lines.append(f"Saved revision {rev.revision} of {tile.tile_id}.")
    _emit(args, document, "\n".join(lines))
    return EXIT_OK


def _click(text: str) -> tuple[int, int]:
    try:
        x, y = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a click; give tile pixels as X,Y (column,row), e.g. 120,64."
        ) from None
    return x, y


def cmd_skip(args: argparse.Namespace) -> int:
    store = _open_store(args)
    store.tile(args.tile_id)  # an unknown tile is the first thing to hear about
    store.skip(args.tile_id, annotator=_annotator(args, "skip"))
    _emit(args, {"tile_id": args.tile_id, "skipped": True}, f"Skipped {args.tile_id}.")
    return EXIT_OK


def cmd_stats(args: argparse.Namespace) -> int:
    store = _open_store(args)
    stats = dict(store.stats())
    if store.is_initialised():
        stats["classes"] = list(store.schema().names)
        stats["tile_size"] = store.tile_size()
        stats["schema_frozen"] = store.schema_frozen()
    stats["workspace"] = str(store.root)
    text = "\n".join(f"{k}: {', '.join(v) if isinstance(v, list) else v}" for k, v in stats.items())
    from dataset.leadtime import lead_times

    report = lead_times(store)
    stats["lead_times"] = report.model_dump(mode="json")
    text += "".join(f"\nlead time: {c.sentence}" for c in report.comparisons)
    _emit(args, stats, text)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from dataset.demo import load_demo

    store = _open_store(args)
    return _report_results(args, load_demo(store, _progress(args), actor=audit.CLI))


def cmd_release(args: argparse.Namespace) -> int:
    from dataset.release import create_release

    store = _open_store(args)
    info = create_release(
        store,
        args.version,
        args.message,
        seed=args.seed,
        approved_only=args.approved_only,
        name_people=args.name_annotators,
        actor=COMMAND_LINE,
    )
    doc = _jsonable(info)
    _emit(
        args,
        doc,
        f"Release {info.version}: {info.n_tiles} tiles "
        f"({', '.join(f'{k} {v}' for k, v in dict(info.counts).items())}) in {info.path}.",
    )
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from dataset.release import verify_release

    store = _open_store(args)
    report = verify_release(store, args.version)
    if getattr(args, "json", False):
        doc = {
            "version": args.version,
            "ok": bool(report.ok),
            "checked": getattr(report, "checked", None),
            "mismatches": [_jsonable(m) for m in report.mismatches],
        }
        print(json.dumps(doc))
    elif report.ok:
        checked = getattr(report, "checked", None)
        files = f" ({checked} files)" if checked is not None else ""
        print(f"Release {args.version} verified: every checksum matches{files}.")
    else:
        for m in report.mismatches:
            print(f"mismatch: {m}", file=sys.stderr)
        print(
            f"Release {args.version} does not match its manifest ({len(report.mismatches)} "
            "mismatches); do not use it, and recreate it under a new version.",
            file=sys.stderr,
        )
    return EXIT_OK if report.ok else EXIT_REFUSED


def cmd_export(args: argparse.Namespace) -> int:
    from dataset.release import export_release

    store = _open_store(args)
    out = export_release(store, args.version, args.format, Path(args.out), actor=COMMAND_LINE)
    _emit(
        args,
        {"version": args.version, "format": args.format, "path": str(out)},
        f"Exported release {args.version} as {args.format} to {out}.",
    )
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    """The audit trail, oldest first, filtered by time, actor and action."""
    try:
        since = None if args.since is None else audit.parse_when(args.since, "--since")
        until = None if args.until is None else audit.parse_when(args.until, "--until")
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    store = _open_store(args)
    rows = audit.read(store, since=since, until=until, actor=args.actor, action=args.action)
    lines = [
        f"{r.at:%Y-%m-%d %H:%M:%S} {r.actor} ({r.os_user}) {r.action} {r.object_id}"
        + (f" {r.before or '-'} -> {r.after or '-'}" if r.before or r.after else "")
        + (f" {r.detail}" if r.detail else "")
        for r in rows
    ]
    lines.append(f"{len(rows)} row{'' if len(rows) == 1 else 's'}.")
    _emit(args, {"rows": [r.to_json() for r in rows]}, "\n".join(lines))
    return EXIT_OK


def _audit_action(text: str) -> str:
    if text not in audit.ACTIONS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an audited action; the actions are: {', '.join(audit.ACTIONS)}"
        )
    return text


# ---------------------------------------------------------------------------- parser
def _tile_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 32 <= value <= 4096:
        raise argparse.ArgumentTypeError(f"{value} is outside 32..4096")
    return value


def _grey_band(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError(f"{value} is outside 0..255 grey levels")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return value


# ---------------------------------------------------------------------------- settings
def cmd_settings(args: argparse.Namespace) -> int:
    """Show the settings and where each comes from, or set / unset a workspace value."""
    from dataset.settings import SettingsError, set_workspace_setting, setting_values

    workspace = getattr(args, "workspace", None)
    try:
        if args.action in ("set", "unset"):
            if args.key is None or (args.action == "set" and args.value is None):
                usage = "settings set KEY VALUE" if args.action == "set" else "settings unset KEY"
                raise CliError(
                    f"Give the key{' and value' if args.action == 'set' else ''}: "
                    f"python -m dataset {usage}.",
                    EXIT_USAGE,
                )
            from dataset.settings import get_settings

            settings = get_settings(workspace=workspace)
            set_workspace_setting(
                settings.workspace,
                args.key,
                None if args.action == "unset" else args.value,
                # Who set it, as the Settings page records the sidebar's name.
                set_by=settings.annotator,
            )
        values = setting_values(workspace=workspace)
    except SettingsError as exc:
        raise CliError(str(exc)) from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise CliError(f"The SMEARLAB_ settings are invalid ({problems}).", EXIT_USAGE) from None
    if args.key is not None:
        values = [v for v in values if v.key == args.key]
        if not values:
            from dataset.settings import Settings

            raise CliError(
                f"Unknown setting {args.key!r}; the settings are: "
                f"{', '.join(Settings.model_fields)}."
            )
    rows = [v.to_json() for v in values]
    text = "\n".join(
        f"{r['key']} = {r['value']!r} ({r['source']})"
        + (f"; workspace value not used: {r['problem']}" if "problem" in r else "")
        for r in rows
    )
    _emit(args, {"settings": rows}, text)
    return EXIT_OK


# ---------------------------------------------------------------------------- users
def _password(args: argparse.Namespace, name: str) -> str:
    """The new password: one line of stdin (--password-stdin), else asked twice on the
    terminal; never an argument (it would stay in shell history and the process list)."""
    if getattr(args, "password", None) is not None:
        raise CliError(
            "Passwords are never taken from the command line (shell history and the process "
            "list would keep them): leave out --password; pipe it with --password-stdin or "
            "type it at the prompt.",
            EXIT_USAGE,
        )
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CliError("--password-stdin read no password: give it as one line.", EXIT_USAGE)
        return password
    if not sys.stdin.isatty():
        raise CliError(
            "No terminal to ask for the password: pipe it in with --password-stdin.", EXIT_USAGE
        )
    import getpass

    first = getpass.getpass(f"New password for {name}: ")
    if getpass.getpass("The same password again: ") != first:
        raise CliError("The two passwords differ; nothing was changed.")
    return first


def cmd_users(args: argparse.Namespace) -> int:
    """Manage the workspace's accounts (the Users page calls the same functions)."""
    from dataset import accounts
    from dataset.settings import get_settings

    workspace = get_settings(workspace=getattr(args, "workspace", None)).workspace
    by = ""  # the OS user who runs the command (dataset.accounts records it)
    if args.users_command == "list":
        rows = [a.to_json() for a in accounts.list_accounts(workspace)]
        text = "\n".join(
            f"{r['name']:<24} {r['role']:<10} {'disabled' if r['disabled'] else 'enabled'}"
            for r in rows
        )
        _emit(args, {"accounts": rows}, text or "No accounts yet: add one with `users add`.")
        return EXIT_OK
    try:
        if args.users_command == "add":
            account = accounts.add_account(
                workspace, args.name, args.role, _password(args, args.name), by=by
            )
            what = f"Added {account.name} ({account.role})."
        elif args.users_command == "set-role":
            account = accounts.set_role(workspace, args.name, args.role, by=by)
            what = f"{account.name} is now {account.role}."
        elif args.users_command == "reset-password":
            account = accounts.reset_password(
                workspace, args.name, _password(args, args.name), by=by
            )
            what = f"New password set for {account.name}; their open sessions are signed out."
        elif args.users_command == "disable":
            account = accounts.disable(workspace, args.name, by=by)
            what = f"{account.name} is disabled and signed out everywhere."
        else:
            account = accounts.enable(workspace, args.name, by=by)
            what = f"{account.name} may sign in again."
    except accounts.AccountError as exc:
        raise CliError(str(exc)) from None
    _emit(args, account.to_json(), what)
    return EXIT_OK


def cmd_serve_check(args: argparse.Namespace) -> int:
    """Refuse to serve the network without an account (``make serve`` runs this first)."""
    from dataset.accounts import has_accounts, list_accounts
    from dataset.settings import get_settings

    workspace = get_settings(workspace=getattr(args, "workspace", None)).workspace
    if not has_accounts(workspace):
        raise CliError(
            f"The workspace {workspace} has no account yet, so SmearLab will not serve the "
            "network: start it with `make run` (this machine only) and create the admin "
            "account on the first page, or run `python -m dataset users add NAME --role "
            "admin`; then `make serve`."
        )
    n = sum(not a.disabled for a in list_accounts(workspace))
    _emit(
        args,
        {"workspace": str(workspace), "enabled_accounts": n},
        f"{n} enabled account{'' if n == 1 else 's'}: every page asks for sign-in.",
    )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; --workspace and --json may come before or after the command."""
    common = common_parser()
    parser = argparse.ArgumentParser(
        prog="python -m dataset",
        description="The SmearLab workspace: smears, tiles, masks and releases.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[argparse.Namespace], int], text: str):
        p = sub.add_parser(name, parents=[common], help=text, description=text)
        p.set_defaults(handler=handler)
        return p

    p = command("init", cmd_init, "set the class list and tile size of the workspace")
    p.add_argument("--classes", help="comma-separated class names, in index order")
    p.add_argument(
        "--colors",
        help='one #rrggbb per class, in the same order, e.g. "#ffffff,#e53935" (default: a '
        "palette); what the Upload page's class editor sets",
    )
    p.add_argument("--tile-size", type=_tile_size, help="tile side in pixels (32..4096)")

    p = command("ingest", cmd_ingest, "add smear photos (files or folders)")
    p.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR")
    p.add_argument("--patient", help="patient pseudonym (never a real name)")
    p.add_argument("--stain")
    p.add_argument("--magnification")
    p.add_argument("--um-per-px", type=float, help="micrometres per pixel")
    p.add_argument("--note")

    p = command("import-masks", cmd_import_masks, "import existing masks as labels")
    p.add_argument("--pairs", required=True, help="CSV with columns image,mask")
    p.add_argument(
        "--levels", required=True, help='grey level map, e.g. "0=unlabelled,155=leukocyte"'
    )
    p.add_argument(
        "--annotator",
        help="the account recorded as the masks' author (default: import, an outside source)",
    )
    p.add_argument(
        "--level-tolerance",
        type=_grey_band,
        default=DEFAULT_LEVEL_TOLERANCE,
        help="grey levels either side of a listed level that count as it "
        f"(default {DEFAULT_LEVEL_TOLERANCE})",
    )
    p.add_argument(
        "--levels-lenient",
        action="store_true",
        help="import greys that no level explains as unlabelled (counted per file) "
        "instead of refusing the mask",
    )

    p = command("annotate", cmd_annotate, "save a tile mask (PNG of class indices)")
    p.add_argument("tile_id")
    p.add_argument("mask", metavar="MASK.png")
    p.add_argument("--annotator", help="the account that drew it (default: SMEARLAB_ANNOTATOR)")
    p.add_argument("--base-revision", type=int, help="the revision you started from")
    p.add_argument("--force", action="store_true", help="save even if someone saved since")
    p.add_argument("--seconds", type=_non_negative, help="time spent on the tile")
    p.add_argument(
        "--lane",
        choices=("first", "second"),
        help="the label to save: the tile's ordinary revisions (first) or its independent "
        "second label (second); default: the one the Label page would open for you",
    )

    p = command(
        "wand",
        cmd_wand,
        "fill the cell under each click with a class, on the tile's latest mask (the Label "
        "page's classical wand; the page also uses a current model that beat the rules)",
    )
    p.add_argument("tile_id")
    p.add_argument(
        "--at",
        type=_click,
        action="append",
        required=True,
        metavar="X,Y",
        help="a click in tile pixels (column,row); repeat for more cells",
    )
    p.add_argument("--class", dest="class_name", required=True, help="the class to fill with")
    p.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help=f"colour distance (ΔE) for a click on plasma (default {DEFAULT_TOLERANCE:g})",
    )
    p.add_argument("--out", help="write the resulting mask here (PNG of class indices)")
    p.add_argument("--save", action="store_true", help="save it as a new revision")
    p.add_argument("--annotator", help="the account that saves (with --save)")

    p = command("skip", cmd_skip, "mark a tile as not worth labelling")
    p.add_argument("tile_id")
    p.add_argument("--annotator", help="the account that skips (default: SMEARLAB_ANNOTATOR)")

    command("stats", cmd_stats, "counts of smears, tiles, labels and revisions")
    command(
        "agreement",
        cmd_agreement,
        "inter-annotator agreement of the double-labelled tiles: Dice and IoU per annotator "
        "pair and class (pixels unlabelled in either mask left out), with the tiles behind each",
    )
    command("demo", cmd_demo, "load the BCCD demo smears and white-cell masks")

    p = command("release", cmd_release, "write an immutable release of the labelled tiles")
    p.add_argument("version")
    p.add_argument("-m", "--message", required=True)
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--approved-only",
        action="store_true",
        help="release only tiles whose latest revision a reviewer approved",
    )
    p.add_argument(
        "--name-annotators",
        action="store_true",
        help="name annotators and reviewers in the card and the annotator column (default: "
        "a pseudonymous account key, and people counted per role)",
    )

    p = command("verify", cmd_verify, "recompute every checksum of a release")
    p.add_argument("version")

    p = command("export", cmd_export, "export a release")
    p.add_argument("version")
    p.add_argument("--format", required=True, choices=("zip", "png-masks"))
    p.add_argument("--out", required=True)

    p = command(
        "audit",
        cmd_audit,
        "read the audit trail: who did what, when, to which object (it cannot be edited)",
    )
    p.add_argument("--since", help="rows at or after: YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)")
    p.add_argument("--until", help="rows before: YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)")
    p.add_argument("--actor", help="rows of this account only")
    p.add_argument("--action", type=_audit_action, help="rows of this action only")

    p = command(
        "settings",
        cmd_settings,
        "show settings and where each comes from (override, env, workspace, default), or set "
        "a workspace value",
    )
    p.add_argument("action", choices=("get", "set", "unset"))
    p.add_argument("key", nargs="?", help="a setting (get: all when left out)")
    p.add_argument("value", nargs="?", help="the value to store in the workspace (set)")

    from dataset.cli_review import add_review_command

    add_review_command(sub, common, _open_store, _emit, CliError)

    from dataset.roles import ROLES

    p = command("users", cmd_users, "manage the accounts that sign in to the app")
    users = p.add_subparsers(dest="users_command", required=True, metavar="ACTION")

    def user_action(name: str, text: str, password: bool = False):
        q = users.add_parser(name, parents=[common], help=text, description=text)
        if password:
            q.add_argument(
                "--password-stdin",
                action="store_true",
                help="read the password as one line of stdin (else: asked twice)",
            )
            # Only so that a password given as an argument is refused with a reason.
            q.add_argument("--password", help=argparse.SUPPRESS)
        return q

    q = user_action("add", "add an account (the password is asked, or read from stdin)", True)
    q.add_argument("name", help="account name: lower-case letters, digits, '.', '_', '-'")
    q.add_argument("--role", required=True, choices=ROLES)
    user_action("list", "list the accounts, their roles and whether they are enabled")
    q = user_action("set-role", "give an account another role")
    q.add_argument("name")
    q.add_argument("role", choices=ROLES)
    q = user_action("reset-password", "set a new password (ends the account's sessions)", True)
    q.add_argument("name")
    q = user_action("disable", "stop an account signing in (kept for the record)")
    q.add_argument("name")
    q = user_action("enable", "let a disabled account sign in again")
    q.add_argument("name")

    command(
        "serve-check",
        cmd_serve_check,
        "exit 1 unless the workspace has an account (run by `make serve` before serving)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    as_json = json_flag(args)
    try:
        return args.handler(args)
    except CliError as exc:
        return report_error(exc, exc.code, as_json)
    except audit.AuditError as exc:
        return report_error(exc, EXIT_REFUSED, as_json)
    except RevisionConflict as exc:
        return report_error(exc, EXIT_CONFLICT, as_json)
    except PermissionDenied as exc:  # a role refusal, before the OSError it subclasses
        return report_error(exc, EXIT_REFUSED, as_json)
    except (StoreError, SchemaError, ValueError) as exc:
        # Library refusals (pairs CSV, schema, unknown tile, release errors) already name
        # the input and what to do.
        return report_error(exc, EXIT_REFUSED, as_json)
    except OSError as exc:
        where = f" {exc.filename!r}" if exc.filename else ""
        return report_error(f"cannot access{where} ({exc.strerror or exc}).", EXIT_REFUSED, as_json)
