"""One command-line convention for every SmearLab CLI (``python -m dataset``, ``python -m
training``, ``python -m training diagnosis``, ``python -m model_zoo`` and ``smearlab``).

Promises:
- One exit-code table: :data:`EXIT_OK` 0 success, :data:`EXIT_REFUSED` 1 input refused (or a
  job that failed), :data:`EXIT_USAGE` 2 usage error, :data:`EXIT_CONFLICT` 3 conflict (a
  revision saved by someone else, a training run already queued or running).
- One parent parser (:func:`common_parser`) for ``--workspace`` and ``--json``; both may come
  before or after the command.
- Errors go to stderr as one sentence (``error: ...``), or under ``--json`` as one JSON
  document ``{"error": ..., "exit_code": ...}`` (:func:`report_error`), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_CONFLICT = 0, 1, 2, 3
EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_REFUSED: "input refused",
    EXIT_USAGE: "usage error",
    EXIT_CONFLICT: "conflict",
}

__all__ = [
    "EXIT_CODES",
    "EXIT_CONFLICT",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_USAGE",
    "common_parser",
    "json_flag",
    "report_error",
    "workspace_flag",
]


def common_parser() -> argparse.ArgumentParser:
    """The parent parser of every command: ``--workspace W`` and ``--json``.

    Defaults are suppressed so a subcommand's copy of an option does not reset one given
    before the subcommand; read them with :func:`workspace_flag` and :func:`json_flag`.
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--workspace",
        type=Path,
        default=argparse.SUPPRESS,
        help="workspace folder (default: SMEARLAB_WORKSPACE, else ./workspace)",
    )
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON document"
    )
    return common


def workspace_flag(args: argparse.Namespace) -> Path | None:
    """``--workspace`` when given, else None (the settings then choose)."""
    return getattr(args, "workspace", None)


def json_flag(args: argparse.Namespace) -> bool:
    """Whether ``--json`` was given."""
    return bool(getattr(args, "json", False))


def json_in_argv(argv: list[str] | tuple[str, ...] | None) -> bool:
    """Whether ``--json`` is among ``argv`` (for errors before the arguments are parsed)."""
    return "--json" in (sys.argv[1:] if argv is None else argv)


def report_error(message: object, code: int, as_json: bool) -> int:
    """Print ``message`` to stderr, as JSON under ``--json``; returns ``code``."""
    if as_json:
        print(json.dumps({"error": str(message), "exit_code": code}), file=sys.stderr)
    else:
        print(f"error: {message}", file=sys.stderr)
    return code
