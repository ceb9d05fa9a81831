from kedro.pipeline import Pipeline, node

from fashion_transfer.mlflow.metrics import epoch_metrics
from fashion_transfer.pipelines.training_set import training_set_pipeline

from .nodes import pretrain


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            training_set_pipeline("pretrain"),
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
