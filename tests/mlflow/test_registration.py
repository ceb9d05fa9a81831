"""Registration of a run's models (mlflow/registration.py) against a throw-away store."""

import os
import signal

import mlflow
import numpy as np
import pytest
import torch
from kedro.io import DataCatalog, MemoryDataset

from fashion_transfer.export import Parity
from fashion_transfer.mlflow import registration
from fashion_transfer.model import FashionCNN
from tests.conftest import synthetic_images

NAMES = ["Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _catalog() -> DataCatalog:
    torch.manual_seed(0)
    labels = np.arange(40) % 5
    images = synthetic_images(labels, seed=6)
    data = {
        "val_images": images,
        "test_images": images,
        "test_labels": labels,
        "class_names": NAMES,
        "source_classes": [5, 6, 7, 8, 9],
    }
    return DataCatalog(
        {
            "transfer_model": MemoryDataset(FashionCNN("compact", 5), copy_mode="assign"),
            "transfer_data": MemoryDataset(data, copy_mode="assign"),
        }
    )


PLAN = {
    "transfer": {
        "name": "fashion-test",
        "dataset": "transfer_model",
        "data": "transfer_data",
        "val_accuracy": 0.9,
        "test_accuracy": 0.8,
        "validation_split": "0.1 of all training examples per stage, seed 42",
        "parity_images": 30,
        "onnx_exporter": "torchscript",
        "seed": 42,
    },
    "ensemble": {"name": "fashion-test-ensemble", "skipped": "not built in this run"},
}


def test_a_registered_version_has_its_card_and_the_alias(store):
    with mlflow.start_run(tags={"preset": "default", "mlflow.runName": "a run"}) as run:
        registration.register(PLAN, _catalog(), "champion")
    tags = store.get_run(run.info.run_id).data.tags
    assert tags["transfer.registered_model"] == "fashion-test version 1"
    assert tags["transfer.promoted"] == "true" and tags["transfer.champion"] == "version 1"
    assert tags["ensemble.registered_model"] == "skipped: not built in this run"
    model = store.get_registered_model("fashion-test")
    assert "5 Sandal, 6 Shirt, 7 Sneaker, 8 Bag, 9 Ankle boot" in model.description
    assert "base64" in model.description and "model.onnx" in model.description
    version = store.get_model_version("fashion-test", "1")
    assert "Validation accuracy **0.9000**, test accuracy 0.8000" in version.description
    assert run.info.run_id in version.description and "`default`" in version.description
    assert "ONNX graph checked against PyTorch" in version.description


def test_a_model_whose_graph_differs_from_pytorch_is_not_registered(store, monkeypatch):
    monkeypatch.setattr(registration, "check_parity", lambda *args: Parity(40, 0.3, 7))
    with mlflow.start_run() as run:
        registration.register(PLAN, _catalog(), "champion")
    reason = store.get_run(run.info.run_id).data.tags["transfer.registered_model"]
    assert reason.startswith("skipped: its ONNX graph differs from the PyTorch model")
    assert "within 3.0e-01" in reason and "7 images off a tie change class" in reason
    assert not store.search_registered_models()


def test_a_failure_while_registering_removes_what_the_run_registered(store, monkeypatch):
    catalog = _catalog()
    with mlflow.start_run():
        registration.register(PLAN, catalog, "champion")  # version 1 holds the alias
    two_models = {
        "transfer": {**PLAN["transfer"], "val_accuracy": 0.99},
        "ensemble": {**PLAN["transfer"], "name": "fashion-test-ensemble"},
    }
    logged = registration.log_classifier

    def fails_on_the_second(model, graph, data, name):
        if name == "fashion-test-ensemble":
            raise KeyboardInterrupt  # a Ctrl-C, or any failure, while the second is logged
        return logged(model, graph, data, name)

    monkeypatch.setattr(registration, "log_classifier", fails_on_the_second)
    with mlflow.start_run() as run:
        with pytest.raises(KeyboardInterrupt):
            registration.register(two_models, catalog, "champion")
    # Version 2 beat version 1 and took the alias; undone, both.
    versions = store.search_model_versions("name='fashion-test'")
    assert [str(v.version) for v in versions] == ["1"]
    assert str(store.get_model_version_by_alias("fashion-test", "champion").version) == "1"
    tags = store.get_run(run.info.run_id).data.tags
    assert tags["registry"] == "rolled back (interrupted): fashion-test version 2"
    assert not any(key.endswith(".registered_model") for key in tags)


def test_a_signal_inside_mlflow_s_writes_waits_for_them_then_rolls_back(
    store, monkeypatch, interrupt_installed
):
    """SIGTERM while MLflow creates the version (where `kedro run` logs "Created version"):
    the version's writes finish, then the run stops and removes it, the store unlocked."""
    catalog = _catalog()
    logged = registration.log_classifier
    writes = []

    def signal_while_logging(model, graph, data, name):
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, inside the writes
        info = logged(model, graph, data, name)
        writes.append(info.registered_model_version)
        return info

    monkeypatch.setattr(registration, "log_classifier", signal_while_logging)
    with mlflow.start_run() as run:
        with pytest.raises(KeyboardInterrupt):
            registration.register(PLAN, catalog, "champion")
    assert writes == [1]  # logged whole before the interruption
    assert store.search_model_versions("name='fashion-test'") == []
    tags = store.get_run(run.info.run_id).data.tags
    assert tags["registry"] == "rolled back (interrupted): fashion-test version 1"
