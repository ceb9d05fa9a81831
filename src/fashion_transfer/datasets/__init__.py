"""Kedro datasets that kedro-datasets does not have: IDX files and PyTorch model weights."""

from .idx_dataset import IDXDataset
from .torch_model_dataset import TorchModelDataset

__all__ = ["IDXDataset", "TorchModelDataset"]
