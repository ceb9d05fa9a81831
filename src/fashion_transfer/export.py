"""A trained network (or ensemble) as an ONNX graph that runs without PyTorch, and the check
that the graph computes what PyTorch computes.

The graph takes `images`, a (N, 28, 28) float32 batch in [0, 1] (N dynamic), and returns
`probabilities`, (N, classes); its metadata holds the class names and their Fashion-MNIST
labels, in output order (fashion_transfer.served_model reads them). A served classifier's
graph (model.ServedClassifier) returns calibrated probabilities and two more outputs,
`ood_score` (N,) and `recognised` (N,) booleans, the score at or under the threshold; its
metadata names the score and gives the threshold and the temperature."""

from __future__ import annotations

import io
import json
import logging
import warnings
from dataclasses import dataclass
from typing import get_args

import numpy as np
import onnxruntime
import torch
from torch import nn

from fashion_transfer.fashion_mnist import IMAGE_SIZE
from fashion_transfer.model import ImageClassifier, ServedClassifier
from fashion_transfer.params import OnnxExporter
from fashion_transfer.training import inference_batch_size

logger = logging.getLogger(__name__)

OPSET = 20
# How the graph is made: PyTorch's TorchScript-based exporter (tracing, about 0.1 s a model
# on a 2-core CPU) or its torch.export-based one (`dynamo`, 2.5-3 s a model and 7 s for the
# first in a process). For these models the two graphs give the same outputs to the bit at
# the same ONNX Runtime speed (docs/benchmarks.md). PyTorch deprecates the first: where it
# fails (or is gone), to_onnx says so and uses the second; registry.onnx_exporter picks.
EXPORTERS: tuple[str, ...] = get_args(OnnxExporter)
# Parity: each probability within this of PyTorch's (float32 on the CPU), and the same class
# for every image whose two most likely classes are further apart than TIE.
TOLERANCE = 1e-5
TIE = 1e-4
# The out-of-distribution score within this share of PyTorch's (float32 sums of hundreds of
# products), and the same decision for every image further than that from the threshold.
SCORE_TOLERANCE = 1e-4


class _Probabilities(nn.Module):
    """The classifier as served: (N, 28, 28) images in, class probabilities out."""

    def __init__(self, model: ImageClassifier):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(images.unsqueeze(1)), dim=1)


class _Recognised(nn.Module):
    """A served classifier: (N, 28, 28) images in; calibrated probabilities, the
    out-of-distribution score and whether it is at or under the threshold out."""

    def __init__(self, model: ServedClassifier):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor):
        logits, score = self.model.recognise(images.unsqueeze(1))
        return torch.softmax(logits, dim=1), score, score <= self.model.recogniser.threshold


def _as_served(model: ImageClassifier | ServedClassifier) -> nn.Module:
    model = model.cpu().eval()
    wrapped = _Recognised(model) if isinstance(model, ServedClassifier) else _Probabilities(model)
    return wrapped.eval()


def to_onnx(
    model: ImageClassifier | ServedClassifier,
    class_names: list[str],
    source_classes: list[int],
    exporter: str = "torchscript",
) -> bytes:
    """The serialised ONNX graph of `model` in eval mode (its mirror average included), made
    by `exporter` (one of EXPORTERS)."""
    import onnx

    if exporter not in EXPORTERS:
        raise ValueError(f"Unknown ONNX exporter {exporter!r}; choose one of {EXPORTERS}.")
    wrapped = _as_served(model)
    served = isinstance(model, ServedClassifier)
    example = torch.zeros(2, IMAGE_SIZE, IMAGE_SIZE)
    outputs = ["probabilities", *(["ood_score", "recognised"] if served else [])]
    proto = None
    if exporter == "torchscript":
        try:
            proto = _torchscript_graph(wrapped, example, outputs)
        except Exception as error:  # a PyTorch without it, or a model it cannot trace
            logger.warning(
                "PyTorch's TorchScript-based ONNX exporter failed (%s: %s); exporting with "
                "its torch.export-based one instead (registry.onnx_exporter: dynamo skips "
                "this attempt).",
                type(error).__name__,
                error,
            )
    if proto is None:
        proto = torch.onnx.export(
            wrapped,
            (example,),
            dynamo=True,
            opset_version=OPSET,
            external_data=False,
            input_names=["images"],
            output_names=outputs,
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            verbose=False,
        ).model_proto
    metadata = {
        "class_names": json.dumps(list(class_names)),
        "source_classes": json.dumps([int(label) for label in source_classes]),
    }
    if served:
        metadata |= {
            "ood_score": model.recogniser.score,
            "ood_threshold": repr(float(model.recogniser.threshold)),
            "temperature": repr(float(model.temperature)),
        }
    onnx.helper.set_model_props(proto, metadata)
    return proto.SerializeToString()


def _torchscript_graph(wrapped: nn.Module, example: torch.Tensor, outputs: list[str]):
    import onnx

    graph = io.BytesIO()
    with warnings.catch_warnings():
        # Its deprecation notice: registry.onnx_exporter names the replacement, and to_onnx
        # turns to it if this exporter is gone.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            wrapped,
            (example,),
            graph,
            dynamo=False,
            opset_version=OPSET,
            input_names=["images"],
            output_names=outputs,
            dynamic_axes={name: {0: "batch"} for name in ["images", *outputs]},
        )
    return onnx.load_from_string(graph.getvalue())


@dataclass(frozen=True)
class Parity:
    images: int
    max_difference: float  # largest |ONNX - PyTorch| over every probability
    disagreements: int  # images off a tie whose class differs
    score_difference: float = 0.0  # largest relative |ONNX - PyTorch| of the score
    recognition_disagreements: int = 0  # images off the threshold recognised differently

    @property
    def holds(self) -> bool:
        return (
            self.max_difference <= TOLERANCE
            and self.disagreements == 0
            and self.score_difference <= SCORE_TOLERANCE
            and self.recognition_disagreements == 0
        )

    def describe(self) -> str:
        return (
            f"on {self.images} validation images the ONNX graph's probabilities are within "
            f"{self.max_difference:.1e} of PyTorch's (allowed {TOLERANCE:.0e}) and "
            f"{self.disagreements} images off a tie change class; its out-of-distribution "
            f"scores are within {self.score_difference:.1e} (relative, allowed "
            f"{SCORE_TOLERANCE:.0e}) and {self.recognition_disagreements} images off the "
            "threshold change whether they are recognised"
        )


def check_parity(
    graph: bytes,
    model: ImageClassifier | ServedClassifier,
    images: np.ndarray,
    sample: int | None = None,
    seed: int = 0,
) -> Parity:
    """Compare the graph (ONNX Runtime) with `model` (PyTorch, float32, CPU) on uint8 images:
    all of them, or a `sample` of them drawn with `seed`."""
    if sample is not None and sample < len(images):
        chosen = np.random.default_rng(seed).choice(len(images), sample, replace=False)
        images = images[np.sort(chosen)]
    batch = images.astype(np.float32) / np.float32(255.0)
    # Without ONNX Runtime's threads spinning for more work once it has answered: they would
    # take the cores from PyTorch's side, which runs next (0.12 s against 0.14-0.24 s a model).
    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    served = [session.run(None, {"images": chunk}) for chunk in _chunks(batch)]
    wrapped = _as_served(model)
    with torch.inference_mode():
        size = inference_batch_size(torch.device("cpu"))
        reference = [wrapped(chunk) for chunk in torch.from_numpy(batch).split(size)]
    if isinstance(reference[0], torch.Tensor):
        reference = [(chunk,) for chunk in reference]
    probabilities = np.concatenate([outputs[0] for outputs in served])
    expected = torch.cat([outputs[0] for outputs in reference]).numpy()
    top_two = np.sort(expected, axis=1)[:, -2:]
    clear = (top_two[:, 1] - top_two[:, 0]) > TIE
    disagreements = int((probabilities.argmax(1) != expected.argmax(1))[clear].sum())
    parity = {
        "images": len(batch),
        "max_difference": float(np.abs(probabilities - expected).max()),
        "disagreements": disagreements,
    }
    if isinstance(model, ServedClassifier):
        scores = np.concatenate([outputs[1] for outputs in served])
        expected_scores = torch.cat([outputs[1] for outputs in reference]).numpy()
        scale = np.maximum(np.abs(expected_scores), 1.0)
        threshold = float(model.recogniser.threshold)
        off_threshold = np.abs(expected_scores - threshold) > SCORE_TOLERANCE * max(
            abs(threshold), 1
        )
        recognised = np.concatenate([outputs[2] for outputs in served])
        parity |= {
            "score_difference": float((np.abs(scores - expected_scores) / scale).max()),
            "recognition_disagreements": int(
                (recognised != (expected_scores <= threshold))[off_threshold].sum()
            ),
        }
    return Parity(**parity)


def _chunks(batch: np.ndarray, size: int = 1024) -> list[np.ndarray]:
    return [batch[start : start + size] for start in range(0, len(batch), size)]
