"""Training photos: training images rendered as photos and converted as served, added to a
stage's training split with their labels."""

import numpy as np
import pytest

from fashion_transfer.photos import add_training_photos


def _bars(count: int) -> dict:
    """A stage whose class 0 is a tall bar and class 1 a wide bar, on black, alternating."""
    tall = np.zeros((28, 28), np.uint8)
    tall[3:25, 11:17] = 220
    labels = np.arange(count) % 2
    images = np.stack([tall if label == 0 else tall.T for label in labels])
    return {
        "train_images": images,
        "train_labels": labels,
        "val_images": images[:4],
        "val_labels": labels[:4],
        "class_names": ["tall", "wide"],
    }


def _recipe(training_photos) -> dict:
    return {
        "epochs": 1,
        "batch_size": 8,
        "optimizer": "adam",
        "learning_rate": 0.001,
        "training_photos": training_photos,
        "seed": 5,
    }


def test_training_photos_are_training_images_seen_as_the_served_model_sees_a_photo():
    stage = _bars(20)
    added = add_training_photos(stage, _recipe(12))
    assert added["train_images"].shape == (32, 28, 28)
    assert added["train_images"].dtype == np.uint8
    np.testing.assert_array_equal(added["train_images"][:20], stage["train_images"])
    np.testing.assert_array_equal(added["train_labels"][:20], stage["train_labels"])
    assert added["val_images"] is stage["val_images"]  # validation is never photographed
    # Rendered and converted, not copies of the drawn images: no added image is a source image.
    for image in added["train_images"][20:]:
        assert not any(np.array_equal(image, source) for source in stage["train_images"][:2])
    for image, label in zip(added["train_images"][20:], added["train_labels"][20:], strict=True):
        rows, columns = np.nonzero(image > 64)
        height, width = np.ptp(rows) + 1, np.ptp(columns) + 1
        # Found in the photo, cropped, and as the bar of its label (turned at most 15 degrees).
        assert (height > 1.5 * width) if label == 0 else (width > 1.5 * height), (
            label,
            height,
            width,
        )
    again = add_training_photos(stage, _recipe(12))
    np.testing.assert_array_equal(again["train_images"], added["train_images"])
    other_seed = add_training_photos(stage, {**_recipe(12), "seed": 6})
    assert not np.array_equal(other_seed["train_images"][20:], added["train_images"][20:])


@pytest.mark.parametrize("none", [None, 0])
def test_without_training_photos_the_stage_is_unchanged(none):
    stage = _bars(6)
    assert add_training_photos(stage, _recipe(none)) is stage
