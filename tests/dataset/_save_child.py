"""Child process for tests/dataset/test_faults.py: saves masks and reports each save.

Usage::

    python _save_child.py WORKSPACE NAME COUNT TILE_ID...

Prints ``ready`` once the store is open, waits for a line on stdin (so two children can
start together), then saves COUNT revisions round-robin over the tiles (0 = forever), with
``force=True``, printing ``TILE_ID REVISION VALUE`` after each save has returned, flushed;
the mask is filled with VALUE so the parent can check what was stored.
"""

from __future__ import annotations

import itertools
import sys

import numpy as np

from dataset.store import Store


def main() -> None:
    workspace, name, count, *tile_ids = sys.argv[1:]
    store = Store.open(workspace)
    tiles = [store.tile(t) for t in tile_ids]
    print("ready", flush=True)
    sys.stdin.readline()
    steps = itertools.count() if int(count) == 0 else range(int(count) * len(tiles))
    for step in steps:
        tile = tiles[step % len(tiles)]
        value = step % 4
        mask = np.full((tile.h, tile.w), value, dtype=np.uint8)
        rev = store.save_mask(tile.tile_id, mask, annotator=name, force=True)
        print(tile.tile_id, rev.revision, value, flush=True)


if __name__ == "__main__":
    main()
