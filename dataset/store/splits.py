"""The split: which of train / validation / test each group of smears belongs to.

Promises:
- A group (patient, else smear) is assigned to train / validation / test once and for ever:
  the first assignment stored wins, even over a racing writer's.
- A hashed assignment is a pure function of the seed and the group.
"""

from __future__ import annotations

import hashlib

from dataset.store._base import StoreBase
from dataset.store.records import StoreError, _now

SPLITS = ("train", "validation", "test")
SPLIT_SHARES = (0.8, 0.1, 0.1)


def split_for_group(group_key: str, seed: int) -> str:
    """Deterministic 80/10/10 assignment of a group by a hash of seed and group."""
    h = hashlib.sha256(f"{seed}:{group_key}".encode()).digest()
    u = int.from_bytes(h[:8], "big") / 2**64
    edge = 0.0
    for name, share in zip(SPLITS, SPLIT_SHARES, strict=True):
        edge += share
        if u < edge:
            return name
    return SPLITS[-1]


def group_key(patient: str | None, smear_id: str) -> str:
    """The unit that never straddles two splits: the patient, else the smear."""
    return f"patient:{patient}" if patient else f"smear:{smear_id}"


class SplitsPart(StoreBase):
    """Assigning and reading the split of each smear's group."""

    def splits_of(self, smear_ids: set[str] | list[str], seed: int | None = None) -> dict[str, str]:
        """Split of each smear, assigning (and storing) groups seen for the first time."""
        smears = {s.smear_id: s for s in self.smears()}
        missing = [s for s in smear_ids if s not in smears]
        if missing:
            raise StoreError(f"No smear {missing[0]!r} in workspace {self.root}.")
        keys = {s: group_key(smears[s].patient, s) for s in smear_ids}
        known = self._split_table()
        todo = sorted(set(keys.values()) - known.keys())
        if todo:
            with self.tables.lock("splits"):
                known = self._split_table()
                todo = sorted(set(keys.values()) - known.keys())
                if todo:
                    seed = self.split_seed() if seed is None else seed
                    now = _now()
                    rows = [
                        {
                            "group_key": g,
                            "split": split_for_group(g, seed),
                            "seed": seed,
                            "created_at": now,
                        }
                        for g in todo
                    ]
                    self.tables.append("splits", rows)
                    known.update({r["group_key"]: r["split"] for r in rows})
        return {s: known[k] for s, k in keys.items()}

    def split_of(self, smear_id: str) -> str:
        return self.splits_of([smear_id])[smear_id]

    def assign_splits(self, wanted: dict[str, str]) -> dict[str, str]:
        """Put smears' groups in chosen splits instead of hashed ones (the demo uses this so
        each split holds labelled tiles).

        A group that already has a split keeps it: an assignment is never changed, so a
        model's card and a release stay true.

        Args:
            wanted: Smear id to ``train``, ``validation`` or ``test``.

        Returns:
            The split each of those smears is in now.

        Raises:
            StoreError: An unknown smear or split name.
        """
        bad = sorted(set(wanted.values()) - set(SPLITS))
        if bad:
            raise StoreError(f"Unknown split {bad[0]!r}; use one of {', '.join(SPLITS)}.")
        smears = {s.smear_id: s for s in self.smears()}
        missing = [s for s in wanted if s not in smears]
        if missing:
            raise StoreError(f"No smear {missing[0]!r} in workspace {self.root}.")
        keys = {s: group_key(smears[s].patient, s) for s in wanted}
        with self.tables.lock("splits"):
            known = self._split_table()
            rows, now = {}, _now()
            for smear_id, key in keys.items():
                if key not in known and key not in rows:
                    rows[key] = {
                        "group_key": key,
                        "split": wanted[smear_id],
                        "seed": self.split_seed(),
                        "created_at": now,
                    }
            if rows:
                self.tables.append("splits", list(rows.values()))
                known.update({k: r["split"] for k, r in rows.items()})
        return {s: known[k] for s, k in keys.items()}

    def _split_table(self) -> dict[str, str]:
        t = self.tables.read("splits", ["group_key", "split", "created_at"])
        out: dict[str, str] = {}
        # First assignment wins for ever, even if a racing writer appended a second one.
        for r in sorted(t.to_pylist(), key=lambda r: r["created_at"], reverse=True):
            out[r["group_key"]] = r["split"]
        return out

    def split_assignment(self) -> dict[str, str]:
        """Every stored group → split (recorded in model cards and releases)."""
        return self._split_table()
