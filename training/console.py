"""``smearlab``: the console script (``[project.scripts]`` in ``pyproject.toml``).

``smearlab dataset ...``, ``smearlab training ...`` and ``smearlab model_zoo ...`` hand the
rest of the command line to the package's own CLI, so ``smearlab dataset stats --json`` is
``python -m dataset stats --json``. It lives in ``training``, the package at the top of the
one-way imports, so that it may import all three. ``--workspace W`` and ``--json`` may also
come before the package name (``smearlab --workspace W dataset stats``); they are handed on.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from dataset.cliutil import EXIT_OK, EXIT_USAGE, json_in_argv, report_error

COMMANDS = {
    "dataset": ("dataset.cli", "the workspace: init, ingest, import-masks, annotate, releases"),
    "training": ("training.cli", "train, promote, roll back, jobs, suggest, analyse, diagnosis"),
    "model_zoo": ("model_zoo.__main__", "list and show trained models"),
}
USAGE = "usage: smearlab {dataset,training,model_zoo} ...\n\n" + "\n".join(
    f"  {name:<10} {text}" for name, (_, text) in COMMANDS.items()
)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to the package CLI named by the first argument; returns its exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    shared, args = _leading_common_options(args)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, file=sys.stdout if args else sys.stderr)
        return EXIT_OK if args else EXIT_USAGE
    name = args[0].replace("-", "_")
    if name not in COMMANDS:
        return report_error(
            f"unknown command {args[0]!r}; choose from {', '.join(COMMANDS)}",
            EXIT_USAGE,
            json_in_argv(args),
        )
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return int(module.main([*shared, *args[1:]]))
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE


def _leading_common_options(args: list[str]) -> tuple[list[str], list[str]]:
    """Split ``--workspace W`` / ``--workspace=W`` / ``--json`` given before the package name
    from the rest, so the package CLI (whose parent parser takes them) receives them."""
    shared: list[str] = []
    while args:
        if args[0] == "--json" or args[0].startswith("--workspace="):
            shared, args = [*shared, args[0]], args[1:]
        elif args[0] == "--workspace" and len(args) > 1:
            shared, args = [*shared, *args[:2]], args[2:]
        else:
            break
    return shared, args
