"""End to end: `kedro run` as a user runs it, in a scratch copy of the project, on a small slice."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fashion_transfer.datasets import TorchModelDataset
from tests.conftest import PROJECT_ROOT

SMALL_SLICE = "split.max_examples_per_stage=1500,pretrain.epochs=2,transfer.epochs=2"


def _data_source() -> str | None:
    """FASHION_MNIST_SOURCE as given (made absolute), else the project's own raw files, else
    nothing: the run then downloads from the official mirror, as a user's would."""
    source = os.environ.get("FASHION_MNIST_SOURCE")
    if source:
        return source if "://" in source else str(Path(source).resolve())
    raw = PROJECT_ROOT / "data" / "01_raw"
    return str(raw) if (raw / "train-images-idx3-ubyte.gz").exists() else None


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root)
    shutil.copytree(
        PROJECT_ROOT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__")
    )
    return root


def kedro(project: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)  # the scratch project keeps its own store
    env.pop("FASHION_MNIST_SOURCE", None)
    if source := _data_source():
        env["FASHION_MNIST_SOURCE"] = source
    return subprocess.run(
        [sys.executable, "-m", "kedro", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_transfer_without_pretrained_model_says_to_pretrain_first(project):
    result = kedro(project, "run", "--pipeline", "transfer", "--params", SMALL_SLICE)
    assert result.returncode != 0
    assert "kedro run --pipeline pretrain" in result.stdout + result.stderr
    assert not (project / "data" / "06_models" / "transfer.pt").exists()


def test_full_run_on_a_small_slice_writes_sane_reports(project):
    result = kedro(project, "run", "--params", SMALL_SLICE)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    reporting = project / "data" / "08_reporting"
    metrics = json.loads((reporting / "metrics.json").read_text())
    assert list(metrics) == ["pretrain", "transfer", "scratch"]
    for name, section in metrics.items():
        assert section["test_examples"] == 1500
        assert 0.5 < section["test_accuracy"] <= 1, (name, section["test_accuracy"])
        for key in ("macro_precision", "macro_recall", "macro_f1"):
            assert 0.4 < section[key] <= 1
        assert section["fit_verdict"] in {"good fit", "overfitting", "underfitting"}
        assert section["best_epoch"] in (1, 2)
        for folder, suffix in (
            ("confusion_matrix_plots", "png"),
            ("learning_curves", "png"),
            ("confusion_matrices", "csv"),
            ("classification_reports", "csv"),
        ):
            assert (reporting / folder / f"{name}.{suffix}").stat().st_size > 0
    assert set(json.loads((reporting / "fit_analysis.json").read_text())) == set(metrics)

    models = project / "data" / "06_models"
    assert TorchModelDataset(filepath=str(models / "pretrain.pt")).load().num_classes == 5
    assert TorchModelDataset(filepath=str(models / "transfer.pt")).load().num_classes == 5
    assert list(TorchModelDataset(filepath=str(models / "baselines.pt")).load()) == ["scratch"]
    history = json.loads(
        (project / "data" / "07_model_output" / "pretrain_history.json").read_text()
    )
    assert [row["epoch"] for row in history] == [1, 2]
