"""Any picture as Fashion-MNIST looks: one 28x28 greyscale image, the item light on a dark
background, centred on a square. The one conversion of the project: `predict`, the served
model and the web app all call `to_model_image`.

Fashion-MNIST was made from product photos on white backgrounds, turned negative; a picture is
brought to the same form whatever its kind: 16-bit and floating-point pixels are scaled to
0-255, transparent pixels are background (composited on white, as the products were shot), a
palette or CMYK picture is read in colour first, the EXIF orientation is applied, an animated
picture gives its first frame, and a picture on a light background is inverted. Large pictures
are scaled down before anything else, so time and memory stay bounded."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

SIZE = 28
# The formats browsers and phones send (JPEG includes MPO, the variant of some phone cameras);
# Pillow's other decoders are not offered to what a request holds.
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
# A picture larger than this is refused before its pixels are decoded: 48 megapixels is the
# largest phone camera's; a crafted PNG can announce far more than its bytes hold.
MAX_PIXELS = 50_000_000


class PictureError(ValueError):
    """A picture that cannot be read; the message says why."""


def open_picture(data: bytes) -> Image.Image:
    """The picture encoded in `data`, not yet decoded (Pillow reads the header only)."""
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        raise PictureError(f"not a picture in a known format ({', '.join(FORMATS)})") from None
    except (OSError, ValueError) as error:  # a header that announces nonsense
        raise PictureError(f"not a readable picture ({error})") from None
    return image


def to_model_image(image: Image.Image) -> np.ndarray:
    """The (28, 28) uint8 image the model sees for `image`; PictureError if it cannot be read
    (truncated, damaged, too large)."""
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise PictureError(
            f"{width}x{height} pixels is over the {MAX_PIXELS // 1_000_000} megapixels taken; "
            "scale it down first"
        )
    try:
        image.seek(0)  # an animated GIF or WebP: its first frame
        # JPEG decodes at 1/2, 1/4 or 1/8 of its size when asked: a phone photo costs little.
        image.draft("RGB", (SIZE * 4, SIZE * 4))
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
        grey = _greyscale(image)
    except (OSError, ValueError, SyntaxError) as error:  # truncated or damaged pixel data
        raise PictureError(f"its pixel data is damaged or truncated ({error})") from None
    pixels = np.asarray(_shrink(grey))
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    if border.mean() > 127:  # a light background: Fashion-MNIST is dark behind the item
        pixels = 255 - pixels
    height, width = pixels.shape
    square = np.zeros((SIZE, SIZE), np.uint8)  # centred on a dark square
    top, left = (SIZE - height) // 2, (SIZE - width) // 2
    square[top : top + height, left : left + width] = pixels
    return square


def _greyscale(image: Image.Image) -> Image.Image:
    """Mode L, 0-255: deep pixels scaled by their range, transparency made white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        return Image.fromarray(_to_byte_range(pixels, image.mode), "L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        image = image.convert("RGB")
    elif image.mode in ("RGB", "L") and "transparency" in image.info:
        image = image.convert("RGBA")  # one colour marked transparent (PNG tRNS)
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return image if image.mode == "L" else image.convert("L")


def _to_byte_range(pixels: np.ndarray, mode: str) -> np.ndarray:
    """16-bit, 32-bit and float pixels as 0-255: by the format's range where it has one,
    else by the values' own (floats in 0-1 or 0-255)."""
    if mode.startswith("I;16"):
        scale = 65535.0
    elif mode == "F" and pixels.max(initial=0.0) <= 1.0:
        scale = 1.0
    elif pixels.max(initial=0.0) <= 255.0:
        scale = 255.0
    else:
        scale = 65535.0 if pixels.max() <= 65535.0 else float(pixels.max())
    pixels = np.nan_to_num(pixels, nan=0.0, posinf=scale, neginf=0.0)
    return np.clip(np.rint(pixels * (255.0 / scale)), 0, 255).astype(np.uint8)


def _shrink(image: Image.Image) -> Image.Image:
    """Scaled so that its longer side is 28 pixels."""
    width, height = image.size
    scale = SIZE / max(width, height)
    if scale == 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # reducing_gap: a fast box reduction first for large pictures, then Lanczos.
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
