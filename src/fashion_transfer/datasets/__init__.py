"""Kedro datasets that kedro-datasets and kedro-mlflow do not have: IDX files, PyTorch model
weights, a folder of pictures read safely, any file dataset written whole or not at all; and
kedro-mlflow's registered-model dataset with an error that gives the fix."""

from .idx_dataset import IDXDataset
from .pictures_folder_dataset import PicturesFolderDataset
from .registered_model_dataset import RegisteredModelDataset
from .torch_model_dataset import TorchModelDataset
from .whole_file_dataset import WholeFileDataset

__all__ = [
    "IDXDataset",
    "PicturesFolderDataset",
    "RegisteredModelDataset",
    "TorchModelDataset",
    "WholeFileDataset",
]
