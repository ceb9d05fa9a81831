"""Team mode on real servers: Debian's PostgreSQL and `mlflow server` with basic-auth, started by
`make team-up` (people's accounts by `make team-user`), and the project run
against them from separate copies, as machines of a team would. CI installs PostgreSQL (.ci/run);
elsewhere these tests skip where it is missing."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import optuna
import pandas as pd
import pytest
from PIL import Image

from fashion_transfer.programs.processes import (
    free_port,
    start_model_server,
    stop_server,
    wait_until_up,
)
from fashion_transfer.programs.team import stack as team
from fashion_transfer.programs.team.__main__ import main as team_main
from fashion_transfer.programs.team.stack import Stack
from tests.conftest import PROJECT_ROOT
from tests.e2e.helpers import (
    EXPERIMENT,
    FEW_REPORT_IMAGES,
    MODELS,
    assert_user_error,
    copy_project,
    kedro,
    kedro_env,
    make,
    outputs_of,
    require,
    start_kedro,
    without_make,
)

POSTGRES = shutil.which("initdb") or next(Path(team.POSTGRES_LIBRARY).glob("*/bin/initdb"), None)


@pytest.fixture(scope="module")
def stack_folder():
    require(POSTGRES, "the team-mode tests", "postgresql")
    # PostgreSQL runs as the postgres user, who must be able to enter the folder.
    base = Path(tempfile.mkdtemp(prefix="fashion-team-"))
    base.chmod(0o755)
    yield base
    team_main(["down", "--folder", str(base / ".team")])
    shutil.rmtree(base, ignore_errors=True)


def _up(folder: Path, *extra: str, host: str | None = None) -> subprocess.CompletedProcess:
    """`make team-up [HOST=...]`, its folder and ports given through ARGS; make's own
    "make: *** ... Error" line left out of stderr."""
    given = {"HOST": host} if host else {}
    result = subprocess.run(
        make("team-up", **given, ARGS=" ".join(["--folder", str(folder), *extra])),
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    result.stderr = without_make(result.stderr)
    return result


def settings_of(path: Path) -> dict[str, str]:
    """What `source settings.sh` exports, as a person's shell has it."""
    listed = subprocess.run(
        ["bash", "-c", f"set -a; source {path}; env -0"],
        capture_output=True, text=True, check=True, timeout=30, env={"PATH": os.environ["PATH"]},
    )  # fmt: skip
    exported = dict(item.split("=", 1) for item in listed.stdout.split("\0") if "=" in item)
    lines = path.read_text().splitlines()
    keys = [line.split("=", 1)[0].removeprefix("export ") for line in lines if "=" in line]
    return {key: exported[key] for key in keys if key in exported and key.isupper()}


def _account(folder: Path, name: str, role: str) -> dict[str, str]:
    answer = subprocess.run(
        make("team-user", NAME=name, ROLE=role, ARGS=f"--folder {folder}"),
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert answer.returncode == 0, answer.stdout + answer.stderr
    settings = folder / "people" / name / "settings.sh"
    assert str(settings) in answer.stdout
    found = settings_of(settings)
    assert found["MLFLOW_TRACKING_PASSWORD"] not in answer.stdout + answer.stderr
    return found


@pytest.fixture(scope="module")
def stack(stack_folder):
    """The stack on 127.0.0.1, and a member's settings, as `make team-user` writes them."""
    ports = ["--pg-port", str(free_port()), "--mlflow-port", str(free_port())]
    folder = stack_folder / ".team"
    result = _up(folder, *ports)
    assert result.returncode == 0, result.stdout + result.stderr
    credentials = json.loads((folder / "credentials.json").read_text())
    assert not any(credentials[key] in result.stdout for key in team.SECRETS)  # none printed
    member = _account(folder, "mia", "member")
    # This process reads the server and the study as a team member does: credentials in
    # MLflow's and libpq's variables.
    saved = {name: os.environ.get(name) for name in member}
    os.environ.update(member)
    yield member
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="module")
def team_env(stack) -> dict[str, str]:
    return {**kedro_env(), **stack}


def _store_project(source: Path, target: Path) -> Path:
    """Another checkout with the stage data and pretrained model of the small run."""
    copy = copy_project(target)
    for folder in ("05_model_input", "06_models"):
        shutil.copytree(source / "data" / folder, copy / "data" / folder)
    return copy


def _client(stack) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(stack["MLFLOW_TRACKING_URI"], stack["MLFLOW_TRACKING_URI"])


def _get(url: str, auth: tuple[str, str] | None = None) -> int:
    return _status(urllib.request.Request(url), auth)


def _post(url: str, body: dict, auth, method: str = "POST") -> int:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method=method)
    request.add_header("Content-Type", "application/json")
    return _status(request, auth)


def _status(request: urllib.request.Request, auth: tuple[str, str] | None) -> int:
    """The HTTP status the server answers `request` with, sent with basic-auth `auth`."""
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=5)
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def test_the_server_refuses_requests_without_the_right_credentials(stack, team_env, project):
    api = f"{stack['MLFLOW_TRACKING_URI']}/api/2.0/mlflow/experiments/search?max_results=1"
    assert _get(api) == 401
    assert _get(api, ("admin", "not-the-password")) == 401
    wrong = {**team_env, "MLFLOW_TRACKING_PASSWORD": "not-the-password"}
    assert _get(api, ("mia", stack["MLFLOW_TRACKING_PASSWORD"])) == 200
    result = kedro(project, "run", "--pipeline", "ingestion", env=wrong)
    assert_user_error(
        result,
        f"Error: The MLflow tracking server at {stack['MLFLOW_TRACKING_URI']} refused the "
        "credentials",
        "MLFLOW_TRACKING_PASSWORD",
    )


@pytest.fixture(scope="module")
def team_runs(stack, team_env, tmp_path_factory):
    """Two full runs on a small slice, at once, from separate checkouts, against the server:
    the runs of two machines of a team."""
    tmp_path = tmp_path_factory.mktemp("team-runs")
    quick = (
        "split.max_examples_per_stage=600,pretrain.epochs=1,transfer.epochs=1,"
        "transfer.fine_tune_epochs=0,transfer.scratch_baseline=false,runtime.num_threads=1,"
        f"catalogue.epochs=1,catalogue.fine_tune_epochs=0,{FEW_REPORT_IMAGES}"
    )
    seeds = (1, 2)  # two recipes, so that the versions differ and the alias must choose
    checkouts = [copy_project(tmp_path / f"checkout-{seed}") for seed in seeds]
    runs = [
        start_kedro(checkout, "run", "--params", f"{quick},pretrain.seed={seed}", env=team_env)
        for seed, checkout in zip(seeds, checkouts, strict=True)
    ]
    outputs = outputs_of(runs)
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output[-3000:]

    return outputs


def test_concurrent_runs_from_separate_checkouts_keep_the_champion_on_the_best(stack, team_runs):
    client = _client(stack)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    finished = client.search_runs(
        [experiment.experiment_id], filter_string="tags.pipeline = '__default__'"
    )
    assert len(finished) == 2 and {r.info.status for r in finished} == {"FINISHED"}
    # The artifacts went to the server, not to a folder of a checkout.
    assert all(r.info.artifact_uri.startswith("mlflow-artifacts:") for r in finished)
    for name in MODELS[:2]:
        versions = client.search_model_versions(f"name='{name}'")
        assert {v.run_id for v in versions} == {r.info.run_id for r in finished}
        best = max(float(v.tags["val_accuracy"]) for v in versions)
        champion = client.get_model_version_by_alias(name, "champion")
        assert float(champion.tags["val_accuracy"]) == best


def test_the_champion_serves_from_the_server_and_predict_uses_it(
    stack, team_env, team_runs, project, first_run, tmp_path
):
    data = pd.read_pickle(project / "data" / "05_model_input" / "transfer_data.pkl")
    port = free_port()
    log = tmp_path / "serve.log"
    server = start_model_server("models:/fashion-mnist-transfer@champion", port, team_env, log)
    try:
        wait_until_up(f"http://127.0.0.1:{port}", server, 120, log)
        body = json.dumps({"inputs": data["test_images"][:3].tolist()}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=body, method="POST"
        )
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=60) as response:
            predictions = json.loads(response.read())["predictions"]
        assert len(predictions) == 3
        assert {p["class_name"] for p in predictions} <= set(data["class_names"])
    finally:
        stop_server(server)

    checkout = copy_project(tmp_path / "predicting")
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(data["test_images"][0]).save(folder / "item.png")
    result = kedro(
        checkout, "run", "--pipeline", "predict", "--params", f"predict_images={folder}",
        env=team_env,
    )  # fmt: skip
    assert result.returncode == 0, result.output[-3000:]
    table = pd.read_csv(checkout / "data" / "07_model_output" / "image_predictions.csv")
    assert list(table["file"]) == ["item.png"] and table["error"].isna().all()


def _tune_worker(checkout: Path, env: dict, params: str) -> subprocess.Popen:
    return start_kedro(
        checkout, "run", "--pipeline", "tune", "--params", params, env=env, own_group=True
    )


def test_a_killed_worker_s_trial_fails_after_the_grace_period_and_is_retried(
    stack, team_env, project, first_run, tmp_path
):
    heartbeat = "tune.heartbeat_interval=1,tune.grace_period=2"
    common = (
        f"tune.storage={stack['TUNE_STORAGE']},tune.study_name=killed,{heartbeat},"
        "tune.search_space.transfer.fine_tune_epochs.high=1"
    )
    killed = _tune_worker(
        _store_project(project, tmp_path / "killed"),
        team_env,
        f"{common},tune.n_trials=1,tune.pruner.type=none,"
        "tune.search_space.transfer.epochs.low=6,tune.search_space.transfer.epochs.high=7",
    )
    try:
        for line in killed.stdout:
            if "transfer epoch 2/" in line:
                os.killpg(killed.pid, signal.SIGKILL)  # no chance to tidy up
                break
        killed.wait(timeout=60)
    finally:
        killed.kill()
    study = optuna.load_study(study_name="killed", storage=_optuna_storage(stack))
    (orphan,) = study.trials
    assert orphan.state.name == "RUNNING"  # until a live worker notices the silence
    time.sleep(3)  # past the grace period
    survivor = _tune_worker(
        _store_project(project, tmp_path / "survivor"),
        team_env,
        f"{common},tune.n_trials=1",
    )
    output = survivor.communicate(timeout=600)[0]
    assert survivor.returncode == 0, output[-3000:]
    first, retry = optuna.load_study(study_name="killed", storage=_optuna_storage(stack)).trials
    assert first.state.name == "FAIL"
    assert retry.state.name in ("COMPLETE", "PRUNED") and retry.params == first.params
    assert retry.system_attrs["failed_trial"] == first.number
    assert retry.user_attrs["worker"] != first.user_attrs["worker"]
    # The dead worker's trial run and its kedro run are ended by the survivor, not left
    # RUNNING in the UI; the survivor's own kedro run finishes.
    orphan_run = _client(stack).get_run(first.user_attrs["mlflow_run_id"])
    assert orphan_run.info.status == "KILLED"
    assert orphan_run.data.tags["optuna.state"] == "FAIL"
    assert "stopped beating" in orphan_run.data.tags["optuna.fail_reason"]
    dead_parent = _client(stack).get_run(orphan_run.data.tags["mlflow.parentRunId"])
    assert dead_parent.info.status == "KILLED"
    assert dead_parent.data.tags["killed_reason"].startswith("trial 0: its worker stopped")
    assert f"MLflow runs marked KILLED: {orphan_run.info.run_id}, {dead_parent.info.run_id}" in (
        output
    )
    retry_run = _client(stack).get_run(retry.user_attrs["mlflow_run_id"])
    survivor_parent = _client(stack).get_run(retry_run.data.tags["mlflow.parentRunId"])
    assert survivor_parent.info.status == "FINISHED"


def _optuna_storage(stack) -> str:
    return stack["TUNE_STORAGE"]  # the password comes from PGPASSFILE, as for the workers


def test_down_stops_everything_and_up_reuses_the_cluster(stack, stack_folder):
    folder = stack_folder / ".team"
    credentials = (folder / "credentials.json").read_text()
    experiments = len(mlflow.MlflowClient(stack["MLFLOW_TRACKING_URI"]).search_experiments())
    assert team_main(["down", "--folder", str(folder)]) == 0
    stack_state = Stack(folder)
    assert not stack_state.postgres_running() and stack_state.mlflow_pid() is None
    assert not _answers(f"{stack['MLFLOW_TRACKING_URI']}/health")
    stack_state.pid_file.write_text("999999999")  # as a server that died unannounced leaves it
    again = _up(folder)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (folder / "credentials.json").read_text() == credentials  # same ports and secrets
    assert stack["MLFLOW_TRACKING_URI"] in again.stdout
    assert stack_state.mlflow_pid() not in (None, 999999999)
    client = mlflow.MlflowClient(stack["MLFLOW_TRACKING_URI"])  # as the member, still
    assert len(client.search_experiments()) == experiments  # the data stayed


def test_roles_do_what_they_say_and_runs_and_versions_name_who_made_them(
    stack, stack_folder, team_runs
):
    folder = stack_folder / ".team"
    viewer, maintainer = _account(folder, "val", "viewer"), _account(folder, "max", "maintainer")
    assert "TUNE_STORAGE" not in viewer and "TUNE_STORAGE" in maintainer  # workers only
    client = _client(stack)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], "tags.pipeline = '__default__'")
    assert {run.data.tags["mlflow.user"] for run in runs} == {"mia"}
    version = client.get_model_version_by_alias("fashion-mnist-transfer", "champion")
    assert version.tags["registered_by"] == "mia"
    for settings, may_register, may_delete in ((viewer, False, False), (stack, True, False),
                                               (maintainer, True, True)):  # fmt: skip
        auth = (settings["MLFLOW_TRACKING_USERNAME"], settings["MLFLOW_TRACKING_PASSWORD"])
        base = f"{stack['MLFLOW_TRACKING_URI']}/api/2.0/mlflow"
        alias = {"name": "fashion-mnist-transfer", "alias": "pinned", "version": version.version}
        assert _post(f"{base}/registered-models/alias", alias, auth) == (
            200 if may_register else 403
        )
        assert _get(f"{base}/experiments/search?max_results=1", auth) == 200  # everyone reads
        gone = {"name": "fashion-mnist-transfer", "version": "999"}
        assert _post(f"{base}/model-versions/delete", gone, auth, "DELETE") == (
            404 if may_delete else 403
        )
        new_user = {"username": f"by-{auth[0]}", "password": "a-password-of-theirs"}
        assert _post(f"{base}/users/create", new_user, auth) == 403  # only the admin makes them
    # The secret files are their owner's alone, and no secret lies anywhere else: each of the
    # stack's secrets and each person's password, looked for in every file of the stack's
    # folder (the cluster's data, WAL and log, the server's log, the certificates), is found
    # only in the files meant to hold it.
    for path in [folder / "credentials.json", *folder.glob("people/*/*")]:
        if path.name != "ca.pem":
            assert path.stat().st_mode & 0o077 == 0, path
    credentials = json.loads((folder / "credentials.json").read_text())
    secrets = {key: credentials[key] for key in team.SECRETS}
    holders = {key: {folder / "credentials.json"} for key in team.SECRETS}
    holders["admin_password"].add(folder / "people" / "admin" / "settings.sh")
    holders["optuna_db_password"].update(folder.glob("people/*/pgpass"))
    for settings in folder.glob("people/*/settings.sh"):
        if settings.parent.name != "admin":
            secrets[settings.parent.name] = settings_of(settings)["MLFLOW_TRACKING_PASSWORD"]
            holders[settings.parent.name] = {settings}
    assert len(secrets) == len(team.SECRETS) + 3  # mia, val and max
    assert all(len(secret) >= 24 for secret in secrets.values())
    misplaced = []
    for path in (path for path in folder.rglob("*") if path.is_file()):
        text = path.read_bytes()
        misplaced += [
            f"{key} in {path}"
            for key, secret in secrets.items()
            if secret.encode() in text and path not in holders[key]
        ]
    assert not misplaced


def test_problems_starting_the_stack_are_one_line_errors(stack_folder, tmp_path, monkeypatch):
    busy = free_port()
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", busy))
        listener.listen()
        result = _up(stack_folder / "other", "--pg-port", str(busy))
    assert result.returncode != 0
    assert result.stderr.startswith(f"Error: Port {busy} on 127.0.0.1 is in use")
    assert len(result.stderr.strip().splitlines()) == 1

    stale = Stack(tmp_path / ".team")
    stale.mlflow_folder.mkdir(parents=True)
    stale.pid_file.write_text("999999999")  # no such process: the server died unannounced
    assert stale.mlflow_pid() is None and not stale.pid_file.exists()
    stale.pid_file.write_text(str(os.getpid()))  # a reused pid: alive, but not our server
    assert stale.mlflow_pid() is None and not stale.pid_file.exists()

    for damage in ("{not json", ""):
        stale.credentials_file.write_text(damage)
        result = _up(stale.folder, "--pg-port", str(free_port()))
        assert result.returncode != 0 and result.stderr.startswith("Error: ")
        assert f"{stale.credentials_file} is damaged" in result.stderr and "Traceback" not in (
            result.stderr
        )
    stale.credentials_file.unlink()
    (stale.data).mkdir(parents=True)
    (stale.data / "PG_VERSION").write_text("15\n")  # a cluster whose passwords are lost
    result = _up(stale.folder, "--pg-port", str(free_port()))
    assert result.returncode != 0 and f"{stale.credentials_file} is missing" in result.stderr

    monkeypatch.setattr(shutil, "which", lambda program: None)
    monkeypatch.setattr(team, "POSTGRES_LIBRARY", str(tmp_path / "nowhere"))
    with pytest.raises(team.TeamError, match="PostgreSQL's initdb is not installed"):
        stale.postgres("initdb")
