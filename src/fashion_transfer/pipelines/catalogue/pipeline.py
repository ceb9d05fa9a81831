from kedro.pipeline import Pipeline, node

from fashion_transfer.mlflow.metrics import catalogue_epoch_metrics
from fashion_transfer.outlier_sets import make_outliers
from fashion_transfer.photos import add_training_photos

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
            node(
                add_training_photos,
                inputs=["catalogue_data", "params:catalogue"],
                outputs="catalogue_training_set",
                name="add_catalogue_training_photos",
            ),
            node(
                make_outliers,
                inputs=["catalogue_data", "params:catalogue"],
                outputs="catalogue_outliers",
                name="make_catalogue_outliers",
            ),
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
