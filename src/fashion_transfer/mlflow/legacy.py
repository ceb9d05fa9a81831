"""Models registered before the served model ran on ONNX (up to commit e8a0639): their code
file says `from fashion_transfer.registry import FashionClassifier`, and in a process that has
imported the installed package already (`kedro run --pipeline predict`) that import finds
this project's package before the copy the model carries. This is that class, loading the
PyTorch checkpoint those models hold and answering as they always did."""

from __future__ import annotations

import mlflow
import numpy as np
import torch
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from fashion_transfer.model import from_checkpoint
from fashion_transfer.served_model.contract import InvalidImagesError, result_table, scale_images
from fashion_transfer.training import encode

CHECKPOINT = "checkpoint"


class FashionClassifier(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        payload = torch.load(context.artifacts[CHECKPOINT], map_location="cpu", weights_only=True)
        self.model = from_checkpoint(payload)
        self.class_names = payload["class_names"]
        self.source_classes = payload["source_classes"]

    def predict(self, context, model_input: np.ndarray, params=None):
        try:
            images = scale_images(model_input)
        except InvalidImagesError as error:
            raise MlflowException(str(error), error_code=INVALID_PARAMETER_VALUE) from None
        inputs = torch.from_numpy(images).unsqueeze(1)  # already the model's input
        probabilities = torch.softmax(encode(self.model, inputs, device="cpu"), dim=1).numpy()
        return result_table(probabilities, self.class_names, self.source_classes)
