"""A confidence that means what it says: temperature scaling (Guo et al., 2017) fitted on a
model's validation split after training, and how to measure it, the expected calibration
error (ECE) and a reliability diagram's bins.

Label smoothing leaves the networks under-confident on what they know (their probabilities
too soft); one temperature per model, dividing its logits, fixes most of it without changing
any answer (the most likely class stays the most likely)."""

from __future__ import annotations

import numpy as np
import torch

BINS = 15  # equal-width confidence bins of the ECE and the reliability diagram


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T > 0 that minimises the cross-entropy of softmax(logits / T) on
    `labels`: a one-parameter fit (L-BFGS on log T), in float64."""
    scores = torch.from_numpy(np.asarray(logits, np.float64))
    targets = torch.from_numpy(np.asarray(labels)).long()
    log_temperature = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [log_temperature], lr=0.5, max_iter=100, line_search_fn="strong_wolfe"
    )

    def loss() -> torch.Tensor:
        optimizer.zero_grad()
        value = torch.nn.functional.cross_entropy(scores / log_temperature.exp(), targets)
        value.backward()
        return value

    optimizer.step(loss)
    return float(log_temperature.detach().exp().clamp(0.05, 20.0))


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> dict:
    """Per equal-width bin of the top probability: how many images, their mean confidence
    and their accuracy; and the expected calibration error, the count-weighted mean gap
    between the two."""
    confidence = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == labels
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(which, confidence, bins) / counts
        accuracy = np.bincount(which, right.astype(float), bins) / counts
    gaps = np.nan_to_num(np.abs(accuracy - mean_confidence))
    return {
        "counts": counts.tolist(),
        "confidence": np.nan_to_num(mean_confidence).tolist(),
        "accuracy": np.nan_to_num(accuracy).tolist(),
        "ece": float((counts * gaps).sum() / max(len(labels), 1)),
    }


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return reliability(probabilities, labels)["ece"]
