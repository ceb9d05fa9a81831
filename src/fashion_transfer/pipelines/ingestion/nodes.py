"""Check that the four IDX arrays form one consistent Fashion-MNIST dataset."""

from __future__ import annotations

import numpy as np

from fashion_transfer.errors import InputDataError
from fashion_transfer.fashion_mnist import NUM_CLASSES


def assemble_dataset(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
) -> dict[str, np.ndarray]:
    for split, images, labels in (
        ("train", train_images, train_labels),
        ("test", test_images, test_labels),
    ):
        if len(images) != len(labels):
            raise InputDataError(
                f"The {split} split has {len(images)} images but {len(labels)} labels: the "
                f"images and labels files do not belong together. Replace both {split} files "
                "with the matching pair from the same Fashion-MNIST release."
            )
        invalid = np.unique(labels[labels >= NUM_CLASSES])
        if invalid.size:
            raise InputDataError(
                f"The {split} labels file holds labels {invalid.tolist()}, but Fashion-MNIST "
                f"labels are 0-{NUM_CLASSES - 1}. Replace it with the official labels file."
            )
    return {
        "train_images": train_images,
        "train_labels": train_labels,
        "test_images": test_images,
        "test_labels": test_labels,
    }
