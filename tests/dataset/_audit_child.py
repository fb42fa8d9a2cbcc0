"""Child process for tests/dataset/test_audit.py: appends audit rows and reports each one.

Usage::

    python _audit_child.py WORKSPACE ACTOR COUNT

Prints ``ready`` once the module is loaded, waits for a line on stdin (so the children start
together), then records COUNT ``save`` rows of objects ``ACTOR-0`` … and prints each object id
after its append has returned, flushed.
"""

from __future__ import annotations

import sys

from dataset import audit


def main() -> None:
    workspace, actor, count = sys.argv[1:]
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(int(count)):
        row = audit.record(workspace, actor=actor, action="save", object_id=f"{actor}-{i}")
        print(row.object_id, flush=True)


if __name__ == "__main__":
    main()
