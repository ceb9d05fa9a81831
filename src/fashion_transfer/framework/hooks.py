"""Project hooks: check every parameter and the tracking store before any node runs and set
up PyTorch once; name and tag each MLflow run and register the models of a successful run
(mlflow/registration.py); one writer of data/ at a time (RunLockHooks); kedro-mlflow's hook
with batched parameters (MlflowHooks). The phases' times for the benchmark are
framework/timing.py's."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import ReadWriteLock, Timeout
from kedro.framework.hooks import hook_impl
from kedro.io import DatasetError

from fashion_transfer.framework import collector, interrupt
from fashion_transfer.framework.timing import span
from fashion_transfer.mlflow.store import (
    ABANDONED_REASON,
    HOST_TAG,
    PROCESS_TAG,
    USER_VARIABLE,
    artifact_location,
    end_abandoned_runs,
    prepare_store,
    this_process,
    tracking_uri,
)
from fashion_transfer.redact import redact

if TYPE_CHECKING:
    from fashion_transfer.params import ProjectParams

# PyTorch, MLflow and the pipelines are imported by the hooks that use them: settings.py
# imports this module at every start of the `kedro` command (`kedro --help`, `kedro registry
# list` too), and those imports take seconds.

logger = logging.getLogger(__name__)


class ProjectHooks:
    def __init__(self) -> None:
        self.params: ProjectParams | None = None
        self.project_path: Path | None = None
        self.training_precision: str | None = None

    # tryfirst: before kedro-mlflow opens the tracking store, so that bad parameters stop the
    # run before MLflow does anything, and a new SQLite store is created by one run at a time.
    @hook_impl(tryfirst=True)
    def after_context_created(self, context) -> None:
        import torch

        from fashion_transfer.params import validate_parameters
        from fashion_transfer.training import prepare_device, resolve_device, resolve_precision

        self.params = validate_parameters(context.params)
        self.project_path = Path(context.project_path)
        experiment = context.config_loader["mlflow"]["tracking"]["experiment"]["name"]
        prepare_store(tracking_uri(), experiment, artifact_location())
        # Denormal floats (weights decaying towards zero late in training) can slow CPU
        # kernels down by orders of magnitude; flushing them to zero costs no accuracy.
        torch.set_flush_denormal(True)
        if self.params.runtime.num_threads:
            torch.set_num_threads(self.params.runtime.num_threads)
        runtime = self.params.runtime
        device = resolve_device(runtime.device)
        self.training_precision = resolve_precision(runtime.precision, device)
        prepare_device(device)  # once for the run's stages (a GPU's warm-up)
        logger.info(
            "PyTorch uses %d CPU threads; training precision %s",
            torch.get_num_threads(),
            self.training_precision,
        )

    # Runs after kedro-mlflow's before_pipeline_run (project hooks are called last), so the
    # MLflow run exists.
    @hook_impl
    def before_pipeline_run(self, run_params: dict, pipeline, catalog) -> None:
        import mlflow

        from fashion_transfer.datasets.idx_dataset import OFFICIAL_MIRROR, SOURCE_ENV_VAR

        # What the start-up loaded stays for the whole run: the garbage collector, paused
        # while `kedro run` started, skips it from now on.
        collector.resume()
        if mlflow.active_run() is None:
            return
        names = run_params.get("pipeline_names") or [run_params.get("pipeline_name")]
        pipeline_name = "+".join(name or "__default__" for name in names)
        commit, dirty = _git_state(self.project_path)
        run_name = (
            f"{pipeline_name} [{self.params.preset}] {time.strftime('%Y-%m-%d %H:%M:%S')} "
            f"{commit[:7]}{'+dirty' if dirty else ''}"
        )
        mlflow.set_tags(
            {
                "mlflow.runName": run_name,
                "pipeline": pipeline_name,
                "preset": self.params.preset,
                "runtime.training_precision": self.training_precision,
                "git_commit": commit,
                "git_dirty": str(dirty).lower(),
                "data_source": redact(os.environ.get(SOURCE_ENV_VAR) or OFFICIAL_MIRROR),
                HOST_TAG: os.uname().nodename,
                PROCESS_TAG: this_process(),
                # Who made the run: the tracking server's account where there is one.
                **({"mlflow.user": user} if (user := os.environ.get(USER_VARIABLE)) else {}),
            }
        )
        # kedro-mlflow logs the parameters that nodes read; these steer the run from hooks
        # and the catalog.
        registry = self.params.registry
        steering = {
            "preset": self.params.preset,
            "runtime.training_precision": self.training_precision,
            "registry.register_models": registry.register_models,
            "registry.alias": registry.alias,
            **{f"registry.model_names.{k}": v for k, v in registry.model_names.items()},
        }
        if uri := self.params.pretrained_model_uri:
            steering["pretrained_model_uri"] = uri
            if "pretrain_model" in pipeline.inputs():
                logger.info("The pretrained model comes from the MLflow registry: %s", uri)
        mlflow.log_params(steering)
        run = mlflow.active_run().info
        logger.info(
            "MLflow run %s (%s) in experiment %s of %s",
            run.run_id,
            run_name,
            run.experiment_id,
            redact(mlflow.get_tracking_uri()),
        )

    # A signal whose KeyboardInterrupt a finaliser swallowed stops the run at the next node.
    @hook_impl
    def before_node_run(self, node, catalog, inputs, is_async) -> None:
        interrupt.check()

    @hook_impl
    def after_node_run(self, node, catalog, inputs, outputs, is_async) -> None:
        interrupt.check()

    # tryfirst: register while kedro-mlflow still holds the run open (it ends it afterwards).
    # Only a pipeline that finished gets here, so a failed run never registers anything.
    @hook_impl(tryfirst=True)
    def after_pipeline_run(self, run_params: dict, pipeline, catalog) -> None:
        import mlflow

        from fashion_transfer.mlflow import registration

        interrupt.check()
        if mlflow.active_run() is None:
            return
        # Runs of this machine whose process died without closing them (killed outright
        # between two steps) are closed by the next run that succeeds here.
        run = mlflow.active_run().info
        for abandoned in end_abandoned_runs(mlflow.MlflowClient(), run.experiment_id, run.run_id):
            logger.warning(
                "MLflow run %s was left RUNNING: %s; marked KILLED.", abandoned, ABANDONED_REASON
            )
        if "models_to_register" not in pipeline.all_outputs():
            mlflow.set_tag("registry", "skipped: this pipeline does not evaluate the models")
            return
        plan = catalog.load("models_to_register")
        if not plan:
            mlflow.set_tag("registry", "skipped: registry.register_models is false")
            logger.info("Registered nothing: registry.register_models is false.")
            return
        with span("registration"):
            registration.register(plan, catalog, self.params.registry.alias)


class MlflowHooks:
    """kedro-mlflow's hook (the MLflow run, its parameters, its datasets), registered in place
    of the plugin's own (settings.py) as mlflow/parameters.py's BatchedMlflowHook: a node's
    parameters in one MLflow request instead of one request each. Built at its first call, so
    that commands that run nothing (`kedro --help`) do not import MLflow. Last in HOOKS, it
    is called where the plugin's hook was, before the project's."""

    def __init__(self) -> None:
        self._hook = None

    @property
    def hook(self):
        if self._hook is None:
            from fashion_transfer.mlflow.parameters import BatchedMlflowHook

            self._hook = BatchedMlflowHook()
        return self._hook

    @hook_impl
    def after_context_created(self, context) -> None:
        self.hook.after_context_created(context)

    @hook_impl
    def after_catalog_created(  # noqa: PLR0913 (the hook's arguments, by name)
        self, catalog, conf_catalog, conf_creds, parameters, save_version, load_versions
    ) -> None:
        self.hook.after_catalog_created(
            catalog, conf_catalog, conf_creds, parameters, save_version, load_versions
        )

    @hook_impl
    def before_pipeline_run(self, run_params: dict, pipeline, catalog) -> None:
        self.hook.before_pipeline_run(run_params, pipeline, catalog)

    @hook_impl
    def before_node_run(self, node, catalog, inputs, is_async) -> None:
        self.hook.before_node_run(node, catalog, inputs, is_async)

    @hook_impl
    def after_pipeline_run(self, run_params: dict, pipeline, catalog) -> None:
        self.hook.after_pipeline_run(run_params, pipeline, catalog)

    @hook_impl
    def on_pipeline_error(self, error, run_params: dict, pipeline, catalog) -> None:
        self.hook.on_pipeline_error(error, run_params, pipeline, catalog)


class RunLockHooks:
    """One writer per project at a time: a run reads back what it wrote to data/ (the stage
    datasets, the pretrained model), so a second run started meanwhile waits for the first to
    finish instead of mixing its files with the other's. Read-only pipelines (tuning) share
    the lock with each other, and hold it only until they have loaded what they read. The
    lock lives in an SQLite file and is released when the run ends or its process dies, so it
    never needs clearing by hand."""

    def __init__(self) -> None:
        self.lock: ReadWriteLock | None = None
        self.unread: set[str] = set()

    @hook_impl
    def after_context_created(self, context) -> None:
        folder = Path(context.project_path) / "data"
        folder.mkdir(exist_ok=True)
        self.lock = ReadWriteLock(folder / ".kedro-run.lock", is_singleton=False)

    # tryfirst: before kedro-mlflow opens the MLflow run, so a waiting run does not show as
    # running in the MLflow UI.
    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict, pipeline, catalog) -> None:
        from fashion_transfer.pipeline_registry import READ_ONLY_PIPELINES

        names = set(run_params.get("pipeline_names") or [run_params.get("pipeline_name")])
        reader = bool(names) and names <= READ_ONLY_PIPELINES
        if reader:
            self.unread = {name for name in pipeline.inputs() if not name.startswith("params:")}
            _check_inputs_exist(self.unread, catalog, names)
        acquire = self.lock.acquire_read if reader else self.lock.acquire_write
        try:
            acquire(timeout=0)
        except Timeout:
            logger.warning(
                "Another kedro run of this project is %s data/; waiting for it to finish "
                "(lock file %s).",
                "writing" if reader else "using",
                self.lock.lock_file,
            )
            acquire()

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data, node) -> None:
        if self.unread:
            self.unread.discard(dataset_name)
            if not self.unread:  # a reader has loaded all it reads: writers may go on
                self._release()

    @hook_impl(trylast=True)
    def after_pipeline_run(self, run_params: dict, pipeline, catalog) -> None:
        self._release()

    @hook_impl(trylast=True)
    def on_pipeline_error(self, error, run_params: dict, pipeline, catalog) -> None:
        self._release()

    def _release(self) -> None:
        with contextlib.suppress(RuntimeError):  # not held (any more)
            self.lock.release()


def _check_inputs_exist(inputs: set[str], catalog, pipelines: set[str]) -> None:
    """A read-only pipeline reads what a full `kedro run` made: say so before anything
    runs if it is missing."""
    missing = sorted(name for name in inputs if not catalog.exists(name))
    if missing:
        raise DatasetError(
            f"The {' and '.join(sorted(pipelines))} pipeline reads {', '.join(missing)}, which "
            "this project has not made yet. Run `kedro run` (or `make run`) first; a smaller "
            "run such as `kedro run --params split.max_examples_per_stage=2000` also makes them."
        )


def _git_state(project_path: Path | None) -> tuple[str, bool]:
    """The commit checked out in the project and whether tracked files differ from it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=project_path,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=project_path,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown", False
    return commit, bool(status.strip())
