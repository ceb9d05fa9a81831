from kedro.pipeline import Pipeline, node

from .nodes import assemble_dataset


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                assemble_dataset,
                inputs=["train_images", "train_labels", "test_images", "test_labels"],
                outputs="fashion_mnist",
                name="assemble_dataset",
            )
        ],
        tags="data",
    )
