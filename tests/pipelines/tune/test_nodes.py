"""The tuning nodes on synthetic data, with a throw-away SQLite study and MLflow store."""

import time
import warnings
from pathlib import Path

import mlflow
import optuna
import pytest

from fashion_transfer.model import FashionCNN
from fashion_transfer.params import TuneParams
from fashion_transfer.pipelines.tune.nodes import plot_study, summarise_study, tune_recipe
from tests.conftest import RUNTIME_PARAMS, TRAINING_PARAMS

TRANSFER = {**TRAINING_PARAMS, "epochs": 2, "fine_tune_epochs": 1, "scratch_baseline": True}
PRETRAIN = {**TRAINING_PARAMS, "epochs": 2}


def tune_params(tmp_path, **changes) -> dict:
    return {
        "stage": "transfer",
        "n_trials": 2,
        "study_name": None,
        "sampler_seed": 0,
        "storage": f"sqlite:///{tmp_path / 'optuna.db'}",
        "pruner": {"type": "median", "n_startup_trials": 1, "n_warmup_steps": 0},
        "heartbeat_interval": None,
        "search_space": {
            "transfer": {
                "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
                "batch_size": {"type": "categorical", "choices": [16, 32]},
            }
        },
        **changes,
    }


def _tune(stage_data, params, preset="default"):
    return tune_recipe(
        FashionCNN("seed", 5),
        *stage_data,
        params,
        preset,
        {"architecture": "seed"},
        PRETRAIN,
        TRANSFER,
        RUNTIME_PARAMS,
    )


# The enqueued recipes lie outside the search space on purpose; Optuna says so.
@pytest.mark.filterwarnings("ignore:Fixed parameter learning_rate")
def test_trials_are_nested_runs_with_their_state_and_the_study_resumes(
    stage_data, tmp_path, tracking
):
    params = tune_params(tmp_path)
    study = _tune(stage_data, params)
    # A hopeless recipe first, pruned against the complete trials; then one whose loss blows
    # up, recorded FAIL with its reason; then one more drawn by the sampler.
    study.enqueue_trial({"learning_rate": 1e-9, "batch_size": 32})
    study.enqueue_trial({"learning_rate": 1e30, "batch_size": 32})
    study = _tune(stage_data, {**params, "n_trials": 3})

    trials = study.trials
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    states = [t.state.name for t in trials]
    assert states[:2] == ["COMPLETE", "COMPLETE"] and states[4] == "COMPLETE"
    assert states[2] == "PRUNED" and trials[2].user_attrs["epochs_trained"] == 1
    assert states[3] == "FAIL"
    assert "the training loss became nan" in trials[3].user_attrs["fail_reason"]
    assert all(t.user_attrs["planned_epochs"] == 3 for t in trials)

    client = mlflow.MlflowClient()
    runs = {
        run.data.tags["optuna.trial_number"]: run
        for run in client.search_runs(
            [tracking.info.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{tracking.info.run_id}'",
        )
    }
    assert sorted(runs, key=int) == ["0", "1", "2", "3", "4"]
    for trial in trials:
        run = runs[str(trial.number)]
        assert run.info.run_id == trial.user_attrs["mlflow_run_id"]
        assert run.data.tags["optuna.state"] == trial.state.name
        assert run.data.tags["optuna.study_name"] == "transfer-default"
        assert float(run.data.params["transfer.learning_rate"]) == trial.params["learning_rate"]
        history = client.get_metric_history(run.info.run_id, "transfer/val_accuracy")
        assert [m.step for m in history] == list(range(1, len(history) + 1))
        assert [m.value for m in history] == [trial.intermediate_values[m.step] for m in history]
    assert runs["3"].info.status == "FAILED"
    assert "nan" in runs["3"].data.tags["optuna.fail_reason"]
    assert runs["0"].data.metrics["transfer/best_val_accuracy"] == trials[0].value
    parent = client.get_run(tracking.info.run_id)
    assert parent.data.params["tune.best_trial"] == str(study.best_trial.number)


def test_the_test_split_is_never_handed_to_a_trial(stage_data, tmp_path, tracking, monkeypatch):
    seen = []
    from fashion_transfer.pipelines.tune import nodes

    def recording_transfer(model, data, *args, **kwargs):
        seen.append(set(data))
        return FashionCNN("seed", 5), [{"epoch": 1, "val_accuracy": 0.5}]

    monkeypatch.setattr(nodes, "transfer", recording_transfer)
    _tune(stage_data, tune_params(tmp_path, n_trials=1))
    assert seen and not any(key.startswith("test_") for key in seen[0])
    assert {"train_images", "val_images"} <= seen[0]


def test_a_study_of_another_stage_or_preset_is_not_resumed(stage_data, tmp_path, tracking):
    params = tune_params(tmp_path, n_trials=1, study_name="shared")
    _tune(stage_data, params)
    with pytest.raises(ValueError, match="tunes the transfer stage of preset 'default', not"):
        _tune(stage_data, params, preset="seed")


def test_pretrain_stage_trains_from_scratch_with_the_sampled_recipe(stage_data, tmp_path, tracking):
    space = {"pretrain": {"epochs": {"type": "int", "low": 1, "high": 2}}}
    study = _tune(stage_data, tune_params(tmp_path, stage="pretrain", search_space=space))
    assert study.user_attrs == {"stage": "pretrain", "preset": "default"}
    for trial in study.trials:
        assert trial.user_attrs["planned_epochs"] == trial.params["epochs"]
        assert len(trial.intermediate_values) == trial.params["epochs"]


def test_reports_table_best_recipe_metrics_and_plots(stage_data, tmp_path, tracking):
    params = tune_params(tmp_path, n_trials=3)
    study = _tune(stage_data, params)
    trials, front, best, metrics = summarise_study(study, PRETRAIN, TRANSFER, params)
    assert list(trials["number"]) == [0, 1, 2]
    # One objective: the front is the best trial, or the trials that tie with it.
    best_ones = [t.number for t in study.trials if t.value == study.best_value]
    assert study.best_trial.number in best_ones
    assert sorted(front["number"]) == best_ones
    assert list(trials["pareto_optimal"]) == [t.number in best_ones for t in study.trials]
    assert {"state", "val_accuracy", "learning_rate", "batch_size", "epochs_trained"} <= set(
        trials.columns
    )
    assert best["best_trial"] == study.best_trial.number
    assert best["recipe"]["learning_rate"] == study.best_trial.params["learning_rate"]
    assert best["recipe"]["fine_tune_epochs"] == TRANSFER["fine_tune_epochs"]  # untouched keys
    assert best["storage"] == params["storage"]
    assert metrics["tune/best_val_accuracy"] == [{"step": 0, "value": study.best_value}]
    assert (
        metrics["tune/trials_complete"][0]["value"] + metrics["tune/trials_pruned"][0]["value"] == 3
    )
    planned = metrics["tune/epochs_planned"][0]["value"]
    assert metrics["tune/epochs_trained"][0]["value"] <= planned == 9
    figures = plot_study(study)
    assert sorted(figures) == [
        "optimisation_history.png",
        "parallel_coordinate.png",
        "param_importances.png",
    ]


def test_what_optuna_warns_while_plotting_is_written_under_the_plot_not_logged():
    study = optuna.create_study(direction="maximize")
    study.add_trial(  # one trial: too few for importances, one value per parallel axis
        optuna.create_trial(
            params={"learning_rate": 0.003, "epochs": 2},
            distributions={
                "learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True),
                "epochs": optuna.distributions.IntDistribution(1, 4),
            },
            value=0.9,
        )
    )
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        figures = plot_study(study)
    assert [str(warning.message) for warning in escaped] == []
    notes = [text.get_text() for text in figures["param_importances.png"].texts]
    assert any("too small to compute importances" in note for note in notes), notes


def test_a_password_in_the_storage_url_is_refused():
    # The run's parameters are logged to MLflow; a password in the URL would be logged too.
    params = tune_params(Path("/nowhere"), storage="postgresql+psycopg://tuner:secret@db:5432/o")
    with pytest.raises(ValueError, match="holds a password.*PGPASSWORD"):
        TuneParams.model_validate(params)
    without = {**params, "storage": "postgresql+psycopg://tuner@db:5432/optuna"}
    assert TuneParams.model_validate(without).storage == without["storage"]


def test_a_study_without_a_complete_trial_reports_no_best():
    study = optuna.create_study(study_name="s")
    study.set_user_attr("stage", "transfer")
    study.set_user_attr("preset", "default")
    params = tune_params(Path("/nowhere"))
    trials, front, best, metrics = summarise_study(study, PRETRAIN, TRANSFER, params)
    assert (
        trials.empty
        and front.empty
        and "best_trial" not in best
        and "tune/best_val_accuracy" not in metrics
    )
    assert metrics["tune/trials_complete"] == [{"step": 0, "value": 0.0}]


def test_preset_tuned_needs_a_study_with_a_complete_trial(tmp_path):
    from fashion_transfer.errors import ParameterError
    from fashion_transfer.pipelines.tune.studies import best_recipe
    from tests.conftest import project_parameters

    params = project_parameters()
    tune = {**params["tune"], "storage": f"sqlite:///{tmp_path / 'optuna.db'}"}
    with pytest.raises(ParameterError, match="'transfer-default' .* does not exist yet; run"):
        best_recipe(tune, params["presets"])
    study = optuna.create_study(study_name="transfer-default", storage=tune["storage"])
    study.set_user_attr("stage", "transfer")
    with pytest.raises(ParameterError, match="has no complete trial yet"):
        best_recipe(tune, params["presets"])
    study.add_trial(
        optuna.create_trial(
            params={"learning_rate": 0.001},
            distributions={"learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-2)},
            value=0.9,
        )
    )
    sections = best_recipe(tune, params["presets"])
    assert sections["transfer"]["learning_rate"] == 0.001
    assert sections["pretrain"] == params["presets"]["default"]["pretrain"]


# The test plays the dead worker with study.ask() and calls Optuna's stale check itself.
@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_a_stale_trial_is_failed_queued_again_and_its_mlflow_runs_ended(tmp_path, tracking):
    from fashion_transfer.pipelines.tune.studies import STALE_REASON, storage

    params = TuneParams.model_validate(
        tune_params(tmp_path, heartbeat_interval=1, grace_period=1, max_retry=1)
    )
    study = optuna.create_study(study_name="stale", storage=storage(params))
    # A worker that started a trial and its MLflow run, beat once, then died.
    orphan = study.ask()
    orphan.suggest_float("learning_rate", 1e-3, 1e-2)
    client = mlflow.MlflowClient()
    worker_run = client.create_run(tracking.info.experiment_id, run_name="tune")
    run = client.create_run(
        tracking.info.experiment_id,
        run_name="trial 0",
        tags={"mlflow.parentRunId": worker_run.info.run_id},
    )
    orphan.set_user_attr("mlflow_run_id", run.info.run_id)
    study._storage.record_heartbeat(orphan._trial_id)
    time.sleep(2.5)  # past the grace period, on SQLite's whole-second clock

    optuna.storages.fail_stale_trials(study)  # what a live worker runs before each trial
    failed, retry = study.get_trials()
    assert failed.state.name == "FAIL" and retry.state.name == "WAITING"
    assert retry.params == failed.params
    ended = client.get_run(run.info.run_id)
    assert ended.info.status == "KILLED" and ended.info.end_time is not None
    assert ended.data.tags["optuna.state"] == "FAIL"
    assert "stopped beating" in ended.data.tags["optuna.fail_reason"]
    # The dead worker's kedro run above it: ended too, with the trial that showed it dead.
    worker_ended = client.get_run(worker_run.info.run_id)
    assert worker_ended.info.status == "KILLED"
    assert worker_ended.data.tags["killed_reason"] == f"trial 0: {STALE_REASON}"


def test_two_objectives_trade_accuracy_for_seconds_with_the_preset_recipe_first(
    stage_data, tmp_path, tracking
):
    space = {
        "pretrain": {
            "model.architecture": {"type": "categorical", "choices": ["seed", "compact"]},
            "epochs": {"type": "int", "low": 1, "high": 2},
        }
    }
    params = tune_params(
        tmp_path, stage="pretrain", objective="accuracy_and_seconds", search_space=space, n_trials=3
    )
    study = _tune(stage_data, params)
    assert study.study_name == "pretrain-default-seconds"
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    trials = study.trials
    assert all(t.state.name == "COMPLETE" for t in trials)
    # The first trial is the preset's own recipe (the network and epochs of this run).
    assert trials[0].params == {"model.architecture": "seed", "epochs": PRETRAIN["epochs"]}
    assert trials[0].user_attrs["preset_recipe"] is True
    for trial in trials:  # seconds are the trial's training time, measured, never pruned
        accuracy, seconds = trial.values
        assert 0 < seconds == trial.user_attrs["train_seconds"] < trial.duration.total_seconds()
        assert len(trial.intermediate_values) == 0
        assert trial.user_attrs["epochs_trained"] == trial.params["epochs"]
    # A trial that trained the compact network has its layers, not the preset's.
    run = mlflow.MlflowClient().get_run(trials[1].user_attrs["mlflow_run_id"])
    assert run.data.params["pretrain.model.architecture"] == trials[1].params["model.architecture"]
    assert run.data.metrics["pretrain/train_seconds"] == trials[1].values[1]

    table, front, best, metrics = summarise_study(study, PRETRAIN, TRANSFER, params)
    dominated = {
        t.number
        for t in trials
        for u in trials
        if u.values[0] >= t.values[0] and u.values[1] <= t.values[1] and u.values != t.values
    }
    assert set(front["number"]) == {t.number for t in trials} - dominated
    assert list(front["train_seconds"]) == sorted(front["train_seconds"])
    assert list(table["preset_recipe"]) == [True, False, False]
    # Kept: the most accurate front trial (tolerance 0), the fastest of equals.
    top = max(t.values[0] for t in trials)
    kept = min((t for t in trials if t.values[0] == top), key=lambda t: t.values[1])
    assert best["best_trial"] == kept.number and best["train_seconds"] == kept.values[1]
    assert best["model"] == {"architecture": kept.params["model.architecture"]}
    assert best["recipe"]["epochs"] == kept.params["epochs"]
    assert "model.architecture" not in best["recipe"]
    assert metrics["tune/pareto_front_size"] == [{"step": 0, "value": float(len(front))}]
    figures = plot_study(study)
    assert "pareto_front.png" in figures
    labels = [text.get_text() for text in figures["pareto_front.png"].axes[0].texts]
    assert any("preset's recipe" in label for label in labels), labels

    # The study keeps its objectives: resuming it with one objective is refused.
    with pytest.raises(ValueError, match="has the objective accuracy_and_seconds, not accuracy"):
        _tune(stage_data, {**params, "objective": "accuracy", "study_name": study.study_name})


def test_the_kept_trial_is_the_fastest_within_the_tolerance_and_preset_tuned_takes_it(tmp_path):
    from fashion_transfer.pipelines.tune.studies import best_recipe, chosen_trial
    from tests.conftest import project_parameters

    params = project_parameters()
    tune = {
        **params["tune"],
        "stage": "pretrain",
        "objective": "accuracy_and_seconds",
        "storage": f"sqlite:///{tmp_path / 'optuna.db'}",
    }
    study = optuna.create_study(
        study_name="pretrain-default-seconds",
        storage=tune["storage"],
        directions=["maximize", "minimize"],
    )
    study.set_user_attr("stage", "pretrain")
    distributions = {
        "model.architecture": optuna.distributions.CategoricalDistribution(["bn2", "compact"]),
        "epochs": optuna.distributions.IntDistribution(5, 30),
    }
    for architecture, epochs, values in (
        ("bn2", 20, [0.970, 300.0]),
        ("compact", 10, [0.966, 90.0]),
        ("compact", 6, [0.950, 50.0]),
        ("bn2", 30, [0.960, 400.0]),  # dominated
    ):
        study.add_trial(
            optuna.create_trial(
                params={"model.architecture": architecture, "epochs": epochs},
                distributions=distributions,
                values=values,
            )
        )
    assert chosen_trial(study).number == 0
    assert chosen_trial(study, 0.005).number == 1
    assert chosen_trial(study, 0.05).number == 2
    sections = best_recipe({**tune, "accuracy_tolerance": 0.005}, params["presets"])
    assert sections["model"] == {"architecture": "compact"}
    assert sections["pretrain"]["epochs"] == 10
    assert sections["transfer"] == params["presets"]["default"]["transfer"]


def test_a_model_key_is_tuned_in_the_pretraining_stage_only_and_checked():
    space = {"model.architecture": {"type": "categorical", "choices": ["bn2", "resnet"]}}
    params = tune_params(Path("/nowhere"), stage="transfer", search_space={"transfer": space})
    with pytest.raises(ValueError, match="keys \\['model.architecture'\\] that are not in"):
        TuneParams.model_validate(params)
    from fashion_transfer.params import validate_parameters
    from tests.conftest import project_parameters

    project = project_parameters()
    project["tune"] = {**project["tune"], "stage": "pretrain", "search_space": {"pretrain": space}}
    with pytest.raises(ValueError, match="model.architecture='resnet' \\(.*unknown architecture"):
        validate_parameters(project)
