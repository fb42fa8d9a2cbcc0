"""Child process for tests/dataset/test_reviews.py: one reviewer approving one revision.

Usage::

    python _review_child.py WORKSPACE REVIEWER TILE_ID REVISION

Prints ``ready`` once the store is open, waits for a line on stdin (so two children start
together), then approves and prints ``approved`` or ``conflict MESSAGE``, flushed.
"""

from __future__ import annotations

import sys

from dataset.roles import Actor
from dataset.store import ReviewConflict, Store


def main() -> None:
    workspace, reviewer, tile_id, revision = sys.argv[1:]
    store = Store.open(workspace)
    store.latest(tile_id)  # warm the caches, so both children race on the verdict alone
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        store.approve(tile_id, int(revision), Actor(reviewer, "reviewer"))
    except ReviewConflict as exc:
        print("conflict", exc, flush=True)
    else:
        print("approved", flush=True)


if __name__ == "__main__":
    main()
