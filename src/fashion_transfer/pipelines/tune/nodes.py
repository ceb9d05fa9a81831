"""An Optuna study over one stage's training recipe with the project's own training code, and
its reports. The study lives in its storage and each trial is logged as a nested MLflow run
as it ends (studies.py), so that a long study can be watched, shared between workers and
resumed; everything else leaves through the catalog."""

from __future__ import annotations

import math
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
    with_values,
)
from fashion_transfer.pipelines.pretrain.nodes import pretrain
from fashion_transfer.pipelines.transfer.nodes import transfer
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
    split, and scores its best validation accuracy (the test split is not handed to it).
    Hopeless trials are pruned on their per-epoch validation accuracy."""
    tune = TuneParams.model_validate(tune_params)
    if preset == TUNED_PRESET:
        raise ParameterError(
            [f"preset: a study tunes a preset's recipe; run it on {studies.BASE_OF_TUNED!r}"]
        )
    study = studies.open_study(tune, preset)
    stage_data = pretrain_data if tune.stage == "pretrain" else transfer_data
    training_data = {k: v for k, v in stage_data.items() if not k.startswith("test_")}
    base = pretrain_params if tune.stage == "pretrain" else transfer_params
    schema = TrainingParams if tune.stage == "pretrain" else TransferParams
    feature_cache: dict = {}  # the frozen blocks' output, computed once for all trials

    def train(recipe: dict, on_epoch_end) -> list[dict]:
        if tune.stage == "pretrain":
            _, history = pretrain(training_data, model_params, recipe, runtime, on_epoch_end)
        else:
            recipe = {**recipe, "scratch_baseline": False}
            _, history = transfer(
                pretrain_model, training_data, recipe, runtime, feature_cache, on_epoch_end
            )
        return history

    def objective(trial: optuna.Trial) -> float:
        values = studies.suggest(trial, tune.search_space[tune.stage])
        recipe = schema.model_validate(with_values(base, values))
        planned = recipe.epochs + getattr(recipe, "fine_tune_epochs", 0)
        trial.set_user_attr("planned_epochs", planned)
        trial.set_user_attr("worker", studies.worker_name())
        with studies.trial_run(trial, study, values) as log_epoch:

            def on_epoch_end(row: dict) -> None:
                log_epoch(row)
                trial.report(row["val_accuracy"], row["epoch"])
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after epoch {row['epoch']}")

            try:
                history = train(recipe.model_dump(), on_epoch_end)
            except TrainingDivergedError as error:  # a recipe that does not train: FAIL
                trial.set_user_attr("fail_reason", str(error))
                return math.nan
            value = max(row["val_accuracy"] for row in history)
            mlflow.log_metric(f"{tune.stage}/best_val_accuracy", value)
        return value

    studies.run_study(study, objective, tune)
    if any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials):
        best = study.best_trial
        mlflow.log_params(
            {
                "tune.best_trial": best.number,
                **{f"tune.best.{key}": value for key, value in best.params.items()},
            }
        )
    return study


def summarise_study(
    study: optuna.Study, pretrain_params: dict, transfer_params: dict, tune_params: dict
) -> tuple[pd.DataFrame, dict, dict]:
    """The trials table, the best recipe (for best_params.yml) and the study's figures as
    MLflow metrics of the run: best value and trial, trials per state, and the epochs that
    pruning saved (epochs trained against the epochs the same trials had planned)."""
    tune = TuneParams.model_validate(tune_params)
    trials = trials_table(study)
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
        trial = study.best_trial
        figures |= {"tune/best_val_accuracy": trial.value, "tune/best_trial": trial.number}
        best |= {
            "best_trial": trial.number,
            "best_val_accuracy": trial.value,
            "params": trial.params,
            "recipe": with_values(
                pretrain_params if best["stage"] == "pretrain" else transfer_params, trial.params
            ),
        }
    metrics = {name: [{"step": 0, "value": float(value)}] for name, value in figures.items()}
    return trials, best, metrics


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: state, value, its recipe values, epochs, time, why it failed."""
    rows = []
    for trial in study.trials:
        duration = trial.duration.total_seconds() if trial.duration else np.nan
        rows.append(
            {
                "number": trial.number,
                "state": trial.state.name,
                "val_accuracy": trial.value,
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
    columns = ["number", "state", "val_accuracy", "epochs_trained", "planned_epochs"]
    return pd.DataFrame(rows, columns=None if rows else columns)


def plot_study(study: optuna.Study) -> dict[str, Figure]:
    """Optimisation history, parameter importances and parallel coordinates (Optuna's own
    matplotlib plots); a plot that needs more complete trials says so instead, and what Optuna
    warns while drawing one (importances all equal, say) is written under it, not in the log."""
    from matplotlib.figure import Figure
    from optuna.visualization import matplotlib as plots

    figures = {}
    for name, plot in (
        ("optimisation_history.png", plots.plot_optimization_history),
        ("param_importances.png", plots.plot_param_importances),
        ("parallel_coordinate.png", plots.plot_parallel_coordinate),
    ):
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UserWarning)
                # An axis of a parameter that every trial shares: matplotlib widens it itself.
                warnings.filterwarnings("ignore", message="Attempting to set identical low")
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
