"""Project settings: Kedro defaults, the hooks that validate parameters, and the resolver that
points MLflow at the project's local store unless MLFLOW_TRACKING_URI says otherwise."""

import os
from pathlib import Path

from fashion_transfer.hooks import ProjectHooks


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI when set, else a SQLite store in mlruns/ of the project (run from
    its root, as kedro is)."""
    return (
        os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlruns' / 'mlflow.db'}"
    )


HOOKS = (ProjectHooks(),)

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "custom_resolvers": {"tracking_uri": tracking_uri},
}
