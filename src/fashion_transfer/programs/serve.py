"""`make serve`: a registered model over HTTP with `mlflow models serve`, once the registry
is known to hold it, so that serving before the first run says what to do instead of ending
in MLflow's traceback.

    python -m fashion_transfer.programs.serve [--model NAME | --model-uri URI] [--port 5001]

The model is the champion (the alias of parameters_registry.yml) of the transfer model, or of
the registered model NAME; --model-uri names any other. The registry is MLFLOW_TRACKING_URI's,
else the project's store in mlruns/."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a registered model's name; its champion is served")
    parser.add_argument("--model-uri", help="a model URI such as models:/NAME/3")
    parser.add_argument("--port", type=int, default=5001)
    # Measured on 2 cores (benchmarks/serving.py, docs/benchmarks.md): two workers of one
    # ONNX Runtime thread each serve the most images per second under concurrent requests.
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    from fashion_transfer.errors import ProjectError, TrackingStoreError
    from fashion_transfer.programs.processes import model_to_serve, with_environment_bin
    from fashion_transfer.served_model.classifier import THREADS_VARIABLE

    try:
        model_uri = model_to_serve(args.model_uri, args.model)
    except (ProjectError, TrackingStoreError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(args.port)]
    # The cores shared between the workers, unless the variable says otherwise; `mlflow models
    # serve` starts its web workers from the environment's bin folder.
    threads = str(max(1, (os.cpu_count() or 1) // args.workers))
    env = with_environment_bin({THREADS_VARIABLE: threads, **os.environ})
    os.execve(sys.executable, [*command, "--workers", str(args.workers)], env)


if __name__ == "__main__":
    sys.exit(main())
