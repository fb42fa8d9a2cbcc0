"""The workspace's configuration: its class schema, tile size and split seed.

Promises:
- The configuration is an append-only table of key/value rows; the latest row of a key wins.
- The class list is frozen once a revision is saved, and the tile size once a smear is stored:
  a change after that is refused with what to do instead.
"""

from __future__ import annotations

import json

from dataset.schema import ClassSchema, SchemaError
from dataset.store._base import StoreBase
from dataset.store.records import StoreError, _now


class ConfigPart(StoreBase):
    """The class schema, tile size and split seed of a workspace."""

    def _config(self) -> dict[str, str]:
        def build() -> dict[str, str]:
            t = self.tables.read("config")
            out: dict[str, str] = {}
            for row in sorted(t.to_pylist(), key=lambda r: r["created_at"]):
                out[row["key"]] = row["value"]
            return out

        return dict(self._memo("config", ("config",), build))

    def _set_config(self, values: dict[str, str]) -> None:
        now = _now()
        self.tables.append(
            "config", [{"key": k, "value": v, "created_at": now} for k, v in values.items()]
        )

    def is_initialised(self) -> bool:
        return "classes" in self._config()

    def init(
        self,
        classes: list[str] | tuple[str, ...] | None = None,
        tile_size: int | None = None,
        colors: list[str] | None = None,
        split_seed: int = 0,
    ) -> ClassSchema:
        """Set the class list and tile size of a new workspace (or change them before labelling).

        Raises:
            SchemaError: if the class list is invalid or a revision has been saved already.
        """
        from dataset.schema import DEFAULT_CLASSES

        with self.tables.lock("config"):
            cfg = self._config()
            names = list(classes or DEFAULT_CLASSES)
            schema = ClassSchema.from_names(names)
            if colors:
                schema = ClassSchema(schema.names, tuple(c.lower() for c in colors))
            if "classes" in cfg:
                old = self.schema()
                if old.names == schema.names and old.colors == schema.colors:
                    if tile_size and int(cfg["tile_size"]) != tile_size:
                        self._check_tile_size_change()
                        self._set_config({"tile_size": str(tile_size)})
                    return old
                if self.tables.version("revisions") > 0:
                    raise SchemaError(
                        "The class list is frozen: masks have been saved with "
                        f"{', '.join(old.names)}. Start a new workspace to use other classes."
                    )
                schema = ClassSchema(schema.names, schema.colors, old.version + 1)
            size = tile_size or int(cfg.get("tile_size", 0)) or self._default_tile_size()
            if "tile_size" in cfg and size != int(cfg["tile_size"]):
                self._check_tile_size_change()
            self._set_config(
                {
                    "classes": json.dumps(list(schema.names)),
                    "colors": json.dumps(list(schema.colors)),
                    "schema_version": str(schema.version),
                    "tile_size": str(size),
                    "split_seed": cfg.get("split_seed", str(split_seed)),
                }
            )
            return schema

    def _check_tile_size_change(self) -> None:
        if self.tables.version("smears") > 0:
            raise StoreError(
                "The tile size cannot change once smears are stored; start a new workspace."
            )

    @staticmethod
    def _default_tile_size() -> int:
        from dataset.settings import get_settings

        return get_settings().tile_size

    def ensure_initialised(self) -> ClassSchema:
        """The schema, initialising the workspace with the defaults if it is new."""
        return self.schema() if self.is_initialised() else self.init()

    def schema(self) -> ClassSchema:
        cfg = self._config()
        if "classes" not in cfg:
            raise StoreError(
                f"Workspace {self.root} has no class list yet: run "
                "`python -m dataset init --classes background,erythrocyte,leukocyte,platelet`."
            )
        return ClassSchema(
            tuple(json.loads(cfg["classes"])),
            tuple(json.loads(cfg["colors"])),
            int(cfg.get("schema_version", "1")),
        )

    def schema_frozen(self) -> bool:
        return self.tables.version("revisions") > 0

    def tile_size(self) -> int:
        cfg = self._config()
        return int(cfg.get("tile_size") or self._default_tile_size())

    def split_seed(self) -> int:
        return int(self._config().get("split_seed", "0"))

    def table_versions(self) -> dict[str, int]:
        return {name: self.tables.version(name) for name in self.tables.schemas}
