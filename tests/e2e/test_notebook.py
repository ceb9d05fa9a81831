"""The results notebook, executed as a data scientist opens it after `make run` and a tuning
study: in the notebooks/ folder of the small run's project copy (helpers.py), through the
Kedro catalog."""

from __future__ import annotations

import shutil

import nbformat
from nbclient import NotebookClient

from tests.conftest import PROJECT_ROOT
from tests.e2e.helpers import store


def _text(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        data = output.get("data", {})
        parts.append(data.get("text/plain", ""))
    return "".join(parts)


def test_the_committed_notebook_has_no_outputs():
    notebook = nbformat.read(PROJECT_ROOT / "notebooks" / "results.ipynb", as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


def test_the_results_notebook_runs_clean_after_a_run_and_a_study(
    project, first_run, first_study, monkeypatch
):
    for variable in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "true")
    # The small run's outputs, as `make run` leaves them: the tests that ran before in this
    # project may have run it again with other parameters (without the scratch baseline).
    for layer in ("07_model_output", "08_reporting"):
        shutil.copytree(first_run.data / layer, project / "data" / layer, dirs_exist_ok=True)
    folder = project / "notebooks"
    shutil.copytree(PROJECT_ROOT / "notebooks", folder, dirs_exist_ok=True)
    notebook = nbformat.read(folder / "results.ipynb", as_version=4)
    # Any cell error fails the test (nbclient raises CellExecutionError with the traceback).
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": folder}}
    ).execute()

    texts = [_text(cell) for cell in notebook.cells if cell.cell_type == "code"]
    everything = "\n".join(texts)
    assert "ensemble" in texts[2] and "test_accuracy" in texts[2]  # the metrics table
    assert f"MLflow store: {store(project)}" in everything
    assert "fashion-mnist-transfer" in everything  # registered models and their champion
    images = sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )
    assert images >= 3  # learning curves, confusion matrices, misclassified images
    # The tuning cell shows the study's trials and its best one.
    (tuning,) = [text for text in texts if "validation accuracy" in text and "best: trial" in text]
    assert "COMPLETE" in tuning and "No tuning study yet" not in everything
