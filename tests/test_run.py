"""End to end: `kedro run` as a user runs it, in a scratch copy of the project (its own data/
and MLflow store in mlruns/), on a small slice of the real data."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from fashion_transfer.datasets import TorchModelDataset
from fashion_transfer.model_server import free_port, start_model_server, wait_until_up
from fashion_transfer.training import resolve_precision
from tests.conftest import PROJECT_ROOT

SMALL_SLICE = (
    "split.max_examples_per_stage=1500,pretrain.epochs=2,transfer.epochs=2,"
    "transfer.fine_tune_epochs=1"
)
MODELS = ("fashion-mnist-pretrain", "fashion-mnist-transfer", "fashion-mnist-ensemble")


def _data_source() -> str | None:
    """FASHION_MNIST_SOURCE as given (made absolute), else the project's own raw files, else
    nothing: the run then downloads from the official mirror, as a user's would."""
    source = os.environ.get("FASHION_MNIST_SOURCE")
    if source:
        return source if "://" in source else str(Path(source).resolve())
    raw = PROJECT_ROOT / "data" / "01_raw"
    return str(raw) if (raw / "train-images-idx3-ubyte.gz").exists() else None


def _copy_project(root: Path) -> Path:
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    shutil.copytree(
        PROJECT_ROOT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root)
    return root


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return _copy_project(tmp_path_factory.mktemp("project"))


def _env() -> dict[str, str]:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "MLFLOW_DISABLE_TELEMETRY": "true"}
    for variable in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID"):
        env.pop(variable, None)  # the scratch project keeps its own store
    env.pop("FASHION_MNIST_SOURCE", None)
    if source := _data_source():
        env["FASHION_MNIST_SOURCE"] = source
    return env


def kedro(
    project: Path, *args: str, timeout: float = 600, env: dict | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kedro", *args],
        cwd=project,
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _store(project: Path) -> str:
    return f"sqlite:///{project / 'mlruns' / 'mlflow.db'}"


def _client(project: Path) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=_store(project), registry_uri=_store(project))


def _runs(project: Path):
    client = _client(project)
    experiment = client.get_experiment_by_name("fashion-mnist-transfer")
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


@pytest.fixture(scope="module")
def first_run(project):
    """A transfer run with no pretrained model fails first; then a full run succeeds."""
    failed = kedro(project, "run", "--pipeline", "transfer", "--params", SMALL_SLICE)
    result = kedro(project, "run", "--params", SMALL_SLICE)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return failed, result


def test_transfer_without_pretrained_model_says_to_pretrain_first(project, first_run):
    failed, _ = first_run
    assert failed.returncode != 0
    output = failed.stdout + failed.stderr
    assert "Error: pretrain_model: There is no saved model" in output
    assert "kedro run --pipeline pretrain" in output
    assert "Traceback" not in output and "╭─" not in output
    assert _runs(project)[0].info.status == "FAILED"


def test_full_run_writes_sane_reports(project, first_run):
    reporting = project / "data" / "08_reporting"
    metrics = json.loads((reporting / "metrics.json").read_text())
    assert list(metrics) == ["pretrain", "transfer", "scratch", "ensemble"]
    for name, section in metrics.items():
        assert section["test_examples"] == 1500
        assert 0.5 < section["test_accuracy"] <= 1, (name, section["test_accuracy"])
        for key in ("macro_precision", "macro_recall", "macro_f1"):
            assert 0.4 < section[key] <= 1
        assert 0.5 < section["val_accuracy"] <= 1
        if name == "ensemble":  # built, not trained: no history, no fit verdict
            assert "fit_verdict" not in section
            continue
        assert section["fit_verdict"] in {"good fit", "overfitting", "underfitting"}
        assert section["best_epoch"] in ((1, 2) if name == "pretrain" else (1, 2, 3))
        for folder, suffix in (
            ("confusion_matrix_plots", "png"),
            ("learning_curves", "png"),
            ("misclassified", "png"),
            ("confusion_matrices", "csv"),
            ("classification_reports", "csv"),
        ):
            if folder == "learning_curves" and name == "ensemble":
                continue
            assert (reporting / folder / f"{name}.{suffix}").stat().st_size > 0
    assert set(json.loads((reporting / "fit_analysis.json").read_text())) == set(metrics) - {
        "ensemble"
    }

    models = project / "data" / "06_models"
    assert TorchModelDataset(filepath=str(models / "pretrain.pt")).load().num_classes == 5
    assert TorchModelDataset(filepath=str(models / "transfer.pt")).load().num_classes == 5
    assert list(TorchModelDataset(filepath=str(models / "baselines.pt")).load()) == ["scratch"]
    ensemble = TorchModelDataset(filepath=str(models / "ensemble.pt")).load()["ensemble"]
    assert len(ensemble.members) == 2 and ensemble.num_classes == 5
    history_file = project / "data" / "07_model_output" / "pretrain_history.json"
    assert [row["epoch"] for row in json.loads(history_file.read_text())] == [1, 2]
    history_file = project / "data" / "07_model_output" / "transfer_history.json"
    assert [row["epoch"] for row in json.loads(history_file.read_text())] == [1, 2, 3]


def test_mlflow_run_holds_params_metrics_artifacts_and_tags(project, first_run):
    run = _runs(project)[1]
    client = _client(project)
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["pipeline"] == "__default__" and tags["preset"] == "default"
    assert tags["mlflow.runName"].startswith("__default__ [default] ")
    assert {"git_commit", "git_dirty", "data_source"} <= set(tags)
    assert tags["data_source"] == _env().get("FASHION_MNIST_SOURCE", tags["data_source"])
    params = run.data.params
    assert params["pretrain.epochs"] == "2" and params["split.max_examples_per_stage"] == "1500"
    assert params["transfer.fine_tune_epochs"] == "1" and "transfer.scratch_baseline" in params
    assert params["pretrain.schedule"] == "onecycle"
    # The precision actually used: bfloat16 only where this machine computes it natively.
    machine_precision = resolve_precision("auto", torch.device("cpu"))
    assert params["runtime.training_precision"] == machine_precision
    for model in ("pretrain", "transfer", "scratch"):
        history = client.get_metric_history(run.info.run_id, f"{model}/val_accuracy")
        assert sorted(m.step for m in history) == ([1, 2] if model == "pretrain" else [1, 2, 3])
        for name in ("test_accuracy", "test_macro_precision", "test_macro_recall", "test_macro_f1"):
            assert 0 < run.data.metrics[f"{model}/{name}"] <= 1
    assert "pretrain/test_precision/T-shirt or top" in run.data.metrics
    assert "transfer/test_recall/Ankle boot" in run.data.metrics
    assert 0 < run.data.metrics["ensemble/test_accuracy"] <= 1
    assert 0 < run.data.metrics["ensemble/val_accuracy"] <= 1
    reports = {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
    assert {
        "reports/metrics.json",
        "reports/fit_analysis.json",
        "reports/confusion_matrices",
        "reports/confusion_matrix_plots",
        "reports/learning_curves",
        "reports/misclassified",
        "reports/classification_reports",
    } <= reports
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "reports/misclassified")}
    assert "reports/misclassified/misclassified/transfer.png" in plots or any(
        p.endswith("transfer.png") for p in plots
    )


def test_models_registered_with_champion_and_the_rule_holds_across_runs(project, first_run):
    client = _client(project)
    first = _runs(project)[1]
    for name in MODELS:
        champion = client.get_model_version_by_alias(name, "champion")
        assert str(champion.version) == "1" and champion.run_id == first.info.run_id
        assert first.data.tags[f"{name.split('-')[-1]}.promoted"] == "true"

    second = kedro(project, "run", "--params", SMALL_SLICE.replace("epochs=2", "epochs=1"))
    assert second.returncode == 0, second.stderr[-2000:]
    run = _runs(project)[2]
    for name in MODELS:
        stage = name.split("-")[-1]
        versions = {str(v.version): v for v in client.search_model_versions(f"name='{name}'")}
        assert set(versions) == {"1", "2"}
        accuracy = {k: float(v.tags["val_accuracy"]) for k, v in versions.items()}
        expected = "2" if accuracy["2"] > accuracy["1"] else "1"
        assert str(client.get_model_version_by_alias(name, "champion").version) == expected
        assert run.data.tags[f"{stage}.promoted"] == str(expected == "2").lower()
        assert run.data.tags[f"{stage}.promotion_reason"]


def test_failed_run_registers_nothing(project, first_run):
    before = {
        name: len(_client(project).search_model_versions(f"name='{name}'")) for name in MODELS
    }
    # Pretraining succeeds, then loading the pretrained model from the registry fails.
    result = kedro(
        project, "run", "--params", SMALL_SLICE + ",pretrained_model_uri=models:/missing@champion"
    )
    assert result.returncode != 0
    assert "Could not load the pretrained model 'models:/missing@champion'" in result.stderr
    assert _runs(project)[-1].info.status == "FAILED"
    after = {name: len(_client(project).search_model_versions(f"name='{name}'")) for name in MODELS}
    assert after == before


@pytest.mark.parametrize(
    "signal_number", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"]
)
def test_interrupted_run_is_killed_registers_nothing_and_keeps_models(
    project, first_run, signal_number
):
    models = project / "data" / "06_models"
    saved = {path.name: path.read_bytes() for path in models.glob("*.pt")}
    before = {
        name: len(_client(project).search_model_versions(f"name='{name}'")) for name in MODELS
    }
    run = subprocess.Popen(
        [sys.executable, "-m", "kedro", "run", "--params", "pretrain.epochs=50"],
        cwd=project,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # A shell starts background jobs with Ctrl-C ignored, and children inherit that; the
        # run under test must get Ctrl-C as a terminal user's run does.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 300
        for line in run.stdout:  # interrupt once training is under way
            if "pretrain epoch 1/50" in line or time.monotonic() > deadline:
                break
        run.send_signal(signal_number)
        output = run.communicate(timeout=120)[0]
    finally:
        run.kill()
    assert run.returncode != 0
    assert "Interrupted. The MLflow run is marked KILLED" in output
    assert _runs(project)[-1].info.status == "KILLED"
    after = {name: len(_client(project).search_model_versions(f"name='{name}'")) for name in MODELS}
    assert after == before
    assert {path.name: path.read_bytes() for path in models.glob("*.pt")} == saved


def test_transfer_can_start_from_the_registered_pretrained_champion(project, first_run):
    result = kedro(
        project,
        "run",
        "--pipeline",
        "transfer",
        "--params",
        SMALL_SLICE + ",pretrained_model_uri=models:/fashion-mnist-pretrain@champion",
    )
    assert result.returncode == 0, result.stdout[-2000:]


def test_predict_pipeline_classifies_a_folder_and_records_why_files_were_skipped(
    project, first_run, tmp_path
):
    data = pickle.loads((project / "data" / "05_model_input" / "transfer_data.pkl").read_bytes())
    folder = tmp_path / "photos"
    folder.mkdir()
    grey = data["test_images"][0]
    Image.fromarray(grey).save(folder / "grey.png")
    # The same item as a larger colour photo on a white background.
    photo = Image.fromarray(255 - grey).resize((84, 60)).convert("RGB")
    photo.save(folder / "colour.jpg", quality=95)
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.png").write_bytes((folder / "grey.png").read_bytes()[:40])

    result = kedro(project, "run", "--pipeline", "predict", "--params", f"predict_images={folder}")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    table = pd.read_csv(project / "data" / "07_model_output" / "image_predictions.csv")
    rows = table.set_index("file")
    assert sorted(rows.index) == ["broken.png", "colour.jpg", "grey.png", "notes.txt"]
    for name in ("broken.png", "notes.txt"):
        assert rows.loc[name, "error"].startswith("skipped: not a readable image")
        assert pd.isna(rows.loc[name, "class_name"])
    for name in ("grey.png", "colour.jpg"):
        assert pd.isna(rows.loc[name, "error"])
        assert rows.loc[name, "class_name"] in data["class_names"]
        assert 0 < rows.loc[name, "confidence"] <= 1
    assert rows.loc["grey.png", "label"] == data["source_classes"][data["test_labels"][0]]

    # The same folder through the ensemble's champion: the same files, its own confidences.
    result = kedro(
        project,
        "run",
        "--pipeline",
        "predict",
        "--params",
        f"predict_images={folder},predict_model=fashion-mnist-ensemble",
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    by_ensemble = pd.read_csv(project / "data" / "07_model_output" / "image_predictions.csv")
    assert list(by_ensemble["file"]) == list(table["file"])
    assert not np.allclose(by_ensemble["confidence"].dropna(), table["confidence"].dropna())


def test_concurrent_runs_on_one_tracking_store_all_finish_and_keep_the_registry_consistent(
    project, first_run, tmp_path
):
    """Two runs in the same project (the second waits for the first: they share data/) and
    one in another checkout writing to the same SQLite store at the same time."""
    other = _copy_project(tmp_path / "other-checkout")
    client = _client(project)
    before_runs = {run.info.run_id for run in _runs(project)}
    before = {name: len(client.search_model_versions(f"name='{name}'")) for name in MODELS}
    quick = (
        "split.max_examples_per_stage=600,pretrain.epochs=1,transfer.epochs=1,"
        "transfer.fine_tune_epochs=0,transfer.scratch_baseline=false"
    )
    launches = [
        (project, _env()),
        (project, _env()),
        (other, {**_env(), "MLFLOW_TRACKING_URI": _store(project)}),
    ]
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "kedro", "run", "--params", quick],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for folder, env in launches
    ]
    try:
        outputs = [run.communicate(timeout=600)[0] for run in runs]
    finally:
        for run in runs:
            run.kill()
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output[-3000:]
    assert sum("waiting for it to finish" in output for output in outputs[:2]) == 1

    new_runs = [run for run in _runs(project) if run.info.run_id not in before_runs]
    assert len(new_runs) == 3 and all(run.info.status == "FINISHED" for run in new_runs)
    # Same parameters, seed and thread count: the same metrics, to the last digit.
    accuracies = [
        (run.data.metrics["pretrain/test_accuracy"], run.data.metrics["transfer/test_accuracy"])
        for run in new_runs
    ]
    assert accuracies[0] == accuracies[1] == accuracies[2]
    # Without a scratch baseline there is no ensemble to register, and the run says so.
    ensemble = "fashion-mnist-ensemble"
    assert len(client.search_model_versions(f"name='{ensemble}'")) == before[ensemble]
    assert all(
        run.data.tags["ensemble.registered_model"] == "skipped: not built in this run"
        for run in new_runs
    )
    for name in MODELS[:2]:
        versions = client.search_model_versions(f"name='{name}'")
        assert len(versions) == before[name] + 3
        assert len({v.version for v in versions}) == len(versions)
        assert {v.run_id for v in versions} >= {run.info.run_id for run in new_runs}
        best = max(float(v.tags["val_accuracy"]) for v in versions)
        champion = client.get_model_version_by_alias(name, "champion")
        assert float(champion.tags["val_accuracy"]) == best


def _post(url: str, body: bytes, content_type: str | None = "application/json"):
    request = urllib.request.Request(url, data=body, method="POST")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_served_champion_classifies_real_images_and_rejects_bad_requests(project, first_run):
    port = free_port()
    env = {**_env(), "MLFLOW_TRACKING_URI": _store(project)}
    server = start_model_server("models:/fashion-mnist-transfer@champion", port, env, project)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, server, 90)

        data = pickle.loads(
            (project / "data" / "05_model_input" / "transfer_data.pkl").read_bytes()
        )
        images, labels = data["test_images"][:64], data["test_labels"][:64]
        status, body = _post(f"{url}/invocations", json.dumps({"inputs": images.tolist()}).encode())
        assert status == 200
        predictions = body["predictions"]
        assert len(predictions) == 64
        assert set(predictions[0]) == {"label", "class_name", "confidence", *data["class_names"]}
        truth = np.asarray(data["source_classes"])[labels]
        assert np.mean([p["label"] == t for p, t in zip(predictions, truth, strict=True)]) > 0.6
        assert predictions[0]["class_name"] == data["class_names"][truth[0] - 5]

        scaled = (images[:2] / 255.0).tolist()  # float 0-1 images give the same answers
        status, body = _post(f"{url}/invocations", json.dumps({"inputs": scaled}).encode())
        assert status == 200 and [p["label"] for p in body["predictions"]] == [
            p["label"] for p in predictions[:2]
        ]

        largest = np.resize(data["test_images"], (10_000, 28, 28))  # the largest batch taken
        status, body = _post(
            f"{url}/invocations", json.dumps({"inputs": largest.tolist()}).encode()
        )
        assert status == 200 and len(body["predictions"]) == 10_000

        too_many = np.zeros((10_001, 28, 28), np.uint8).tolist()
        bad_requests = [
            (json.dumps({"inputs": [[1, 2, 3]]}).encode(), "application/json", "shape"),
            (json.dumps({"inputs": [[[-5.0] * 28] * 28]}).encode(), "application/json", "0-255"),
            (json.dumps({"inputs": [[["a"] * 28] * 28]}).encode(), "application/json", "float"),
            (json.dumps({"inputs": too_many}).encode(), "application/json", "10001 images"),
            (b"{not json", "application/json", "JSON"),
            (json.dumps({"inputs": images[:1].tolist()}).encode(), None, "content type"),
        ]
        for body, content_type, expected in bad_requests:
            status, message = _post(f"{url}/invocations", body, content_type)
            assert 400 <= status < 500, (status, message)
            assert expected in message
        status, _ = _post(
            f"{url}/invocations", json.dumps({"inputs": images[:1].tolist()}).encode()
        )
        assert status == 200  # still serving after the bad requests
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


def test_kedro_viz_build_renders_the_project(project):
    result = kedro(project, "viz", "build", timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (project / "build" / "index.html").is_file()
    graph = json.loads((project / "build" / "api" / "main").read_text())
    names = {node["name"] for node in graph["nodes"]}
    assert {"pretrain", "transfer", "train_scratch_baseline", "summarise_metrics"} <= names
