"""Team mode across a real network boundary: a network namespace with a veth pair is a second
machine (addresses of the test's own, nothing routed anywhere else). The stack listens on the
host's end (`make team-up HOST=...`); a member's tuning workers, one on each end, share a
study and the tracking server over TLS, and from the other end every way in without the
right credentials, trust or encryption is refused. CI runs as root with iproute2 and PostgreSQL
installed (.ci/run); elsewhere these tests skip."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import pytest

from tests.e2e.helpers import QUICK_TUNE, kedro_env, outputs_of, require
from tests.e2e.test_team import POSTGRES, _account, _store_project, _up

SUFFIX = os.getpid() % 200
HOST, PEER = f"10.231.{SUFFIX}.1", f"10.231.{SUFFIX}.2"
NAMESPACE = f"ft-peer-{os.getpid()}"
LINKS = (f"ftv{os.getpid() % 100000}h", f"ftv{os.getpid() % 100000}p")  # at most 15 letters


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def peer():
    """The second machine: a namespace joined to this one by a veth pair."""
    require(shutil.which("ip"), "the network tests", "iproute2")
    require(POSTGRES, "the network tests", "postgresql")
    if os.geteuid() != 0:
        pytest.skip("the network tests make a network namespace, which takes root")
    host_link, peer_link = LINKS
    _ip("netns", "add", NAMESPACE)
    try:
        _ip("link", "add", host_link, "type", "veth", "peer", "name", peer_link)
        _ip("link", "set", peer_link, "netns", NAMESPACE)
        _ip("addr", "add", f"{HOST}/30", "dev", host_link)
        _ip("link", "set", host_link, "up")
        for command in (
            ["addr", "add", f"{PEER}/30", "dev", peer_link],
            ["link", "set", peer_link, "up"],
            ["link", "set", "lo", "up"],
        ):
            _ip("netns", "exec", NAMESPACE, "ip", *command)
        yield NAMESPACE
    finally:
        subprocess.run(["ip", "link", "delete", host_link], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "delete", NAMESPACE], capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def remote_stack(peer):
    base = Path(tempfile.mkdtemp(prefix="fashion-team-net-"))
    base.chmod(0o755)
    folder = base / ".team"
    from fashion_transfer.programs.processes import free_port

    result = _up(  # make team-up HOST=...
        folder, "--pg-port", str(free_port()), "--mlflow-port", str(free_port()), host=HOST
    )
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"https://{HOST}:" in result.stdout
        yield folder
    finally:
        subprocess.run(
            [sys.executable, "-m", "fashion_transfer.programs.team", "down", "--folder",
             str(folder)], capture_output=True, timeout=120,
        )  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


def _in_peer(peer: str, code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ip", "netns", "exec", peer, sys.executable, "-c", code],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


PROBES = r"""
import json, os, ssl, sys, urllib.error, urllib.request, base64
import psycopg

url, ca = os.environ["MLFLOW_TRACKING_URI"], os.environ["MLFLOW_TRACKING_SERVER_CERT_PATH"]
api = url + "/api/2.0/mlflow"
trusting = ssl.create_default_context(cafile=ca)

def status(path, body=None, auth=None, context=trusting):
    request = urllib.request.Request(api + path, data=json.dumps(body).encode() if body else None)
    request.add_header("Content-Type", "application/json")
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except urllib.error.URLError as error:
        return type(error.reason).__name__ + ": " + str(error.reason)[:80]

viewer = os.environ["VIEWER"]
found = {
    "no credentials": status("/experiments/search?max_results=1"),
    "viewer reads": status("/experiments/search?max_results=1", auth=viewer),
    "viewer registers": status("/model-versions/create", {"name": "fashion-mnist-transfer",
                               "source": "models:/m-00000000000000000000000000000000"}, viewer),
    "viewer moves champion": status("/registered-models/alias", {"name": "fashion-mnist-transfer",
                                    "alias": "champion", "version": "1"}, viewer),
    "without trusting the CA": status("/experiments/search?max_results=1", auth=viewer,
                                      context=ssl.create_default_context()),
}
dsn = dict(host=os.environ["DB_HOST"], port=os.environ["DB_PORT"], dbname="optuna", user="optuna")
try:
    psycopg.connect(**dsn, sslmode="disable", connect_timeout=10).close()
    found["database in plain text"] = "accepted"
except psycopg.OperationalError as error:
    found["database in plain text"] = " ".join(str(error).split())[:400]
with psycopg.connect(**dsn, connect_timeout=10) as connection:  # PGSSLMODE=verify-full
    found["database over TLS"] = connection.execute(
        "select ssl from pg_stat_ssl where pid = pg_backend_pid()").fetchone()[0]
print(json.dumps(found))
"""


def test_from_another_machine_only_what_each_role_may_do_gets_through(remote_stack, peer):
    member = _account(remote_stack, "rita", "member")
    viewer = _account(remote_stack, "vera", "viewer")
    credentials = json.loads((remote_stack / "credentials.json").read_text())
    env = {
        **kedro_env(), **member, "DB_HOST": HOST, "DB_PORT": str(credentials["pg_port"]),
        "VIEWER": f"{viewer['MLFLOW_TRACKING_USERNAME']}:{viewer['MLFLOW_TRACKING_PASSWORD']}",
    }  # fmt: skip
    assert member["MLFLOW_TRACKING_URI"].startswith(f"https://{HOST}:")
    assert member["PGSSLMODE"] == "verify-full" and Path(member["PGSSLROOTCERT"]).is_file()
    answer = _in_peer(peer, PROBES, env)
    assert answer.returncode == 0, answer.stderr[-3000:]
    found = json.loads(answer.stdout.strip().splitlines()[-1])
    assert found["no credentials"] == 401
    assert found["viewer reads"] == 200
    assert found["viewer registers"] == 403 and found["viewer moves champion"] == 403
    assert "CERTIFICATE_VERIFY_FAILED" in found["without trusting the CA"]
    assert "pg_hba.conf rejects" in found["database in plain text"]
    assert "no encryption" in found["database in plain text"]
    assert found["database over TLS"] is True


def test_tuning_workers_on_two_machines_share_one_study(
    remote_stack, peer, project, first_run, tmp_path
):
    """A member's worker on the other machine and one on this machine, each in its own
    checkout, at once: one study, each worker's trials nested under its own kedro run."""
    member = _account(remote_stack, "tom", "member")
    env = {**kedro_env(), **member}
    params = f"tune.storage={member['TUNE_STORAGE']},tune.study_name=remote,tune.n_trials=1,"
    command = [sys.executable, "-m", "kedro", "run", "--pipeline", "tune", "--params"]
    workers = [
        subprocess.Popen(
            [*prefix, *command, f"{params}tune.sampler_seed={seed},{QUICK_TUNE}"],
            cwd=checkout,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for seed, prefix, checkout in (
            (1, ["ip", "netns", "exec", peer], _store_project(project, tmp_path / "other-machine")),
            (2, [], _store_project(project, tmp_path / "this-machine")),
        )
    ]
    outputs = outputs_of(workers)
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output[-3000:]
        assert f"of https://{HOST}:" in output  # tracked on the stack, across the boundary
    with pytest.MonkeyPatch.context() as patch:  # read back from here, as the member
        for key, value in member.items():
            patch.setenv(key, value)
        study = optuna.load_study(study_name="remote", storage=member["TUNE_STORAGE"])
    assert len(study.trials) == 2
    assert {t.state.name for t in study.trials} <= {"COMPLETE", "PRUNED"}
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2
    # Each trial started its MLflow run (on the server, as the output says; how trial runs
    # nest is checked in test_tune.py: a client here would hold a connection open to the
    # server, which then takes its whole grace period to stop).
    assert all(t.user_attrs.get("mlflow_run_id") for t in study.trials)
