""" "Not one of the ten": an out-of-distribution score for a classifier, and the threshold above
which a picture is not recognised as any class it knows.

The established scores (evaluation.recognition.score chooses; docs/experiments.md measures
them all, in its section on the out-of-distribution score):

- `msp`: one minus the largest (calibrated) class probability (Hendrycks and Gimpel, 2017);
- `max_logit`: minus the largest logit (Hendrycks et al., 2022);
- `energy`: minus the log-sum-exp of the logits (Liu et al., 2020);
- `mahalanobis`: the smallest Mahalanobis distance of the backbone's features (the last
  convolutional block's output, averaged over positions) to a class's mean, with one
  covariance shared by the classes, estimated on the training images with Ledoit-Wolf
  shrinkage (Lee et al., 2018);
- `relative_mahalanobis`: that distance less the distance to the mean of all training
  features (Ren et al., 2021), which discounts what every picture has in common;
- `energy_mahalanobis`: the energy and the Mahalanobis distance, each standardised on the
  validation images, added: the logits see what is unlike the classes' shapes (digits), the
  backbone's features what is unlike their textures and levels (noise, gradients, text).

A higher score is less like the training pictures. The threshold is the score's quantile that
accepts `accept` (95%) of the validation images; it travels inside the served model with the
class means and the precision matrix, so that every runtime draws the same line."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

SCORES = ("msp", "max_logit", "energy", "mahalanobis", "relative_mahalanobis", "energy_mahalanobis")
FEATURE_SCORES = ("mahalanobis", "relative_mahalanobis", "energy_mahalanobis")


class Recogniser(nn.Module):
    """Computes one score from a classifier's calibrated logits and penultimate features."""

    def __init__(self, score: str, num_classes: int, feature_size: int):
        super().__init__()
        if score not in SCORES:
            raise ValueError(f"Unknown score {score!r}; choose one of {SCORES}.")
        self.score = score
        size = feature_size if score in FEATURE_SCORES else 0
        self.register_buffer("class_means", torch.zeros(num_classes, size))
        self.register_buffer("precision", torch.zeros(size, size))
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("background_precision", torch.zeros(size, size))
        self.register_buffer("threshold", torch.tensor(float("inf")))
        # energy_mahalanobis: each term's mean and standard deviation on validation images
        self.register_buffer("standardise", torch.tensor([0.0, 1.0, 0.0, 1.0]))

    def config(self) -> dict:
        return {
            "score": self.score,
            "num_classes": int(self.class_means.shape[0]),
            "feature_size": int(self.class_means.shape[1]),
        }

    @property
    def needs_features(self) -> bool:
        """Whether the score reads the backbone's features, not the logits alone."""
        return self.score in FEATURE_SCORES

    def forward(self, logits: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        if self.score == "msp":
            return 1.0 - torch.softmax(logits, dim=1).amax(dim=1)
        if self.score == "max_logit":
            return -logits.amax(dim=1)
        energy = -torch.logsumexp(logits, dim=1)
        if self.score == "energy":
            return energy
        distance = _smallest_distance(features, self.class_means, self.precision)
        if self.score == "relative_mahalanobis":
            distance = distance - _smallest_distance(
                features, self.mean[None], self.background_precision
            )
        if self.score == "energy_mahalanobis":
            centre = self.standardise
            return (energy - centre[0]) / centre[1] + (distance - centre[2]) / centre[3]
        return distance

    def fit(self, train_features: np.ndarray, train_labels: np.ndarray) -> Recogniser:
        """Class means and the shared precision (Ledoit-Wolf) of the training features; for
        the relative score, the mean and precision of all of them too."""
        if self.score not in FEATURE_SCORES:
            return self
        from sklearn.covariance import LedoitWolf

        features = np.asarray(train_features, np.float64)
        classes = range(self.class_means.shape[0])
        means = np.stack([features[train_labels == c].mean(axis=0) for c in classes])
        within = LedoitWolf().fit(features - means[train_labels])
        overall = LedoitWolf().fit(features)
        self.class_means.copy_(torch.from_numpy(means))
        self.precision.copy_(torch.from_numpy(within.precision_))
        self.mean.copy_(torch.from_numpy(overall.location_))
        self.background_precision.copy_(torch.from_numpy(overall.precision_))
        return self

    def fit_standardisation(self, logits: torch.Tensor, features: torch.Tensor) -> None:
        """For energy_mahalanobis: each term's mean and deviation on validation images (the
        calibrated logits and the features), so that neither outweighs the other."""
        if self.score != "energy_mahalanobis":
            return
        energy = -torch.logsumexp(logits, dim=1)
        distance = _smallest_distance(features, self.class_means, self.precision)
        terms = [energy.mean(), energy.std(), distance.mean(), distance.std()]
        self.standardise.copy_(torch.stack(terms).double().to(self.standardise.dtype))

    def set_threshold(self, validation_scores: np.ndarray, accept: float) -> float:
        """The score under which `accept` of the validation images fall."""
        threshold = float(np.quantile(validation_scores, accept))
        self.threshold.fill_(threshold)
        return threshold


def _smallest_distance(
    features: torch.Tensor, means: torch.Tensor, precision: torch.Tensor
) -> torch.Tensor:
    """min over the means of (f - mean)^T precision (f - mean), for each row f (from the
    differences themselves: expanding the product loses digits in float32)."""
    difference = features[:, None, :] - means[None, :, :]  # (N, C, D)
    return ((difference @ precision) * difference).sum(dim=2).amin(dim=1)
