from kedro.pipeline import Pipeline, node

from fashion_transfer.mlflow.metrics import transfer_stage_epoch_metrics
from fashion_transfer.pipelines.training_set import training_set_pipeline

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
            training_set_pipeline("transfer"),
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
