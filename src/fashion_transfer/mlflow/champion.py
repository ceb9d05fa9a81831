"""The champion rule: the alias (`champion`) points at the version of a registered model with
the best validation accuracy; the test figure is reported, never chosen on."""

from __future__ import annotations

import random
import time

import mlflow
from mlflow.exceptions import MlflowException

# What a version answers: its classes in order and the validation split it was scored on.
# The alias only moves between versions that answer the same question.
QUESTION = ("classes", "validation_split")


def promote_if_best(
    client: mlflow.MlflowClient,
    name: str,
    version: str,
    metrics: dict,
    alias: str,
    question: dict[str, str],
) -> tuple[bool, str, str | None]:
    """Tag the version with its validation and test accuracy and with what it answers
    (`question`: its classes, its validation split), then point `alias` at the version with
    the best validation accuracy (the earlier one on a tie) among the versions that answer the
    same question: models are chosen on validation, the test figure is reported, never chosen
    on. A version that answers another question than the holder of the alias never takes it.
    Returns whether `version` holds the alias, why, and the version the registry says holds
    it once the move is done (read back, not assumed).

    Runs on several machines may register at once against one tracking server, so no lock
    can cover them; instead each run reads every version, moves the alias to the best, and
    reads again until what it reads agrees. The last run to write reads after its own write,
    so it corrects any stale move made before it: the alias ends on the best version. What a
    run returns is the holder of the round in which it agreed, not a read after it: a slower
    run may still make a stale move in between, which it then corrects itself, and the best
    version must not report that passing move as its defeat."""
    for key in ("val_accuracy", "test_accuracy"):
        client.set_model_version_tag(name, version, key, f"{metrics[key]:.6f}")
    for key in QUESTION:
        client.set_model_version_tag(name, version, key, question[key])
    accuracy = metrics["val_accuracy"]
    before = _holder(client, name, alias)
    other_question = None
    for _ in range(MAX_ALIAS_ROUNDS):
        holder = _holder(client, name, alias)
        if holder is not None and _question(holder) not in (None, question):
            other_question = final = holder  # this version cannot take it: nothing to move
            break
        versions = client.search_model_versions(f"name='{name}'")
        # A holder from before versions were tagged with their question was chosen under
        # the same rule: it stays a candidate, so that only a better version replaces it.
        candidates = [
            v
            for v in versions
            if _question(v) == question
            or (holder is not None and _question(v) is None and v.version == holder.version)
        ]
        best = max(candidates, key=lambda v: (_val_accuracy(v), -int(v.version)))
        if holder is not None and str(holder.version) == str(best.version):
            final = holder  # what this run read and agreed with, in one round
            break
        try:
            client.set_registered_model_alias(name, alias, str(best.version))
        except MlflowException:
            # Another run set the alias at the same moment (the store refuses the second
            # insert of a new alias): read again and judge what it set.
            time.sleep(random.uniform(0.05, 0.2))
    else:
        final = _holder(client, name, alias)
    held = None if final is None else str(final.version)
    promoted = held == str(version)
    if other_question is not None:
        theirs = _question(other_question)
        return (
            False,
            (
                f"it answers another question than {alias} version {other_question.version} "
                f"(classes {question['classes']} against {theirs['classes']}; validation split "
                f"{question['validation_split']} against {theirs['validation_split']}): register "
                "it under another name (registry.model_names) to serve it"
            ),
            held,
        )
    if final is None:
        return False, f"the registry refused every move of {alias}", None
    if promoted and (before is None or str(before.version) == str(version)):
        return True, f"first {alias} of {name}", held
    rival = before if promoted else final
    verb = "beats" if promoted else "does not beat"
    return (
        promoted,
        (
            f"validation accuracy {accuracy:.4f} {verb} {alias} version {rival.version} "
            f"({_val_accuracy(rival):.4f})"
        ),
        held,
    )


def _question(version) -> dict[str, str] | None:
    """What a version answers; None for one registered before versions were tagged so."""
    if not all(key in version.tags for key in QUESTION):
        return None
    return {key: version.tags[key] for key in QUESTION}


# Each round is a read and at most one write; concurrent runs settle in a few.
MAX_ALIAS_ROUNDS = 20


def _holder(client: mlflow.MlflowClient, name: str, alias: str):
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def _val_accuracy(version) -> float:
    return float(version.tags.get("val_accuracy", "-inf"))
