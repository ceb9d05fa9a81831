"""Kedro datasets that kedro-datasets and kedro-mlflow do not have: IDX files, PyTorch model
weights, a folder of pictures read safely, any file dataset written whole or not at all; and
kedro-mlflow's registered-model dataset with an error that gives the fix, and its metrics
dataset logging in one call.

Each is imported when the catalog first names it (Kedro reads `fashion_transfer.datasets.NAME`
as an attribute of this package), so that a command that uses one imports neither PyTorch
nor MLflow for the others."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_MODULES = {
    "IDXDataset": "idx_dataset",
    "MetricsHistoryDataset": "metrics_history_dataset",
    "PicturesFolderDataset": "pictures_folder_dataset",
    "RegisteredModelDataset": "registered_model_dataset",
    "TorchModelDataset": "torch_model_dataset",
    "WholeFileDataset": "whole_file_dataset",
}

__all__ = [
    "IDXDataset",
    "MetricsHistoryDataset",
    "PicturesFolderDataset",
    "RegisteredModelDataset",
    "TorchModelDataset",
    "WholeFileDataset",
]

if TYPE_CHECKING:
    from .idx_dataset import IDXDataset
    from .metrics_history_dataset import MetricsHistoryDataset
    from .pictures_folder_dataset import PicturesFolderDataset
    from .registered_model_dataset import RegisteredModelDataset
    from .torch_model_dataset import TorchModelDataset
    from .whole_file_dataset import WholeFileDataset


def __getattr__(name: str):
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_MODULES[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
