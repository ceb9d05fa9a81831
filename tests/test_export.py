"""The ONNX graph of every kind of model the project registers, against PyTorch."""

import json

import numpy as np
import onnxruntime
import pytest
import torch

from fashion_transfer import export
from fashion_transfer.export import EXPORTERS, TOLERANCE, check_parity, to_onnx
from fashion_transfer.model import FashionCNN, ProbabilityEnsemble, ServedClassifier
from fashion_transfer.training import predict_proba
from tests.conftest import synthetic_images

NAMES = ["Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
IMAGES = synthetic_images(np.arange(200) % 10, seed=5)


def _models():
    torch.manual_seed(0)
    return {
        "bn2": FashionCNN("bn2", 5),
        "bn2 with the mirror average": FashionCNN("bn2", 5, mirror_average=True),
        "ensemble": ProbabilityEnsemble([FashionCNN("bn2", 5), FashionCNN("compact", 5)]),
    }


@pytest.mark.parametrize("name", list(_models()))
def test_the_graph_computes_the_model_s_probabilities_for_any_batch_size(name):
    model = _models()[name].eval()
    graph = to_onnx(model, NAMES, [5, 6, 7, 8, 9])
    parity = check_parity(graph, model, IMAGES)
    assert parity.holds and parity.max_difference <= TOLERANCE, parity.describe()
    session = onnxruntime.InferenceSession(graph)
    metadata = session.get_modelmeta().custom_metadata_map
    assert json.loads(metadata["class_names"]) == NAMES
    assert json.loads(metadata["source_classes"]) == [5, 6, 7, 8, 9]
    expected = predict_proba(model, IMAGES, device="cpu")
    for size in (1, 7, 200):  # the batch dimension is dynamic
        batch = IMAGES[:size].astype(np.float32) / 255
        (probabilities,) = session.run(None, {"images": batch})
        np.testing.assert_allclose(probabilities, expected[:size], atol=TOLERANCE)


def test_a_graph_that_computes_something_else_fails_the_check():
    torch.manual_seed(0)
    exported, other = FashionCNN("compact", 5).eval(), FashionCNN("compact", 5).eval()
    parity = check_parity(to_onnx(exported, NAMES, [5, 6, 7, 8, 9]), other, IMAGES)
    assert not parity.holds
    assert parity.max_difference > TOLERANCE and parity.disagreements > 0
    assert "validation images" in parity.describe()


def test_the_check_takes_a_seeded_sample_of_the_images_when_asked():
    torch.manual_seed(0)
    exported, other = FashionCNN("compact", 5).eval(), FashionCNN("compact", 5).eval()
    graph = to_onnx(exported, NAMES, [5, 6, 7, 8, 9])
    sampled = check_parity(graph, other, IMAGES, sample=50, seed=3)
    assert sampled.images == 50 and not sampled.holds
    assert check_parity(graph, other, IMAGES, sample=50, seed=3) == sampled
    assert check_parity(graph, exported, IMAGES, sample=50, seed=3).holds
    assert check_parity(graph, exported, IMAGES, sample=10_000).images == len(IMAGES)


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_a_served_classifier_s_graph_gives_its_score_and_decision_with_either_exporter(exporter):
    torch.manual_seed(0)
    model = ServedClassifier(FashionCNN("compact", 5), "energy_mahalanobis").eval()
    batch = torch.from_numpy(IMAGES).float().div(255).unsqueeze(1)
    labels = np.arange(len(IMAGES)) % 5
    with torch.inference_mode():
        logits, features = model.classifier.logits_and_embedding(batch)
    model.recogniser.fit(features.numpy(), labels)
    model.temperature.fill_(1.7)
    model.recogniser.fit_standardisation(logits / 1.7, features)
    with torch.inference_mode():
        _, scores = model.recognise(batch)
    model.recogniser.set_threshold(scores.numpy(), 0.5)  # half the images recognised
    graph = to_onnx(model, NAMES, [5, 6, 7, 8, 9], exporter)
    parity = check_parity(graph, model, IMAGES)
    assert parity.holds, parity.describe()
    session = onnxruntime.InferenceSession(graph)
    assert [output.name for output in session.get_outputs()] == [
        "probabilities",
        "ood_score",
        "recognised",
    ]
    metadata = session.get_modelmeta().custom_metadata_map
    assert metadata["ood_score"] == "energy_mahalanobis"
    assert float(metadata["temperature"]) == pytest.approx(1.7)
    _, served_scores, recognised = session.run(None, {"images": IMAGES[:9] / np.float32(255)})
    assert recognised.dtype == bool and len(served_scores) == 9
    assert 0 < parity.images and recognised.any() != recognised.all()  # both answers occur


def test_an_unknown_exporter_is_refused_by_name():
    with pytest.raises(ValueError, match="Unknown ONNX exporter 'jit'"):
        to_onnx(FashionCNN("compact", 5), NAMES, [5, 6, 7, 8, 9], "jit")


def test_where_the_torchscript_exporter_fails_the_graph_comes_from_torch_export(
    monkeypatch, caplog
):
    def gone(*args):
        raise RuntimeError("the TorchScript-based exporter was removed")

    monkeypatch.setattr(export, "_torchscript_graph", gone)
    model = FashionCNN("compact", 5).eval()
    graph = to_onnx(model, NAMES, [5, 6, 7, 8, 9])
    assert check_parity(graph, model, IMAGES).holds
    assert "was removed); exporting with its torch.export-based one" in caplog.text
