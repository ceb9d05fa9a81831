"""Pictures that are none of the ten classes, built offline, to measure whether a model can say
"this does not look like anything I know" (the evaluation pipeline):

- `digits`: scikit-learn's bundled handwritten digits (1,797 of 8x8 pixels), each scaled to
  20x20 and centred on a black 28x28 square, light on dark as Fashion-MNIST;
- `synthetic`: non-garments drawn with Pillow and NumPy: blank pictures of one level, noise
  (fine and blotchy), gradients, shapes (circles, boxes, triangles, lines, outlined or filled)
  and text, each kind in equal numbers, seeded.

Both are in the models' own form (28x28 uint8, the item light on black), as a picture is
after the served conversion."""

from __future__ import annotations

import string

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SIZE = 28
SYNTHETIC_KINDS = ("blank", "noise", "blotches", "gradient", "shape", "text")


def digits() -> np.ndarray:
    """scikit-learn's handwritten digits as (1797, 28, 28) uint8."""
    from sklearn.datasets import load_digits

    eights = load_digits().images  # 0-16, 8x8
    images = np.zeros((len(eights), SIZE, SIZE), np.uint8)
    for index, digit in enumerate(eights):
        picture = Image.fromarray(np.rint(digit * (255 / 16)).astype(np.uint8))
        images[index, 4:24, 4:24] = np.asarray(picture.resize((20, 20), Image.Resampling.BILINEAR))
    return images


def synthetic(per_kind: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`per_kind` pictures of each of SYNTHETIC_KINDS as (N, 28, 28) uint8, and each one's
    kind."""
    rng = np.random.default_rng(seed)
    draw = {
        "blank": _blank,
        "noise": _noise,
        "blotches": _blotches,
        "gradient": _gradient,
        "shape": _shape,
        "text": _text,
    }
    images, kinds = [], []
    for kind in SYNTHETIC_KINDS:
        images += [draw[kind](rng) for _ in range(per_kind)]
        kinds += [kind] * per_kind
    return np.stack(images), np.array(kinds)


def _blank(rng: np.random.Generator) -> np.ndarray:
    return np.full((SIZE, SIZE), rng.choice([0, rng.integers(1, 256)]), np.uint8)


def _noise(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, int(rng.integers(64, 256)) + 1, (SIZE, SIZE)).astype(np.uint8)


def _blotches(rng: np.random.Generator) -> np.ndarray:
    coarse = rng.random((int(rng.integers(2, 7)),) * 2).astype(np.float32)
    picture = Image.fromarray(coarse * 255, "F").resize((SIZE, SIZE), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(picture), 0, 255).astype(np.uint8)


def _gradient(rng: np.random.Generator) -> np.ndarray:
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1) - 0.5
    ramp = xs * np.cos(angle) + ys * np.sin(angle)
    ramp = (ramp - ramp.min()) / np.ptp(ramp)
    return np.rint(ramp * rng.integers(64, 256)).astype(np.uint8)


def _shape(rng: np.random.Generator) -> np.ndarray:
    picture = Image.new("L", (SIZE, SIZE), 0)
    pen = ImageDraw.Draw(picture)
    for _ in range(int(rng.integers(1, 4))):
        box = sorted(rng.integers(0, SIZE, 2)), sorted(rng.integers(0, SIZE, 2))
        (left, right), (top, bottom) = box
        corners = [int(left), int(top), int(right) + 2, int(bottom) + 2]
        level = int(rng.integers(96, 256))
        fill = level if rng.random() < 0.5 else None
        outline, width = level, int(rng.integers(1, 4))
        kind = rng.integers(0, 4)
        if kind == 0:
            pen.ellipse(corners, fill=fill, outline=outline, width=width)
        elif kind == 1:
            pen.rectangle(corners, fill=fill, outline=outline, width=width)
        elif kind == 2:
            points = [tuple(int(v) for v in rng.integers(0, SIZE, 2)) for _ in range(3)]
            pen.polygon(points, fill=fill, outline=outline, width=width)
        else:
            pen.line(corners, fill=level, width=width)
    return np.asarray(picture)


def _text(rng: np.random.Generator) -> np.ndarray:
    letters = string.ascii_letters + string.digits + "?!&@#%"
    word = "".join(rng.choice(list(letters), int(rng.integers(1, 4))))
    font = ImageFont.load_default(size=int(rng.integers(10, 22)))
    picture = Image.new("L", (SIZE, SIZE), 0)
    pen = ImageDraw.Draw(picture)
    left, top, right, bottom = pen.textbbox((0, 0), word, font=font)
    at = ((SIZE - (right - left)) / 2 - left, (SIZE - (bottom - top)) / 2 - top)
    pen.text(at, word, fill=int(rng.integers(128, 256)), font=font)
    return np.asarray(picture)
