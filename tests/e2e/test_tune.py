"""End to end: `kedro run --pipeline tune` on the small run's stage data (helpers.py), with
the study in the project's SQLite storage and every trial a nested MLflow run."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml

from fashion_transfer.programs.processes import free_port
from tests.e2e.helpers import (
    QUICK_TUNE,
    SMALL_SLICE,
    assert_user_error,
    client_of,
    copy_project,
    kedro,
    new_runs,
    run_ids,
    start_kedro,
)

# The median pruner judging every trial after the first, from its first epoch.
EAGER_PRUNER = "tune.pruner.n_startup_trials=1,tune.pruner.n_warmup_steps=0"


def study_of(project) -> optuna.Study:
    storage = f"sqlite:///{project / 'mlruns' / 'optuna.db'}"
    return optuna.load_study(study_name="transfer-default", storage=storage)


def parent_and_trials(runs) -> tuple:
    parents = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    assert len(parents) == 1
    trials = [run for run in runs if run.data.tags.get("mlflow.parentRunId")]
    assert {run.data.tags["mlflow.parentRunId"] for run in trials} == {parents[0].info.run_id}
    return parents[0], {int(run.data.tags["optuna.trial_number"]): run for run in trials}


def test_a_study_runs_its_trials_as_nested_runs_and_writes_its_reports(
    project, first_study, tmp_path
):
    # The study as it is now (later tests add trials to it): the first run's are 0 and 1.
    study = study_of(project)
    parent, trials = parent_and_trials(first_study.runs)
    assert parent.info.status == "FINISHED" and parent.data.tags["pipeline"] == "tune"
    assert sorted(trials) == [0, 1] and study.user_attrs == {
        "stage": "transfer",
        "preset": "default",
    }
    made = [trial for trial in study.trials if trial.number in trials]
    assert len(made) == 2
    for trial in made:
        run = trials[trial.number]
        assert run.data.tags["optuna.state"] == trial.state.name == "COMPLETE"
        assert run.data.metrics["transfer/best_val_accuracy"] == trial.value
        for key, value in trial.params.items():
            assert run.data.params[f"transfer.{key}"] == str(value)

    # The reports as that run logged them (data/08_reporting/tuning/ holds the latest run's).
    reports = Path(
        client_of(project).download_artifacts(parent.info.run_id, "tuning", str(tmp_path))
    )
    best_trial = max(made, key=lambda trial: trial.value)
    table = pd.read_csv(reports / "trials.csv")
    assert list(table["number"]) == [0, 1] and set(table["state"]) == {"COMPLETE"}
    best = yaml.safe_load((reports / "best_params.yml").read_text())
    assert best["best_trial"] == best_trial.number
    assert best["best_val_accuracy"] == best_trial.value
    assert best["params"] == best_trial.params
    for name in ("optimisation_history", "param_importances", "parallel_coordinate"):
        assert (reports / f"{name}.png").stat().st_size > 10_000
    artifacts = {a.path for a in client_of(project).list_artifacts(parent.info.run_id, "tuning")}
    assert {
        "tuning/trials.csv",
        "tuning/pareto_front.csv",
        "tuning/best_params.yml",
        "tuning/param_importances.png",
    } <= artifacts
    # One objective: the front is the best trial (or the trials that tie with it).
    front = pd.read_csv(reports / "pareto_front.csv")
    assert best_trial.number in set(front["number"])
    assert set(front["val_accuracy"]) == {best_trial.value}
    assert parent.data.metrics["tune/best_val_accuracy"] == best_trial.value
    assert parent.data.params["tune.best_trial"] == str(best_trial.number)
    assert parent.data.params["tune.best.learning_rate"] == str(best_trial.params["learning_rate"])


def test_a_second_run_resumes_the_study_and_records_pruned_and_failed_trials(project, first_study):
    before = len(study_of(project).trials)
    # Queued for the next run: a hopeless recipe, pruned against the complete trials after
    # its first epoch; then one whose loss blows up, recorded FAIL; then the sampler's own.
    study = study_of(project)
    study.enqueue_trial({"learning_rate": 1e-9, "epochs": 2, "fine_tune_epochs": 1})
    study.enqueue_trial({"learning_rate": 1e30})
    result = kedro(
        project,
        "run",
        "--pipeline",
        "tune",
        "--params",
        f"tune.n_trials=3,{QUICK_TUNE},{EAGER_PRUNER}",
    )
    assert result.returncode == 0, result.output[-5000:]

    trials = study_of(project).trials
    assert len(trials) == before + 3
    pruned, failed, drawn = trials[before:]
    assert pruned.state.name == "PRUNED" and pruned.user_attrs["epochs_trained"] < 3
    assert failed.state.name == "FAIL"
    assert "the training loss became nan" in failed.user_attrs["fail_reason"]
    # The study went on after the failure (the sampler's trial may be pruned in its turn).
    assert drawn.state.name in ("COMPLETE", "PRUNED")
    _, runs = parent_and_trials(result.runs)
    assert {number: run.data.tags["optuna.state"] for number, run in runs.items()} == {
        pruned.number: "PRUNED",
        failed.number: "FAIL",
        drawn.number: drawn.state.name,
    }
    assert "nan" in runs[failed.number].data.tags["optuna.fail_reason"]
    assert f"Trial {failed.number} FAIL" in result.output


def test_ctrl_c_kills_the_run_leaves_no_trial_running_and_the_next_run_resumes(
    project, first_study
):
    before = len(study_of(project).trials)
    known = run_ids(project)
    run = start_kedro(
        project,
        "run",
        "--pipeline",
        "tune",
        "--params",
        f"tune.n_trials=5,{QUICK_TUNE},tune.pruner.type=none,tune.search_space.transfer.epochs.low=30,"
        "tune.search_space.transfer.epochs.high=31",
    )
    seen = []
    try:
        for line in run.stdout:  # the second epoch of a trial of this run's 30-31 epochs
            seen.append(line)
            if re.search(r"transfer epoch 2/3[01]\b", line):
                run.send_signal(signal.SIGINT)
                break
        output = "".join(seen) + run.communicate(timeout=120)[0]
    finally:
        run.kill()
    assert run.returncode != 0 and "Interrupted. The MLflow run is marked KILLED" in output
    trials = study_of(project).trials
    new = trials[before:]
    said = [line.strip()[:160] for line in output.splitlines() if "Trial " in line]
    found = [(t.number, t.state.name, t.params.get("epochs")) for t in new] + said
    # Ctrl-C stopped the trial it landed in, and the run started no trial after it.
    interrupted = new[-1]
    assert [t for t in new if t.params.get("epochs", 0) >= 30] == [interrupted], found
    assert interrupted.state.name == "FAIL", found
    assert interrupted.user_attrs["fail_reason"] == "interrupted (Ctrl-C or SIGTERM)"
    assert not [t for t in trials if t.state.name == "RUNNING"]
    runs = {r.info.run_id: r for r in new_runs(project, known)}
    assert runs[interrupted.user_attrs["mlflow_run_id"]].info.status == "KILLED"
    parent = [r for r in runs.values() if "mlflow.parentRunId" not in r.data.tags]
    assert [r.info.status for r in parent] == ["KILLED"]

    again = kedro(project, "run", "--pipeline", "tune", "--params", f"tune.n_trials=1,{QUICK_TUNE}")
    assert again.returncode == 0, again.output[-5000:]
    resumed = study_of(project).trials
    assert len(resumed) == len(trials) + 1 and resumed[:-1] == trials
    assert resumed[-1].state.name in ("COMPLETE", "PRUNED")


def test_preset_tuned_runs_with_the_best_recipe_of_the_study(project, first_study):
    best = study_of(project).best_trial
    result = kedro(
        project,
        "run",
        "--pipeline",
        "transfer",
        "--params",
        f"preset=tuned,{SMALL_SLICE},transfer.scratch_baseline=false",
    )
    assert result.returncode == 0, result.output[-5000:]
    params = result.runs[0].data.params
    assert params["preset"] == "tuned"
    assert float(params["transfer.learning_rate"]) == pytest.approx(best.params["learning_rate"])
    assert params["transfer.batch_size"] == str(best.params["batch_size"])
    # Keys outside the search space are preset default's.
    assert (params["transfer.optimizer"], params["transfer.schedule"]) == ("adamw", "onecycle")
    assert f"preset tuned: default with the transfer recipe of trial {best.number}" in (
        result.output
    )


def test_tuning_before_any_run_says_what_to_run_first(tmp_path):
    fresh = copy_project(tmp_path / "fresh")
    result = kedro(fresh, "run", "--pipeline", "tune")
    assert_user_error(
        result,
        "Error: The tune pipeline reads pretrain_data, pretrain_model, transfer_data, which "
        "this project has not made yet. Run `kedro run`",
    )


def test_a_study_database_that_does_not_answer_is_one_paragraph_for_tune_and_preset_tuned(
    project, first_run
):
    storage = f"postgresql+psycopg://tuner@127.0.0.1:{free_port()}/optuna"  # nothing listens
    tuning = kedro(project, "run", "--pipeline", "tune", "--params", f"tune.storage={storage}")
    # The tuned preset reads the study while the parameters resolve, inside OmegaConf.
    tuned = kedro(project, "run", "--params", f"preset=tuned,tune.storage={storage}")
    for result in (tuning, tuned):
        assert_user_error(
            result,
            f"Error: The tuning study's database at {storage} could not be opened (",
            "PGPASSWORD",
        )
        assert "interpolation" not in result.output and "full_key" not in result.output
