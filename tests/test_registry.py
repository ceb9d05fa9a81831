"""Registry logic against a throw-away SQLite tracking store."""

import re
from concurrent.futures import ThreadPoolExecutor

import mlflow
import numpy as np
import pytest
import torch
from kedro.io import DatasetError
from mlflow.exceptions import MlflowException

from fashion_transfer.datasets import TorchModelDataset
from fashion_transfer.model import FashionCNN, ProbabilityEnsemble
from fashion_transfer.registry import log_classifier, promote_if_best
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
    assert promote_if_best(store, name, "1", scores(0.90, 0.90), "champion") == (
        True,
        f"first champion of {name}",
    )
    # Chosen on validation: a better test figure alone does not move the champion.
    promoted, reason = promote_if_best(store, name, "2", scores(0.85, 0.99), "champion")
    assert not promoted and "does not beat champion version 1 (0.9000)" in reason
    assert str(store.get_model_version_by_alias(name, "champion").version) == "1"
    promoted, reason = promote_if_best(store, name, "3", scores(0.95, 0.80), "champion")
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


def _versions(client, name: str, accuracies: list[float]) -> None:
    client.create_registered_model(name)
    for accuracy in accuracies:
        version = client.create_model_version(name, source="file:///nowhere").version
        client.set_model_version_tag(name, version, "val_accuracy", f"{accuracy:.6f}")


def test_the_alias_ends_on_the_best_version_even_from_a_stale_holder(store):
    name = "fashion-stale"
    _versions(store, name, [0.90, 0.95])
    store.set_registered_model_alias(name, "champion", "1")  # moved by hand, or by a stale run
    store.create_model_version(name, source="file:///nowhere")
    promoted, reason = promote_if_best(
        store, name, "3", {"val_accuracy": 0.92, "test_accuracy": 0.9}, "champion"
    )
    assert not promoted and "does not beat champion version 2 (0.9500)" in reason
    assert str(store.get_model_version_by_alias(name, "champion").version) == "2"


def test_concurrent_registrations_leave_the_alias_on_the_best(store):
    """Eight runs register and promote at once, each with its own client, as runs on
    separate machines do against one server: no lock, and the alias still ends on the best."""
    name = "fashion-race"
    store.create_registered_model(name)
    accuracies = [0.91, 0.97, 0.93, 0.99, 0.92, 0.98, 0.94, 0.95]
    versions = [
        str(store.create_model_version(name, source="file:///nowhere").version) for _ in accuracies
    ]

    def register(version: str, accuracy: float):
        client = mlflow.MlflowClient()
        return promote_if_best(
            client, name, version, {"val_accuracy": accuracy, "test_accuracy": 0.5}, "champion"
        )

    with ThreadPoolExecutor(len(versions)) as pool:
        results = list(pool.map(register, versions, accuracies))
    winner = versions[accuracies.index(0.99)]
    assert str(store.get_model_version_by_alias(name, "champion").version) == winner
    # A run that was the best of those tagged when it last read holds the alias when it
    # returns, and may lose it to a better run that tags later; the winner always holds it,
    # and every run that does not names a better holder.
    assert results[versions.index(winner)][0]
    for (promoted, reason), accuracy in zip(results, accuracies, strict=True):
        if not promoted:
            match = re.search(r"does not beat champion version \d+ \((\d\.\d+)\)", reason)
            assert match and float(match[1]) > accuracy, reason
