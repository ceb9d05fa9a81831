"""Optuna studies over one stage's training recipe: the study in its storage (SQLite in the
project, or any SQLAlchemy URL such as PostgreSQL), each trial a nested MLflow run under the
`kedro run` that runs it, and the best recipe for `--params preset=tuned`. The tune pipeline's
nodes (nodes.py) run a study with these."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import optuna
import sqlalchemy
from mlflow.entities import RunStatus
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from optuna.trial import FrozenTrial

from fashion_transfer.errors import (
    ParameterError,
    StudyMismatchError,
    StudyStorageError,
    TrackingStoreError,
)
from fashion_transfer.framework import interrupt
from fashion_transfer.framework.paths import in_project
from fashion_transfer.mlflow.store import unreachable
from fashion_transfer.params import (
    TUNED_PRESET,
    SearchDimension,
    TuneParams,
    split_model_values,
    with_values,
)
from fashion_transfer.redact import redact

logger = logging.getLogger(__name__)

# The preset that `--params preset=tuned` puts the best recipe on.
BASE_OF_TUNED = "default"


def storage(tune: TuneParams) -> optuna.storages.RDBStorage:
    """The study's storage, with heartbeats: a worker that dies mid-trial stops beating, and
    after `grace_period` seconds the next worker to start a trial marks it FAIL and queues its
    parameters again (up to `max_retry` times)."""
    url = in_project(tune.storage)
    engine = {}
    if urlparse(url).scheme == "sqlite":
        Path(urlparse(url).path[1:]).parent.mkdir(parents=True, exist_ok=True)
        # Several workers on one SQLite file wait for each other's writes instead of failing.
        engine = {"connect_args": {"timeout": 60}}
    heartbeat = {}
    if tune.heartbeat_interval:
        heartbeat = {
            "heartbeat_interval": tune.heartbeat_interval,
            "grace_period": tune.grace_period,
            "heartbeat_stale_trial_callback": StaleTrialCallback(tune.max_retry),
        }
    for attempt in range(SCHEMA_ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine, **heartbeat)
        except sqlalchemy.exc.OperationalError as error:  # not there, or refused us
            reason = str(error.orig).strip().splitlines()[0]
            raise StudyStorageError(
                f"The tuning study's database at {tune.storage} could not be opened "
                f"({reason}). Start it (`make team-up` for the local stack), or fix "
                "tune.storage, and PGPASSWORD or ~/.pgpass for its password."
            ) from None
        except sqlalchemy.exc.DBAPIError as error:
            reason = str(error.orig).strip().splitlines()[0]
            if "file is not a database" in reason or "malformed" in reason:
                path = urlparse(url).path[1:]
                raise StudyStorageError(
                    f"The tuning study's database {path} is damaged ({reason}), so nothing was "
                    f"read from it or written to it. Restore it from a backup, or move it "
                    f"aside (`mv {path} {path}.damaged`) to start new studies there."
                ) from None
            # Workers that start together on a new database race to create Optuna's
            # tables ("duplicate key ... studydirection"); the loser finds them made.
            if attempt == SCHEMA_ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0.5, 1.5))


SCHEMA_ATTEMPTS = 5


STALE_REASON = "its worker stopped beating (killed, or lost its machine)"


class StaleTrialCallback:
    """Run by the live worker that finds a trial stale: queue its parameters again (Optuna's
    retry) and end the dead worker's MLflow runs, which nobody else would end, as KILLED with
    the reason, so that the MLflow UI does not show them running forever: the trial's run
    and the `kedro run` above it (a live worker never stops beating, so its process is gone)."""

    def __init__(self, max_retry: int | None):
        self.retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.retry(study, trial)
        run_id = trial.user_attrs.get("mlflow_run_id")
        if run_id is None:  # died before its run started
            return
        client = mlflow.MlflowClient()
        try:
            parent_id = client.get_run(run_id).data.tags.get(MLFLOW_PARENT_RUN_ID)
            ended = _kill_if_running(
                client, run_id, {"optuna.state": "FAIL", "optuna.fail_reason": STALE_REASON}
            )
            if parent_id:
                reason = f"trial {trial.number}: {STALE_REASON}"
                ended += _kill_if_running(client, parent_id, {"killed_reason": reason})
        except mlflow.exceptions.MlflowException as error:
            # The dead worker tracked to another store (workers without a shared server).
            logger.warning(
                "Trial %d failed: %s. Its MLflow run %s could not be ended here (%s).",
                trial.number,
                STALE_REASON,
                run_id,
                error,
            )
            return
        if ended:
            logger.warning(
                "Trial %d failed: %s. MLflow runs marked KILLED: %s.",
                trial.number,
                STALE_REASON,
                ", ".join(ended),
            )


def _kill_if_running(client: mlflow.MlflowClient, run_id: str, tags: dict) -> list[str]:
    """End the run as KILLED with `tags` if it is still RUNNING; the ids it ended."""
    if client.get_run(run_id).info.status != "RUNNING":
        return []
    for key, value in tags.items():
        client.set_tag(run_id, key, value)
    client.set_terminated(run_id, RunStatus.to_string(RunStatus.KILLED))
    return [run_id]


def open_study(tune: TuneParams, preset: str) -> optuna.Study:
    """The study named for this stage and preset, created or resumed. Its sampler's seed is
    shifted by the trials it already holds, so that a resumed study draws new recipes."""
    name = tune.name_for(preset)
    directions = ["maximize", "minimize"] if tune.two_objectives else ["maximize"]
    study = optuna.create_study(
        study_name=name,
        storage=storage(tune),
        directions=directions,
        load_if_exists=True,
        pruner=_pruner(tune),
    )
    attrs = study.user_attrs
    if not attrs:
        study.set_user_attr("stage", tune.stage)
        study.set_user_attr("preset", preset)
    elif (attrs["stage"], attrs["preset"]) != (tune.stage, preset):
        raise StudyMismatchError(
            f"The study {name!r} in {tune.storage} tunes the {attrs['stage']} stage of preset "
            f"{attrs['preset']!r}, not the {tune.stage} stage of {preset!r}. Name another "
            "study with --params tune.study_name=NAME, or tune what that study tunes."
        )
    if len(study.directions) != len(directions):
        held = "accuracy_and_seconds" if len(study.directions) == 2 else "accuracy"
        raise StudyMismatchError(
            f"The study {name!r} in {tune.storage} has the objective {held}, not "
            f"{tune.objective}. Name another study with --params tune.study_name=NAME, or "
            f"run it with tune.objective={held}."
        )
    seed = None if tune.sampler_seed is None else tune.sampler_seed + len(study.trials)
    # constant_liar: parallel workers do not all draw next to the same running trial.
    study.sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    return study


def _pruner(tune: TuneParams) -> optuna.pruners.BasePruner:
    settings = tune.pruner
    if tune.two_objectives:  # Optuna prunes single-objective studies only
        return optuna.pruners.NopPruner()
    if settings.type == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=settings.n_startup_trials, n_warmup_steps=settings.n_warmup_steps
        )
    if settings.type == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, settings.n_warmup_steps))
    return optuna.pruners.NopPruner()


def suggest(trial: optuna.Trial, space: dict[str, SearchDimension]) -> dict:
    """One value per recipe key, drawn from its range."""
    values = {}
    for key, dimension in space.items():
        if dimension.type == "categorical":
            values[key] = trial.suggest_categorical(key, dimension.choices)
        elif dimension.type == "int":
            values[key] = trial.suggest_int(key, int(dimension.low), int(dimension.high))
        else:
            values[key] = trial.suggest_float(key, dimension.low, dimension.high, log=dimension.log)
    return values


@contextlib.contextmanager
def trial_run(trial: optuna.Trial, study: optuna.Study, values: dict) -> Iterator[Callable]:
    """A nested MLflow run for one trial (under the active `kedro run`), so that the MLflow
    UI's compare view lines the trials up. Yields the per-epoch logger; on the way out tags
    the run with the trial's state (COMPLETE, PRUNED, FAIL) and ends it."""
    stage = study.user_attrs["stage"]
    frozen = study.get_trials(deepcopy=False)[trial.number]
    retried = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(frozen)
    tags = {
        "optuna.study_name": study.study_name,
        "optuna.trial_number": str(trial.number),
        "optuna.stage": stage,
        **({"optuna.retried_trial": str(retried)} if retried is not None else {}),
    }
    run = mlflow.start_run(run_name=f"trial {trial.number}", nested=True, tags=tags)
    trial.set_user_attr("mlflow_run_id", run.info.run_id)
    mlflow.log_params({f"{stage}.{key}": value for key, value in values.items()})

    best = {"val_accuracy": float("nan"), "epoch": 0}

    def log_epoch(row: dict) -> None:
        interrupt.check()  # a signal whose KeyboardInterrupt was swallowed stops the trial here
        mlflow.log_metrics(
            {f"{stage}/{key}": row[key] for key in ("val_accuracy", "val_loss", "train_loss")},
            step=row["epoch"],
        )
        trial.set_user_attr("epochs_trained", row["epoch"])
        if best["epoch"] == 0 or row["val_accuracy"] > best["val_accuracy"]:
            best.update(val_accuracy=row["val_accuracy"], epoch=row["epoch"])

    state, status = "FAIL", RunStatus.FAILED
    try:
        yield log_epoch
        state, status = "COMPLETE", RunStatus.FINISHED
    except optuna.TrialPruned:
        state, status = "PRUNED", RunStatus.FINISHED
        raise
    except KeyboardInterrupt:
        trial.set_user_attr("fail_reason", "interrupted (Ctrl-C or SIGTERM)")
        status = RunStatus.KILLED
        raise
    except Exception as error:
        trial.set_user_attr("fail_reason", f"{type(error).__name__}: {error}")
        raise
    finally:
        reason = trial.user_attrs.get("fail_reason")
        if reason and state == "COMPLETE":  # the objective reported a failure and returned
            state, status = "FAIL", RunStatus.FAILED
        mlflow.set_tags(
            {"optuna.state": state, **({"optuna.fail_reason": reason} if reason else {})}
        )
        mlflow.end_run(RunStatus.to_string(status))
        logger.info(
            "Trial %d %s after %d of %d epochs: best validation accuracy %.4f (epoch %d)%s",
            trial.number,
            state,
            trial.user_attrs.get("epochs_trained", 0),
            trial.user_attrs.get("planned_epochs", 0),
            best["val_accuracy"],
            best["epoch"],
            f"; {reason}" if reason else "",
        )


def run_study(study: optuna.Study, objective: Callable, tune: TuneParams) -> None:
    """Run `n_trials` more trials (fewer if `timeout_minutes` runs out). A trial that fails
    is recorded FAIL with its reason and the study goes on; Ctrl-C fails the running trial
    (none is left RUNNING) and ends the run. A tracking server that stops answering stops
    the study (its trial FAIL) instead of failing every trial after it, each slowly."""
    timeout = tune.timeout_minutes * 60 if tune.timeout_minutes else None
    # Optuna logs each trial at INFO already; the project logs its own line per trial.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    lost: list[BaseException] = []

    def stopping_when_mlflow_is_gone(trial: optuna.Trial) -> float:
        try:
            return objective(trial)
        except mlflow.exceptions.MlflowException as error:
            if unreachable(error):
                lost.append(error)
                study.stop()
            raise

    def stopping_on_a_signal(study: optuna.Study, trial: FrozenTrial) -> None:
        # Where a library turned the signal's KeyboardInterrupt into an error that `catch`
        # takes, Optuna would start the next trial: no trial starts after a signal.
        if interrupt.requested():
            study.stop()

    study.optimize(
        stopping_when_mlflow_is_gone,
        n_trials=tune.n_trials,
        timeout=timeout,
        catch=(Exception,),
        callbacks=[stopping_on_a_signal],
    )
    interrupt.check()
    if lost:
        raise TrackingStoreError(
            f"The MLflow tracking server at {redact(mlflow.get_tracking_uri())} stopped "
            f"answering during a trial ({str(lost[0]).splitlines()[0][:200]}), so the study "
            "stopped; its trials so far are kept in the study. Start the server again and "
            "run again to resume the study."
        )


def chosen_trial(study: optuna.Study, accuracy_tolerance: float = 0.0) -> FrozenTrial:
    """The trial whose recipe a study keeps: its best for one objective; for accuracy and
    seconds, the fastest trial of the Pareto front within `accuracy_tolerance` of the front's
    best validation accuracy. ValueError if no trial is complete."""
    if len(study.directions) == 1:
        return study.best_trial
    front = study.best_trials
    if not front:
        raise ValueError("the study has no complete trial yet")
    top = max(trial.values[0] for trial in front)
    within = [trial for trial in front if trial.values[0] >= top - accuracy_tolerance - 1e-12]
    return min(within, key=lambda trial: (trial.values[1], -trial.values[0]))


def worker_name() -> str:
    return f"{os.uname().nodename}:{os.getpid()}"


def best_recipe(tune: dict, presets: dict) -> dict:
    """The sections (model, pretrain, transfer) of `--params preset=tuned`: preset `default`
    with its tuned stage's recipe replaced by the best trial's values, from the study named
    by `tune` (tune.study_name, else "<stage>-default")."""
    settings = TuneParams.model_validate(tune)
    name = settings.name_for(BASE_OF_TUNED)
    try:
        study = optuna.load_study(study_name=name, storage=storage(settings))
        best = chosen_trial(study, settings.accuracy_tolerance)
    except (KeyError, ValueError) as error:
        missing = isinstance(error, KeyError)
        raise ParameterError(
            [
                f"preset: preset {TUNED_PRESET!r} takes the best recipe of the tuning study "
                f"{name!r} in {settings.storage}, which "
                + ("does not exist yet" if missing else "has no complete trial yet")
                + f"; run `kedro run --pipeline tune` first (tune.stage={settings.stage})"
            ]
        ) from None
    stage = study.user_attrs["stage"]
    sections = {key: dict(value) for key, value in presets[BASE_OF_TUNED].items()}
    model_values, recipe_values = split_model_values(best.params)
    sections[stage] = with_values(sections[stage], recipe_values)
    sections["model"] = {**sections["model"], **model_values}
    logger.info(
        "preset tuned: %s with the %s recipe of trial %d of study %r (validation accuracy %.4f)",
        BASE_OF_TUNED,
        stage,
        best.number,
        name,
        best.values[0],
    )
    return sections
