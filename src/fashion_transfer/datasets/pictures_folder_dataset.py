"""The pictures of a folder, for `kedro run --pipeline predict`: any folder a user points it
at, read in bounded time and memory. Loading gives, per file (its path below the folder), a
function that returns the file's bytes, or raises PictureError saying why it is not read: a
pipe, a device or a socket (reading one could wait for ever), a file over the size a picture
may have, a file that cannot be opened. Hidden files and folders are not listed."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from fashion_transfer.served_model.contract import MAX_PICTURE_BYTES
from fashion_transfer.served_model.pictures import PictureError


class PicturesFolderDataset(AbstractDataset[None, dict[str, Callable[[], bytes]]]):
    def __init__(self, *, path: str, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}

    def _exists(self) -> bool:
        return self._path.is_dir()

    def _save(self, data) -> None:
        raise DatasetError(f"{self._path} holds the user's pictures; nothing is written there.")

    def _load(self) -> dict[str, Callable[[], bytes]]:
        if not self._path.is_dir():
            raise DatasetError(
                f"There is no folder {self._path} to classify: create it and put pictures in "
                "it, or name another folder with --params predict_images=PATH."
            )
        found = {}
        for folder, subfolders, files in os.walk(self._path):
            subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
            for name in files:
                if not name.startswith("."):
                    path = Path(folder) / name
                    found[path.relative_to(self._path).as_posix()] = _reader(path)
        return found


def _reader(path: Path) -> Callable[[], bytes]:
    def read() -> bytes:
        try:
            info = path.stat()  # follows a link: what it points at is what would be read
        except OSError as error:
            raise PictureError(f"it cannot be opened ({error.strerror})") from None
        if not stat.S_ISREG(info.st_mode):
            raise PictureError("not a regular file (a pipe, a device or a socket)")
        if info.st_size > MAX_PICTURE_BYTES:
            raise PictureError(
                f"{info.st_size / 2**20:.0f} MB, over the {MAX_PICTURE_BYTES // 2**20} MB a "
                "picture may have"
            )
        try:
            with path.open("rb") as file:
                return file.read(MAX_PICTURE_BYTES + 1)
        except OSError as error:
            raise PictureError(f"it cannot be read ({error.strerror})") from None

    return read
