"""kedro-mlflow's hook with a node's parameters logged in one MLflow request.

The plugin logs every parameter a node takes with its own `mlflow.log_param`, again for every
node that takes it: a few hundred requests a run (1.5-1.9 s a run on a local store, more on a
remote server). `BatchedMlflowHook` logs what is new in one `log_batch` per node, each
parameter once a run, with the plugin's own flattening, name sanitising and
`long_params_strategy`; and it reopens the MLflow run before a node only in a thread that
does not have it already (the plugin fetches the run from the store before every node).
Everything else is the plugin's. framework/hooks.py registers it in place of the plugin's
hook."""

from __future__ import annotations

import mlflow
from kedro_mlflow.framework.hooks import MlflowHook
from kedro_mlflow.framework.hooks.utils import _flatten_dict
from mlflow.entities import Param
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH, MAX_PARAMS_TAGS_PER_BATCH


class BatchedMlflowHook(MlflowHook):
    def __init__(self) -> None:
        super().__init__()
        self._logged: dict[tuple[str, str], str] = {}  # (run id, name): value as logged

    def before_node_run(self, node, catalog, inputs, is_async) -> None:
        parameters = {
            name: value
            for name, value in inputs.items()
            if name.startswith("params:") or name == "parameters"
        }
        active = mlflow.active_run()
        if self.run_id is not None and (active is None or active.info.run_id != self.run_id):
            # The plugin's reopening of the run in a thread that does not have it (it fetches
            # the run from the store each time, so it is skipped where the run is active).
            others = {name: value for name, value in inputs.items() if name not in parameters}
            super().before_node_run(node, catalog, others, is_async)  # logs nothing
        if not self._is_mlflow_enabled or not parameters:
            return
        self.log_parameters(
            {name.removeprefix("params:"): value for name, value in parameters.items()}
        )

    def log_parameters(self, parameters: dict) -> None:
        """Log to the active run what it does not have yet, as the plugin names it."""
        if self.flatten:
            parameters = _flatten_dict(d=parameters, recursive=self.recursive, sep=self.sep)
        run_id = mlflow.active_run().info.run_id
        batch = []
        for name, value in parameters.items():
            name, text = self.sanitize_param_name(name), str(value)
            if self._logged.get((run_id, name)) == text:
                continue
            if len(text) > MAX_PARAM_VAL_LENGTH:
                self._log_param(name, value)  # fails, tags or truncates, as configured
            else:
                batch.append(Param(name, text))
            self._logged[(run_id, name)] = text
        client = mlflow.MlflowClient()
        for start in range(0, len(batch), MAX_PARAMS_TAGS_PER_BATCH):
            client.log_batch(run_id, params=batch[start : start + MAX_PARAMS_TAGS_PER_BATCH])
