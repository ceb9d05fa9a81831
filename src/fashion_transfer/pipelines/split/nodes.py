"""Per-stage datasets: select the stage's classes, re-index labels, split train/validation."""

from __future__ import annotations

import numpy as np

from fashion_transfer.fashion_mnist import CLASS_NAMES
from fashion_transfer.params import SplitParams


def split_stages(fashion_mnist: dict[str, np.ndarray], params: dict) -> tuple[dict, dict]:
    """The pretrain and transfer stage datasets. The official test split stays the test set;
    validation is a stratified, seeded fraction of the training split."""
    settings = SplitParams.model_validate(params)
    return (
        _stage_data(fashion_mnist, settings.pretrain_classes, settings),
        _stage_data(fashion_mnist, settings.transfer_classes, settings),
    )


def _stage_data(data: dict[str, np.ndarray], classes: list[int], settings: SplitParams) -> dict:
    from sklearn.model_selection import train_test_split  # imported when used: see evaluation

    train_images, train_labels = _select(data["train_images"], data["train_labels"], classes)
    test_images, test_labels = _select(data["test_images"], data["test_labels"], classes)
    if settings.max_examples_per_stage:
        train_images, train_labels = _subsample(
            train_images, train_labels, settings.max_examples_per_stage, settings.seed
        )
        test_images, test_labels = _subsample(
            test_images, test_labels, settings.max_examples_per_stage, settings.seed
        )
    train_images, val_images, train_labels, val_labels = train_test_split(
        train_images,
        train_labels,
        test_size=settings.validation_fraction,
        stratify=train_labels,
        random_state=settings.seed,
    )
    return {
        "train_images": train_images,
        "train_labels": train_labels,
        "val_images": val_images,
        "val_labels": val_labels,
        "test_images": test_images,
        "test_labels": test_labels,
        "source_classes": list(classes),
        "class_names": [CLASS_NAMES[c] for c in classes],
    }


def _select(images: np.ndarray, labels: np.ndarray, classes: list[int]):
    """Rows of the given classes, with labels re-indexed to 0..len(classes)-1 in class order."""
    mask = np.isin(labels, classes)
    stage_label = np.full(len(CLASS_NAMES), -1, dtype=np.int64)
    stage_label[classes] = np.arange(len(classes))
    return images[mask], stage_label[labels[mask]]


def _subsample(images: np.ndarray, labels: np.ndarray, limit: int, seed: int):
    from sklearn.model_selection import train_test_split

    if len(labels) <= limit:
        return images, labels
    images, _, labels, _ = train_test_split(
        images, labels, train_size=limit, stratify=labels, random_state=seed
    )
    return images, labels


def combine_stages(pretrain_data: dict, transfer_data: dict) -> dict:
    """The whole catalogue: both stages' training, validation and test splits together, the
    labels re-indexed to the classes of both in Fashion-MNIST's order (0-9 by default). Its
    validation images are the stages' own, so a model of all ten classes is chosen on images
    that no stage trained on."""
    stages = (pretrain_data, transfer_data)
    classes = sorted(pretrain_data["source_classes"] + transfer_data["source_classes"])
    combined: dict = {
        "source_classes": classes,
        "class_names": [CLASS_NAMES[c] for c in classes],
    }
    for split in ("train", "val", "test"):
        combined[f"{split}_images"] = np.concatenate([d[f"{split}_images"] for d in stages])
        combined[f"{split}_labels"] = np.concatenate(
            [_relabelled(d, d[f"{split}_labels"], classes) for d in stages]
        )
    return combined


def _relabelled(stage_data: dict, labels: np.ndarray, classes: list[int]) -> np.ndarray:
    """A stage's labels as positions in `classes` (Fashion-MNIST labels)."""
    return np.array([classes.index(c) for c in stage_data["source_classes"]])[labels]
