"""`make mlflow-ui`: the MLflow UI on this project's tracking store, opened straight at the
experiment's training runs (MLflow 3 otherwise opens on its GenAI overview).

    python -m fashion_transfer.programs.mlflow_ui [--port 5000]

Run it from the project root; with MLFLOW_TRACKING_URI set to a tracking server, it only
prints where that server shows the runs."""

from __future__ import annotations

import argparse
import os
import sys


def runs_url(base_url: str, tracking_uri: str) -> str:
    """The runs view of the project's experiment (the experiments list before the first run)."""
    import mlflow

    from fashion_transfer.framework.config import experiment_name
    from fashion_transfer.mlflow.store import readable_store

    with readable_store(tracking_uri):
        experiment = mlflow.MlflowClient(tracking_uri).get_experiment_by_name(experiment_name())
    if experiment is None:
        return f"{base_url}/#/experiments"
    return f"{base_url}/#/experiments/{experiment.experiment_id}/runs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    from fashion_transfer.errors import ProjectError, TrackingStoreError
    from fashion_transfer.mlflow.store import probe_server, tracking_uri
    from fashion_transfer.programs.processes import with_environment_bin
    from fashion_transfer.redact import redact

    store = tracking_uri()
    try:
        if store.startswith("http"):
            probe_server(store)
            print(f"Runs of this project: {redact(runs_url(store.rstrip('/'), store))}")
            return
        runs = runs_url(f"http://127.0.0.1:{args.port}", store)
    except (ProjectError, TrackingStoreError) as error:
        sys.exit(f"Error: {error}")
    print(
        f"Runs of this project: {runs}\n"
        "Add columns with Columns > search 'test_accuracy' (metrics) or 'preset' (tags); "
        "select runs and Compare to line them up. Ctrl-C stops the UI.",
        flush=True,
    )
    # No job runner: the UI only shows what the runs recorded. The server starts its web
    # workers from the environment's bin folder.
    env = with_environment_bin({**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store]
    command += ["--host", "127.0.0.1", "--port", str(args.port), "--workers", "1"]
    os.execve(sys.executable, command, env)


if __name__ == "__main__":
    main()
