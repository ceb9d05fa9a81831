from kedro.pipeline import Pipeline, node

from .nodes import classify_images


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                classify_images,
                inputs=["images_to_classify", "champion_classifier"],
                outputs="image_predictions",
                name="classify_images",
            )
        ],
        tags="predict",
    )
