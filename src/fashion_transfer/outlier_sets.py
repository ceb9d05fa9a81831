"""Pictures that are none of the ten classes, built offline. To measure whether a model can say
"this does not look like anything I know" (the evaluation pipeline):

- `digits`: scikit-learn's bundled handwritten digits (1,797 of 8x8 pixels), each scaled to
  20x20 and centred on a black 28x28 square, light on dark as Fashion-MNIST;
- `synthetic`: non-garments drawn with Pillow and NumPy: blank pictures of one level, noise
  (fine and blotchy), gradients, shapes (circles, boxes, triangles, lines, outlined or filled)
  and text, each kind in equal numbers, seeded.

To teach a model to say it (outlier exposure, `training_outliers`), from sources that are
none of those: crops of the photographs bundled with scikit-learn and matplotlib (a temple, a
flower, a portrait, a gift box, a terrain model, a brain scan) through the served conversion,
the edges found in such crops drawn as blurred light strokes on black, and training images cut
into 7x7 patches and shuffled.

All are in the models' own form (28x28 uint8, the item light on black), as a picture is
after the served conversion."""

from __future__ import annotations

import functools
import logging
import string
import time

import numpy as np
from PIL import Image, ImageDraw, ImageFont

logger = logging.getLogger(__name__)

SIZE = 28
SYNTHETIC_KINDS = ("blank", "noise", "blotches", "gradient", "shape", "text")
PATCH = 7  # the side of the shuffled patches: a 4x4 grid of the 28x28 image
# The photographs are shrunk to this longest side before cropping: a crop's conversion then
# takes about a millisecond, and 28x28 keeps nothing finer anyway.
PHOTO_SIDE = 256


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


def make_outliers(stage_data: dict, training_params: dict) -> np.ndarray:
    """The outlier pictures a stage trains with, as its recipe's `outlier_exposure` asks
    (`training_outliers` from the stage's own training split and the recipe's seed); none
    without outlier exposure. A node of each training pipeline."""
    from fashion_transfer.params import OutlierExposureParams

    settings = training_params.get("outlier_exposure")
    if settings is None:
        return np.zeros((0, SIZE, SIZE), np.uint8)
    exposure = OutlierExposureParams.model_validate(settings)
    started = time.perf_counter()
    outliers = training_outliers(
        stage_data["train_images"],
        exposure.photo_crops,
        exposure.shuffled,
        training_params["seed"],
        edges=exposure.edges,
    )
    logger.info(
        "Outlier exposure: %d photo crops, %d shuffled images and %d edge maps made in %.1f s",
        exposure.photo_crops,
        exposure.shuffled,
        exposure.edges,
        time.perf_counter() - started,
    )
    return outliers


def with_outliers(stage_data: dict, outliers: np.ndarray | None) -> dict:
    """A stage's data with the outlier pictures it trains with (`outlier_images`, as
    training.fit takes them), where there are any."""
    if outliers is None or not len(outliers):
        return stage_data
    return {**stage_data, "outlier_images": outliers}


def training_outliers(
    train_images: np.ndarray, photo_crops: int, shuffled: int, seed: int, edges: int = 0
) -> np.ndarray:
    """`photo_crops` converted crops of the bundled photographs, then `shuffled` of
    `train_images` with their 7x7 patches shuffled, then `edges` edge maps of crops of the
    photographs, as (N, 28, 28) uint8, seeded (each source from its own stream of the seed)."""
    rng = np.random.default_rng((seed, 1))
    chosen = rng.choice(len(train_images), shuffled, replace=shuffled > len(train_images))
    patches = [_shuffled(train_images[index], rng) for index in chosen]
    parts = [_photo_crops(photo_crops, seed), *patches, _edge_maps(edges, seed)]
    return np.concatenate([np.reshape(part, (-1, SIZE, SIZE)) for part in parts])


# The crops and edge maps depend only on their count and seed: the stages of a run that ask
# for the same ones (the presets' do) make them once.
@functools.lru_cache(maxsize=4)
def _photo_crops(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng((seed, 0))
    photos = _photographs() if count else []
    return _read_only([_photo_crop(photo, rng) for photo in _choose(photos, count, rng)])


@functools.lru_cache(maxsize=4)
def _edge_maps(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng((seed, 2))
    photos = _photographs() if count else []
    return _read_only([_edge_map(photo, rng) for photo in _choose(photos, count, rng)])


def _read_only(images: list[np.ndarray]) -> np.ndarray:
    stacked = np.stack(images) if images else np.zeros((0, SIZE, SIZE), np.uint8)
    stacked.setflags(write=False)
    return stacked


@functools.lru_cache(maxsize=1)
def _photographs() -> list[Image.Image]:
    """The photographs that scikit-learn and matplotlib install with them, grey or colour,
    at most PHOTO_SIDE pixels on the longest side."""
    import gzip

    from matplotlib import cbook
    from sklearn.datasets import load_sample_images

    photos = [Image.fromarray(array) for array in load_sample_images().images]
    for name in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png"):
        with Image.open(cbook.get_sample_data(name, asfileobj=False)) as photo:
            photos.append(photo.convert("RGB"))
    with np.load(cbook.get_sample_data("jacksboro_fault_dem.npz", asfileobj=False)) as terrain:
        photos.append(_grey(terrain["elevation"]))
    with gzip.open(cbook.get_sample_data("s1045.ima.gz", asfileobj=False)) as scan:
        photos.append(_grey(np.frombuffer(scan.read(), np.uint16).reshape(256, 256)))
    for photo in photos:
        photo.thumbnail((PHOTO_SIDE, PHOTO_SIDE))
    return photos


def _grey(values: np.ndarray) -> Image.Image:
    values = values.astype(np.float32) - values.min()
    return Image.fromarray(np.rint(255 * values / max(float(values.max()), 1e-6)).astype(np.uint8))


def _choose(photos: list, count: int, rng: np.random.Generator) -> list:
    return [photos[index] for index in rng.integers(0, len(photos), count)]


def _photo_crop(photo: Image.Image, rng: np.random.Generator) -> np.ndarray:
    """A square crop of 15-90% of the photograph's shorter side, turned up to 30 degrees and
    mirrored half of the time, as the served conversion makes it."""
    from fashion_transfer.served_model.pictures import convert_picture

    return convert_picture(_crop(photo, rng)).image


def _crop(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    width, height = photo.size
    side = max(int(min(width, height) * rng.uniform(0.15, 0.9)), 8)
    left = int(rng.integers(0, width - side + 1))
    top = int(rng.integers(0, height - side + 1))
    crop = photo.crop((left, top, left + side, top + side)).rotate(float(rng.uniform(-30, 30)))
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return crop


def _edge_map(photo: Image.Image, rng: np.random.Generator) -> np.ndarray:
    """The strongest edges (Canny's, on the blurred crop) of a crop of the photograph as light
    strokes on black: found at 40x40 (the crop's middle, clear of the corners its turning
    leaves black), thickened, scaled to 14-22 pixels, centred and blurred, so that they are
    lines and curves of a pen's width, as neither a garment nor a filled shape is."""
    import cv2

    for _ in range(20):  # a crop of a flat region has no edges: another crop
        crop = _crop(photo, rng).convert("L").resize((56, 56), Image.Resampling.BILINEAR)
        grey = cv2.GaussianBlur(np.asarray(crop)[8:48, 8:48], (0, 0), 1.5)
        gradient = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
        strong = max(float(np.percentile(gradient, 85)), 8.0)
        lines = cv2.Canny(grey, strong / 2, strong, L2gradient=True)
        if lines.mean() >= 0.02 * 255:
            break
    lines = cv2.dilate(lines, np.ones((int(rng.integers(3, 5)),) * 2, np.uint8))
    side = int(rng.integers(14, 23))
    small = cv2.resize(lines, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)
    small *= rng.uniform(0.5, 1.0) * 255 / max(float(small.max()), 1.0)
    picture = np.zeros((SIZE, SIZE), np.uint8)
    at = (SIZE - side) // 2
    picture[at : at + side, at : at + side] = np.rint(small).astype(np.uint8)
    return cv2.GaussianBlur(picture, (0, 0), rng.uniform(0.3, 1.2))


def _shuffled(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    grid = SIZE // PATCH
    patches = (
        image.reshape(grid, PATCH, grid, PATCH).transpose(0, 2, 1, 3).reshape(-1, PATCH, PATCH)
    )
    patches = patches[rng.permutation(len(patches))]
    return patches.reshape(grid, grid, PATCH, PATCH).transpose(0, 2, 1, 3).reshape(SIZE, SIZE)
