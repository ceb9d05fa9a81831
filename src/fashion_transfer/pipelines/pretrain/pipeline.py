from kedro.pipeline import Pipeline, node

from fashion_transfer.mlflow.metrics import epoch_metrics
from fashion_transfer.outlier_sets import make_outliers
from fashion_transfer.photos import add_training_photos

from .nodes import pretrain


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                add_training_photos,
                inputs=["pretrain_data", "params:pretrain"],
                outputs="pretrain_training_set",
                name="add_pretrain_training_photos",
            ),
            node(
                make_outliers,
                inputs=["pretrain_data", "params:pretrain"],
                outputs="pretrain_outliers",
                name="make_pretrain_outliers",
            ),
            node(
                pretrain,
                inputs={
                    "pretrain_data": "pretrain_training_set",
                    "model_params": "params:model",
                    "training_params": "params:pretrain",
                    "runtime": "params:runtime",
                    "outliers": "pretrain_outliers",
                },
                outputs=["pretrain_model", "pretrain_history"],
                name="pretrain",
            ),
            node(
                epoch_metrics,
                inputs={"pretrain": "pretrain_history"},
                outputs="pretrain_epoch_metrics",
                name="pretrain_epoch_metrics",
            ),
        ],
        tags="pretrain",
    )
