"""Brush colours as the canvas gives them (``#rrggbb``, ``rgb()``, ``rgba()``, CSS names),
and the map from a colour to the class it paints."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from PIL import ImageColor

from dataset.schema import UNLABELLED


def _parse_color(value: Any) -> tuple[tuple[int, int, int], float] | None:
    """(rgb, alpha) of a CSS colour as fabric keeps it; None for no paint."""
    if value is None or not isinstance(value, str):
        return None
    text = value.strip().lower()
    if text in ("", "transparent", "none"):
        return None
    match = re.fullmatch(r"rgba?\(([^)]*)\)", text)
    if match:
        parts = [p for p in re.split(r"[\s,/]+", match.group(1)) if p]
        if len(parts) not in (3, 4):
            raise ValueError(f"Cannot read the colour {value!r}.")
        rgb = tuple(
            round(float(p[:-1]) * 2.55) if p.endswith("%") else round(float(p)) for p in parts[:3]
        )
        alpha = 1.0
        if len(parts) == 4:
            a = parts[3]
            alpha = float(a[:-1]) / 100 if a.endswith("%") else float(a)
        return (rgb[0], rgb[1], rgb[2]), alpha
    try:
        parsed = ImageColor.getrgb(text)
    except ValueError:
        raise ValueError(f"Cannot read the colour {value!r}.") from None
    alpha = parsed[3] / 255 if len(parsed) == 4 else 1.0
    return (parsed[0], parsed[1], parsed[2]), alpha


def _rgb_to_hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(max(0, min(255, int(c))) for c in rgb))


def _hex_to_rgb(text: str) -> tuple[int, int, int]:
    return int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)


def _palette(color_to_class: Mapping[str, int]) -> dict[str, int]:
    palette: dict[str, int] = {}
    for colour, index in color_to_class.items():
        parsed = _parse_color(colour)
        if parsed is None:
            raise ValueError(f"color_to_class has a transparent colour {colour!r}.")
        if not 0 <= int(index) <= UNLABELLED:
            raise ValueError(f"Class index {index} for {colour!r} is outside 0..255.")
        key = _rgb_to_hex(parsed[0])
        if key in palette and palette[key] != int(index):
            raise ValueError(f"Colour {colour!r} is mapped to two classes.")
        palette[key] = int(index)
    if not palette:
        raise ValueError("color_to_class is empty: map each brush colour to its class index.")
    return palette
