"""Project settings: Kedro defaults, the hooks that validate parameters, and the resolver that
points MLflow at the project's local store unless MLFLOW_TRACKING_URI says otherwise."""

import os
import warnings

from omegaconf import DictConfig, OmegaConf

from fashion_transfer.hooks import ProjectHooks, RunLockHooks, TimingHooks
from fashion_transfer.params import TUNED_PRESET, ParameterError
from fashion_transfer.paths import project_root


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI when set, else a SQLite store in mlruns/ of the project."""
    return (
        os.environ.get("MLFLOW_TRACKING_URI")
        or f"sqlite:///{project_root() / 'mlruns' / 'mlflow.db'}"
    )


def artifact_location() -> str | None:
    """Where runs of a new experiment keep their artifacts: mlruns/artifacts/ of the project
    beside a local SQLite store; the tracking server's own choice (it serves them) otherwise."""
    if tracking_uri().startswith("sqlite:"):
        return (project_root() / "mlruns" / "artifacts").as_uri()
    return None


def preset(section: str, *, _root_) -> DictConfig:
    """`${preset:pretrain}`: that section of the preset named by the `preset` parameter
    (parameters_presets.yml), so `--params preset=seed` switches a whole recipe."""
    name, presets = _root_["preset"], _root_["presets"]
    if name == TUNED_PRESET:  # the best recipe of the tuning study, on top of `default`
        from fashion_transfer.tuning import best_recipe

        tune = OmegaConf.to_container(_root_["tune"], resolve=True)
        sections = best_recipe(tune, OmegaConf.to_container(presets, resolve=True))
        return OmegaConf.create(sections[section])
    if name not in presets:
        valid = sorted([*presets, TUNED_PRESET])
        raise ParameterError([f"preset: unknown preset {name!r}; valid presets: {valid}"])
    # A DictConfig, not a plain dict (OmegaConf warns about it): only a DictConfig lets a
    # single --params value such as pretrain.epochs=3 merge into the preset's section.
    return presets[name][section]


# Kedro's config loader and kedro-mlflow still register their resolvers with OmegaConf's
# deprecated register_new_resolver(); the warning is theirs to act on, not the user's.
warnings.filterwarnings("ignore", message=r"register_new_resolver\(\) is deprecated")

HOOKS = (RunLockHooks(), ProjectHooks(), TimingHooks())

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
