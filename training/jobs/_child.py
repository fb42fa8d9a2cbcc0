"""The job runner's own processes; not a user command (that is ``python -m training jobs``).

``python -m training.jobs._child worker --workspace W`` runs the queue
(:class:`training.jobs.supervisor.Supervisor`); ``python -m training.jobs._child run JOB_DIR``
runs one job in this process (:func:`training.jobs.context.run_in_child`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    """Start the worker or one job; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m training.jobs._child")
    commands = parser.add_subparsers(dest="command", required=True)
    worker = commands.add_parser("worker")
    worker.add_argument("--workspace", type=Path, required=True)
    run = commands.add_parser("run")
    run.add_argument("job_dir", type=Path)
    args = parser.parse_args(argv)
    if args.command == "run":
        from training.jobs.context import run_in_child

        return run_in_child(args.job_dir.resolve())
    from training.jobs.supervisor import Supervisor

    Supervisor(args.workspace.resolve(), python=sys.executable).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
