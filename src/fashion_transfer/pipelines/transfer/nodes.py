"""Transfer the frozen pretrained features to new classes, beside a from-scratch baseline."""

from __future__ import annotations

import copy

import torch

from fashion_transfer.model import FashionCNN
from fashion_transfer.params import RuntimeParams, TransferParams
from fashion_transfer.training import fit


def transfer(
    pretrain_model: FashionCNN, transfer_data: dict, training_params: dict, runtime: dict
) -> tuple[FashionCNN, list[dict]]:
    """Keep the pretrained convolutional layers frozen and train a new dense head; then,
    if asked, fine-tune the last convolutional block too at a lower learning rate, keeping
    the fine-tuned weights only if they beat the frozen-features model on validation."""
    training = TransferParams.model_validate(training_params)
    device = RuntimeParams.model_validate(runtime).device
    model = copy.deepcopy(pretrain_model)
    torch.manual_seed(training.seed)  # the new head's initial weights follow the seed too
    model.new_head(len(transfer_data["class_names"]))
    model.freeze_features()
    model, history = fit(model, transfer_data, training, device, name="transfer")
    if training.fine_tune_epochs:
        model.freeze_features(trainable_blocks=1)
        fine_tune = training.model_copy(
            update={
                "epochs": training.fine_tune_epochs,
                "learning_rate": training.fine_tune_learning_rate,
            }
        )
        model, fine_tune_history = fit(
            model,
            transfer_data,
            fine_tune,
            device,
            name="transfer fine-tune",
            first_epoch=len(history) + 1,
            accuracy_to_beat=max(row["val_accuracy"] for row in history),
        )
        history += fine_tune_history
    return model, history


def train_scratch_baseline(
    pretrain_model: FashionCNN, transfer_data: dict, training_params: dict, runtime: dict
) -> tuple[dict[str, FashionCNN], dict[str, list[dict]]]:
    """The transfer model's architecture and budget (head and fine-tune epochs together),
    trained from random weights on the transfer classes: the baseline that shows what
    transfer buys. Empty when switched off."""
    training = TransferParams.model_validate(training_params)
    if not training.scratch_baseline:
        return {}, {}
    budget = training.model_copy(update={"epochs": training.epochs + training.fine_tune_epochs})
    torch.manual_seed(training.seed)
    model = FashionCNN(pretrain_model.architecture, len(transfer_data["class_names"]))
    model, history = fit(
        model,
        transfer_data,
        budget,
        RuntimeParams.model_validate(runtime).device,
        name="scratch",
    )
    return {"scratch": model}, {"scratch": history}
