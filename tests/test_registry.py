"""Registry logic against a throw-away SQLite tracking store."""

import mlflow
import numpy as np
import pytest
import torch
from kedro.io import DatasetError
from mlflow.exceptions import MlflowException

from fashion_transfer.datasets import TorchModelDataset
from fashion_transfer.model import FashionCNN, ProbabilityEnsemble
from fashion_transfer.registry import log_classifier, promote_if_better, registry_lock
from fashion_transfer.training import predict_proba

NAMES = ["Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@pytest.fixture
def store(tmp_path, monkeypatch):
    # Environment variables, not mlflow.set_*_uri: those also write the variables, which would
    # then leak into the `kedro run` subprocesses of later tests.
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    mlflow.set_experiment("registry-test")
    yield mlflow.MlflowClient()


def test_champion_moves_only_to_a_better_version(store):
    name = "fashion-test"
    store.create_registered_model(name)
    for _ in range(3):
        store.create_model_version(name, source="file:///nowhere")
    scores = lambda val, test: {"val_accuracy": val, "test_accuracy": test}  # noqa: E731
    assert promote_if_better(store, name, "1", scores(0.90, 0.90), "champion") == (
        True,
        f"first champion of {name}",
    )
    # Chosen on validation: a better test figure alone does not move the champion.
    promoted, reason = promote_if_better(store, name, "2", scores(0.85, 0.99), "champion")
    assert not promoted and "does not beat champion version 1 (0.9000)" in reason
    assert str(store.get_model_version_by_alias(name, "champion").version) == "1"
    promoted, reason = promote_if_better(store, name, "3", scores(0.95, 0.80), "champion")
    assert promoted and "validation accuracy 0.9500 beats champion version 1" in reason
    assert str(store.get_model_version_by_alias(name, "champion").version) == "3"
    tags = store.get_model_version(name, "2").tags
    assert (tags["val_accuracy"], tags["test_accuracy"]) == ("0.850000", "0.990000")


def test_logged_classifier_loads_as_pyfunc_and_rejects_bad_input(store):
    stage = {
        "test_images": np.random.default_rng(0).integers(0, 256, (4, 28, 28)).astype(np.uint8),
        "class_names": NAMES,
        "source_classes": [5, 6, 7, 8, 9],
    }
    model = FashionCNN("seed", 5)
    with mlflow.start_run():
        info = log_classifier(model, stage, "fashion-test")
    assert str(info.registered_model_version) == "1"
    assert tuple(info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"]) == (-1, 28, 28)

    loaded = mlflow.pyfunc.load_model("models:/fashion-test/1")
    table = loaded.predict(stage["test_images"].astype(np.float32))
    assert list(table.columns) == ["label", "class_name", "confidence", *NAMES]
    with pytest.raises(MlflowException, match="NaN or infinite"):
        loaded.predict(np.full((1, 28, 28), np.nan, np.float32))


def test_logged_ensemble_serves_the_mean_of_its_members_probabilities(store):
    images = np.random.default_rng(1).integers(0, 256, (8, 28, 28)).astype(np.uint8)
    stage = {"test_images": images, "class_names": NAMES, "source_classes": [5, 6, 7, 8, 9]}
    torch.manual_seed(0)
    members = [FashionCNN("seed", 5), FashionCNN("compact", 5)]
    with mlflow.start_run():
        log_classifier(ProbabilityEnsemble(members), stage, "fashion-ensemble-test")
    model = mlflow.pyfunc.load_model("models:/fashion-ensemble-test/1")
    table = model.predict(images.astype(np.float32))
    expected = sum(predict_proba(member, images) for member in members) / 2
    np.testing.assert_allclose(table[NAMES].to_numpy(), expected, rtol=1e-5)
    assert (table["label"] == 5 + expected.argmax(axis=1)).all()
    # An ensemble has no single set of layers to transfer: asked for as the pretrained model,
    # it is refused with the fix.
    pretrained = TorchModelDataset(
        filepath="unused.pt", load_from="models:/fashion-ensemble-test/1"
    )
    with pytest.raises(DatasetError, match="is an ensemble .* Give a pretrained model"):
        pretrained.load()


def test_registry_lock_sits_beside_a_sqlite_store_and_is_per_uri_otherwise(tmp_path):
    absolute = registry_lock(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    assert absolute.lock_file == f"{tmp_path}/mlruns/mlflow.db.lock"
    assert registry_lock("sqlite:///mlruns/mlflow.db").lock_file == "mlruns/mlflow.db.lock"
    one, other = (registry_lock(f"http://127.0.0.1:{port}") for port in (5000, 5001))
    assert one.lock_file != other.lock_file
