import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fashion_transfer.pipelines.predict import nodes
from fashion_transfer.pipelines.predict.nodes import classify_images


class FakeClassifier:
    """Predicts by the brightness of the centre pixel, and records what it was given."""

    def __init__(self):
        self.batch_sizes = []

    def predict(self, batch):
        self.batch = batch
        self.batch_sizes.append(len(batch))
        bright = batch[:, 14, 14] > 0.5
        return pd.DataFrame(
            {
                "label": np.where(bright, 7, 5),
                "class_name": np.where(bright, "Sneaker", "Sandal"),
                "confidence": np.full(len(batch), 0.9),
            }
        )


def _unreadable():
    raise OSError("cannot identify image file")


def test_each_file_gets_a_prediction_or_the_reason_it_was_skipped():
    light = np.zeros((28, 28), np.uint8)
    light[10:18, 10:18] = 255
    images = {
        "b.png": lambda: Image.fromarray(light).resize((90, 90)).convert("RGB"),
        "a.png": lambda: Image.fromarray(np.zeros((28, 28), np.uint8)),
        "notes.txt": _unreadable,
    }
    classifier = FakeClassifier()
    table = classify_images(images, classifier)
    assert list(table["file"]) == ["a.png", "b.png", "notes.txt"]
    assert list(table["class_name"][:2]) == ["Sandal", "Sneaker"]
    assert table["label"].tolist()[:2] == [5, 7] and pd.isna(table["label"][2])
    assert "skipped: not a readable image (OSError)" == table["error"][2]
    assert classifier.batch.shape == (2, 28, 28) and classifier.batch.dtype == np.float32


def test_a_folder_with_no_readable_image_gives_only_reasons():
    table = classify_images({"x.txt": _unreadable}, FakeClassifier())
    assert table["error"].notna().all() and len(table) == 1


def test_a_folder_larger_than_the_model_batch_limit_is_classified_in_chunks(monkeypatch):
    monkeypatch.setattr(nodes, "MAX_BATCH", 2)
    dark = np.zeros((28, 28), np.uint8)
    images = {f"{i}.png": (lambda: Image.fromarray(dark)) for i in range(5)}
    classifier = FakeClassifier()
    table = classify_images(images, classifier)
    assert classifier.batch_sizes == [2, 2, 1]
    assert list(table["file"]) == [f"{i}.png" for i in range(5)]
    assert (table["class_name"] == "Sandal").all() and table["error"].isna().all()


def test_hidden_files_are_skipped_and_an_empty_folder_says_where_to_put_pictures():
    dark = np.zeros((28, 28), np.uint8)
    table = classify_images(
        {".gitkeep": _unreadable, "a.png": lambda: Image.fromarray(dark)}, FakeClassifier()
    )
    assert list(table["file"]) == ["a.png"]
    with pytest.raises(ValueError, match="no images to classify.*predict_images=PATH"):
        classify_images({".gitkeep": _unreadable}, FakeClassifier())
