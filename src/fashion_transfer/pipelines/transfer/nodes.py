"""Transfer the frozen pretrained features to new classes, beside a from-scratch baseline."""

from __future__ import annotations

import copy

from fashion_transfer.model import FashionCNN
from fashion_transfer.params import RuntimeParams, TransferParams
from fashion_transfer.training import fit_stage


def transfer(
    pretrain_model: FashionCNN, transfer_data: dict, training_params: dict, runtime: dict
) -> tuple[FashionCNN, list[dict]]:
    """Keep the pretrained convolutional layers frozen and train a new dense head."""
    model = copy.deepcopy(pretrain_model)
    model.new_head(len(transfer_data["class_names"]))
    model.freeze_features()
    return fit_stage(
        model,
        transfer_data,
        TransferParams.model_validate(training_params),
        RuntimeParams.model_validate(runtime).device,
        name="transfer",
    )


def train_scratch_baseline(
    pretrain_model: FashionCNN, transfer_data: dict, training_params: dict, runtime: dict
) -> tuple[dict[str, FashionCNN], dict[str, list[dict]]]:
    """The transfer model's architecture and budget, trained from random weights on the
    transfer classes: the baseline that shows what transfer buys. Empty when switched off."""
    training = TransferParams.model_validate(training_params)
    if not training.scratch_baseline:
        return {}, {}
    model = FashionCNN(pretrain_model.architecture, len(transfer_data["class_names"]))
    model, history = fit_stage(
        model,
        transfer_data,
        training,
        RuntimeParams.model_validate(runtime).device,
        name="scratch",
    )
    return {"scratch": model}, {"scratch": history}
