"""Train the catalogue model, of all ten classes, from the pretrained network; and, with
catalogue.scratch_baseline, the same network from scratch with the same budget. With
catalogue.outlier_exposure both train with pictures that are none of the ten classes too."""

from __future__ import annotations

import logging
import time

import numpy as np

from fashion_transfer.model import FashionCNN
from fashion_transfer.outlier_sets import training_outliers
from fashion_transfer.params import TransferParams
from fashion_transfer.pipelines.transfer.nodes import train_scratch_baseline, transfer

logger = logging.getLogger(__name__)


def make_catalogue_outliers(catalogue_data: dict, training_params: dict) -> np.ndarray:
    """The outlier pictures the catalogue trains with (outlier_sets.training_outliers, from
    its own training split and the recipe's seed); none without outlier exposure."""
    recipe = TransferParams.model_validate(training_params)
    exposure = recipe.outlier_exposure
    if exposure is None:
        return training_outliers(catalogue_data["train_images"], 0, 0, 0)
    started = time.perf_counter()
    outliers = training_outliers(
        catalogue_data["train_images"],
        exposure.photo_crops,
        exposure.shuffled,
        recipe.seed,
        edges=exposure.edges,
    )
    logger.info(
        "Outlier exposure: %d photo crops, %d shuffled images and %d edge maps made in %.1f s",
        exposure.photo_crops,
        exposure.shuffled,
        exposure.edges,
        time.perf_counter() - started,
    )
    return outliers


def train_catalogue(
    pretrain_model: FashionCNN,
    catalogue_data: dict,
    outliers: np.ndarray,
    training_params: dict,
    runtime: dict,
) -> tuple[FashionCNN, list[dict]]:
    """The transfer recipe of the catalogue (parameters_catalogue.yml) on all ten classes."""
    return transfer(
        pretrain_model, _with(catalogue_data, outliers), training_params, runtime, name="catalogue"
    )


def train_catalogue_scratch(
    pretrain_model: FashionCNN,
    catalogue_data: dict,
    outliers: np.ndarray,
    training_params: dict,
    runtime: dict,
) -> tuple[dict[str, FashionCNN], dict[str, list[dict]]]:
    """`catalogue_scratch`: what transfer buys for the whole catalogue. Empty when off."""
    models, histories = train_scratch_baseline(
        pretrain_model,
        _with(catalogue_data, outliers),
        training_params,
        runtime,
        name="catalogue_scratch",
    )
    return models, histories


def _with(catalogue_data: dict, outliers: np.ndarray) -> dict:
    return {**catalogue_data, "outlier_images": outliers} if len(outliers) else catalogue_data
