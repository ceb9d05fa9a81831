"""Where a run's seconds go, for benchmarks/benchmark.py: when FASHION_TRANSFER_TIMINGS names
a file, the run writes wall-clock timestamps (time.time()) of its phases there as JSON.

- `pipeline_started`, `run_started`: before and after every before_pipeline_run hook (between
  them kedro-mlflow opens the MLflow run and the project tags it);
- `nodes`: [name, started, hooks_done] per node, before and after every before_node_run hook
  (between them kedro-mlflow logs the node's parameters, one MLflow call each);
- `pipeline_finished`, `run_finished`: before and after every after_pipeline_run hook
  (registration, the MLflow run's end);
- `spans`: [name, started, finished] of the steps code marks with `span(name)` (the
  registration and its steps: the ONNX export, the parity check, logging the model);
- `collections`: [generation, started, finished] of the garbage collector's passes of at least
  COLLECTION_SECONDS after the context was created (they fall inside the parts above).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from kedro.framework.hooks import hook_impl

VARIABLE = "FASHION_TRANSFER_TIMINGS"
COLLECTION_SECONDS = 0.005

_spans: list[list] = []
_collections: list[list] = []
_collection_started = [0.0]


def _record_collection(phase: str, info: dict) -> None:
    """A gc callback: the passes that take long enough to show in a run's parts."""
    now = time.time()
    if phase == "start":
        _collection_started[0] = now
    elif now - _collection_started[0] >= COLLECTION_SECONDS:
        _collections.append([info["generation"], _collection_started[0], now])


@contextlib.contextmanager
def span(name: str) -> Iterator[None]:
    """Time a step of the run under `name` (recorded even when it fails)."""
    started = time.time()
    try:
        yield
    finally:
        _spans.append([name, started, time.time()])


def _stop_recording_collections() -> None:
    if _record_collection in gc.callbacks:
        gc.callbacks.remove(_record_collection)


class TimingHooks:
    def __init__(self) -> None:
        self.stamps: dict = {"nodes": []}

    @hook_impl
    def after_context_created(self, context) -> None:
        _spans.clear()
        _collections.clear()
        if os.environ.get(VARIABLE) and _record_collection not in gc.callbacks:
            gc.callbacks.append(_record_collection)
        self.stamps = {"nodes": [], "context_created": time.time()}

    @hook_impl(wrapper=True)
    def before_pipeline_run(self, run_params: dict, pipeline, catalog):
        self.stamps["pipeline_started"] = time.time()
        result = yield
        self.stamps["run_started"] = time.time()
        return result

    @hook_impl(wrapper=True)
    def before_node_run(self, node, catalog, inputs, is_async):
        started = time.time()
        result = yield
        self.stamps["nodes"].append([node.name, started, time.time()])
        return result

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data, node) -> None:
        self.stamps["last_saved"] = time.time()

    @hook_impl(wrapper=True)
    def after_pipeline_run(self, run_params: dict, pipeline, catalog):
        self.stamps["pipeline_finished"] = time.time()
        try:
            result = yield
        finally:
            _stop_recording_collections()
        self.stamps["run_finished"] = time.time()
        self.stamps["spans"] = list(_spans)
        self.stamps["collections"] = list(_collections)
        if path := os.environ.get(VARIABLE):
            Path(path).write_text(json.dumps(self.stamps))
        return result

    @hook_impl
    def on_pipeline_error(self, error, run_params, pipeline, catalog) -> None:
        _stop_recording_collections()
