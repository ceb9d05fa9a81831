"""Every kind of picture a browser or a phone sends, and the 28x28 image it must give
(fashion_transfer/served_model/pictures.py). Each picture is made from one item whose right
answer is known: light on a dark background as in Fashion-MNIST, or the same item dark on a
light background as a photo has it, of a known shape, size and place, on a known background;
then each step of the conversion is checked on it: decoding, the background, the item, the
crop and levels, the scaling and sharpening, the centring."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from fashion_transfer.served_model import pictures
from fashion_transfer.served_model.pictures import (
    MAX_PIXELS,
    SEPARATION_HINT,
    PictureError,
    convert_picture,
    open_picture,
    to_model_image,
)

# An item in Fashion-MNIST's form: it fills the square on its longer side (28 rows), 10
# columns wide, its brightest pixel 255, some texture: the conversion keeps every grey level.
ITEM = np.zeros((28, 28), np.uint8)
ITEM[:, 9:19] = 180
ITEM[8:20, 12:16] = 255
PHOTO = 255 - ITEM  # the item dark on white


def encode(image: Image.Image, format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


def convert(data: bytes) -> np.ndarray:
    return to_model_image(open_picture(data))


def assert_close(converted: np.ndarray, expected: np.ndarray, tolerance: int = 3) -> None:
    """Within `tolerance` grey levels everywhere (the background's noise is taken off the
    item's values, and the levels stretched back to 255)."""
    difference = np.abs(converted.astype(int) - expected.astype(int))
    assert difference.max() <= tolerance, (difference.max(), np.argwhere(difference > tolerance))


def photo(
    item: np.ndarray = ITEM,
    size: tuple[int, int] = (160, 120),
    scale: int = 4,
    at: tuple[int, int] = (4, 24),
    background=(200, 190, 170),
    gradient: float = 0.0,
    noise: float = 0.0,
) -> np.ndarray:
    """An RGB photo: `item` scaled `scale` times (nearest), darkening a background of the
    given colour at `at` (top, left), with a light gradient from left to right and noise. At
    most WORK pixels wide, so that the conversion sees it as it is."""
    width, height = size
    rng = np.random.default_rng(0)
    light = 1 + gradient * (np.arange(width) / width - 0.5)
    frame = np.asarray(background, np.float64)[None, None, :] * light[None, :, None]
    frame = np.broadcast_to(frame, (height, width, 3)).copy()
    darkness = np.kron(item / 255.0, np.ones((scale, scale)))
    top, left = at
    window = frame[top : top + darkness.shape[0], left : left + darkness.shape[1]]
    window *= 1 - darkness[..., None]
    frame += rng.normal(0, noise, frame.shape)
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8)


# -- decoding ---------------------------------------------------------------------------------


def test_a_fashion_mnist_picture_is_itself():
    assert np.array_equal(convert(encode(Image.fromarray(ITEM))), ITEM)


def test_a_28x28_grey_picture_on_a_noisy_dark_background_is_taken_as_it_is():
    # The dark of a model-form picture need not be black: a border of 0-60 noise (median 30)
    # is still the model's own form, and converting it again would change every prediction.
    rng = np.random.default_rng(0)
    noisy = np.maximum(ITEM, rng.integers(0, 60, ITEM.shape, dtype=np.uint8))
    assert np.array_equal(convert(encode(Image.fromarray(noisy))), noisy)


def test_a_picture_on_a_light_background_is_inverted():
    assert_close(convert(encode(Image.fromarray(PHOTO).convert("RGB"))), ITEM)


@pytest.mark.parametrize(
    ("deep", "format"),
    [(ITEM.astype(np.uint16) * 257, "PNG"), (ITEM.astype(np.int32) * 257, "TIFF")],
    ids=["16-bit PNG", "32-bit TIFF"],
)
def test_16_bit_greyscale_is_scaled_not_clipped(deep, format):
    # Pillow's convert("L") clips 16-bit values to 255: the item and background would both be
    # white, and nothing would stand out.
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
    assert_close(convert(encode(Image.fromarray(rgba, "RGBA"))), expected)
    la = Image.fromarray(rgba[..., [0, 3]], "LA")
    assert_close(convert(encode(la)), expected)


def test_a_cut_out_photo_keeps_its_grey_levels():
    # A product cut out of its photo: the transparent part is background, the item as shot.
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., :3] = PHOTO[..., None]
    rgba[..., 3] = np.where(ITEM > 0, 255, 0)
    assert_close(convert(encode(Image.fromarray(rgba, "RGBA"))), ITEM)


def test_a_palette_picture_with_a_transparent_colour():
    palette = Image.fromarray(PHOTO).convert("P")
    index = palette.getpixel((0, 0))  # the white background's palette entry
    data = encode(palette, transparency=index)
    assert open_picture(data).mode == "P"
    assert_close(convert(data), ITEM)


def test_a_cmyk_picture_is_read_in_colour_first():
    cmyk = np.zeros((28, 28, 4), np.uint8)
    cmyk[..., 3] = ITEM  # black ink where the item is, on white paper
    data = encode(Image.fromarray(cmyk, "CMYK"), "TIFF")
    assert open_picture(data).mode == "CMYK"
    assert_close(convert(data), ITEM)


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


def test_a_large_photo_is_decoded_small():
    large = encode(Image.fromarray(photo(size=(4000, 3000), scale=100, at=(100, 600))), "JPEG")
    decoded = pictures._decode(open_picture(large))
    assert max(decoded.shape[:2]) == pictures.WORK and decoded.shape[2] == 3
    converted = to_model_image(open_picture(large)).astype(int)
    # Scaled twice (by 25 when decoded, then to 28 rows): the item's outline may move by a
    # pixel, its shape and levels stay.
    rows = np.flatnonzero(converted.max(axis=1) > 90)
    columns = np.flatnonzero(converted.max(axis=0) > 90)
    assert len(rows) >= 27 and 9 <= len(columns) <= 11 and 8 <= columns[0] <= 10
    assert converted[9:19, 13:15].min() == 255 and converted[:, :8].max() == 0


# -- the background -----------------------------------------------------------------------------


def test_the_background_is_a_plane_of_light_fitted_to_the_border_without_the_item():
    # A tinted background whose light falls off by 40% from left to right, the item touching
    # the bottom border: the fit leaves the item's border pixels out.
    picture = photo(background=(200, 180, 140), gradient=0.4, at=(8, 24))
    pixels = picture.astype(np.float32) / 255
    background, noise = pictures._background(pixels)
    clean = photo(item=np.zeros_like(ITEM), background=(200, 180, 140), gradient=0.4) / 255
    assert np.abs(background - clean).max() < 2 / 255
    assert noise == pytest.approx(1 / 255)  # no noise: the smallest the conversion assumes


def test_the_border_noise_is_measured():
    pixels = photo(noise=6.0).astype(np.float32) / 255
    _, noise = pictures._background(pixels)
    assert noise == pytest.approx(6.0 / 255, rel=0.25)


# -- the item -----------------------------------------------------------------------------------


@pytest.mark.parametrize("gradient", [0.0, 0.4])
def test_the_item_is_found_where_it_is_and_a_speck_of_dirt_is_not(gradient):
    picture = photo(gradient=gradient, noise=3.0)
    picture[10:12, 10:12] = 60  # a speck of dirt in a corner
    pixels = picture.astype(np.float32) / 255
    background, noise = pictures._background(pixels)
    distance = np.sqrt(((pixels - background) ** 2).mean(axis=-1))
    found = pictures._item(distance, noise)
    rows, columns = np.flatnonzero(found.any(axis=1)), np.flatnonzero(found.any(axis=0))
    # The item is rows 4-115 and columns 60-99 (ITEM's columns 9-18, four times).
    assert (rows[0], rows[-1], columns[0], columns[-1]) == (4, 115, 60, 99)
    assert not found[5:20, 5:20].any()


@pytest.mark.parametrize(
    ("background", "item_scale", "expected"),
    [
        ((200, 190, 170), 1.0, ITEM),  # dark on light: darker than the background is bright
        ((40, 40, 50), -1.0, ITEM),  # light on dark
    ],
    ids=["dark on light", "light on dark"],
)
def test_a_photo_gives_the_item_cropped_levelled_and_scaled(background, item_scale, expected):
    picture = photo(background=background, noise=1.0).astype(np.float64)
    if item_scale < 0:  # the item lightens a dark background instead
        darkness = np.zeros(picture.shape[:2])
        darkness[4:116, 24:136] = np.kron(ITEM / 255.0, np.ones((4, 4)))
        base = photo(item=np.zeros_like(ITEM), background=background, noise=1.0)
        picture = base + (230 - base) * darkness[..., None]
    converted = convert(encode(Image.fromarray(picture.astype(np.uint8)), "PNG"))
    # Scaled down by 4 by subsampling: each converted pixel is one photo pixel, a level or two
    # off; the sharpening moves the item's inner edges (180 beside 255) a little more.
    assert_close(converted, expected, 40)
    assert np.abs(converted.astype(int) - expected).mean() < 4
    assert converted.max() == 255  # the brightest level is Fashion-MNIST's
    assert converted[:, :8].max() == 0 and converted[:, 20:].max() == 0  # black around it


def test_a_wide_item_fills_the_width_and_is_centred():
    wide = np.zeros((28, 28), np.uint8)
    wide[10:17, :] = 200  # 7 rows, 28 columns, as a sneaker is
    picture = photo(item=wide, scale=3, at=(10, 30))
    converted = convert(encode(Image.fromarray(picture)))
    rows = np.flatnonzero(converted.max(axis=1) > 100)
    columns = np.flatnonzero(converted.max(axis=0) > 100)
    assert columns[0] == 0 and columns[-1] == 27  # the longer side is 28
    assert 6 <= len(rows) <= 9 and abs((rows[0] + rows[-1]) / 2 - 13.5) <= 1  # centred


def test_sharpening_follows_the_scaling_down():
    step = np.zeros((28, 28), np.uint8)
    step[:, 9:19] = 120
    step[:, 14:19] = 240  # a step inside the item
    converted = convert(encode(Image.fromarray(photo(item=step))))
    # The unsharp mask overshoots on each side of the step: below 120 and up to 255 at it.
    row = converted[14].astype(int)
    assert row[13] < 120 * 255 // 240 and row[14] == 255


def test_a_coloured_item_counts_by_its_lightness():
    # A red item on white: as dark as red is in grey (ITU-R 601, as Pillow's "L": 76), so the
    # whole item has one level, stretched to 255.
    picture = np.full((120, 160, 3), 255, np.uint8)
    picture[4:116, 24:136][np.kron(ITEM > 0, np.ones((4, 4), bool))] = (255, 0, 0)
    converted = convert(encode(Image.fromarray(picture)))
    assert_close(converted, np.where(ITEM > 0, 255, 0), 3)


def blotchy_background(height: int = 120, width: int = 160) -> np.ndarray:
    """Light that is not a plane: a white table with a darker blotch of 20 levels left of the
    item and a lighter one right of it, each a Gaussian of 12 pixels (the border sees only
    their tails)."""
    rows, columns = np.mgrid[0:height, 0:width]
    light = 220.0 - 20 * np.exp(-((rows - 60) ** 2 + (columns - 16) ** 2) / (2 * 12.0**2))
    light += 20 * np.exp(-((rows - 60) ** 2 + (columns - 142) ** 2) / (2 * 12.0**2))
    return np.repeat(light[..., None], 3, axis=-1)


def test_the_background_is_measured_again_away_from_the_item():
    # The blotches are not on the border's plane: the second estimate follows them (within a
    # few levels wherever the pixels are clear of the item: the smoothing takes a little off
    # their peaks), and the noise measured on those pixels is about the picture's own (3
    # levels).
    rng = np.random.default_rng(0)
    background = blotchy_background()
    picture = background.copy()
    picture[4:116, 60:100] *= 1 - np.kron(ITEM / 255.0, np.ones((4, 4)))[:, 36:76, None]
    picture = np.clip(picture + rng.normal(0, 3.0, picture.shape), 0, 255) / 255
    pixels = picture.astype(np.float32)
    plane, border_noise = pictures._background(pixels)
    item = pictures._item(pictures._distance(pixels, plane), border_noise)
    uneven, noise = pictures._uneven_background(pixels, plane, border_noise, item)
    clear = np.ones(item.shape, bool)
    clear[:, 52:108] = False  # the item's columns (60-99) and the clearance around them
    error, plane_error = (
        np.abs(estimate - background / 255)[clear] for estimate in (uneven, plane)
    )
    assert error.max() < 6 / 255 and error.mean() < 1 / 255
    assert plane_error.max() > 15 / 255 and plane_error.mean() > 2 / 255
    assert noise == pytest.approx(3.0 / 255, rel=0.4)
    # So the blotches stay background: black around the item, which is cropped as it is.
    converted = convert(encode(Image.fromarray(np.rint(picture * 255).astype(np.uint8))))
    assert converted[:, :8].max() == 0 and converted[:, 20:].max() == 0
    assert np.abs(converted.astype(int) - ITEM).mean() < 4


def turned_photo(angle: float, item: np.ndarray = ITEM) -> np.ndarray:
    """`item` four times its size, turned by `angle` degrees (anticlockwise), dark on a
    light grey background of 200 levels, 160x160."""
    darkness = Image.fromarray(np.kron(item / 255.0, np.ones((4, 4))).astype(np.float32), "F")
    darkness = np.asarray(darkness.rotate(angle, Image.Resampling.BILINEAR, expand=True))
    frame = np.full((160, 160), 200.0)
    top, left = (160 - darkness.shape[0]) // 2, (160 - darkness.shape[1]) // 2
    frame[top : top + darkness.shape[0], left : left + darkness.shape[1]] *= 1 - darkness
    return np.repeat(np.rint(frame).astype(np.uint8)[..., None], 3, axis=-1)


@pytest.mark.parametrize("angle", [-12, -6, 6, 12])
def test_a_turned_item_is_turned_upright(angle, monkeypatch):
    # The item's outline fits its smallest box upright: turned back, it converts to the item
    # itself (within the blur of two resamplings), where it would otherwise be a slanted
    # patch, wider than the item.
    picture = encode(Image.fromarray(turned_photo(angle)))
    converted = convert(picture)
    difference = np.abs(converted.astype(int) - ITEM).mean()
    assert difference < 10
    rows, columns = np.flatnonzero(converted.any(axis=1)), np.flatnonzero(converted.any(axis=0))
    assert rows[-1] - rows[0] == 27 and columns[-1] - columns[0] <= 11  # 28 rows, 10 columns
    monkeypatch.setattr(pictures, "MAX_TILT", 0)  # no turn searched for
    slanted = convert(picture)
    assert np.flatnonzero(slanted.any(axis=0)).size >= 13
    assert np.abs(slanted.astype(int) - ITEM).mean() > difference + 4


def _values_and_outline(picture: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pixels = picture.astype(np.float32) / 255
    background, noise = pictures._background(pixels)
    distance = pictures._distance(pixels, background)
    return distance, pictures._item(distance, noise)


@pytest.mark.parametrize("angle", [40, -45, 90])
def test_an_item_turned_further_than_the_search_is_left_as_it_is(angle):
    # Beyond MAX_TILT the smallest box the search finds is at its end, not the item's upright
    # box: no half turn is made (nor is an item lying on its side stood up).
    values, outline = _values_and_outline(turned_photo(angle))
    kept_values, kept_outline = pictures._upright(values, outline)
    assert kept_values is values and kept_outline is outline


# -- when no item stands out ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "scene",
    [
        np.full((120, 160, 3), 128, np.uint8),  # nothing there
        np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8),  # a busy scene
    ],
    ids=["empty", "busy"],
)
def test_where_no_item_stands_out_the_whole_frame_is_converted_with_a_note(scene):
    conversion = convert_picture(open_picture(encode(Image.fromarray(scene))))
    assert conversion.note == SEPARATION_HINT
    assert conversion.image.shape == (28, 28) and conversion.image.dtype == np.uint8


def test_a_photo_of_one_item_has_no_note():
    assert convert_picture(open_picture(encode(Image.fromarray(photo())))).note is None


# -- what cannot be read ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height"),
    [
        # over the project's limit, under Pillow's (twice Image.MAX_IMAGE_PIXELS)
        (int(MAX_PIXELS**0.5) + 1_000, int(MAX_PIXELS**0.5) + 1_000),
        # over Pillow's too: Image.open itself refuses it, with DecompressionBombError
        (20_000, 10_000),
    ],
)
def test_a_picture_announcing_too_many_pixels_is_refused_before_it_is_decoded(width, height):
    assert width * height > MAX_PIXELS
    small = encode(Image.fromarray(ITEM).convert("1"))
    # The same PNG with a header that announces width x height pixels (a "decompression bomb").
    header = struct.pack(">II", width, height) + small[24:29]
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
