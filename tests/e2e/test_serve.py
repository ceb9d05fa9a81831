"""`make serve` without the model to serve: what to do, not MLflow's traceback (or, for a
tracking server that is down, its minutes of retries). Serving a registered champion goes
through the same module (servers.start_model_server), in tests/test_run.py and
tests/test_team.py."""

import subprocess
import sys

import pytest

from fashion_transfer.programs.processes import free_port
from tests.e2e.helpers import kedro_env


def _serve(tracking_uri: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fashion_transfer.programs.serve", "--port", str(free_port())],
        env={**kedro_env(), "MLFLOW_TRACKING_URI": tracking_uri},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("store", ["empty", "down"])
def test_serving_without_the_model_says_what_to_do(tmp_path, store):
    if store == "empty":  # before the first run
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
        expected = f"Error: the MLflow registry at {uri} has no "
        expected += "models:/fashion-mnist-transfer@champion ("
        fix = "make run"
    else:
        uri = f"http://127.0.0.1:{free_port()}"
        expected = f"Error: The MLflow tracking server at {uri} did not answer ("
        fix = "MLFLOW_TRACKING_URI"
    result = _serve(uri)
    assert result.returncode == 1
    assert result.stderr.startswith(expected), result.stderr
    assert fix in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
