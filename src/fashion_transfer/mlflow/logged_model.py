"""A trained model as MLflow logs it: the served model's code (fashion_transfer/served_model,
and nothing else of the package), its ONNX graph, which is what answers requests, and its
PyTorch checkpoint, from which a later run can transfer (`pretrained_model_uri=models:/...`).
Its requirements are what the served model imports, so a fresh environment built from the
model's own requirements.txt loads and serves it, without PyTorch or the project."""

from __future__ import annotations

import tempfile
from importlib.metadata import version
from pathlib import Path

import mlflow
import numpy as np
import torch
from mlflow.models import Model, ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.types import ColSpec, Schema
from PIL import Image

from fashion_transfer import served_model
from fashion_transfer.model import (
    ImageClassifier,
    ServedClassifier,
    from_checkpoint,
    to_checkpoint,
)
from fashion_transfer.served_model.classifier import EXAMPLES_ARTIFACT, ONNX_ARTIFACT
from fashion_transfer.served_model.contract import unit_scale

CHECKPOINT_ARTIFACT = "checkpoint"  # the name models logged before the ONNX graph used too
SERVED_MODEL = Path(served_model.__file__).parent
# The distributions the served model imports, pinned to this environment's versions.
REQUIREMENTS = (
    "mlflow-skinny",
    "onnxruntime",
    "numpy",
    "pandas",
    "pillow",
    "opencv-python-headless",
)


def requirements() -> list[str]:
    return [f"{name}=={version(name)}" for name in REQUIREMENTS]


def signature(class_names: list[str], recognises: bool = True) -> ModelSignature:
    """The output table's columns. No input schema: a request holds either pixels or encoded
    pictures, which one MLflow schema cannot both describe; the served model checks its
    input itself (served_model/contract.py) and answers 400 with what it expects."""
    outputs = [ColSpec("long", "label"), ColSpec("string", "class_name")]
    outputs.append(ColSpec("double", "confidence"))
    if recognises:
        outputs += [ColSpec("boolean", "recognised"), ColSpec("double", "ood_score")]
    outputs += [ColSpec("double", name) for name in class_names]
    return ModelSignature(inputs=None, outputs=Schema(outputs))


def log_classifier(
    model: ImageClassifier,
    graph: bytes,
    stage_data: dict,
    registered_model_name: str | None,
) -> ModelInfo:
    """Log `model` with its ONNX `graph` to the active run, with two of the stage's test
    images as the input example; register it under `registered_model_name` unless None."""
    with tempfile.TemporaryDirectory() as folder:
        onnx_path = Path(folder) / "model.onnx"
        onnx_path.write_bytes(graph)
        checkpoint_path = Path(folder) / "checkpoint.pt"
        checkpoint = to_checkpoint(model) | {
            "class_names": list(stage_data["class_names"]),
            "source_classes": [int(label) for label in stage_data["source_classes"]],
        }
        torch.save(checkpoint, checkpoint_path)
        examples = _write_examples(stage_data, Path(folder) / "examples")
        return mlflow.pyfunc.log_model(
            name=registered_model_name or "model",
            python_model=str(SERVED_MODEL / "model_code.py"),
            code_paths=[str(SERVED_MODEL)],
            artifacts={
                ONNX_ARTIFACT: str(onnx_path),
                CHECKPOINT_ARTIFACT: str(checkpoint_path),
                EXAMPLES_ARTIFACT: str(examples),
            },
            signature=signature(
                list(stage_data["class_names"]), isinstance(model, ServedClassifier)
            ),
            input_example=unit_scale(stage_data["test_images"][:2]),
            # Given, so that MLflow need not infer them by loading the model in a subprocess.
            pip_requirements=requirements(),
            registered_model_name=registered_model_name,
        )


def _write_examples(stage_data: dict, folder: Path) -> Path:
    """The first test picture of each class, as `<label> <class name>.png`: what the web app
    offers to try, and a real picture for anyone who finds the model in the registry."""
    folder.mkdir()
    labels = stage_data.get("test_labels")
    for index, (label, name) in enumerate(
        zip(stage_data["source_classes"], stage_data["class_names"], strict=True)
    ):
        found = np.flatnonzero(labels == index) if labels is not None else []
        if len(found):
            picture = Image.fromarray(stage_data["test_images"][found[0]])
            picture.save(folder / f"{label} {name.replace('/', ' or ')}.png")
    return folder


def read_checkpoint(model_uri: str) -> ImageClassifier:
    """The PyTorch network inside a logged model (`models:/NAME@ALIAS`, `runs:/...`), found by
    the artifact name its MLmodel file gives, whichever version of the project logged it;
    without its serving calibration, as training starts from it."""
    folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
    flavour = Model.load(folder).flavors["python_function"]
    relative = flavour["artifacts"][CHECKPOINT_ARTIFACT]["path"]
    payload = torch.load(folder / relative, map_location="cpu", weights_only=True)
    model = from_checkpoint(payload)
    return model.classifier if isinstance(model, ServedClassifier) else model
