"""The project's configuration as Kedro reads it: the config loader's settings (settings.py
hands them to Kedro), the resolvers the YAML files use, and one reader of a conf file for the
programs the Makefile starts, which need a value or two without a Kedro session."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from fashion_transfer.framework.paths import project_root
from fashion_transfer.mlflow.store import artifact_location, tracking_uri


def preset(section: str, *, _root_) -> DictConfig:
    """`${preset:pretrain}`: that section of the preset named by the `preset` parameter
    (parameters_presets.yml), so `--params preset=seed` switches a whole recipe."""
    from fashion_transfer.params import TUNED_PRESET

    name, presets = _root_["preset"], _root_["presets"]
    if name == TUNED_PRESET:  # the best recipe of the tuning study, on top of `default`
        from fashion_transfer.pipelines.tune.studies import best_recipe

        tune = OmegaConf.to_container(_root_["tune"], resolve=True)
        sections = best_recipe(tune, OmegaConf.to_container(presets, resolve=True))
        return OmegaConf.create(sections[section])
    if name not in presets:
        from fashion_transfer.errors import ParameterError

        valid = sorted([*presets, TUNED_PRESET])
        raise ParameterError([f"preset: unknown preset {name!r}; valid presets: {valid}"])
    # A DictConfig, not a plain dict (OmegaConf warns about it): only a DictConfig lets a
    # single --params value such as pretrain.epochs=3 merge into the preset's section.
    return presets[name][section]


CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "custom_resolvers": {
        "tracking_uri": tracking_uri,
        "artifact_location": artifact_location,
        "preset": preset,
    },
    # Kedro merges the --params values into an environment's parameters too; with its default
    # (destructive) merge, `--env NAME --params transfer.epochs=1` would then replace the whole
    # transfer recipe by {epochs: 1}. A soft merge keeps the other keys.
    "merge_strategy": {"parameters": "soft"},
    # kedro-mlflow's own pattern, known from the start: the hooks read the experiment's name.
    "config_patterns": {"mlflow": ["mlflow*", "mlflow*/**", "**/mlflow*"]},
}


def read_conf(name: str) -> dict:
    """conf/base/<name>*.yml with conf/local's on top, as `kedro run` reads them (e.g.
    `parameters_registry`, `mlflow`)."""
    from kedro.config import OmegaConfigLoader

    from fashion_transfer.errors import ProjectError
    from fashion_transfer.framework import library_warnings

    conf = project_root() / "conf"
    if not (conf / "base").is_dir():
        raise ProjectError(
            f"{Path.cwd()} is not in the fashion-transfer project (it has no conf/base/): run "
            "the command from the project's folder, as `make` does."
        )
    library_warnings.silence()  # Kedro's loader warns about its own use of OmegaConf
    loader = OmegaConfigLoader(
        str(conf),
        **{
            **CONFIG_LOADER_ARGS,
            "config_patterns": {"wanted": [f"{name}*", f"{name}*/**"]},
        },
    )
    return loader["wanted"]


def experiment_name() -> str:
    return read_conf("mlflow")["tracking"]["experiment"]["name"]


def champion_uri(model: str | None = None) -> str:
    """`models:/NAME@ALIAS` of the catalogue model (or `model`) and the alias of
    parameters_registry.yml."""
    registry = read_conf("parameters_registry")["registry"]
    return f"models:/{model or registry['model_names']['catalogue']}@{registry['alias']}"
