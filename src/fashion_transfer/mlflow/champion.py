"""The champion rule: the alias (`champion`) points at the version of a registered model with
the best validation accuracy; the test figure is reported, never chosen on."""

from __future__ import annotations

import random
import time

import mlflow
from mlflow.exceptions import MlflowException


def promote_if_best(
    client: mlflow.MlflowClient, name: str, version: str, metrics: dict, alias: str
) -> tuple[bool, str]:
    """Tag the version with its validation and test accuracy, then point `alias` at the
    version with the best validation accuracy of all (the earlier one on a tie): models are
    chosen on validation, the test figure is reported, never chosen on. Returns (whether
    `version` holds the alias, why).

    Runs on several machines may register at once against one tracking server, so no lock
    can cover them; instead each run reads every version, moves the alias to the best, and
    reads again until what it reads agrees. The last run to write reads after its own write,
    so it corrects any stale move made before it: the alias ends on the best version."""
    for key in ("val_accuracy", "test_accuracy"):
        client.set_model_version_tag(name, version, key, f"{metrics[key]:.6f}")
    accuracy = metrics["val_accuracy"]
    before = _holder(client, name, alias)
    for _ in range(MAX_ALIAS_ROUNDS):
        best = max(
            client.search_model_versions(f"name='{name}'"),
            key=lambda v: (_val_accuracy(v), -int(v.version)),
        )
        holder = _holder(client, name, alias)
        if holder is not None and str(holder.version) == str(best.version):
            break
        try:
            client.set_registered_model_alias(name, alias, str(best.version))
        except MlflowException:
            # Another run set the alias at the same moment (the store refuses the second
            # insert of a new alias): read again and judge what it set.
            time.sleep(random.uniform(0.05, 0.2))
    promoted = str(best.version) == str(version)
    if promoted and (before is None or str(before.version) == str(version)):
        return True, f"first {alias} of {name}"
    rival = before if promoted else best
    verb = "beats" if promoted else "does not beat"
    return promoted, (
        f"validation accuracy {accuracy:.4f} {verb} {alias} version {rival.version} "
        f"({_val_accuracy(rival):.4f})"
    )


# Each round is a read and at most one write; concurrent runs settle in a few.
MAX_ALIAS_ROUNDS = 20


def _holder(client: mlflow.MlflowClient, name: str, alias: str):
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def _val_accuracy(version) -> float:
    return float(version.tags.get("val_accuracy", "-inf"))
