"""`make serve`, typed as the README has it, without the model to serve: what to do, not
MLflow's traceback (or, for a tracking server that is down, its minutes of retries). Serving
a registered champion goes through the same module (processes.start_model_server), in
tests/e2e/test_run.py and tests/e2e/test_team.py."""

import subprocess
from pathlib import Path

import pytest

from fashion_transfer.programs.processes import free_port
from tests.e2e.helpers import copy_project, kedro_env, make, without_make


def _serve(tracking_uri: str, project: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        make("serve", PORT=free_port()),
        cwd=project,
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
        expected += "models:/fashion-mnist-catalogue@champion ("
        fix = "make run"
    else:
        uri = f"http://127.0.0.1:{free_port()}"
        expected = f"Error: The MLflow tracking server at {uri} did not answer ("
        fix = "MLFLOW_TRACKING_URI"
    result = _serve(uri, copy_project(tmp_path / "project"))
    assert result.returncode != 0
    said = without_make(result.stderr)
    assert said.startswith(expected), result.stderr
    assert fix in said and "Traceback" not in said
    assert len(said.strip().splitlines()) == 1
