"""The workspace's class schema: the names and colours of mask classes.

A mask is a uint8 raster of class indices: index ``i`` is the ``i``-th name of the schema,
and :data:`UNLABELLED` (255) marks pixels nobody has labelled yet. Training ignores them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

UNLABELLED = 255
UNLABELLED_NAME = "unlabelled"
DEFAULT_CLASSES = ("background", "erythrocyte", "leukocyte", "platelet")
# Colours a lab recognises at a glance on a Giemsa smear: plasma grey, red cells red,
# white cells violet, platelets amber. Extra classes cycle through a colour-blind-safe set.
DEFAULT_COLORS = {
    "background": "#9e9e9e",
    "erythrocyte": "#e53935",
    "leukocyte": "#7e57c2",
    "platelet": "#ffb300",
}
_EXTRA_COLORS = ("#1e88e5", "#43a047", "#00acc1", "#d81b60", "#6d4c41", "#fdd835", "#3949ab")
_NAME = re.compile(r"^[a-z][a-z0-9_\- ]{0,39}$")
_COLOR = re.compile(r"^#[0-9a-f]{6}$")


class SchemaError(ValueError):
    """A class list that cannot be used, with the reason."""


@dataclass(frozen=True)
class ClassSchema:
    """Ordered class names and display colours; ``version`` grows with each edit."""

    names: tuple[str, ...]
    colors: tuple[str, ...]
    version: int = 1

    def __post_init__(self) -> None:
        if not self.names:
            raise SchemaError("The class list is empty: give at least one class, e.g. background.")
        if len(self.names) >= UNLABELLED:
            raise SchemaError(f"At most {UNLABELLED - 1} classes are supported.")
        if len(self.colors) != len(self.names):
            raise SchemaError("Give exactly one colour per class.")
        for name in self.names:
            if not _NAME.match(name) or name == UNLABELLED_NAME:
                raise SchemaError(
                    f"Class name {name!r} is not allowed: use 1-40 lower-case letters, digits, "
                    f"space, '-' or '_', starting with a letter, and not {UNLABELLED_NAME!r}."
                )
        if len(set(self.names)) != len(self.names):
            raise SchemaError(f"Class names repeat: {', '.join(self.names)}.")
        for color in self.colors:
            if not _COLOR.match(color):
                raise SchemaError(f"Colour {color!r} is not of the form #rrggbb.")

    @classmethod
    def from_names(cls, names: list[str] | tuple[str, ...], version: int = 1) -> ClassSchema:
        """Schema with the default colour of each known name and distinct colours for the rest."""
        cleaned = tuple(n.strip().lower() for n in names if n.strip())
        extra = iter(_EXTRA_COLORS * 40)
        colors = tuple(DEFAULT_COLORS.get(n) or next(extra) for n in cleaned)
        return cls(cleaned, colors, version)

    def index(self, name: str) -> int:
        """Class index of ``name``; ``unlabelled`` maps to :data:`UNLABELLED`."""
        if name == UNLABELLED_NAME:
            return UNLABELLED
        try:
            return self.names.index(name)
        except ValueError:
            valid = ", ".join((*self.names, UNLABELLED_NAME))
            raise SchemaError(f"Unknown class {name!r}; the classes are: {valid}.") from None

    def name(self, index: int) -> str:
        """Class name of a mask value."""
        return UNLABELLED_NAME if index == UNLABELLED else self.names[index]

    def rgb(self, index: int) -> tuple[int, int, int]:
        """Colour of a class as an RGB triple."""
        c = self.colors[index]
        return int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)

    def palette(self) -> np.ndarray:
        """Lookup table from mask value to colour.

        Shape:
            (256, 3) uint8; unlabelled and unused values are black.
        """
        lut = np.zeros((256, 3), dtype=np.uint8)
        for i in range(len(self.names)):
            lut[i] = self.rgb(i)
        return lut
