"""Every kind of picture a browser or a phone sends, and the 28x28 image it must give
(fashion_transfer/served_model/pictures.py). Each picture is made from one item, light on a
dark background as in Fashion-MNIST, or the same item dark on white as a photo has it."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from fashion_transfer.served_model.pictures import (
    MAX_PIXELS,
    PictureError,
    open_picture,
    to_model_image,
)

ITEM = np.zeros((28, 28), np.uint8)
ITEM[4:24, 9:19] = 180
ITEM[8:20, 12:16] = 240  # some texture: the conversion must keep every grey level
PHOTO = 255 - ITEM  # the item dark on white


def encode(image: Image.Image, format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


def convert(data: bytes) -> np.ndarray:
    return to_model_image(open_picture(data))


def test_a_fashion_mnist_picture_is_itself():
    assert np.array_equal(convert(encode(Image.fromarray(ITEM))), ITEM)


def test_a_photo_on_a_light_background_is_inverted():
    rgb = Image.fromarray(PHOTO).convert("RGB")
    assert np.array_equal(convert(encode(rgb)), ITEM)


@pytest.mark.parametrize(
    ("deep", "format"),
    [(ITEM.astype(np.uint16) * 257, "PNG"), (ITEM.astype(np.int32) * 257, "TIFF")],
    ids=["16-bit PNG", "32-bit TIFF"],
)
def test_16_bit_greyscale_is_scaled_not_clipped(deep, format):
    # Pillow's convert("L") clips 16-bit values to 255: the item and background would both be
    # white, and the background rule would then invert it to noise.
    data = encode(Image.fromarray(deep), format)
    assert open_picture(data).mode in ("I;16", "I")
    assert np.array_equal(convert(data), ITEM)


@pytest.mark.parametrize(("scale", "name"), [(1 / 255, "0-1"), (1.0, "0-255")])
def test_floating_point_pixels_are_scaled_by_their_range(scale, name):
    image = Image.fromarray(ITEM.astype(np.float32) * np.float32(scale), "F")
    assert np.array_equal(convert(encode(image, "TIFF")), ITEM), name


def test_transparent_pixels_are_background_not_ink():
    # A sketch: black strokes on a transparent canvas whose hidden colour is black too, so
    # that convert("L") alone would make the whole picture black.
    ink = ITEM > 0
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., 3] = np.where(ink, 255, 0)
    expected = np.where(ink, 255, 0).astype(np.uint8)
    assert np.array_equal(convert(encode(Image.fromarray(rgba, "RGBA"))), expected)
    la = Image.fromarray(rgba[..., [0, 3]], "LA")
    assert np.array_equal(convert(encode(la)), expected)


def test_a_cut_out_photo_keeps_its_grey_levels():
    # A product cut out of its photo: the transparent part is background, the item as shot.
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., :3] = PHOTO[..., None]
    rgba[..., 3] = np.where(ITEM > 0, 255, 0)
    assert np.array_equal(convert(encode(Image.fromarray(rgba, "RGBA"))), ITEM)


def test_a_palette_picture_with_a_transparent_colour():
    palette = Image.fromarray(PHOTO).convert("P")
    index = palette.getpixel((0, 0))  # the white background's palette entry
    data = encode(palette, transparency=index)
    assert open_picture(data).mode == "P"
    assert np.array_equal(convert(data), ITEM)


def test_a_cmyk_picture_is_read_in_colour_first():
    cmyk = np.zeros((28, 28, 4), np.uint8)
    cmyk[..., 3] = ITEM  # black ink where the item is, on white paper
    data = encode(Image.fromarray(cmyk, "CMYK"), "TIFF")
    assert open_picture(data).mode == "CMYK"
    assert np.array_equal(convert(data), ITEM)


def test_the_exif_orientation_is_applied():
    # A phone stores the sensor's pixels and says how to turn them: orientation 6 means
    # "rotate 90 degrees clockwise to view".
    sensor = Image.fromarray(ITEM).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    assert np.array_equal(convert(encode(sensor, exif=exif)), ITEM)


def test_an_animated_gif_gives_its_first_frame():
    frames = [Image.fromarray(ITEM), Image.fromarray(255 - ITEM), Image.fromarray(ITEM // 2)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert open_picture(data).n_frames == 3
    assert np.array_equal(convert(data), ITEM)


def test_any_aspect_ratio_is_centred_on_a_square():
    wide = Image.fromarray(ITEM).resize((56, 28), Image.Resampling.NEAREST)
    converted = convert(encode(wide))
    expected = np.zeros((28, 28), np.uint8)
    expected[7:21] = np.asarray(wide.resize((28, 14), Image.Resampling.LANCZOS))
    assert np.array_equal(converted, expected)
    assert converted[:7].max() == 0 and converted[21:].max() == 0


def test_a_large_photo_is_scaled_down_to_the_item():
    large = Image.fromarray(PHOTO).resize((2800, 2800), Image.Resampling.NEAREST)
    converted = convert(encode(large.convert("RGB"), "JPEG", quality=95))
    assert np.abs(converted.astype(int) - ITEM).mean() < 4  # JPEG is lossy, resampling blurs


def test_a_picture_announcing_too_many_pixels_is_refused_before_it_is_decoded():
    small = encode(Image.fromarray(ITEM))
    side = int(MAX_PIXELS**0.5) + 1_000
    # The same PNG with a header that announces side x side pixels (a "decompression bomb").
    header = struct.pack(">II", side, side) + small[24:29]
    chunk = b"IHDR" + header
    forged = small[:12] + chunk + struct.pack(">I", zlib.crc32(chunk)) + small[33:]
    with pytest.raises(PictureError, match="megapixels"):
        convert(forged)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"shirt,blue,42\n", "not a picture in a known format"),
        (encode(Image.fromarray(ITEM))[:-30], "damaged or truncated"),
    ],
)
def test_what_is_not_a_whole_picture_says_why(data, reason):
    with pytest.raises(PictureError, match=reason):
        convert(data)
