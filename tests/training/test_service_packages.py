"""The two rule layers, ``training.service`` and ``training.diagnosis.service``, are packages of
one module per workflow (issue #10) that still answer every import the single modules did."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from training.kinds import JOB_KINDS

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("training.service", "training.diagnosis.service")
MAX_LINES = 500


def workflow_modules(package: str) -> list[str]:
    found = importlib.import_module(package).__path__
    return [
        f"{package}.{m.name}" for m in pkgutil.iter_modules(found) if not m.name.startswith("_")
    ]


@pytest.mark.parametrize("package", PACKAGES)
def test_the_package_re_exports_every_public_name_of_its_modules(package: str) -> None:
    pkg = importlib.import_module(package)
    missing = []
    for name in workflow_modules(package):
        module = importlib.import_module(name)
        for public in module.__all__:
            if public not in pkg.__all__ or getattr(pkg, public) is not getattr(module, public):
                missing.append(f"{name}.{public}")
    assert missing == []
    assert sorted(pkg.__all__) == sorted(set(pkg.__all__))


@pytest.mark.parametrize("package", PACKAGES)
def test_each_workflow_module_stays_small(package: str) -> None:
    sizes = {
        name: len(Path(importlib.import_module(name).__file__).read_text().splitlines())
        for name in workflow_modules(package)
    }
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_the_rule_layers_import_light() -> None:
    """The pages and CLIs import the services at start: no model library, no Streamlit."""
    code = (
        "import sys, training.service, training.diagnosis.service; "
        "print(sorted(m for m in ('torch', 'streamlit', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("target", sorted(JOB_KINDS.values()))
def test_targets_of_jobs_queued_before_the_split_still_resolve(target: str) -> None:
    """A job record on disk names its ``module:function`` target; one written before the
    split (``training.service:segment_job``: the package, not its module) must still run."""
    module, function = target.split(":")
    package = module.rsplit(".", 1)[0]
    assert package in PACKAGES
    assert getattr(importlib.import_module(package), function) is getattr(
        importlib.import_module(module), function
    )
