"""MLflow model registry: log a trained stage as an image classifier, register it, and keep the
champion alias on the version with the best validation accuracy."""

from __future__ import annotations

import random
import ssl
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import numpy as np
import pandas as pd
import torch
from filelock import FileLock
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.types import ColSpec, Schema, TensorSpec

import fashion_transfer
from fashion_transfer.model import IMAGE_SIZE, ImageClassifier, build_model
from fashion_transfer.serving import InvalidImagesError, classify

CHECKPOINT = "checkpoint"


class FashionClassifier(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper: see fashion_transfer.serving for the input and output contract."""

    def load_context(self, context) -> None:
        payload = torch.load(context.artifacts[CHECKPOINT], map_location="cpu", weights_only=True)
        self.model = build_model(payload["config"])
        self.model.load_state_dict(payload["state_dict"])
        self.model.eval()
        self.class_names = payload["class_names"]
        self.source_classes = payload["source_classes"]

    # np.ndarray: the hint MLflow asks for, and one it validates nothing against (the tensor
    # signature and fashion_transfer.serving do).
    def predict(self, context, model_input: np.ndarray, params=None) -> pd.DataFrame:
        try:
            return classify(self.model, model_input, self.class_names, self.source_classes)
        except InvalidImagesError as error:
            # INVALID_PARAMETER_VALUE makes the scoring server answer 400, not 500.
            raise MlflowException(str(error), error_code=INVALID_PARAMETER_VALUE) from None


def log_classifier(
    model: ImageClassifier, stage_data: dict, registered_model_name: str | None
) -> ModelInfo:
    """Log `model` to the active run as a pyfunc image classifier with a signature and a real
    input example; register it under `registered_model_name` unless that is None."""
    example = stage_data["test_images"][:2].astype(np.float32) / 255.0
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, IMAGE_SIZE, IMAGE_SIZE))]),
        outputs=Schema(
            [
                ColSpec("long", "label"),
                ColSpec("string", "class_name"),
                ColSpec("double", "confidence"),
            ]
            + [ColSpec("double", name) for name in stage_data["class_names"]]
        ),
    )
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = Path(folder) / f"{CHECKPOINT}.pt"
        torch.save(
            {
                "config": model.config(),
                "state_dict": model.state_dict(),
                "class_names": list(stage_data["class_names"]),
                "source_classes": list(stage_data["source_classes"]),
            },
            checkpoint,
        )
        return mlflow.pyfunc.log_model(
            name=registered_model_name or "model",
            python_model=str(Path(__file__).with_name("pyfunc_model.py")),
            artifacts={CHECKPOINT: str(checkpoint)},
            signature=signature,
            input_example=example,
            code_paths=[str(Path(fashion_transfer.__file__).parent)],
            # Pinned here so MLflow need not infer them by loading the model in a subprocess.
            pip_requirements=[
                f"torch=={torch.__version__.split('+')[0]}",
                f"mlflow=={mlflow.__version__}",
                f"numpy=={np.__version__}",
                f"pandas=={pd.__version__}",
            ],
            registered_model_name=registered_model_name,
        )


class TrackingStoreError(RuntimeError):
    """The tracking store cannot be used as configured; the message says how to fix it."""


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


def promote_if_best(
    client: mlflow.MlflowClient, name: str, version: str, metrics: dict, alias: str
) -> tuple[bool, str]:
    """Tag the version with its validation and test accuracy, then point `alias` at the
    version with the best validation accuracy of all (the earlier one on a tie): models are
    chosen on validation, the test figure is reported, never chosen on. Returns (whether
    `version` holds the alias, why).

    Runs on several machines may register at once against one tracking server, so no lock
    can cover them; instead each run reads every version, moves the alias to the best, and
    reads again until what it reads agrees. The last run to write reads after its own write,
    so it corrects any stale move made before it: the alias ends on the best version."""
    for key in ("val_accuracy", "test_accuracy"):
        client.set_model_version_tag(name, version, key, f"{metrics[key]:.6f}")
    accuracy = metrics["val_accuracy"]
    before = _holder(client, name, alias)
    for _ in range(MAX_ALIAS_ROUNDS):
        best = max(
            client.search_model_versions(f"name='{name}'"),
            key=lambda v: (_val_accuracy(v), -int(v.version)),
        )
        holder = _holder(client, name, alias)
        if holder is not None and str(holder.version) == str(best.version):
            break
        try:
            client.set_registered_model_alias(name, alias, str(best.version))
        except MlflowException:
            # Another run set the alias at the same moment (the store refuses the second
            # insert of a new alias): read again and judge what it set.
            time.sleep(random.uniform(0.05, 0.2))
    promoted = str(best.version) == str(version)
    if promoted and (before is None or str(before.version) == str(version)):
        return True, f"first {alias} of {name}"
    rival = before if promoted else best
    verb = "beats" if promoted else "does not beat"
    return promoted, (
        f"validation accuracy {accuracy:.4f} {verb} {alias} version {rival.version} "
        f"({_val_accuracy(rival):.4f})"
    )


# Each round is a read and at most one write; concurrent runs settle in a few.
MAX_ALIAS_ROUNDS = 20


def _holder(client: mlflow.MlflowClient, name: str, alias: str):
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def _val_accuracy(version) -> float:
    return float(version.tags.get("val_accuracy", "-inf"))
