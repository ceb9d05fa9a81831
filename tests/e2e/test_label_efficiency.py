"""End to end: `kedro run --pipeline label_efficiency` on the small run's stage data and
pretrained model (tests/e2e/helpers.py), with a two-size, one-seed study from a conf environment (a
list cannot be passed through --params)."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import yaml

from tests.e2e.helpers import client_of, kedro

QUICK = "transfer.epochs=1,transfer.fine_tune_epochs=1"


def _environment(project, name: str, study: dict) -> str:
    folder = project / "conf" / name
    folder.mkdir(exist_ok=True)
    (folder / "parameters_label_efficiency.yml").write_text(
        yaml.safe_dump({"label_efficiency": study})
    )
    return name


def test_the_study_writes_its_table_plot_and_mlflow_records(project, first_run):
    env = _environment(
        project,
        "label_quick",
        {
            "labels_per_class": [5, 20],
            "seeds": [0],
            "min_epoch_images": 256,
            # the shipped arms merge in: leave the shifted one out
            "transfer_recipes": {"transfer": {}, "transfer_shifted": None},
        },
    )
    result = kedro(
        project, "run", "--pipeline", "label_efficiency", "--env", env, "--params", QUICK
    )
    assert result.returncode == 0, result.output[-5000:]
    reports = project / "data" / "08_reporting" / "label_efficiency"
    runs = pd.read_csv(reports / "runs.csv")
    assert list(zip(runs["images_per_class"], runs["arm"], strict=True)) == [
        (5, "transfer"),
        (5, "scratch"),
        (20, "transfer"),
        (20, "scratch"),
    ]
    assert set(runs["seed"]) == {0}
    # Real counts on the stage's test images: each accuracy is a whole number of them.
    stage = pickle.loads((project / "data" / "05_model_input" / "transfer_data.pkl").read_bytes())
    correct = runs["test_accuracy"] * len(stage["test_labels"])
    np.testing.assert_allclose(correct, correct.round(), atol=1e-6)
    assert runs["test_accuracy"].between(0, 1).all()
    assert (runs["epochs"] == 2).all()  # 1 head + 1 fine-tuning epoch, and as many from scratch
    findings = json.loads((reports / "findings.json").read_text())
    assert set(findings["transfer"]["lead_in_points"]) == {"5", "20"}
    assert (reports / "test_accuracy.png").stat().st_size > 10_000

    run = result.runs[0]
    client = client_of(project)
    history = client.get_metric_history(run.info.run_id, "label_efficiency/transfer/test_accuracy")
    by_step = {m.step: m.value for m in history}
    expected = runs[runs["arm"] == "transfer"].set_index("images_per_class")["test_accuracy"]
    assert by_step == {5: expected[5], 20: expected[20]}
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "label_efficiency")}
    assert {
        "label_efficiency/runs.csv",
        "label_efficiency/summary.csv",
        "label_efficiency/findings.json",
        "label_efficiency/test_accuracy.png",
    } <= artifacts
