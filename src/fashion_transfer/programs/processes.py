"""Start the project's servers (`make serve`'s scoring server, `mlflow server`, ...) on 127.0.0.1,
wait until they answer and stop them: used by the programs, the tests and the benchmarks."""

from __future__ import annotations

import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment_bin() -> str:
    """The folder of this Python's console scripts (mlflow, uvicorn, kedro)."""
    return str(Path(sys.executable).parent)


def with_environment_bin(env: dict[str, str]) -> dict[str, str]:
    """`env` with the environment's bin folder first on PATH: `mlflow server` (and `mlflow
    models serve`) start uvicorn or gunicorn from the PATH."""
    return {**env, "PATH": f"{environment_bin()}{os.pathsep}{env.get('PATH', '')}"}


def start_server(
    command: list[str], log_path: Path, env: dict[str, str], cwd: Path | None = None
) -> subprocess.Popen:
    """`command` in its own process group (so that stop_server reaches its workers too), its
    output in `log_path`, the environment's bin folder first on PATH."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=with_environment_bin(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def start_model_server(
    model_uri: str,
    port: int,
    env: dict[str, str],
    log_path: Path,
    cwd: Path | None = None,
    workers: int = 1,
) -> subprocess.Popen:
    """A registered model served as `make serve` serves it (serve.py: MLflow's scoring app
    under uvicorn, its request bodies bounded)."""
    command = [sys.executable, "-m", "fashion_transfer.programs.serve", "--model-uri", model_uri]
    command += ["--port", str(port), "--workers", str(workers)]
    return start_server(command, log_path, env, cwd)


def log_tail(log_path: Path | None, lines: int = 30) -> str:
    if log_path is None or not log_path.exists():
        return ""
    tail = log_path.read_text(errors="replace").splitlines()[-lines:]
    return f"\nLast lines of {log_path}:\n" + "\n".join(tail)


def wait_until_up(
    url: str,
    server: subprocess.Popen | None,
    seconds: float,
    log_path: Path | None = None,
    path: str = "/ping",
    context: ssl.SSLContext | None = None,
) -> None:
    """Return once `url` + `path` answers (any HTTP status counts: the server is up); raise
    RuntimeError, with the end of the server's log, if it exits or does not answer in time."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(f"{url}{path}", timeout=2, context=context)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            if server is not None and server.poll() is not None:
                raise RuntimeError(
                    f"the server for {url} exited with code {server.returncode} before it "
                    f"answered.{log_tail(log_path)}"
                ) from None
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the server did not answer {url}{path} within {seconds:.0f} s."
                    f"{log_tail(log_path)}"
                ) from None
            time.sleep(0.5)


def stop_server(server: subprocess.Popen, grace: float = 15) -> None:
    """SIGTERM to the server's process group, then SIGKILL if it has not exited after `grace`
    seconds; returns once it has exited."""
    stop_process_group(server.pid, grace, exited=lambda: server.poll() is not None)


def stop_process_group(pid: int, grace: float = 15, exited=None) -> None:
    """SIGTERM to the process group led by `pid`, SIGKILL after `grace` seconds if its leader
    is still there; returns once it has gone (`exited` tells, for a child of this process)."""
    exited = exited or (lambda: not _alive(pid))
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 30)):
        if exited():
            return
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and not exited():
            time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def model_to_serve(model_uri: str | None, model: str | None) -> str:
    """What `make serve` and `make app` serve: `model_uri` if given, else the champion of the
    registered model `model` (the catalogue model's by default). Raises the project's one-
    paragraph errors when the store does not answer or does not hold it."""
    from fashion_transfer.framework.config import champion_uri
    from fashion_transfer.mlflow.store import require_model

    # "Creating initial MLflow database tables...": a new store's first use, as in conf/logging.yml.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    uri = model_uri or champion_uri(model)
    require_model(uri)
    return uri
