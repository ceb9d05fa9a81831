"""Damaged and shared stores: a tracking store or a study database that is not a database,
a model whose files are gone, and checkouts that share one SQLite store."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import mlflow

from fashion_transfer.programs.processes import free_port
from tests.e2e.helpers import EXPERIMENT, assert_user_error, copy_project, kedro, kedro_env, store

DAMAGED = b"SQLite format 2\x00 this is no database, and must stay as it is\n" * 20


def _program(module: str, env: dict, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"fashion_transfer.programs.{module}", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_damaged_tracking_store_is_one_paragraph_and_is_left_as_it_is(project, tmp_path):
    database = tmp_path / "mlruns" / "mlflow.db"
    database.parent.mkdir()
    database.write_bytes(DAMAGED)
    env = {**kedro_env(), "MLFLOW_TRACKING_URI": f"sqlite:///{database}"}
    expected = f"Error: The MLflow store {database} is damaged (file is not a database)"
    result = kedro(project, "run", "--pipeline", "ingestion", env=env)
    assert_user_error(result, expected, f"mv {database} {database}.damaged")
    for module, args in (("serve", ["--port", str(free_port())]), ("mlflow_ui", [])):
        answer = _program(module, env, project, *args)
        assert answer.returncode == 1 and answer.stderr.startswith(expected), answer.stderr
        assert "Traceback" not in answer.stderr
    assert database.read_bytes() == DAMAGED  # nothing migrated or overwritten


def test_a_damaged_study_database_is_one_paragraph_and_is_left_as_it_is(project, first_run):
    database = project / "mlruns" / "damaged-optuna.db"
    database.write_bytes(DAMAGED)
    result = kedro(
        project, "run", "--pipeline", "tune",
        "--params", f"tune.storage=sqlite:///{database},tune.n_trials=1",
    )  # fmt: skip
    assert_user_error(
        result,
        f"Error: The tuning study's database {database} is damaged (file is not a database)",
        f"mv {database} {database}.damaged",
    )
    assert database.read_bytes() == DAMAGED


def test_checkouts_sharing_a_sqlite_store_keep_artifacts_beside_it(first_run, tmp_path):
    """One checkout scores the small run's test predictions, logging the confusion matrices to
    a store that another checkout shares; the first is then deleted, and the second reads
    them."""
    shared = tmp_path / "shared"
    env = {**kedro_env(), "MLFLOW_TRACKING_URI": f"sqlite:///{shared / 'mlflow.db'}"}
    first = copy_project(tmp_path / "first")
    shutil.copytree(first_run.data / "07_model_output", first / "data" / "07_model_output")
    result = kedro(
        first, "run", "--pipeline", "evaluation", "--nodes", "compute_test_metrics", env=env
    )
    assert result.returncode == 0, result.output[-3000:]
    written = (first / "data" / "08_reporting" / "confusion_matrices" / "transfer.csv").read_text()
    client = mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name(EXPERIMENT)
    (run,) = client.search_runs([experiment.experiment_id])
    # Not inside the checkout that created the experiment: deleting it breaks nobody's files.
    assert experiment.artifact_location == (shared / "artifacts").as_uri()
    shutil.rmtree(first)

    second = copy_project(tmp_path / "second")
    read = subprocess.run(
        [sys.executable, "-c", "import sys, mlflow; print(open(mlflow.artifacts.download_artifacts("
         "run_id=sys.argv[1], artifact_path=sys.argv[2])).read(), end='')",
         run.info.run_id, "reports/confusion_matrices/transfer.csv"],
        env=env, cwd=second, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert read.returncode == 0, read.stderr[-3000:]
    assert read.stdout == written


def test_serving_a_model_whose_files_are_gone_says_so(project, first_run, tmp_path):
    client = mlflow.MlflowClient(store(project))
    name = "fashion-mnist-files-gone"
    client.create_registered_model(name)
    version = client.create_model_version(name, source=(tmp_path / "gone").as_uri()).version
    env = {**kedro_env(), "MLFLOW_TRACKING_URI": store(project)}
    answer = _program("serve", env, project, "--model-uri", f"models:/{name}/{version}")
    assert answer.returncode == 1, answer.stderr
    assert f"the files of models:/{name}/{version} (version {version}) are gone" in answer.stderr
    assert "Traceback" not in answer.stderr
