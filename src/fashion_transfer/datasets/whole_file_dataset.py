"""A file dataset of kedro-datasets, written whole or not at all (fashion_transfer/files.py):
the data goes to a temporary file beside `filepath`, renamed over it once complete. A crash,
a Ctrl-C or a full disk while a run writes its metrics, reports or stage data leaves the
previous file as it was, for the step (or the person) that reads it next."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset
from kedro.io.core import parse_dataset_definition

from fashion_transfer.files import write_atomically


class WholeFileDataset(AbstractDataset):
    """`dataset` is the wrapped dataset's definition (its `type` and arguments), without its
    `filepath`, which is this dataset's. Loads, existence and kedro-viz previews are the
    wrapped dataset's own."""

    def __init__(
        self, *, filepath: str, dataset: dict | str, metadata: dict[str, Any] | None = None
    ):
        self._filepath = Path(filepath)
        self._class, self._args = parse_dataset_definition(
            {"type": dataset} if isinstance(dataset, str) else dict(dataset)
        )
        self._file = self._at(self._filepath)
        self.metadata = metadata
        if hasattr(self._file, "preview"):  # kedro-viz reads its return type from the method
            self.preview = self._file.preview

    def _at(self, path: Path) -> AbstractDataset:
        return self._class(filepath=str(path), **self._args)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "dataset": self._class.__name__}

    def _load(self) -> Any:
        return self._file.load()

    def _exists(self) -> bool:
        return self._file.exists()

    def _save(self, data: Any) -> None:
        write_atomically(self._filepath, lambda temporary: self._at(temporary).save(data))
