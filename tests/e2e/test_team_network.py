"""Team mode across a real network boundary: a network namespace with a veth pair is a second
machine (addresses of the test's own, nothing routed anywhere else). The stack listens on the
host's end (`make team-up HOST=...`); a member's tuning workers, one on each end, share a
study and the tracking server over TLS, and from the other end every way in without the
right credentials, trust or encryption is refused. Every route MLflow's server answers is sent
as each role, and each answer checked against the rights table (programs/team/rights.py); what
anonymous and viewer requests leave behind is checked in the store itself. CI runs as root with
iproute2 and PostgreSQL installed (.ci/run); elsewhere these tests skip."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import optuna
import pytest

from fashion_transfer.programs.team import rights
from fashion_transfer.programs.team.stack import Stack
from tests.conftest import PROJECT_ROOT
from tests.e2e.helpers import EXPERIMENT, QUICK_TUNE, kedro_env, outputs_of, require
from tests.e2e.test_team import POSTGRES, _account, _store_project, _up, settings_of

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


@pytest.fixture(scope="module")
def people(remote_stack) -> dict[str, dict[str, str]]:
    """One account per role, as `make team-user` makes them, and the admin's settings."""
    made = {role: _account(remote_stack, name, role) for role, name in
            (("viewer", "vera"), ("member", "rita"), ("maintainer", "mona"))}  # fmt: skip
    return made | {"admin": settings_of(remote_stack / "people" / "admin" / "settings.sh")}


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


def test_from_another_machine_only_what_each_role_may_do_gets_through(remote_stack, peer, people):
    member, viewer = people["member"], people["viewer"]
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
    remote_stack, peer, people, project, first_run, tmp_path
):
    """A member's worker on the other machine and one on this machine, each in its own
    checkout, at once: one study, each worker's trials nested under its own kedro run."""
    member = people["member"]
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


def test_the_docs_table_is_the_rights_table():
    """docs/team-mode.md shows rights.markdown(), the table the matrix test below checks."""
    assert rights.markdown() in (PROJECT_ROOT / "docs" / "team-mode.md").read_text()


# -- every route as every role ---------------------------------------------------------------
# One process on the other machine lists MLflow's routes, makes the objects they name (as the
# admin, in the project's experiment and registered model, which the roles are granted) and
# sends each route as each role, one keep-alive connection per role. Anonymous and viewer
# requests go first, over every route; between them and the writers' the test reads the store.
# Members, maintainers and the admin send each route once (not the /ajax-api/ twin of a
# /api/ route, which MLflow gives the same rule), in an order that deletes last, leaves first.

MCP_SERVER = "org.example/matrix"
KIND_ORDER = ("read", "create", "update", "invoke", "delete")
DELETE_ORDER = ("traces", "evaluation", "logged models", "artifacts", "runs", "aliases",
                "versions", "registered models", "experiments")  # fmt: skip


def served_routes() -> list[tuple[str, str]]:
    """(method, route) of every route the stack's server answers, from MLflow's own app: the
    tracking server's Flask routes with basic-auth's and the FastAPI app around them, built
    here over a scratch account database."""
    import logging

    folder = Path(tempfile.mkdtemp(prefix="matrix-routes-"))
    (folder / "auth.ini").write_text(
        f"[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{folder}/auth.db\n"
        "admin_username = admin\n"
    )
    os.environ.update(
        MLFLOW_AUTH_CONFIG_PATH=str(folder / "auth.ini"),
        MLFLOW_AUTH_ADMIN_PASSWORD="of-a-scratch-database",
        MLFLOW_FLASK_SERVER_SECRET_KEY=os.urandom(16).hex(),
        _MLFLOW_SGI_NAME="uvicorn",  # as `mlflow server` serves it
    )
    logging.disable(logging.WARNING)
    from mlflow.server import app as flask_app

    from fashion_transfer.programs.team.server_app import create_app

    served = create_app(flask_app)
    found = set()
    for rule in flask_app.url_map.iter_rules():
        found.update((method, rule.rule) for method in rule.methods - {"HEAD", "OPTIONS"})
    for path, operations in served.openapi()["paths"].items():
        found.update((method.upper(), path) for method in operations)
    shutil.rmtree(folder, ignore_errors=True)
    return sorted(found, key=lambda route: (route[1], route[0]))


class Server:
    """Requests to the stack's server over one keep-alive HTTPS connection."""

    def __init__(self, url: str, ca: str):
        parts = urllib.parse.urlsplit(url)
        self.address = (parts.hostname, parts.port)
        self.context = ssl.create_default_context(cafile=ca)
        self.connection = None

    def call(self, method, path, body=None, auth=None, headers=None) -> tuple[int, str]:
        sent = {"Content-Type": "application/json", **(headers or {})}
        if auth:
            sent["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
        if method == "GET" and body:
            path += "?" + urllib.parse.urlencode(body, doseq=True)
            body = None
        data = json.dumps(body) if body is not None else None
        for attempt in range(2):
            if self.connection is None:
                self.connection = http.client.HTTPSConnection(
                    *self.address, timeout=60, context=self.context
                )
            try:
                self.connection.request(method, path, body=data, headers=sent)
                response = self.connection.getresponse()
                answer = response.read().decode(errors="replace")
                if response.will_close:
                    self.connection.close()
                    self.connection = None
                return response.status, answer
            except (http.client.HTTPException, OSError):
                self.connection.close()
                self.connection = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def ok(self, method, path, body=None, auth=None) -> dict:
        status, answer = self.call(method, path, body, auth)
        assert status == 200, f"{method} {path}: {status} {answer[:300]}"
        return json.loads(answer)


def matrix_objects(server: Server, admin: str) -> dict[str, str]:
    """The objects the requests name, made by the admin in the project's experiment and
    registered model (which the roles are granted); their ids. Made again before each writing
    role's requests, as a maintainer's delete the experiment, the model and what they hold."""

    def ok(method, path, body=None):
        return server.ok(method, path, body, admin)

    api2, api3 = "/api/2.0/mlflow", "/api/3.0/mlflow"
    experiment = ok("GET", f"{api2}/experiments/get-by-name", {"experiment_name": EXPERIMENT})
    e = experiment["experiment"]["experiment_id"]
    if experiment["experiment"]["lifecycle_stage"] == "deleted":  # a maintainer's delete
        ok("POST", f"{api2}/experiments/restore", {"experiment_id": e})
    run = ok("POST", f"{api2}/runs/create", {"experiment_id": e, "run_name": "matrix"})
    run = run["run"]["info"]
    r = run["run_id"]
    ok("POST", f"{api2}/runs/log-batch", {
        "run_id": r, "params": [{"key": "p", "value": "1"}], "tags": [{"key": "t", "value": "1"}],
        "metrics": [{"key": "m", "value": 1, "timestamp": 1, "step": 0}],
    })  # fmt: skip
    artifacts = run["artifact_uri"].removeprefix("mlflow-artifacts:/")
    put = server.call("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{artifacts}/a.txt", "a", admin)
    assert put[0] == 200, put
    model = EXPERIMENT  # the transfer model's registered name is the experiment's
    if server.call("GET", f"{api2}/registered-models/get", {"name": model}, admin)[0] != 200:
        ok("POST", f"{api2}/registered-models/create", {"name": model})  # a maintainer's delete
    version = ok("POST", f"{api2}/model-versions/create", {
        "name": model, "source": run["artifact_uri"], "run_id": r,
    })["model_version"]["version"]  # fmt: skip
    ok("POST", f"{api2}/model-versions/set-tag", {
        "name": model, "version": version, "key": "t", "value": "1"})  # fmt: skip
    ok("POST", f"{api2}/registered-models/set-tag", {"name": model, "key": "t", "value": "1"})
    ok("POST", f"{api2}/registered-models/alias", {
        "name": model, "alias": "champion", "version": version})  # fmt: skip
    logged = ok("POST", f"{api2}/logged-models", {"experiment_id": e, "source_run_id": r})
    logged = logged["model"]["info"]["model_id"]
    ok("PATCH", f"{api2}/logged-models/{logged}/tags", {"tags": [{"key": "t", "value": "1"}]})
    location = {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": e}}
    trace = ok("POST", f"{api3}/traces", {"trace": {"trace_info": {
        "trace_id": "tr-" + os.urandom(16).hex(), "trace_location": location,
        "request_time": "2026-01-01T00:00:00Z", "state": "OK", "tags": {"t": "1"},
    }}})["trace"]["trace_info"]["trace_id"]  # fmt: skip
    assessment = ok("POST", f"{api3}/traces/{trace}/assessments", {"assessment": {
        "trace_id": trace, "assessment_name": "matrix", "feedback": {"value": True},
        "source": {"source_type": "HUMAN", "source_id": "admin"},
    }})["assessment"]["assessment_id"]  # fmt: skip
    unique = f"matrix-{time.time_ns()}"
    dataset = ok("POST", f"{api3}/datasets/create", {"experiment_ids": [e], "name": unique})
    scorer = ok("POST", f"{api3}/scorers/register", {
        "experiment_id": e, "name": unique, "serialized_scorer": "{}"})  # fmt: skip
    schema = ok(
        "POST",
        f"{api3}/label-schemas/create",
        {"experiment_id": e, "name": unique, "type": "FEEDBACK", "input": {"text": {}}},
    )
    queue = ok("POST", f"{api3}/review-queues/create", {
        "experiment_id": e, "name": unique, "queue_type": "CUSTOM"})  # fmt: skip
    # MLflow adds an experiment's default label schema on its first listing, whoever lists.
    ok("GET", f"{api3}/label-schemas/list", {"experiment_id": e})
    issue = ok("POST", f"{api3}/issues", {
        "experiment_id": e, "name": unique, "description": "matrix"})  # fmt: skip
    if server.call("GET", f"{api3}/mcp-servers/{MCP_SERVER}", None, admin)[0] != 200:
        ok("POST", f"{api3}/mcp-servers", {"name": MCP_SERVER})
        ok("POST", f"{api3}/mcp-servers/{MCP_SERVER}/versions", {"server_json": {
            "name": MCP_SERVER, "version": "1.0.0", "description": "matrix"}})  # fmt: skip
    return {
        "experiment_id": e, "run_id": r, "artifacts": artifacts, "name": model,
        "version": version, "model_id": logged, "trace_id": trace, "assessment_id": assessment,
        "dataset_id": dataset["dataset"]["dataset_id"], "scorer_id": scorer["scorer_id"],
        "schema_id": schema["label_schema"]["schema_id"], "issue_id": issue["issue"]["issue_id"],
        "queue_id": queue["review_queue"]["queue_id"],
    }  # fmt: skip


def matrix_requests(routes, objects: dict[str, str]) -> list[tuple]:
    """One request per route, naming the objects: (method, route, path, body, headers). The
    body holds every id a rule may look for; a made-up one (matrix-none) where nothing of the
    kind is made, or where a maintainer's or the admin's request would remove what others need
    (the default workspace, an account)."""
    o = objects
    in_path = {
        "experiment_id": o["experiment_id"], "request_id": o["trace_id"],
        "trace_id": o["trace_id"], "model_id": o["model_id"], "tag_key": "t", "key": "t",
        "assessment_id": o["assessment_id"], "issue_id": o["issue_id"],
        "dataset_id": o["dataset_id"], "artifact_path": f"{o['artifacts']}/a.txt",
        "path": "index.html", "name": MCP_SERVER, "version": "1.0.0", "alias": "champion",
    }  # fmt: skip
    ids = {
        "experiment_id": o["experiment_id"], "experiment_ids": [o["experiment_id"]],
        "run_id": o["run_id"], "name": o["name"], "version": o["version"], "alias": "champion",
        "key": "t", "value": "1", "model_id": o["model_id"], "trace_id": o["trace_id"],
        "request_id": o["trace_id"], "trace_ids": [o["trace_id"]], "new_name": o["name"],
        "dataset_id": o["dataset_id"], "scorer_id": o["scorer_id"], "schema_id": o["schema_id"],
        "queue_id": o["queue_id"], "issue_id": o["issue_id"],
        "assessment_id": o["assessment_id"], "username": "matrix-none",
        "password": "matrix-none-password", "role_id": 999999, "workspace": "default",
        "resource_type": "experiment", "resource_id": o["experiment_id"],
        "permission": "READ", "secret_id": "matrix-none", "model_definition_id": "matrix-none",
        "endpoint_id": "matrix-none",
    }  # fmt: skip
    experiment = {"experiment_id": o["experiment_id"]}
    location = {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": experiment}
    made = []
    for method, route in routes:
        fill = in_path | {"workspace_name": "default" if method == "GET" else "matrix-none"}
        path = re.sub(
            r"<(?:\w+:)?(\w+)>|\{(\w+)(?::\w+)?\}",
            lambda m, fill=fill: urllib.parse.quote(fill.get(m[1] or m[2], "matrix-none"), "/"),
            route,
        )
        body, headers, name = dict(ids), {}, rights.short(route)
        if name == "mlflow/artifacts/presigned-upload-url":
            del body["model_id"]  # one of run_id and model_id
        if name == "mlflow/upload-artifact":
            path += "?" + urllib.parse.urlencode({"run_uuid": o["run_id"], "path": "b.txt"})
        if name == "v1/traces":
            headers["X-Mlflow-Experiment-Id"] = o["experiment_id"]
        if name == "graphql":
            query = '{ mlflowGetExperiment(input: {experimentId: "E"}) { experiment { name } } }'
            body = {"query": query.replace("E", o["experiment_id"])}
        if name == "mlflow/demo/generate":
            body = {"features": ["matrix-none"]}  # none of MLflow's: at most its experiment
        if name.startswith("gateway/"):
            body["model"] = "matrix-none"
        if method == "POST" and route.startswith(("/api/3.0/mlflow/traces", "/ajax-api/3.0")):
            if name == "mlflow/traces":  # StartTraceV3
                body = {"trace": {"trace_info": {
                    "trace_id": "tr-" + os.urandom(16).hex(), "trace_location": location,
                    "request_time": "2026-01-01T00:00:00Z", "state": "OK"}}}  # fmt: skip
        if name == "mlflow/traces/search":
            body["locations"] = [location]
        made.append((method, route, path, body, headers))
    return made


def matrix_order(requests, twins: bool) -> list[tuple]:
    """Reads first, then creates, updates, runs and deletes, each object after what it holds;
    without the /ajax-api/ twins of /api/ routes unless `twins`."""
    names = {request[1] for request in requests}

    def key(request):
        method, route = request[0], request[1]
        kind, resource = rights.kind_of(method, route), rights.resource_of(route)
        rank = DELETE_ORDER.index(resource) if resource in DELETE_ORDER else len(DELETE_ORDER)
        return (KIND_ORDER.index(kind), rank, rights.short(route))

    chosen = [
        request for request in requests
        if twins or not (request[1].startswith("/ajax-api/")
                         and request[1].replace("/ajax-api/", "/api/", 1) in names)
    ]  # fmt: skip
    return sorted(chosen, key=key)


def peer_matrix() -> None:
    """On the other machine: list the routes and make the objects, then send every route as the
    anonymous and viewer roles (at once, each on its own connection: they change nothing), then
    as member, maintainer and admin, the last two on objects made afresh (a maintainer deletes);
    before the readers and after them it says so and waits for a line on stdin (the test reads
    the store). Prints one JSON line: the routes and {role: {"METHOD route": status}}."""
    from concurrent.futures import ThreadPoolExecutor

    auth = json.loads(os.environ["MATRIX_AUTH"])  # role: "name:password"
    url, ca = os.environ["MLFLOW_TRACKING_URI"], os.environ["MATRIX_CA"]
    server = Server(url, ca)
    routes = served_routes()
    requests = matrix_requests(routes, matrix_objects(server, auth["admin"]))

    def send(role: str) -> dict[str, int]:
        own = Server(url, ca)
        chosen = matrix_order(requests, twins=role in ("anonymous", "viewer"))
        return {
            f"{method} {route}": own.call(method, path, body, auth.get(role), headers)[0]
            for method, route, path, body, headers in chosen
        }

    print("readers next", flush=True)
    sys.stdin.readline()
    with ThreadPoolExecutor(2) as pool:
        readers = ("anonymous", "viewer")
        found = dict(zip(readers, pool.map(send, readers), strict=True))
    print("readers done", flush=True)
    sys.stdin.readline()
    for role in ("member", "maintainer", "admin"):
        if role != "member":
            requests = matrix_requests(routes, matrix_objects(server, auth["admin"]))
        found[role] = send(role)
    print(json.dumps({"routes": routes, "found": found}), flush=True)


STORE_STATE = """SELECT c.relname || ' ' || coalesce((xpath('/row/h/text()', query_to_xml(format(
'SELECT md5(string_agg(t::text, ''|'' ORDER BY t::text)) AS h FROM public.%I t', c.relname),
false, true, '')))[1]::text, 'empty') FROM pg_class c JOIN pg_namespace n ON n.oid =
c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1"""


def store_state(folder: Path) -> dict[str, str]:
    """A digest of every table of MLflow's two databases, and every artifact file's size and
    time: what any write would change."""
    stack = Stack(folder)
    credentials = json.loads(stack.credentials_file.read_text())
    state = {}
    for database in ("mlflow", "mlflow_auth"):
        for line in stack.sql(credentials, STORE_STATE, database).splitlines():
            table, digest = line.split(" ", 1)
            state[f"{database}.{table}"] = digest
    artifacts = stack.mlflow_folder / "artifacts"
    for path in sorted(artifacts.rglob("*")):
        if path.is_file():
            found = path.stat()
            state[f"artifact {path.relative_to(artifacts)}"] = (
                f"{found.st_size} {found.st_mtime_ns}"
            )
    return state


def test_every_route_answers_each_role_as_the_rights_table_says(remote_stack, peer, people):
    """The whole matrix from the other machine: every route MLflow serves, as each role (the
    /ajax-api/ twins as anonymous and viewer), each answer of the class rights.expected()
    gives; a route the table does not sort fails. Anonymous and viewer requests change nothing
    in the store, and every viewer write is 403."""
    auth = {
        role: f"{found['MLFLOW_TRACKING_USERNAME']}:{found['MLFLOW_TRACKING_PASSWORD']}"
        for role, found in people.items()
    }
    env = {
        **kedro_env(), "MLFLOW_TRACKING_URI": people["admin"]["MLFLOW_TRACKING_URI"],
        "MATRIX_CA": str(remote_stack / "tls" / "ca.pem"), "MATRIX_AUTH": json.dumps(auth),
        "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT / "src"), str(PROJECT_ROOT)]),
    }  # fmt: skip
    code = "from tests.e2e.test_team_network import peer_matrix; peer_matrix()"
    worker = subprocess.Popen(
        ["ip", "netns", "exec", peer, sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    states, answer = [], None
    try:
        for line in worker.stdout:
            if line.startswith("readers "):  # next, done: the store before and after them
                states.append(store_state(remote_stack))
                worker.stdin.write("go\n")
                worker.stdin.flush()
            elif line.startswith("{"):
                answer = json.loads(line)
        errors = worker.stderr.read()
        worker.wait(timeout=60)
    finally:
        worker.kill()
    assert answer is not None, errors[-3000:]
    routes, found = answer["routes"], answer["found"]
    assert len(routes) > 400  # MLflow 3.17 serves about 540
    unsorted = [f"{m} {r}" for m, r in routes if rights.resource_of(r) is None]
    assert not unsorted, f"routes the rights table does not sort: {unsorted}"
    kinds = {}  # what the docs' table names for each resource is what its routes are
    for method, route in routes:
        kinds.setdefault(rights.resource_of(route), set()).add(rights.kind_of(method, route))
    for name, *_ in rights.RESOURCES:
        assert kinds.get(name) == set(rights.kinds_of_resource(name)), name
    wrong = []
    for role, answers in found.items():
        for request, status in answers.items():
            method, route = request.split(" ", 1)
            want, got = rights.expected(method, route, role), rights.answer_class(status)
            if want == "400" and status == 400:
                got = "400"
            if got != want:
                wrong.append(f"{role} {request}: {status}, expected {want}")
    assert not wrong, "\n".join(wrong)
    viewer = found["viewer"]
    writes = [r for r in viewer if rights.kind_of(*r.split(" ", 1)) != "read"]
    writes = [r for r in writes if rights.requirement(*r.split(" ", 1)) != rights.MALFORMED]
    assert len(writes) > 200 and {viewer[r] for r in writes} == {403}
    assert set(found["anonymous"]) == set(viewer) == {f"{m} {r}" for m, r in routes}
    changed = {key for key in states[0].keys() | states[1].keys()
               if states[0].get(key) != states[1].get(key)}  # fmt: skip
    assert not changed, f"anonymous or viewer requests changed {sorted(changed)}"
