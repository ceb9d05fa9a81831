"""A trained model as MLflow logs it: the served model's code (fashion_transfer/served_model,
and nothing else of the package), its ONNX graph, which is what answers requests, and its
PyTorch checkpoint, from which a later run can transfer (`pretrained_model_uri=models:/...`).
Its requirements are what the served model imports, so a fresh environment built from the
model's own requirements.txt loads and serves it, without PyTorch or the project."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
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
# The distributions the served model imports, pinned to this environment's versions, and the
# module each of them provides.
REQUIREMENTS = {
    "mlflow-skinny": "mlflow",
    "onnxruntime": "onnxruntime",
    "numpy": "numpy",
    "pandas": "pandas",
    "pillow": "PIL",
    "opencv-python-headless": "cv2",
}


def requirements() -> list[str]:
    return [f"{name}=={version(name)}" for name in REQUIREMENTS]


@contextlib.contextmanager
def _requirements_known_to_mlflow() -> Iterator[None]:
    """While a model is logged, MLflow checks its pinned requirements against the installed
    packages (again when it loads the model to try the input example), and for that maps the
    modules of every installed distribution, once a process: `packages_distributions()` reads
    the file lists of PyTorch and some 260 others, 0.75 s on a 2-core AMD EPYC. The
    requirements are this environment's own versions, so for the length of the call MLflow
    is told the modules of these distributions only; afterwards its map is unset again, for
    any later call that needs the whole environment's (requirements inferred, not given). With
    an MLflow that no longer keeps this map, or has built it already, nothing changes. The map
    is MLflow's, for the whole process: models are logged from one thread at a time (the
    registration logs them in turn), and no other thread may infer requirements meanwhile."""
    from mlflow.utils import requirements_utils

    if getattr(requirements_utils, "_MODULES_TO_PACKAGES", ()) is not None:
        yield
        return
    requirements_utils._MODULES_TO_PACKAGES = {
        module: [name] for name, module in REQUIREMENTS.items()
    }
    try:
        yield
    finally:
        requirements_utils._MODULES_TO_PACKAGES = None


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
        with _requirements_known_to_mlflow():
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
