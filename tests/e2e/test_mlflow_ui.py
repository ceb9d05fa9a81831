"""`make mlflow-ui` pointed at a tracking server that is down: one line that says so, in
seconds. The UI itself, on the project's store, is checked in a browser (tests/test_browser.py)."""

import subprocess
import sys

from fashion_transfer.programs.processes import free_port
from tests.e2e.helpers import kedro_env


def test_a_tracking_server_that_is_down_is_one_line():
    uri = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run(
        [sys.executable, "-m", "fashion_transfer.programs.mlflow_ui"],
        env={**kedro_env(), "MLFLOW_TRACKING_URI": uri},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"Error: The MLflow tracking server at {uri} did not answer (")
    assert len(result.stderr.strip().splitlines()) == 1
