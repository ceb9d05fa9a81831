"""The ONNX graph of every kind of model the project registers, against PyTorch."""

import json

import numpy as np
import onnxruntime
import pytest
import torch

from fashion_transfer.export import TOLERANCE, check_parity, to_onnx
from fashion_transfer.model import FashionCNN, ProbabilityEnsemble
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
