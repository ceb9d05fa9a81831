import io
import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fashion_transfer.datasets import PicturesFolderDataset
from fashion_transfer.pipelines.predict import nodes
from fashion_transfer.pipelines.predict.nodes import classify_images
from fashion_transfer.served_model.contract import MAX_PICTURE_BYTES


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


def _png(image: Image.Image):
    def read() -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        return buffer.getvalue()

    return read


def _unreadable():
    return b"not a picture"


def test_each_file_gets_a_prediction_or_the_reason_it_was_skipped():
    light = np.zeros((28, 28), np.uint8)
    light[10:18, 10:18] = 255
    images = {
        "b.png": _png(Image.fromarray(light).resize((90, 90)).convert("RGB")),
        "a.png": _png(Image.fromarray(np.zeros((28, 28), np.uint8))),
        "notes.txt": _unreadable,
    }
    classifier = FakeClassifier()
    table = classify_images(images, classifier)
    assert list(table["file"]) == ["a.png", "b.png", "notes.txt"]
    assert list(table["class_name"][:2]) == ["Sandal", "Sneaker"]
    assert table["label"].tolist()[:2] == [5, 7] and pd.isna(table["label"][2])
    assert table["error"][2].startswith("skipped: not a picture in a known format (PNG")
    assert classifier.batch.shape == (2, 28, 28) and classifier.batch.dtype == np.float32


def test_a_folder_with_no_readable_image_gives_only_reasons():
    table = classify_images({"x.txt": _unreadable}, FakeClassifier())
    assert table["error"].notna().all() and len(table) == 1


def test_a_folder_larger_than_the_model_batch_limit_is_classified_in_chunks(monkeypatch):
    monkeypatch.setattr(nodes, "MAX_BATCH", 2)
    dark = np.zeros((28, 28), np.uint8)
    images = {f"{i}.png": _png(Image.fromarray(dark)) for i in range(5)}
    classifier = FakeClassifier()
    table = classify_images(images, classifier)
    assert classifier.batch_sizes == [2, 2, 1]
    assert list(table["file"]) == [f"{i}.png" for i in range(5)]
    assert (table["class_name"] == "Sandal").all() and table["error"].isna().all()


def test_hidden_files_are_skipped_and_an_empty_folder_says_where_to_put_pictures():
    dark = np.zeros((28, 28), np.uint8)
    table = classify_images(
        {".gitkeep": _unreadable, "a.png": _png(Image.fromarray(dark))}, FakeClassifier()
    )
    assert list(table["file"]) == ["a.png"]
    with pytest.raises(ValueError, match="no images to classify.*predict_images=PATH"):
        classify_images({".gitkeep": _unreadable}, FakeClassifier())


def test_a_folder_of_anything_is_read_in_bounded_time_and_memory(tmp_path):
    """A pipe (reading one waits for a writer for ever), a link to a device, a file too
    large to be a picture and a picture announcing a billion pixels: each gets its reason
    in its row, and the real picture is classified."""
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(folder / "sub" / "dark.png")
    os.mkfifo(folder / "pipe.png")
    (folder / "zeros.png").symlink_to("/dev/zero")
    with (folder / "huge.png").open("wb") as file:
        file.truncate(MAX_PICTURE_BYTES + 1)
    (folder / ".hidden.png").write_bytes(b"x")
    images = PicturesFolderDataset(path=str(folder)).load()
    assert sorted(images) == ["huge.png", "pipe.png", "sub/dark.png", "zeros.png"]
    table = classify_images(images, FakeClassifier()).set_index("file")
    assert table.loc["sub/dark.png", "class_name"] == "Sandal"
    for name in ("pipe.png", "zeros.png"):
        assert (
            table.loc[name, "error"] == "skipped: not a regular file (a pipe, a device or a socket)"
        )
    assert table.loc["huge.png", "error"].startswith("skipped: 10 MB, over the 10 MB")
