"""An Optuna study over one stage's training recipe with the project's own training code, and
its reports. The study lives in its storage and each trial is logged as a nested MLflow run
as it ends (studies.py), so that a long study can be watched, shared between workers and
resumed; everything else leaves through the catalog."""

from __future__ import annotations

import math
import time
import warnings
from typing import TYPE_CHECKING

import mlflow
import numpy as np
import optuna
import pandas as pd

from fashion_transfer.errors import ParameterError, TrainingDivergedError
from fashion_transfer.model import FashionCNN
from fashion_transfer.params import (
    TUNED_PRESET,
    TrainingParams,
    TransferParams,
    TuneParams,
    split_model_values,
    value_at,
    with_values,
    without_pipeline_extras,
)
from fashion_transfer.pipelines.pretrain.nodes import pretrain
from fashion_transfer.pipelines.transfer.nodes import frozen_features, transfer
from fashion_transfer.pipelines.tune import studies

if TYPE_CHECKING:  # matplotlib is imported by the node that draws, as in evaluation/nodes.py
    from matplotlib.figure import Figure
else:
    Figure = object


def tune_recipe(
    pretrain_model: FashionCNN,
    pretrain_data: dict,
    transfer_data: dict,
    tune_params: dict,
    preset: str,
    model_params: dict,
    pretrain_params: dict,
    transfer_params: dict,
    runtime: dict,
) -> optuna.Study:
    """Run `tune.n_trials` more trials of the study for `tune.stage`: each trial trains the
    stage's recipe of this run's preset with the sampled values, on the stage's training
    split, and scores its best validation accuracy (the test split is not handed to it),
    and with `tune.objective: accuracy_and_seconds` also its training seconds. Hopeless
    trials of a single-objective study are pruned on their per-epoch validation accuracy;
    a new two-objective study's first trial is the preset's own recipe, so that its Pareto
    front shows where today's recipe stands."""
    tune = TuneParams.model_validate(tune_params)
    if preset == TUNED_PRESET:
        raise ParameterError(
            [f"preset: a study tunes a preset's recipe; run it on {studies.BASE_OF_TUNED!r}"]
        )
    study = studies.open_study(tune, preset)
    stage_data = pretrain_data if tune.stage == "pretrain" else transfer_data
    training_data = {k: v for k, v in stage_data.items() if not k.startswith("test_")}
    base = pretrain_params if tune.stage == "pretrain" else transfer_params
    # Trials compare recipes by validation accuracy (and seconds) on the training split:
    # without outlier exposure, which is about refusing what is none of the classes (and
    # needs the outlier pictures that only the training pipelines make), and without
    # training photos, which only the training pipelines render.
    base = without_pipeline_extras(base)
    schema = TrainingParams if tune.stage == "pretrain" else TransferParams
    feature_cache: dict = {}  # the frozen blocks' output, computed once for all trials,
    if tune.stage == "transfer":  # before the first, so that no trial's seconds include it
        blocks = (TransferParams.model_validate(base).fine_tune_blocks,)
        feature_cache = frozen_features(pretrain_model, training_data, runtime, blocks)
    space = tune.search_space[tune.stage]
    if tune.two_objectives and not study.trials:
        current = {**base, "model": model_params}
        values = {key: value_at(current, key) for key in space}
        study.enqueue_trial(
            {key: value for key, value in values.items() if value is not None},
            user_attrs={"preset_recipe": True},
        )

    def train(recipe: dict, model: dict, on_epoch_end) -> list[dict]:
        if tune.stage == "pretrain":
            _, history = pretrain(training_data, model, recipe, runtime, on_epoch_end)
        else:
            recipe = {**recipe, "scratch_baseline": False}
            _, history = transfer(
                pretrain_model, training_data, recipe, runtime, feature_cache, on_epoch_end
            )
        return history

    def objective(trial: optuna.Trial) -> float | tuple[float, float]:
        values = studies.suggest(trial, space)
        model_values, recipe_values = split_model_values(values)
        recipe = schema.model_validate(with_values(base, recipe_values))
        planned = recipe.epochs + getattr(recipe, "fine_tune_epochs", 0)
        trial.set_user_attr("planned_epochs", planned)
        trial.set_user_attr("worker", studies.worker_name())
        failed = (math.nan, math.nan) if tune.two_objectives else math.nan
        with studies.trial_run(trial, study, values) as log_epoch:

            def on_epoch_end(row: dict) -> None:
                log_epoch(row)
                if not tune.two_objectives:
                    trial.report(row["val_accuracy"], row["epoch"])
                    if trial.should_prune():
                        raise optuna.TrialPruned(f"pruned after epoch {row['epoch']}")

            started = time.perf_counter()
            try:
                history = train(recipe.model_dump(), {**model_params, **model_values}, on_epoch_end)
            except TrainingDivergedError as error:  # a recipe that does not train: FAIL
                trial.set_user_attr("fail_reason", str(error))
                return failed
            seconds = time.perf_counter() - started
            value = max(row["val_accuracy"] for row in history)
            trial.set_user_attr("train_seconds", seconds)
            mlflow.log_metrics(
                {f"{tune.stage}/best_val_accuracy": value, f"{tune.stage}/train_seconds": seconds}
            )
        return (value, seconds) if tune.two_objectives else value

    studies.run_study(study, objective, tune)
    if any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials):
        best = studies.chosen_trial(study, tune.accuracy_tolerance)
        mlflow.log_params(
            {
                "tune.best_trial": best.number,
                **{f"tune.best.{key}": value for key, value in best.params.items()},
            }
        )
    return study


def summarise_study(
    study: optuna.Study, pretrain_params: dict, transfer_params: dict, tune_params: dict
) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
    """The trials table, its Pareto front (accuracy against training seconds, fastest
    first; for one objective, the best trial), the kept recipe (for best_params.yml) and the
    study's figures as MLflow metrics of the run: the kept trial's value and number, trials
    per state, and the epochs that pruning saved (epochs trained against the epochs the
    same trials had planned)."""
    tune = TuneParams.model_validate(tune_params)
    trials = trials_table(study)
    front = trials[trials["pareto_optimal"].astype(bool)].sort_values(["train_seconds", "number"])
    by_state = trials["state"].value_counts()
    finished = trials[trials["state"].isin(["COMPLETE", "PRUNED"])]
    figures = {
        "tune/trials_complete": int(by_state.get("COMPLETE", 0)),
        "tune/trials_pruned": int(by_state.get("PRUNED", 0)),
        "tune/trials_failed": int(by_state.get("FAIL", 0)),
        "tune/epochs_trained": int(finished["epochs_trained"].sum()),
        "tune/epochs_planned": int(finished["planned_epochs"].sum()),
    }
    best = {
        "study_name": study.study_name,
        "storage": tune.storage,  # holds no password: the schema refuses one
        "stage": study.user_attrs["stage"],
        "preset": study.user_attrs["preset"],
    }
    if figures["tune/trials_complete"]:
        trial = studies.chosen_trial(study, tune.accuracy_tolerance)
        figures |= {"tune/best_val_accuracy": trial.values[0], "tune/best_trial": trial.number}
        model_values, recipe_values = split_model_values(trial.params)
        best |= {
            "objective": tune.objective,
            "best_trial": trial.number,
            "best_val_accuracy": trial.values[0],
            "train_seconds": trial.user_attrs.get("train_seconds"),
            "params": trial.params,
            "recipe": with_values(
                pretrain_params if best["stage"] == "pretrain" else transfer_params,
                recipe_values,
            ),
            **({"model": model_values} if model_values else {}),
        }
        if tune.two_objectives:
            figures["tune/best_train_seconds"] = trial.values[1]
            figures["tune/pareto_front_size"] = len(front)
    metrics = {name: [{"step": 0, "value": float(value)}] for name, value in figures.items()}
    return trials, front, best, metrics


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: state, value, its recipe values, epochs, training and trial
    seconds, whether it is on the Pareto front (the best trial, for one objective), whether
    it is the preset's own recipe, why it failed."""
    front = {trial.number for trial in _front(study)}
    rows = []
    for trial in study.trials:
        duration = trial.duration.total_seconds() if trial.duration else np.nan
        rows.append(
            {
                "number": trial.number,
                "state": trial.state.name,
                "val_accuracy": trial.values[0] if trial.values else None,
                "train_seconds": trial.user_attrs.get("train_seconds", np.nan),
                "pareto_optimal": trial.number in front,
                "preset_recipe": trial.user_attrs.get("preset_recipe", False),
                **trial.params,
                "epochs_trained": trial.user_attrs.get("epochs_trained", 0),
                "planned_epochs": trial.user_attrs.get("planned_epochs", 0),
                "seconds": duration,
                "retry_of": trial.system_attrs.get("failed_trial"),
                "fail_reason": trial.user_attrs.get("fail_reason"),
                "worker": trial.user_attrs.get("worker"),
                "mlflow_run_id": trial.user_attrs.get("mlflow_run_id"),
            }
        )
    columns = ["number", "state", "val_accuracy", "train_seconds", "pareto_optimal"]
    columns += ["preset_recipe", "epochs_trained", "planned_epochs"]
    return pd.DataFrame(rows, columns=None if rows else columns)


def _front(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    try:
        return study.best_trials  # for one objective: the best trial, or none
    except ValueError:
        return []


def plot_study(study: optuna.Study) -> dict[str, Figure]:
    """Optimisation history, parameter importances and parallel coordinates of the validation
    accuracy (Optuna's own matplotlib plots), and for accuracy and seconds the Pareto front,
    the preset's own recipe named on it; a plot that needs more complete trials says so
    instead, and what Optuna warns while drawing one (importances all equal, say) is written
    under it, not in the log."""
    from functools import partial

    from matplotlib.figure import Figure
    from optuna.visualization import matplotlib as plots

    accuracy = {}
    if len(study.directions) == 2:
        accuracy = {"target": lambda trial: trial.values[0], "target_name": "validation accuracy"}
    drawings = [
        ("optimisation_history.png", partial(plots.plot_optimization_history, **accuracy)),
        ("param_importances.png", partial(plots.plot_param_importances, **accuracy)),
        ("parallel_coordinate.png", partial(plots.plot_parallel_coordinate, **accuracy)),
    ]
    if len(study.directions) == 2:
        drawings.append(("pareto_front.png", _plot_pareto_front))
    figures = {}
    for name, plot in drawings:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UserWarning)
                # An axis of a parameter that every trial shares: matplotlib widens it itself.
                warnings.filterwarnings("ignore", message="Attempting to set identical low")
                # Optuna marks its matplotlib plots experimental; that is no note on the plot.
                warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
                figure = plot(study).figure
            figure.set_size_inches(10, 6)
            figure.tight_layout()
            notes = dict.fromkeys(str(warning.message) for warning in caught)
            if notes:
                figure.subplots_adjust(bottom=0.2)
                figure.text(0.01, 0.01, "\n".join(notes), fontsize=8, va="bottom", wrap=True)
        except (ValueError, RuntimeError) as error:
            figure = Figure(figsize=(8, 2))
            figure.text(0.02, 0.5, f"{name[:-4]}: {error}", fontsize=9, va="center")
        figures[name] = figure
    return figures


def _plot_pareto_front(study: optuna.Study):
    """Optuna's Pareto-front plot (validation accuracy against training seconds), with each
    front trial's number and the preset's own recipe named."""
    from optuna.visualization import matplotlib as plots

    axes = plots.plot_pareto_front(
        study,
        targets=lambda trial: (trial.values[1], trial.values[0]),  # seconds across
        target_names=["training seconds", "validation accuracy"],
    )
    front = {trial.number for trial in study.best_trials}
    for trial in study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE]):
        label = "preset's recipe" if trial.user_attrs.get("preset_recipe") else ""
        if trial.number in front:
            label = f"{trial.number} {label}".strip()
        if label:
            axes.annotate(
                label,
                (trial.values[1], trial.values[0]),
                fontsize=8,
                textcoords="offset points",
                xytext=(4, 4),
            )
    return axes
