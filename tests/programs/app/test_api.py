"""The web app's HTTP API in process (FastAPI's test client), on a model logged to a
throw-away store: pictures in as a multipart upload, answers and errors out."""

import io

import mlflow
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from fashion_transfer.export import to_onnx
from fashion_transfer.mlflow.logged_model import log_classifier
from fashion_transfer.model import FashionCNN
from fashion_transfer.programs.app import api
from fashion_transfer.programs.app.api import create_api, load_model
from fashion_transfer.served_model.contract import MAX_PICTURE_BYTES
from fashion_transfer.training import predict_proba
from tests.conftest import synthetic_images

NAMES = ["Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        torch.manual_seed(0)
        model = FashionCNN("compact", 5).eval()
        labels = np.repeat(np.arange(5), 2)
        stage = {
            "test_images": synthetic_images(labels, seed=4),
            "test_labels": labels,
            "class_names": NAMES,
            "source_classes": [5, 6, 7, 8, 9],
        }
        mlflow.set_experiment("app-test")
        with mlflow.start_run():
            log_classifier(model, to_onnx(model, NAMES, stage["source_classes"]), stage, "app-test")
        mlflow.MlflowClient().set_registered_model_alias("app-test", "champion", "1")
        mlflow.MlflowClient().set_model_version_tag("app-test", "1", "val_accuracy", "0.900000")
        yield model, stage, load_model("models:/app-test@champion")


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


def test_the_model_is_named_with_its_version_alias_examples_and_accuracy(served):
    _, _, model = served
    assert model.describe() == {
        "uri": "models:/app-test@champion",
        "name": "app-test",
        "version": "1",
        "alias": "champion",
        "val_accuracy": 0.9,
    }
    assert model.class_names == NAMES
    assert [name.rsplit("/", 1)[-1] for name in model.examples] == [
        f"{label} {name}.png" for label, name in zip([5, 6, 7, 8, 9], NAMES, strict=True)
    ]
    health = TestClient(create_api(model)).get("/health")
    assert health.status_code == 200 and health.json()["model"]["version"] == "1"


def test_pictures_uploaded_as_a_form_are_classified_as_pytorch_does(served):
    network, stage, model = served
    images = stage["test_images"][:3]
    files = [("image", (f"{i}.png", _png(image), "image/png")) for i, image in enumerate(images)]
    answer = TestClient(create_api(model)).post("/predict", files=files)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"]["name"] == "app-test"
    expected = predict_proba(network, images, device="cpu")
    for prediction, row, name in zip(
        body["predictions"], expected, ["0.png", "1.png", "2.png"], strict=True
    ):
        assert prediction["file"] == name
        assert prediction["class_name"] == NAMES[int(row.argmax())]
        assert prediction["label"] == 5 + int(row.argmax())
        assert list(prediction["probabilities"]) == [NAMES[i] for i in np.argsort(-row)]
        np.testing.assert_allclose([prediction["probabilities"][n] for n in NAMES], row, atol=1e-5)


def test_bad_uploads_get_the_status_and_the_reason(served, monkeypatch):
    _, stage, model = served
    client = TestClient(create_api(model))
    good = ("image", ("boot.png", _png(stage["test_images"][0]), "image/png"))
    cut = ("image", ("cut.png", _png(stage["test_images"][1])[:-40], "image/png"))
    big = ("image", ("big.png", b"\0" * (MAX_PICTURE_BYTES + 1), "image/png"))
    cases = [
        ([("image", ("notes.png", b"not a picture", "image/png"))], 400, "notes.png: not a pic"),
        ([good, cut], 400, "cut.png: its pixel data is damaged"),  # the bad one of a batch
        ([("image", ("notes.txt", b"hello", "text/plain"))], 415, "notes.txt is text/plain"),
        ([("other", ("boot.png", b"x", "image/png"))], 400, "No picture"),
        ([big], 413, "big.png is over"),
    ]
    for files, status, reason in cases:
        answer = client.post("/predict", files=files)
        assert answer.status_code == status and reason in answer.json()["error"], answer.text
    monkeypatch.setattr(api, "MAX_FILES", 2)
    answer = TestClient(create_api(model)).post("/predict", files=[good] * 3)
    assert answer.status_code == 400 and "at most 2" in answer.json()["error"]
    answer = client.post("/predict", json={"image": "boot"})
    assert answer.status_code == 415 and "multipart/form-data" in answer.json()["error"]


def test_cors_is_off_unless_origins_are_given(served):
    _, _, model = served
    preflight = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
    closed = TestClient(create_api(model)).options("/predict", headers=preflight)
    assert "access-control-allow-origin" not in closed.headers
    opened = TestClient(create_api(model, ["https://shop.example"])).options(
        "/predict", headers=preflight
    )
    assert opened.headers["access-control-allow-origin"] == "https://shop.example"
    other = TestClient(create_api(model, ["https://shop.example"])).options(
        "/predict", headers={**preflight, "Origin": "https://elsewhere.example"}
    )
    assert "access-control-allow-origin" not in other.headers
