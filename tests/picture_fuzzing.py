"""Hostile pictures, shared by the fuzz tests and the kept fuzzing command
(benchmarks/fuzz_pictures.py):

- `seed_corpus()`: real encoded pictures of every accepted format (PNG, JPEG, WebP, GIF, BMP,
  TIFF) in every mode a browser, a phone or a crafted file may hold (1-bit to 16-bit and float,
  palettes, transparency, CMYK, animation, EXIF orientations, ICC profiles), and crafted ones:
  headers announcing huge or zero sizes, huge palettes and frame counts, compression bombs;
- `mutant(seed, index)`: the index-th input of a seeded run, one of those mutated (bits
  flipped, fields set to extreme values, truncated, spliced, sizes rewritten, PNG checksums
  mended so that the damage reaches the decoder); the same (seed, index) gives the same bytes;
- `BoundedConverter`: puts each input through `to_model_image(open_picture(...))` in a child
  process under a memory limit (RLIMIT_AS) and a deadline, and says how it ended: the (28, 28)
  image, the project's one-paragraph PictureError, or a fault (any other exception, a warning,
  a crash, running out of the memory limit or the time limit);
- `fuzz(...)`: a seeded run of mutants through a converter, counted per format."""

from __future__ import annotations

import functools
import io
import json
import os
import random
import resource
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
import warnings
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
# What one picture may cost in the child process, beyond what the process held before it
# (its libraries): a 50-megapixel picture, the largest taken, decoded and converted.
MEMORY_MB = 1024
SECONDS = 20.0  # per picture, on a slow shared 2-core machine (a few ms for most)
OUTCOMES = ("image", "refused")  # the two endings the contract allows; any other is a fault

# Sizes a header may announce: zero, one, the largest each format can hold, around the
# project's 50 MP limit and Pillow's (2 x 89.5 MP), and ones whose products overflow.
EXTREME_SIZES = [
    (0, 0), (0, 28), (28, 0), (1, 1), (1, 50_000_001), (50_000_001, 1), (7071, 7071),
    (7072, 7072), (13_000, 13_000), (20_000, 10_000), (65_535, 65_535), (16_384, 16_384),
    (2**31 - 1, 2**31 - 1), (2**32 - 1, 1), (46_341, 46_341),
]  # fmt: skip
EXTREME_INTEGERS = [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 2**24,
                    2**31 - 1, 2**31, 2**32 - 1]  # fmt: skip


# ---------------------------------------------------------------------------- the seeds


def _item(width: int = 28, height: int = 28) -> np.ndarray:
    """A light item on a dark background (as Fashion-MNIST draws one), at any size."""
    item = np.zeros((28, 28), np.uint8)
    item[4:24, 9:19] = 180
    item[8:20, 12:16] = 240
    picture = Image.fromarray(item).resize((width, height), Image.Resampling.NEAREST)
    return np.asarray(picture)


def encode(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


@functools.cache
def _icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _frames(count: int, size: int = 28) -> list[Image.Image]:
    return [Image.fromarray(np.roll(_item(size, size), index, axis=1)) for index in range(count)]


@functools.cache
def seed_corpus() -> dict[str, bytes]:
    """Named seeds, `FORMAT/what`: real pictures, then crafted ones. Built once a process
    (about a second): a few are large once decoded, none is over 1 MB encoded."""
    grey = Image.fromarray(_item())
    photo = Image.fromarray(255 - _item(64, 48)).convert("RGB")
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., 3] = np.where(_item() > 0, 255, 0)
    cutout = Image.fromarray(rgba, "RGBA")
    deep = Image.fromarray(_item().astype(np.uint16) * 257)
    palette = Image.fromarray(255 - _item()).convert("P")
    seeds = {
        "PNG/grey": encode(grey, "PNG"),
        "PNG/rgb": encode(photo, "PNG"),
        "PNG/rgba": encode(cutout, "PNG"),
        "PNG/la": encode(cutout.convert("LA"), "PNG"),
        "PNG/1-bit": encode(grey.convert("1"), "PNG"),
        "PNG/16-bit": encode(deep, "PNG"),
        "PNG/palette-transparent": encode(palette, "PNG", transparency=palette.getpixel((0, 0))),
        "PNG/rgb-transparent-colour": encode(photo, "PNG", transparency=(255, 255, 255)),
        "PNG/exif-6": encode(grey, "PNG", exif=_exif(6)),
        "PNG/icc": encode(photo, "PNG", icc_profile=_icc()),
        "PNG/animated": encode(
            _frames(1)[0], "PNG", save_all=True, append_images=_frames(3)[1:], duration=50
        ),
        "JPEG/grey": encode(grey, "JPEG"),
        "JPEG/rgb": encode(photo, "JPEG", quality=90),
        "JPEG/progressive": encode(photo, "JPEG", progressive=True, quality=70),
        "JPEG/cmyk": encode(photo.convert("CMYK"), "JPEG"),
        "JPEG/icc": encode(photo, "JPEG", icc_profile=_icc()),
        "JPEG/large": encode(Image.fromarray(255 - _item(2400, 1800)).convert("RGB"), "JPEG"),
        "WEBP/lossy": encode(photo, "WEBP", quality=80),
        "WEBP/lossless-rgba": encode(cutout, "WEBP", lossless=True),
        "WEBP/animated": encode(
            _frames(1)[0], "WEBP", save_all=True, append_images=_frames(3)[1:], duration=50
        ),
        "WEBP/exif-icc": encode(photo, "WEBP", exif=_exif(3), icc_profile=_icc()),
        "GIF/palette": encode(grey, "GIF"),
        "GIF/transparent": encode(palette, "GIF", transparency=palette.getpixel((0, 0))),
        "GIF/animated": encode(
            _frames(1)[0], "GIF", save_all=True, append_images=_frames(3)[1:], duration=50
        ),
        "BMP/rgb": encode(photo, "BMP"),
        "BMP/1-bit": encode(grey.convert("1"), "BMP"),
        "BMP/palette": encode(palette, "BMP"),
        "BMP/rgba": encode(cutout, "BMP"),
        "TIFF/grey-raw": encode(grey, "TIFF"),
        "TIFF/rgb-lzw": encode(photo, "TIFF", compression="tiff_lzw"),
        "TIFF/rgb-jpeg": encode(photo, "TIFF", compression="jpeg"),
        "TIFF/1-bit-g4": encode(grey.convert("1"), "TIFF", compression="group4"),
        "TIFF/cmyk-packbits": encode(photo.convert("CMYK"), "TIFF", compression="packbits"),
        "TIFF/16-bit-deflate": encode(deep, "TIFF", compression="tiff_adobe_deflate"),
        "TIFF/32-bit": encode(Image.fromarray(_item().astype(np.int32) * 257), "TIFF"),
        "TIFF/float": encode(Image.fromarray(_item().astype(np.float32) / 255, "F"), "TIFF"),
        "TIFF/pages": encode(_frames(1)[0], "TIFF", save_all=True, append_images=_frames(3)[1:]),
        "TIFF/exif-8-icc": encode(photo, "TIFF", exif=_exif(8), icc_profile=_icc()),
    }
    for orientation in range(1, 9):
        seeds[f"JPEG/exif-{orientation}"] = encode(photo, "JPEG", exif=_exif(orientation))
    seeds |= _crafted(seeds)
    return seeds


def _crafted(seeds: dict[str, bytes]) -> dict[str, bytes]:
    """Pictures made to hurt: valid files of extreme content, and headers that lie."""
    float_pixels = _item().astype(np.float32) / 255
    float_pixels[0, :4] = [np.nan, np.inf, -np.inf, 3e38]
    float_pixels[1, :4] = -3e38  # scaled by 255, an overflow to -inf
    bomb = zeros_deflated(50_000_000)
    crafted = {
        # Compression bombs under the limit: 49 MP of zeros in 50-200 KB, to be decoded.
        "PNG/49mp-grey": png_of_zeros(7000, 7000, bit_depth=8, colour_type=0),
        "PNG/49mp-16-bit": png_of_zeros(7000, 7000, bit_depth=16, colour_type=0),
        "PNG/49mp-rgba": png_of_zeros(7000, 7000, bit_depth=8, colour_type=6),
        "TIFF/49mp-float-deflate": tiff_float_of_zeros(7000, 7000),
        "GIF/49mp": encode(Image.new("P", (7000, 7000)), "GIF"),
        "TIFF/float-nan-inf": encode(Image.fromarray(float_pixels, "F"), "TIFF"),
        "GIF/2000-frames": encode(
            Image.new("P", (2, 2)),
            "GIF",
            save_all=True,
            append_images=[Image.new("P", (2, 2), i % 256) for i in range(1, 2000)],
        ),  # fmt: skip
        "PNG/apng-2-billion-frames": _png_edit(
            seeds["PNG/animated"], b"acTL", lambda body: struct.pack(">II", 2**31 - 1, 0)
        ),
        "PNG/huge-palette": _png_edit(
            seeds["PNG/palette-transparent"], b"PLTE", lambda body: bytes(range(256)) * 120
        ),
        # 50 MB of text or ICC profile in 50 KB
        "PNG/huge-text": _png_insert(seeds["PNG/grey"], b"zTXt", b"k\0\0" + bomb),
        "PNG/huge-icc": _png_insert(seeds["PNG/grey"], b"iCCP", b"icc\0\0" + bomb),
        "BMP/huge-palette": _patch(seeds["BMP/palette"], 46, "<I", 2**31 - 1),
        "BMP/top-down": _patch(seeds["BMP/rgb"], 22, "<i", -48),
        "BMP/bits-0": _patch(seeds["BMP/rgb"], 28, "<H", 0),
        "TIFF/ifd-loop": _tiff_ifd_loop(seeds["TIFF/pages"]),
        "TIFF/exif-9": encode(Image.fromarray(_item()), "TIFF", exif=_exif(9)),
        "JPEG/exif-65535": encode(Image.fromarray(_item()), "JPEG", exif=_exif(65535)),
        "JPEG/bad-icc": encode(Image.fromarray(_item()), "JPEG", icc_profile=b"not a profile" * 9),
    }
    for name in ("PNG/grey", "JPEG/rgb", "WEBP/exif-icc", "WEBP/lossy", "GIF/palette",
                 "BMP/rgb", "TIFF/grey-raw"):  # fmt: skip
        fmt = name.split("/")[0]
        for width, height in ((20_000, 10_000), (0, 0), (65_535, 65_535), (1, 50_000_001)):
            resized = with_size(seeds[name], width, height)
            if resized is not None:
                crafted[f"{fmt}/header-{width}x{height}-from-{name.split('/')[1]}"] = resized
    return crafted


def zeros_deflated(count: int) -> bytes:
    """A zlib stream of `count` zero bytes, made in milliseconds: one compressed block of
    zeros repeated (each flushed whole, so that none refers back to another)."""
    block_size = 2**20
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(block_size)) + compressor.flush(zlib.Z_FULL_FLUSH)
    full, rest = divmod(count, block_size)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail = compressor.compress(bytes(rest)) + compressor.flush(zlib.Z_FINISH)
    checksum = 1
    for _ in range(full):
        checksum = zlib.adler32(bytes(block_size), checksum)
    checksum = zlib.adler32(bytes(rest), checksum)
    return b"\x78\xda" + block * full + tail + struct.pack(">I", checksum)


def png_of_zeros(width: int, height: int, bit_depth: int, colour_type: int) -> bytes:
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
    row = 1 + width * channels * bit_depth // 8  # a filter byte, then the row's pixels
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return png_build([(b"IHDR", header), (b"IDAT", zeros_deflated(row * height)), (b"IEND", b"")])


def tiff_float_of_zeros(width: int, height: int) -> bytes:
    """A little-endian TIFF of 32-bit float pixels, all zero, in one deflated strip."""
    strip = zeros_deflated(width * height * 4)
    tags = [  # (tag, type, count, value): types 3 SHORT, 4 LONG
        (256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 32), (259, 3, 1, 8),
        (262, 3, 1, 1), (273, 4, 1, 0), (277, 3, 1, 1), (278, 4, 1, height),
        (279, 4, 1, len(strip)), (339, 3, 1, 3),
    ]  # fmt: skip
    ifd_size = 2 + 12 * len(tags) + 4
    tags[5] = (273, 4, 1, 8 + ifd_size)  # the strip right after the directory
    ifd = struct.pack("<H", len(tags)) + b"".join(
        struct.pack("<HHI", tag, kind, count) + struct.pack("<I", value)
        if kind == 4 else struct.pack("<HHIHH", tag, kind, count, value, 0)
        for tag, kind, count, value in tags
    ) + struct.pack("<I", 0)  # fmt: skip
    return b"II*\0" + struct.pack("<I", 8) + ifd + strip


def _patch(data: bytes, offset: int, layout: str, value: int) -> bytes:
    size = struct.calcsize(layout)
    if offset + size > len(data):
        return data
    return data[:offset] + struct.pack(layout, value) + data[offset + size :]


# ------------------------------------------------------------------ format-aware edits


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]] | None:
    """(type, body) of each chunk of a PNG, or None if `data` does not parse as one."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    chunks, position = [], 8
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        if len(body) < length:
            return None
        chunks.append((kind, body))
        position += 12 + length
    return chunks


def png_build(chunks: list[tuple[bytes, bytes]]) -> bytes:
    """A PNG of these chunks, each with its length and a correct CRC."""
    out = [b"\x89PNG\r\n\x1a\n"]
    for kind, body in chunks:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        out.append(struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc))
    return b"".join(out)


def _png_edit(data: bytes, kind: bytes, change) -> bytes:
    chunks = png_chunks(data)
    if chunks is None:
        return data
    return png_build([(k, change(b) if k == kind else b) for k, b in chunks])


def _png_insert(data: bytes, kind: bytes, body: bytes) -> bytes:
    chunks = png_chunks(data)
    if chunks is None:
        return data
    return png_build([chunks[0], (kind, body), *chunks[1:]])


def _tiff_ifd_loop(data: bytes) -> bytes:
    """A multi-page TIFF whose second page points back at the first: a frame chain that never
    ends."""
    if data[:4] != b"II*\0":
        return data
    first = struct.unpack("<I", data[4:8])[0]
    count = struct.unpack("<H", data[first : first + 2])[0]
    second = struct.unpack("<I", data[first + 2 + 12 * count : first + 6 + 12 * count])[0]
    if not second:
        return data
    count2 = struct.unpack("<H", data[second : second + 2])[0]
    return _patch(data, second + 2 + 12 * count2, "<I", first)


def detect_format(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "PNG"
    if data.startswith(b"\xff\xd8"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:4] in (b"GIF8",):
        return "GIF"
    if data[:2] == b"BM":
        return "BMP"
    if data[:4] in (b"II*\0", b"MM\0*"):
        return "TIFF"
    return "other"


def with_size(data: bytes, width: int, height: int) -> bytes | None:
    """`data` with its header announcing width x height (clipped to what the field holds),
    or None where the format's header is not found."""
    fmt = detect_format(data)
    if fmt == "PNG":
        chunks = png_chunks(data)
        if not chunks or chunks[0][0] != b"IHDR" or len(chunks[0][1]) < 8:
            return None
        body = chunks[0][1]
        w, h = min(width, 2**32 - 1), min(height, 2**32 - 1)
        return png_build([(b"IHDR", struct.pack(">II", w, h) + body[8:]), *chunks[1:]])
    if fmt == "JPEG":
        position = 2
        while position + 9 < len(data):
            if data[position] != 0xFF:
                return None
            marker = data[position + 1]
            length = struct.unpack(">H", data[position + 2 : position + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = min(height, 0xFFFF), min(width, 0xFFFF)
                return data[: position + 5] + struct.pack(">HH", h, w) + data[position + 9 :]
            position += 2 + length
        return None
    if fmt == "GIF":
        w, h = min(width, 0xFFFF), min(height, 0xFFFF)
        data = data[:6] + struct.pack("<HH", w, h) + data[10:]
        start = data.find(b"\x2c", 13)  # the first image descriptor (a guess past the table)
        if start > 0 and start + 9 <= len(data):
            data = data[: start + 5] + struct.pack("<HH", w, h) + data[start + 9 :]
        return data
    if fmt == "BMP":
        w, h = min(width, 2**31 - 1), min(height, 2**31 - 1)
        return data[:18] + struct.pack("<ii", w, h) + data[26:]
    if fmt == "WEBP":
        kind = data[12:16]
        if kind == b"VP8X":
            w, h = max(min(width, 2**24), 1) - 1, max(min(height, 2**24), 1) - 1
            return data[:24] + w.to_bytes(3, "little") + h.to_bytes(3, "little") + data[30:]
        if kind == b"VP8 " and len(data) > 30:
            w, h = min(width, 0x3FFF), min(height, 0x3FFF)
            return data[:26] + struct.pack("<HH", w, h) + data[30:]
        if kind == b"VP8L" and len(data) > 25:
            w, h = max(min(width, 2**14), 1) - 1, max(min(height, 2**14), 1) - 1
            bits = int.from_bytes(data[21:25], "little")
            bits = (bits & ~0x0FFFFFFF) | w | (h << 14)
            return data[:21] + bits.to_bytes(4, "little") + data[25:]
        return None
    if fmt == "TIFF":
        return _tiff_set(_tiff_set(data, 256, width), 257, height)
    return None


def _tiff_set(data: bytes | None, tag: int, value: int) -> bytes | None:
    """The first IFD's `tag` set to `value` as a LONG (TIFF's width and length tags)."""
    if data is None or len(data) < 8:
        return None
    order = "<" if data[:2] == b"II" else ">"
    offset = struct.unpack(order + "I", data[4:8])[0]
    if offset + 2 > len(data):
        return None
    count = struct.unpack(order + "H", data[offset : offset + 2])[0]
    for index in range(count):
        entry = offset + 2 + 12 * index
        if entry + 12 > len(data):
            return None
        if struct.unpack(order + "H", data[entry : entry + 2])[0] == tag:
            patched = struct.pack(order + "HHII", tag, 4, 1, min(value, 2**32 - 1))
            return data[:entry] + patched + data[entry + 12 :]
    return None


# ------------------------------------------------------------------ generated pictures

GENERATED_MODES = ("1", "L", "P", "RGB", "RGBA", "LA", "I;16", "I", "F", "CMYK")


def generated_picture(
    fmt: str,
    mode: str,
    width: int,
    height: int,
    pixels_seed: int,
    orientation: int = 0,
    icc: bool = False,
    frames: int = 1,
) -> bytes:
    """A picture of random pixels in `mode` (16-bit, 32-bit and float ones with extreme and
    non-finite values), encoded in `fmt` with an EXIF orientation (0: none, 9 and up: ones no
    camera writes), an ICC profile, `frames` frames. A mode the format cannot hold is saved as
    the format's writer converts it, or else in RGB."""
    rng = np.random.default_rng(pixels_seed)
    frames_made = [_random_image(mode, width, height, rng) for _ in range(frames)]
    options: dict = {}
    if orientation:
        options["exif"] = _exif(orientation)
    if icc:
        options["icc_profile"] = _icc()
    if frames > 1 and fmt in ("PNG", "WEBP", "GIF", "TIFF"):  # the formats with frames
        options |= {"save_all": True, "append_images": frames_made[1:], "duration": 40}
    try:
        with warnings.catch_warnings():  # Pillow 12 deprecates writing some modes as PNG
            warnings.simplefilter("ignore", DeprecationWarning)
            return encode(frames_made[0], fmt, **options)
    except (OSError, ValueError, KeyError, TypeError):
        if "append_images" in options:
            options["append_images"] = [frame.convert("RGB") for frame in frames_made[1:]]
        return encode(frames_made[0].convert("RGB"), fmt, **options)


def _random_image(mode: str, width: int, height: int, rng: np.random.Generator) -> Image.Image:
    shape = (height, width)
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 2**16, shape, dtype=np.uint16))
    if mode == "I":
        return Image.fromarray(rng.integers(-(2**31), 2**31, shape, dtype=np.int32))
    if mode == "F":
        pixels = rng.choice(
            np.array([0, 0.5, 1, 255, 65535, 3e38, -3e38, np.nan, np.inf, -np.inf], np.float32),
            shape,
        ) * rng.random(shape, dtype=np.float32)  # fmt: skip
        return Image.fromarray(pixels.astype(np.float32), "F")
    bands = {"1": 1, "L": 1, "P": 1, "RGB": 3, "RGBA": 4, "LA": 2, "CMYK": 4}[mode]
    pixels = rng.integers(0, 256, (*shape, bands), dtype=np.uint8)
    if mode in ("1", "L", "P"):
        grey = Image.fromarray(pixels[..., 0])
        return grey.convert(mode) if mode != "P" else grey.convert("P")
    return Image.fromarray(pixels, mode)


# -------------------------------------------------------------------------- mutations


def mutate(data: bytes, rng: random.Random, corpus: dict[str, bytes], steps: int) -> bytes:
    """`data` changed `steps` times by operators drawn with `rng`."""
    for _ in range(steps):
        operator = rng.choice(_OPERATORS)
        data = operator(data, rng, corpus)
    return data


def _flip_bits(data: bytes, rng: random.Random, corpus) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        position = rng.randrange(len(out))
        out[position] ^= 1 << rng.randrange(8)
    return bytes(out)


def _flip_header_bits(data: bytes, rng: random.Random, corpus) -> bytes:
    """Bits flipped in the first 64 bytes, where sizes, modes and offsets live."""
    head, tail = data[:64], data[64:]
    return _flip_bits(head, rng, corpus) + tail


def _extreme_field(data: bytes, rng: random.Random, corpus) -> bytes:
    if len(data) < 4:
        return data
    width = rng.choice((1, 2, 4))
    value = rng.choice(EXTREME_INTEGERS) % (1 << (8 * width))
    layout = rng.choice("<>") + {1: "B", 2: "H", 4: "I"}[width]
    # Mostly in the header, where a field means the most.
    limit = min(len(data) - width, 256) if rng.random() < 0.7 else len(data) - width
    return _patch(data, rng.randrange(limit + 1), layout, value)


def _truncate(data: bytes, rng: random.Random, corpus) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def _delete(data: bytes, rng: random.Random, corpus) -> bytes:
    if len(data) < 2:
        return data
    start = rng.randrange(len(data))
    return data[:start] + data[start + rng.randint(1, min(256, len(data) - start)) :]


def _insert(data: bytes, rng: random.Random, corpus) -> bytes:
    position = rng.randrange(len(data) + 1)
    if rng.random() < 0.5 and data:  # a slice of itself again (a repeated chunk or segment)
        start = rng.randrange(len(data))
        piece = data[start : start + rng.randint(1, 512)]
    else:
        piece = rng.randbytes(rng.randint(1, 64))
    return data[:position] + piece + data[position:]


def _splice(data: bytes, rng: random.Random, corpus) -> bytes:
    other = corpus[rng.choice(sorted(corpus))]
    return data[: rng.randrange(len(data) + 1)] + other[rng.randrange(len(other) + 1) :]


def _resize_header(data: bytes, rng: random.Random, corpus) -> bytes:
    width, height = rng.choice(EXTREME_SIZES)
    return with_size(data, width, height) or data


def _mend_png(data: bytes, rng: random.Random, corpus) -> bytes:
    """Damage a PNG's chunks (a body's bytes, their order, a copy) and mend the CRCs, so that
    the decoder, not the checksum, meets the damage."""
    chunks = png_chunks(data)
    if not chunks:
        return data
    index = rng.randrange(len(chunks))
    kind, body = chunks[index]
    choice = rng.random()
    if choice < 0.5:
        chunks[index] = (kind, _flip_bits(body, rng, corpus) if body else body)
    elif choice < 0.7:
        chunks.insert(rng.randrange(len(chunks) + 1), chunks[index])
    elif choice < 0.85 and len(chunks) > 2:
        del chunks[index]
    else:
        other = rng.randrange(len(chunks))
        chunks[index], chunks[other] = chunks[other], chunks[index]
    return png_build(chunks)


_OPERATORS = (
    _flip_bits, _flip_header_bits, _extreme_field, _truncate, _delete, _insert, _splice,
    _resize_header, _mend_png, _mend_png,
)  # fmt: skip


def mutant(seed: int, index: int) -> tuple[str, bytes]:
    """The index-th input of the run seeded `seed`: (the seed picture's name, the bytes). One
    in ten is a seed picture as it is."""
    corpus = seed_corpus()
    rng = random.Random(f"{seed}:{index}")
    name = rng.choice(sorted(corpus))
    steps = 0 if rng.random() < 0.1 else rng.randint(1, 4)
    return name, mutate(corpus[name], rng, corpus, steps)


# ------------------------------------------------------------------- the bounded child


@dataclass
class Outcome:
    # "image", "refused", or a fault: "exception", "warning", "memory" (refused for want of
    # memory, or over the budget), "crash", "timeout"
    kind: str
    detail: str = ""  # the error's message, or the exception's traceback
    seconds: float = 0.0
    peak_mb: float = 0.0  # the child's resident memory at its peak, above where it started
    warnings: list[str] = field(default_factory=list)

    @property
    def fault(self) -> bool:
        return self.kind not in OUTCOMES

    def within(self, memory_mb: float, seconds: float) -> bool:
        return self.peak_mb <= memory_mb and self.seconds <= seconds


class BoundedConverter:
    """A child process converting pictures one at a time, as `to_model_image(open_picture(
    data))`, with at most `memory_mb` more address space than it had when ready (RLIMIT_AS:
    beyond it an allocation fails, a fault) and `seconds` a picture (beyond: killed, a fault;
    a fresh child takes the next picture)."""

    def __init__(self, memory_mb: int = MEMORY_MB, seconds: float = SECONDS):
        self.memory_mb, self.seconds = memory_mb, seconds
        self.process: subprocess.Popen | None = None
        # What C libraries print there (libtiff's errors): counted, not shown.
        self.stderr = tempfile.TemporaryFile()

    def stderr_lines(self) -> list[str]:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace").splitlines()

    def __enter__(self) -> BoundedConverter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> subprocess.Popen:
        # The project's root, for `tests`; the package is installed. Not this process's
        # sys.path: loading an old model puts its own copy of the package in front.
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        env |= {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        process = subprocess.Popen(
            [sys.executable, "-c", f"from {__name__} import child_main; child_main()",
             str(self.memory_mb)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, env=env,
        )  # fmt: skip
        ready = self._read_line(process, 60)
        if ready != b"ready\n":
            process.kill()
            process.wait()
            said = "\n".join(self.stderr_lines()[-20:])
            raise RuntimeError(f"the converter process did not start: {ready!r}\n{said}")
        return process

    @staticmethod
    def _read_line(process: subprocess.Popen, seconds: float) -> bytes | None:
        """One line from the child, or None if none came within `seconds`."""
        ready, _, _ = select.select([process.stdout], [], [], seconds)
        return process.stdout.readline() if ready else None

    def convert(self, data: bytes) -> Outcome:
        if self.process is None or self.process.poll() is not None:
            self.process = self._start()
        started = time.monotonic()
        try:
            self.process.stdin.write(struct.pack("<Q", len(data)) + data)
            self.process.stdin.flush()
            line = self._read_line(self.process, self.seconds)
        except BrokenPipeError:
            line = b""
        if line is None:
            self.close()
            return Outcome("timeout", f"over {self.seconds:.0f} s", time.monotonic() - started)
        if not line:  # the child died
            code = self.process.wait()
            self.process = None
            return Outcome("crash", _exit_reason(code), time.monotonic() - started)
        return Outcome(**json.loads(line))

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def _exit_reason(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    """Start measuring the resident peak afresh (Linux: "5" to clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def child_main() -> None:
    import traceback

    from fashion_transfer.served_model.pictures import PictureError, open_picture, to_model_image

    to_model_image(open_picture(encode(Image.new("RGB", (64, 48)), "PNG")))  # lazy imports
    # Address space for twice the budget: the peak measured is checked against the budget, and
    # an allocation past the limit fails in the picture's code rather than killing the child.
    memory = 2 * int(sys.argv[1]) * 2**20
    limit = _status_kb("VmSize") * 1024 + memory
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(b"ready\n")
    stdout.flush()
    while header := stdin.read(8):
        data = stdin.read(struct.unpack("<Q", header)[0])
        measured = _reset_peak()
        before = _status_kb("VmRSS")
        started = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.filterwarnings("always", append=True)  # each, unless the code ignores it
            try:
                image = to_model_image(open_picture(data))
                if isinstance(image, np.ndarray) and image.shape == (28, 28):
                    kind, detail = ("image", "") if image.dtype == np.uint8 else ("exception", "")
                else:
                    kind, detail = "exception", f"not a (28, 28) uint8 array: {image!r:.200}"
            except PictureError as error:
                kind, detail = "refused", str(error)
                if not detail or "\n" in detail or len(detail) > 600:
                    kind = "exception"  # not one short paragraph
                elif isinstance(error.__context__, MemoryError):
                    kind = "memory"  # refused, but only because the limit here was reached
            except BaseException:  # noqa: B036 - anything else is the fault looked for
                kind, detail = "exception", traceback.format_exc(limit=-6)
        seconds = time.perf_counter() - started
        peak = (_status_kb("VmHWM") if measured else _status_kb("VmRSS")) - before
        said = [f"{w.category.__name__}: {w.message}" for w in caught]
        if said and kind in OUTCOMES:
            kind = "warning"  # printed on the console of `predict`, the server's log
        result = Outcome(kind, detail, seconds, max(peak, 0) / 1024, said)
        stdout.write(json.dumps(asdict(result)).encode() + b"\n")
        stdout.flush()


# ------------------------------------------------------------------------------- a run


@dataclass
class Report:
    seed: int
    inputs: int = 0
    seconds: float = 0.0
    by_format: dict = field(default_factory=dict)  # format -> Counter of outcome kinds
    slowest_seconds: float = 0.0
    largest_peak_mb: float = 0.0
    failures: list = field(default_factory=list)  # {"index", "seed_picture", "kind", "detail"}
    c_library_messages: int = 0  # lines C libraries (libtiff) wrote on stderr

    def as_dict(self) -> dict:
        return {
            "seed": self.seed,
            "inputs": self.inputs,
            "seconds": round(self.seconds, 1),
            "inputs_per_second": round(self.inputs / self.seconds, 1) if self.seconds else 0,
            "by_format": {k: dict(sorted(v.items())) for k, v in sorted(self.by_format.items())},
            "slowest_seconds": round(self.slowest_seconds, 3),
            "largest_peak_mb": round(self.largest_peak_mb, 1),
            "c_library_messages": self.c_library_messages,
            "failures": self.failures,
        }


def fuzz(
    seed: int,
    converter: BoundedConverter,
    inputs: int | None = None,
    seconds: float | None = None,
    failures_folder: Path | None = None,
) -> Report:
    """Mutants 0, 1, 2, ... of `seed` through `converter`, until `inputs` of them or
    `seconds` have passed; each fault is recorded (and its input written to
    `failures_folder`, named by seed and index, if given)."""
    report = Report(seed)
    started = time.monotonic()
    index = 0
    while (inputs is None or index < inputs) and (
        seconds is None or time.monotonic() - started < seconds
    ):
        name, data = mutant(seed, index)
        outcome = converter.convert(data)
        fmt = name.split("/")[0]
        report.by_format.setdefault(fmt, Counter())[outcome.kind] += 1
        report.slowest_seconds = max(report.slowest_seconds, outcome.seconds)
        report.largest_peak_mb = max(report.largest_peak_mb, outcome.peak_mb)
        if outcome.fault or not outcome.within(converter.memory_mb, converter.seconds):
            report.failures.append(
                {"index": index, "seed_picture": name, "kind": outcome.kind,
                 "detail": outcome.detail[-1500:], "warnings": outcome.warnings}
            )  # fmt: skip
            if failures_folder is not None:
                failures_folder.mkdir(parents=True, exist_ok=True)
                (failures_folder / f"seed-{seed}-index-{index}.bin").write_bytes(data)
        index += 1
    report.inputs = index
    report.seconds = time.monotonic() - started
    report.c_library_messages = len(converter.stderr_lines())
    return report
