"""Start `mlflow models serve` for a registered model on 127.0.0.1 and wait until it answers
(used by the end-to-end tests and benchmarks/load_test.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_model_server(
    model_uri: str, port: int, env: dict[str, str], cwd: Path | None = None, workers: int = 1
) -> subprocess.Popen:
    """The server in its own process group (stop it with os.killpg), output discarded."""
    # `mlflow models serve` starts uvicorn from the environment's bin folder.
    path = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            model_uri,
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "--workers",
            str(workers),
        ],
        cwd=cwd,
        env={**env, "PATH": path},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_until_up(url: str, server: subprocess.Popen | None, seconds: float) -> None:
    """Return once `url`/ping answers; raise RuntimeError if the server exits or times out."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(f"{url}/ping", timeout=2)
            return
        except OSError:
            if server is not None and server.poll() is not None:
                raise RuntimeError(
                    "mlflow models serve exited; is a champion registered?"
                ) from None
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the server did not answer {url}/ping within {seconds:.0f} s"
                ) from None
            time.sleep(0.5)
