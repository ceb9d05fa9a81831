"""Train the catalogue model, of all ten classes, from the pretrained network; and, with
catalogue.scratch_baseline, the same network from scratch with the same budget. With
catalogue.outlier_exposure both train with pictures that are none of the ten classes too
(outlier_sets.make_outliers makes them)."""

from __future__ import annotations

import numpy as np

from fashion_transfer.model import FashionCNN
from fashion_transfer.pipelines.transfer.nodes import train_scratch_baseline, transfer


def train_catalogue(
    pretrain_model: FashionCNN,
    catalogue_data: dict,
    outliers: np.ndarray,
    training_params: dict,
    runtime: dict,
) -> tuple[FashionCNN, list[dict]]:
    """The transfer recipe of the catalogue (parameters_catalogue.yml) on all ten classes."""
    return transfer(
        pretrain_model,
        catalogue_data,
        training_params,
        runtime,
        name="catalogue",
        outliers=outliers,
    )


def train_catalogue_scratch(
    pretrain_model: FashionCNN,
    catalogue_data: dict,
    outliers: np.ndarray,
    training_params: dict,
    runtime: dict,
) -> tuple[dict[str, FashionCNN], dict[str, list[dict]]]:
    """`catalogue_scratch`: what transfer buys for the whole catalogue. Empty when off."""
    return train_scratch_baseline(
        pretrain_model,
        catalogue_data,
        training_params,
        runtime,
        name="catalogue_scratch",
        outliers=outliers,
    )
