"""The registered model as MLflow loads it: a pyfunc around the version's ONNX graph, run by
ONNX Runtime, that keeps the project's contract (contract.py): pixels or pictures in, class
names and probabilities out, and HTTP 400 for input that is neither.

The graph (built by fashion_transfer.export) takes (N, 28, 28) float32 images in [0, 1] and
returns each class's probability (calibrated) and, for versions registered since, each
image's out-of-distribution score and whether it is recognised; its metadata names the
classes, in order."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import mlflow
import numpy as np
import onnxruntime
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from .contract import InvalidImagesError, images_from_input, result_table

ONNX_ARTIFACT = "onnx"
EXAMPLES_ARTIFACT = "examples"  # a test picture of each class, as PNG files
# Threads ONNX Runtime uses per model (per web worker when served); unset: one per core.
THREADS_VARIABLE = "FASHION_TRANSFER_MODEL_THREADS"
# Images per ONNX Runtime call: large batches in chunks that stay in the CPU's caches.
CHUNK = 1024
RECOGNITION_OUTPUTS = {"ood_score", "recognised"}


def onnx_session(path: str) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    if threads := os.environ.get(THREADS_VARIABLE):
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def class_metadata(session: onnxruntime.InferenceSession) -> tuple[list[str], list[int]]:
    """The class names and their Fashion-MNIST labels, in the order of the graph's output."""
    metadata = session.get_modelmeta().custom_metadata_map
    return json.loads(metadata["class_names"]), json.loads(metadata["source_classes"])


class FashionClassifier(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        self.session = onnx_session(context.artifacts[ONNX_ARTIFACT])
        self.input_name = self.session.get_inputs()[0].name
        # A graph with a score also tells whether each picture is one of its classes; graphs
        # registered before give probabilities only.
        self.recognises = RECOGNITION_OUTPUTS <= {o.name for o in self.session.get_outputs()}
        self.busy = threading.Lock()
        self.class_names, self.source_classes = class_metadata(self.session)
        examples = context.artifacts.get(EXAMPLES_ARTIFACT)
        self.examples = (
            sorted(str(path) for path in Path(examples).glob("*.png")) if examples else []
        )

    def outputs(self, images: np.ndarray) -> list[np.ndarray]:
        """The graph's outputs for a float32 (N, 28, 28) batch in [0, 1]: probabilities
        (N, classes) and, where the graph has them, the score (N,) and whether each image is
        recognised (N,)."""
        chunks = [
            self.session.run(None, {self.input_name: images[start : start + CHUNK]})
            for start in range(0, len(images), CHUNK)
        ]
        return [np.concatenate(parts) for parts in zip(*chunks, strict=True)]

    # np.ndarray is one of the hints MLflow neither validates nor converts against, so tables
    # and dicts (pictures) arrive as they were sent; without a hint MLflow warns on each load.
    def predict(self, context, model_input: np.ndarray, params: dict | None = None):
        # One request computes at a time: the scoring server runs each in a thread of its own,
        # and concurrent ones would share the worker's cores (threads of their own in ONNX
        # Runtime, CPU caches) so badly that together they finish later than one by one.
        with self.busy:
            try:
                images = images_from_input(model_input)
            except InvalidImagesError as error:
                # INVALID_PARAMETER_VALUE makes the scoring server answer 400, not 500.
                raise MlflowException(str(error), error_code=INVALID_PARAMETER_VALUE) from None
            outputs = self.outputs(images)
        recognition = (outputs[2], outputs[1]) if self.recognises else None
        return result_table(outputs[0], self.class_names, self.source_classes, recognition)
