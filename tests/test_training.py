import numpy as np
import pytest
import torch

from fashion_transfer import training
from fashion_transfer.model import FashionCNN
from fashion_transfer.params import TrainingParams
from tests.conftest import TRAINING_PARAMS

CONFIG = TrainingParams(**TRAINING_PARAMS)


def _fit(stage, config=CONFIG, precision="float32"):
    return training.fit(
        FashionCNN("seed", 5), stage, config, device="cpu", name="test", precision=precision
    )


def test_fit_learns_and_records_history(stage_data):
    model, history = _fit(stage_data[0])
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert set(history[0]) == {
        "epoch",
        "train_loss",
        "train_objective",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "seconds",
    }
    assert max(row["val_accuracy"] for row in history) > 0.9
    probabilities = training.predict_proba(model, stage_data[0]["test_images"], device="cpu")
    assert probabilities.shape == (100, 5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    assert (probabilities.argmax(1) == stage_data[0]["test_labels"]).mean() > 0.9


def test_bfloat16_training_learns_is_reproducible_and_returns_float32_weights(stage_data):
    # Runs on every CPU: `precision: bfloat16` may be asked for where it is only emulated, and
    # must work there too (slower); nothing here depends on how bfloat16 rounds.
    model, first = _fit(stage_data[0], precision="bfloat16")
    _, again = _fit(stage_data[0], precision="bfloat16")
    _, plain = _fit(stage_data[0], precision="float32")
    assert [r["train_loss"] for r in first] == [r["train_loss"] for r in again]
    # bfloat16 was used: the same seed and data in float32 train to other losses.
    assert [r["train_loss"] for r in first] != [r["train_loss"] for r in plain]
    assert max(row["val_accuracy"] for row in first) > 0.9
    # The weights stay float32 (autocast computes in bfloat16, the optimizer steps in float32).
    assert all(value.dtype == torch.float32 for value in model.parameters())
    assert all(value.is_contiguous() for value in model.parameters())


@pytest.mark.parametrize(
    ("avx512_bf16", "amx", "expected"),
    [(True, False, "bfloat16"), (False, True, "bfloat16"), (False, False, "float32")],
)
def test_auto_precision_is_bfloat16_only_where_the_cpu_has_it(
    monkeypatch, avx512_bf16, amx, expected
):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    cpu = torch.device("cpu")
    assert training.resolve_precision("auto", cpu) == expected
    # An explicit choice is kept, even where bfloat16 is emulated.
    assert training.resolve_precision("bfloat16", cpu) == "bfloat16"
    assert training.resolve_precision("float32", cpu) == "float32"


def test_fit_is_reproducible_with_the_same_seed(stage_data):
    _, first = _fit(stage_data[0])
    _, again = _fit(stage_data[0])
    assert [r["train_loss"] for r in first] == [r["train_loss"] for r in again]
    _, other = _fit(stage_data[0], CONFIG.model_copy(update={"seed": 1}))
    assert [r["train_loss"] for r in first] != [r["train_loss"] for r in other]


def test_fit_keeps_the_best_validation_epoch(stage_data, monkeypatch):
    snapshots = []
    accuracies = iter([0.3, 0.9, 0.5])

    def fake_evaluate(model, images, labels, precision):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return 1.0, next(accuracies)

    monkeypatch.setattr(training, "evaluate", fake_evaluate)
    model, _ = _fit(stage_data[0])
    best = snapshots[1]
    assert all(torch.equal(best[k], v) for k, v in model.state_dict().items())
    assert not all(torch.equal(snapshots[2][k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize(
    ("has_cuda", "has_mps", "expected"),
    [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu")],
)
def test_auto_device_is_cuda_then_apples_gpu_then_the_cpu(monkeypatch, has_cuda, has_mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: has_cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: has_mps)
    device = training.resolve_device("auto")
    assert device == torch.device(expected)
    assert training.resolve_device("cpu") == torch.device("cpu")
    assert training.resolve_device("cuda:1") == torch.device("cuda", 1)
    if expected == "mps":  # float32 there: bfloat16 autocast depends on the macOS version
        assert training.resolve_precision("auto", device) == "float32"


def test_train_loss_is_the_plain_cross_entropy_beside_the_smoothed_objective(stage_data):
    config = CONFIG.model_copy(update={"label_smoothing": 0.2, "epochs": 2})
    _, history = _fit(stage_data[0], config)
    # Label smoothing keeps the objective well above zero while the plain loss, the one that
    # compares with the validation loss, falls towards it on this easy data.
    assert all(row["train_objective"] > row["train_loss"] for row in history)
    _, plain = _fit(stage_data[0], config.model_copy(update={"label_smoothing": 0.0}))
    assert [r["train_objective"] for r in plain] == pytest.approx([r["train_loss"] for r in plain])


def test_a_short_split_is_cycled_to_the_minimum_epoch_size(stage_data, monkeypatch):
    config = CONFIG.model_copy(update={"epochs": 2, "min_epoch_images": 1000})
    seen = []
    original = training.epoch_order

    def recording(*args):
        seen.append(original(*args))
        return seen[-1]

    monkeypatch.setattr(training, "epoch_order", recording)
    _fit(stage_data[0], config)
    train_size = len(stage_data[0]["train_labels"])
    assert [len(order) for order in seen] == [1000, 1000]
    # Each image comes round as often as any other, give or take the epoch's last pass.
    counts = torch.bincount(seen[0], minlength=train_size)
    assert counts.min() >= 1000 // train_size and counts.max() <= -(-1000 // train_size)


def test_schedules_and_label_smoothing_train(stage_data):
    for schedule in ("onecycle", "cosine"):
        config = CONFIG.model_copy(update={"schedule": schedule, "label_smoothing": 0.1})
        _, history = training.fit(FashionCNN("seed", 5), stage_data[0], config, "cpu", "t")
        assert max(row["val_accuracy"] for row in history) > 0.9


def test_the_seed_parameter_sets_the_initial_weights_too(stage_data):
    from fashion_transfer.pipelines.pretrain.nodes import pretrain

    def run(seed):
        params = {**TRAINING_PARAMS, "epochs": 1, "seed": seed}
        model, _ = pretrain(stage_data[0], {"architecture": "seed"}, params, {"device": "cpu"})
        return model.state_dict()

    torch.rand(5)  # whatever the global generator did before, the seed decides
    first, again, other = run(3), run(3), run(4)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


class _Weight:
    """Stands for a weight on a device this machine may not have."""

    def __init__(self, device: str, floating: bool = True):
        self.device = torch.device(device)
        self.floating = floating

    def is_floating_point(self) -> bool:
        return self.floating


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
@pytest.mark.parametrize(
    ("weights", "fused"),
    [
        ([_Weight("cuda:0"), _Weight("cuda:0")], True),
        ([_Weight("cpu")], False),
        ([_Weight("mps")], False),
        ([_Weight("cuda:0"), _Weight("cuda:1")], False),  # fused needs one device
        ([_Weight("cuda:0"), _Weight("cuda:0", floating=False)], False),
    ],
)
def test_adam_steps_fused_on_a_cuda_gpu_only(monkeypatch, optimizer, weights, fused):
    made = {}

    def record(params, **options):
        made.update(options, params=params)

    monkeypatch.setattr(torch.optim, "Adam", record)
    monkeypatch.setattr(torch.optim, "AdamW", record)
    config = CONFIG.model_copy(update={"optimizer": optimizer})
    training.make_optimizer(iter(weights), config)
    assert made.get("fused", False) is fused
    assert made["params"] == weights and made["lr"] == config.learning_rate


def test_the_cpu_optimizers_are_the_default_ones_and_step():
    model = torch.nn.Linear(3, 2)
    for name in ("adam", "adamw", "sgd"):
        optimizer = training.make_optimizer(
            model.parameters(), CONFIG.model_copy(update={"optimizer": name})
        )
        assert not optimizer.defaults.get("fused")
        model(torch.ones(1, 3)).sum().backward()
        optimizer.step()


def test_the_warm_up_is_a_cuda_gpus_only(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    monkeypatch.setattr(torch.cuda, "init", lambda: calls.append("init"))
    for device in ("cpu", "mps"):
        training.prepare_device(torch.device(device))
    assert calls == [] and torch.backends.cudnn.benchmark is False
    # On a GPU: cuDNN's algorithm search on, the context and libraries set up once, now.
    monkeypatch.setattr(training, "_warm_libraries", lambda device: calls.append(str(device)))
    training.prepare_device(torch.device("cuda:0"))
    assert calls == ["init", "cuda:0"] and torch.backends.cudnn.benchmark is True


def test_outlier_exposure_spreads_the_outliers_probability_and_keeps_the_accuracy(stage_data):
    from fashion_transfer.outlier_sets import training_outliers

    stage = stage_data[0]
    outliers = training_outliers(stage["train_images"], 60, 60, 0)
    exposure = {"weight": 0.5, "photo_crops": 60, "shuffled": 60}
    exposed_config = TrainingParams(
        **{**TRAINING_PARAMS, "outlier_exposure": exposure, "epochs": 4}
    )
    plain, _ = _fit(stage, CONFIG.model_copy(update={"epochs": 4}))
    exposed, history = _fit({**stage, "outlier_images": outliers}, exposed_config)
    # The objective holds the outliers' term: it stays above the plain loss of the images.
    assert all(row["train_objective"] > row["train_loss"] for row in history)
    assert max(row["val_accuracy"] for row in history) > 0.9
    # Unseen outliers of the same kinds (another seed): the exposed model is far less sure of
    # any class for them; its own test images it still answers with confidence.
    unseen = training_outliers(stage["train_images"], 50, 50, 1)
    top = {
        name: training.predict_proba(model, unseen, device="cpu").max(1).mean()
        for name, model in {"plain": plain, "exposed": exposed}.items()
    }
    assert top["exposed"] < top["plain"] - 0.2
    own = training.predict_proba(exposed, stage["test_images"], device="cpu")
    assert (own.argmax(1) == stage["test_labels"]).mean() > 0.9


def test_outlier_exposure_without_outlier_pictures_says_where_they_come_from(stage_data):
    from fashion_transfer.errors import ParameterError

    exposure = {"weight": 0.5, "photo_crops": 10, "shuffled": 0}
    config = TrainingParams(**{**TRAINING_PARAMS, "outlier_exposure": exposure})
    with pytest.raises(ParameterError, match="the training pipelines make them"):
        _fit(stage_data[0], config)


def test_uniform_cross_entropy_is_smallest_for_equal_logits():
    equal = training.uniform_cross_entropy(torch.zeros(4, 5))
    assert equal.item() == pytest.approx(np.log(5))
    assert training.uniform_cross_entropy(torch.tensor([[9.0, 0, 0, 0, 0]])) > equal


def test_each_batch_brings_its_share_of_outliers(stage_data):
    from fashion_transfer.outlier_sets import training_outliers

    stage = {
        **stage_data[0],
        "outlier_images": training_outliers(stage_data[0]["train_images"], 0, 40, 0),
    }
    exposure = {"weight": 0.5, "share": 0.25, "photo_crops": 0, "shuffled": 40}
    config = TrainingParams(**{**TRAINING_PARAMS, "outlier_exposure": exposure, "epochs": 1})
    model = FashionCNN("seed", 5)
    sizes = []
    model.register_forward_hook(lambda module, inputs, output: sizes.append(len(inputs[0])))
    training.fit(model, stage, config, device="cpu", name="test", precision="float32")
    batch = config.batch_size
    assert sizes[0] == batch + round(batch * 0.25)  # training steps first, then validation
