"""What the `kedro` command imports at every start (`kedro --help` too): the project's settings
(hooks, config loader), its CLI and the dataset package. PyTorch and MLflow take seconds to
import; the hooks and datasets import them where they are used."""

import subprocess
import sys

CHECK = """
import sys
import fashion_transfer.cli, fashion_transfer.datasets, fashion_transfer.settings
from fashion_transfer.datasets import IDXDataset, WholeFileDataset
heavy = ("torch", "mlflow", "sqlalchemy", "optuna", "onnx", "onnxruntime", "sklearn")
print("imported:", *[name for name in heavy if name in sys.modules])
"""


def test_settings_cli_and_datasets_import_neither_pytorch_nor_mlflow():
    result = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, check=True
    )
    imported = result.stdout.strip().splitlines()[-1]  # after Kedro's logging notice
    assert imported == "imported:", imported


def test_the_dataset_package_still_names_each_dataset():
    import fashion_transfer.datasets as datasets

    assert datasets.TorchModelDataset.__name__ == "TorchModelDataset"
    assert set(datasets.__all__) <= set(dir(datasets))
    try:
        datasets.NoSuchDataset  # noqa: B018
    except AttributeError as error:
        assert "NoSuchDataset" in str(error)
    else:
        raise AssertionError("an unknown name must raise AttributeError, as Kedro expects")
