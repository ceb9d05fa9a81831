"""The MLflow tracking store the project records to: MLFLOW_TRACKING_URI when set (a team's
tracking server), else SQLite in the project's mlruns/; where a new experiment keeps its
artifacts; and the check, before a run starts, that the store answers and holds the
experiment."""

from __future__ import annotations

import contextlib
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from filelock import FileLock

from fashion_transfer.errors import TrackingStoreError
from fashion_transfer.framework.paths import project_root
from fashion_transfer.redact import redact

if TYPE_CHECKING:
    import mlflow

# MLflow and SQLAlchemy are imported where they are used: Kedro reads the resolvers of
# framework/config.py (tracking_uri, artifact_location) at every start of the `kedro` command,
# `kedro --help` included, and importing MLflow takes seconds.


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI when set, else a SQLite store in mlruns/ of the project."""
    return (
        os.environ.get("MLFLOW_TRACKING_URI")
        or f"sqlite:///{project_root() / 'mlruns' / 'mlflow.db'}"
    )


def artifact_location() -> str | None:
    """Where runs of a new experiment keep their artifacts: the folder `artifacts/` beside a
    SQLite store's file (mlruns/artifacts/ for the project's own), so that every checkout
    sharing the store finds them there, whichever made the experiment; the tracking server's
    own choice (it serves them) otherwise."""
    database = sqlite_file(tracking_uri())
    return None if database is None else (database.parent / "artifacts").as_uri()


def sqlite_file(uri: str) -> Path | None:
    """The file of a SQLite URI (sqlite:///relative or sqlite:////absolute), made absolute;
    None for other stores and in-memory databases."""
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite" or parsed.path in ("", "/", "/:memory:"):
        return None
    return Path(parsed.path[1:]).resolve()  # the separator slash dropped


def prepare_store(tracking_uri: str, experiment: str, artifact_location: str | None) -> None:
    """Before a run starts: the store answers, accepts the credentials and holds the
    experiment, or the run stops with what to fix. Runs that start together on a new store
    would otherwise race: two creating a SQLite store's tables both run MLflow's migrations
    ("table _alembic_tmp_params already exists"), two creating the experiment on a server
    collide (RESOURCE_ALREADY_EXISTS). A SQLite store is prepared under a lock beside it,
    which every checkout sharing the store shares; on a server the loser of the race finds
    the winner's experiment."""
    from mlflow.exceptions import MlflowException

    parsed = urlparse(tracking_uri)
    if database := sqlite_file(tracking_uri):
        database.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{database}.lock"), readable_store(tracking_uri):
            _ensure_experiment(tracking_uri, experiment, artifact_location)
        return
    if parsed.scheme in ("http", "https"):
        give_up_in_seconds()
        probe_server(tracking_uri)
    try:
        _ensure_experiment(tracking_uri, experiment, artifact_location)
    except MlflowException as error:
        message = str(error)
        if "401" in message or "403" in message or "Unauthorized" in message:
            raise TrackingStoreError(
                f"The MLflow tracking server at {redact(tracking_uri)} refused the credentials "
                "(HTTP 401/403). Set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to "
                "an account of that server (`make team-up` prints them for the local stack)."
            ) from None
        raise _no_answer(tracking_uri, message.splitlines()[0]) from None


# Seconds a tracking server gets to accept a connection and answer before a run gives up.
PROBE_SECONDS = 15
# MLflow's client retries a call to a server that went away 7 times with a back-off that
# doubles from 2 s (minutes per call); a run against a server that is gone stops in seconds.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def give_up_in_seconds() -> None:
    """MLflow's HTTP retries cut to seconds, unless the user set them."""
    for variable, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(variable, value)


def unreachable(error: BaseException) -> bool:
    """Whether an MLflow error says the tracking server did not answer."""
    text = str(error)
    return any(
        sign in text
        for sign in (
            "Max retries exceeded",
            "Connection refused",
            "Failed to establish",
            "timed out",
        )
    )


def probe_server(tracking_uri: str) -> None:
    """Fail in seconds on a server that is not there: MLflow's client retries a refused
    connection with back-off for about four minutes before it reports it."""
    try:
        with urllib.request.urlopen(f"{tracking_uri.rstrip('/')}/health", timeout=PROBE_SECONDS):
            pass
    except urllib.error.HTTPError:
        return  # it answered (with basic-auth or behind a proxy, maybe not with 200)
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        if isinstance(reason, ssl.SSLError):
            return  # it answered; MLflow's own TLS settings decide what to make of it
        raise _no_answer(tracking_uri, reason) from None


def _no_answer(tracking_uri: str, reason: object) -> TrackingStoreError:
    return TrackingStoreError(
        f"The MLflow tracking server at {redact(tracking_uri)} did not answer ({reason}). "
        "Start it (`make team-up` for the local stack) or fix MLFLOW_TRACKING_URI."
    )


def _ensure_experiment(tracking_uri: str, name: str, artifact_location: str | None) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(tracking_uri, tracking_uri)
    if client.get_experiment_by_name(name) is not None:
        return
    try:
        client.create_experiment(name, artifact_location=artifact_location)
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":  # another run made it just now
            raise


@contextlib.contextmanager
def readable_store(uri: str) -> Iterator[None]:
    """Turn what a damaged SQLite store raises (a file that is not a database, or one whose
    tables are not MLflow's) into one TrackingStoreError that names the file and what to do;
    the file is not touched."""
    import sqlalchemy
    from mlflow.exceptions import MlflowException

    try:
        yield
    except (sqlalchemy.exc.DatabaseError, MlflowException) as error:
        database = sqlite_file(uri)
        text = str(getattr(error, "orig", None) or error)
        damaged = ("file is not a database", "database disk image is malformed", "no such table")
        if database is None or not any(sign in text for sign in damaged):
            raise
        reason = next(sign for sign in damaged if sign in text)
        raise TrackingStoreError(
            f"The MLflow store {database} is damaged ({reason}), so nothing was read from it "
            f"or written to it. Restore it from a backup, or move it aside (`mv {database} "
            f"{database}.damaged`) to start a new, empty store on the next run."
        ) from None


def require_model(model_uri: str) -> str:
    """Point MLflow at the project's store and check that its registry holds `model_uri`
    (`models:/NAME@ALIAS` or `models:/NAME/VERSION`), before a program serves it; the store's
    URI, or TrackingStoreError saying what to run first."""
    import mlflow
    from mlflow.exceptions import MlflowException

    store = tracking_uri()
    os.environ["MLFLOW_TRACKING_URI"] = store
    if store.startswith(("http://", "https://")):
        probe_server(store)
    if not model_uri.startswith("models:/"):
        return store  # a run's or a folder's model: MLflow says itself if it is missing
    name, _, alias = model_uri.removeprefix("models:/").partition("@")
    try:
        with readable_store(store):
            client = mlflow.MlflowClient(store, store)
            if alias:
                found = client.get_model_version_by_alias(name, alias)
            else:
                name, _, version = name.partition("/")
                found = client.get_model_version(name, version)
    except MlflowException as error:
        raise TrackingStoreError(
            f"the MLflow registry at {redact(store)} has no {model_uri} "
            f"({error.message.splitlines()[0]}). Run `make run` (or `kedro run`) first to "
            "register the models, or name another with MODEL=NAME (the names are in "
            "conf/base/parameters_registry.yml)."
        ) from None
    source = client.get_model_version_download_uri(name, found.version)
    if source.startswith("file:") and not Path(urlparse(source).path).exists():
        raise TrackingStoreError(
            f"the files of {model_uri} (version {found.version}) are gone from "
            f"{urlparse(source).path}: the store's artifact folder was moved or deleted. "
            "Restore it, or register the model again with `make run`."
        )
    return store


# The account a tracking server knows the user by (MLflow's own variable).
USER_VARIABLE = "MLFLOW_TRACKING_USERNAME"

# Tags of each `kedro run`'s MLflow run: which process runs it, to tell an abandoned run.
HOST_TAG, PROCESS_TAG = "host", "process"
ABANDONED_REASON = (
    "its process ended without closing the run (killed outright, or its machine stopped)"
)


def this_process() -> str:
    """This process as `pid:start`, the start time telling a reused pid apart."""
    return f"{os.getpid()}:{_start_time(os.getpid())}"


def end_abandoned_runs(client: mlflow.MlflowClient, experiment_id: str, current: str) -> list[str]:
    """Runs of this machine still RUNNING whose process is gone (a SIGKILL, a crash between
    two steps) are ended as KILLED with the reason, so that the MLflow UI does not show them
    running for ever; the ids of those ended. Runs of other machines are theirs to judge."""
    host = os.uname().nodename
    running = client.search_runs(
        [experiment_id],
        filter_string=f"attributes.status = 'RUNNING' and tags.{HOST_TAG} = '{host}'",
    )
    ended = []
    for run in running:
        pid, _, started = run.data.tags.get(PROCESS_TAG, "").partition(":")
        if run.info.run_id == current or not pid.isdigit():
            continue
        if _start_time(int(pid)) == started:  # that very process is still running
            continue
        client.set_tag(run.info.run_id, "killed_reason", ABANDONED_REASON)
        client.set_terminated(run.info.run_id, "KILLED")
        ended.append(run.info.run_id)
    return ended


def _start_time(pid: int) -> str:
    """When process `pid` started (clock ticks since boot), "" if there is none; where there
    is no /proc, "alive" for any live process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return ""  # a /proc, and no such process
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return ""
        except PermissionError:
            pass
        return "alive"
    except OSError:
        return ""
    # The command name, in parentheses, may hold spaces: the fields follow its last ")".
    return stat.rsplit(")", 1)[1].split()[19]
