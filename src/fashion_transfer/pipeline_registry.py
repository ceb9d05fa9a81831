"""Project pipelines. Each stage pipeline includes the data preparation it needs, so that
`kedro run --pipeline pretrain` goes from the raw IDX files to the saved pretrained model."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from fashion_transfer.pipelines import (
    catalogue,
    evaluation,
    ingestion,
    label_efficiency,
    predict,
    pretrain,
    split,
    transfer,
    tune,
)

# Pipelines that only read the stage data and models of data/: several can run at once, and
# a `kedro run` that writes them waits until they have loaded what they read.
READ_ONLY_PIPELINES = {"tune", "label_efficiency"}


def register_pipelines() -> dict[str, Pipeline]:
    data = ingestion.create_pipeline() + split.create_pipeline()
    stages = {
        "pretrain": pretrain.create_pipeline(),
        "transfer": transfer.create_pipeline(),
        "catalogue": catalogue.create_pipeline(),
        "evaluation": evaluation.create_pipeline(),
    }
    pipelines = {
        "ingestion": ingestion.create_pipeline(),
        "split": data,
        **{name: data + stage for name, stage in stages.items()},
    }
    pipelines["__default__"] = data + sum(stages.values(), Pipeline([]))
    # Not part of the default run: it needs a registered champion and images to classify.
    pipelines["predict"] = predict.create_pipeline()
    # Not part of the default run either: studies that read the stage data and models a run
    # made, and write only their own reports.
    pipelines["tune"] = tune.create_pipeline()
    pipelines["label_efficiency"] = label_efficiency.create_pipeline()
    return pipelines
