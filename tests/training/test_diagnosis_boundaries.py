"""The boundary table of ``_boundaries.py`` through every way in: ``diagnosis rules``, a stored
visit (``add-visit`` then ``show``), and a CSV import (then ``show``). All three share one path,
so each must give the verdict the guideline gives; the pure engine is tested in
``test_criteria.py``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import pytest

from dataset.roles import Actor
from tests.training._boundaries import POINTS, Point, point_id, visits
from training.diagnosis import cli
from training.diagnosis.criteria import MEASUREMENTS
from training.diagnosis.registry import Registry, VisitMapping
from training.diagnosis.service import patient_summary

FLAGS = cli.FLAGS
VISITS_PER_WORKSPACE = 8


TESTER = Actor("tester", "clinician")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    parser = argparse.ArgumentParser(prog="python -m training")
    cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["diagnosis", *argv, "--json"])
    code = args.func(args)
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def _argv(point: Point) -> list[str]:
    argv: list[str] = []
    for name, value in point.values().items():
        argv += [FLAGS[name], repr(value)]
    for key, unit in point.units().items():
        argv += [f"--{key.replace('_', '-')}", unit]
    if point.pregnant:
        argv.append("--pregnant")
    if point.symptoms:
        argv.append("--symptoms")
    return argv


@pytest.mark.parametrize("point", POINTS, ids=point_id)
def test_boundary_through_rules(capsys: pytest.CaptureFixture[str], point: Point) -> None:
    doc = _run(capsys, "rules", *_argv(point))
    assert doc["guidelines"][point.guideline]["verdict"] == point.verdict


def _expected(groups: dict[tuple, list[Point]]) -> list[dict[str, str]]:
    return [{p.guideline: p.verdict for p in points} for points in groups.values()]


def _verdicts(summary: dict) -> list[dict[str, str]]:
    return [
        {g: r["verdict"] for g, r in visit["guidelines"].items()} for visit in summary["visits"]
    ]


def _check(expected: list[dict[str, str]], got: list[dict[str, str]], groups) -> None:
    wrong = [
        (key, want, have)
        for key, want, have in zip(groups, expected, got, strict=True)
        if any(have[g] != v for g, v in want.items())
    ]
    assert not wrong, wrong[:5]


@pytest.mark.slow
def test_boundary_through_stored_visits(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Every visit of the table through ``add-visit``, then every verdict through ``show``.

    One patient per workspace, visits 100 days apart: an earlier visit can only change
    ``repeat_test`` (within 90 days), never a verdict.
    """
    groups = visits()
    keys = list(groups)
    got: list[dict[str, str]] = []
    # A few visits per workspace: each Delta read scans every commit's file, and a long
    # history would make this test slow without testing more.
    for start in range(0, len(keys), VISITS_PER_WORKSPACE):
        ws = ["--workspace", str(tmp_path / f"ws{start}")]
        _run(capsys, "add-patient", "P-1", "--sex", "female", *ws)
        day = dt.date(1960, 1, 1)
        for i, key in enumerate(keys[start : start + VISITS_PER_WORKSPACE]):
            date = day + dt.timedelta(days=100 * i)
            argv = _argv(groups[key][0])
            added = _run(capsys, "add-visit", "P-1", "--date", date.isoformat(), *argv, *ws)
            assert added["date"] == date.isoformat()
        shown = _run(capsys, "show", "P-1", *ws)
        got += _verdicts(shown)
        if start == 0:
            # Values are shown as entered, in their own unit.
            first = groups[keys[0]][0]
            entered = {
                (m["measurement"], m["value"], m["unit"])
                for m in shown["visits"][0]["measurements"]
            }
            assert (first.field, first.value, first.unit) in entered
    assert len(got) == len(groups)
    _check(_expected(groups), got, groups)


def test_boundary_through_csv_import(tmp_path: Path) -> None:
    """The whole table as one CSV (units in unit columns), imported, then ``show``'s function."""
    groups = visits()
    names = [n for n in MEASUREMENTS]
    header = ["patient", "date", "pregnant", "symptoms", "glucose_unit", "hba1c_unit", *names]
    lines = [",".join(header)]
    day = dt.date(1960, 1, 1)
    for i, points in enumerate(groups.values()):
        p = points[0]
        units = p.units()
        values = p.values()
        cells = [
            "P-1",
            (day + dt.timedelta(days=100 * i)).isoformat(),
            "yes" if p.pregnant else "no",
            "yes" if p.symptoms else "no",
            units.get("glucose_unit", ""),
            units.get("hba1c_unit", ""),
            *(repr(values[n]) if n in values else "" for n in names),
        ]
        lines.append(",".join(cells))
    mapping = VisitMapping.model_validate(
        {
            "columns": {
                "patient": "patient",
                "date": "date",
                "pregnant": "pregnant",
                "symptoms": "symptoms",
                **{n: n for n in names},
            },
            "unit_columns": {"glucose": "glucose_unit", "hba1c": "hba1c_unit"},
        }
    )
    registry = Registry.open(tmp_path / "ws")
    report = registry.import_visits(("\n".join(lines) + "\n").encode(), mapping, actor=TESTER)
    assert not report.errors, report.errors[:3]
    assert len(report.added) == len(groups)
    _check(_expected(groups), _verdicts(patient_summary(registry, "P-1")), groups)
