import numpy as np
import pytest
from PIL import Image

from fashion_transfer.model import FashionCNN
from fashion_transfer.serving import InvalidImagesError, classify, scale_images, to_model_image

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


def test_classify_returns_label_name_confidence_and_probabilities():
    table = classify(FashionCNN("seed", 5), np.zeros((4, 28, 28), np.uint8), NAMES, [5, 6, 7, 8, 9])
    assert list(table.columns) == ["label", "class_name", "confidence", *NAMES]
    np.testing.assert_allclose(table[NAMES].sum(axis=1), 1, rtol=1e-5)
    assert (table["confidence"] == table[NAMES].max(axis=1)).all()
    assert set(table["label"]) <= {5, 6, 7, 8, 9}
    assert [NAMES[label - 5] for label in table["label"]] == list(table["class_name"])


def test_pictures_are_converted_the_way_fashion_mnist_looks():
    item = np.zeros((28, 28), np.uint8)
    item[6:22, 10:18] = 200  # a light item on a dark background, as in Fashion-MNIST
    assert np.array_equal(to_model_image(Image.fromarray(item)), item)

    photo = Image.fromarray(255 - item).resize((140, 140)).convert("RGB")  # dark on white, big
    converted = to_model_image(photo)
    assert converted.shape == (28, 28) and converted.dtype == np.uint8
    assert converted[14, 14] > 150 and converted[1, 1] < 30

    wide = to_model_image(Image.fromarray(item).resize((56, 28)))  # padded to a square
    assert wide.shape == (28, 28) and wide[:6].max() == 0
