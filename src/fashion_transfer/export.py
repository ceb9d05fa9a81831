"""A trained network (or ensemble) as an ONNX graph that runs without PyTorch, and the check
that the graph computes what PyTorch computes.

The graph takes `images`, a (N, 28, 28) float32 batch in [0, 1] (N dynamic), and returns
`probabilities`, (N, classes); its metadata holds the class names and their Fashion-MNIST
labels, in output order (fashion_transfer.served_model reads them)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import numpy as np
import onnxruntime
import torch
from torch import nn

from fashion_transfer.fashion_mnist import IMAGE_SIZE
from fashion_transfer.model import ImageClassifier

logger = logging.getLogger(__name__)

OPSET = 20
# Parity: each probability within this of PyTorch's (float32 on the CPU), and the same class
# for every image whose two most likely classes are further apart than TIE.
TOLERANCE = 1e-5
TIE = 1e-4


class _Probabilities(nn.Module):
    """The classifier as served: (N, 28, 28) images in, class probabilities out."""

    def __init__(self, model: ImageClassifier):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(images.unsqueeze(1)), dim=1)


def to_onnx(model: ImageClassifier, class_names: list[str], source_classes: list[int]) -> bytes:
    """The serialised ONNX graph of `model` in eval mode (its mirror average included)."""
    import onnx

    wrapped = _Probabilities(model.cpu().eval()).eval()
    example = torch.zeros(2, IMAGE_SIZE, IMAGE_SIZE)
    program = torch.onnx.export(
        wrapped,
        (example,),
        dynamo=True,
        opset_version=OPSET,
        external_data=False,
        input_names=["images"],
        output_names=["probabilities"],
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        verbose=False,
    )
    proto = program.model_proto
    metadata = {
        "class_names": json.dumps(list(class_names)),
        "source_classes": json.dumps([int(label) for label in source_classes]),
    }
    onnx.helper.set_model_props(proto, metadata)
    return proto.SerializeToString()


@dataclass(frozen=True)
class Parity:
    images: int
    max_difference: float  # largest |ONNX - PyTorch| over every probability
    disagreements: int  # images off a tie whose class differs

    @property
    def holds(self) -> bool:
        return self.max_difference <= TOLERANCE and self.disagreements == 0

    def describe(self) -> str:
        return (
            f"on {self.images} validation images the ONNX graph's probabilities are within "
            f"{self.max_difference:.1e} of PyTorch's (allowed {TOLERANCE:.0e}) and "
            f"{self.disagreements} images off a tie change class"
        )


def check_parity(graph: bytes, model: ImageClassifier, images: np.ndarray) -> Parity:
    """Compare the graph (ONNX Runtime) with `model` (PyTorch, float32, CPU) on uint8 images."""
    batch = images.astype(np.float32) / np.float32(255.0)
    session = onnxruntime.InferenceSession(graph, providers=["CPUExecutionProvider"])
    served = np.concatenate([session.run(None, {"images": chunk})[0] for chunk in _chunks(batch)])
    wrapped = _Probabilities(model.cpu().eval()).eval()
    with torch.inference_mode():
        reference = torch.cat([wrapped(chunk) for chunk in torch.from_numpy(batch).split(2048)])
    reference = reference.numpy()
    top_two = np.sort(reference, axis=1)[:, -2:]
    clear = (top_two[:, 1] - top_two[:, 0]) > TIE
    disagreements = int((served.argmax(1) != reference.argmax(1))[clear].sum())
    return Parity(len(batch), float(np.abs(served - reference).max()), disagreements)


def _chunks(batch: np.ndarray, size: int = 1024) -> list[np.ndarray]:
    return [batch[start : start + size] for start in range(0, len(batch), size)]
