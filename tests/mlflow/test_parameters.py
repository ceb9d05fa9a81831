"""kedro-mlflow's hook with batched parameters (mlflow/parameters.py, framework/hooks.py):
the run holds what the plugin's own hook logs, in one request per node, and the plugin's hook
is not registered beside it."""

from types import SimpleNamespace

import mlflow
import pytest
from kedro.framework.hooks.manager import (
    _create_hook_manager,
    _register_hooks,
    _register_hooks_entry_points,
)
from kedro.pipeline import node
from kedro_mlflow.framework.hooks import MlflowHook

from fashion_transfer import settings
from fashion_transfer.framework.hooks import MlflowHooks
from fashion_transfer.mlflow.parameters import BatchedMlflowHook

INPUTS = {
    "params:pretrain": {"epochs": 2, "augmentation": {"horizontal_flip": True}, "seed": 42},
    "params:runtime": {"device": "cpu"},
    "pretrain_data": [1, 2, 3],  # not a parameter: not logged
}


def _hook(kind):
    hook = kind()
    hook.flatten, hook.recursive, hook.sep = True, True, "."  # as conf/base/mlflow.yml
    hook.mlflow_config = SimpleNamespace(tracking=SimpleNamespace(run=SimpleNamespace(nested=True)))
    return hook


def _logged(counted, kind, inputs_per_node) -> tuple[dict, list]:
    store, calls = counted
    requests = []
    hook = _hook(kind)
    with mlflow.start_run() as run:
        hook.run_id = run.info.run_id  # as before_pipeline_run leaves it
        for inputs in inputs_per_node:
            before = calls["n"]
            hook.before_node_run(node(lambda *a: None, "x", None), None, inputs, False)
            requests.append(calls["n"] - before)
    while mlflow.active_run():  # the plugin pushes the run again on every node
        mlflow.end_run()
    return store.get_run(run.info.run_id).data.params, requests


@pytest.fixture
def counted(store, monkeypatch):
    """The store, and how many requests wrote parameters or read a run, whichever way they
    were made. Runs a failing test leaves open end here, in this store, not at exit in
    MLflow's default one (a stray mlflow.db in the working folder)."""
    from mlflow.tracking._tracking_service.client import TrackingServiceClient

    calls = {"n": 0}
    for method in ("log_param", "log_batch", "get_run"):
        original = getattr(TrackingServiceClient, method)

        def counting(self, *args, _original=original, **kwargs):
            calls["n"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(TrackingServiceClient, method, counting)
    yield store, calls
    while mlflow.active_run():
        mlflow.end_run()


def test_the_run_holds_what_the_plugin_logs_in_one_request_per_node_and_each_parameter_once(
    counted,
):
    twice = [INPUTS, {"params:runtime": {"device": "cpu"}, "x": 1}]
    plugin, plugin_requests = _logged(counted, MlflowHook, twice)
    batched, batched_requests = _logged(counted, BatchedMlflowHook, twice)
    assert (
        batched
        == plugin
        == {
            "pretrain.epochs": "2",
            "pretrain.augmentation.horizontal_flip": "True",
            "pretrain.seed": "42",
            "runtime.device": "cpu",
        }
    )
    # the plugin: the run read back, then one request per parameter, again on the next node
    assert plugin_requests[0] >= 1 + 4 and plugin_requests[1] >= 1 + 1
    assert batched_requests == [1, 0]  # one for the node; nothing already logged


def test_a_node_in_another_thread_gets_the_run_reopened(counted):
    import threading

    hook = _hook(BatchedMlflowHook)
    with mlflow.start_run() as run:
        hook.run_id = run.info.run_id
        seen = {}

        def in_a_thread():
            hook.before_node_run(node(lambda *a: None, "x", None), None, INPUTS, False)
            seen["run"] = mlflow.active_run().info.run_id

        thread = threading.Thread(target=in_a_thread)
        thread.start()
        thread.join()
    assert seen["run"] == run.info.run_id
    store, _ = counted
    assert store.get_run(run.info.run_id).data.params["runtime.device"] == "cpu"


def test_more_parameters_than_one_request_takes_go_in_several(counted):
    many = {"params:grid": {f"p{index}": index for index in range(250)}}
    params, requests = _logged(counted, BatchedMlflowHook, [many])
    assert len(params) == 250 and params["grid.p249"] == "249"
    assert requests == [3]  # MLflow takes at most 100 parameters a request


def test_a_parameter_too_long_for_mlflow_fails_as_the_plugin_is_configured(counted):
    hook = _hook(BatchedMlflowHook)
    hook.long_params_strategy = "fail"
    long = {"params:note": "x" * 7000}
    with mlflow.start_run(), pytest.raises(ValueError, match="long_params_strategy"):
        hook.before_node_run(node(lambda *a: None, "x", None), None, long, False)
    hook.long_params_strategy = "truncate"
    with mlflow.start_run() as run:
        hook.before_node_run(node(lambda *a: None, "x", None), None, long, False)
    store, _ = counted
    assert len(store.get_run(run.info.run_id).data.params["note"]) < 7000


def test_a_session_has_the_batched_hook_and_not_the_plugins_own():
    manager = _create_hook_manager()
    _register_hooks(manager, settings.HOOKS)
    _register_hooks_entry_points(manager, settings.DISABLE_HOOKS_FOR_PLUGINS)
    plugins = manager.get_plugins()
    assert not [plugin for plugin in plugins if isinstance(plugin, MlflowHook)]
    assert [plugin for plugin in plugins if isinstance(plugin, MlflowHooks)]
