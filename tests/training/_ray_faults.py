"""A scoring actor that dies in the middle of the run, once (for tests/training/test_cluster.py).

Its first call on the second batch ends the process as a SIGKILL would (``os._exit``, no
clean-up), after leaving a marker so that the actor Ray starts in its place does not die too.
"""

from __future__ import annotations

import os
from pathlib import Path

from training.cluster.scoring import _TileScorer


class DiesOnce(_TileScorer):
    def __init__(self, workspace: str, model_id: str, strategy: str) -> None:
        super().__init__(workspace, model_id, strategy)
        self.calls = 0
        self.marker = Path(workspace) / "scorer-died"

    def __call__(self, batch):
        self.calls += 1
        if self.calls == 2 and not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os._exit(1)
        return super().__call__(batch)
