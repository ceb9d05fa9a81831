"""Kedro datasets that kedro-datasets and kedro-mlflow do not have: IDX files and PyTorch model
weights; and kedro-mlflow's registered-model dataset with an error that gives the fix."""

from .idx_dataset import IDXDataset
from .registered_model_dataset import RegisteredModelDataset
from .torch_model_dataset import TorchModelDataset

__all__ = ["IDXDataset", "RegisteredModelDataset", "TorchModelDataset"]
