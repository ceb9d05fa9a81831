"""Kedro dataset for one (Fashion-)MNIST IDX file, fetched once into the raw data folder."""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import shutil
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from kedro.io import AbstractDataset, DatasetError

from fashion_transfer.files import write_atomically
from fashion_transfer.progress import download_bar
from fashion_transfer.redact import redact

logger = logging.getLogger(__name__)

OFFICIAL_MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
SOURCE_ENV_VAR = "FASHION_MNIST_SOURCE"
STANDARD_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
# IDX magic numbers: two zero bytes, 0x08 (unsigned byte data), then the number of dimensions.
MAGIC = {"images": 0x00000803, "labels": 0x00000801}
IMAGE_SHAPE = (28, 28)


class IDXDataset(AbstractDataset[None, np.ndarray]):
    """Loads an IDX file (gzip or plain) as a uint8 array: images (N, 28, 28) or labels (N,).

    If `filepath` does not exist yet, the file of the same name is fetched from the source:
    the folder or base URL in the environment variable FASHION_MNIST_SOURCE, else `source`,
    else the official mirror. Downloads from the official mirror must match `md5`; every fetched
    file must parse as a valid IDX file before it is renamed into place, so `filepath` never
    holds a partial or broken file. Read-only: there is nothing to save.
    """

    def __init__(
        self,
        *,
        filepath: str,
        kind: str,
        md5: str | None = None,
        source: str | None = None,
        timeout: float = 60.0,
        metadata: dict[str, Any] | None = None,
    ):
        if kind not in MAGIC:
            raise DatasetError(f"IDXDataset kind must be one of {sorted(MAGIC)}, got {kind!r}.")
        self._filepath = Path(filepath)
        self._kind = kind
        self._md5 = md5
        self._source = source
        self._timeout = timeout
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "kind": self._kind, "source": self._source}

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _save(self, data: None) -> None:
        raise DatasetError(f"{self._filepath} is raw input data; IDXDataset does not write it.")

    def _load(self) -> np.ndarray:
        if self._filepath.is_dir():
            raise DatasetError(
                f"{self._filepath} is a folder, but it should be the IDX file of that name. "
                "Remove or rename the folder; the file is then fetched again from the source."
            )
        if not self._filepath.exists():
            self._fetch()
        return parse_idx(self._filepath.read_bytes(), self._kind, str(self._filepath))

    def _source_location(self) -> str:
        return os.environ.get(SOURCE_ENV_VAR) or self._source or OFFICIAL_MIRROR

    def _fetch(self) -> None:
        source = self._source_location()

        def fetch_and_check(path: Path) -> None:
            with path.open("wb") as out:
                if "://" in source:
                    self._download(source, out)
                else:
                    self._copy_local(source, out)
            origin = f"{self._filepath.name} from {redact(source)}"
            parse_idx(path.read_bytes(), self._kind, origin)

        write_atomically(self._filepath, fetch_and_check)

    def _copy_local(self, folder: str, out) -> None:
        name = self._filepath.name
        candidates = [Path(folder) / name, Path(folder) / name.removesuffix(".gz")]
        found = next((path for path in candidates if path.is_file()), None)
        if found is None:
            raise DatasetError(
                f"{name} is not in the local source folder {folder!r} (from {SOURCE_ENV_VAR} or "
                f"the catalog). The folder must hold the four Fashion-MNIST files "
                f"{', '.join(STANDARD_FILES)} (gzip or plain); fix the path or copy them there."
            )
        with found.open("rb") as src:
            shutil.copyfileobj(src, out)

    def _download(self, base_url: str, out) -> None:
        url = base_url.rstrip("/") + "/" + self._filepath.name
        digest = hashlib.md5()
        received = 0
        try:
            with urllib.request.urlopen(url, timeout=self._timeout) as response:
                size = int(response.headers.get("Content-Length") or 0) or None
                with download_bar(self._filepath.name, size) as advance:
                    while chunk := response.read(1 << 20):
                        digest.update(chunk)
                        out.write(chunk)
                        received += len(chunk)
                        advance(len(chunk))
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise DatasetError(
                f"Could not download {redact(url)}: {error}. Without internet access, put the "
                f"four Fashion-MNIST files ({', '.join(STANDARD_FILES)}) in a folder and set "
                f"{SOURCE_ENV_VAR} to that folder, or copy them into {self._filepath.parent}/."
            ) from error
        logger.info("Downloaded %s: %d bytes from %s", self._filepath.name, received, redact(url))
        # Only the official files have published checksums; other sources are checked by parsing.
        if base_url == OFFICIAL_MIRROR and self._md5 and digest.hexdigest() != self._md5:
            raise DatasetError(
                f"Checksum mismatch for {redact(url)}: expected MD5 {self._md5}, got "
                f"{digest.hexdigest()}. The download was discarded; run again, or provide the "
                f"files offline through {SOURCE_ENV_VAR}."
            )


def parse_idx(raw: bytes, kind: str, name: str) -> np.ndarray:
    """Decode IDX bytes (gzip-compressed or not) of the given kind, with errors naming `name`."""
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise DatasetError(
                f"{name} is not a valid gzip file ({error}). It is corrupt or truncated: delete "
                "it and run again to fetch a fresh copy."
            ) from error
    expected_dims = 3 if kind == "images" else 1
    header_size = 4 + 4 * expected_dims
    magic = int.from_bytes(raw[:4], "big")
    if len(raw) >= 4 and magic != MAGIC[kind]:
        raise DatasetError(
            f"{name} has IDX magic number 0x{magic:08x}, but an IDX {kind} file has "
            f"0x{MAGIC[kind]:08x}. Check that the right file is in this place (images and "
            "labels files swapped, or not an IDX file at all)."
        )
    if len(raw) < header_size:
        raise DatasetError(
            f"{name} is too short to be an IDX {kind} file ({len(raw)} bytes). Delete it and "
            "run again to fetch a fresh copy."
        )
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(expected_dims))
    if kind == "images" and dims[1:] != IMAGE_SHAPE:
        raise DatasetError(
            f"{name} holds images of {dims[1]}x{dims[2]} pixels; Fashion-MNIST images are "
            f"28x28. Use the standard Fashion-MNIST files."
        )
    expected_size = header_size + int(np.prod(dims))
    if len(raw) != expected_size:
        raise DatasetError(
            f"{name} has {len(raw) - header_size} data bytes where its header announces "
            f"{expected_size - header_size}: the file is truncated or damaged. Delete it and run "
            "again to fetch a fresh copy."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(dims).copy()
