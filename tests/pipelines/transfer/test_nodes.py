import copy

import pytest
import torch

from fashion_transfer.model import ARCHITECTURES, FashionCNN
from fashion_transfer.params import TransferParams
from fashion_transfer.pipelines.transfer.nodes import (
    frozen_features,
    train_scratch_baseline,
    transfer,
)
from fashion_transfer.training import fit
from tests.conftest import (
    BFLOAT16_RUNTIME_PARAMS,
    NATIVE_BFLOAT16,
    RUNTIME_PARAMS,
    TRAINING_PARAMS,
)

TRANSFER_PARAMS = {**TRAINING_PARAMS, "scratch_baseline": True}


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_frozen_weights_are_bit_identical_after_transfer_training(
    stage_data, architecture, monkeypatch
):
    pretrained = FashionCNN(architecture, num_classes=5)
    # state_dict() includes BatchNorm running statistics, which change if features ever train.
    before = {k: v.clone() for k, v in pretrained.features.state_dict().items()}
    head_before = {k: v.clone() for k, v in pretrained.head.state_dict().items()}
    # The new head as transfer makes it, before any training step.
    fresh_head = {}
    new_head = FashionCNN.new_head

    def recording_new_head(self, *args, **kwargs):
        new_head(self, *args, **kwargs)
        fresh_head.update({k: v.clone() for k, v in self.head.state_dict().items()})

    monkeypatch.setattr(FashionCNN, "new_head", recording_new_head)

    model, history = transfer(pretrained, stage_data[1], TRANSFER_PARAMS, RUNTIME_PARAMS)

    after = model.features.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # Training moved every weight of the new head (parameters, not only buffers).
    trained = dict(model.head.named_parameters())
    assert trained and set(trained) <= set(fresh_head)
    assert not any(torch.equal(fresh_head[k], v) for k, v in trained.items())
    assert len(history) == TRAINING_PARAMS["epochs"]
    # The input model is left as it was: Kedro may hand the same object to other nodes.
    assert all(torch.equal(head_before[k], v) for k, v in pretrained.head.state_dict().items())


@pytest.mark.parametrize(
    ("architecture", "fine_tune_blocks", "frozen", "changed"),
    [
        ("bn2", 1, ["0."], ["1."]),
        ("bn3", 2, ["0."], ["1.", "2."]),
        ("bn2", 3, [], ["0.", "1."]),
    ],
)
def test_a_fine_tune_that_beats_the_head_is_kept_and_changes_only_its_blocks(
    stage_data, architecture, fine_tune_blocks, frozen, changed
):
    """The last `fine_tune_blocks` blocks change, the others stay as pretrained; asking for
    more blocks than the network has fine-tunes all of them."""
    pretrained = FashionCNN(architecture, num_classes=5)
    before = {k: v.clone() for k, v in pretrained.features.named_parameters()}
    # A head trained at a tiny rate for one epoch leaves room on validation for the fine-tune.
    params = {
        **TRANSFER_PARAMS,
        "epochs": 1,
        "learning_rate": 1e-5,
        "fine_tune_epochs": 2,
        "fine_tune_learning_rate": 0.01,
        "fine_tune_blocks": fine_tune_blocks,
    }
    model, history = transfer(pretrained, stage_data[1], params, RUNTIME_PARAMS)
    after = dict(model.features.named_parameters())
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert max(r["val_accuracy"] for r in history[1:]) > history[0]["val_accuracy"]
    for prefix in frozen:
        block = [k for k in before if k.startswith(prefix)]
        assert block and all(torch.equal(before[k], after[k]) for k in block)
    for prefix in changed:
        block = [k for k in before if k.startswith(prefix)]
        assert block and not all(torch.equal(before[k], after[k]) for k in block)


def test_the_feature_cache_holds_the_frozen_output_for_each_fine_tune(stage_data):
    """Keyed by the number of frozen blocks: all of them (head training) and each fine-tune's;
    with none frozen, the (standardised) images."""
    pretrained = FashionCNN("bn3", num_classes=5)
    assert set(frozen_features(pretrained, stage_data[1], RUNTIME_PARAMS)) == {3, 2}
    cache = frozen_features(pretrained, stage_data[1], RUNTIME_PARAMS, (1, 3))
    assert set(cache) == {3, 2, 0}
    train = len(stage_data[1]["train_labels"])
    assert cache[0]["train_images"].shape == (train, 1, 28, 28)
    assert cache[2]["train_images"].shape[0] == train
    assert cache[3]["val_images"].shape[0] == len(stage_data[1]["val_labels"])


def test_a_fine_tune_that_does_not_beat_the_head_is_discarded(stage_data):
    pretrained = FashionCNN("bn2", num_classes=5)
    head_only, history = transfer(pretrained, stage_data[1], TRANSFER_PARAMS, RUNTIME_PARAMS)
    assert history[-1]["val_accuracy"] == 1.0  # nothing left for a fine-tune to beat
    params = {**TRANSFER_PARAMS, "fine_tune_epochs": 2, "fine_tune_learning_rate": 0.01}
    model, history = transfer(pretrained, stage_data[1], params, RUNTIME_PARAMS)
    assert len(history) == TRAINING_PARAMS["epochs"] + 2
    kept = head_only.state_dict()
    assert all(torch.equal(kept[k], v) for k, v in model.state_dict().items())


def _cached_and_whole_model_training(stage_data, runtime: dict):
    """Transfer as the node does it (frozen blocks run once, on cached features) and the same
    steps through the whole model (frozen blocks recomputed on every batch)."""
    torch.manual_seed(0)
    pretrained = FashionCNN("bn2", num_classes=5)
    params = {
        **TRANSFER_PARAMS,
        "epochs": 2,
        "fine_tune_epochs": 2,
        "fine_tune_learning_rate": 0.001,
    }
    model, history = transfer(pretrained, stage_data[1], params, runtime)

    config = TransferParams.model_validate(params)
    precision = runtime["precision"]
    reference = copy.deepcopy(pretrained)
    torch.manual_seed(config.seed)
    reference.new_head(5)
    reference.freeze_features()
    reference, expected = fit(reference, stage_data[1], config, "cpu", "whole", precision=precision)
    reference.freeze_features(trainable_blocks=1)
    fine_tune = config.model_copy(update={"epochs": 2, "learning_rate": 0.001})
    best = max(row["val_accuracy"] for row in expected)
    reference, more = fit(
        reference, stage_data[1], fine_tune, "cpu", "whole", 3, best, precision=precision
    )
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
    return model, history, reference, expected + more


def test_training_on_cached_frozen_features_matches_training_the_whole_model(stage_data):
    model, history, reference, expected = _cached_and_whole_model_training(
        stage_data, RUNTIME_PARAMS
    )
    # float32: the two paths differ only in the order of additions (about 1e-7 relative per
    # operation), which four epochs of training do not grow anywhere near 1e-3.
    for key in ("train_loss", "val_loss", "val_accuracy"):
        assert [row[key] for row in history] == pytest.approx(
            [row[key] for row in expected], abs=1e-3
        )
    weights = model.state_dict()
    for name, value in reference.state_dict().items():
        assert torch.allclose(weights[name], value, atol=1e-3), name


@NATIVE_BFLOAT16
def test_cached_frozen_features_match_the_whole_model_in_bfloat16_too(stage_data):
    model, history, reference, expected = _cached_and_whole_model_training(
        stage_data, BFLOAT16_RUNTIME_PARAMS
    )
    # bfloat16 keeps 8 significant bits (a relative rounding of 2**-9, about 0.2%). The cache
    # stores the frozen blocks' output rounded once to float32, while the whole model passes
    # it on in bfloat16, so the two paths round differently at every step: the losses agree
    # within a few percent, not to float32's 1e-3, and validation accuracy within a couple of
    # the 60 validation images (a loss near zero gets the same 1e-3 as in float32).
    for key in ("train_loss", "val_loss"):
        assert [row[key] for row in history] == pytest.approx(
            [row[key] for row in expected], rel=0.05, abs=1e-3
        )
    assert [row["val_accuracy"] for row in history] == pytest.approx(
        [row["val_accuracy"] for row in expected], abs=2 / 60 + 1e-9
    )
    weights = model.state_dict()
    for name, value in reference.state_dict().items():
        assert torch.allclose(weights[name].float(), value.float(), rtol=0.05, atol=0.02), name


def test_transfer_learns_new_classes_on_frozen_features(stage_data):
    pretrained, _ = transfer(FashionCNN("seed", 5), stage_data[0], TRANSFER_PARAMS, RUNTIME_PARAMS)
    model, history = transfer(pretrained, stage_data[1], TRANSFER_PARAMS, RUNTIME_PARAMS)
    assert model.num_classes == 5 and max(r["val_accuracy"] for r in history) > 0.8


def test_scratch_baseline_uses_the_pretrained_architecture_and_can_be_switched_off(stage_data):
    models, histories = train_scratch_baseline(
        FashionCNN("seed", 5), stage_data[1], TRANSFER_PARAMS, RUNTIME_PARAMS
    )
    assert list(models) == ["scratch"] and models["scratch"].architecture == "seed"
    assert len(histories["scratch"]) == TRAINING_PARAMS["epochs"]
    same_budget = {**TRANSFER_PARAMS, "fine_tune_epochs": 2}
    _, histories = train_scratch_baseline(
        FashionCNN("seed", 5), stage_data[1], same_budget, RUNTIME_PARAMS
    )
    assert len(histories["scratch"]) == TRAINING_PARAMS["epochs"] + 2
    off = {**TRANSFER_PARAMS, "scratch_baseline": False}
    assert train_scratch_baseline(FashionCNN("seed", 5), stage_data[1], off, RUNTIME_PARAMS) == (
        {},
        {},
    )


def test_transfer_and_scratch_models_mirror_average_only_when_their_recipe_says(stage_data):
    pretrained = FashionCNN("seed", 5, mirror_average=True)
    params = {**TRANSFER_PARAMS, "epochs": 1}
    model, _ = transfer(pretrained, stage_data[1], params, RUNTIME_PARAMS)
    models, _ = train_scratch_baseline(pretrained, stage_data[1], params, RUNTIME_PARAMS)
    assert not model.mirror_average and not models["scratch"].mirror_average
    flipped = {**params, "augmentation": {"horizontal_flip": True}, "mirror_average": True}
    model, _ = transfer(pretrained, stage_data[1], flipped, RUNTIME_PARAMS)
    assert model.mirror_average and pretrained.mirror_average


def test_transfer_and_its_scratch_baseline_train_with_the_outliers_they_are_given(stage_data):
    from fashion_transfer.errors import ParameterError
    from fashion_transfer.outlier_sets import training_outliers

    stage = stage_data[1]
    outliers = training_outliers(stage["train_images"], 0, 40, 0)
    exposure = {"weight": 0.5, "share": 0.25, "photo_crops": 0, "shuffled": 40}
    params = {**TRANSFER_PARAMS, "epochs": 1, "fine_tune_epochs": 1, "outlier_exposure": exposure}
    pretrained = FashionCNN("seed", 5)
    _, history = transfer(pretrained, stage, params, RUNTIME_PARAMS, outliers=outliers)
    _, histories = train_scratch_baseline(
        pretrained, stage, params, RUNTIME_PARAMS, outliers=outliers
    )
    # The objective holds the outliers' term on top of the images' loss, in every phase.
    for row in [*history, *histories["scratch"]]:
        assert row["train_objective"] > row["train_loss"]
    with pytest.raises(ParameterError, match="the training pipelines make them"):
        transfer(pretrained, stage, params, RUNTIME_PARAMS)
    # A feature cache made without the outliers (as the studies make theirs): the outliers go
    # through the frozen blocks too, and training is the same as without a cache.
    cache = frozen_features(pretrained, stage, RUNTIME_PARAMS)
    cached, _ = transfer(pretrained, stage, params, RUNTIME_PARAMS, cache, outliers=outliers)
    fresh, _ = transfer(pretrained, stage, params, RUNTIME_PARAMS, outliers=outliers)
    for name, value in fresh.state_dict().items():
        torch.testing.assert_close(cached.state_dict()[name], value)
