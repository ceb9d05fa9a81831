"""Kedro's project settings: the hooks (framework/hooks.py, framework/timing.py) and the config
loader's settings and resolvers (framework/config.py)."""

from fashion_transfer.framework import library_warnings
from fashion_transfer.framework.config import CONFIG_LOADER_ARGS  # noqa: F401 (read by Kedro)
from fashion_transfer.framework.hooks import MlflowHooks, ProjectHooks, RunLockHooks
from fashion_transfer.framework.timing import TimingHooks

library_warnings.silence()

# kedro-mlflow's hook comes as MlflowHooks (it logs a node's parameters in one request), so the
# plugin's own is off; Kedro matches the distribution's name as its metadata spells it.
DISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow", "kedro-mlflow")
HOOKS = (RunLockHooks(), ProjectHooks(), TimingHooks(), MlflowHooks())
