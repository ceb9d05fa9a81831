"""What a served model takes and gives back.

It takes a batch in either form, through any of MLflow's JSON request formats:

- pixels: (N, 28, 28) greyscale images (or one (28, 28) image), values 0-255 (uint8 scale) or
  0-1 (float scale): `{"inputs": [[[0, 0, ...], ...], ...]}`;
- pictures: encoded files (PNG, JPEG, WebP, GIF, BMP, TIFF) of any size and colour, base64 in
  JSON as MLflow's scoring server carries binary data, in a column named `image`:
  `{"dataframe_split": {"columns": ["image"], "data": [["iVBORw0..."], ...]}}`, or
  `{"inputs": {"image": ["iVBORw0...", ...]}}`; raw bytes in process.

It returns one row per image: `label` (the Fashion-MNIST label), `class_name`, `confidence`
(its probability, calibrated), `recognised` (whether the picture looks like any class the
model knows) and `ood_score` (the out-of-distribution score behind it; models registered
before they had one give neither), and the probability of every class the model knows. Input
that is neither raises InvalidImagesError, whose message says what is expected (the scoring
server answers it with HTTP 400)."""

from __future__ import annotations

import base64
import binascii

import numpy as np
import pandas as pd

from .pictures import SIZE, PictureError, open_picture, to_model_image

MAX_BATCH = 10_000  # images of pixels in one request
MAX_PICTURES = 1_000  # encoded pictures in one request
MAX_PICTURE_BYTES = 10 * 2**20  # one encoded picture
PICTURE_COLUMN = "image"
EXPECTED_PIXELS = (
    f"a batch of {SIZE}x{SIZE} greyscale images, shape (N, {SIZE}, {SIZE}) with "
    f"1 <= N <= {MAX_BATCH}, values 0-255 (uint8 scale) or 0-1 (float scale)"
)
EXPECTED_PICTURES = (
    f"1 to {MAX_PICTURES} encoded pictures (PNG, JPEG, WebP, GIF, BMP, TIFF; at most "
    f"{MAX_PICTURE_BYTES // 2**20} MB each)"
)
EXPECTED_INPUT = (
    f"{EXPECTED_PIXELS}; or {EXPECTED_PICTURES}, base64 in a column named {PICTURE_COLUMN!r}"
)


class InvalidImagesError(ValueError):
    """Input that is not a batch of images; the message says what is expected."""


def unit_scale(images: np.ndarray) -> np.ndarray:
    """uint8 (0-255) images as float32 in [0, 1], the models' input."""
    return np.asarray(images, dtype=np.float32) / np.float32(255.0)


def images_from_input(model_input) -> np.ndarray:
    """The (N, 28, 28) float32 batch in [0, 1] that `model_input` holds, in either form."""
    if isinstance(model_input, pd.DataFrame):
        if PICTURE_COLUMN in model_input.columns:
            return pictures_to_images(model_input[PICTURE_COLUMN].tolist())
        raise InvalidImagesError(
            f"Input is a table with columns {list(model_input.columns)[:5]}; expected "
            f"{EXPECTED_INPUT}."
        )
    if isinstance(model_input, dict):
        if set(model_input) == {PICTURE_COLUMN}:
            return pictures_to_images(list(np.ravel(model_input[PICTURE_COLUMN])))
        raise InvalidImagesError(
            f"Input has the fields {sorted(model_input)}; expected {EXPECTED_INPUT}."
        )
    batch = np.asarray(model_input)
    if batch.ndim == 1 and batch.dtype.kind in "OSU":  # a list of encoded pictures
        return pictures_to_images(list(batch))
    return scale_images(batch)


def scale_images(images) -> np.ndarray:
    """Validate a batch of pixels and return it as float32 in [0, 1]. A batch whose largest
    value is above 1 is read as 0-255, otherwise as 0-1."""
    try:
        batch = np.asarray(images, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise InvalidImagesError(
            f"Input is not numeric ({error}); expected {EXPECTED_INPUT}."
        ) from None
    if batch.ndim == 2 and batch.shape == (SIZE, SIZE):
        batch = batch[None]
    if batch.ndim != 3 or batch.shape[1:] != (SIZE, SIZE):
        raise InvalidImagesError(f"Input has shape {batch.shape}; expected {EXPECTED_INPUT}.")
    if not 1 <= len(batch) <= MAX_BATCH:
        raise InvalidImagesError(f"Input holds {len(batch)} images; expected {EXPECTED_PIXELS}.")
    if not np.isfinite(batch).all():
        raise InvalidImagesError(f"Input holds NaN or infinite values; expected {EXPECTED_PIXELS}.")
    low, high = float(batch.min()), float(batch.max())
    if low < 0 or high > 255:
        raise InvalidImagesError(
            f"Input values range from {low} to {high}; expected {EXPECTED_PIXELS}."
        )
    return batch / np.float32(255.0) if high > 1 else batch


def pictures_to_images(pictures: list, names: list[str] | None = None) -> np.ndarray:
    """Encoded pictures (bytes, or base64 text, a `data:` URL's included) as the float32 batch
    the model takes. The error names the first picture that cannot be read (by its name, else
    its index in the request) and why."""
    if not 1 <= len(pictures) <= MAX_PICTURES:
        raise InvalidImagesError(
            f"Input holds {len(pictures)} pictures; expected {EXPECTED_PICTURES}."
        )
    names = names or [f"picture {index}" for index in range(len(pictures))]
    images = np.empty((len(pictures), SIZE, SIZE), dtype=np.uint8)
    for index, (picture, name) in enumerate(zip(pictures, names, strict=True)):
        try:
            images[index] = to_model_image(open_picture(picture_bytes(picture)))
        except PictureError as error:
            raise InvalidImagesError(f"{name}: {error}. Expected {EXPECTED_PICTURES}.") from None
    return unit_scale(images)


def picture_bytes(picture) -> bytes:
    """The encoded picture's bytes: given as bytes, or as base64 text or a data: URL."""
    if isinstance(picture, bytes | bytearray | memoryview):
        data = bytes(picture)
    elif isinstance(picture, str):
        text = picture.split(",", 1)[1] if picture.startswith("data:") else picture
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise PictureError("not base64 text (encode the file's bytes as base64)") from None
    else:
        raise PictureError(f"a {type(picture).__name__}, not an encoded picture")
    if len(data) > MAX_PICTURE_BYTES:
        raise PictureError(
            f"{len(data) / 2**20:.1f} MB is over the {MAX_PICTURE_BYTES // 2**20} MB taken"
        )
    if not data:
        raise PictureError("empty")
    return data


def result_table(
    probabilities: np.ndarray,
    class_names: list[str],
    source_classes: list[int],
    recognition: tuple[np.ndarray, np.ndarray] | None = None,
) -> pd.DataFrame:
    """One row per image: label, class_name, confidence, and, for a model that recognises
    what is none of its classes (`recognition`: whether each image is recognised and its
    out-of-distribution score), `recognised` and `ood_score`; then a probability column per
    class. Built in one go (column by column, pandas takes several times longer for one
    image)."""
    best = probabilities.argmax(axis=1)
    columns = {
        "label": np.asarray(source_classes, dtype=np.int64)[best],
        "class_name": np.asarray(class_names, dtype=object)[best],
        "confidence": probabilities.max(axis=1).astype(np.float64),
    }
    if recognition is not None:
        recognised, scores = recognition
        columns["recognised"] = np.asarray(recognised, dtype=bool)
        columns["ood_score"] = np.asarray(scores, dtype=np.float64)
    columns |= dict(zip(class_names, probabilities.T.astype(np.float64), strict=True))
    return pd.DataFrame(columns)
