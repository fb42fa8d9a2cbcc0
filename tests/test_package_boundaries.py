"""The packages stay UI-free and light: the CLI, the job processes and the tests import them
without Streamlit, and without the canvas component (which raises outside a Streamlit run)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dataset", "training", "model_zoo")


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        names.append(package)
        for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
            if not info.name.endswith("__main__"):
                names.append(info.name)
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_importing_every_module_leaves_streamlit_out(package: str) -> None:
    modules = [m for m in _modules() if m == package or m.startswith(f"{package}.")]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('streamlit', 'streamlit_drawable_canvas'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"{package} pulls in: {out.stdout.strip()}"


def test_packages_never_import_streamlit_in_source() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for package in PACKAGES
        for p in (ROOT / package).rglob("*.py")
        if any(
            line.strip().startswith(("import streamlit", "from streamlit"))
            for line in p.read_text(encoding="utf-8").splitlines()
        )
    ]
    assert offenders == []
