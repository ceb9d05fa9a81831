from kedro.pipeline import Pipeline, node

from fashion_transfer.mlflow.metrics import transfer_stage_epoch_metrics
from fashion_transfer.outlier_sets import make_outliers
from fashion_transfer.photos import add_training_photos

from .nodes import train_scratch_baseline, transfer


def create_pipeline(**kwargs) -> Pipeline:
    inputs = {
        "pretrain_model": "pretrain_model",
        "transfer_data": "transfer_training_set",
        "training_params": "params:transfer",
        "runtime": "params:runtime",
        "outliers": "transfer_outliers",
    }
    return Pipeline(
        [
            node(
                add_training_photos,
                inputs=["transfer_data", "params:transfer"],
                outputs="transfer_training_set",
                name="add_transfer_training_photos",
            ),
            node(
                make_outliers,
                inputs=["transfer_data", "params:transfer"],
                outputs="transfer_outliers",
                name="make_transfer_outliers",
            ),
            node(
                transfer,
                inputs=inputs,
                outputs=["transfer_model", "transfer_history"],
                name="transfer",
            ),
            node(
                train_scratch_baseline,
                inputs=inputs,
                outputs=["baseline_models", "baseline_histories"],
                name="train_scratch_baseline",
            ),
            node(
                transfer_stage_epoch_metrics,
                inputs=["transfer_history", "baseline_histories"],
                outputs="transfer_epoch_metrics",
                name="transfer_epoch_metrics",
            ),
        ],
        tags="transfer",
    )
