import pytest
import torch

from fashion_transfer.params import ParameterError, validate_parameters
from tests.conftest import project_parameters


def test_shipped_parameters_and_every_preset_are_valid():
    params = validate_parameters(project_parameters())
    assert params.preset == "default" and params.split.pretrain_classes == [0, 1, 2, 3, 4]
    for name in params.presets:
        assert validate_parameters(project_parameters(preset=name)).preset == name


def test_preset_switches_the_recipe_and_single_values_still_override():
    seed = validate_parameters(project_parameters(preset="seed"))
    assert seed.model.architecture == "seed" and seed.pretrain.epochs == 20
    assert seed.transfer.epochs == 20 and seed.pretrain.augmentation is None
    tuned = validate_parameters(project_parameters(preset="seed", pretrain={"epochs": 3}))
    assert tuned.pretrain.epochs == 3 and tuned.pretrain.learning_rate == 0.001


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown preset 'fastest'; valid presets: \['accurate'"):
        project_parameters(preset="fastest")


def _error(section: str, change: dict) -> str:
    params = project_parameters()
    params[section] = {**params[section], **change}
    with pytest.raises(ParameterError) as info:
        validate_parameters(params)
    return str(info.value)


@pytest.mark.parametrize(
    ("section", "change", "expected"),
    [
        ("pretrain", {"epochs": "ten"}, "pretrain.epochs: Input should be a valid integer"),
        (
            "pretrain",
            {"learning_rate": 0},
            "pretrain.learning_rate: Input should be greater than 0",
        ),
        ("transfer", {"batch_size": 0}, "transfer.batch_size"),
        ("pretrain", {"optimizer": "adagrad"}, "'adam', 'adamw' or 'sgd'"),
        ("pretrain", {"epoch": 3}, "pretrain.epoch: Extra inputs are not permitted"),
        ("model", {"architecture": "resnet"}, "valid: ['bn2', 'bn3', 'compact', 'seed']"),
        ("transfer", {"mirror_average": True}, "mirror_average needs training on mirrored"),
    ],
)
def test_invalid_parameters_are_named_with_the_fix(section, change, expected):
    message = _error(section, change)
    assert expected in message
    assert "conf/base/parameters_*.yml" in message and "nothing was trained" in message


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a CPU-only machine")
def test_cuda_on_a_cpu_machine_is_refused():
    assert "has no CUDA GPU" in _error("runtime", {"device": "cuda"})
