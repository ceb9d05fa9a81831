"""`kedro run`'s error handling (fashion_transfer/cli.py) for faults outside the user's input."""

import mlflow
from click.testing import CliRunner
from kedro.framework.cli.project import run as kedro_run

from fashion_transfer.cli import RunWithClearErrors

REFUSED = (
    "API request to http://10.0.0.5:5000/api/2.0/mlflow/runs/log-batch failed with exception "
    "HTTPConnectionPool(host='10.0.0.5', port=5000): Max retries exceeded with url: "
    "/api/2.0/mlflow/runs/log-batch (Caused by NewConnectionError('Failed to establish a new "
    "connection: [Errno 111] Connection refused'))"
)


def _run_failing_with(error: Exception, wrapped: bool = True):
    def pipeline(**options):
        if not wrapped:
            raise error
        try:
            raise error
        except Exception as raised:  # as a library reports what went wrong under it
            raise RuntimeError("node failed") from raised

    command = RunWithClearErrors(name="run", params=kedro_run.params, callback=pipeline)
    return CliRunner().invoke(command, [])


def test_a_tracking_server_lost_during_the_run_is_one_paragraph(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mia:secret@10.0.0.5:5000")
    result = _run_failing_with(mlflow.exceptions.MlflowException(REFUSED))
    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: The MLflow tracking server at http://mia:***@10.0.0.5:5000 stopped answering "
        "during the run (API request to"
    ), result.output
    assert "Start it again" in result.output and "secret" not in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_a_dataset_that_lost_the_server_is_the_same_paragraph(monkeypatch):
    from kedro.io import DatasetError

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://10.0.0.5:5000")
    lost = mlflow.exceptions.MlflowException(REFUSED)
    try:
        raise lost
    except mlflow.exceptions.MlflowException as raised:
        try:
            raise DatasetError("Failed while saving data to dataset metrics") from raised
        except DatasetError as wrapped:
            error = wrapped
    result = _run_failing_with(error, wrapped=False)  # Kedro raises the dataset's error as is
    assert result.output.startswith("Error: The MLflow tracking server at http://10.0.0.5:5000")


def test_any_other_failure_keeps_its_traceback():
    result = _run_failing_with(mlflow.exceptions.MlflowException("RESOURCE_DOES_NOT_EXIST"))
    assert result.exit_code == 1 and isinstance(result.exception, RuntimeError)
