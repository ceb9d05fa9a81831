import io
import os
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fashion_transfer.datasets import PicturesFolderDataset
from fashion_transfer.pipelines.predict import nodes
from fashion_transfer.pipelines.predict.nodes import classify_images
from fashion_transfer.served_model.contract import MAX_PICTURE_BYTES
from tests.picture_fuzzing import mutant, seed_corpus, with_size

FOUND = Path(__file__).parents[2] / "fixtures" / "pictures-found-by-fuzzing"


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
    # 40,000 x 25,000 pixels announced by a 100-byte PNG: Pillow itself refuses to open it
    billion = with_size(seed_corpus()["PNG/grey"], 40_000, 25_000)
    assert struct.unpack(">II", billion[16:24]) == (40_000, 25_000)  # IHDR's width, height
    (folder / "billion.png").write_bytes(billion)
    (folder / ".hidden.png").write_bytes(b"x")
    images = PicturesFolderDataset(path=str(folder)).load()
    assert sorted(images) == ["billion.png", "huge.png", "pipe.png", "sub/dark.png", "zeros.png"]
    table = classify_images(images, FakeClassifier()).set_index("file")
    assert table.loc["sub/dark.png", "class_name"] == "Sandal"
    for name in ("pipe.png", "zeros.png"):
        assert (
            table.loc[name, "error"] == "skipped: not a regular file (a pipe, a device or a socket)"
        )
    assert table.loc["huge.png", "error"].startswith("skipped: 10 MB, over the 10 MB")
    assert table.loc["billion.png", "error"] == (
        "skipped: the size its header announces is over the 50 megapixels taken; scale it "
        "down first"
    )


def test_hostile_pictures_are_each_classified_or_skipped_with_the_reason():
    """Every picture of the fuzzing corpus that decodes small, the inputs the fuzzer found
    and mutants of them, in one folder with a good picture: one row each, the class or
    `skipped:` and the picture's one-paragraph error; the good one is classified."""
    corpus = seed_corpus()
    hostile = {name: data for name, data in corpus.items() if "49mp" not in name}
    hostile |= {path.name: path.read_bytes() for path in FOUND.iterdir()}
    hostile |= {f"mutant-{index}": mutant(11, index)[1] for index in range(100)}
    images = {f"{name.replace('/', '-')}.bin": (lambda d=data: d) for name, data in hostile.items()}
    light = np.zeros((28, 28), np.uint8)
    light[10:18, 10:18] = 255
    images["good.png"] = _png(Image.fromarray(light))
    table = classify_images(images, FakeClassifier()).set_index("file")
    assert sorted(table.index) == sorted(images)
    assert table.loc["good.png", "class_name"] == "Sneaker"
    skipped = table["error"].dropna()
    assert 0 < len(skipped) < len(table) - 1
    assert skipped.str.startswith("skipped: ").all()
    assert not skipped.str.contains("\n").any()
    assert table.loc[skipped.index, "class_name"].isna().all()
    assert table.drop(skipped.index)["class_name"].notna().all()
