"""`make serve`: a registered model over HTTP with `mlflow models serve`, once the registry
is known to hold it, so that serving before the first run says what to do instead of ending
in MLflow's traceback.

    python -m fashion_transfer.serve [--model-uri models:/NAME@champion] [--port 5001]

The registry is MLFLOW_TRACKING_URI's, else the project's store in mlruns/."""

from __future__ import annotations

import argparse
import logging
import os
import sys

DEFAULT_MODEL = "models:/fashion-mnist-transfer@champion"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-uri", default=DEFAULT_MODEL)
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    import mlflow
    from mlflow.exceptions import MlflowException

    from fashion_transfer.registry import TrackingStoreError, probe_server
    from fashion_transfer.servers import environment_bin
    from fashion_transfer.settings import tracking_uri

    store = tracking_uri()
    os.environ["MLFLOW_TRACKING_URI"] = store
    # "Creating initial MLflow database tables...": a new store's first use, as in conf/logging.yml.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    try:
        if store.startswith(("http://", "https://")):
            probe_server(store)
        mlflow.models.get_model_info(args.model_uri)
    except TrackingStoreError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    except MlflowException as error:
        print(
            f"Error: the MLflow registry at {store} has no {args.model_uri} "
            f"({error.message.splitlines()[0]}). Run `make run` (or `kedro run`) first to "
            "register the models, or serve another with MODEL=NAME (the names are in "
            "conf/base/parameters_registry.yml).",
            file=sys.stderr,
        )
        return 1
    # `mlflow models serve` starts its web workers from the environment's bin folder.
    os.environ["PATH"] = f"{environment_bin()}{os.pathsep}{os.environ.get('PATH', '')}"
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", args.model_uri]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(args.port)]
    os.execv(sys.executable, [*command, "--workers", str(args.workers)])


if __name__ == "__main__":
    sys.exit(main())
