"""Registration, start to end: which models a run registers (a node of the evaluation
pipeline, so the step shows in the graph) and registering them once the whole run has
succeeded (called by the project's hook): each model's ONNX graph is checked against PyTorch,
logged with its checkpoint, registered with its model card, and judged by the champion rule."""

from __future__ import annotations

import logging

import mlflow

from fashion_transfer.export import check_parity, to_onnx
from fashion_transfer.mlflow.champion import promote_if_best
from fashion_transfer.mlflow.logged_model import log_classifier
from fashion_transfer.mlflow.model_card import model_description, version_description
from fashion_transfer.params import RegistryParams

logger = logging.getLogger(__name__)

# Where the registry finds each model, and the stage data that gives its classes and example.
SOURCES = {
    "pretrain": ("pretrain_model", "pretrain_data"),
    "transfer": ("transfer_model", "transfer_data"),
    "ensemble": ("ensemble_models", "transfer_data"),
}


def plan_registration(metrics: dict[str, dict], registry_params: dict) -> dict:
    """The models this run registers, with the figures the champion rule compares, or why
    one is left out. Registration itself happens once the whole run has succeeded, so a run
    that fails registers nothing."""
    registry = RegistryParams.model_validate(registry_params)
    if not registry.register_models:
        return {}
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
        }
    return plan


def register(plan: dict, catalog, alias: str) -> None:
    """Register the planned models to the active run's registry, tagging the run with what
    happened to each (`<stage>.registered_model`, `.promoted`, `.promotion_reason`)."""
    client = mlflow.MlflowClient()
    run = client.get_run(mlflow.active_run().info.run_id)
    for stage, entry in plan.items():
        if "skipped" in entry:
            _skip(stage, entry["skipped"])
            continue
        model = catalog.load(entry["dataset"])
        model = model[stage] if isinstance(model, dict) else model
        data = catalog.load(entry["data"])
        graph = to_onnx(model, data["class_names"], data["source_classes"])
        parity = check_parity(graph, model, data["val_images"])
        if not parity.holds:
            _skip(stage, f"its ONNX graph differs from the PyTorch model: {parity.describe()}")
            continue
        name = entry["name"]
        info = log_classifier(model, graph, data, name)
        version = str(info.registered_model_version)
        client.update_registered_model(
            name, model_description(name, data["class_names"], data["source_classes"])
        )
        client.update_model_version(
            name, version, version_description(stage, entry, run, parity.describe())
        )
        promoted, reason = promote_if_best(client, name, version, entry, alias)
        mlflow.set_tags(
            {
                f"{stage}.registered_model": f"{name} version {version}",
                f"{stage}.promoted": str(promoted).lower(),
                f"{stage}.promotion_reason": reason,
            }
        )
        logger.info("Registered %s version %s: %s", name, version, reason)


def _skip(stage: str, reason: str) -> None:
    mlflow.set_tag(f"{stage}.registered_model", f"skipped: {reason}")
    logger.info("Registered no %s model: %s.", stage, reason)
