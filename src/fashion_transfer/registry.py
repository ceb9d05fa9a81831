"""MLflow model registry: log a trained stage as an image classifier, register it, and move the
champion alias only to a version whose validation accuracy beats the current champion's."""

from __future__ import annotations

import hashlib
import tempfile
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

    def predict(self, context, model_input, params=None) -> pd.DataFrame:
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
            python_model=FashionClassifier(),
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


def registry_lock(registry_uri: str) -> FileLock:
    """A lock that makes promote_if_better's read-compare-move of the alias atomic between
    runs on this machine: beside the database for a SQLite store (so every project sharing
    that store shares the lock), else in the temporary folder, one per registry URI."""
    parsed = urlparse(registry_uri)
    if parsed.scheme == "sqlite" and parsed.path not in ("", "/", "/:memory:"):
        # sqlite:///relative/path and sqlite:////absolute/path: drop the separator slash.
        return FileLock(f"{parsed.path[1:]}.lock")
    digest = hashlib.sha256(registry_uri.encode()).hexdigest()[:16]
    return FileLock(Path(tempfile.gettempdir()) / f"fashion-transfer-registry-{digest}.lock")


def prepare_store(tracking_uri: str) -> None:
    """Create a SQLite tracking store's tables, one process at a time: two runs that both
    find no store would otherwise both run MLflow's schema migrations, and one of them fails
    ("table _alembic_tmp_params already exists"). A store that exists costs one query."""
    if urlparse(tracking_uri).scheme != "sqlite":
        return
    lock = registry_lock(tracking_uri)
    Path(lock.lock_file).parent.mkdir(parents=True, exist_ok=True)
    with lock:
        mlflow.MlflowClient(tracking_uri, tracking_uri).search_experiments(max_results=1)


def promote_if_better(
    client: mlflow.MlflowClient, name: str, version: str, metrics: dict, alias: str
) -> tuple[bool, str]:
    """Tag the version with its validation and test accuracy; point `alias` at it only if its
    validation accuracy beats that of the version the alias points at now (or there is none):
    models are chosen on validation, the test figure is reported, never chosen on. Returns
    (promoted, reason). Call it under registry_lock, or two runs may both see the old
    champion and both move the alias."""
    for key in ("val_accuracy", "test_accuracy"):
        client.set_model_version_tag(name, version, key, f"{metrics[key]:.6f}")
    accuracy = metrics["val_accuracy"]
    try:
        current = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        current = None
    if current is None:
        promoted, reason = True, f"first {alias} of {name}"
    else:
        best = float(current.tags.get("val_accuracy", "-inf"))
        promoted = accuracy > best
        verb = "beats" if promoted else "does not beat"
        reason = (
            f"validation accuracy {accuracy:.4f} {verb} {alias} version {current.version} "
            f"({best:.4f})"
        )
    if promoted:
        client.set_registered_model_alias(name, alias, version)
    return promoted, reason
