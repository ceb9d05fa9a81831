import optuna
import pytest
import torch

from fashion_transfer.errors import ParameterError
from fashion_transfer.params import RuntimeParams, validate_parameters
from tests.conftest import project_parameters


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_shipped_parameters_and_every_preset_are_valid(tmp_path):
    params = validate_parameters(project_parameters())
    assert params.preset == "default" and params.split.pretrain_classes == [0, 1, 2, 3, 4]
    for name in params.presets:
        assert validate_parameters(project_parameters(preset=name)).preset == name
    # `tuned` is made from a study: one with a single complete trial of the transfer recipe.
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="transfer-default", storage=storage)
    study.set_user_attr("stage", "transfer")
    study.set_user_attr("preset", "default")
    rate = optuna.distributions.FloatDistribution(1e-4, 1e-2)
    study.add_trial(
        optuna.create_trial(
            params={"learning_rate": 0.001}, distributions={"learning_rate": rate}, value=0.9
        )
    )
    tuned = validate_parameters(project_parameters(preset="tuned", tune={"storage": storage}))
    assert tuned.preset == "tuned" and tuned.transfer.learning_rate == 0.001
    assert tuned.pretrain == params.pretrain and tuned.model == params.model


def test_preset_switches_the_recipe_and_single_values_still_override():
    seed = validate_parameters(project_parameters(preset="seed"))
    assert seed.model.architecture == "seed" and seed.pretrain.epochs == 20
    assert seed.transfer.epochs == 20 and seed.pretrain.augmentation is None
    tuned = validate_parameters(project_parameters(preset="seed", pretrain={"epochs": 3}))
    assert tuned.pretrain.epochs == 3 and tuned.pretrain.learning_rate == 0.001


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown preset 'fastest'; valid presets: \['default'"):
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
        (
            "model",
            {"architecture": "resnet"},
            "valid: ['bn2', 'bn2_narrow', 'bn3', 'compact', 'seed']",
        ),
        ("transfer", {"mirror_average": True}, "mirror_average needs training on mirrored"),
        (
            "catalogue",
            {"training_photos": 10**9},
            "catalogue.training_photos: Input should be less than or equal to 200000",
        ),
        ("pretrain", {"training_photos": -1}, "pretrain.training_photos: Input should be greater"),
    ],
)
def test_invalid_parameters_are_named_with_the_fix(section, change, expected):
    message = _error(section, change)
    assert expected in message
    assert "conf/base/parameters_*.yml" in message and "nothing was trained" in message


def test_a_gpu_the_machine_lacks_is_refused_and_one_it_has_is_taken(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert "has no CUDA GPU" in _error("runtime", {"device": "cuda"})
    assert "has no Apple GPU" in _error("runtime", {"device": "mps"})
    assert "use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'" in _error("runtime", {"device": "tpu"})
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert RuntimeParams(device="mps").device == "mps"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"epochs": {"type": "int", "low": 5, "high": 2}}, "the range [5.0, 2.0] is empty"),
        ({"epochs": {"type": "int", "low": 2, "high": 2}}, "the range [2.0, 2.0] is empty"),
        ({"learning_rate": {"type": "float", "low": 0, "high": 1, "log": True}}, "above 0"),
        ({"batch_size": {"type": "categorical", "choices": []}}, "non-empty list of choices"),
        ({"epochs": {"type": "int", "low": 1.5, "high": 3}}, "whole bounds"),
        ({"lr": {"type": "float", "low": 0.1, "high": 1}}, "keys ['lr'] that are not in the"),
        ({"label_smoothing": {"type": "float", "low": 0, "high": 1.5}}, "label_smoothing=1.5"),
        ({"optimizer": {"type": "categorical", "choices": ["adam", "lion"]}}, "'lion'"),
        (
            {"outlier_exposure.share": {"type": "float", "low": 0.1, "high": 0.5}},
            "trials train without outlier exposure",
        ),
        (
            {"training_photos": {"type": "int", "low": 0, "high": 6000}},
            "['training_photos']: trials train without outlier exposure or training photos",
        ),
    ],
)
def test_a_bad_search_space_is_named_before_anything_runs(change, expected):
    params = project_parameters()
    space = params["tune"]["search_space"]["transfer"]
    params["tune"]["search_space"]["transfer"] = {**space, **change}
    with pytest.raises(ParameterError) as info:
        validate_parameters(params)
    assert expected in str(info.value)
    assert len(str(info.value)) < 1000  # the message names the problem, not every parameter


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"labels_per_class": [10, 10]}, "lists a value twice"),
        ({"labels_per_class": [0]}, "greater than 0"),
        ({"transfer_recipes": {"scratch": {}}}, "'scratch' names the from-scratch arm"),
        (
            {"transfer_recipes": {"transfer": None, "transfer_shifted": None}},
            "every transfer recipe is left out",
        ),
        (
            {"transfer_recipes": {"tiny": {"learning_rate": -1}}},
            "tiny.learning_rate: Input should be greater than 0",
        ),
        (
            {"transfer_recipes": {"exposed": {"outlier_exposure.share": 0.5}}},
            "['exposed.outlier_exposure.share']: the study's arms train without outlier",
        ),
        (
            {"transfer_recipes": {"photographed": {"training_photos": 600}}},
            "['photographed.training_photos']: the study's arms train without outlier exposure "
            "or training photos",
        ),
    ],
)
def test_a_bad_label_efficiency_study_is_named(change, expected):
    assert expected in _error("label_efficiency", change)


def test_params_on_the_command_line_change_one_key_in_any_conf_environment(tmp_path):
    """Kedro also merges --params into an environment's own parameters; the project's soft
    merge keeps the rest of the recipe instead of replacing it by the one key given."""
    import shutil

    from kedro.config import OmegaConfigLoader

    from fashion_transfer.framework.config import CONFIG_LOADER_ARGS
    from tests.conftest import PROJECT_ROOT

    shutil.copytree(PROJECT_ROOT / "conf" / "base", tmp_path / "base")
    (tmp_path / "quick").mkdir()
    (tmp_path / "quick" / "parameters_split.yml").write_text(
        "split:\n  max_examples_per_stage: 100\n"
    )
    loader = OmegaConfigLoader(
        str(tmp_path), env="quick", runtime_params={"transfer": {"epochs": 1}}, **CONFIG_LOADER_ARGS
    )
    params = validate_parameters(loader["parameters"])
    assert params.transfer.epochs == 1 and params.transfer.learning_rate == 0.003
    assert params.split.max_examples_per_stage == 100 and params.split.seed == 42


def test_a_label_efficiency_arm_can_be_left_out():
    params = project_parameters()
    params["label_efficiency"]["transfer_recipes"]["transfer_shifted"] = None
    assert list(validate_parameters(params).label_efficiency.transfer_recipes) == ["transfer"]


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"alias": "latest"}, "registry.alias: 'latest' alias name (case insensitive) is reserved"),
        ({"alias": "v3"}, "registry.alias: Version alias name 'v3' is reserved"),
        ({"alias": "the best"}, "registry.alias: Invalid alias name: 'the best'"),
        ({"model_names": {"transfer": "team/transfer"}}, "Names cannot contain '/' or ':'"),
        (
            {"model_names": {"transfer": "same", "pretrain": "same"}},
            "two stages share a registered model name",
        ),
        ({"parity_images": 0}, "registry.parity_images: Input should be greater than or equal"),
    ],
)
def test_registry_names_and_aliases_mlflow_refuses_are_refused_before_anything_runs(
    override, expected
):
    params = project_parameters()
    params["registry"] = {**params["registry"], **override}
    with pytest.raises(ParameterError) as error:
        validate_parameters(params)
    assert expected in str(error.value)


@pytest.mark.parametrize(
    ("stage", "exposure", "expected"),
    [
        ("pretrain", {"weight": 0.5, "photo_crops": 0, "shuffled": 0}, "needs pictures"),
        ("transfer", {"weight": 0.5, "share": 2, "photo_crops": 1, "shuffled": 1}, "share"),
        ("catalogue", {"weight": 0.5, "photo_crops": 0, "shuffled": 0}, "needs pictures"),
        ("catalogue", {"weight": 0.5, "photo_crops": 0, "shuffled": 0, "edges": 0}, "edges"),
        ("catalogue", {"weight": 0.5, "share": 0, "photo_crops": 1, "shuffled": 1}, "share"),
        ("catalogue", {"weight": 0, "photo_crops": 10, "shuffled": 0}, "greater than 0"),
    ],
)
def test_outlier_exposure_is_checked_before_anything_runs(stage, exposure, expected):
    params = project_parameters()
    params[stage] = {**params[stage], "outlier_exposure": exposure}
    with pytest.raises(ParameterError, match=expected):
        validate_parameters(params)


@pytest.mark.parametrize("stage", ["pretrain", "transfer", "catalogue"])
def test_every_stage_of_the_default_preset_trains_with_outlier_exposure(stage):
    exposure = getattr(validate_parameters(project_parameters()), stage).outlier_exposure
    assert exposure is not None and exposure.photo_crops + exposure.shuffled + exposure.edges > 0
