"""Tests for the ``diagnosis`` commands, run through the same argparse wiring as
``python -m training``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from model_zoo import Zoo
from tests._accounts import add_account
from tests.training._diagnosis_data import FAST, pima_csv, visits_csv, write_mapping
from training.diagnosis import cli
from training.diagnosis.registry import Registry

FAST_ARGS = [
    "--max-epochs",
    str(FAST["max_epochs"]),
    "--patience",
    str(FAST["patience"]),
    "--inner-folds",
    str(FAST["inner_folds"]),
    "--hidden",
    "8",
]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny full-batch fits run fastest on one thread, above all on a busy machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Parse like ``python -m training``, call the stored handler; (exit code, out, err)."""
    parser = argparse.ArgumentParser(prog="python -m training")
    cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["diagnosis", *argv])
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_rules_json_has_one_verdict_per_guideline(capsys: pytest.CaptureFixture[str]) -> None:
    doc = run_json(
        capsys,
        "rules",
        *("--hba1c", "6.6", "--hba1c-unit", "percent", "--fpg", "126", "--glucose-unit", "mg/dL"),
    )
    assert set(doc) == {"measurements", "gdm_screen_cutoff_mgdl", "guidelines", "disclaimer"}
    assert "not a diagnosis" in doc["disclaimer"]
    assert doc["measurements"] == [
        {"measurement": "hba1c", "value": 6.6, "unit": "percent"},
        {"measurement": "fpg", "value": 126.0, "unit": "mg/dL"},
    ]
    assert list(doc["guidelines"]) == ["WHO", "ADA", "NICE"]
    for result in doc["guidelines"].values():
        assert set(result) == {"verdict", "repeat_test", "fired", "notes"}
        assert result["verdict"] == "diabetes"
    pregnant = run_json(capsys, "rules", "--ogtt", "8.6", "--glucose-unit", "mmol/L", "--pregnant")
    assert pregnant["guidelines"]["ADA"]["verdict"] == "gestational diabetes"


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (("--fpg", "95"), "--glucose-unit"),
        (("--ogtt100-2h", "160", "--pregnant"), "--glucose-unit"),
        (("--hba1c", "6.5"), "--hba1c-unit"),
        (("--hba1c", "48", "--glucose-unit", "mg/dL"), "--hba1c-unit"),
    ],
)
def test_a_value_without_its_unit_is_refused_naming_the_flag(
    capsys: pytest.CaptureFixture[str], argv, flag
) -> None:
    code, out, err = run(capsys, "rules", *argv, "--json")
    assert code == 2 and out == ""
    assert flag in err and "No unit is assumed" in err


def test_rare_glucose_needs_confirm_unit(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "rules", "--fpg", "35", "--glucose-unit", "mmol/L")
    assert code == 1 and "--confirm-unit" in err and "mg/dL" in err
    doc = run_json(capsys, "rules", "--fpg", "35", "--glucose-unit", "mmol/L", "--confirm-unit")
    assert any(n.startswith("Critical value") for n in doc["guidelines"]["ADA"]["notes"])


def test_rules_text_says_it_is_decision_support(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "rules", "--hba1c", "48", "--hba1c-unit", "mmol/mol")
    assert code == 0
    assert "ADA: diabetes" in out and "not a diagnosis" in out


def test_rules_refuses_an_impossible_value(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "rules", "--fpg", "300", "--glucose-unit", "mmol/L", "--json")
    assert code == 1 and out == ""
    assert "fpg" in err and "mg/dL" in err


def test_import_visits_preview_then_import(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ws = str(tmp_path / "ws")
    csv = visits_csv(tmp_path / "v.csv", 3)
    rows = csv.read_text().splitlines()
    cells = rows[2].split(",")
    cells[4] = "31"  # HbA1c 31 % cannot be real (file row 3: the header is row 1)
    rows[2] = ",".join(cells)
    csv.write_text("\n".join(rows) + "\n")
    mapping = write_mapping(tmp_path / "map.json")

    code, out, _ = run(
        capsys,
        "import-visits",
        str(csv),
        "--mapping",
        str(mapping),
        "--preview",
        "--json",
        "--workspace",
        ws,
    )
    doc = json.loads(out)
    assert code == 1 and doc["preview"] is True
    assert (doc["good"], doc["refused"]) == (5, 1)
    assert doc["errors"] == [{"row": 3, "column": "A1c", "message": doc["errors"][0]["message"]}]
    assert Registry.open(ws).visits() == []

    code, out, _ = run(
        capsys, "import-visits", str(csv), "--mapping", str(mapping), "--json", "--workspace", ws
    )
    doc = json.loads(out)
    assert code == 1 and (doc["added"], doc["refused"], doc["diagnoses_added"]) == (5, 1, 5)
    assert len(Registry.open(ws).visits()) == 5


def test_train_predict_evaluate_on_a_pima_csv(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ws = str(tmp_path / "ws")
    csv = str(pima_csv(tmp_path / "pima.csv"))
    first = run_json(
        capsys,
        "train",
        "--csv",
        csv,
        "--format",
        "pima",
        "--folds",
        "2",
        *FAST_ARGS,
        "--workspace",
        ws,
    )
    assert first["current"] is True and first["classes"] == ["no diabetes", "diabetes"]
    assert Zoo(ws).get(first["model_id"]).kind == "diagnosis"
    assert 0.0 <= first["metrics"]["roc_auc"] <= 1.0
    second = run_json(
        capsys,
        "train",
        "--csv",
        csv,
        "--format",
        "pima",
        "--model",
        "logreg",
        "--folds",
        "0",
        *FAST_ARGS,
        "--workspace",
        ws,
    )
    assert second["current"] is False

    doc = run_json(capsys, "predict", "--csv", csv, "--format", "pima", "--workspace", ws)
    assert {"rows", "metrics"} <= set(doc)
    assert doc["model_id"] == first["model_id"]
    row = doc["rows"][0]
    assert set(row) >= {"probabilities", "predicted"}
    assert set(row["probabilities"]) == {"no diabetes", "diabetes"}
    assert {"roc_auc", "accuracy"} <= set(doc["metrics"])
    chosen = run_json(
        capsys,
        "predict",
        "--csv",
        csv,
        "--format",
        "pima",
        "--model",
        second["model_id"],
        "--workspace",
        ws,
    )
    assert chosen["model_id"] == second["model_id"]
    # The outcome the model predicts is named, in JSON and in the text.
    assert "within about five years" in doc["outcome"]
    code, out, _ = run(capsys, "predict", "--csv", csv, "--format", "pima", "--workspace", ws)
    assert code == 0 and "within about five years" in out and "as defined above" in out

    report = run_json(
        capsys,
        "evaluate",
        "--csv",
        csv,
        "--format",
        "pima",
        "--folds",
        "2",
        "--repeats",
        "1",
        *FAST_ARGS,
        "--workspace",
        ws,
    )
    assert set(report["models"]) == {"mlp", "logreg"} and report["n_rows"] == 60
    assert "not a diagnosis" in report["disclaimer"]


def test_predict_without_a_model_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    csv = str(pima_csv(tmp_path / "pima.csv"))
    code, _, err = run(
        capsys, "predict", "--csv", csv, "--format", "pima", "--workspace", str(tmp_path / "ws")
    )
    assert code == 1 and "train one" in err


def test_patient_visit_confirm_show_forecast(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ws = ["--workspace", str(tmp_path / "ws")]
    code, _, err = run(capsys, "add-patient", "Jane Doe", *ws)
    assert code == 1 and "pseudonym" in err
    patient = run_json(
        capsys, "add-patient", "P-100", "--sex", "female", "--birth-year", "1975", *ws
    )
    assert patient["patient"] == "P-100"
    ids = []
    for date, a1c in (("2019-01-10", "39"), ("2020-01-10", "42"), ("2021-01-10", "45")):
        visit = run_json(
            capsys,
            "add-visit",
            "P-100",
            "--date",
            date,
            "--hba1c",
            a1c,
            "--hba1c-unit",
            "mmol/mol",
            *ws,
        )
        ids.append(visit["visit_id"])
    code, _, err = run(capsys, "add-visit", "P-100", "--fpg", "0", "--glucose-unit", "mg/dL", *ws)
    assert code == 1 and "fpg" in err
    code, _, err = run(capsys, "add-visit", "P-100", "--fpg", "95", *ws)
    assert code == 2 and "--glucose-unit" in err

    # Confirming names an enabled account whose role may confirm (issue 12).
    add_account(tmp_path / "ws", "dr-a", "clinician")
    add_account(tmp_path / "ws", "dr-b", "admin")
    add_account(tmp_path / "ws", "tech", "annotator")
    code, _, err = run(capsys, "confirm", "P-100", ids[-1], "normal", "--by", "dr-x", *ws)
    assert code == 1 and "no account 'dr-x'" in err
    code, _, err = run(capsys, "confirm", "P-100", ids[-1], "normal", "--by", "tech", *ws)
    assert code == 1 and "may not confirm diagnoses" in err
    code, _, err = run(capsys, "confirm", "P-100", ids[-1], "normal", "--by", " ", *ws)
    assert code == 1 and "--by: name the account of the clinician" in err
    confirmed = run_json(capsys, "confirm", "P-100", ids[-1], "prediabetes", "--by", "dr-a", *ws)
    assert (confirmed["diagnosis"], confirmed["revision"]) == ("prediabetes", 1)
    corrected = run_json(capsys, "confirm", "P-100", ids[-1], "normal", "--by", "dr-b", *ws)
    assert corrected["revision"] == 2
    code, _, err = run(capsys, "confirm", "P-999", ids[-1], "normal", "--by", "dr-b", *ws)
    assert code == 1 and "belongs to patient P-100" in err

    shown = run_json(capsys, "show", "P-100", *ws)
    assert [v["diagnosis"] for v in shown["visits"]] == [None, None, "normal"]
    assert "not a diagnosis" in shown["disclaimer"]
    first = shown["visits"][0]
    assert [(m["value"], m["unit"]) for m in first["measurements"]] == [(39.0, "mmol/mol")]
    assert first["guidelines"]["ADA"]["verdict"] == "prediabetes"
    assert first["guidelines"]["NICE"]["verdict"] == "normal"
    assert shown["visits"][1]["guidelines"]["NICE"]["verdict"] == "prediabetes"  # 42 mmol/mol
    assert {r["repeat_test"] for r in first["guidelines"].values()} == {"not applicable"}
    # The registry's history keeps what each guideline said at each confirmation.
    history = shown["visits"][2]["history"]
    assert [h["diagnosis"] for h in history] == ["prediabetes", "normal"]
    assert history[0]["guidelines"]["ADA"] == {
        "verdict": "prediabetes",
        "repeat_test": "not applicable",
    }
    code, out, _ = run(capsys, "show", "P-100", *ws)
    assert "repeat test: not applicable" in out and "guidelines then: WHO" in out

    fc = run_json(capsys, "forecast", "P-100", "--today", "2021-01-10", *ws)
    assert fc["patient"] == "P-100" and fc["series"]["hba1c"]["status"] == "fitted"
    assert "not a diagnosis" in fc["disclaimer"]
    code, out, _ = run(capsys, "forecast", "P-100", "--today", "2021-01-10", *ws)
    assert "95 % range" in out
    assert fc["series"]["hba1c"]["crossings"]["diabetes"]["status"] == "projected"
    code, _, err = run(capsys, "forecast", "P-404", *ws)
    assert code == 1 and "No patient" in err


def test_anaemia_entered_with_a_visit_is_stored_and_keeps_hba1c_out(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--anaemia on add-visit is kept with the visit, so every later verdict leaves HbA1c out."""
    ws = ["--workspace", str(tmp_path / "ws")]
    run_json(capsys, "add-patient", "P-200", "--sex", "female", "--birth-year", "1970", *ws)
    a1c = ["--hba1c", "7.0", "--hba1c-unit", "percent", "--fpg", "5.0", "--glucose-unit", "mmol/L"]
    plain = run_json(capsys, "add-visit", "P-200", "--date", "2024-03-01", *a1c, *ws)
    flagged = run_json(capsys, "add-visit", "P-200", "--date", "2024-06-01", *a1c, "--anaemia", *ws)
    assert plain["anaemia_or_hb_disorder"] is False
    assert flagged["anaemia_or_hb_disorder"] is True
    # HbA1c 7.0 % alone is in the diabetes range; with anaemia only the normal FPG counts.
    assert plain["guidelines"]["ADA"]["verdict"] == "diabetes"
    assert flagged["guidelines"]["ADA"]["verdict"] == "normal"
    assert any("HbA1c left out" in n for n in flagged["guidelines"]["ADA"]["notes"])
    shown = {v["date"]: v for v in run_json(capsys, "show", "P-200", *ws)["visits"]}
    assert shown["2024-06-01"]["anaemia_or_hb_disorder"] is True
    assert shown["2024-06-01"]["guidelines"]["ADA"]["verdict"] == "normal"
    assert shown["2024-03-01"]["guidelines"]["ADA"]["verdict"] == "diabetes"


def test_diagnosis_needs_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(capsys)
    assert exit_info.value.code == 2


def test_python_m_training_runs_the_diagnosis_commands() -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [
            *(sys.executable, "-m", "training", "diagnosis", "rules"),
            *("--hba1c", "5.9", "--hba1c-unit", "percent", "--json"),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["guidelines"]["ADA"]["verdict"] == "prediabetes"


def test_the_screen_cut_off_comes_from_the_workspace_settings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from dataset.settings import set_workspace_setting

    ws = ["--workspace", str(tmp_path / "ws")]
    argv = ["rules", "--gct", "132", "--glucose-unit", "mg/dL", "--pregnant", *ws]
    assert run_json(capsys, *argv)["guidelines"]["ADA"]["verdict"] == "normal"
    set_workspace_setting(tmp_path / "ws", "gdm_screen_cutoff_mgdl", 130)
    doc = run_json(capsys, *argv)
    assert doc["gdm_screen_cutoff_mgdl"] == 130
    assert doc["guidelines"]["ADA"]["verdict"] == "insufficient data"
    assert any("50 g screen positive" in n for n in doc["guidelines"]["ADA"]["notes"])
