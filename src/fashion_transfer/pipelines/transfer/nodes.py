"""Transfer the frozen pretrained features to new classes, beside a from-scratch baseline."""

from __future__ import annotations

import copy

import numpy as np
import torch

from fashion_transfer.model import FashionCNN
from fashion_transfer.outlier_sets import with_outliers
from fashion_transfer.params import RuntimeParams, TrainingParams, TransferParams
from fashion_transfer.training import EpochCallback, encode, fit


def transfer(
    pretrain_model: FashionCNN,
    transfer_data: dict,
    training_params: dict,
    runtime: dict,
    feature_cache: dict | None = None,
    on_epoch_end: EpochCallback | None = None,
    name: str = "transfer",
    outliers: np.ndarray | None = None,
) -> tuple[FashionCNN, list[dict]]:
    """Keep the pretrained convolutional layers frozen and train a new dense head; then,
    if asked, fine-tune the last convolutional blocks too at a lower learning rate, keeping
    the fine-tuned weights only if they beat the frozen-features model on validation.

    `feature_cache` (a dict the caller keeps) holds the frozen blocks' output between calls
    with the same pretrained model and data, as tuning makes them; `on_epoch_end` goes to
    `fit`, with the epochs of both phases numbered in one sequence. `outliers`: the pictures
    of none of the classes that the recipe's outlier exposure trains with."""
    training = TransferParams.model_validate(training_params)
    transfer_data = with_outliers(transfer_data, outliers)
    settings = RuntimeParams.model_validate(runtime)
    model = copy.deepcopy(pretrain_model)
    model.mirror_average = training.mirror_average
    torch.manual_seed(training.seed)  # the new head's initial weights follow the seed too
    model.new_head(len(transfer_data["class_names"]))
    model.freeze_features()
    phase = {"feature_cache": feature_cache, "on_epoch_end": on_epoch_end}
    history = _fit_unfrozen(model, transfer_data, training, settings, name, **phase)
    if training.fine_tune_epochs:
        model.freeze_features(trainable_blocks=training.fine_tune_blocks)
        fine_tune = training.model_copy(
            update={
                "epochs": training.fine_tune_epochs,
                "learning_rate": training.fine_tune_learning_rate,
            }
        )
        history += _fit_unfrozen(
            model,
            transfer_data,
            fine_tune,
            settings,
            f"{name} fine-tune",
            first_epoch=len(history) + 1,
            accuracy_to_beat=max(row["val_accuracy"] for row in history),
            **phase,
        )
    return model, history


def frozen_features(
    pretrain_model: FashionCNN, stage_data: dict, runtime: dict, fine_tune_blocks=(1,)
) -> dict:
    """The frozen blocks' output for the training and validation images, for head training
    (all blocks frozen) and for fine-tuning each of `fine_tune_blocks` last blocks: the
    `feature_cache` that `transfer` takes, computed up front, so that subsets of the images
    can take their rows."""
    settings = RuntimeParams.model_validate(runtime)
    model = copy.deepcopy(pretrain_model)
    cache = {}
    for trainable_blocks in sorted({0, *fine_tune_blocks}):
        model.freeze_features(trainable_blocks)
        cache[len(model.frozen_blocks)] = _frozen_output(model, stage_data, settings)
    return cache


def _frozen_output(model: FashionCNN, stage_data: dict, settings: RuntimeParams) -> dict:
    """What the model's frozen blocks make of the training and validation images (and of the
    outlier pictures, where the stage trains with them)."""
    frozen, _ = model.split_frozen()
    keys = ("train_images", "val_images", "outlier_images")
    return {
        key: encode(frozen, stage_data[key], settings.device, settings.precision)
        for key in keys
        if key in stage_data
    }


def _fit_unfrozen(
    model: FashionCNN,
    stage_data: dict,
    training: TrainingParams,
    settings: RuntimeParams,
    name: str,
    feature_cache: dict | None = None,
    **fit_args,
) -> list[dict]:
    """Train the layers of `model` that are not frozen. Without augmentation the frozen
    blocks map each image to the same tensor every epoch, so they run once, here (or not at
    all, when `feature_cache` has them already), and training goes through the trainable
    layers only: same result, a fraction of the work (validation then scores the original
    images only, without the mirror average)."""
    if training.augmentation:  # augmented images change every epoch: no cache
        trainable, data = model, stage_data
    else:
        _, trainable = model.split_frozen()
        key = len(model.frozen_blocks)
        cache = {} if feature_cache is None else feature_cache
        if key not in cache:
            cache[key] = _frozen_output(model, stage_data, settings)
        data = {**stage_data, **cache[key]}
        if "outlier_images" in stage_data and "outlier_images" not in cache[key]:
            # A cache made without outliers (as the studies make theirs): theirs too, now.
            frozen, _ = model.split_frozen()
            data["outlier_images"] = encode(
                frozen, stage_data["outlier_images"], settings.device, settings.precision
            )
    _, history = fit(
        trainable, data, training, settings.device, name, precision=settings.precision, **fit_args
    )
    return history


def train_scratch_baseline(
    pretrain_model: FashionCNN,
    transfer_data: dict,
    training_params: dict,
    runtime: dict,
    name: str = "scratch",
    outliers: np.ndarray | None = None,
) -> tuple[dict[str, FashionCNN], dict[str, list[dict]]]:
    """The transfer model's architecture and budget (head and fine-tune epochs together),
    trained from random weights on the transfer classes (with the same outlier pictures,
    where the recipe has outlier exposure): the baseline that shows what transfer buys.
    Empty when switched off."""
    training = TransferParams.model_validate(training_params)
    if not training.scratch_baseline:
        return {}, {}
    settings = RuntimeParams.model_validate(runtime)
    budget = training.model_copy(update={"epochs": training.epochs + training.fine_tune_epochs})
    torch.manual_seed(training.seed)
    model = FashionCNN(
        pretrain_model.architecture,
        len(transfer_data["class_names"]),
        mirror_average=training.mirror_average,
    )
    data = with_outliers(transfer_data, outliers)
    model, history = fit(model, data, budget, settings.device, name, precision=settings.precision)
    return {name: model}, {name: history}
