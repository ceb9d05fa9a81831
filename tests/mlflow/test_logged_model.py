"""A logged model as MLflow loads it: the served model's code, its ONNX graph and checkpoint,
against a throw-away SQLite tracking store."""

import base64
import io
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from kedro.io import DatasetError
from mlflow.exceptions import MlflowException
from PIL import Image

from fashion_transfer.datasets import TorchModelDataset
from fashion_transfer.export import to_onnx
from fashion_transfer.mlflow.logged_model import REQUIREMENTS, log_classifier, read_checkpoint
from fashion_transfer.model import FashionCNN, ProbabilityEnsemble
from fashion_transfer.training import predict_proba
from tests.conftest import synthetic_images

NAMES = ["Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
CLASSES = [5, 6, 7, 8, 9]


def _stage(seed: int = 0, count: int = 6) -> dict:
    # Dark behind a light item, as Fashion-MNIST is (a light border would be inverted).
    images = synthetic_images(np.arange(count) % 5, seed=seed)
    return {"test_images": images, "class_names": NAMES, "source_classes": CLASSES}


def _log(model, stage: dict, name: str):
    with mlflow.start_run():
        return log_classifier(model, to_onnx(model, NAMES, CLASSES), stage, name)


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_logged_model_answers_pixels_and_pictures_as_pytorch_does(store):
    torch.manual_seed(0)
    model = FashionCNN("compact", 5).eval()
    stage = _stage()
    info = _log(model, stage, "fashion-test")
    assert str(info.registered_model_version) == "1"
    loaded = mlflow.pyfunc.load_model("models:/fashion-test/1")

    images = stage["test_images"]
    expected = predict_proba(model, images, device="cpu")
    table = loaded.predict(images.astype(np.float32))  # 0-255 scale
    assert list(table.columns) == ["label", "class_name", "confidence", *NAMES]
    np.testing.assert_allclose(table[NAMES].to_numpy(), expected, atol=1e-5)
    assert list(table["label"]) == [CLASSES[i] for i in expected.argmax(axis=1)]
    assert list(table["class_name"]) == [NAMES[i] for i in expected.argmax(axis=1)]
    scaled = loaded.predict(images.astype(np.float32) / 255)  # 0-1 scale
    np.testing.assert_allclose(scaled[NAMES].to_numpy(), expected, atol=1e-5)

    # The same images as PNG files: base64 in a table's `image` column (the scoring server's
    # dataframe_split), in a dict (`inputs`), or as bytes in process.
    pictures = [_png(image) for image in images]
    encoded = [base64.b64encode(picture).decode() for picture in pictures]
    for request in (pd.DataFrame({"image": encoded}), {"image": np.array(encoded)}, pictures):
        answer = loaded.predict(request)
        np.testing.assert_allclose(answer[NAMES].to_numpy(), expected, atol=1e-5)

    with pytest.raises(MlflowException, match="NaN or infinite") as error:
        loaded.predict(np.full((1, 28, 28), np.nan, np.float32))
    assert error.value.error_code == "INVALID_PARAMETER_VALUE"  # answered with HTTP 400
    with pytest.raises(MlflowException, match="picture 1: not a picture"):
        loaded.predict(pd.DataFrame({"image": [encoded[0], base64.b64encode(b"hi").decode()]}))


def test_a_logged_model_carries_the_served_model_only_and_its_requirements(store):
    _log(FashionCNN("compact", 5), _stage(), "fashion-test")
    folder = Path(mlflow.artifacts.download_artifacts("models:/fashion-test/1"))
    assert sorted(path.name for path in (folder / "code").iterdir()) == ["served_model"]
    assert (
        not list((folder / "code").rglob("torch*")) and (folder / "artifacts/model.onnx").is_file()
    )
    requirements = (folder / "requirements.txt").read_text().split()
    assert [line.split("==")[0] for line in requirements] == list(REQUIREMENTS)
    assert all("==" in line for line in requirements)


def test_logging_a_model_checks_its_requirements_without_scanning_every_package(store, monkeypatch):
    # MLflow maps the modules of every installed distribution (seconds with PyTorch installed)
    # to check the pinned requirements; log_classifier tells it those of the requirements.
    # (MLflow swallows any error inside its check, so the scan is recorded, not refused.)
    from mlflow.utils import requirements_utils

    scans = []
    monkeypatch.setattr(requirements_utils, "_MODULES_TO_PACKAGES", None)
    monkeypatch.setattr(
        requirements_utils.importlib_metadata,
        "packages_distributions",
        lambda: scans.append(1) or {},
    )
    checked = []
    satisfied = requirements_utils._check_requirement_satisfied
    monkeypatch.setattr(
        requirements_utils,
        "_check_requirement_satisfied",
        lambda requirement: checked.append(satisfied(requirement)) or checked[-1],
    )
    _log(FashionCNN("compact", 5), _stage(), "fashion-test")
    assert scans == []
    assert checked and not any(checked)  # every requirement checked, and met
    assert requirements_utils._MODULES_TO_PACKAGES is None  # MLflow's own map is left unset
    # What it was told is what it finds by scanning the whole environment.
    monkeypatch.undo()
    requirements_utils._init_packages_to_modules_map()
    for name, module in REQUIREMENTS.items():
        assert requirements_utils._PACKAGES_TO_MODULES[name] == module, name


def test_an_ensemble_serves_the_mean_of_its_members_and_cannot_be_transferred(store):
    stage = _stage(seed=1, count=8)
    torch.manual_seed(0)
    members = [FashionCNN("seed", 5), FashionCNN("compact", 5)]
    _log(ProbabilityEnsemble(members), stage, "fashion-ensemble-test")
    table = mlflow.pyfunc.load_model("models:/fashion-ensemble-test/1").predict(
        stage["test_images"].astype(np.float32)
    )
    expected = sum(predict_proba(member, stage["test_images"]) for member in members) / 2
    np.testing.assert_allclose(table[NAMES].to_numpy(), expected, atol=1e-5)
    pretrained = TorchModelDataset(
        filepath="unused.pt", load_from="models:/fashion-ensemble-test/1"
    )
    with pytest.raises(DatasetError, match="is an ensemble .* Give a pretrained model"):
        pretrained.load()


def test_the_checkpoint_of_a_registered_model_is_the_model(store):
    torch.manual_seed(3)
    model = FashionCNN("compact", 5)
    _log(model, _stage(), "fashion-test")
    loaded = read_checkpoint("models:/fashion-test/1")
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
