"""End to end: `kedro run` as a user runs it, in a scratch copy of the project (its own data/
and MLflow store in mlruns/), on a small slice of the real data (helpers.py). Runs are found
by the run ids each command adds to the store, so that every test finds what it checks
whatever ran before it."""

from __future__ import annotations

import base64
import io
import json
import pickle
import random
import shutil
import signal
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

from fashion_transfer.calibration import expected_calibration_error
from fashion_transfer.datasets import TorchModelDataset
from fashion_transfer.datasets.idx_dataset import OFFICIAL_MIRROR
from fashion_transfer.programs.processes import (
    free_port,
    start_model_server,
    start_server,
    stop_server,
    wait_until_up,
)
from fashion_transfer.training import resolve_device, resolve_precision
from tests.conftest import PROJECT_ROOT
from tests.e2e.helpers import (
    EXPERIMENT,
    FEW_REPORT_IMAGES,
    MODELS,
    SMALL_SLICE,
    assert_user_error,
    client_of,
    copy_project,
    kedro,
    kedro_env,
    new_runs,
    outputs_of,
    run_ids,
    start_kedro,
    store,
    version_counts,
    versions_of,
)


def test_transfer_without_pretrained_model_says_to_pretrain_first(project, first_run):
    failed = first_run.failed
    assert_user_error(
        failed, "Error: pretrain_model: There is no saved model", "kedro run --pipeline pretrain"
    )
    assert failed.runs[0].info.status == "FAILED"


def test_the_documented_commands_log_no_library_warnings(first_run):
    # Kedro 1.7 deprecates `--pipeline` (the project passes it on as `--pipelines`), and
    # kedro-mlflow's import makes MLflow ask for type hints: neither is the user's concern.
    for result in (first_run.failed, first_run.result):
        warned = [
            line
            for line in result.output.splitlines()
            # Kedro's own report of a failed run is meant for the user.
            if "warning" in line.lower() and "nodes that have not run" not in line
        ]
        assert not warned, result.output[:3000]


def test_an_unknown_preset_is_one_paragraph_like_any_bad_parameter(project):
    result = kedro(project, "run", "--params", "preset=fastest")
    assert_user_error(
        result,
        "Error: Invalid parameters: preset: unknown preset 'fastest'; valid presets: [",
        "nothing was trained",
    )
    assert "interpolation" not in result.output and "full_key" not in result.output


def test_an_unknown_pipeline_is_one_paragraph_with_kedros_suggestion(project):
    result = kedro(project, "run", "--pipeline", "tunes")
    assert_user_error(
        result, "Error: Failed to find the pipeline named 'tunes'", "Did you mean", "tune"
    )


def test_full_run_writes_sane_reports(first_run):
    reporting = first_run.data / "08_reporting"
    metrics = json.loads((reporting / "metrics.json").read_text())
    assert list(metrics) == ["pretrain", "transfer", "scratch", "ensemble", "catalogue"]
    predictions = pickle.loads(
        (first_run.data / "07_model_output" / "test_predictions.pkl").read_bytes()
    )
    for name, section in metrics.items():
        size, classes = (3000, 10) if name == "catalogue" else (1500, 5)
        assert section["test_examples"] == size
        # Each figure is what the saved test predictions say, counted here by hand; and
        # a few epochs on the slice are well above chance (20%, 10%).
        truth, guess = predictions[name]["y_true"], predictions[name]["y_pred"]
        assert len(truth) == size
        np.testing.assert_array_equal(guess, predictions[name]["probabilities"].argmax(axis=1))
        assert section["test_accuracy"] == pytest.approx((truth == guess).mean())
        recall = [(guess[truth == c] == c).mean() for c in range(classes)]
        precision = [
            (truth[guess == c] == c).mean() if (guess == c).any() else 0 for c in range(classes)
        ]
        f1 = [2 * p * r / (p + r) if p + r else 0 for p, r in zip(precision, recall, strict=True)]
        assert section["macro_recall"] == pytest.approx(np.mean(recall))
        assert section["macro_precision"] == pytest.approx(np.mean(precision))
        assert section["macro_f1"] == pytest.approx(np.mean(f1))
        assert section["test_accuracy"] > 0.5 and section["val_accuracy"] > 0.5, (name, section)
        folders = [
            ("confusion_matrix_plots", "png"),
            ("misclassified", "png"),
            ("confusion_matrices", "csv"),
            ("classification_reports", "csv"),
            ("photos", "png"),
            ("reliability", "png"),
            ("recognition", "png"),
        ]
        # Calibration and recognition, recounted from the saved predictions.
        p = predictions[name]
        assert section["test_ece"] == pytest.approx(
            expected_calibration_error(p["probabilities"], truth)
        )
        assert section["test_ece_uncalibrated"] == pytest.approx(
            expected_calibration_error(p["uncalibrated_probabilities"], truth)
        )
        assert section["test_recognised"] == pytest.approx(
            (p["ood_scores"] <= section["ood_threshold"]).mean()
        )
        expected_sets = {"digits", "synthetic"}
        if name != "catalogue":
            expected_sets.add("transfer classes" if name == "pretrain" else "pretrain classes")
        assert set(section["ood"]) == expected_sets
        assert all(0 <= figures["auroc"] <= 1 for figures in section["ood"].values())
        assert section["ood"]["digits"]["pictures"] == 200  # FEW_REPORT_IMAGES' share
        # The photo test set: 10 photos of each class of its stage (the SMALL_SLICE).
        assert section["photo_examples"] == 10 * classes
        assert 0 <= section["photo_accuracy"] <= 1
        if name == "ensemble":  # built, not trained: no history, no fit verdict, no curve
            assert "fit_verdict" not in section
            assert not (reporting / "learning_curves" / "ensemble.png").exists()
        else:
            assert section["fit_verdict"] in {"good fit", "overfitting", "underfitting"}
            epochs = {"pretrain": (1, 2), "catalogue": (1, 2)}.get(name, (1, 2, 3))
            assert section["best_epoch"] in epochs
            folders.append(("learning_curves", "png"))
        for folder, suffix in folders:
            assert (reporting / folder / f"{name}.{suffix}").stat().st_size > 0, (folder, name)
        # The confusion matrix and the classification report, counted again here from the
        # saved predictions (rows: true class, columns: predicted).
        names = predictions[name]["class_names"]
        counted = np.zeros((len(names), len(names)), np.int64)
        np.add.at(counted, (truth, guess), 1)
        matrix = pd.read_csv(reporting / "confusion_matrices" / f"{name}.csv")
        assert list(matrix.columns) == ["true \\ predicted", *names]
        assert list(matrix["true \\ predicted"]) == names
        np.testing.assert_array_equal(matrix[names].to_numpy(), counted)
        report = pd.read_csv(reporting / "classification_reports" / f"{name}.csv")
        report = report.set_index("class")
        for c, class_name in enumerate(names):
            row = report.loc[class_name]
            assert row["support"] == counted[c].sum() == (truth == c).sum()
            assert row["recall"] == pytest.approx(recall[c])
            assert row["precision"] == pytest.approx(precision[c])
            assert row["f1-score"] == pytest.approx(f1[c])
        assert report.loc["macro avg", "f1-score"] == pytest.approx(section["macro_f1"])
        for folder, suffix in folders:
            if suffix == "png":  # a whole picture, not just some bytes
                with Image.open(reporting / folder / f"{name}.png") as plot:
                    plot.verify()
    assert set(json.loads((reporting / "fit_analysis.json").read_text())) == set(metrics) - {
        "ensemble"
    }

    models = first_run.data / "06_models"
    assert TorchModelDataset(filepath=str(models / "pretrain.pt")).load().num_classes == 5
    assert TorchModelDataset(filepath=str(models / "transfer.pt")).load().num_classes == 5
    assert TorchModelDataset(filepath=str(models / "catalogue.pt")).load().num_classes == 10
    served = TorchModelDataset(filepath=str(models / "served.pt")).load()
    assert list(served) == list(metrics)
    assert float(served["catalogue"].temperature) == pytest.approx(
        metrics["catalogue"]["temperature"]
    )
    assert list(TorchModelDataset(filepath=str(models / "baselines.pt")).load()) == ["scratch"]
    ensemble = TorchModelDataset(filepath=str(models / "ensemble.pt")).load()["ensemble"]
    assert len(ensemble.members) == 2 and ensemble.num_classes == 5
    history_file = first_run.data / "07_model_output" / "pretrain_history.json"
    assert [row["epoch"] for row in json.loads(history_file.read_text())] == [1, 2]
    history_file = first_run.data / "07_model_output" / "transfer_history.json"
    assert [row["epoch"] for row in json.loads(history_file.read_text())] == [1, 2, 3]


def test_mlflow_run_holds_params_metrics_artifacts_and_tags(project, first_run):
    run = first_run.result.runs[0]
    client = client_of(project)
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["pipeline"] == "__default__" and tags["preset"] == "default"
    assert tags["mlflow.runName"].startswith("__default__ [default] ")
    assert {"git_commit", "git_dirty"} <= set(tags)
    assert tags["data_source"] == kedro_env().get("FASHION_MNIST_SOURCE", OFFICIAL_MIRROR)
    params = run.data.params
    assert params["pretrain.epochs"] == "2" and params["split.max_examples_per_stage"] == "1500"
    assert params["transfer.fine_tune_epochs"] == "1" and "transfer.scratch_baseline" in params
    assert params["pretrain.schedule"] == "onecycle"
    # The precision the run resolved for its device (`device: auto`): bfloat16 only where
    # that device computes it natively.
    used = resolve_precision("auto", resolve_device("auto"))
    assert params["runtime.training_precision"] == used == tags["runtime.training_precision"]
    metrics = json.loads((first_run.data / "08_reporting" / "metrics.json").read_text())
    for model in ("pretrain", "transfer", "scratch"):
        history = client.get_metric_history(run.info.run_id, f"{model}/val_accuracy")
        assert sorted(m.step for m in history) == ([1, 2] if model == "pretrain" else [1, 2, 3])
        assert max(m.value for m in history) == pytest.approx(metrics[model]["val_accuracy"])
    # The logged figures are the reported ones.
    for model, section in metrics.items():
        logged = run.data.metrics
        assert logged[f"{model}/test_accuracy"] == pytest.approx(section["test_accuracy"])
        for key in ("macro_precision", "macro_recall", "macro_f1"):
            assert logged[f"{model}/test_{key}"] == pytest.approx(section[key])
        for key in ("photo_accuracy", "test_ece", "test_ece_uncalibrated", "temperature"):
            assert logged[f"{model}/{key}"] == pytest.approx(section[key])
        for set_name, figures in section["ood"].items():
            assert logged[f"{model}/ood_auroc/{set_name}"] == pytest.approx(figures["auroc"])
            assert logged[f"{model}/ood_accepted/{set_name}"] == pytest.approx(figures["accepted"])
    assert run.data.metrics["pretrain/test_precision/T-shirt or top"] == pytest.approx(
        metrics["pretrain"]["per_class"]["T-shirt/top"]["precision"]
    )
    assert run.data.metrics["transfer/test_recall/Ankle boot"] == pytest.approx(
        metrics["transfer"]["per_class"]["Ankle boot"]["recall"]
    )
    assert run.data.metrics["ensemble/val_accuracy"] == pytest.approx(
        metrics["ensemble"]["val_accuracy"]
    )
    reports = {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
    assert {
        "reports/metrics.json",
        "reports/fit_analysis.json",
        "reports/confusion_matrices",
        "reports/confusion_matrix_plots",
        "reports/learning_curves",
        "reports/misclassified",
        "reports/classification_reports",
        "reports/calibration.json",
        "reports/photos",
        "reports/reliability",
        "reports/recognition",
    } <= reports
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "reports/misclassified")}
    assert "reports/misclassified/transfer.png" in plots


def test_without_a_source_variable_the_run_names_the_official_mirror(project, first_run):
    # data/01_raw already holds the files, so nothing is downloaded; the tag names where
    # missing files would come from.
    env = kedro_env()
    env.pop("FASHION_MNIST_SOURCE", None)
    result = kedro(project, "run", "--pipeline", "ingestion", env=env)
    assert result.returncode == 0, result.output[-3000:]
    assert result.runs[0].data.tags["data_source"] == OFFICIAL_MIRROR


def test_models_registered_with_champion_and_the_rule_holds_across_runs(project, first_run):
    client = client_of(project)
    # What holds the alias now: other tests may have registered versions since the first run.
    champions = {name: client.get_model_version_by_alias(name, "champion") for name in MODELS}
    first = first_run.result.runs[0]
    first_versions = versions_of(project, first)
    assert set(first_versions) == set(MODELS)
    for name, version in first_versions.items():
        assert str(version.version) == "1"  # the first version of each model, promoted at once
        assert first.data.tags[f"{name.split('-')[-1]}.promoted"] == "true"

    second = kedro(
        project,
        "run",
        "--params",
        SMALL_SLICE.replace("epochs=2", "epochs=1") + ",transfer.scratch_baseline=false",
    )
    assert second.returncode == 0, second.output[-3000:]
    run = second.runs[0]
    registered = versions_of(project, run)
    # No scratch baseline, so no ensemble: the other two, each compared with the champion of
    # before the run (on the same classes and validation split, the same slice's).
    assert set(registered) == {
        "fashion-mnist-catalogue",
        "fashion-mnist-pretrain",
        "fashion-mnist-transfer",
    }
    assert run.data.tags["ensemble.registered_model"] == "skipped: not built in this run"
    for name, version in registered.items():
        stage = name.split("-")[-1]
        earlier = champions[name]
        same_question = all(
            version.tags[key] == earlier.tags[key] for key in ("classes", "validation_split")
        )
        accuracy = float(version.tags["val_accuracy"])
        better = same_question and accuracy > float(earlier.tags["val_accuracy"])
        expected = version.version if better else earlier.version
        assert client.get_model_version_by_alias(name, "champion").version == expected
        assert run.data.tags[f"{stage}.promoted"] == str(better).lower()
        assert run.data.tags[f"{stage}.promotion_reason"]


def test_a_tracking_server_without_auth_records_the_run_and_one_that_is_down_fails_fast(
    project, tmp_path
):
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--workers", "1", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}"]
    log = tmp_path / "mlflow-server.log"
    server = start_server(command, log, kedro_env(), cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    to_server = {**kedro_env(), "MLFLOW_TRACKING_URI": url}
    try:
        wait_until_up(url, server, 120, log, path="/health")
        result = kedro(project, "run", "--pipeline", "ingestion", env=to_server)
        assert result.returncode == 0, result.output[-3000:]
        client = mlflow.MlflowClient(url)
        (recorded,) = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
        assert recorded.info.status == "FINISHED" and recorded.data.tags["pipeline"] == "ingestion"
    finally:
        stop_server(server)

    # Now nothing listens there: the run stops at once, not after MLflow's minutes of retries.
    started = time.monotonic()
    result = kedro(project, "run", "--pipeline", "ingestion", env=to_server)
    assert_user_error(
        result, f"Error: The MLflow tracking server at {url} did not answer", "make team-up"
    )
    assert time.monotonic() - started < 60


def test_failed_run_registers_nothing(project, first_run):
    before = version_counts(project)
    # Pretraining succeeds, then loading the pretrained model from the registry fails.
    result = kedro(
        project,
        "run",
        "--params",
        SMALL_SLICE + ",pretrain.epochs=1,pretrained_model_uri=models:/missing@champion",
    )
    assert_user_error(result, "Could not load the pretrained model 'models:/missing@champion'")
    assert [run.info.status for run in result.runs] == ["FAILED"]
    assert version_counts(project) == before


def _model_files(project: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in (project / "data" / "06_models").iterdir()}


@pytest.mark.parametrize(
    ("signal_number", "moment", "params", "when"),
    [
        (signal.SIGINT, "training", "pretrain.epochs=50", "pretrain epoch 1/50"),
        (signal.SIGTERM, "saving", "pretrain.epochs=1", "Saving data to pretrain_model"),
        # The first model is registered (and may have taken the alias) when the signal comes:
        # it is removed again and the alias put back.
        (
            signal.SIGTERM,
            "registering",
            "pretrain.epochs=1,transfer.epochs=1,transfer.fine_tune_epochs=0,"
            "transfer.scratch_baseline=false,catalogue.fine_tune_epochs=0",
            "of model 'fashion-mnist-pretrain'.",  # MLflow's "Created version N of model ..."
        ),
    ],
    ids=["ctrl-c-training", "sigterm-saving", "sigterm-registering"],
)
def test_interrupted_run_is_killed_registers_nothing_and_keeps_models_whole(
    project, first_run, signal_number, moment, params, when
):
    saved = _model_files(project)
    before = version_counts(project)
    champions = _champions(project)
    known = run_ids(project)
    run = start_kedro(project, "run", "--params", f"{SMALL_SLICE},{params}")
    seen = []
    try:
        for line in run.stdout:  # signal the moment the run reaches `when`
            seen.append(line)
            if when in line:
                run.send_signal(signal_number)
                break
        output = "".join(seen) + run.communicate(timeout=120)[0]
    finally:
        run.kill()
    assert when in output, output[-3000:]
    assert run.returncode != 0
    assert "Interrupted. The MLflow run is marked KILLED" in output, output[-5000:]
    (killed,) = new_runs(project, known)
    assert killed.info.status == "KILLED"
    assert version_counts(project) == before and _champions(project) == champions
    if moment == "registering":
        assert killed.data.tags["registry"].startswith("rolled back (interrupted): ")
        assert not any(key.endswith(".registered_model") for key in killed.data.tags)
    now = _model_files(project)
    if moment == "training":  # no model saved yet: every file as it was, byte for byte
        assert now == saved
        return
    # Interrupted while writing the pretrained model, or just after: each model file is the
    # previous one or a whole new checkpoint, never a partial one, and no temporary file stays.
    assert set(now) == set(saved)
    for name, content in now.items():
        if content != saved[name]:
            assert name == "pretrain.pt" or moment == "registering"
            # A partial file does not load; a whole one may hold an empty dict (no baselines).
            model = TorchModelDataset(filepath=str(project / "data/06_models" / name)).load()
            assert model is not None


def _champions(project: Path) -> dict[str, str | None]:
    client = client_of(project)
    holders = {}
    for name in MODELS:
        try:
            holders[name] = str(client.get_model_version_by_alias(name, "champion").version)
        except mlflow.exceptions.MlflowException:
            holders[name] = None
    return holders


def test_transfer_can_start_from_the_registered_pretrained_champion(
    project, first_run, monkeypatch
):
    models = project / "data" / "06_models"
    local = models / "pretrain.pt"
    aside = local.rename(models / "pretrain.pt.aside")  # the run may only use the registry
    try:
        result = kedro(
            project,
            "run",
            "--pipeline",
            "transfer",
            "--params",
            SMALL_SLICE + ",transfer.scratch_baseline=false,"
            "pretrained_model_uri=models:/fashion-mnist-pretrain@champion",
        )
    finally:
        aside.rename(local)
    assert result.returncode == 0, result.output[-3000:]
    assert result.runs[0].data.params["pretrained_model_uri"] == (
        "models:/fashion-mnist-pretrain@champion"
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store(project))
    champion = TorchModelDataset(
        filepath="unused.pt", load_from="models:/fashion-mnist-pretrain@champion"
    ).load()
    transferred = TorchModelDataset(filepath=str(models / "transfer.pt")).load()
    # The first block stays frozen in fine-tuning: it is the registered model's, exactly.
    expected = champion.features[0].state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in transferred.features[0].state_dict().items())


def test_a_corrupt_pretrained_model_gets_a_safe_fix_and_is_left_for_the_user(project, first_run):
    local = project / "data" / "06_models" / "pretrain.pt"
    saved = local.read_bytes()
    try:
        # Damaged so that PyTorch also warns about its reader (pickle protocol 149).
        local.write_bytes(b"\x80\x95" + random.Random(0).randbytes(4094))
        corrupt = local.read_bytes()
        result = kedro(project, "run", "--pipeline", "transfer", "--params", SMALL_SLICE)
        assert_user_error(
            result,
            "is not a model checkpoint written by this project",
            "kedro run --pipeline pretrain",
            "pretrained_model_uri=models:/fashion-mnist-pretrain@champion",
        )
        assert "weights_only" not in result.output
        assert local.read_bytes() == corrupt
    finally:
        local.write_bytes(saved)


@pytest.fixture
def champion_classifier(project, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store(project))
    return mlflow.pyfunc.load_model("models:/fashion-mnist-catalogue@champion")


def test_predict_pipeline_classifies_a_folder_and_records_why_files_were_skipped(
    project, first_run, tmp_path, champion_classifier
):
    data = pickle.loads((project / "data" / "05_model_input" / "catalogue_data.pkl").read_bytes())
    folder = tmp_path / "photos"
    folder.mkdir()
    # The test image the champion is surest of, as the 28x28 picture it is, and as a colour
    # photo three times larger, the item dark on white: a conversion must give it back.
    answers = champion_classifier.predict(data["test_images"][:100].astype(np.float32) / 255)
    grey = data["test_images"][int(answers["confidence"].idxmax())]
    expected = champion_classifier.predict(grey[None].astype(np.float32) / 255).iloc[0]
    Image.fromarray(grey).save(folder / "grey.png")
    photo = Image.fromarray(255 - grey).resize((84, 84), Image.Resampling.NEAREST)
    photo.convert("RGB").save(folder / "colour.jpg", quality=95)
    (folder / "notes.txt").write_text("not an image")
    whole = (folder / "grey.png").read_bytes()
    (folder / "broken.png").write_bytes(whole[: len(whole) // 2])  # cut inside its pixel data
    # A 24 KB PNG announcing 20,000 x 10,000 pixels (issue 30: it ended the run, and the
    # good pictures' answers with it).
    bomb = Image.new("1", (20_000, 10_000))
    bomb.save(folder / "bomb.png", optimize=True)

    result = kedro(project, "run", "--pipeline", "predict", "--params", f"predict_images={folder}")
    assert result.returncode == 0, result.output[-3000:]
    assert "Traceback" not in result.output and "DecompressionBomb" not in result.output
    table = pd.read_csv(project / "data" / "07_model_output" / "image_predictions.csv")
    rows = table.set_index("file")
    assert sorted(rows.index) == ["bomb.png", "broken.png", "colour.jpg", "grey.png", "notes.txt"]
    assert rows.loc["notes.txt", "error"].startswith("skipped: not a picture in a known format")
    assert rows.loc["broken.png", "error"].startswith("skipped: its pixel data is damaged")
    assert rows.loc["bomb.png", "error"] == (
        "skipped: the size its header announces is over the 50 megapixels taken; scale it "
        "down first"
    )
    assert rows.loc[["bomb.png", "broken.png", "notes.txt"], "class_name"].isna().all()
    # The 28x28 picture gets what the champion, loaded here, says of its pixels; the photo,
    # converted, the same class.
    assert rows.loc[["grey.png", "colour.jpg"], "error"].isna().all()
    assert rows.loc["grey.png", "class_name"] == expected["class_name"]
    assert rows.loc["grey.png", "label"] == expected["label"]
    assert rows.loc["grey.png", "confidence"] == pytest.approx(expected["confidence"], abs=1e-6)
    assert rows.loc["grey.png", "recognised"] == expected["recognised"]
    assert rows.loc["grey.png", "ood_score"] == pytest.approx(expected["ood_score"], rel=1e-5)
    assert rows.loc["colour.jpg", "class_name"] == expected["class_name"]
    assert rows.loc["colour.jpg", "label"] == expected["label"]

    # The same folder through the ensemble's champion: the same files, its own confidences.
    result = kedro(
        project,
        "run",
        "--pipeline",
        "predict",
        "--params",
        f"predict_images={folder},predict_model=fashion-mnist-ensemble",
    )
    assert result.returncode == 0, result.output[-3000:]
    by_ensemble = pd.read_csv(project / "data" / "07_model_output" / "image_predictions.csv")
    assert list(by_ensemble["file"]) == list(table["file"])
    assert not np.allclose(by_ensemble["confidence"].dropna(), table["confidence"].dropna())


def test_a_model_registered_before_the_package_was_regrouped_predicts_and_serves(
    project, first_run, tmp_path
):
    """tests/fixtures/README.md: registered by the code of e8a0639, it still classifies a
    folder through `predict` (in the project's process, with its package imported) and
    answers over HTTP (`make serve`, a fresh process) as it did then."""
    fixture = PROJECT_ROOT / "tests" / "fixtures" / "model-logged-at-e8a0639"
    expected = json.loads(fixture.with_name(f"{fixture.name}-expected.json").read_text())
    folder = project / "mlruns" / "registered-before"
    shutil.copytree(fixture, folder, dirs_exist_ok=True)
    client = client_of(project)
    name = "fashion-mnist-before-regrouping"
    client.create_registered_model(name)
    version = client.create_model_version(name, source=folder.as_uri()).version
    client.set_registered_model_alias(name, "champion", version)

    photos = tmp_path / "photos"
    photos.mkdir()
    for index, image in enumerate(expected["images"][:3]):
        Image.fromarray(np.array(image, np.uint8)).save(photos / f"{index}.png")
    result = kedro(
        project, "run", "--pipeline", "predict",
        "--params", f"predict_images={photos},predict_model={name}",
    )  # fmt: skip
    assert result.returncode == 0, result.output[-3000:]
    table = pd.read_csv(project / "data" / "07_model_output" / "image_predictions.csv")
    assert list(table["class_name"]) == expected["predictions"]["class_name"][:3]
    np.testing.assert_allclose(
        table["confidence"], expected["predictions"]["confidence"][:3], atol=1e-6
    )

    port = free_port()
    env = {**kedro_env(), "MLFLOW_TRACKING_URI": store(project)}
    log = tmp_path / "serve.log"
    server = start_model_server(f"models:/{name}@champion", port, env, log, project)
    try:
        wait_until_up(f"http://127.0.0.1:{port}", server, 120, log)
        status, body = _post(
            f"http://127.0.0.1:{port}/invocations",
            json.dumps({"inputs": expected["images"]}).encode(),
        )
    finally:
        stop_server(server)
    assert status == 200, body
    served = pd.DataFrame(body["predictions"])
    assert list(served["class_name"]) == expected["predictions"]["class_name"]
    np.testing.assert_allclose(
        served["confidence"], expected["predictions"]["confidence"], atol=1e-6
    )


def test_predict_with_a_model_that_has_no_champion_names_the_uri_the_store_and_the_fix(
    project, first_run, tmp_path
):
    client = client_of(project)
    name = "fashion-mnist-unpromoted"
    client.create_registered_model(name)
    client.create_model_version(name, source="file:///nowhere")
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(folder / "dark.png")
    # (A model that does not exist at all gets the same message: tests/datasets.)
    result = kedro(
        project,
        "run",
        "--pipeline",
        "predict",
        "--params",
        f"predict_images={folder},predict_model={name}",
    )
    assert_user_error(
        result,
        f"Error: champion_classifier: The MLflow registry at {store(project)} has no "
        f"models:/{name}@champion",
        "--params predict_model=NAME",
    )


def test_concurrent_runs_on_one_tracking_store_each_keep_their_own_data_and_the_champion_rule(
    tmp_path,
):
    """Two runs in one project (the second waits for the first: they share data/), with
    different parameters, and one in another checkout with the first one's parameters,
    writing to the same fresh store at the same time, so every registration competes for the
    champion alias."""
    here = copy_project(tmp_path / "checkout")
    other = copy_project(tmp_path / "other-checkout")
    # One CPU thread each: three runs share two cores, and a fixed thread count on the CPU
    # (a GPU's kernels are not deterministic) makes the two runs with the same parameters
    # comparable to the last digit.
    base = (
        "transfer.fine_tune_epochs=0,transfer.scratch_baseline=false,runtime.num_threads=1,"
        f"runtime.device=cpu,catalogue.epochs=1,catalogue.fine_tune_epochs=0,{FEW_REPORT_IMAGES}"
    )
    own_params = {
        "a": "split.max_examples_per_stage=600,pretrain.epochs=1,transfer.epochs=1",
        "b": "split.max_examples_per_stage=700,pretrain.epochs=2,transfer.epochs=2",
        # a's recipe; a grid of 30 misclassified images instead of 36 tells the runs apart
        "c": "split.max_examples_per_stage=600,pretrain.epochs=1,transfer.epochs=1,"
        "evaluation.misclassified_examples=30",
    }
    launches = {
        "a": (here, kedro_env()),
        "b": (here, kedro_env()),
        "c": (other, {**kedro_env(), "MLFLOW_TRACKING_URI": store(here)}),
    }
    processes = {
        key: start_kedro(folder, "run", "--params", f"{base},{own_params[key]}", env=env)
        for key, (folder, env) in launches.items()
    }
    outputs = dict(zip(processes, outputs_of(list(processes.values())), strict=True))
    for key, process in processes.items():
        assert process.returncode == 0, outputs[key][-3000:]
    assert sum("waiting for it to finish" in outputs[key] for key in ("a", "b")) == 1

    client = client_of(here)
    runs = new_runs(here, set())
    assert len(runs) == 3 and all(run.info.status == "FINISHED" for run in runs)

    def params_of(key: str) -> tuple:
        given = dict(pair.split("=") for pair in own_params[key].split(","))
        return (
            given["split.max_examples_per_stage"],
            given["pretrain.epochs"],
            given.get("evaluation.misclassified_examples", "36"),
        )

    by_key = {
        key: run
        for run in runs
        for key in own_params
        if params_of(key)
        == tuple(
            run.data.params[name]
            for name in (
                "split.max_examples_per_stage",
                "pretrain.epochs",
                "evaluation.misclassified_examples",
            )
        )
    }
    assert sorted(by_key) == ["a", "b", "c"]
    # Each run trained and scored on its own slice, for its own number of epochs.
    for key, run in by_key.items():
        epochs = int(run.data.params["pretrain.epochs"])
        history = client.get_metric_history(run.info.run_id, "pretrain/val_accuracy")
        assert sorted(m.step for m in history) == list(range(1, epochs + 1))
        folder = Path(client.download_artifacts(run.info.run_id, "reports", str(tmp_path / key)))
        metrics = json.loads((folder / "metrics.json").read_text())
        examples = int(run.data.params["split.max_examples_per_stage"])
        assert metrics["pretrain"]["test_examples"] == examples
        assert metrics["transfer"]["test_examples"] == examples
    # The same parameters and thread count in two checkouts: the same figures, to the digit.
    for metric in ("pretrain/test_accuracy", "transfer/test_accuracy"):
        assert by_key["a"].data.metrics[metric] == by_key["c"].data.metrics[metric]
    # Without a scratch baseline there is no ensemble to register, and the runs say so.
    assert version_counts(here)["fashion-mnist-ensemble"] == 0
    assert all(
        run.data.tags["ensemble.registered_model"] == "skipped: not built in this run"
        for run in runs
    )
    for name in ("fashion-mnist-pretrain", "fashion-mnist-transfer"):
        versions = client.search_model_versions(f"name='{name}'")
        assert len(versions) == 3 and {v.run_id for v in versions} == {
            run.info.run_id for run in runs
        }
        # b's slice (700 examples) is scored on another validation split than a's and c's
        # (600): the alias stays among the versions that answer the champion's question.
        champion = client.get_model_version_by_alias(name, "champion")
        same = [
            v for v in versions if v.tags["validation_split"] == champion.tags["validation_split"]
        ]
        assert float(champion.tags["val_accuracy"]) == max(
            float(v.tags["val_accuracy"]) for v in same
        )
        others = [v for v in versions if v not in same]
        assert len(others) in (1, 2) and {v.tags["classes"] for v in versions} == {
            "0,1,2,3,4" if name.endswith("pretrain") else "5,6,7,8,9"
        }
        for run in runs:
            reason = run.data.tags[f"{name.split('-')[-1]}.promotion_reason"]
            if any(v.run_id == run.info.run_id for v in others):
                assert "answers another question" in reason, reason
        stage = name.split("-")[-1]
        promoted = {run.info.run_id for run in runs if run.data.tags[f"{stage}.promoted"] == "true"}
        assert champion.run_id in promoted


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


def _post(url: str, body: bytes, content_type: str | None = "application/json", timeout=30):
    request = urllib.request.Request(url, data=body, method="POST")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_served_champion_classifies_real_images_and_rejects_bad_requests(
    project, first_run, tmp_path, monkeypatch
):
    port = free_port()
    env = {**kedro_env(), "MLFLOW_TRACKING_URI": store(project)}
    log = tmp_path / "serve.log"
    server = start_model_server("models:/fashion-mnist-transfer@champion", port, env, log, project)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, server, 120, log)

        data = pickle.loads(
            (project / "data" / "05_model_input" / "transfer_data.pkl").read_bytes()
        )
        images = data["test_images"][:64]
        status, body = _post(f"{url}/invocations", json.dumps({"inputs": images.tolist()}).encode())
        assert status == 200
        served = pd.DataFrame(body["predictions"])
        fixed = ["label", "class_name", "confidence", "recognised", "ood_score"]
        assert list(served.columns) == [*fixed, *data["class_names"]]
        assert served["recognised"].dtype == bool and np.isfinite(served["ood_score"]).all()
        assert len(served) == 64
        np.testing.assert_allclose(served[data["class_names"]].sum(axis=1), 1, rtol=1e-5)
        # The server answers what the registered model answers in this process.
        monkeypatch.setenv("MLFLOW_TRACKING_URI", store(project))
        champion = mlflow.pyfunc.load_model("models:/fashion-mnist-transfer@champion")
        expected = champion.predict(images.astype(np.float32))
        assert list(served["label"]) == list(expected["label"])
        assert list(served["class_name"]) == list(expected["class_name"])
        np.testing.assert_allclose(served["confidence"], expected["confidence"], atol=1e-6)
        assert set(served["label"]) <= set(data["source_classes"])

        # The same images as PNG files, base64 in MLflow's JSON: in a table's `image` column
        # (dataframe_split) or as the `image` input; and the pictures' errors, naming which.
        encoded = [base64.b64encode(_png(image)).decode() for image in images[:8]]
        for request in (
            {"dataframe_split": {"columns": ["image"], "data": [[text] for text in encoded]}},
            {"inputs": {"image": encoded}},
        ):
            status, body = _post(f"{url}/invocations", json.dumps(request).encode())
            assert status == 200, body
            assert [p["label"] for p in body["predictions"]] == list(served["label"][:8])
        not_a_picture = base64.b64encode(b"shirt, blue, size 40").decode()
        too_large = base64.b64encode(b"\0" * (10 * 2**20 + 1)).decode()
        picture_errors = [
            ([encoded[0], not_a_picture], "picture 1: not a picture in a known format"),
            ([encoded[0]] * 1001, "holds 1001 pictures"),
            ([too_large], "picture 0: 10.0 MB is over the 10 MB taken"),
            ([encoded[0], "!!"], "picture 1: not base64 text"),
        ]
        for pictures, expected in picture_errors:
            request = {"dataframe_split": {"columns": ["image"], "data": [[p] for p in pictures]}}
            status, message = _post(f"{url}/invocations", json.dumps(request).encode())
            assert status == 400 and expected in message, (expected, status, message[:300])

        scaled = (images[:2] / 255.0).tolist()  # float 0-1 images give the same answers
        status, body = _post(f"{url}/invocations", json.dumps({"inputs": scaled}).encode())
        assert status == 200
        assert [p["label"] for p in body["predictions"]] == list(served["label"][:2])

        # The largest batch taken. Sized for the slower CPU: in float32 on a busy 2-core
        # machine, classifying it took 21 s and its JSON 1.5 s.
        largest = np.resize(data["test_images"], (10_000, 28, 28))
        status, body = _post(
            f"{url}/invocations", json.dumps({"inputs": largest.tolist()}).encode(), timeout=180
        )
        assert status == 200 and len(body["predictions"]) == 10_000

        too_many = np.zeros((10_001, 28, 28), np.uint8).tolist()
        nan_image = [[[float("nan")] * 28] * 28]  # json.dumps writes NaN and Infinity literals
        infinite_image = [[[float("inf")] * 28] * 28]
        bad_requests = [
            ({"inputs": [[1, 2, 3]]}, "application/json", 400, "shape"),
            ({"inputs": [[[-5.0] * 28] * 28]}, "application/json", 400, "0-255"),
            ({"inputs": [[["a"] * 28] * 28]}, "application/json", 400, "not numeric"),
            ({"inputs": nan_image}, "application/json", 400, "NaN or infinite"),
            ({"inputs": infinite_image}, "application/json", 400, "NaN or infinite"),
            ({"inputs": []}, "application/json", 400, "shape (0,)"),
            ({"inputs": too_many}, "application/json", 400, "10001 images"),
            (b"{not json", "application/json", 400, "JSON"),
            ({"inputs": images[:1].tolist()}, None, 415, "content type"),
        ]
        for body, content_type, expected_status, expected in bad_requests:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            status, message = _post(f"{url}/invocations", raw, content_type)
            assert status == expected_status, (expected, status, message[:300])
            assert expected in message, message[:300]
        status, _ = _post(
            f"{url}/invocations", json.dumps({"inputs": images[:1].tolist()}).encode()
        )
        assert status == 200  # still serving after the bad requests
    finally:
        stop_server(server)
