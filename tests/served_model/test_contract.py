"""What a served model takes and gives back (fashion_transfer/served_model/contract.py)."""

import numpy as np
import pytest

from fashion_transfer.served_model.contract import (
    InvalidImagesError,
    images_from_input,
    result_table,
    scale_images,
)

NAMES = ["Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def test_uint8_and_float_scales_are_both_accepted():
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28)).astype(np.uint8)
    np.testing.assert_allclose(scale_images(images), images / 255.0, rtol=1e-6)
    np.testing.assert_allclose(scale_images(images / 255.0), images / 255.0, rtol=1e-6)
    assert scale_images(images[0]).shape == (1, 28, 28)  # a single image is a batch of one


@pytest.mark.parametrize(
    ("images", "expected"),
    [
        (np.zeros((2, 28, 27)), "shape (2, 28, 27)"),
        (np.zeros((0, 28, 28)), "holds 0 images"),
        (np.full((1, 28, 28), np.nan), "NaN or infinite"),
        (np.full((1, 28, 28), np.inf), "NaN or infinite"),
        (np.full((1, 28, 28), 256.0), "range from 256.0"),
        (np.full((1, 28, 28), -0.5), "range from -0.5"),
        ([["a"] * 28] * 28, "not numeric"),
    ],
)
def test_bad_input_says_what_is_expected(images, expected):
    with pytest.raises(InvalidImagesError) as info:
        scale_images(images)
    assert expected in str(info.value) and "28x28 greyscale images" in str(info.value)


def test_the_table_has_label_name_confidence_and_probabilities():
    probabilities = np.random.default_rng(0).dirichlet(np.ones(5), size=4).astype(np.float32)
    table = result_table(probabilities, NAMES, [5, 6, 7, 8, 9])
    assert list(table.columns) == ["label", "class_name", "confidence", *NAMES]
    np.testing.assert_allclose(table[NAMES].to_numpy(), probabilities, rtol=1e-6)
    assert (table["confidence"] == table[NAMES].max(axis=1)).all()
    assert list(table["label"]) == list(5 + probabilities.argmax(axis=1))
    assert [NAMES[label - 5] for label in table["label"]] == list(table["class_name"])


@pytest.mark.parametrize(
    ("model_input", "expected"),
    [
        ({"pixels": [1]}, "fields ['pixels']"),
        (np.array(["not base64!"]), "picture 0: not base64 text"),
        ({"image": np.array([""])}, "picture 0: empty"),
        (np.array([], dtype=object), "holds 0 pictures"),
    ],
)
def test_input_in_neither_form_says_what_is_expected(model_input, expected):
    with pytest.raises(InvalidImagesError) as info:
        images_from_input(model_input)
    assert expected in str(info.value) and "encoded pictures" in str(info.value), info.value
