"""`make serve`: a registered model over HTTP with MLflow's scoring server, once the registry
is known to hold it, so that serving before the first run says what to do instead of ending
in MLflow's traceback.

    python -m fashion_transfer.programs.serve [--model NAME | --model-uri URI] [--port 5001]
        [--workers 2] [--max-request-mb 100]

The model is the champion (the alias of parameters_registry.yml) of the catalogue model, or of
the registered model NAME; --model-uri names any other. The registry is MLFLOW_TRACKING_URI's,
else the project's store in mlruns/.

It serves what `mlflow models serve --env-manager local` serves (MLflow's own scoring app,
run by uvicorn: /invocations, /ping, /health, /version), with request bodies bounded before
they are read (request_limits.py): one over --max-request-mb gets HTTP 413, and large bodies
are handled a few at a time in each worker, so that a burst of them keeps memory bounded."""

from __future__ import annotations

import argparse
import os
import sys

# 10,000 images as JSON take 29 MB as 0-255 integers, 93 MB as 0-1 floats (the test set's).
MAX_REQUEST_MB = 100
# What the workers read (they are started afresh by uvicorn, with this environment).
MODEL_PATH_VARIABLE = "FASHION_TRANSFER_SERVED_MODEL_PATH"
LIMIT_VARIABLE = "FASHION_TRANSFER_MAX_REQUEST_BYTES"
APP_MODULE = "fashion_transfer.programs.serve"  # run as __main__ by `python -m`


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a registered model's name; its champion is served")
    parser.add_argument("--model-uri", help="a model URI such as models:/NAME/3")
    parser.add_argument("--port", type=int, default=5001)
    # Measured on 2 cores (benchmarks/serving.py, docs/benchmarks.md): two workers of one
    # ONNX Runtime thread each serve the most images per second under concurrent requests.
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--max-request-mb", type=float, default=MAX_REQUEST_MB,
        help=f"the largest request body taken (default {MAX_REQUEST_MB} MB); larger: HTTP 413",
    )  # fmt: skip
    args = parser.parse_args(argv)
    from fashion_transfer.errors import ProjectError, TrackingStoreError
    from fashion_transfer.programs.processes import model_to_serve, with_environment_bin
    from fashion_transfer.served_model.classifier import THREADS_VARIABLE

    try:
        model_uri = model_to_serve(args.model_uri, args.model)
    except (ProjectError, TrackingStoreError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    import mlflow

    # As `mlflow models serve` does: the model's files in a local folder the workers load.
    local_path = mlflow.artifacts.download_artifacts(artifact_uri=model_uri)
    print(f"Serving {model_uri} on http://127.0.0.1:{args.port}", file=sys.stderr, flush=True)
    command = [sys.executable, "-m", "uvicorn", "--factory", f"{APP_MODULE}:scoring_app"]
    command += ["--host", "127.0.0.1", "--port", str(args.port), "--workers", str(args.workers)]
    # The cores shared between the workers, unless the variable says otherwise.
    threads = str(max(1, (os.cpu_count() or 1) // args.workers))
    env = with_environment_bin({THREADS_VARIABLE: threads, **os.environ})
    env[MODEL_PATH_VARIABLE] = local_path
    env[LIMIT_VARIABLE] = str(int(args.max_request_mb * 2**20))
    os.execve(sys.executable, command, env)


def scoring_app():
    """What each uvicorn worker serves: MLflow's scoring app, built as MLflow's own
    `mlflow.pyfunc.scoring_server.app` builds it, behind the request body limits."""
    from mlflow.pyfunc import scoring_server

    from fashion_transfer.programs.request_limits import BoundedBodies

    limit = int(os.environ[LIMIT_VARIABLE])
    model = scoring_server.load_model_with_mlflow_config(os.environ[MODEL_PATH_VARIABLE])
    return BoundedBodies(
        scoring_server.init(model),
        limit_of=lambda path: limit,
        # MLflow's own error format, as its 400s have it
        error=lambda message: {"error_code": "RESOURCE_LIMIT_EXCEEDED", "message": message},
        what="requests to the served model",
        # One large body at a time in a worker: the classifier computes one request at a time
        # anyway, and MLflow's JSON parsing holds several times the body (lists of numbers).
        at_once=1,
        whole_bodies=True,  # MLflow reads each body whole
    )


if __name__ == "__main__":
    sys.exit(main())
