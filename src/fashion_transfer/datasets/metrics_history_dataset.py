"""kedro-mlflow's metrics dataset, saved in one MLflow call (MlflowClient.log_batch) instead of
one `log_metric` per value: a run's histories and test metrics are some 350 values, and each
call is a transaction of its own (about 40 ms on a local SQLite store, one HTTP request to a
tracking server)."""

from __future__ import annotations

import time
from itertools import chain

from kedro.io import DatasetError
from kedro_mlflow.io.metrics import MlflowMetricsHistoryDataset


class MetricsHistoryDataset(MlflowMetricsHistoryDataset):
    """Loads, names and shapes metrics as kedro-mlflow's MlflowMetricsHistoryDataset does
    ({name: {"step", "value"}} or {name: [{"step", "value"}, ...]}, `prefix` before each name);
    saves them in one batch, with one timestamp (MLflow splits a batch of over 1,000 itself)."""

    def _save(self, data: dict) -> None:
        if not self._logging_activated:
            return
        try:
            run_id = self.run_id
        except DatasetError:  # no active run: kedro-mlflow's own way (which starts one)
            super()._save(data)
            return
        from mlflow import MlflowClient
        from mlflow.entities import Metric

        timestamp = int(time.time() * 1000)
        values = chain.from_iterable(
            self._build_args_list_from_metric_item(key, value) for key, value in data.items()
        )
        metrics = [Metric(key, value, timestamp, step) for key, value, step in values]
        if metrics:
            MlflowClient().log_batch(run_id, metrics=metrics)
