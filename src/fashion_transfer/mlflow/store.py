"""The MLflow tracking store the project records to: MLFLOW_TRACKING_URI when set (a team's
tracking server), else SQLite in the project's mlruns/; where a new experiment keeps its
artifacts; and the check, before a run starts, that the store answers and holds the
experiment."""

from __future__ import annotations

import os
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import mlflow
from filelock import FileLock
from mlflow.exceptions import MlflowException

from fashion_transfer.errors import TrackingStoreError
from fashion_transfer.framework.paths import project_root


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI when set, else a SQLite store in mlruns/ of the project."""
    return (
        os.environ.get("MLFLOW_TRACKING_URI")
        or f"sqlite:///{project_root() / 'mlruns' / 'mlflow.db'}"
    )


def artifact_location() -> str | None:
    """Where runs of a new experiment keep their artifacts: mlruns/artifacts/ of the project
    beside a local SQLite store; the tracking server's own choice (it serves them) otherwise."""
    if tracking_uri().startswith("sqlite:"):
        return (project_root() / "mlruns" / "artifacts").as_uri()
    return None


def prepare_store(tracking_uri: str, experiment: str, artifact_location: str | None) -> None:
    """Before a run starts: the store answers, accepts the credentials and holds the
    experiment, or the run stops with what to fix. Runs that start together on a new store
    would otherwise race: two creating a SQLite store's tables both run MLflow's migrations
    ("table _alembic_tmp_params already exists"), two creating the experiment on a server
    collide (RESOURCE_ALREADY_EXISTS). A SQLite store is prepared under a lock beside it,
    which every checkout sharing the store shares; on a server the loser of the race finds
    the winner's experiment."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme == "sqlite" and parsed.path not in ("", "/", "/:memory:"):
        # sqlite:///relative/path and sqlite:////absolute/path: drop the separator slash.
        database = Path(parsed.path[1:])
        database.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{database}.lock"):
            _ensure_experiment(tracking_uri, experiment, artifact_location)
        return
    if parsed.scheme in ("http", "https"):
        probe_server(tracking_uri)
    try:
        _ensure_experiment(tracking_uri, experiment, artifact_location)
    except MlflowException as error:
        message = str(error)
        if "401" in message or "403" in message or "Unauthorized" in message:
            raise TrackingStoreError(
                f"The MLflow tracking server at {tracking_uri} refused the credentials "
                "(HTTP 401/403). Set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to "
                "an account of that server (`make team-up` prints them for the local stack)."
            ) from None
        raise _no_answer(tracking_uri, message.splitlines()[0]) from None


# Seconds a tracking server gets to accept a connection and answer before a run gives up.
PROBE_SECONDS = 15


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
        f"The MLflow tracking server at {tracking_uri} did not answer ({reason}). "
        "Start it (`make team-up` for the local stack) or fix MLFLOW_TRACKING_URI."
    )


def _ensure_experiment(tracking_uri: str, name: str, artifact_location: str | None) -> None:
    client = mlflow.MlflowClient(tracking_uri, tracking_uri)
    if client.get_experiment_by_name(name) is not None:
        return
    try:
        client.create_experiment(name, artifact_location=artifact_location)
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":  # another run made it just now
            raise


def require_model(model_uri: str) -> str:
    """Point MLflow at the project's store and check that its registry holds `model_uri`
    (`models:/NAME@ALIAS` or `models:/NAME/VERSION`), before a program serves it; the store's
    URI, or TrackingStoreError saying what to run first."""
    store = tracking_uri()
    os.environ["MLFLOW_TRACKING_URI"] = store
    if store.startswith(("http://", "https://")):
        probe_server(store)
    if not model_uri.startswith("models:/"):
        return store  # a run's or a folder's model: MLflow says itself if it is missing
    name, _, alias = model_uri.removeprefix("models:/").partition("@")
    client = mlflow.MlflowClient(store, store)
    try:
        if alias:
            client.get_model_version_by_alias(name, alias)
        else:
            name, _, version = name.partition("/")
            client.get_model_version(name, version)
    except MlflowException as error:
        raise TrackingStoreError(
            f"the MLflow registry at {store} has no {model_uri} "
            f"({error.message.splitlines()[0]}). Run `make run` (or `kedro run`) first to "
            "register the models, or name another with MODEL=NAME (the names are in "
            "conf/base/parameters_registry.yml)."
        ) from None
    return store
