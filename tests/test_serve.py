"""`make serve` before anything is registered: what to do, not MLflow's traceback. Serving a
registered champion goes through the same module (servers.start_model_server), in
tests/test_run.py and tests/test_team.py."""

import subprocess
import sys

from tests.e2e import kedro_env


def test_serving_before_the_first_run_says_what_to_run(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "fashion_transfer.serve", "--port", "5999"],
        env={**kedro_env(), "MLFLOW_TRACKING_URI": store},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"Error: the MLflow registry at {store} has no models:/fashion-mnist-transfer@champion ("
    ), result.stderr
    assert "make run" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
