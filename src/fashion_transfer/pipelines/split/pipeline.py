from kedro.pipeline import Pipeline, node

from .nodes import combine_stages, split_stages


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                split_stages,
                inputs=["fashion_mnist", "params:split"],
                outputs=["pretrain_data", "transfer_data"],
                name="split_stages",
            ),
            node(
                combine_stages,
                inputs=["pretrain_data", "transfer_data"],
                outputs="catalogue_data",
                name="combine_stages",
            ),
        ],
        tags="data",
    )
