"""A throw-away SQLite tracking store for the tests of the MLflow glue."""

import mlflow
import pytest


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
