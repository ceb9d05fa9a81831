"""The metrics dataset records in MLflow what kedro-mlflow's own records, in one call."""

import mlflow
import pytest
from kedro_mlflow.io.metrics import MlflowMetricsHistoryDataset

from fashion_transfer.datasets import MetricsHistoryDataset

METRICS = {
    "pretrain/val_accuracy": [{"step": 1, "value": 0.5}, {"step": 2, "value": 0.75}],
    "transfer/test_recall/T-shirt or top": {"step": 0, "value": 0.9},
}


@pytest.fixture
def client(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    # An experiment of this store: MLflow keeps the last one set, which may be another test's
    # (in another store) in the same worker.
    mlflow.set_experiment("metrics-test")
    yield mlflow.MlflowClient()
    while mlflow.active_run():
        mlflow.end_run()


def _history(client, run_id: str) -> dict:
    run = client.get_run(run_id)
    return {
        key: sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
        for key in run.data.metrics
    }


@pytest.mark.parametrize("prefix", ["", "stage"])
def test_it_records_what_kedro_mlflows_dataset_records_in_one_call(client, monkeypatch, prefix):
    with mlflow.start_run() as theirs:
        MlflowMetricsHistoryDataset(prefix=prefix).save(METRICS)
    calls = []
    monkeypatch.setattr(
        mlflow.MlflowClient, "log_metric", lambda *a, **k: pytest.fail("one call per value")
    )
    log_batch = mlflow.MlflowClient.log_batch
    monkeypatch.setattr(
        mlflow.MlflowClient,
        "log_batch",
        lambda self, *a, **k: calls.append(len(k["metrics"])) or log_batch(self, *a, **k),
    )
    with mlflow.start_run() as ours:
        dataset = MetricsHistoryDataset(prefix=prefix)
        dataset.save(METRICS)
    assert calls == [3]
    assert _history(client, ours.info.run_id) == _history(client, theirs.info.run_id)


def test_a_switched_off_dataset_logs_nothing(client):
    with mlflow.start_run() as run:
        dataset = MetricsHistoryDataset(prefix="")
        dataset._logging_activated = False  # as kedro-mlflow does for an untracked pipeline
        dataset.save(METRICS)
    assert client.get_run(run.info.run_id).data.metrics == {}
