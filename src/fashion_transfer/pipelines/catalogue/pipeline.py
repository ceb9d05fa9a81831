from kedro.pipeline import Pipeline, node

from fashion_transfer.mlflow.metrics import catalogue_epoch_metrics
from fashion_transfer.pipelines.training_set import training_set_pipeline

from .nodes import train_catalogue, train_catalogue_scratch


def create_pipeline(**kwargs) -> Pipeline:
    inputs = [
        "pretrain_model",
        "catalogue_training_set",
        "catalogue_outliers",
        "params:catalogue",
        "params:runtime",
    ]
    return Pipeline(
        [
            training_set_pipeline("catalogue"),
            node(
                train_catalogue,
                inputs=inputs,
                outputs=["catalogue_model", "catalogue_history"],
                name="train_catalogue",
            ),
            node(
                train_catalogue_scratch,
                inputs=inputs,
                outputs=["catalogue_baselines", "catalogue_baseline_histories"],
                name="train_catalogue_scratch",
            ),
            node(
                catalogue_epoch_metrics,
                inputs=["catalogue_history", "catalogue_baseline_histories"],
                outputs="catalogue_epoch_metrics",
                name="catalogue_epoch_metrics",
            ),
        ],
        tags="catalogue",
    )
