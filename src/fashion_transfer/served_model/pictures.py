"""Any picture as Fashion-MNIST looks: one 28x28 greyscale image, the item light on a dark
background, filling the square on its longer side. The one conversion of the project:
`predict`, the served model, the web app and the ONNX Runtime snippet (docs/serving.md) all
call `to_model_image`.

Fashion-MNIST was made from product photos on white (the dataset's README): the borders trimmed
close to the corner colour, the longer side scaled to 28 pixels by subsampling, sharpened with
a Gaussian of radius and sigma 1, centred on a square, negated, 8-bit grey. A photo of an item
on a table or a wall is brought to the same form:

1. decoded whatever its kind: 16-bit and floating-point pixels scaled to 0-255, transparent
   pixels made background (white, as the products were shot), a palette or CMYK picture read
   in colour, the EXIF orientation applied, an animated picture's first frame; large pictures
   scaled down to WORK pixels first (JPEG decodes smaller directly), so time and memory stay
   bounded;
2. the background estimated from the picture's border: per colour channel, a plane of light
   (a gradient across the frame, a colour cast) fitted to the border pixels, refitted without
   those that fit worst (where the item touches the border);
3. the item found: the pixels whose colour differs from that background by more than the
   border's own noise allows (after smoothing, so that texture and JPEG noise stay
   background), and of those the largest connected regions (OpenCV);
4. the background measured again away from the item: the plane plus the surface's own
   unevenness (blotches, light that is not a plane), smoothed from every pixel clear of the
   item, so that under the item it comes from around it; the noise measured on those pixels
   too, and the item found again against that background;
5. turned upright: the products were photographed square to the camera, so an item whose
   outline fits a box at least TILT_GAIN smaller when turned (by less than MAX_TILT degrees
   either way) is turned by that angle;
6. cropped to the item; each pixel's value is how much darker than the background it is (or
   lighter, for a light item on a dark background), so the background is black, and the
   item's brightest pixel is 255, as in the training images;
7. the longer side scaled to 28 pixels by subsampling, sharpened as the dataset was, centred.

A picture that is already in that form (28x28, grey, a dark border: a Fashion-MNIST image) is
taken as it is. Where no item stands out from the background (a busy scene, an empty one), the
whole frame is converted and `Conversion.note` says so, for the web page to tell the person."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

SIZE = 28
# The formats browsers and phones send (JPEG includes MPO, the variant of some phone cameras);
# Pillow's other decoders are not offered to what a request holds.
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
# A picture larger than this is refused before its pixels are decoded: 48 megapixels is the
# largest phone camera's; a crafted PNG can announce far more than its bytes hold.
MAX_PIXELS = 50_000_000
# Pixels on the longer side at which the item is looked for: enough for an item a quarter of
# the frame to keep more than 28 pixels.
WORK = 160
RING = 2  # border pixels all round from which the background is estimated
# A pixel belongs to the item where its colour differs from the background by more than this
# many standard deviations of the border's noise, and by more than this share of the largest
# difference in the picture (after a Gaussian smoothing of SMOOTHING pixels).
NOISE_SIGMAS = 5.0
RELATIVE_THRESHOLD = 0.08
SMOOTHING = 1.5
# Regions of the item kept: each at least this share of the largest one's area.
KEEP_REGIONS = 0.1
# The background measured again away from the item (step 4): the pixels more than CLEARANCE
# pixels from it, their difference from the plane smoothed by a Gaussian of UNEVENNESS pixels
# (blotches of light a few times that size are followed); under the item, where fewer than
# SUPPORT of the pixels around are clear of it, the estimate fades back to the plane.
CLEARANCE = 3
UNEVENNESS = 6.0
SUPPORT = 0.3
# Turned upright (step 5) by the angle, within MAX_TILT degrees either way (in steps of one),
# whose upright box around the item is smallest, where that box is at least TILT_GAIN smaller
# than the item's box as photographed; an item whose smallest box lies at either end of the
# search is turned further than it tells (or photographed at a slant), and is left as it is.
MAX_TILT = 20
TILT_GAIN = 0.03
# The item's values start this many noise deviations above the background.
NOISE_FLOOR = 2.0
RESIZE = cv2.INTER_NEAREST
SHARPEN = 0.5  # the unsharp mask's amount (sigma 1), applied where the item was scaled down
# An item covering more of the frame than this, or touching three sides, is not told apart
# from its background.
MAX_ITEM_SHARE = 0.9
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601, as Pillow's convert("L")
SEPARATION_HINT = (
    "the item could not be told apart from its background, so the whole picture was "
    "converted: photograph one item alone on a plain surface, filling about half the frame"
)


@dataclass(frozen=True)
class Conversion:
    image: np.ndarray  # (28, 28) uint8, what the model sees
    note: str | None = None  # why the answer may not be about the item, for a person


class PictureError(ValueError):
    """A picture that cannot be read; the message says why."""


def open_picture(data: bytes) -> Image.Image:
    """The picture encoded in `data`, not yet decoded (Pillow reads the header only)."""
    _quiet_pillow()
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        raise PictureError(f"not a picture in a known format ({', '.join(FORMATS)})") from None
    except Image.DecompressionBombError:  # Pillow's own limit, far above ours: say ours
        raise PictureError(_too_large()) from None
    except (OSError, ValueError, SyntaxError) as error:  # a header that announces nonsense
        raise PictureError(f"not a readable picture ({error})") from None
    return image


def _quiet_pillow() -> None:
    """Pillow warns of what it meets in a damaged or crafted file (corrupt EXIF data, a
    truncated TIFF read, a header announcing over 89 megapixels) and then fails or reads on:
    the picture's error, or its image, says what matters; its warnings would be lines of noise
    on the console of `predict` and in the server's log, one per hostile picture, naming none.
    Set on each call (filterwarnings moves an existing filter to the front, never repeats it):
    a filter set once, on import, is dropped by any `catch_warnings` block the import ran in."""
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")


def _too_large(width: int | None = None, height: int | None = None) -> str:
    size = f"{width}x{height} pixels" if width and height else "the size its header announces"
    return f"{size} is over the {MAX_PIXELS // 1_000_000} megapixels taken; scale it down first"


def to_model_image(image: Image.Image) -> np.ndarray:
    """The (28, 28) uint8 image the model sees for `image`; PictureError if it cannot be read
    (truncated, damaged, too large)."""
    return convert_picture(image).image


def convert_picture(image: Image.Image) -> Conversion:
    """`to_model_image`, with a note where no item stood out from the background."""
    pixels = _decode(image)
    if _in_model_form(pixels):
        return Conversion(_centred(np.rint(pixels[..., 0] * 255).astype(np.uint8)))
    background, noise = _background(pixels)
    item = _item(_distance(pixels, background), noise)
    if item.any():
        uneven, uneven_noise = _uneven_background(pixels, background, noise, item)
        found = _item(_distance(pixels, uneven), uneven_noise)
        if found.any():
            background, noise, item = uneven, uneven_noise, found
    difference = pixels - background
    height, width = item.shape
    rows, columns = np.flatnonzero(item.any(axis=1)), np.flatnonzero(item.any(axis=0))
    separated = (
        rows.size > 0
        and item.mean() <= MAX_ITEM_SHARE
        and (rows[0] == 0) + (rows[-1] == height - 1) + (columns[0] == 0)
        + (columns[-1] == width - 1) < 3
    )  # fmt: skip
    if not separated:  # the whole frame, its border taken as background
        item = np.ones_like(item)
        rows, columns = np.arange(height), np.arange(width)
    luminance = difference @ LUMA if difference.shape[-1] == 3 else difference[..., 0]
    # A dark item on a light background is darker than it; a light one on a dark background,
    # lighter: the value is that difference, the background's noise taken off.
    sign = -1.0 if np.median(luminance[item]) < 0 else 1.0
    values = np.maximum(sign * luminance - NOISE_FLOOR * noise, 0.0)
    if separated:  # texture beside the item stays background
        near = cv2.dilate(item.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(np.float32)
        values *= cv2.GaussianBlur(near, (0, 0), 1.0)
        values, item = _upright(values, item)
        rows, columns = np.flatnonzero(item.any(axis=1)), np.flatnonzero(item.any(axis=0))
    crop = values[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    return Conversion(_centred(_as_dataset_image(crop)), None if separated else SEPARATION_HINT)


def _decode(image: Image.Image) -> np.ndarray:
    """The picture as float32 (height, width, channels) in 0-1, 1 or 3 channels, at most
    WORK pixels on its longer side."""
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise PictureError(_too_large(width, height))
    try:
        image.seek(0)  # an animated GIF or WebP: its first frame
        # JPEG decodes at 1/2, 1/4 or 1/8 of its size when asked: a phone photo costs little.
        image.draft("RGB", (WORK, WORK))
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
        colour = _colour(image)
    except Image.DecompressionBombError:  # a later frame announcing more than Pillow takes
        raise PictureError(_too_large()) from None
    except (OSError, ValueError, SyntaxError) as error:  # truncated or damaged pixel data
        raise PictureError(f"its pixel data is damaged or truncated ({error})") from None
    except MemoryError:  # under the limit, but more than this machine has free just now
        raise PictureError(
            "converting it needs more memory than is free now; scale it down or send it again"
        ) from None
    pixels = np.asarray(colour, np.float32) / np.float32(255.0)
    return pixels[..., None] if pixels.ndim == 2 else pixels


def _in_model_form(pixels: np.ndarray) -> bool:
    """28x28, grey, on a dark background: a Fashion-MNIST image, to be taken as it is."""
    if pixels.shape[:2] != (SIZE, SIZE):
        return False
    if pixels.shape[-1] == 3 and np.ptp(pixels, axis=-1).max() > 2 / 255:
        return False
    # An item may touch the border; the dark may be noisy (the median of 0-60 noise is 30).
    return bool(np.median(_border(pixels[..., 0])) < 0.25)


def _border(pixels: np.ndarray) -> np.ndarray:
    """The pixels of the RING outermost rows and columns."""
    mask = np.zeros(pixels.shape[:2], bool)
    mask[:RING], mask[-RING:], mask[:, :RING], mask[:, -RING:] = True, True, True, True
    return pixels[mask]


def _background(pixels: np.ndarray) -> tuple[np.ndarray, float]:
    """A plane of light per channel fitted to the border (least squares, refitted without the
    30% of border pixels that fit it worst, where the item reaches the border), and the
    standard deviation of the border's noise around it."""
    height, width, _ = pixels.shape
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    design = np.stack([np.ones_like(rows), columns / width, rows / height], axis=-1)
    border_design, border_pixels = _border(design), _border(pixels)
    coefficients = np.linalg.lstsq(border_design, border_pixels, rcond=None)[0]
    misfit = np.abs(border_pixels - border_design @ coefficients).sum(axis=1)
    kept = misfit <= np.quantile(misfit, 0.7)
    coefficients = np.linalg.lstsq(border_design[kept], border_pixels[kept], rcond=None)[0]
    residual = border_pixels[kept] - border_design[kept] @ coefficients
    distance = np.sqrt((residual**2).mean(axis=1))
    noise = max(1.4826 * float(np.median(distance)), 1.0 / 255)  # robust standard deviation
    return (design @ coefficients).astype(np.float32), noise


def _distance(pixels: np.ndarray, background: np.ndarray) -> np.ndarray:
    """How far each pixel's colour is from the background's (root mean square over channels)."""
    return np.sqrt(((pixels - background) ** 2).mean(axis=-1))


def _uneven_background(
    pixels: np.ndarray, plane: np.ndarray, noise: float, item: np.ndarray
) -> tuple[np.ndarray, float]:
    """The plane plus the unevenness of the pixels clear of the item (their difference from
    the plane, smoothed, normalised by how many pixels around are clear: a Gaussian
    "normalised convolution"), fading to the plane where few are; and the robust standard
    deviation of those pixels around it (the border's, `noise`, where too few are clear)."""
    size = 2 * CLEARANCE + 1
    clear = cv2.dilate(item.astype(np.uint8), np.ones((size, size), np.uint8)) == 0
    weight = cv2.GaussianBlur(clear.astype(np.float32), (0, 0), UNEVENNESS)
    residual = np.where(clear[..., None], pixels - plane, 0.0).astype(np.float32)
    spread = cv2.GaussianBlur(residual, (0, 0), UNEVENNESS).reshape(pixels.shape)
    fade = np.clip(weight / SUPPORT, 0.0, 1.0) / np.maximum(weight, 1e-3)
    background = plane + spread * fade[..., None]
    if clear.sum() < 4 * RING * sum(pixels.shape[:2]):  # fewer than the border has
        return background, noise
    distance = _distance(pixels[clear], background[clear])
    return background, max(1.4826 * float(np.median(distance)), 1.0 / 255)


def _upright(values: np.ndarray, item: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The item's values and outline turned upright (step 5 of the module's docstring) about
    the centre of its outline, on a square that holds them whole however they are turned; as
    they are when no angle gains TILT_GAIN."""
    points = cv2.findNonZero(item.astype(np.uint8))
    hull = cv2.convexHull(points).reshape(-1, 2).astype(np.float64)
    angles = np.arange(-MAX_TILT, MAX_TILT + 1)
    radians = np.deg2rad(angles)[:, None]
    cos, sin = np.cos(radians), np.sin(radians)
    turned_x = hull[None, :, 0] * cos - hull[None, :, 1] * sin
    turned_y = hull[None, :, 0] * sin + hull[None, :, 1] * cos
    boxes = np.ptp(turned_x, axis=1) * np.ptp(turned_y, axis=1)
    best = int(np.argmin(boxes))
    if best in (0, len(angles) - 1):  # turned further than the search reaches: left as it is
        return values, item
    if boxes[best] >= (1.0 - TILT_GAIN) * boxes[MAX_TILT]:  # MAX_TILT: the angle 0's place
        return values, item
    centre_x, centre_y = hull[:, 0].mean(), hull[:, 1].mean()
    reach = np.hypot(hull[:, 0] - centre_x, hull[:, 1] - centre_y).max()
    side = 2 * int(np.ceil(reach)) + 3  # the item whole, however it is turned
    # OpenCV's positive angle turns the other way round from the search's.
    turn = cv2.getRotationMatrix2D((float(centre_x), float(centre_y)), -float(angles[best]), 1.0)
    turn[:, 2] += (side / 2 - centre_x, side / 2 - centre_y)
    turned = cv2.warpAffine(values.astype(np.float32), turn, (side, side), flags=cv2.INTER_LINEAR)
    outline = cv2.warpAffine(item.astype(np.float32), turn, (side, side), flags=cv2.INTER_LINEAR)
    if not (outline > 0.5).any():  # an item of a few pixels, lost in the resampling
        return values, item
    return turned, outline > 0.5


def _item(distance: np.ndarray, noise: float) -> np.ndarray:
    """The pixels that stand out from the background, in the largest connected regions: the
    regions are found on a smoothed copy (so that noise and texture make no regions), their
    pixels kept where they stand out themselves (so that the crop is as tight as the
    dataset's)."""
    smooth = cv2.GaussianBlur(distance, (0, 0), SMOOTHING)
    threshold = max(NOISE_SIGMAS * noise, RELATIVE_THRESHOLD * float(smooth.max()))
    found = (smooth > threshold).astype(np.uint8)
    # An opening drops specks of one or two pixels (JPEG noise, dust) before regions count.
    found = cv2.morphologyEx(found, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(found, connectivity=8)
    if count > 1:
        areas = stats[1:, cv2.CC_STAT_AREA]
        found = np.isin(labels, 1 + np.flatnonzero(areas >= KEEP_REGIONS * areas.max()))
    return found.astype(bool) & (distance > threshold)


def _as_dataset_image(crop: np.ndarray) -> np.ndarray:
    """The item's values with the longer side scaled to 28 pixels by subsampling, levelled so
    that the brightest pixel is 255, then sharpened where it was scaled down and stored in 8
    bits (the sharpening's overshoot clipped), as the dataset's pictures were."""
    height, width = crop.shape
    scale = SIZE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(crop, size, interpolation=RESIZE)
    brightest = float(small.max())
    if brightest > 0:
        small = small * (255.0 / brightest)
    if scale < 1:
        small = small + SHARPEN * (small - cv2.GaussianBlur(small, (0, 0), 1.0))
    return np.clip(np.rint(small), 0, 255).astype(np.uint8)


def _centred(pixels: np.ndarray) -> np.ndarray:
    height, width = pixels.shape
    square = np.zeros((SIZE, SIZE), np.uint8)  # centred on a dark square
    top, left = (SIZE - height) // 2, (SIZE - width) // 2
    square[top : top + height, left : left + width] = pixels
    return square


DEEP_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
BAND = 2**20  # pixels converted at a time from a deep mode: memory stays that of the picture


def _colour(image: Image.Image) -> Image.Image:
    """Mode RGB or L, 0-255, at most WORK pixels on its longer side: deep pixels scaled by
    their range, transparency made white. Scaled down before anything else, so that a 50 MP
    picture costs a few copies of itself in its own mode, then little."""
    if image.mode in DEEP_MODES:
        image = Image.fromarray(_to_byte_range(np.asarray(image), image.mode), "L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        image = image.convert("RGB")
    elif image.mode in ("RGB", "L") and "transparency" in image.info:
        image = image.convert("RGBA")  # one colour marked transparent (PNG tRNS)
    if image.mode in ("PA", "RGBa", "La"):
        image = image.convert("RGBA")
    image = _shrunk(image)  # Pillow scales RGBA and LA with their alpha premultiplied
    if image.mode in ("RGBA", "LA"):  # composited on white, as the products were shot
        white = Image.new(image.mode[:-1], image.size, 255 if image.mode == "LA" else (255,) * 3)
        return Image.composite(image.convert(image.mode[:-1]), white, image.getchannel("A"))
    return image if image.mode in ("RGB", "L") else image.convert("RGB")


def _shrunk(image: Image.Image) -> Image.Image:
    """At most WORK pixels on the longer side (reducing_gap: by whole factors first)."""
    scale = WORK / max(image.size)
    if scale >= 1:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BOX, reducing_gap=2.0)


def _to_byte_range(pixels: np.ndarray, mode: str) -> np.ndarray:
    """16-bit, 32-bit and float pixels as 0-255: by the format's range where it has one,
    else by the finite values' own (floats in 0-1 or 0-255); NaN is 0, infinities the ends.
    Converted a band of rows at a time, so that no float copy of the whole picture is made."""
    high = _finite_max(pixels)
    if mode.startswith("I;16"):
        scale = 65535.0
    elif mode == "F" and high <= 1.0:
        scale = 1.0
    elif high <= 255.0:
        scale = 255.0
    else:
        scale = 65535.0 if high <= 65535.0 else high
    out = np.empty(pixels.shape, np.uint8)
    for rows in _bands(pixels):
        band = pixels[rows].astype(np.float32)
        np.nan_to_num(band, copy=False, nan=0.0, posinf=scale, neginf=0.0)
        np.clip(band, 0.0, scale, out=band)  # before scaling: no value overflows
        band *= np.float32(255.0 / scale)
        out[rows] = np.rint(band, out=band)
    return out


def _finite_max(pixels: np.ndarray) -> float:
    if pixels.dtype.kind in "iu":
        return float(pixels.max(initial=0))
    high = 0.0
    for rows in _bands(pixels):
        band = pixels[rows]
        high = max(high, float(band.max(initial=0.0, where=np.isfinite(band))))
    return high


def _bands(pixels: np.ndarray) -> list[slice]:
    step = max(1, BAND // max(1, pixels.shape[1] if pixels.ndim > 1 else 1))
    return [slice(start, start + step) for start in range(0, len(pixels), step)]
