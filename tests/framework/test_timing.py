"""The run's phase timestamps that benchmarks/benchmark.py splits a run's time with: each
stamp is taken around the other plugins' hooks (kedro-mlflow's, the project's), in the order
Kedro calls them."""

import gc
import json
from types import SimpleNamespace

import pytest
from kedro.framework.hooks import hook_impl
from kedro.framework.hooks.manager import _create_hook_manager

from fashion_transfer.framework import timing
from fashion_transfer.framework.timing import VARIABLE, TimingHooks, span


@pytest.fixture(autouse=True)
def _no_collection_recorder_left():
    """A test's run records the garbage collector's passes; later tests' must not."""
    yield
    timing._stop_recording_collections()


class Plugin:
    """Stands for kedro-mlflow and the project's hooks: records when each hook ran."""

    def __init__(self, clock):
        self.clock = clock

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog):
        self.clock.append(("run opened", self.clock.now()))

    @hook_impl
    def before_node_run(self, node, catalog, inputs, is_async):
        self.clock.append(("params logged", self.clock.now()))

    @hook_impl(tryfirst=True)
    def after_pipeline_run(self, run_params, pipeline, catalog):
        with span("registration"):
            self.clock.append(("registered", self.clock.now()))


class Clock(list):
    def __init__(self, monkeypatch):
        super().__init__()
        self.tick = 0.0
        monkeypatch.setattr("fashion_transfer.framework.timing.time.time", self.now)

    def now(self) -> float:
        self.tick += 1.0
        return self.tick


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch)


def test_stamps_bracket_the_other_plugins_hooks(tmp_path, monkeypatch, clock):
    monkeypatch.setenv(VARIABLE, str(tmp_path / "timings.json"))
    manager = _create_hook_manager()
    manager.register(TimingHooks())
    manager.register(Plugin(clock))  # registered later: called first, as plugins are
    hook = manager.hook
    hook.after_context_created(context=SimpleNamespace())
    hook.before_pipeline_run(run_params={}, pipeline=None, catalog=None)
    for name in ("split", "pretrain"):
        node = SimpleNamespace(name=name)
        hook.before_node_run(node=node, catalog=None, inputs={}, is_async=False, run_id="r")
    hook.after_pipeline_run(run_params={}, run_result=None, pipeline=None, catalog=None)

    stamps = json.loads((tmp_path / "timings.json").read_text())
    events = dict(clock)
    assert stamps["pipeline_started"] < events["run opened"] < stamps["run_started"]
    (split, split_start, split_done), (pretrain, pretrain_start, pretrain_done) = stamps["nodes"]
    assert (split, pretrain) == ("split", "pretrain")
    assert split_start < split_done < pretrain_start < pretrain_done
    assert stamps["pipeline_finished"] < events["registered"] < stamps["run_finished"]
    [(name, started, finished)] = stamps["spans"]
    assert name == "registration" and started < events["registered"] < finished


def test_without_the_variable_nothing_is_written(tmp_path, monkeypatch, clock):
    monkeypatch.delenv(VARIABLE, raising=False)
    monkeypatch.chdir(tmp_path)
    manager = _create_hook_manager()
    manager.register(TimingHooks())
    manager.hook.after_pipeline_run(run_params={}, run_result=None, pipeline=None, catalog=None)
    assert list(tmp_path.iterdir()) == []


def test_the_garbage_collectors_passes_are_stamped_when_timed(tmp_path, monkeypatch):
    monkeypatch.setenv(VARIABLE, str(tmp_path / "timings.json"))
    monkeypatch.setattr(timing, "COLLECTION_SECONDS", 0.0)  # every pass, however short
    manager = _create_hook_manager()
    manager.register(TimingHooks())
    manager.hook.after_context_created(context=SimpleNamespace())
    manager.hook.before_pipeline_run(run_params={}, pipeline=None, catalog=None)
    gc.collect()
    manager.hook.after_pipeline_run(run_params={}, run_result=None, pipeline=None, catalog=None)
    stamps = json.loads((tmp_path / "timings.json").read_text())
    assert 2 in {generation for generation, *_ in stamps["collections"]}
    assert all(
        stamps["context_created"] <= started <= finished <= stamps["run_finished"]
        for _, started, finished in stamps["collections"]
    )
