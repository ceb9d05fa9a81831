"""`make mlflow-ui` pointed at a tracking server that is down: one line that says so, in
seconds. The UI itself, on the project's store, is checked in a browser (tests/test_browser.py)."""

import subprocess

from fashion_transfer.programs.processes import free_port
from tests.e2e.helpers import copy_project, kedro_env, make, without_make


def test_a_tracking_server_that_is_down_is_one_line(tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run(
        make("mlflow-ui", PORT=free_port()),
        cwd=copy_project(tmp_path),
        env={**kedro_env(), "MLFLOW_TRACKING_URI": uri},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    said = without_make(result.stderr)
    assert said.startswith(f"Error: The MLflow tracking server at {uri} did not answer ("), said
    assert len(said.strip().splitlines()) == 1
