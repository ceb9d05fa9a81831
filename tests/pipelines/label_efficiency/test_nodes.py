"""The label-efficiency study on synthetic data: subsets, arms, budget, summary and plot."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from fashion_transfer.errors import ParameterError
from fashion_transfer.model import FashionCNN
from fashion_transfer.pipelines.label_efficiency import nodes
from fashion_transfer.pipelines.label_efficiency.nodes import (
    balanced_subset,
    compare_arms,
    plot,
    summarise,
)
from tests.conftest import RUNTIME_PARAMS, SPLIT_PARAMS, TRAINING_PARAMS

TRANSFER = {**TRAINING_PARAMS, "epochs": 2, "fine_tune_epochs": 1, "scratch_baseline": True}
STUDY = {
    "labels_per_class": [2, 5, "all"],
    "seeds": [0, 1],
    "min_epoch_images": 64,
    "transfer_recipes": {"transfer": {}, "head only": {"fine_tune_epochs": 0}},
}


@pytest.mark.parametrize("per_class", [1, 7, 48])
def test_subsets_are_balanced_seeded_and_distinct_between_seeds(per_class):
    labels = np.repeat(np.arange(5), 48)
    index = balanced_subset(labels, per_class, seed=3)
    assert np.bincount(labels[index]).tolist() == [per_class] * 5
    assert len(set(index)) == len(index)
    assert np.array_equal(index, balanced_subset(labels, per_class, seed=3))
    if per_class < 48:
        assert not np.array_equal(index, balanced_subset(labels, per_class, seed=4))
    assert len(balanced_subset(labels, None, seed=3)) == len(labels)


def test_every_size_seed_and_arm_is_trained_and_scored(stage_data, monkeypatch):
    trained = []
    original = nodes.transfer

    def recording_transfer(model, data, recipe, runtime, cache):
        trained.append((len(data["train_labels"]), recipe))
        return original(model, data, recipe, runtime, cache)

    monkeypatch.setattr(nodes, "transfer", recording_transfer)
    table = compare_arms(FashionCNN("seed", 5), stage_data[1], STUDY, TRANSFER, RUNTIME_PARAMS)
    assert len(table) == 3 * 2 * 3
    assert set(table["arm"]) == {"transfer", "head only", "scratch"}
    assert sorted(set(table["images_per_class"])) == [2, 5, 48]
    assert list(table["labels_per_class"].unique()) == [2, 5, "all"]
    # Same budget for every arm: the recipe's epochs, each of at least 64 images.
    epochs = table.set_index("arm")["epochs"].groupby("arm").unique()
    assert list(epochs["transfer"]) == [3] and list(epochs["scratch"]) == [3]
    assert list(epochs["head only"]) == [2]
    assert {recipe["min_epoch_images"] for _, recipe in trained} == {64}
    assert {recipe["seed"] for _, recipe in trained} == {0, 1}
    assert sorted({size for size, _ in trained}) == [10, 25, 240]
    # Real counts on the stage's test images: each accuracy is a whole number of them.
    correct = table["test_accuracy"] * len(stage_data[1]["test_labels"])
    np.testing.assert_allclose(correct, correct.round(), atol=1e-6)
    assert table["test_accuracy"].between(0, 1).all() and (table["seconds"] > 0).all()
    # The whole split trains transfer well on this easy data.
    whole = table[(table["labels_per_class"] == "all") & (table["arm"] == "transfer")]
    assert (whole["test_accuracy"] > 0.9).all()


def test_a_size_larger_than_a_class_is_an_error_not_a_cap(stage_data):
    study = {**STUDY, "labels_per_class": [5, 49]}
    with pytest.raises(ParameterError, match=r"\[49\] asks for more examples per class than"):
        compare_arms(FashionCNN("seed", 5), stage_data[1], study, TRANSFER, RUNTIME_PARAMS)


def _table(accuracy: dict[str, list[float]]) -> pd.DataFrame:
    sizes = [10, 100, 1000]
    return pd.DataFrame(
        [
            {
                "labels_per_class": size,
                "images_per_class": size,
                "seed": seed,
                "arm": arm,
                "val_accuracy": value,
                "test_accuracy": value + 0.01 * (seed - 0.5),
                "epochs": 3,
                "seconds": 1.0,
            }
            for arm, values in accuracy.items()
            for size, value in zip(sizes, values, strict=True)
            for seed in (0, 1)
        ]
    )


def test_summary_finds_where_the_curves_meet_and_the_labels_saved():
    table = _table({"transfer": [0.80, 0.90, 0.95], "scratch": [0.60, 0.85, 0.96]})
    summary, findings, metrics = summarise(table)
    row = summary.set_index(["arm", "per_class"]).loc[("transfer", 10)]
    assert row["test_accuracy"] == pytest.approx(0.80)
    assert (row["test_min"], row["test_max"]) == pytest.approx((0.795, 0.805))
    found = findings["transfer"]
    assert found["lead_in_points"] == {10: 20.0, 100: 5.0, 1000: -1.0}
    assert found["scratch_catches_up_at"] == 1000
    # Scratch's 85% at 100 labels: transfer reaches it halfway (in log size) from 10 to 100.
    saved = found["labels_for_scratch_accuracy"][100]
    assert saved["transfer_labels_per_class"] == pytest.approx(31.6, abs=0.1)
    assert saved["labels_saved_factor"] == pytest.approx(3.16, abs=0.01)
    assert not saved["at_most"]
    # Scratch's 60% at 10 labels: transfer does better at its smallest size already, so 10
    # labels is all the study can say (transfer might need fewer).
    smallest = found["labels_for_scratch_accuracy"][10]
    assert smallest["transfer_labels_per_class"] == 10 and smallest["at_most"]
    assert 1000 not in found["labels_for_scratch_accuracy"]  # transfer never reaches 96%
    assert metrics["label_efficiency/transfer/test_accuracy"] == [
        {"step": 10, "value": pytest.approx(0.80)},
        {"step": 100, "value": pytest.approx(0.90)},
        {"step": 1000, "value": pytest.approx(0.95)},
    ]


def test_plot_has_a_log_axis_labelled_with_the_sizes_and_the_classes():
    summary, _, _ = summarise(_table({"transfer": [0.8, 0.9, 0.95], "scratch": [0.6, 0.8, 0.9]}))
    figure = plot(summary, {**SPLIT_PARAMS, "transfer_classes": [5, 8]})
    assert isinstance(figure, Figure)
    ax = figure.axes[0]
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["10", "100", "1000"]
    assert [line.get_label() for line in ax.get_lines()] == ["scratch", "transfer"]
    assert ax.get_ylabel() == "test accuracy on classes 5, 8 (%)"
