"""What each training pipeline (pretrain, transfer, catalogue) does before it trains: its
stage's data with the recipe's training photos added (`{stage}_training_set`), and the
pictures that are none of the classes for its outlier exposure (`{stage}_outliers`). One
definition, so that the three stages prepare their training alike."""

from kedro.pipeline import Pipeline, node

from fashion_transfer.outlier_sets import make_outliers
from fashion_transfer.photos import add_training_photos


def training_set_pipeline(stage: str) -> Pipeline:
    """The two nodes for `stage` (its data `{stage}_data`, its recipe `params:{stage}`),
    named `add_{stage}_training_photos` and `make_{stage}_outliers`."""
    return Pipeline(
        [
            node(
                add_training_photos,
                inputs=[f"{stage}_data", f"params:{stage}"],
                outputs=f"{stage}_training_set",
                name=f"add_{stage}_training_photos",
            ),
            node(
                make_outliers,
                inputs=[f"{stage}_data", f"params:{stage}"],
                outputs=f"{stage}_outliers",
                name=f"make_{stage}_outliers",
            ),
        ]
    )
