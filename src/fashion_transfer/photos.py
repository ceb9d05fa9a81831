"""The photo test set: official test images rendered as a phone photographs an item, so that
every model is also scored on what real people send (the evaluation pipeline).

Each Fashion-MNIST image is the negative of a product photo on white: a pixel's value is how
much darker than the background the product is there. A photo is rendered from it the other
way round: the item, scaled to a random share of the frame, rotated, seen in perspective and
placed off-centre, darkens (or, on a dark background, lightens) a background of random
brightness, colour cast, gradient and texture; the item has a colour of its own; then the
camera's blur and noise, and JPEG. Every variation's strength is a parameter
(`PhotoParams`), every draw comes from one seeded generator: the same parameters give the same
photos, byte for byte.

`add_training_photos` renders training images the same way, for the stages that learn what the
served conversion leaves of a photo (a recipe's `training_photos`)."""

from __future__ import annotations

import io
import logging
import time

import cv2
import numpy as np
from PIL import Image

from fashion_transfer.params import PhotoParams
from fashion_transfer.served_model.pictures import open_picture, to_model_image

logger = logging.getLogger(__name__)


def render_photos(images: np.ndarray, params: dict | PhotoParams) -> list[bytes]:
    """JPEG photos of uint8 (N, 28, 28) images, one each, in order."""
    settings = PhotoParams.model_validate(params)
    rng = np.random.default_rng(settings.seed)
    return [render_photo(image, settings, rng) for image in images]


def add_training_photos(stage_data: dict, training_params: dict) -> dict:
    """The stage's data with its recipe's `training_photos` more training images: training
    images drawn with the recipe's seed, each rendered as a photo (the photo test set's
    variations at the renderer's default strengths, `PhotoParams`) and converted as the served
    model converts a picture, with their labels. The stage's data unchanged without. A node of
    each training pipeline; the photo test set is rendered from test images, which training
    never sees, and its draws come from the evaluation's seed, these from the recipe's."""
    count = training_params.get("training_photos")  # checked with the run's parameters
    if not count:
        return stage_data
    started = time.perf_counter()
    rng = np.random.default_rng((training_params["seed"], 3))
    train_images, train_labels = stage_data["train_images"], stage_data["train_labels"]
    chosen = rng.choice(len(train_images), count, replace=count > len(train_images))
    # The renderer's own seed drawn from the recipe's stream: never the photo test set's
    # (whose seed is a small number), so no training photo repeats a test photo's draws.
    settings = PhotoParams(per_class=None, seed=int(rng.integers(2**32, 2**62)))
    photos = render_photos(train_images[chosen], settings)
    converted = np.stack([to_model_image(open_picture(photo)) for photo in photos])
    logger.info(
        "Training photos: %d training images rendered and converted in %.1f s",
        count,
        time.perf_counter() - started,
    )
    return {
        **stage_data,
        "train_images": np.concatenate([train_images, converted]),
        "train_labels": np.concatenate([train_labels, train_labels[chosen]]),
    }


def render_photo(image: np.ndarray, params: PhotoParams, rng: np.random.Generator) -> bytes:
    """One photo of one Fashion-MNIST image (uint8, 28x28), as JPEG bytes."""
    long_side = params.frame_long_side
    aspect = rng.uniform(*params.frame_aspect)
    width, height = (long_side, round(long_side / aspect))
    if rng.random() < 0.5:  # portrait or landscape
        width, height = height, width
    darkness = _item_layer(image, params, rng, min(width, height))
    layer_height, layer_width = darkness.shape
    top = int(rng.integers(0, height - layer_height + 1))
    left = int(rng.integers(0, width - layer_width + 1))
    amount = np.zeros((height, width), np.float32)
    amount[top : top + layer_height, left : left + layer_width] = darkness

    background = _background(width, height, params, rng)
    dark_background = rng.random() < params.dark_background_probability
    if dark_background:  # a light item on a dark cloth or table
        background *= rng.uniform(0.08, 0.35)
        item = rng.uniform(0.75, 1.0, 3).astype(np.float32)
    else:  # a dark item on a light table or wall: any colour, darker than the background
        item = (rng.uniform(0.0, params.item_colour, 3) * background.mean()).astype(np.float32)
    photo = background + (item - background) * amount[..., None]
    photo += params.noise * rng.standard_normal(photo.shape, np.float32)
    if params.blur:
        photo = cv2.GaussianBlur(photo, (0, 0), max(rng.uniform(0.0, params.blur), 1e-3))
    picture = Image.fromarray(np.clip(photo * 255.0 + 0.5, 0, 255).astype(np.uint8), "RGB")
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=int(rng.integers(*params.jpeg_quality, endpoint=True)))
    return buffer.getvalue()


def _item_layer(
    image: np.ndarray, params: PhotoParams, rng: np.random.Generator, frame_side: int
) -> np.ndarray:
    """How strongly the item covers each pixel (0-1), scaled, rotated and in perspective."""
    side = max(8, round(frame_side * rng.uniform(*params.item_size)))
    layer = Image.fromarray(image).resize((side, side), Image.Resampling.BICUBIC)
    if params.perspective:
        layer = layer.transform(
            layer.size,
            Image.Transform.PERSPECTIVE,
            _perspective_coefficients(side, params.perspective, rng),
            Image.Resampling.BICUBIC,
        )
    if params.rotation:
        angle = rng.uniform(-params.rotation, params.rotation)
        layer = layer.rotate(angle, Image.Resampling.BICUBIC, expand=True)
    # Rotation grows the layer; the frame holds it whole (the item stays in the picture).
    layer.thumbnail((frame_side, frame_side), Image.Resampling.BICUBIC)
    return np.asarray(layer, np.float32) / 255.0


def _perspective_coefficients(side: int, strength: float, rng: np.random.Generator):
    """Pillow's PERSPECTIVE coefficients for a camera a little off the item's axis: each
    corner moved by up to `strength` of the side, the homography solved from the four pairs."""
    corners = np.array([[0, 0], [side, 0], [side, side], [0, side]], np.float64)
    moved = corners + rng.uniform(-strength, strength, corners.shape) * side
    # Output pixel (x, y) samples the input at ((a x + b y + c) / (g x + h y + 1), ...): solve
    # for the eight coefficients that send each moved corner back to its corner.
    rows, targets = [], []
    for (x, y), (u, v) in zip(moved, corners, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        targets += [u, v]
    return np.linalg.solve(np.array(rows), np.array(targets)).tolist()


def _background(width: int, height: int, params: PhotoParams, rng: np.random.Generator):
    """(height, width, 3) float32 in 0-1: a brightness, a colour cast, a linear gradient of
    light across the frame and a blotchy texture."""
    brightness = rng.uniform(*params.background_brightness)
    tint = 1.0 + rng.uniform(-params.tint, params.tint, 3)
    angle = rng.uniform(0, 2 * np.pi)
    xs = (np.arange(width, dtype=np.float32) / width - 0.5) * np.cos(angle)
    ys = (np.arange(height, dtype=np.float32) / height - 0.5) * np.sin(angle)
    light = 1.0 + np.float32(rng.uniform(0, params.gradient)) * (ys[:, None] + xs[None, :])
    if params.texture:
        blotches = rng.normal(0.0, 1.0, (6, 8)).astype(np.float32)
        texture = np.asarray(
            Image.fromarray(blotches, "F").resize((width, height), Image.Resampling.BICUBIC)
        )
        light = light + np.float32(params.texture) * texture
    background = light[..., None] * (brightness * tint).astype(np.float32)
    return np.clip(background, 0.0, 1.0, out=background)
