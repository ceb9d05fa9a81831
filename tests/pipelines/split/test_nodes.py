import numpy as np
import pytest

from fashion_transfer.errors import ParameterError
from fashion_transfer.params import validate_parameters
from fashion_transfer.pipelines.split.nodes import split_stages
from tests.conftest import SPLIT_PARAMS, project_parameters


def test_stages_hold_their_classes_reindexed_with_names(fashion_mnist):
    pretrain, transfer = split_stages(fashion_mnist, SPLIT_PARAMS)
    assert pretrain["class_names"] == ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat"]
    assert transfer["class_names"] == ["Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    assert transfer["source_classes"] == [5, 6, 7, 8, 9]
    for stage in (pretrain, transfer):
        for part in ("train", "val", "test"):
            assert set(np.unique(stage[f"{part}_labels"])) == {0, 1, 2, 3, 4}
    # Re-indexing keeps each image with its class: synthetic images encode the label.
    original = fashion_mnist["test_images"][fashion_mnist["test_labels"] == 7]
    assert np.array_equal(transfer["test_images"][transfer["test_labels"] == 2], original)


def test_validation_is_a_stratified_fraction_of_train_and_test_is_untouched(fashion_mnist):
    pretrain, _ = split_stages(fashion_mnist, SPLIT_PARAMS)
    assert len(pretrain["val_labels"]) == 60  # 20% of 5 x 60
    assert np.array_equal(np.bincount(pretrain["val_labels"]), np.full(5, 12))
    assert len(pretrain["test_labels"]) == 100  # all test images of classes 0-4
    train_and_val = np.concatenate([pretrain["train_images"], pretrain["val_images"]])
    assert len({image.tobytes() for image in train_and_val}) == 300


def test_split_is_seeded(fashion_mnist):
    first, _ = split_stages(fashion_mnist, SPLIT_PARAMS)
    again, _ = split_stages(fashion_mnist, SPLIT_PARAMS)
    other, _ = split_stages(fashion_mnist, {**SPLIT_PARAMS, "seed": 1})
    assert np.array_equal(first["val_images"], again["val_images"])
    assert not np.array_equal(first["val_images"], other["val_images"])


def test_max_examples_limits_each_stage(fashion_mnist):
    pretrain, transfer = split_stages(fashion_mnist, {**SPLIT_PARAMS, "max_examples_per_stage": 50})
    for stage in (pretrain, transfer):
        assert len(stage["train_labels"]) + len(stage["val_labels"]) == 50
        assert len(stage["test_labels"]) == 50


def test_custom_class_sets(fashion_mnist):
    params = {**SPLIT_PARAMS, "pretrain_classes": [9, 0, 3], "transfer_classes": [1, 2]}
    pretrain, transfer = split_stages(fashion_mnist, params)
    assert pretrain["class_names"] == ["Ankle boot", "T-shirt/top", "Dress"]
    assert np.array_equal(
        pretrain["test_images"][pretrain["test_labels"] == 0],
        fashion_mnist["test_images"][fashion_mnist["test_labels"] == 9],
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"transfer_classes": [4, 5, 6]}, "overlap on [4]"),
        ({"pretrain_classes": []}, "split.pretrain_classes"),
        ({"transfer_classes": [5, 10]}, "outside 0-9"),
        ({"validation_fraction": 1.5}, "split.validation_fraction"),
        ({"validation_fraction": 0}, "split.validation_fraction"),
        ({"max_examples": 10}, "split.max_examples"),
    ],
)
def test_invalid_split_parameters_stop_before_training(change, expected):
    params = project_parameters()
    params["split"] = {**params["split"], **change}
    with pytest.raises(ParameterError, match="Invalid parameters") as info:
        validate_parameters(params)
    assert expected in str(info.value)
