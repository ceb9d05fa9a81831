"""The registered model as people use it: images in, class names and probabilities out.

`FashionClassifier` is an MLflow pyfunc model wrapping a FashionCNN or ensemble checkpoint. It
accepts a batch of 28x28 greyscale images, either uint8-scaled (0-255) or float-scaled (0-1),
and returns one row per image: the Fashion-MNIST label, the class name, its probability
(`confidence`) and the probability of every class the model knows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageOps

from fashion_transfer.model import IMAGE_SIZE, ImageClassifier

MAX_BATCH = 10_000
EXPECTED_INPUT = (
    f"a batch of {IMAGE_SIZE}x{IMAGE_SIZE} greyscale images, shape (N, {IMAGE_SIZE}, "
    f"{IMAGE_SIZE}) with 1 <= N <= {MAX_BATCH}, values 0-255 (uint8 scale) or 0-1 (float scale)"
)


class InvalidImagesError(ValueError):
    """Input that is not a batch of greyscale images; the message says what is expected."""


def scale_images(images) -> np.ndarray:
    """Validate a batch of images and return it as float32 in [0, 1]. A batch whose largest
    value is above 1 is read as 0-255, otherwise as 0-1."""
    try:
        batch = np.asarray(images, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise InvalidImagesError(
            f"Input is not numeric ({error}); expected {EXPECTED_INPUT}."
        ) from None
    if batch.ndim == 2 and batch.shape == (IMAGE_SIZE, IMAGE_SIZE):
        batch = batch[None]
    if batch.ndim != 3 or batch.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise InvalidImagesError(f"Input has shape {batch.shape}; expected {EXPECTED_INPUT}.")
    if not 1 <= len(batch) <= MAX_BATCH:
        raise InvalidImagesError(f"Input holds {len(batch)} images; expected {EXPECTED_INPUT}.")
    if not np.isfinite(batch).all():
        raise InvalidImagesError(f"Input holds NaN or infinite values; expected {EXPECTED_INPUT}.")
    low, high = float(batch.min()), float(batch.max())
    if low < 0 or high > 255:
        raise InvalidImagesError(
            f"Input values range from {low} to {high}; expected {EXPECTED_INPUT}."
        )
    return batch / 255.0 if high > 1 else batch


def classify(
    model: ImageClassifier, images, class_names: list[str], source_classes: list[int]
) -> pd.DataFrame:
    """One row per image: label, class_name, confidence and a probability column per class."""
    batch = torch.from_numpy(scale_images(images)).unsqueeze(1)
    model.eval()
    with torch.inference_mode():
        probabilities = torch.cat(
            [torch.softmax(model(chunk), dim=1) for chunk in batch.split(2048)]
        ).numpy()
    best = probabilities.argmax(axis=1)
    table = pd.DataFrame(
        {
            "label": np.asarray(source_classes)[best],
            "class_name": np.asarray(class_names)[best],
            "confidence": probabilities.max(axis=1).astype(np.float64),
        }
    )
    for index, name in enumerate(class_names):
        table[name] = probabilities[:, index].astype(np.float64)
    return table


def to_model_image(image: Image.Image) -> np.ndarray:
    """Any picture as Fashion-MNIST looks: greyscale, the item light on a dark background,
    padded to a square and resized to 28x28 (uint8)."""
    grey = ImageOps.exif_transpose(image).convert("L")
    pixels = np.asarray(grey)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    if border.mean() > 127:  # a photo on a light background: Fashion-MNIST is dark behind
        grey = ImageOps.invert(grey)
    side = max(grey.size)
    square = Image.new("L", (side, side), 0)
    square.paste(grey, ((side - grey.width) // 2, (side - grey.height) // 2))
    return np.asarray(square.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS))
