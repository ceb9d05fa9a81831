from kedro.pipeline import Pipeline, node

from fashion_transfer.mlflow.metrics import epoch_metrics

from .nodes import pretrain


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                pretrain,
                inputs=["pretrain_data", "params:model", "params:pretrain", "params:runtime"],
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
