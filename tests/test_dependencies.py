"""Packages depend one way (issue #10): every module's imports, read from its source with
``ast`` (function-level lazy imports included), against the rules of the house layout."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL_LIBRARIES = ("torch", "segmentation_models_pytorch", "safetensors.torch", "timm")


def imports_of(path: Path) -> set[str]:
    """Dotted names a module imports anywhere in it (``from x import y`` gives ``x`` and
    ``x.y``, so ``from safetensors import torch`` is seen as ``safetensors.torch``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    """``file: name`` for each import in ``package`` of a forbidden module or its submodules."""
    out = []
    files = [ROOT / package] if package.endswith(".py") else sorted((ROOT / package).rglob("*.py"))
    for path in files:
        for name in sorted(imports_of(path)):
            if any(name == f or name.startswith(f"{f}.") for f in forbidden):
                out.append(f"{path.relative_to(ROOT)}: {name}")
    return out


def test_the_import_reader_sees_lazy_and_from_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import os\n"
        "def f():\n"
        "    from training.service import x\n"
        "    import torch.nn\n"
        "    from safetensors import torch as st\n"
        "from . import sibling\n"
    )
    names = imports_of(module)
    assert {"os", "training.service", "torch.nn", "safetensors.torch"} <= names
    assert "sibling" not in names  # relative imports stay inside their package


def test_dataset_imports_no_training_model_zoo_or_pages() -> None:
    assert offenders("dataset", ("training", "model_zoo", "pages", "app")) == []


def test_model_zoo_imports_no_training_and_no_model_library() -> None:
    assert offenders("model_zoo", ("training", "pages", "app", *MODEL_LIBRARIES)) == []


def test_training_imports_no_pages() -> None:
    assert offenders("training", ("pages", "app")) == []


def test_only_pages_and_the_app_import_streamlit() -> None:
    """Every Python file of the project outside ``pages/``, ``app.py`` and the tests (which
    drive pages with ``AppTest``) stays free of Streamlit."""
    tops = sorted(
        p.name
        for p in ROOT.iterdir()
        if not p.name.startswith(".")
        and p.name not in ("pages", "app.py", "tests")
        and (p.suffix == ".py" or (p.is_dir() and any(p.rglob("*.py"))))
    )
    assert {"dataset", "training", "model_zoo"} <= set(tops)
    found = [o for top in tops for o in offenders(top, ("streamlit", "streamlit_drawable_canvas"))]
    assert found == []


def test_only_the_cluster_engine_imports_ray() -> None:
    """Ray is optional (requirements-ray.txt): a machine without it runs everything else."""
    tops = ("dataset", "model_zoo", "pages", "app.py")
    found = [o for top in tops for o in offenders(top, ("ray",))]
    training = [o for o in offenders("training", ("ray",)) if not o.startswith("training/cluster/")]
    assert found + training == []
