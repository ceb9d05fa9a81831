"""A throw-away MLflow store with the `kedro run` above the trials already started."""

import mlflow
import pytest


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_experiment("tune-test")
    with mlflow.start_run() as parent:
        yield parent
    mlflow.end_run()
