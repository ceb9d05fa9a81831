"""Team-mode tuning, measured: trials per hour with one and with two `kedro run --pipeline
tune` workers on one study in PostgreSQL, and the time one trial spends talking to PostgreSQL
(Optuna's storage) and to the MLflow server (its nested run), with no training in between.

Run it from the project root after `make run`, `make team-up` and `make team-user NAME=...
ROLE=member`, with that member's settings sourced (MLFLOW_TRACKING_URI, its credentials,
TUNE_STORAGE, the database's password file and, off loopback, the CA):

    python benchmarks/team_tuning.py --trials 8 --output benchmarks/team-tuning.json
    python benchmarks/team_tuning.py --io-only --output benchmarks/team-tuning-tls.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
# One recipe for every trial (no search), so that one worker and two do the same work.
FIXED = (
    "tune.search_space.transfer.epochs.low=6,tune.search_space.transfer.epochs.high=7,"
    "tune.search_space.transfer.fine_tune_epochs.low=3,"
    "tune.search_space.transfer.fine_tune_epochs.high=4,tune.pruner.type=none"
)


def workers(count: int, trials_each: int, storage: str, threads: int | None) -> float:
    """Wall seconds for `count` workers, each with `threads` PyTorch threads (None: one per
    core), to run `trials_each` trials each on a new study."""
    study = f"bench-{count}w-{uuid.uuid4().hex[:6]}"
    params = f"tune.storage={storage},tune.study_name={study},tune.n_trials={trials_each},{FIXED}"
    if threads:
        params += f",runtime.num_threads={threads}"
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kedro",
                "run",
                "--pipeline",
                "tune",
                "--params",
                f"{params},tune.sampler_seed={seed}",
            ],
            cwd=PROJECT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        for seed in range(count)
    ]
    if any(process.wait() for process in processes):
        sys.exit(f"a worker failed; run `kedro run --pipeline tune --params {params}` to see why")
    return time.perf_counter() - started


def io_per_trial(storage: str, trials: int, epochs: int) -> dict:
    """What one trial costs in round trips, without training: ask, suggest the transfer
    search space, a nested MLflow run with its parameters, per epoch a report, a pruning
    check and the metrics, then the state tags and tell; each part timed on its own."""
    import mlflow
    import optuna
    import yaml

    from fashion_transfer.params import TuneParams
    from fashion_transfer.pipelines.tune import studies

    shipped = yaml.safe_load((PROJECT / "conf/base/parameters_tune.yml").read_text())["tune"]
    tune = TuneParams.model_validate(shipped | {"storage": storage})
    study = optuna.create_study(
        study_name=f"bench-io-{uuid.uuid4().hex[:6]}", storage=studies.storage(tune)
    )
    study.set_user_attr("stage", "transfer")
    study.set_user_attr("preset", "default")
    mlflow.set_experiment("fashion-mnist-transfer-benchmarks")
    storage_seconds, mlflow_seconds = [], []
    with mlflow.start_run(run_name="team tuning benchmark"):
        for _ in range(trials):
            spent = {"storage": 0.0, "mlflow": 0.0}

            def timed(kind, call, *args, spent=spent, **kwargs):
                started = time.perf_counter()
                result = call(*args, **kwargs)
                spent[kind] += time.perf_counter() - started
                return result

            trial = timed("storage", study.ask)
            values = timed("storage", studies.suggest, trial, tune.search_space["transfer"])
            timed("mlflow", mlflow.start_run, nested=True, run_name=f"trial {trial.number}")
            timed("mlflow", mlflow.log_params, {f"transfer.{k}": v for k, v in values.items()})
            for epoch in range(1, epochs + 1):
                timed("storage", trial.report, 0.9, epoch)
                timed("storage", trial.should_prune)
                timed("storage", trial.set_user_attr, "epochs_trained", epoch)
                timed("mlflow", mlflow.log_metrics, {"transfer/val_accuracy": 0.9}, step=epoch)
            timed("mlflow", mlflow.set_tags, {"optuna.state": "COMPLETE"})
            timed("mlflow", mlflow.end_run)
            timed("storage", study.tell, trial, 0.9)
            storage_seconds.append(spent["storage"])
            mlflow_seconds.append(spent["mlflow"])
    return {
        "trials": trials,
        "epochs_per_trial": epochs,
        "storage_seconds_per_trial": statistics.median(storage_seconds),
        "mlflow_seconds_per_trial": statistics.median(mlflow_seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8, help="trials per configuration")
    parser.add_argument("--output", type=Path, default=PROJECT / "benchmarks/team-tuning.json")
    parser.add_argument(
        "--configs",
        default="1x0,2x0,2x1",
        help="workers x PyTorch threads each (0: one per core), comma-separated",
    )
    parser.add_argument("--skip-io", action="store_true", help="do not time the round trips")
    parser.add_argument("--io-only", action="store_true", help="time the round trips only")
    args = parser.parse_args()
    storage = os.environ.get("TUNE_STORAGE")
    if not storage or not os.environ.get("MLFLOW_TRACKING_URI", "").startswith("http"):
        sys.exit("source a member's settings (`make team-user` writes them) first")
    report = {
        "trials": args.trials,
        "cpu_cores": os.cpu_count(),
        "tracking_uri": os.environ["MLFLOW_TRACKING_URI"],
        "database_tls": os.environ.get("PGSSLMODE", "not asked"),
        "workers": {},
    }
    for config in [] if args.io_only else args.configs.split(","):
        count, threads = (int(part) for part in config.split("x"))
        seconds = workers(count, args.trials // count, storage, threads or None)
        report["workers"][config] = {
            "workers": count,
            "threads_each": threads or os.cpu_count(),
            "seconds": seconds,
            "trials_per_hour": 3600 * args.trials / seconds,
        }
    if not args.skip_io:
        report["io"] = io_per_trial(storage, trials=20, epochs=10)
    args.output.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
