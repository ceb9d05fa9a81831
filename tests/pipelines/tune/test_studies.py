"""How a study runs its trials (fashion_transfer/pipelines/tune/studies.py): a lost tracking
server stops the study, a signal stops the trial at its next epoch."""

import mlflow
import pytest

from fashion_transfer.errors import TrackingStoreError
from fashion_transfer.framework import interrupt
from fashion_transfer.params import TuneParams
from fashion_transfer.pipelines.tune.studies import open_study, run_study, trial_run
from tests.pipelines.tune.test_nodes import tune_params


def test_a_tracking_server_that_stops_answering_stops_the_study(tmp_path, tracking):
    settings = TuneParams.model_validate(tune_params(tmp_path, n_trials=5))
    study = open_study(settings, "default")
    answered = []

    def objective(trial):
        if answered:
            raise mlflow.exceptions.MlflowException(
                "API request to http://10.0.0.5:5000/api/2.0/mlflow/runs/log-batch failed: "
                "Max retries exceeded with url (Caused by NewConnectionError: Connection refused)"
            )
        answered.append(trial.number)
        return 0.5

    with pytest.raises(TrackingStoreError, match="stopped answering during a trial") as raised:
        run_study(study, objective, settings)
    assert "Start the server again and run again to resume the study" in str(raised.value)
    # One trial kept, the one the server failed recorded FAIL, and no third one started.
    assert [trial.state.name for trial in study.trials] == ["COMPLETE", "FAIL"]


def test_a_signal_whose_exception_was_swallowed_stops_the_trial_at_its_next_epoch(
    tmp_path, tracking
):
    settings = TuneParams.model_validate(tune_params(tmp_path, n_trials=3))
    study = open_study(settings, "default")
    epochs = []

    def objective(trial):
        with trial_run(trial, study, {"learning_rate": 0.01}) as log_epoch:
            for epoch in (1, 2, 3):
                if epoch == 2:
                    interrupt._requested.set()  # as the handler does; its exception was lost
                log_epoch({"epoch": epoch, "val_accuracy": 0.5, "val_loss": 1.0, "train_loss": 1.0})
                epochs.append(epoch)
        return 0.5

    try:
        with pytest.raises(KeyboardInterrupt):
            run_study(study, objective, settings)
    finally:
        interrupt._requested.clear()
    assert epochs == [1]
    (trial,) = study.trials
    assert trial.state.name == "FAIL"
    assert trial.user_attrs["fail_reason"] == "interrupted (Ctrl-C or SIGTERM)"
    run = mlflow.get_run(trial.user_attrs["mlflow_run_id"])
    assert run.info.status == "KILLED" and run.data.tags["optuna.state"] == "FAIL"
