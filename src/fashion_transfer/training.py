"""One training loop for every stage, on in-memory tensors, keeping the best validation epoch."""

from __future__ import annotations

import copy
import logging
import time

import numpy as np
import torch
from torch import nn

from fashion_transfer.params import TrainingParams

logger = logging.getLogger(__name__)


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 28, 28) images to float (N, 1, 28, 28) in [0, 1], the model's input."""
    return torch.from_numpy(images).unsqueeze(1).float().div_(255.0)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def make_optimizer(params, config: TrainingParams) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=config.learning_rate,
            momentum=0.9,
            nesterov=True,
            weight_decay=config.weight_decay,
        )
    optimizer_class = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[config.optimizer]
    return optimizer_class(params, lr=config.learning_rate, weight_decay=config.weight_decay)


def fit_stage(
    model: nn.Module, stage_data: dict, config: TrainingParams, device: str, name: str
) -> tuple[nn.Module, list[dict]]:
    """Fit `model` on a stage's train split, selecting its epoch on the validation split."""
    return fit(
        model,
        stage_data["train_images"],
        stage_data["train_labels"],
        stage_data["val_images"],
        stage_data["val_labels"],
        config,
        device=device,
        name=name,
    )


def fit(
    model: nn.Module,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    val_images: np.ndarray,
    val_labels: np.ndarray,
    config: TrainingParams,
    device: str = "auto",
    name: str = "model",
) -> tuple[nn.Module, list[dict]]:
    """Train `model` for `config.epochs` epochs and return it with the weights of its best
    validation-accuracy epoch, and the per-epoch history."""
    torch.manual_seed(config.seed)
    shuffle = torch.Generator().manual_seed(config.seed)
    target = resolve_device(device)
    model.to(target)
    x_train, y_train = (
        images_to_tensor(train_images).to(target),
        torch.from_numpy(train_labels).long().to(target),
    )
    x_val, y_val = (
        images_to_tensor(val_images).to(target),
        torch.from_numpy(val_labels).long().to(target),
    )
    optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad], config)
    loss_fn = nn.CrossEntropyLoss()

    history: list[dict] = []
    best_accuracy, best_state = -1.0, None
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(len(x_train), generator=shuffle).to(target)
        loss_sum = torch.zeros((), device=target)
        correct = torch.zeros((), device=target, dtype=torch.long)
        for batch in order.split(config.batch_size):
            images, labels = x_train[batch], y_train[batch]
            logits = model(images)
            loss = loss_fn(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(batch)
            correct += (logits.argmax(1) == labels).sum()
        val_loss, val_accuracy = evaluate(model, x_val, y_val)
        record = {
            "epoch": epoch,
            "train_loss": loss_sum.item() / len(x_train),
            "train_accuracy": correct.item() / len(x_train),
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
            "seconds": time.perf_counter() - started,
        }
        history.append(record)
        logger.info(
            "%s epoch %d/%d: train loss %.4f acc %.4f | val loss %.4f acc %.4f | %.1f s",
            name,
            epoch,
            config.epochs,
            record["train_loss"],
            record["train_accuracy"],
            val_loss,
            val_accuracy,
            record["seconds"],
        )
        if val_accuracy > best_accuracy:
            best_accuracy, best_state = val_accuracy, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return model.cpu(), history


@torch.inference_mode()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of `model` on tensors already on its device."""
    model.eval()
    loss_sum, correct = 0.0, 0
    for batch_images, batch_labels in zip(images.split(2048), labels.split(2048), strict=True):
        logits = model(batch_images)
        loss_sum += nn.functional.cross_entropy(logits, batch_labels, reduction="sum").item()
        correct += (logits.argmax(1) == batch_labels).sum().item()
    return loss_sum / len(images), correct / len(images)


@torch.inference_mode()
def predict_proba(model: nn.Module, images: np.ndarray, device: str = "auto") -> np.ndarray:
    """Class probabilities (N, num_classes) for uint8 (N, 28, 28) images."""
    target = resolve_device(device)
    model.to(target).eval()
    x = images_to_tensor(images)
    probabilities = [torch.softmax(model(batch.to(target)), dim=1).cpu() for batch in x.split(2048)]
    model.cpu()
    return torch.cat(probabilities).numpy()
