"""The models of the last `kedro run` in this project, as the evaluation pipeline gathers
them: for the measurements that score them again with one thing changed
(recognition_scores.py, photo_variations.py). Run from the project root."""

from __future__ import annotations

from pathlib import Path

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from fashion_transfer.pipelines.evaluation import nodes


def load_last_run() -> tuple[dict, dict, dict, dict]:
    """The run's parameters, each stage's data, its models (`gather_models`: name -> (model,
    stage), the ensemble built as the evaluation builds it) and its stages (`gather_stages`)."""
    bootstrap_project(Path.cwd())
    with KedroSession.create() as session:
        context = session.load_context()
        load, params = context.catalog.load, context.params
        data = {stage: load(f"{stage}_data") for stage in ("pretrain", "transfer", "catalogue")}
        ensemble, _ = nodes.build_ensemble(
            load("transfer_model"),
            load("baseline_models"),
            data["transfer"],
            params["runtime"],
            params["evaluation"],
        )
        models = nodes.gather_models(
            load("pretrain_model"),
            load("transfer_model"),
            load("baseline_models"),
            ensemble,
            load("catalogue_model"),
            load("catalogue_baselines"),
        )
        stages = nodes.gather_stages(data["pretrain"], data["transfer"], data["catalogue"])
    return params, data, models, stages
