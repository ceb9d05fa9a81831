"""Registration, start to end: which models a run registers (a node of the evaluation
pipeline, so the step shows in the graph) and registering them once the whole run has
succeeded (called by the project's hook): each model's ONNX graph is checked against PyTorch,
logged with its checkpoint, registered with its model card, and judged by the champion rule."""

from __future__ import annotations

import functools
import logging
import os

import mlflow
from mlflow.exceptions import MlflowException

from fashion_transfer.export import check_parity, to_onnx
from fashion_transfer.framework import interrupt
from fashion_transfer.framework.timing import span
from fashion_transfer.mlflow.champion import promote_if_best
from fashion_transfer.mlflow.logged_model import log_classifier
from fashion_transfer.mlflow.model_card import model_description, version_description
from fashion_transfer.mlflow.store import USER_VARIABLE
from fashion_transfer.params import RegistryParams, SplitParams

logger = logging.getLogger(__name__)

# Where the registry finds each model (as served: calibrated, with its out-of-distribution
# score and threshold), and the stage data that gives its classes and example pictures.
SOURCES = {
    "pretrain": ("served_models", "pretrain_data"),
    "transfer": ("served_models", "transfer_data"),
    "ensemble": ("served_models", "transfer_data"),
    "catalogue": ("served_models", "catalogue_data"),
}


def plan_registration(metrics: dict[str, dict], registry_params: dict, split_params: dict) -> dict:
    """The models this run registers, with the figures the champion rule compares, or why
    one is left out. Registration itself happens once the whole run has succeeded, so a run
    that fails registers nothing."""
    registry = RegistryParams.model_validate(registry_params)
    if not registry.register_models:
        return {}
    split = SplitParams.model_validate(split_params)
    examples = split.max_examples_per_stage or "all"
    validation_split = (
        f"{split.validation_fraction:g} of {examples} training examples per stage, "
        f"seed {split.seed}"
    )
    plan = {}
    for stage, name in registry.model_names.items():
        if stage not in metrics:
            plan[stage] = {"name": name, "skipped": "not built in this run"}
            continue
        dataset, data = SOURCES[stage]
        plan[stage] = {
            "name": name,
            "dataset": dataset,
            "data": data,
            "val_accuracy": metrics[stage]["val_accuracy"],
            "test_accuracy": metrics[stage]["test_accuracy"],
            "validation_split": validation_split,
            "parity_images": registry.parity_images,
            "onnx_exporter": registry.onnx_exporter,
            "seed": split.seed,
        }
    return plan


def register(plan: dict, catalog, alias: str) -> None:
    """Register the planned models to the active run's registry, all or nothing: once every
    one is registered, the run is tagged with what happened to each (`<stage>.registered_model`,
    `.promoted`, `.promotion_reason`, `.<alias>`: the version the registry holds) and the log
    says it. A failure or a signal on the way removes the versions this run registered and
    puts the alias back where it was (and the registered model's description), before the
    error goes on (the run then ends FAILED or KILLED). The description of a registered model
    follows its champion: only a version that holds the alias rewrites it."""
    client = mlflow.MlflowClient()
    run = client.get_run(mlflow.active_run().info.run_id)
    holders: dict[str, str | None] = {}  # each model's alias holder before this run
    descriptions: dict[str, str | None] = {}  # and its registered model's description
    tags, lines = {}, []
    load = functools.cache(catalog.load)  # the models and stage data shared by the stages
    try:
        for stage, entry in plan.items():
            interrupt.check()
            if "skipped" in entry:
                tags[f"{stage}.registered_model"] = f"skipped: {entry['skipped']}"
                lines.append(f"Registered no {stage} model: {entry['skipped']}.")
                continue
            model = load(entry["dataset"])
            model = model[stage] if isinstance(model, dict) else model
            data = load(entry["data"])
            with span("onnx export"):
                graph = to_onnx(
                    model,
                    data["class_names"],
                    data["source_classes"],
                    entry["onnx_exporter"],
                )
            with span("parity check"):
                parity = check_parity(
                    graph, model, data["val_images"], entry["parity_images"], entry["seed"]
                )
            if not parity.holds:
                reason = f"its ONNX graph differs from the PyTorch model: {parity.describe()}"
                tags[f"{stage}.registered_model"] = f"skipped: {reason}"
                lines.append(f"Registered no {stage} model: {reason}.")
                continue
            # A signal waits until the version is logged, tagged and compared (a second or
            # two): cut inside MLflow's own writes, it could leave the tracking store's
            # connection mid-transaction, and the roll-back below locked out of it.
            with interrupt.held():
                name = entry["name"]
                holders[name] = holder_of(client, name, alias)
                descriptions.setdefault(name, _description(client, name))
                with span("logging the model"):
                    info = log_classifier(model, graph, data, name)
                version = str(info.registered_model_version)
                client.set_model_version_tag(name, version, "registered_by", _who(run))
                client.update_model_version(
                    name, version, version_description(stage, entry, run, parity.describe())
                )
                question = {
                    "classes": ",".join(str(label) for label in data["source_classes"]),
                    "validation_split": entry["validation_split"],
                }
                promoted, reason, holder = promote_if_best(
                    client, name, version, entry, alias, question
                )
                if holder == version or holder is None:
                    # The registered model's page describes the version its alias serves: a
                    # version that did not take the alias (another question, a worse figure)
                    # leaves the description of the one that did.
                    client.update_registered_model(
                        name, model_description(name, data["class_names"], data["source_classes"])
                    )
                tags |= {
                    f"{stage}.registered_model": f"{name} version {version}",
                    f"{stage}.promoted": str(promoted).lower(),
                    f"{stage}.promotion_reason": reason,
                    f"{stage}.{alias}": f"version {holder}" if holder else "none",
                }
                lines.append(
                    f"Registered {name} version {version}: {reason}; {alias} is version {holder}."
                )
        interrupt.check()
    except BaseException as error:
        _roll_back(client, run.info.run_id, holders, descriptions, alias, error)
        raise
    mlflow.set_tags(tags)
    for line in lines:
        logger.info(line)


def _who(run) -> str:
    """The account the version is registered by: the tracking server's, else the run's user."""
    return os.environ.get(USER_VARIABLE) or run.data.tags.get("mlflow.user", "unknown")


def holder_of(client: mlflow.MlflowClient, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def _description(client: mlflow.MlflowClient, name: str) -> str | None:
    try:
        return client.get_registered_model(name).description
    except MlflowException:
        return None


def _roll_back(
    client, run_id: str, holders: dict, descriptions: dict, alias: str, error: BaseException
) -> None:
    """Remove every version this run registered (found by its run id: a signal can come
    after MLflow created one and before it told), putting the alias back where it was, with
    signals held off so that a second Ctrl-C cannot leave it half done; the run's tag and the
    log say what was undone."""
    cause = "interrupted" if isinstance(error, KeyboardInterrupt) else f"{type(error).__name__}"
    with interrupt.held():
        undone = []
        for found in client.search_model_versions(f"run_id='{run_id}'"):
            name, version = found.name, str(found.version)
            if holder_of(client, name, alias) == version:  # moved by this run, not since
                if holders.get(name) is None:
                    client.delete_registered_model_alias(name, alias)
                else:
                    client.set_registered_model_alias(name, alias, holders[name])
            client.delete_model_version(name, version)
            undone.append(f"{name} version {version}")
        for name, description in descriptions.items():
            if description is not None:  # the page says again what the alias serves
                client.update_registered_model(name, description)
        mlflow.set_tag(
            "registry", f"rolled back ({cause}): " + (", ".join(undone) or "nothing registered")
        )
        logger.warning(
            "Registration %s: removed %s; the %s alias is where it was.",
            cause,
            ", ".join(undone) or "nothing (no version was registered yet)",
            alias,
        )
