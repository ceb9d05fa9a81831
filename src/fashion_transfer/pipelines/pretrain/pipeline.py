from kedro.pipeline import Pipeline, node

from .nodes import pretrain


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                pretrain,
                inputs=["pretrain_data", "params:model", "params:pretrain", "params:runtime"],
                outputs=["pretrain_model", "pretrain_history"],
                name="pretrain",
            )
        ]
    )
