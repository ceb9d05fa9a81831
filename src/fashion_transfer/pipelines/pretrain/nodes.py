"""Train the CNN on the pretrain classes."""

from __future__ import annotations

import numpy as np
import torch

from fashion_transfer.model import FashionCNN
from fashion_transfer.outlier_sets import with_outliers
from fashion_transfer.params import ModelParams, RuntimeParams, TrainingParams
from fashion_transfer.training import EpochCallback, fit


def pretrain(
    pretrain_data: dict,
    model_params: dict,
    training_params: dict,
    runtime: dict,
    on_epoch_end: EpochCallback | None = None,
    outliers: np.ndarray | None = None,
) -> tuple[FashionCNN, list[dict]]:
    """The network of the preset's architecture trained on the pretrain classes (with the
    pictures of none of them in `outliers`, where the recipe has outlier exposure)."""
    architecture = ModelParams.model_validate(model_params).architecture
    training = TrainingParams.model_validate(training_params)
    settings = RuntimeParams.model_validate(runtime)
    torch.manual_seed(training.seed)  # the initial weights follow the seed too
    model = FashionCNN(
        architecture,
        num_classes=len(pretrain_data["class_names"]),
        mirror_average=training.mirror_average,
    )
    return fit(
        model,
        with_outliers(pretrain_data, outliers),
        training,
        settings.device,
        "pretrain",
        precision=settings.precision,
        on_epoch_end=on_epoch_end,
    )
