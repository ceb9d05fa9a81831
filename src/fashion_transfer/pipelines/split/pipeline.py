from kedro.pipeline import Pipeline, node

from .nodes import split_stages


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                split_stages,
                inputs=["fashion_mnist", "params:split"],
                outputs=["pretrain_data", "transfer_data"],
                name="split_stages",
            )
        ],
        tags="data",
    )
