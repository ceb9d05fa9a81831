"""Kedro's project settings: the hooks (framework/hooks.py, framework/timing.py) and the config
loader's settings and resolvers (framework/config.py)."""

from fashion_transfer.framework import library_warnings
from fashion_transfer.framework.config import CONFIG_LOADER_ARGS  # noqa: F401 (read by Kedro)
from fashion_transfer.framework.hooks import ProjectHooks, RunLockHooks
from fashion_transfer.framework.timing import TimingHooks

library_warnings.silence()

HOOKS = (RunLockHooks(), ProjectHooks(), TimingHooks())
